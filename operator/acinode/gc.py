"""``acinode gc``: the container groups acinode created for a cluster whose pod no longer exists, and deleting them.

What the operator does for its VirtualNodes while it runs (every listing queues orphans for deletion), for after it
stopped doing it: an uninstall that removed the operator before its VirtualNodes, a VirtualNode whose finalizer was
removed by hand, a cluster deleted with groups still running. A group is considered only when it carries all of
acinode's tags (``mapping.tags``) with this cluster's id; it is left behind when no pod with its uid is bound to its
node (or, with ``cluster_gone``, always: the cluster and its pods no longer exist). A dry run by default.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import TextIO

from acinode import errors, settings, types
from acinode.aci import api, azure, target
from acinode.kube import client, cluster, login
from acinode.kube import pods as kube_pods
from acinode.mapping import tags

PodsOnNode = Callable[[str], Awaitable[set[str]]]
"""The uids of the pods bound to a node."""


@dataclasses.dataclass(frozen=True)
class Leftover:
    group: str
    node: str
    pod: str  # namespace/name
    pod_uid: str
    provisioning_state: str | None
    reason: str


@dataclasses.dataclass(frozen=True)
class Survey:
    ours: int
    """Groups of the resource group that carry acinode's tags for this cluster."""
    leftovers: list[Leftover]


async def survey(aci: api.AciApi, cluster_id: str, pods_on_node: PodsOnNode | None) -> Survey:
    """The groups of ``cluster_id`` in the client's resource group whose pod is gone (``pods_on_node`` None: the
    cluster is gone, every such group is left behind)."""
    groups = await aci.list_groups({tags.TAG_CLUSTER_ID: cluster_id})
    ours = [(g, tags.pod_identity_from_tags(g.tags)) for g in groups]
    known = [(g, who) for g, who in ours if who is not None and who.cluster_id == cluster_id]
    uids: dict[str, set[str]] = {}
    leftovers: list[Leftover] = []
    for group, who in sorted(known, key=lambda pair: pair[0].name):
        assert who is not None
        if pods_on_node is None:
            reason = "the cluster is gone"
        else:
            if who.node_name not in uids:
                uids[who.node_name] = await pods_on_node(who.node_name)
            if who.uid in uids[who.node_name]:
                continue
            reason = "no pod with its uid is bound to its node"
        leftovers.append(
            Leftover(
                group=group.name,
                node=who.node_name,
                pod=f"{who.namespace}/{who.name}",
                pod_uid=who.uid,
                provisioning_state=group.provisioning_state,
                reason=reason,
            )
        )
    return Survey(ours=len(known), leftovers=leftovers)


@dataclasses.dataclass(frozen=True)
class GcOptions:
    subscription_id: str
    resource_group: str
    delete: bool = False
    kubeconfig: str | None = None
    context: str | None = None
    cluster_id: str | None = None
    cluster_gone: bool = False
    cloud: str = "AzurePublicCloud"
    endpoint: str | None = None
    ca_bundle: str | None = None
    token_file: str | None = None
    client_id: str | None = None


def aci_target(options: GcOptions) -> target.AciTarget:
    if options.endpoint:
        cloud = target.custom_cloud(options.endpoint, ca_bundle_path=options.ca_bundle)
    else:
        cloud = target.cloud_named(options.cloud)
        if options.ca_bundle:
            cloud = dataclasses.replace(cloud, ca_bundle_path=options.ca_bundle)
    credential: target.CredentialChoice
    if options.token_file:
        credential = target.StaticToken(Path(options.token_file).read_text().strip())
    else:
        credential = target.DefaultCredential(managed_identity_client_id=options.client_id)
    return target.AciTarget(
        subscription_id=types.SubscriptionId(options.subscription_id),
        resource_group=types.ResourceGroup(options.resource_group),
        region="any",  # listing and deleting groups name no region
        cloud=cloud,
        credential=credential,
    )


def _kube_pods(kube: client.KubeClient) -> PodsOnNode:
    async def pods_on_node(node: str) -> set[str]:
        items, _ = await kube_pods.list_pods_on_node(kube, node)
        return {str(p.get("metadata", {}).get("uid", "")) for p in items}

    return pods_on_node


def _table(leftovers: Sequence[Leftover]) -> list[str]:
    rows = [("GROUP", "NODE", "POD", "STATE", "WHY")]
    rows += [(x.group, x.node, x.pod, x.provisioning_state or "-", x.reason) for x in leftovers]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    return [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4] for row in rows
    ]


async def run_async(options: GcOptions, out: TextIO) -> int:
    if options.cluster_gone and not options.cluster_id:
        raise errors.ConfigurationError(
            "--cluster-gone needs --cluster-id (the id the groups are tagged with)"
        )
    kube: client.KubeClient | None = None
    try:
        pods_on_node: PodsOnNode | None = None
        cluster_id = options.cluster_id
        if not options.cluster_gone:
            kube = client.KubeClient(
                login.credential_source(kubeconfig_path=options.kubeconfig, context=options.context)
            )
            found = await cluster.cluster_id(kube)
            if cluster_id and cluster_id != found:
                raise errors.ConfigurationError(
                    f"--cluster-id {cluster_id} is not this cluster's ({found}); for a cluster that no longer "
                    "exists use --cluster-gone"
                )
            cluster_id = found
            pods_on_node = _kube_pods(kube)
        assert cluster_id
        async with azure.AzureAciApi(aci_target(options), settings=settings.AciSettings()) as aci:
            result = await survey(aci, cluster_id, pods_on_node)
            where = f"/subscriptions/{options.subscription_id}/resourceGroups/{options.resource_group}"
            print(
                f"cluster {cluster_id}: {result.ours} container groups of acinode in {where}, "
                f"{len(result.leftovers)} left behind",
                file=out,
            )
            if not result.leftovers:
                return 0
            for line in _table(result.leftovers):
                print(line, file=out)
            if not options.delete:
                print("dry run: nothing deleted (add --delete to delete these groups)", file=out)
                return 0
            failed = 0
            for leftover in result.leftovers:
                try:
                    await aci.delete(types.ContainerGroupName(leftover.group))
                    print(f"deleted {leftover.group}", file=out)
                except errors.AcinodeError as err:
                    failed += 1
                    print(f"could not delete {leftover.group}: {err}", file=out)
            return 1 if failed else 0
    finally:
        if kube is not None:
            await kube.close()


def run(options: GcOptions, out: TextIO) -> int:
    try:
        return asyncio.run(run_async(options, out))
    except errors.AcinodeError as err:
        print(f"acinode gc: {err}", file=out)
        return 2
