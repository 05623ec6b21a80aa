"""TLS of the kubelet API: the serving certificate (from files, or generated and self-signed) and the client CA.

The API server connects to a kubelet by IP address and, unless started with ``--kubelet-certificate-authority``,
does not verify its certificate; a generated certificate still names the node IP so that clients which do verify
(with the certificate pinned) can. Client certificates are requested but optional: a presented certificate must
chain to the client CA or the handshake fails (Go's ``VerifyClientCertIfGiven``, as a kubelet with a client CA);
without a client CA certificates are not requested at all, and only bearer tokens authenticate.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import ipaddress
import logging
import os
import socket
import ssl
import tempfile
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from acinode import errors, settings
from acinode.kube import client
from acinode.kube import cluster as kube_cluster

logger = logging.getLogger(__name__)

CLIENT_CA_CONFIGMAP = kube_cluster.CLIENT_CA_CONFIGMAP
_VALIDITY = dt.timedelta(days=365)


@dataclasses.dataclass(frozen=True)
class ServingCertificate:
    cert_pem: bytes
    key_pem: bytes


def self_signed_certificate(
    ip_addresses: tuple[str, ...], dns_names: tuple[str, ...], now: dt.datetime | None = None
) -> ServingCertificate:
    """A self-signed EC P-256 server certificate for the given addresses, valid for a year."""
    now = now or dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"acinode-kubelet@{int(now.timestamp())}")])
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dict.fromkeys(dns_names) if n]
    for ip in dict.fromkeys(ip_addresses):
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(ip)))
        except ValueError:
            sans.append(x509.DNSName(ip))
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return ServingCertificate(cert.public_bytes(serialization.Encoding.PEM), key_pem)


def serving_certificate(kubelet: settings.KubeletSettings, internal_ip: str) -> ServingCertificate:
    """The configured certificate files, or a generated self-signed certificate for the node IP."""
    if kubelet.cert_path or kubelet.key_path:
        if not (kubelet.cert_path and kubelet.key_path):
            raise errors.ConfigurationError("the kubelet API needs both cert_path and key_path, or neither")
        try:
            return ServingCertificate(
                Path(kubelet.cert_path).read_bytes(), Path(kubelet.key_path).read_bytes()
            )
        except OSError as err:
            raise errors.ConfigurationError(f"kubelet serving certificate: {err}") from err
    ips = (internal_ip, "127.0.0.1")
    return self_signed_certificate(ips, ("localhost", socket.gethostname()))


def _read_text(path: str, what: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as err:
        raise errors.ConfigurationError(f"{what}: {err}") from err


async def client_ca_bundle(kubelet: settings.KubeletSettings, kube: client.KubeClient | None) -> str | None:
    """PEM bundle of the CAs whose client certificates are trusted, or None (tokens only)."""
    if kubelet.client_ca_path:
        return _read_text(kubelet.client_ca_path, "kubelet client CA")
    if not kubelet.client_ca_from_cluster or kube is None:
        return None
    try:
        return await kube_cluster.client_ca_bundle(kube)
    except errors.AcinodeError as err:
        logger.warning("no client CA for the kubelet API (client certificates refused): %s", err)
        return None


def server_ssl_context(certificate: ServingCertificate, client_ca_pem: str | None) -> ssl.SSLContext:
    """TLS ≥ 1.2 with the serving certificate; verifies client certificates against ``client_ca_pem`` if given."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    load_certificate(context, certificate)
    if client_ca_pem:
        try:
            context.load_verify_locations(cadata=client_ca_pem)
        except (ssl.SSLError, ValueError) as err:
            raise errors.ConfigurationError(f"kubelet client CA unusable: {err}") from err
        context.verify_mode = ssl.CERT_OPTIONAL
    else:
        context.verify_mode = ssl.CERT_NONE
    return context


def load_certificate(context: ssl.SSLContext, certificate: ServingCertificate) -> None:
    """Make ``certificate`` the one ``context`` serves, from the next TLS handshake on (connections already
    established keep theirs). ConfigurationError if it or its key is unusable (the context is then unchanged)."""
    # ssl loads certificates from files only: write them to a private temporary folder, then remove it.
    with tempfile.TemporaryDirectory(prefix="acinode-kubelet-") as folder:
        cert_file, key_file = os.path.join(folder, "tls.crt"), os.path.join(folder, "tls.key")
        for path, data in ((cert_file, certificate.cert_pem), (key_file, certificate.key_pem)):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
        try:
            context.load_cert_chain(cert_file, key_file)
        except (ssl.SSLError, ValueError) as err:
            raise errors.ConfigurationError(f"kubelet serving certificate or key unusable: {err}") from err


def client_identity(peercert: object) -> tuple[str, tuple[str, ...]] | None:
    """User name (CN) and groups (O) of a verified client certificate, as Kubernetes reads them."""
    if not isinstance(peercert, dict):
        return None
    common_name = ""
    organizations: list[str] = []
    for rdn in peercert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                common_name = str(value)
            elif key == "organizationName":
                organizations.append(str(value))
    if not common_name:
        return None
    return common_name, tuple(organizations)
