"""How the client trusts the API server and presents itself: CA, insecure mode, client certificates, secrets."""

from __future__ import annotations

import datetime
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from acinode.kube import connection


def self_signed(common_name: str) -> tuple[bytes, bytes]:
    """A PEM certificate (a CA) and its PEM private key."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return certificate.public_bytes(serialization.Encoding.PEM), key_pem


@pytest.fixture(scope="module")
def cluster_ca() -> tuple[bytes, bytes]:
    return self_signed("cluster-ca")


def test_the_server_certificate_is_verified_by_default(cluster_ca: tuple[bytes, bytes]) -> None:
    context = connection.KubeConnection("https://127.0.0.1:6443", ca_data=cluster_ca[0]).ssl_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname
    assert any(ca["subject"] == ((("commonName", "cluster-ca"),),) for ca in context.get_ca_certs())


def test_the_ca_is_read_from_a_file(tmp_path: Path, cluster_ca: tuple[bytes, bytes]) -> None:
    ca_file = tmp_path / "ca.crt"
    ca_file.write_bytes(cluster_ca[0])
    context = connection.KubeConnection("https://127.0.0.1:6443", ca_path=str(ca_file)).ssl_context()
    assert any(ca["subject"] == ((("commonName", "cluster-ca"),),) for ca in context.get_ca_certs())


def test_insecure_skips_verification() -> None:
    context = connection.KubeConnection("https://127.0.0.1:6443", insecure=True).ssl_context()
    assert context.verify_mode == ssl.CERT_NONE
    assert not context.check_hostname


def test_an_in_memory_client_certificate_is_loaded(cluster_ca: tuple[bytes, bytes]) -> None:
    certificate, key = self_signed("system:node:acinode")
    conn = connection.KubeConnection(
        "https://127.0.0.1:6443", ca_data=cluster_ca[0], certificate_data=certificate, private_key_data=key
    )
    conn.ssl_context()  # raises ssl.SSLError if the pair was not loaded


def test_a_client_certificate_from_files_is_loaded(tmp_path: Path) -> None:
    certificate, key = self_signed("system:node:acinode")
    (tmp_path / "c.crt").write_bytes(certificate)
    (tmp_path / "c.key").write_bytes(key)
    conn = connection.KubeConnection(
        "https://127.0.0.1:6443",
        insecure=True,
        certificate_path=str(tmp_path / "c.crt"),
        private_key_path=str(tmp_path / "c.key"),
    )
    conn.ssl_context()


def test_a_mismatched_key_is_refused() -> None:
    certificate, _ = self_signed("a")
    _, other_key = self_signed("b")
    conn = connection.KubeConnection(
        "https://127.0.0.1:6443", insecure=True, certificate_data=certificate, private_key_data=other_key
    )
    with pytest.raises(ssl.SSLError):
        conn.ssl_context()


def test_secrets_stay_out_of_the_repr() -> None:
    conn = connection.KubeConnection(
        "https://127.0.0.1:6443", token="s3cret", certificate_data=b"CERT", private_key_data=b"KEY"
    )
    assert "s3cret" not in repr(conn)
    assert "KEY" not in repr(conn)
    assert "CERT" not in repr(conn)


def test_with_identity_replaces_the_client_certificate() -> None:
    certificate, key = self_signed("system:node:acinode")
    conn = connection.KubeConnection(
        "https://127.0.0.1:6443", insecure=True, certificate_path="/old.crt", private_key_path="/old.key"
    )
    assert conn.with_identity(None) is conn
    replaced = conn.with_identity((certificate, key))
    assert (replaced.certificate_path, replaced.private_key_path) == (None, None)
    assert (replaced.certificate_data, replaced.private_key_data) == (certificate, key)
    replaced.ssl_context()
