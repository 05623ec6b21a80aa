"""Starting the kubelet API: settings from the environment and flags, serving certificates, client CAs, and a
busy port or a bad certificate logged without stopping the operator."""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import pytest
from cryptography import x509
from kubelet_builders import FakeReviewer, KubeletPki

from acinode import errors, operator, settings
from acinode.kubelet import server, tls


def test_kubelet_and_metrics_settings_come_from_the_environment() -> None:
    loaded = settings.settings_from_environment(
        {
            "ACINODE_KUBELET_ANONYMOUS": "true",
            "ACINODE_KUBELET_CLIENT_CA_PATH": "/etc/ca.crt",
            "ACINODE_KUBELET_LOG_FOLLOW_INTERVAL_SECONDS": "2.5",
            "ACINODE_METRICS_PORT": "0",
        }
    )
    assert loaded.kubelet.anonymous is True
    assert loaded.kubelet.client_ca_path == "/etc/ca.crt"
    assert loaded.kubelet.log_follow_interval_seconds == 2.5
    assert loaded.metrics.port == 0
    assert settings.Settings().kubelet.anonymous is False, "anonymous requests are refused by default"


def test_flags_beat_the_environment() -> None:
    loaded = settings.settings_from_environment(
        {"ACINODE_NODE_KUBELET_PORT": "10260", "ACINODE_METRICS_PORT": "9"}
    )
    flagged = operator.with_flags(loaded, operator.RunOptions(kubelet_port=10300, metrics_port=9100))
    assert (flagged.node.kubelet_port, flagged.metrics.port) == (10300, 9100)
    assert operator.with_flags(loaded, operator.RunOptions()) == loaded


def test_a_generated_certificate_names_the_node_ip() -> None:
    generated = tls.serving_certificate(settings.KubeletSettings(), "10.1.2.3")
    cert = x509.load_pem_x509_certificate(generated.cert_pem)
    names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert ipaddress.ip_address("10.1.2.3") in names.get_values_for_type(x509.IPAddress)
    assert "localhost" in names.get_values_for_type(x509.DNSName)


def test_certificate_files_are_used_as_given(tmp_path: Path) -> None:
    generated = tls.self_signed_certificate(("127.0.0.1",), ())
    (tmp_path / "tls.crt").write_bytes(generated.cert_pem)
    (tmp_path / "tls.key").write_bytes(generated.key_pem)
    kubelet = settings.KubeletSettings(
        cert_path=str(tmp_path / "tls.crt"), key_path=str(tmp_path / "tls.key")
    )
    assert tls.serving_certificate(kubelet, "10.0.0.1") == generated
    with pytest.raises(errors.ConfigurationError):
        tls.serving_certificate(settings.KubeletSettings(cert_path=str(tmp_path / "tls.crt")), "10.0.0.1")


async def test_the_client_ca_comes_from_the_clusters_published_bundle() -> None:
    class Kube:
        async def get(self, path: str) -> dict[str, object]:
            assert path == tls.CLIENT_CA_CONFIGMAP
            return {"data": {"client-ca-file": "PEM"}}

    assert await tls.client_ca_bundle(settings.KubeletSettings(), Kube()) == "PEM"  # type: ignore[arg-type]
    off = settings.KubeletSettings(client_ca_from_cluster=False)
    assert await tls.client_ca_bundle(off, Kube()) is None  # type: ignore[arg-type]


async def test_an_unreadable_cluster_ca_leaves_tokens_only() -> None:
    class Kube:
        async def get(self, path: str) -> dict[str, object]:
            raise errors.PermissionDeniedError("configmaps is forbidden")

    assert await tls.client_ca_bundle(settings.KubeletSettings(), Kube()) is None  # type: ignore[arg-type]


async def test_a_busy_port_is_logged_and_not_fatal(pki: KubeletPki, caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        kubelet = settings.KubeletSettings(address="127.0.0.1", client_ca_path=str(pki.ca_path))
        busy = server.KubeletServer(
            lambda: [], None, kubelet, internal_ip="127.0.0.1", port=port, reviewer=FakeReviewer()
        )
        assert await busy.start() is False
    assert busy.port is None
    assert "kubelet API not served" in caplog.text


async def test_a_bad_certificate_is_logged_and_not_fatal(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "bad.crt").write_text("not a certificate")
    (tmp_path / "bad.key").write_text("not a key")
    kubelet = settings.KubeletSettings(
        cert_path=str(tmp_path / "bad.crt"), key_path=str(tmp_path / "bad.key")
    )
    broken = server.KubeletServer(
        lambda: [], None, kubelet, internal_ip="127.0.0.1", port=0, reviewer=FakeReviewer()
    )
    assert await broken.start() is False
    assert "kubelet API not served" in caplog.text
