"""Registry access: image pull secrets to ACI registry credentials, identity-based ACR pull, and the group's
managed identities.

ACI refuses more credentials than containers (``MoreImageRegistryCredentialsThanContainers``) and wants bare
host names as servers, so only the registries the pod's images come from get a credential, keyed by the
normalised host (``https://index.docker.io/v1/`` → ``index.docker.io``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re

from azure.mgmt.containerinstance import models

from acinode.mapping import objects, options, problems, references

DOCKER_HUB = "index.docker.io"
_DOCKER_HUB_ALIASES = {"docker.io", "index.docker.io", "registry-1.docker.io", "registry.hub.docker.com"}
_ACR = re.compile(r"\.azurecr\.(io|cn|us|de)$")
#: The user name ACR expects with an identity token (``identitytoken`` in a docker config).
ACR_TOKEN_USER = "00000000-0000-0000-0000-000000000000"
DOCKER_CONFIG_JSON = "kubernetes.io/dockerconfigjson"
DOCKER_CFG = "kubernetes.io/dockercfg"


def image_registry(image: str) -> str:
    """The registry host of an image reference, as Docker resolves it (Docker Hub when none is named)."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        host = first.lower()
        return DOCKER_HUB if host in _DOCKER_HUB_ALIASES else host
    return DOCKER_HUB


def registry_server(key: str) -> str:
    """A docker config key (``https://host/v1/``, ``host``) as the bare host ACI expects."""
    host = re.sub(r"^[a-z]+://", "", key.strip().lower()).split("/", 1)[0]
    return DOCKER_HUB if host in _DOCKER_HUB_ALIASES else host


def is_acr(server: str) -> bool:
    return bool(_ACR.search(server.split(":", 1)[0]))


def _auths(secret: objects.Secret) -> dict[str, dict[str, str]] | None:
    data = references.secret_data(secret)
    kind = secret.get("type", "")
    try:
        if kind == DOCKER_CONFIG_JSON:
            parsed = json.loads(data.get(".dockerconfigjson", b"{}"))
            auths = parsed.get("auths", {}) if isinstance(parsed, dict) else None
        elif kind == DOCKER_CFG:
            auths = json.loads(data.get(".dockercfg", b"{}"))
        else:
            return None
    except ValueError:
        return None
    if not isinstance(auths, dict):
        return None
    return {key: value for key, value in auths.items() if isinstance(value, dict)}


def _credential(server: str, entry: dict[str, str]) -> models.ImageRegistryCredential | None:
    username, password = entry.get("username"), entry.get("password")
    if entry.get("identitytoken"):
        username, password = ACR_TOKEN_USER, entry["identitytoken"]
    elif not (username and password) and entry.get("auth"):
        try:
            username, _, password = base64.b64decode(entry["auth"]).decode().partition(":")
        except (binascii.Error, ValueError):
            return None
    if not username:
        return None
    return models.ImageRegistryCredential(server=server, username=username, password=password or None)


def basic_credentials(secret: objects.Secret) -> dict[str, tuple[str, str]]:
    """Registry host → (username, password) of a docker config pull secret, for a registry's basic or token
    auth. Identity tokens (ACR refresh tokens) are left out: they are not passwords."""
    found: dict[str, tuple[str, str]] = {}
    for key, entry in (_auths(secret) or {}).items():
        credential = _credential(registry_server(key), entry)
        if credential is None or not credential.password or credential.username == ACR_TOKEN_USER:
            continue
        found.setdefault(registry_server(key), (str(credential.username), credential.password))
    return found


def aci_registry_credentials_from_pod(
    spec: objects.PodSpec,
    refs: references.ResolvedReferences,
    chosen: options.GroupOptions,
    found: problems.Problems,
) -> list[models.ImageRegistryCredential]:
    """One credential per registry the pod pulls from: from its pull secrets, else from the ACR identity."""
    images = [c.get("image", "") for c in [*spec.get("initContainers", []), *spec.get("containers", [])]]
    used = list(dict.fromkeys(image_registry(image) for image in images if image))
    credentials: dict[str, models.ImageRegistryCredential] = {}
    for index, pull_secret in enumerate(spec.get("imagePullSecrets", [])):
        name = pull_secret.get("name", "")
        secret = refs.secrets.get(name)
        if secret is None:
            continue  # a kubelet, too, pulls without a missing pull secret (the image may be public)
        auths = _auths(secret)
        if auths is None:
            found.add(
                f"spec.imagePullSecrets[{index}]",
                f"Secret {name!r} is not a readable {DOCKER_CONFIG_JSON} or {DOCKER_CFG} secret",
            )
            continue
        for key, entry in auths.items():
            server = registry_server(key)
            if server in used and server not in credentials:
                credential = _credential(server, entry)
                if credential is not None:
                    credentials[server] = credential
    if chosen.acr_identity:
        servers = chosen.acr_servers or tuple(s for s in used if is_acr(s) and s not in credentials)
        for server in servers:
            credentials[server] = models.ImageRegistryCredential(server=server, identity=chosen.acr_identity)
    return [credentials[server] for server in sorted(credentials)]


def aci_identity_from_options(chosen: options.GroupOptions) -> models.ContainerGroupIdentity | None:
    """The user-assigned identities to attach: those named, plus the one that pulls from ACR."""
    identities = list(
        dict.fromkeys([*chosen.identities, *([chosen.acr_identity] if chosen.acr_identity else [])])
    )
    if not identities:
        return None
    return models.ContainerGroupIdentity(
        type="UserAssigned",
        user_assigned_identities={identity: models.UserAssignedIdentities() for identity in identities},
    )
