"""Regression (found by the `arm-dropped` chaos scenario): the answer to a status patch could roll the pod view
back to a version older than one the watch had already delivered — the pod's deletion — and, no further event
coming, the pod stayed Terminating with its group running for ever."""

from __future__ import annotations

import types
from typing import Any, cast

from acinode import settings
from acinode.aci import api
from acinode.kube import client
from acinode.mapping import objects, placement
from acinode.pods import reconciler


class StalePatchKube:
    """Answers a status patch with the object as it was before the pod's deletion was recorded."""

    def __init__(self, answer: dict[str, Any]) -> None:
        self.answer = answer

    async def patch(self, path: str, body: Any, patch_type: str = "merge") -> dict[str, Any]:
        return self.answer


def pod(version: str, *, deleting: bool) -> objects.Pod:
    metadata: dict[str, Any] = {"name": "web", "namespace": "shop", "uid": "u1", "resourceVersion": version}
    if deleting:
        metadata["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return cast(objects.Pod, {"metadata": metadata, "spec": {}, "status": {"phase": "Pending"}})


def make_reconciler(kube: Any) -> reconciler.NodePodReconciler:
    where = cast(placement.GroupPlacement, types.SimpleNamespace(node_name="vn-a", cluster_id="c-1"))
    return reconciler.NodePodReconciler(
        cast(client.KubeClient, kube), cast(api.AciApi, object()), where, settings.PodSettings()
    )


async def test_a_late_status_patch_answer_does_not_undo_a_deletion_seen_by_the_watch() -> None:
    before_delete = pod("41", deleting=False)
    rec = make_reconciler(StalePatchKube(dict(before_delete)))
    # The watch has delivered the deletion (resourceVersion 42) while our status patch was in flight.
    rec.view.pods["u1"] = pod("42", deleting=True)
    await rec.reporter.patch_status(before_delete, {"phase": "Running"})
    assert rec.view.pods["u1"]["metadata"].get("deletionTimestamp"), "the view forgot the pod's deletion"


async def test_a_newer_status_patch_answer_is_taken() -> None:
    rec = make_reconciler(StalePatchKube(dict(pod("43", deleting=False))))
    rec.view.pods["u1"] = pod("42", deleting=False)
    await rec.reporter.patch_status(pod("42", deleting=False), {"phase": "Running"})
    assert rec.view.pods["u1"]["metadata"]["resourceVersion"] == "43"
