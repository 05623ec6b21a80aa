"""The pod lifecycle's contract on fakes and a fake clock: create once, the trust boundary, refusals held until the
pod changes, missing references and image pulls retried by kind, lost groups per restartPolicy, deletes that may
repeat, orphans, and placement changes that reach only later groups."""

from __future__ import annotations

import dataclasses
from typing import Any

from pods_builders import WHERE, Stack, group_name, own_tags, pod, ran

from acinode import errors
from acinode.mapping import placement
from acinode.pods import keys, retry


def waiting(stack: Stack, body: dict[str, Any]) -> str | None:
    current = stack.current(body) or {}
    statuses = current.get("status", {}).get("containerStatuses", [])
    return statuses[0]["state"].get("waiting", {}).get("reason") if statuses else None


async def test_a_bound_pod_gets_one_group_however_often_it_is_reconciled(stack: Stack) -> None:
    body = stack.bind(pod())
    await stack.start()
    for _ in range(3):
        stack.controller.queue.add(keys.PodKey(body["metadata"]["uid"]))
        await stack.drain()
    assert stack.aci.count("create_or_update") == 1
    tags = dict(stack.aci.groups[group_name(body)].group.tags or {})
    assert tags.items() >= own_tags().items()


async def test_a_pod_bound_to_another_node_is_never_acted_on(stack: Stack) -> None:
    body = stack.bind(pod(node="someone-else"))
    await stack.start()
    await stack.controller.lifecycle.ensure(body)  # type: ignore[arg-type]
    assert stack.aci.count("create_or_update") == 0


async def test_a_refused_pod_is_not_retried_until_it_changes(stack: Stack) -> None:
    body = pod()
    body["spec"]["hostNetwork"] = True
    body = stack.bind(body)
    await stack.start()
    await stack.drain()
    assert (stack.current(body) or {})["status"]["reason"] == "ProviderFailed"
    events_before = stack.kube.count("POST")
    stack.controller.queue.add(keys.PodKey(body["metadata"]["uid"]))
    await stack.drain()
    assert stack.aci.count("create_or_update") == 0 and stack.kube.count("POST") == events_before
    changed = dict(stack.current(body) or {})
    changed["spec"] = {**changed["spec"], "hostNetwork": False}
    changed["metadata"] = {**changed["metadata"], "generation": 2}
    stack.update(changed)
    await stack.drain()
    assert stack.aci.count("create_or_update") == 1


async def test_a_missing_secret_is_waited_for_then_the_pod_starts(stack: Stack) -> None:
    body = stack.bind(pod(env_from_secret="db"))
    await stack.start()
    await stack.drain()
    assert waiting(stack, body) == "CreateContainerConfigError"
    key = keys.PodKey(body["metadata"]["uid"])
    assert stack.controller.queue.failures(key, retry.FailureKind.MISSING_REFERENCES) == 1
    stack.later(0.5)
    await stack.drain()
    assert stack.kube.count("GET", "/api/v1/namespaces/shop/secrets/db") == 1, "held: no early retry"
    stack.kube.put("/api/v1/namespaces/shop/secrets/db", {"metadata": {"name": "db"}, "data": {}})
    stack.later(0.5)
    await stack.drain()
    assert stack.aci.count("create_or_update") == 1
    assert stack.controller.queue.failures(key, retry.FailureKind.MISSING_REFERENCES) == 0, "forgotten"


async def test_an_image_pull_failure_backs_off_on_its_own_counter(stack: Stack) -> None:
    body = stack.bind(pod(env_from_secret="db"))
    await stack.start()
    for _ in range(5):  # five waits for the Secret first
        await stack.drain()
        stack.later(60)
    stack.kube.put("/api/v1/namespaces/shop/secrets/db", {"metadata": {"name": "db"}, "data": {}})
    stack.aci.fail("create_or_update", errors.ImageInaccessibleError("denied", image="busybox"), times=2)
    await stack.drain()
    assert waiting(stack, body) == "ErrImagePull"
    key = keys.PodKey(body["metadata"]["uid"])
    assert stack.controller.queue.held_for(key) == 10, "the first step, not the 5-minute cap"
    stack.later(10)
    await stack.drain()
    assert waiting(stack, body) == "ImagePullBackOff"
    assert stack.controller.queue.held_for(key) == 20
    stack.later(20)
    await stack.drain()
    assert stack.aci.count("create_or_update") == 3 and group_name(body) in stack.aci.groups


