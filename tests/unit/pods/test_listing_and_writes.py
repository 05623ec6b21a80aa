"""A listing that began before one of our writes completed must not undo it: a PUT undone would be sent again (the
burst benchmark saw 1.37 PUTs per pod before this), a DELETE undone would be sent twice."""

from __future__ import annotations

import asyncio
import types
from collections.abc import Mapping
from typing import Any, cast

from acinode import settings
from acinode.aci import api
from acinode.kube import client
from acinode.mapping import placement, tags
from acinode.pods import reconciler

CLUSTER = "cluster-1"
NODE = "vn-a"


def summary(name: str, uid: str = "u1") -> api.GroupSummary:
    owned = {
        tags.TAG_CLUSTER_ID: CLUSTER,
        tags.TAG_NODE: NODE,
        tags.TAG_NAMESPACE: "shop",
        tags.TAG_POD: name,
        tags.TAG_POD_UID: uid,
    }
    return api.GroupSummary(name=cast(Any, name), tags=owned, provisioning_state="Succeeded")


class SlowListing:
    """An ARM listing whose answer (fixed when the call begins) arrives only when the test releases it."""

    def __init__(self, answer: list[api.GroupSummary]) -> None:
        self.answer = answer
        self.began = asyncio.Event()
        self.release = asyncio.Event()

    async def list_groups(self, tags: Mapping[str, str] | None = None) -> list[api.GroupSummary]:
        answer = list(self.answer)
        self.began.set()
        await self.release.wait()
        return answer


def make(listing: SlowListing) -> reconciler.NodePodReconciler:
    where = cast(placement.GroupPlacement, types.SimpleNamespace(node_name=NODE, cluster_id=CLUSTER))
    return reconciler.NodePodReconciler(
        cast(client.KubeClient, object()), cast(api.AciApi, listing), where, settings.PodSettings()
    )


async def listed_while(rec: reconciler.NodePodReconciler, listing: SlowListing, write: Any) -> None:
    refresh = asyncio.create_task(rec.refresh_groups())
    await listing.began.wait()
    write()
    listing.release.set()
    await refresh


async def test_a_group_created_during_a_listing_stays_known() -> None:
    listing = SlowListing([])
    rec = make(listing)
    await listed_while(rec, listing, lambda: rec._wrote(cast(Any, "web"), summary("web")))
    assert "web" in rec.groups


async def test_a_group_deleted_during_a_listing_stays_gone() -> None:
    listing = SlowListing([summary("web")])
    rec = make(listing)
    await listed_while(rec, listing, lambda: rec._wrote(cast(Any, "web"), None))
    assert "web" not in rec.groups


async def test_a_listing_begun_after_the_write_is_believed() -> None:
    listing = SlowListing([])
    rec = make(listing)
    rec._wrote(cast(Any, "web"), summary("web"))  # then deleted outside acinode before the next listing
    listing.release.set()
    await rec.refresh_groups()
    assert "web" not in rec.groups
    listing.answer = [summary("web")]
    await rec.refresh_groups()
    assert "web" in rec.groups, "the write is forgotten once a later listing has been believed"


async def test_other_clusters_groups_are_not_ours() -> None:
    foreign = summary("other")
    foreign = api.GroupSummary(
        name=foreign.name, tags={**foreign.tags, tags.TAG_CLUSTER_ID: "another"}, provisioning_state=None
    )
    listing = SlowListing([foreign, summary("web")])
    listing.release.set()
    rec = make(listing)
    await rec.refresh_groups()
    assert set(rec.groups) == {"web"}
