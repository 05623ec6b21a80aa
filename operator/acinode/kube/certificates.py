"""CertificateSigningRequests (``certificates.k8s.io/v1``): how the kubelet API asks the cluster for a serving
certificate, as a kubelet does with ``--rotate-server-certificates``.

Create-and-read only: the operator creates a CSR, reads it until it is approved and issued (or denied, or failed),
and never approves anything itself. The chart grants ``create``, ``get`` and ``watch`` on CSRs and ``create`` on
the ``signers`` resource for ``kubernetes.io/kubelet-serving``.
"""

from __future__ import annotations

import base64
import dataclasses
from collections.abc import Sequence
from typing import Any, Protocol

from acinode.kube import names

JsonObject = dict[str, Any]
GROUP_VERSION = "certificates.k8s.io/v1"
CSRS = names.group_path(GROUP_VERSION, "certificatesigningrequests")
KUBELET_SERVING_SIGNER = "kubernetes.io/kubelet-serving"


class CsrApi(Protocol):
    """The verbs CSRs need (``KubeClient.create``/``get``)."""

    async def create(self, path: str, body: JsonObject) -> JsonObject: ...

    async def get(self, path: str, params: Any = None) -> JsonObject: ...


@dataclasses.dataclass(frozen=True)
class CsrState:
    """Where a CSR stands: its name, the issued certificate (PEM) once there is one, and a refusal if any."""

    name: str
    certificate_pem: bytes | None = None
    refusal: str | None = None
    """``Denied: <reason>: <message>`` or ``Failed: …`` when an approver denied it or the signer failed it."""
    approved: bool = False

    @property
    def pending(self) -> bool:
        return self.certificate_pem is None and self.refusal is None


def csr_path(name: str) -> str:
    return names.group_path(GROUP_VERSION, "certificatesigningrequests", name)


def state_of(csr: JsonObject) -> CsrState:
    """Read a CSR object's status."""
    name = str((csr.get("metadata") or {}).get("name", ""))
    status = csr.get("status") or {}
    refusal = None
    approved = False
    for condition in status.get("conditions") or []:
        kind = condition.get("type")
        if kind == "Approved" and condition.get("status", "True") == "True":
            approved = True
        if kind in ("Denied", "Failed") and condition.get("status", "True") == "True":
            refusal = f"{kind}: {condition.get('reason', '')}: {condition.get('message', '')}".rstrip(": ")
    encoded = status.get("certificate")
    certificate = base64.b64decode(encoded) if encoded else None
    return CsrState(name, certificate or None, refusal, approved)


async def create_csr(
    kube: CsrApi,
    generate_name: str,
    request_pem: bytes,
    *,
    signer_name: str,
    usages: Sequence[str],
    expiration_seconds: int | None = None,
) -> CsrState:
    """Create a CSR named ``generate_name`` + a random suffix; returns its first state. Errors of the API server
    propagate (PermissionDeniedError without the RBAC)."""
    spec: JsonObject = {
        "request": base64.b64encode(request_pem).decode(),
        "signerName": signer_name,
        "usages": list(usages),
    }
    if expiration_seconds:
        spec["expirationSeconds"] = int(expiration_seconds)
    created = await kube.create(
        CSRS,
        {
            "apiVersion": GROUP_VERSION,
            "kind": "CertificateSigningRequest",
            "metadata": {"generateName": generate_name},
            "spec": spec,
        },
    )
    return state_of(created)


async def read_csr(kube: CsrApi, name: str) -> CsrState:
    """The CSR's current state. NotFoundError once it is gone (the API server removes old CSRs)."""
    csr = await kube.get(csr_path(name))
    names.check_identity(csr, kind="CertificateSigningRequest", namespace=None, name=name)
    return state_of(csr)
