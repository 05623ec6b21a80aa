"""The per-node view of bound pods: one list + watch with a ``spec.nodeName`` field selector per virtual node.

Only pods bound to this node ever reach the operator, so its memory and CPU do not grow with the cluster's other
pods, and nothing (no Kopf annotation, no finalizer) is written to pods to track them. ``synced`` turns True only
after the initial list has completed: until then the reconciler must not conclude that a group is orphaned.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import cast

from acinode import errors, settings
from acinode.kube import client
from acinode.kube import pods as kube_pods
from acinode.mapping import objects
from acinode.pods import retry

logger = logging.getLogger(__name__)
JsonObject = client.JsonObject


def _resource_version(pod: objects.Pod) -> int:
    """The API server's resourceVersion as a number (etcd revisions); -1 when absent or not a number, so an
    object without one never replaces one that has it."""
    version = str(pod.get("metadata", {}).get("resourceVersion") or "")
    return int(version) if version.isdigit() else -1


class PodView:
    def __init__(
        self,
        kube: client.KubeClient,
        node_name: str,
        on_change: Callable[[objects.Pod | None], None],
        watch_timeout_seconds: int = 300,
        retry_after_error: retry.Backoff | None = None,
    ) -> None:
        self.kube = kube
        self.node_name = node_name
        self._retry = retry_after_error or retry.pod_watch(settings.PodSettings())
        self.pods: dict[str, objects.Pod] = {}
        """Bound pods by uid."""
        self.synced = False
        self._on_change = on_change
        self._watch_timeout = watch_timeout_seconds
        self._resource_version = ""

    def get(self, uid: str) -> objects.Pod | None:
        return self.pods.get(uid)

    def offer(self, pod: objects.Pod) -> bool:
        """Take a copy of a pod obtained outside the watch (e.g. the answer to a status patch), unless the view
        already holds a newer one. A write's answer can arrive after the watch delivered a later change — the
        deletion of the pod, say — and must not roll the view back to before it: no event would ever bring the
        deletion back. Returns whether the view took it."""
        uid = pod.get("metadata", {}).get("uid")
        if not uid or uid not in self.pods:
            return False
        if _resource_version(pod) < _resource_version(self.pods[uid]):
            return False
        self.pods[uid] = pod
        return True

    async def relist(self) -> None:
        items, self._resource_version = await kube_pods.list_pods_on_node(self.kube, self.node_name)
        self.pods = {p["metadata"]["uid"]: cast(objects.Pod, p) for p in items}
        self.synced = True
        self._on_change(None)

    def apply_event(self, event: JsonObject) -> None:
        kind = event.get("type")
        pod = event.get("object") or {}
        metadata = pod.get("metadata", {})
        if metadata.get("resourceVersion"):
            self._resource_version = metadata["resourceVersion"]
        if kind == "BOOKMARK":
            return
        if kind == "ERROR":
            # 410 Gone: our resourceVersion is too old (etcd compaction); relist.
            raise errors.ConflictError(f"watch error: {pod.get('message', pod)}")
        uid = metadata.get("uid")
        if not uid:
            return
        if kind == "DELETED":
            self.pods.pop(uid, None)
        else:
            self.pods[uid] = cast(objects.Pod, pod)
        self._on_change(cast(objects.Pod, pod))

    async def run(self) -> None:
        """List, then watch from the list's resourceVersion; relist on expiry or error. Runs until cancelled."""
        failures = 0
        while True:
            try:
                if not self.synced or not self._resource_version:
                    await self.relist()
                async for event in kube_pods.watch_pods_on_node(
                    self.kube, self.node_name, self._resource_version, self._watch_timeout
                ):
                    self.apply_event(event)
                failures = 0
            except errors.ConflictError as err:
                logger.info("pod watch restarts with a fresh list: %s", err, extra={"node": self.node_name})
                self._resource_version = ""
            except errors.AcinodeError as err:
                logger.warning("pod watch failed: %s", err, extra={"node": self.node_name})
                failures += 1
                await asyncio.sleep(self._retry.delay(failures))
            except (ValueError, KeyError):
                logger.exception("malformed watch event; relisting", extra={"node": self.node_name})
                self._resource_version = ""
                await asyncio.sleep(self._retry.delay(max(failures, 1)))
