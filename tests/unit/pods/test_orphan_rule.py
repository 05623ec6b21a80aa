"""The orphan rule (issue 18.4): a group is deleted as an orphan only when a fresh, complete pod list and two
consecutive group listings agree that no pod has it. On FakeKube, FakeAciApi and a FakeClock."""

from __future__ import annotations

from pods_builders import Stack, group_name, own_tags, pod

from acinode import errors
from acinode.kube import pods as kube_pods


async def test_an_orphan_is_deleted_only_after_a_second_listing_and_a_fresh_pod_list_agree(
    stack: Stack,
) -> None:
    stack.aci.put_group("shop-gone", own_tags("gone"))
    await stack.start()  # the first listing shows it, no pod has it
    lists_before = stack.aci.count("list_groups")
    pod_lists_before = stack.kube.count("GET")
    await stack.drain()
    assert "shop-gone" not in stack.aci.groups
    assert stack.aci.count("list_groups") == lists_before + 1, "a second listing confirmed it"
    assert stack.kube.count("GET") > pod_lists_before, "a fresh pod list confirmed it"


async def test_a_pod_the_watch_has_not_delivered_yet_keeps_its_group(stack: Stack) -> None:
    body = pod(name="late")
    stack.aci.put_group(group_name(body), own_tags("late", uid=body["metadata"]["uid"]))
    await stack.start()
    # The pod exists in the API server, but the view (fed by the watch) has not seen it: a stale view.
    stack.kube.put(kube_pods.pod_path("shop", "late"), body)
    await stack.drain()
    assert group_name(body) in stack.aci.groups, "the fresh pod list disagreed: not an orphan"
    assert stack.aci.count("delete") == 0


async def test_a_group_the_second_listing_no_longer_shows_is_not_deleted(stack: Stack) -> None:
    stack.aci.put_group("shop-gone", own_tags("gone"))
    await stack.start()
    del stack.aci.groups["shop-gone"]  # gone meanwhile (another replica, a person)
    await stack.drain()
    assert stack.aci.count("delete") == 0


async def test_no_orphan_is_deleted_while_the_api_server_cannot_be_listed(stack: Stack) -> None:
    stack.aci.put_group("shop-gone", own_tags("gone"))
    await stack.start()
    stack.kube.fail("/api/v1/pods", errors.TransientError("API server unreachable"), method="GET", times=None)
    await stack.drain()
    assert "shop-gone" in stack.aci.groups and stack.aci.count("delete") == 0
