"""The serving certificate from the cluster: a ``kubernetes.io/kubelet-serving`` CSR, approved by the cluster's usual
approvers, served by the TLS listener and rotated before it expires (a kubelet's ``--rotate-server-certificates``).

One CSR per operator replica: every virtual node of a replica is served by one listener on one IP and port, and
the API server connects to that IP without SNI, so one certificate has to be valid for all of them. What the
``kubernetes.io/kubelet-serving`` signer requires (kube-controller-manager's ``ValidateKubeletServingCSR``), the CSR
has: subject ``O=system:nodes``, ``CN=system:node:<name>`` (the first virtual node the replica serves, by name),
DNS and IP SANs only (every served node's name, which is its Node's ``Hostname`` address, and the host name; the
Node's ``InternalIP``), usages exactly ``digital signature`` and ``server auth`` (an EC P-256 key).
kube-controller-manager never approves kubelet-serving CSRs itself, and node-CSR approvers that check that the
requester *is* the node (``system:node:<name>``, e.g. kubelet-csr-approver) refuse it, since the operator's service
account asks: approve it with ``kubectl certificate approve <name>`` (or a policy that trusts the operator).

Until a certificate is issued, the self-signed one is served and one line says which CSR awaits approval; without
the RBAC to create CSRs, one line says so and the self-signed certificate stays. An issued certificate is served
from the next TLS handshake on, and a new CSR is made at ``serving_certificate_rotation_fraction`` (80 %) of its
life; the old certificate is served until the new one is issued, and the self-signed one again if it expires
first. A denied or failed CSR is logged once and not asked again (restart the operator to ask again); a CSR removed
before it was issued (the API server's cleaner drops pending CSRs after 24 h) is asked again.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
import socket
import ssl
from collections.abc import Awaitable, Callable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from acinode import clock, errors, settings
from acinode.kube import certificates as kube_certificates
from acinode.kubelet import targets, tls

logger = logging.getLogger(__name__)

USAGES = ("digital signature", "server auth")
"""Exactly what the kubelet-serving signer accepts for a non-RSA key."""
GENERATE_NAME = "acinode-kubelet-serving-"
_RETRY_SECONDS = 30.0
"""Wait before trying again after a transient failure of the API server."""

Sleep = Callable[[float], Awaitable[None]]


def certificate_request(
    node_names: Sequence[str], internal_ip: str, host_name: str
) -> tuple[ec.EllipticCurvePrivateKey, bytes]:
    """A new key and the PEM CSR for it, as the kubelet-serving signer wants one."""
    key = ec.generate_private_key(ec.SECP256R1())
    ordered = sorted(dict.fromkeys(n for n in node_names if n))
    common_name = f"system:node:{ordered[0] if ordered else host_name}"
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dict.fromkeys([*ordered, host_name]) if n]
    try:
        sans.append(x509.IPAddress(ipaddress.ip_address(internal_ip)))
    except ValueError:
        sans.append(x509.DNSName(internal_ip))
    request = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, "system:nodes"),
                    x509.NameAttribute(NameOID.COMMON_NAME, common_name),
                ]
            )
        )
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, request.public_bytes(serialization.Encoding.PEM)


def _validity(cert_pem: bytes) -> tuple[dt.datetime, dt.datetime, str]:
    cert = x509.load_pem_x509_certificate(cert_pem)
    return cert.not_valid_before_utc, cert.not_valid_after_utc, cert.issuer.rfc4514_string()


def _matches_key(cert_pem: bytes, key: ec.EllipticCurvePrivateKey) -> bool:
    cert = x509.load_pem_x509_certificate(cert_pem)
    ours = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    theirs = cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return ours == theirs


class ServingCertificates:
    """Keeps the listener's certificate: self-signed first, then the cluster's, rotated (``run`` until cancelled)."""

    def __init__(
        self,
        kube: kube_certificates.CsrApi,
        kubelet: settings.KubeletSettings,
        context: ssl.SSLContext,
        self_signed: tls.ServingCertificate,
        directory: targets.Directory,
        *,
        internal_ip: str,
        host_name: str | None = None,
        now: Callable[[], dt.datetime] = clock.utc_now,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.kube = kube
        self.settings = kubelet
        self.context = context
        self.self_signed = self_signed
        self.directory = directory
        self.internal_ip = internal_ip
        self.host_name = host_name if host_name is not None else socket.gethostname()
        self.now = now
        self.sleep = sleep
        self.serving: str = "self-signed"
        """What the listener serves: ``self-signed``, or ``csr/<name>`` once issued."""
        self.not_before: dt.datetime | None = None
        self.not_after: dt.datetime | None = None
        """Validity of the served CSR certificate (None while self-signed)."""
        self.requested: list[str] = []
        """Names of the CSRs made, oldest first."""

    async def run(self) -> None:
        """Request, serve and rotate until cancelled, or until asking again is pointless (no RBAC, refused)."""
        node_names = await self._served_node_names()
        while True:
            outcome = await self._request_and_serve(node_names)
            if outcome == "stop":
                return
            if outcome == "retry":
                await self.sleep(_RETRY_SECONDS)
                continue
            await self._sleep_until_rotation()
            node_names = await self._served_node_names()

    async def _served_node_names(self) -> list[str]:
        while True:
            found = sorted(str(node.node_name) for node in self.directory())
            if found:
                return found
            await self.sleep(self.settings.serving_csr_poll_seconds)

    async def _request_and_serve(self, node_names: Sequence[str]) -> str:
        """One CSR through to a served certificate: "served", "retry" (transient failure) or "stop"."""
        key, request_pem = certificate_request(node_names, self.internal_ip, self.host_name)
        try:
            state = await kube_certificates.create_csr(
                self.kube,
                GENERATE_NAME,
                request_pem,
                signer_name=kube_certificates.KUBELET_SERVING_SIGNER,
                usages=USAGES,
                expiration_seconds=self.settings.serving_csr_expiration_seconds,
            )
        except errors.PermissionDeniedError as err:
            logger.warning(
                "kubelet API: serving the self-signed certificate: the operator may not create "
                "CertificateSigningRequests for signer %s (%s)",
                kube_certificates.KUBELET_SERVING_SIGNER,
                err,
            )
            return "stop"
        except errors.AcinodeError as err:
            logger.warning("kubelet API: creating the serving certificate's CSR failed, retrying: %s", err)
            return "retry"
        self.requested.append(state.name)
        serving = "the self-signed certificate" if self.not_after is None else "the current certificate"
        logger.info(
            "kubelet API: serving %s until CertificateSigningRequest %s (signer %s, for %s) is approved: "
            "kubectl certificate approve %s",
            serving,
            state.name,
            kube_certificates.KUBELET_SERVING_SIGNER,
            ", ".join(node_names),
            state.name,
        )
        issued = await self._await_certificate(state.name)
        if issued is None:
            return "retry"
        if issued.refusal is not None:
            logger.warning(
                "kubelet API: CertificateSigningRequest %s was refused (%s): serving %s; restart the operator "
                "to ask again",
                issued.name,
                issued.refusal,
                "the self-signed certificate" if self.not_after is None else "the current certificate",
            )
            return "stop"
        assert issued.certificate_pem is not None
        if not _matches_key(issued.certificate_pem, key):
            logger.error(
                "kubelet API: the certificate issued for CSR %s is not for our key: ignored", issued.name
            )
            return "stop"
        key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        try:
            tls.load_certificate(self.context, tls.ServingCertificate(issued.certificate_pem, key_pem))
        except errors.ConfigurationError as err:
            logger.error("kubelet API: the certificate issued for CSR %s is unusable: %s", issued.name, err)
            return "stop"
        not_before, not_after, issuer = _validity(issued.certificate_pem)
        self.serving = f"csr/{issued.name}"
        self.not_before, self.not_after = not_before, not_after
        logger.info(
            "kubelet API: serving the certificate issued for CSR %s by %s, valid until %s",
            issued.name,
            issuer,
            not_after.isoformat(),
        )
        return "served"

    async def _await_certificate(self, name: str) -> kube_certificates.CsrState | None:
        """Poll the CSR until it is issued or refused (its state), or gone (None). Falls back to the self-signed
        certificate if the served one expires meanwhile."""
        while True:
            try:
                state = await kube_certificates.read_csr(self.kube, name)
            except errors.NotFoundError:
                logger.info("kubelet API: CertificateSigningRequest %s is gone before it was issued", name)
                return None
            except errors.AcinodeError as err:
                logger.debug("reading CSR %s failed: %s", name, err)
            else:
                if not state.pending:
                    return state
            if self.not_after is not None and self.now() >= self.not_after:
                tls.load_certificate(self.context, self.self_signed)
                logger.warning(
                    "kubelet API: the certificate of %s expired before CSR %s was issued: serving the "
                    "self-signed certificate",
                    self.serving,
                    name,
                )
                self.serving, self.not_before, self.not_after = "self-signed", None, None
            await self.sleep(self.settings.serving_csr_poll_seconds)

    def rotation_time(self) -> dt.datetime | None:
        """When the served CSR certificate is to be replaced (None while self-signed)."""
        if self.not_before is None or self.not_after is None:
            return None
        life = (self.not_after - self.not_before).total_seconds()
        fraction = min(max(self.settings.serving_certificate_rotation_fraction, 0.05), 1.0)
        return self.not_before + dt.timedelta(seconds=life * fraction)

    async def _sleep_until_rotation(self) -> None:
        rotate_at = self.rotation_time()
        while rotate_at is not None and (remaining := (rotate_at - self.now()).total_seconds()) > 0:
            await self.sleep(min(remaining, 3600.0))