async def test_a_lost_group_is_recreated_or_fails_the_pod(stack: Stack) -> None:
    always = stack.bind(ran(pod("always")))
    never = stack.bind(ran(pod("never", restart_policy="Never")))
    await stack.start()
    await stack.drain()
    assert group_name(always) in stack.aci.groups and group_name(never) not in stack.aci.groups
    assert (stack.current(never) or {})["status"]["phase"] == "Failed"
    reasons = [c.body.get("reason") for c in stack.kube.calls_to("POST") if "/events" in c.path]
    assert reasons.count("ContainerGroupLost") == 2


async def test_a_deleted_pod_loses_its_group_then_leaves_at_once(stack: Stack) -> None:
    body = stack.bind(pod())
    await stack.start()
    await stack.drain()
    deleting = dict(stack.current(body) or {})
    deleting["metadata"] = {**deleting["metadata"], "deletionTimestamp": "2025-01-01T12:00:00Z"}
    stack.update(deleting)
    await stack.drain()
    assert group_name(body) not in stack.aci.groups
    assert stack.current(body) is None
    await stack.controller.lifecycle.delete(deleting)  # type: ignore[arg-type]
    assert stack.aci.count("delete") == 1, "the group is deleted once; repeating is harmless"


async def test_a_group_of_an_earlier_pod_of_the_same_name_is_replaced(stack: Stack) -> None:
    body = pod()
    stack.aci.put_group(group_name(body), own_tags(uid="an-older-uid"))
    stack.bind(body)
    await stack.start()
    await stack.drain()
    assert stack.aci.count("delete") == 1 and stack.aci.count("create_or_update") == 1
    assert dict(stack.aci.groups[group_name(body)].group.tags or {}).items() >= own_tags().items()


async def test_a_new_placement_reaches_only_groups_created_after_it(stack: Stack) -> None:
    first = stack.bind(pod("first"))
    await stack.start()
    await stack.drain()
    stack.controller.update_placement(
        dataclasses.replace(WHERE, cluster_dns=placement.ClusterDnsSettings(nameserver="10.0.0.99"))
    )
    second = stack.bind(pod("second"))
    await stack.drain()
    before = stack.aci.groups[group_name(first)].group
    after = stack.aci.groups[group_name(second)].group
    assert before.dns_config is None
    assert after.dns_config is not None and after.dns_config.name_servers == ["10.0.0.99"]
    assert stack.aci.count("create_or_update") == 2


def test_a_placement_for_another_node_is_refused(stack: Stack) -> None:
    try:
        stack.controller.update_placement(dataclasses.replace(WHERE, node_name="other"))  # type: ignore[arg-type]
    except ValueError:
        return
    raise AssertionError("update_placement accepted another node")


async def test_status_patches_never_roll_the_view_back(stack: Stack) -> None:
    """Regression (the `arm-dropped` chaos scenario): the answer to a status patch arriving after the watch
    delivered the pod's deletion must not undo it in the view."""
    body = stack.bind(pod())
    newer = dict(stack.current(body) or {})
    newer["metadata"] = {
        **newer["metadata"],
        "deletionTimestamp": "2025-01-01T12:00:00Z",
        "resourceVersion": "9999",
    }
    stack.controller.view.pods[body["metadata"]["uid"]] = newer  # type: ignore[assignment]
    await stack.controller.reporter.patch_status(body, {"phase": "Running"})  # type: ignore[arg-type]
    assert stack.controller.view.pods[body["metadata"]["uid"]]["metadata"].get("deletionTimestamp")
