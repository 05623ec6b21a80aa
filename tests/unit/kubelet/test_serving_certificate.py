"""The serving certificate from a ``kubernetes.io/kubelet-serving`` CSR: what is asked, what is served when it is
issued, refused, forbidden or gone, and the rotation at 80 % of its life, on a fake certificates API and a
virtual clock."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import logging
import ssl
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from kubelet_builders import FakeNode, fake_node

from acinode import errors, settings
from acinode.kube import certificates as kube_certificates
from acinode.kubelet import certificates, tls

LOGGER = "acinode.kubelet.certificates"


class FakeCertificatesApi:
    """``certificates.k8s.io/v1`` CSRs: created pending; the test issues (signs with its CA), denies or deletes."""

    def __init__(self, ca_key: ec.EllipticCurvePrivateKey, ca: x509.Certificate) -> None:
        self.ca_key, self.ca = ca_key, ca
        self.csrs: dict[str, dict[str, Any]] = {}
        self.created: list[dict[str, Any]] = []
        self.forbidden = False
        self.changed = asyncio.Event()

    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        assert path == kube_certificates.CSRS
        if self.forbidden:
            raise errors.PermissionDeniedError("certificatesigningrequests is forbidden")
        name = f"{body['metadata']['generateName']}{len(self.created)}"
        csr = {**body, "metadata": {"name": name}, "status": {}}
        self.csrs[name] = csr
        self.created.append(csr)
        self.changed.set()
        return csr

    async def get(self, path: str, params: Any = None) -> dict[str, Any]:
        name = path.rsplit("/", 1)[1]
        if name not in self.csrs:
            raise errors.NotFoundError(f"{name} not found")
        return self.csrs[name]

    def request(self, index: int = -1) -> x509.CertificateSigningRequest:
        return x509.load_pem_x509_csr(base64.b64decode(self.created[index]["spec"]["request"]))

    def issue(self, name: str, not_before: dt.datetime, seconds: float) -> None:
        request = x509.load_pem_x509_csr(base64.b64decode(self.csrs[name]["spec"]["request"]))
        sans = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        cert = (
            x509.CertificateBuilder()
            .subject_name(request.subject)
            .issuer_name(self.ca.subject)
            .public_key(request.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_before)
            .not_valid_after(not_before + dt.timedelta(seconds=seconds))
            .add_extension(x509.SubjectAlternativeName(list(sans)), critical=False)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .sign(self.ca_key, hashes.SHA256())
        )
        status = self.csrs[name]["status"]
        status["conditions"] = [{"type": "Approved", "status": "True", "reason": "KubectlApprove"}]
        status["certificate"] = base64.b64encode(cert.public_bytes(serialization.Encoding.PEM)).decode()

    def deny(self, name: str) -> None:
        self.csrs[name]["status"]["conditions"] = [
            {"type": "Denied", "status": "True", "reason": "NotOurs", "message": "who are you"}
        ]


class VirtualTime:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC)
        self.slept: list[float] = []

    def utc_now(self) -> dt.datetime:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += dt.timedelta(seconds=seconds)
        await asyncio.sleep(0)


def _ca() -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cluster CA")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1))
        .not_valid_after(now + dt.timedelta(days=3))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


@pytest.fixture
def api() -> FakeCertificatesApi:
    return FakeCertificatesApi(*_ca())


@pytest.fixture
def time() -> VirtualTime:
    return VirtualTime()


@pytest.fixture
def served_node() -> FakeNode:
    return fake_node("vn-b")


@pytest.fixture
def self_signed() -> tls.ServingCertificate:
    return tls.self_signed_certificate(("127.0.0.1",), ("localhost",))


@pytest.fixture
def context(self_signed: tls.ServingCertificate) -> ssl.SSLContext:
    return tls.server_ssl_context(self_signed, None)


@pytest.fixture
def keeper(
    api: FakeCertificatesApi,
    time: VirtualTime,
    served_node: FakeNode,
    context: ssl.SSLContext,
    self_signed: tls.ServingCertificate,
) -> certificates.ServingCertificates:
    nodes = [served_node, fake_node("vn-a")]
    return certificates.ServingCertificates(
        api,
        settings.KubeletSettings(serving_csr_poll_seconds=5.0, serving_csr_expiration_seconds=3600),
        context,
        self_signed,
        lambda: list(nodes),
        internal_ip="127.0.0.1",
        host_name="operator-0",
        now=time.utc_now,
        sleep=time.sleep,
    )


@pytest.fixture
async def running(keeper: certificates.ServingCertificates) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(keeper.run())
    yield task
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


async def until(predicate: Any) -> None:
    """Let the keeper run (its sleeps are virtual and yield) until ``predicate`` holds."""
    while not predicate():  # noqa: ASYNC110 (the keeper's virtual sleeps only yield: nothing to wait on)
        await asyncio.sleep(0)


async def served_certificate(context: ssl.SSLContext, ca: x509.Certificate | None) -> x509.Certificate:
    """Handshake with a server using ``context``; verify against ``ca`` (with the IP 127.0.0.1) when given."""
    server = await asyncio.start_server(lambda r, w: w.close(), "127.0.0.1", 0, ssl=context)
    port = server.sockets[0].getsockname()[1]
    client = ssl.create_default_context()
    if ca is None:
        client.check_hostname, client.verify_mode = False, ssl.CERT_NONE
    else:
        client.load_verify_locations(cadata=ca.public_bytes(serialization.Encoding.PEM).decode())
    try:
        _reader, writer = await asyncio.open_connection(
            "127.0.0.1", port, ssl=client, server_hostname="127.0.0.1"
        )
        der = writer.get_extra_info("ssl_object").getpeercert(binary_form=True)
        writer.close()
        return x509.load_der_x509_certificate(der)
    finally:
        server.close()


async def test_the_csr_is_what_the_kubelet_serving_signer_accepts(
    api: FakeCertificatesApi, running: asyncio.Task[None]
) -> None:
    await until(lambda: api.created)
    spec = api.created[0]["spec"]
    assert spec["signerName"] == "kubernetes.io/kubelet-serving"
    assert sorted(spec["usages"]) == ["digital signature", "server auth"]
    assert spec["expirationSeconds"] == 3600
    assert api.created[0]["metadata"] == {"name": "acinode-kubelet-serving-0"}
    request = api.request()
    assert request.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "system:nodes"
    assert request.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:vn-a"
    sans = request.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == ["vn-a", "vn-b", "operator-0"]
    assert [str(ip) for ip in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert request.is_signature_valid


async def test_until_approved_the_self_signed_certificate_is_served_and_one_line_says_which_csr(
    api: FakeCertificatesApi,
    keeper: certificates.ServingCertificates,
    context: ssl.SSLContext,
    time: VirtualTime,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    task = asyncio.create_task(keeper.run())
    await until(lambda: len(time.slept) > 20)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert keeper.serving == "self-signed"
    assert len(api.created) == 1
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert lines == [
        "kubelet API: serving the self-signed certificate until CertificateSigningRequest "
        "acinode-kubelet-serving-0 (signer kubernetes.io/kubelet-serving, for vn-a, vn-b) is approved: "
        "kubectl certificate approve acinode-kubelet-serving-0"
    ]
    served = await served_certificate(context, None)
    assert served.issuer.rfc4514_string().startswith("CN=acinode-kubelet@")


async def test_once_issued_the_cluster_signed_certificate_is_served_from_the_next_handshake(
    api: FakeCertificatesApi,
    keeper: certificates.ServingCertificates,
    running: asyncio.Task[None],
    context: ssl.SSLContext,
    time: VirtualTime,
) -> None:
    await until(lambda: api.created)
    api.issue("acinode-kubelet-serving-0", time.now - dt.timedelta(minutes=1), 3600)
    await until(lambda: keeper.serving == "csr/acinode-kubelet-serving-0")
    served = await served_certificate(context, api.ca)
    assert served.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:vn-a"


async def test_a_new_csr_is_made_at_80_percent_of_the_life_and_served_once_issued(
    api: FakeCertificatesApi,
    keeper: certificates.ServingCertificates,
    running: asyncio.Task[None],
    time: VirtualTime,
) -> None:
    await until(lambda: api.created)
    issued_at = time.now
    api.issue("acinode-kubelet-serving-0", issued_at, 1000)
    await until(lambda: len(api.created) == 2)
    rotation = keeper.rotation_time()
    assert rotation == issued_at.replace(microsecond=0) + dt.timedelta(seconds=800)
    assert rotation <= time.now <= rotation + dt.timedelta(seconds=5), "made at the rotation time"
    assert keeper.serving == "csr/acinode-kubelet-serving-0", (
        "the current one is served until the new one is issued"
    )
    api.issue("acinode-kubelet-serving-1", time.now, 1000)
    await until(lambda: keeper.serving == "csr/acinode-kubelet-serving-1")


async def test_an_expired_certificate_gives_way_to_the_self_signed_one_while_the_next_csr_waits(
    api: FakeCertificatesApi,
    keeper: certificates.ServingCertificates,
    running: asyncio.Task[None],
    time: VirtualTime,
    context: ssl.SSLContext,
    caplog: pytest.LogCaptureFixture,
) -> None:
    await until(lambda: api.created)
    api.issue("acinode-kubelet-serving-0", time.now, 100)
    await until(lambda: len(api.created) == 2)
    await until(lambda: keeper.serving == "self-signed")
    assert any("expired before CSR acinode-kubelet-serving-1" in r.getMessage() for r in caplog.records)
    served = await served_certificate(context, None)
    assert served.issuer.rfc4514_string().startswith("CN=acinode-kubelet@")


async def test_without_rbac_for_csrs_one_line_says_so_and_the_self_signed_stays(
    api: FakeCertificatesApi,
    keeper: certificates.ServingCertificates,
    caplog: pytest.LogCaptureFixture,
) -> None:
    api.forbidden = True
    await keeper.run()
    lines = [r.getMessage() for r in caplog.records if r.name == LOGGER]
    assert len(lines) == 1
    assert "may not create CertificateSigningRequests for signer kubernetes.io/kubelet-serving" in lines[0]
    assert keeper.serving == "self-signed"


async def test_a_denied_csr_is_logged_once_and_not_asked_again(
    api: FakeCertificatesApi, keeper: certificates.ServingCertificates, caplog: pytest.LogCaptureFixture
) -> None:
    task = asyncio.create_task(keeper.run())
    await until(lambda: api.created)
    api.deny("acinode-kubelet-serving-0")
    await task
    warnings = [r.getMessage() for r in caplog.records if r.name == LOGGER and r.levelno == logging.WARNING]
    assert warnings == [
        "kubelet API: CertificateSigningRequest acinode-kubelet-serving-0 was refused (Denied: NotOurs: who are "
        "you): serving the self-signed certificate; restart the operator to ask again"
    ]
    assert len(api.created) == 1
    assert keeper.serving == "self-signed"


async def test_a_csr_removed_before_it_was_issued_is_asked_again(
    api: FakeCertificatesApi, running: asyncio.Task[None]
) -> None:
    await until(lambda: api.created)
    del api.csrs["acinode-kubelet-serving-0"]
    await until(lambda: len(api.created) == 2)


async def test_no_csr_is_made_before_a_virtual_node_is_served(
    api: FakeCertificatesApi,
    time: VirtualTime,
    context: ssl.SSLContext,
    self_signed: tls.ServingCertificate,
) -> None:
    nodes: list[FakeNode] = []
    keeper = certificates.ServingCertificates(
        api,
        settings.KubeletSettings(),
        context,
        self_signed,
        lambda: list(nodes),
        internal_ip="127.0.0.1",
        host_name="operator-0",
        now=time.utc_now,
        sleep=time.sleep,
    )
    task = asyncio.create_task(keeper.run())
    await until(lambda: len(time.slept) > 3)
    assert api.created == []
    nodes.append(fake_node("vn-late"))
    await until(lambda: api.created)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert api.request().subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "system:node:vn-late"


def test_the_csrs_state_is_read_from_its_conditions_and_certificate(tmp_path: Path) -> None:
    pending = kube_certificates.state_of({"metadata": {"name": "x"}, "status": {}})
    assert pending.pending and not pending.approved
    approved = kube_certificates.state_of(
        {"metadata": {"name": "x"}, "status": {"conditions": [{"type": "Approved", "status": "True"}]}}
    )
    assert approved.pending and approved.approved, "approved but not yet issued: still pending"
    failed = kube_certificates.state_of(
        {
            "metadata": {"name": "x"},
            "status": {"conditions": [{"type": "Failed", "reason": "SignerValidationFailure"}]},
        }
    )
    assert failed.refusal == "Failed: SignerValidationFailure"
