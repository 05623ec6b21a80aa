"""A private CA and a server certificate for loopback, so clients take the same HTTPS path as against Azure.

The CA is kept in the state folder and reused across restarts (clients keep trusting ``ca.pem``); the server
certificate is reissued when missing, expiring or not covering the listen address.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
CERT_FILE = "server.pem"
KEY_FILE = "server-key.pem"
_VALIDITY = dt.timedelta(days=365)


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _is_fresh(cert: x509.Certificate) -> bool:
    return cert.not_valid_after_utc - dt.datetime.now(dt.UTC) > dt.timedelta(days=1)


def _load_ca(state_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None:
    try:
        cert = x509.load_pem_x509_certificate((state_dir / CA_FILE).read_bytes())
        key = serialization.load_pem_private_key((state_dir / CA_KEY_FILE).read_bytes(), None)
    except (OSError, ValueError):
        return None
    if not isinstance(key, ec.EllipticCurvePrivateKey) or not _is_fresh(cert):
        return None
    return cert, key


def _new_ca(state_dir: Path) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "acinode emulator CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                key_cert_sign=True,
                crl_sign=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_private(state_dir / CA_KEY_FILE, _key_pem(key))
    _write_private(state_dir / CA_FILE, cert.public_bytes(serialization.Encoding.PEM))
    return cert, key


def _server_cert_ok(state_dir: Path, ca: x509.Certificate, host: str) -> bool:
    try:
        cert = x509.load_pem_x509_certificate((state_dir / CERT_FILE).read_bytes())
        (state_dir / KEY_FILE).stat()
    except (OSError, ValueError):
        return False
    if cert.issuer != ca.subject or not _is_fresh(cert):
        return False
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return ipaddress.ip_address(host) in san.get_values_for_type(x509.IPAddress)


def ensure_certificates(state_dir: Path, host: str) -> Path:
    """Create (or reuse) the CA and a server certificate for ``host``, localhost, 127.0.0.1: ca.pem."""
    state_dir.mkdir(parents=True, exist_ok=True)
    loaded = _load_ca(state_dir)
    ca_cert, ca_key = loaded if loaded else _new_ca(state_dir)
    if loaded and _server_cert_ok(state_dir, ca_cert, host):
        return state_dir / CA_FILE
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    addresses = {ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address(host)}
    san: list[x509.GeneralName] = [x509.DNSName("localhost")]
    san += [x509.IPAddress(a) for a in sorted(addresses, key=str)]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(_authority_key_id(ca_cert, ca_key), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    _write_private(state_dir / KEY_FILE, _key_pem(key))
    _write_private(state_dir / CERT_FILE, cert.public_bytes(serialization.Encoding.PEM))
    return state_dir / CA_FILE


def server_context(state_dir: Path) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(state_dir / CERT_FILE, state_dir / KEY_FILE)
    return context


def _authority_key_id(
    ca_cert: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey
) -> x509.AuthorityKeyIdentifier:
    """The CA's own key id when it has one (CAs made by other tools, e.g. Go's SHA-256-based ids), so that
    OpenSSL can match issuer and certificate; else the id derived from its public key."""
    try:
        ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        return x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski)
