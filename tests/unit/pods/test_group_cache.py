"""The group cache: a listing that began before one of our writes completed must not undo it (a PUT undone would
be sent again: the burst benchmark saw 1.37 PUTs per pod before this; a DELETE undone would be sent twice), and
only this cluster's groups ever enter it."""

from __future__ import annotations

import asyncio

from pods_builders import CLUSTER, NODE, own_tags, summary

from acinode.aci import api
from acinode.mapping import tags
from acinode.pods import groupcache
from fakes.fake_aci import FakeAciApi
from fakes.fake_clock import FakeClock


def make(aci: FakeAciApi, clock: FakeClock) -> groupcache.GroupCache:
    return groupcache.GroupCache(aci, CLUSTER, NODE, clock)


async def listed_while(
    cache: groupcache.GroupCache, aci: FakeAciApi, clock: FakeClock, write: object
) -> None:
    gate = aci.hold("list_groups")
    refresh = asyncio.create_task(cache.refresh())
    await asyncio.sleep(0)  # the listing call begins (its answer is fixed now) and waits at the gate
    assert aci.count("list_groups") == 1
    clock.advance(0.5)  # the write completes after the listing began
    write()  # type: ignore[operator]
    gate.set()
    await refresh


async def test_a_group_created_during_a_listing_stays_known(aci: FakeAciApi, clock: FakeClock) -> None:
    cache = make(aci, clock)
    await listed_while(cache, aci, clock, lambda: cache.wrote(summary("web").name, summary("web")))
    assert "web" in cache


async def test_a_group_deleted_during_a_listing_stays_gone(aci: FakeAciApi, clock: FakeClock) -> None:
    aci.put_group("web", own_tags("web"))
    cache = make(aci, clock)
    await listed_while(cache, aci, clock, lambda: cache.wrote(summary("web").name, None))
    assert "web" not in cache


async def test_a_listing_begun_after_the_write_is_believed(aci: FakeAciApi, clock: FakeClock) -> None:
    cache = make(aci, clock)
    cache.wrote(summary("web").name, summary("web"))  # then deleted outside acinode before the next listing
    clock.advance(1)
    await cache.refresh()
    assert "web" not in cache
    aci.put_group("web", own_tags("web"))
    clock.advance(1)
    await cache.refresh()
    assert "web" in cache, "the write is forgotten once a later listing has been believed"


async def test_other_clusters_groups_are_not_ours(aci: FakeAciApi, clock: FakeClock) -> None:
    aci.put_group("other", {**own_tags("other"), tags.TAG_CLUSTER_ID: "another"})
    aci.put_group("web", own_tags("web"))
    cache = make(aci, clock)
    await cache.refresh()
    assert cache.names() == ["web"]


async def test_listed_only_after_a_first_listing_and_counts_by_provisioning_state(
    aci: FakeAciApi, clock: FakeClock
) -> None:
    cache = make(aci, clock)
    assert not cache.listed
    aci.put_group("a", own_tags("a"), "Succeeded")
    aci.put_group("b", own_tags("b"), "Creating")
    aci.put_group("c", own_tags("c"), "Creating")
    await cache.refresh()
    assert cache.listed and cache.listing_began == clock.monotonic()
    assert cache.by_provisioning_state() == {"Succeeded": 1, "Creating": 2}


async def test_a_group_a_get_found_missing_is_forgotten_until_listed_again(
    aci: FakeAciApi, clock: FakeClock
) -> None:
    aci.put_group("web", own_tags("web"))
    cache = make(aci, clock)
    await cache.refresh()
    cache.vanished(api.GroupSummary(name=summary("web").name, tags={}, provisioning_state=None).name)
    assert "web" not in cache
    await cache.refresh()
    assert "web" in cache


async def test_the_owner_follows_the_groups_current_tags(aci: FakeAciApi, clock: FakeClock) -> None:
    # The owner is read once per summary: a group replaced by a newer pod's (same name, new uid) must name the
    # new pod at once, whether the change came from our own PUT or from a listing.
    cache = make(aci, clock)
    assert cache.owner_uid(summary("web").name) is None, "unknown group"
    cache.wrote(summary("web").name, summary("web", uid="u1"))
    assert cache.owner_uid(summary("web").name) == "u1"
    cache.wrote(summary("web").name, summary("web", uid="u2"))
    assert cache.owner_uid(summary("web").name) == "u2"
    aci.put_group("web", own_tags("web", uid="u3"))
    clock.advance(1)
    await cache.refresh()
    assert cache.owner_uid(summary("web").name) == "u3"
    cache.wrote(summary("web").name, api.GroupSummary(summary("web").name, {}, "Succeeded"))
    assert cache.owner_uid(summary("web").name) is None, "a group without acinode's tags names no pod"


async def test_a_get_newer_than_the_listing_updates_the_provisioning_state(
    aci: FakeAciApi, clock: FakeClock
) -> None:
    cache = make(aci, clock)
    cache.wrote(summary("web").name, summary("web", state="Creating"))
    cache.observed(summary("web").name, "Succeeded")
    assert cache.get(summary("web").name) == summary("web", state="Succeeded")
    assert not cache.get(summary("web").name).is_provisioning()  # type: ignore[union-attr]
    cache.observed(summary("gone").name, "Succeeded")
    assert "gone" not in cache, "a GET never brings back a group the cache does not hold"
