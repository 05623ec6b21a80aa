"""The name the rest of the operator has long used for a node's pod controller (``controller.PodController``).

The controller is in parts: ``controller`` (dispatch, status sync, tasks), ``lifecycle`` (create, delete, lost
groups), ``groupcache`` (listing + write overlay), ``statussync`` (which groups get GETs when), ``policy`` (the
failure table), ``retry`` and ``workqueue`` (retries by failure kind), ``reporting`` (status patches, Events),
``view`` (the bound pods). The kubelet API and the metrics see it only through ``protocols``.
"""

from __future__ import annotations

from acinode.pods import controller

NodePodReconciler = controller.PodController
WorkKey = controller.WorkKey
