"""The tags that tie a container group to its pod, node and cluster, and reading them back.

The reconciler lists groups and decides ownership from tags alone: a group is acinode's only when it carries
our cluster id and node name, and the pod uid tag tells an old group from a new pod reusing the same name.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from acinode import types
from acinode.mapping import objects, placement, problems

TAG_CLUSTER_ID = "acinode.cluster-id"
TAG_NODE = "acinode.node"
TAG_NAMESPACE = "acinode.namespace"
TAG_POD = "acinode.pod"
TAG_POD_UID = "acinode.pod-uid"
TAG_CREATED = "acinode.created"
#: Copied pod labels are tagged ``acinode.label.<key>``, ``/`` in the key becoming ``_`` (ARM forbids ``/``).
LABEL_TAG_PREFIX = "acinode.label."

OWN_TAGS = (TAG_CLUSTER_ID, TAG_NODE, TAG_NAMESPACE, TAG_POD, TAG_POD_UID, TAG_CREATED)

#: ARM limits (azure-resource-manager tag-resources): 50 tags, names ≤ 512, values ≤ 256 characters.
MAX_TAGS = 50
MAX_TAG_NAME_LENGTH = 512
MAX_TAG_VALUE_LENGTH = 256
_FORBIDDEN_IN_TAG_NAMES = set("<>%&\\?/")


@dataclasses.dataclass(frozen=True)
class PodIdentity:
    """Which pod a group was created for, as read from its tags."""

    cluster_id: types.ClusterId
    node_name: types.NodeName
    namespace: str
    name: str
    uid: types.PodUid
    created: str | None = None
    """The pod's creationTimestamp (RFC 3339), when tagged."""


def label_tag_name(label_key: str) -> str:
    name = LABEL_TAG_PREFIX + label_key.replace("/", "_")
    return "".join("_" if ch in _FORBIDDEN_IN_TAG_NAMES else ch for ch in name)


def is_copied_label(label_key: str, patterns: tuple[str, ...]) -> bool:
    return any(
        label_key.startswith(pattern[:-1]) if pattern.endswith("*") else label_key == pattern
        for pattern in patterns
    )


def _check_custom_tags(custom_tags: Mapping[str, str], path: str, found: problems.Problems) -> None:
    for key, value in custom_tags.items():
        if key in OWN_TAGS or key.startswith(LABEL_TAG_PREFIX):
            # VN2 drops such a pair silently; here it is refused, since these tags decide group ownership.
            found.add(path, f"tag {key!r} is acinode's own (it ties the group to its pod and cluster)")
        elif len(key) > MAX_TAG_NAME_LENGTH or _FORBIDDEN_IN_TAG_NAMES & set(key):
            found.add(
                path,
                f"tag name {key[:64]!r} is not valid in ARM (≤ {MAX_TAG_NAME_LENGTH} characters, none of <>%&\\?/)",
            )
        elif len(value) > MAX_TAG_VALUE_LENGTH:
            found.add(
                path, f"the value of tag {key!r} is longer than ARM's {MAX_TAG_VALUE_LENGTH} characters"
            )


def tags_from_pod(
    pod: objects.Pod,
    where: placement.GroupPlacement,
    found: problems.Problems,
    custom_tags: Mapping[str, str] | None = None,
    custom_tags_path: str = "metadata.annotations",
) -> dict[str, str]:
    """The group's tags: VirtualNode extras, allowlisted labels, the pod's custom tags (VN2 ``customtags``: the
    pod's value wins over the node's, as in VN2), then acinode's own (which always win)."""
    metadata = pod.get("metadata", {})
    tags = dict(where.extra_tags)
    for key, value in sorted(metadata.get("labels", {}).items()):
        if is_copied_label(key, where.copied_labels):
            tags[label_tag_name(key)] = value[:MAX_TAG_VALUE_LENGTH]
    if custom_tags:
        _check_custom_tags(custom_tags, custom_tags_path, found)
        tags.update(custom_tags)
    tags[TAG_CLUSTER_ID] = where.cluster_id
    tags[TAG_NODE] = where.node_name
    tags[TAG_NAMESPACE] = metadata.get("namespace", "default")
    tags[TAG_POD] = metadata.get("name", "")
    tags[TAG_POD_UID] = metadata.get("uid", "")
    if metadata.get("creationTimestamp"):
        tags[TAG_CREATED] = metadata["creationTimestamp"]
    if len(tags) > MAX_TAGS:
        found.add(
            "metadata.labels",
            f"the group would carry {len(tags)} tags (acinode's own, the VirtualNode's extra tags, the pod's "
            f"custom tags and the copied labels); ARM allows {MAX_TAGS}",
        )
    return tags


def pod_identity_from_tags(tags: Mapping[str, str] | None) -> PodIdentity | None:
    """The pod a group belongs to, or None when the group does not carry acinode's tags."""
    if not tags:
        return None
    required = (TAG_CLUSTER_ID, TAG_NODE, TAG_NAMESPACE, TAG_POD, TAG_POD_UID)
    if not all(tags.get(key) for key in required):
        return None
    return PodIdentity(
        cluster_id=types.ClusterId(tags[TAG_CLUSTER_ID]),
        node_name=types.NodeName(tags[TAG_NODE]),
        namespace=tags[TAG_NAMESPACE],
        name=tags[TAG_POD],
        uid=types.PodUid(tags[TAG_POD_UID]),
        created=tags.get(TAG_CREATED),
    )


def is_managed_group(
    tags: Mapping[str, str] | None, cluster_id: types.ClusterId, node_name: types.NodeName | None = None
) -> bool:
    """Whether acinode may touch this group: tagged with our cluster (and this node, when given)."""
    identity = pod_identity_from_tags(tags)
    if identity is None or identity.cluster_id != cluster_id:
        return False
    return node_name is None or identity.node_name == node_name
