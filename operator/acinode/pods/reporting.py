"""What the controller tells the API server about a pod: its status (patched only when it changes) and Events
(each posted once per key and count)."""

from __future__ import annotations

import logging
from typing import cast

from acinode import errors
from acinode.kube import client
from acinode.kube import pods as kube_pods
from acinode.mapping import events, objects
from acinode.pods import view

logger = logging.getLogger(__name__)


def log_fields(node_name: str, pod: objects.Pod) -> dict[str, str]:
    metadata = pod.get("metadata", {})
    return {"node": node_name, "namespace": metadata.get("namespace", ""), "pod": metadata.get("name", "")}


class PodReporter:
    def __init__(self, kube: client.KubeClient, pods: view.PodView) -> None:
        self.kube = kube
        self.pods = pods
        self._posted: dict[str, dict[str, int]] = {}
        """Pod uid → Event key → count already posted."""

    async def patch_status(self, pod: objects.Pod, status: objects.PodStatus) -> None:
        """Write ``status`` unless the pod already has it; the answer updates the view (unless the view holds
        a newer version: see ``PodView.offer``). A pod gone meanwhile is no error."""
        if status == pod.get("status"):
            return
        metadata = pod["metadata"]
        try:
            updated = await kube_pods.patch_status(
                self.kube, metadata["namespace"], metadata["name"], metadata["uid"], status
            )
        except errors.NotFoundError:
            return
        if updated.get("metadata", {}).get("uid") == metadata["uid"]:
            self.pods.offer(cast(objects.Pod, updated))

    async def post(self, pod: objects.Pod, event: events.PodEvent) -> None:
        """Post ``event`` unless it was posted with this count already. A failure is logged, not raised."""
        count = int(event.body.get("count", 1))
        posted = self._posted.setdefault(pod["metadata"]["uid"], {})
        if posted.get(event.key) == count:
            return
        posted[event.key] = count
        try:
            await kube_pods.post_event(self.kube, pod["metadata"]["namespace"], dict(event.body))
        except errors.AcinodeError as err:
            logger.warning("posting an event failed: %s", err, extra=log_fields(self.pods.node_name, pod))

    def forget(self, uid: str) -> None:
        self._posted.pop(uid, None)
