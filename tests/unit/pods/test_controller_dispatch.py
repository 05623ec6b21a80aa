"""The controller's dispatch on fakes and a fake clock: which keys pod events and listings queue, orphans deleted
only once the pod view is complete, status read back by the sync pass, durations told to the observer, and what
the kubelet API and the metrics may see (``protocols``)."""

from __future__ import annotations

import asyncio
from typing import Any

from pods_builders import NODE, Stack, group_name, own_tags, pod, ran

from acinode import errors
from acinode.pods import keys, protocols, retry


async def test_a_pod_event_queues_its_pod_and_a_deletion_its_group(stack: Stack) -> None:
    body = stack.bind(pod())
    uid = body["metadata"]["uid"]
    assert await stack.controller.queue.get() == keys.PodKey(uid)
    stack.controller.queue.done(keys.PodKey(uid))
    stack.controller.view.apply_event({"type": "DELETED", "object": body})
    queued = {await stack.controller.queue.get(), await stack.controller.queue.get()}
    assert queued == {keys.PodKey(uid), keys.GroupKey(group_name(body))}


async def test_no_orphan_is_deleted_before_the_pod_view_has_listed(stack: Stack) -> None:
    stack.aci.put_group("shop-gone", own_tags("gone"))
    await stack.controller.groups.refresh()
    stack.controller.enqueue_all()
    await stack.drain()
    assert stack.aci.count("delete") == 0 and stack.controller.orphan_count() == 0
    await stack.controller.view.relist()  # queues every key again
    assert stack.controller.orphan_count() == 1
    await stack.drain()
    assert stack.aci.count("delete") == 1 and "shop-gone" not in stack.aci.groups


async def test_a_failed_orphan_delete_is_retried_by_kind(stack: Stack) -> None:
    stack.aci.put_group("shop-gone", own_tags("gone"))
    await stack.start()
    stack.aci.fail("delete", errors.TransientError("502"))
    await stack.drain()
    key = keys.GroupKey("shop-gone")  # type: ignore[arg-type]
    assert stack.controller.queue.failures(key, retry.FailureKind.TRANSIENT) == 1
    stack.later(2)
    await stack.drain()
    assert "shop-gone" not in stack.aci.groups
    assert stack.controller.queue.failures(key, retry.FailureKind.TRANSIENT) == 0


async def test_sync_reads_new_groups_and_patches_their_pods_running(stack: Stack) -> None:
    body = stack.bind(pod())
    await stack.start()
    await stack.drain()
    stack.aci.run(group_name(body))
    stack.clock.advance(1)
    assert await stack.controller.sync_once() == 1  # in transition until the pod is seen Running
    current = stack.current(body) or {}
    assert current["status"]["phase"] == "Running"
    assert stack.aci.count("get") == 1
    stack.clock.advance(1)
    assert await stack.controller.sync_once() == 0
    assert stack.controller.snapshot().groups_in_transition == 0


async def test_sync_queues_a_pod_whose_group_vanished(stack: Stack) -> None:
    body = stack.bind(ran(pod()))
    stack.aci.put_group(group_name(body), own_tags())
    await stack.start()
    await stack.drain()
    stack.aci.vanish(group_name(body))
    stack.clock.advance(1)
    await stack.controller.sync_once()
    assert keys.PodKey(body["metadata"]["uid"]) in await asyncio.wait_for(_queued(stack), 1)


async def _queued(stack: Stack) -> list[object]:
    return [await stack.controller.queue.get() for _ in range(len(stack.controller.queue))]


async def test_an_unexpected_error_is_retried_as_such(stack: Stack) -> None:
    body = stack.bind(pod())
    await stack.start()

    async def broken(pod: Any) -> None:
        raise RuntimeError("a bug")

    stack.controller.lifecycle.ensure = broken  # type: ignore[method-assign]
    worker = asyncio.create_task(stack.controller._run_worker())
    key = keys.PodKey(body["metadata"]["uid"])
    for _ in range(20):  # a few turns of the loop: the worker takes the key and fails
        await asyncio.sleep(0)
    worker.cancel()
    assert stack.controller.queue.failures(key, retry.FailureKind.UNEXPECTED) == 1
    assert stack.controller.queue.held_for(key) == 5


async def test_the_observer_is_told_each_reconcile_and_sync(stack: Stack) -> None:
    stack.bind(pod())
    await stack.start()
    await stack.drain()
    await stack.controller.sync_once()
    assert [n for n, _ in stack.observer.reconciles] == [NODE]
    assert [n for n, _ in stack.observer.syncs] == [NODE]


async def test_what_the_kubelet_and_the_metrics_see(stack: Stack) -> None:
    body = stack.bind(pod())
    stack.aci.put_group("shop-gone", own_tags("gone"), "Creating")
    await stack.start()
    await stack.drain()
    served: protocols.ServedNode = stack.controller
    assert served.node_name == NODE and served.placement.node_name == NODE
    assert served.find_pod("shop", "web") == served.pod_by_uid(body["metadata"]["uid"])
    assert served.find_pod("shop", "nope") is None
    assert [p["metadata"]["name"] for p in served.bound_pods()] == ["web"]
    assert served.containers is stack.aci
    assert stack.controller.pod_count() == 1
    snap = stack.controller.snapshot()
    assert snap.pods_by_phase["Pending"] == 1 and snap.pods_by_phase["Running"] == 0
    assert snap.groups_by_provisioning_state == {"Pending": 1}, "the orphan was deleted, ours is new"
    assert snap.orphan_groups == 0 and snap.queue_depth == 0
    assert snap.arm_requests.count("create_or_update") == 1


async def test_a_created_group_is_read_without_a_full_pass(stack: Stack) -> None:
    # A full pass visits every bound pod; a creation wakes a look at the new groups only.
    ready = stack.bind(ran(pod("ready")))
    ready["status"]["containerStatuses"][0]["ready"] = True
    stack.aci.put_group(group_name(ready), own_tags("ready", uid=ready["metadata"]["uid"]))
    fresh = stack.bind(pod("fresh"))
    await stack.start()
    await stack.drain()  # creates fresh's group, which queues a look at it
    assert group_name(fresh) in stack.controller._just_created
    stack.aci.run(group_name(fresh))
    stack.clock.advance(1)  # a full pass would list again now
    lists, gets = stack.aci.count("list_groups"), stack.aci.count("get")
    await stack.controller._sync_created()
    assert stack.aci.count("list_groups") == lists, "no listing"
    assert stack.aci.count("get") == gets + 1, "only the new group is read"
    assert (stack.current(fresh) or {})["status"]["phase"] == "Running"
    assert not stack.controller._just_created
