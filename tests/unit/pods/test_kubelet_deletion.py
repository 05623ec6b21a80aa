"""Deletion and deadlines as a kubelet does them: stop, wait up to the grace period, terminated statuses, then the
group and the pod go; a force deletion at once; activeDeadlineSeconds ends the pod Failed (DeadlineExceeded)."""

from __future__ import annotations

from typing import Any

from pods_builders import Stack, group_name, pod

from acinode.pods import keys


def _patched(stack: Stack) -> list[dict[str, Any]]:
    """The statuses written through pods/status, oldest first."""
    return [c.body["status"] for c in stack.kube.calls_to("PATCH") if c.path.endswith("/status")]


async def _running(stack: Stack, body: dict[str, Any]) -> dict[str, Any]:
    stored = stack.bind(body)
    await stack.start()
    await stack.drain()
    stack.aci.run(group_name(body))
    await stack.controller.sync_once()
    current = stack.current(stored)
    assert current is not None and current["status"]["phase"] == "Running"
    return current


def _deleting(stack: Stack, current: dict[str, Any], grace: int) -> dict[str, Any]:
    metadata = {**current["metadata"], "deletionTimestamp": stack.clock.stamp(grace)}
    metadata["deletionGracePeriodSeconds"] = grace
    return stack.update({**current, "metadata": metadata})


async def test_a_graceful_delete_stops_the_group_and_writes_terminated_statuses_before_the_pod_goes(
    stack: Stack,
) -> None:
    stack.aci.stop_kills = True
    body = pod()
    current = await _running(stack, body)
    _deleting(stack, current, 30)
    await stack.drain()
    assert stack.aci.stopped == [group_name(body)]
    assert group_name(body) not in stack.aci.groups and stack.current(body) is None
    patched = [s for s in _patched(stack) if s.get("phase") in ("Failed", "Succeeded")]
    assert patched, "the terminated statuses are written before the pod is removed"
    terminated = patched[-1]["containerStatuses"][0]["state"]["terminated"]
    assert terminated["exitCode"] == 137 and patched[-1]["phase"] == "Failed"


async def test_a_container_that_ignores_the_stop_gets_its_grace_period_then_is_killed(stack: Stack) -> None:
    body = pod()
    current = await _running(stack, body)
    _deleting(stack, current, 30)
    await stack.drain()
    assert stack.aci.stopped == [group_name(body)]
    assert group_name(body) in stack.aci.groups and stack.current(body) is not None, "waits for the stop"
    assert stack.controller.queue.scheduled(keys.PodKey(body["metadata"]["uid"])) is not None
    stack.later(10)
    await stack.drain()
    assert stack.current(body) is not None, "10 s into a 30 s grace period"
    stack.later(21)
    await stack.drain()
    assert group_name(body) not in stack.aci.groups and stack.current(body) is None
    assert stack.aci.count("stop") == 1
    final = _patched(stack)[-1]
    assert final["phase"] == "Failed"
    assert final["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 137
    assert final["containerStatuses"][0]["ready"] is False


async def test_a_pre_stop_sleep_keeps_the_containers_running_before_the_stop(stack: Stack) -> None:
    stack.aci.stop_kills = True
    body = pod()
    body["spec"]["containers"][0]["lifecycle"] = {"preStop": {"sleep": {"seconds": 8}}}
    current = await _running(stack, body)
    _deleting(stack, current, 30)
    await stack.drain()
    assert stack.aci.stopped == [], "the preStop sleep runs first, the containers still serving"
    stack.later(5)
    await stack.drain()
    assert stack.aci.stopped == [] and stack.current(body) is not None
    stack.later(3)
    await stack.drain()
    assert stack.aci.stopped == [group_name(body)]
    assert group_name(body) not in stack.aci.groups and stack.current(body) is None


async def test_a_force_delete_removes_the_group_at_once_without_a_stop(stack: Stack) -> None:
    body = pod()
    current = await _running(stack, body)
    _deleting(stack, current, 0)
    await stack.drain()
    assert stack.aci.stopped == []
    assert group_name(body) not in stack.aci.groups and stack.current(body) is None


async def test_a_pod_past_its_active_deadline_fails_and_loses_its_group(stack: Stack) -> None:
    body = pod()
    body["spec"]["activeDeadlineSeconds"] = 60
    current = await _running(stack, body)
    assert current["status"]["startTime"] == stack.clock.stamp()
    stack.update(current)
    await stack.drain()
    uid = body["metadata"]["uid"]
    assert stack.controller.queue.scheduled(keys.PodKey(uid)) is not None, "a timer, not polling"
    stack.later(30)
    await stack.drain()
    assert group_name(body) in stack.aci.groups
    stack.later(31)
    await stack.drain()
    assert group_name(body) not in stack.aci.groups
    after = stack.current(body)
    assert after is not None, "the pod stays, Failed"
    status = after["status"]
    assert (status["phase"], status["reason"]) == ("Failed", "DeadlineExceeded")
    assert status["message"] == "Pod was active on the node longer than the specified deadline"
    assert status["containerStatuses"][0]["state"]["terminated"]["exitCode"] == 137
    await stack.controller.sync_once()
    await stack.drain()
    assert stack.aci.count("create_or_update") == 1, "a failed pod's group is never recreated"


async def test_a_pod_without_a_deadline_gets_no_timer(stack: Stack) -> None:
    body = pod()
    current = await _running(stack, body)
    stack.update(current)
    await stack.drain()
    assert stack.controller.queue.scheduled(keys.PodKey(body["metadata"]["uid"])) is None
