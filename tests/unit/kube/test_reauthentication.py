"""KubeClient with credentials that change, against a loopback API server that accepts only the current one: a
token file read again as it rotates and after a 401, an exec plugin run again after a 401, one retry per request
(watches too), and an exec plugin's client certificate presented in TLS."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import ipaddress
import json
import logging
import ssl
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from acinode import errors
from acinode.kube import client, connection, credentials, execplugin, kubeconfig

NAMESPACE = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system", "uid": "cluster-1"}}


@dataclasses.dataclass
class StrictApiServer:
    """Accepts only the bearer tokens in ``accepted`` (or, over TLS, the client certificates whose common name is
    in ``accepted``); records what each request presented."""

    server: TestServer
    accepted: set[str]
    presented: list[str]

    @property
    def url(self) -> str:
        scheme = "https" if self.server.scheme == "https" else "http"
        return f"{scheme}://127.0.0.1:{self.server.port}"


def status(code: int, message: str) -> dict[str, Any]:
    return {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": message, "code": code}


async def start_server(ssl_context: ssl.SSLContext | None = None) -> StrictApiServer:
    accepted: set[str] = set()
    presented: list[str] = []

    async def handle(request: web.Request) -> web.StreamResponse:
        peer = request.transport.get_extra_info("peercert") if request.transport else None
        if peer:
            who = dict(item[0] for item in peer["subject"])["commonName"]
        else:
            who = request.headers.get("Authorization", "").removeprefix("Bearer ")
        presented.append(who)
        if who not in accepted:
            return web.json_response(status(401, "Unauthorized"), status=401)
        if request.query.get("watch") == "true":
            response = web.StreamResponse(headers={"Content-Type": "application/json"})
            await response.prepare(request)
            await response.write(json.dumps({"type": "ADDED", "object": NAMESPACE}).encode() + b"\n")
            return response
        return web.json_response(NAMESPACE)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server(ssl=ssl_context)
    return StrictApiServer(server, accepted, presented)


@pytest.fixture
async def api_server() -> AsyncIterator[StrictApiServer]:
    running = await start_server()
    yield running
    await running.server.close()


class Monotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "token"
    path.write_text("token-a\n")
    return path


@pytest.fixture
async def kube_and_clock(
    api_server: StrictApiServer, token_file: Path
) -> AsyncIterator[tuple[client.KubeClient, Monotonic]]:
    clock = Monotonic()
    source = credentials.TokenFileCredentials(
        connection.KubeConnection(server=api_server.url),
        token_file,
        description="the test token",
        monotonic=clock,
    )
    kube = client.KubeClient(source, timeout_seconds=1.0)
    yield kube, clock
    await kube.close()


PATH = "/api/v1/namespaces/kube-system"


def rotate(token_file: Path, token: str | None) -> None:
    """Write the next token (None: remove the file), as the kubelet does for a projected token."""
    if token is None:
        token_file.unlink()
    else:
        token_file.write_text(token)


# --- Token files -------------------------------------------------------------------------------------------------


async def test_a_rotated_token_file_is_read_again_after_a_minute(
    api_server: StrictApiServer, token_file: Path, kube_and_clock: tuple[client.KubeClient, Monotonic]
) -> None:
    kube, clock = kube_and_clock
    api_server.accepted |= {"token-a", "token-b"}
    await kube.get(PATH)
    rotate(token_file, "token-b")
    clock.now += 59
    await kube.get(PATH)
    clock.now += 1
    await kube.get(PATH)
    assert api_server.presented == ["token-a", "token-a", "token-b"]


async def test_a_401_reads_the_token_file_again_and_retries_once(
    api_server: StrictApiServer,
    token_file: Path,
    kube_and_clock: tuple[client.KubeClient, Monotonic],
    caplog: pytest.LogCaptureFixture,
) -> None:
    kube, _ = kube_and_clock
    api_server.accepted.add("token-a")
    await kube.get(PATH)
    rotate(token_file, "token-b")  # rotated, and token-a revoked at once
    api_server.accepted.clear()
    api_server.accepted.add("token-b")
    with caplog.at_level(logging.INFO, logger="acinode.kube.client"):
        assert await kube.get(PATH) == NAMESPACE
    assert api_server.presented == ["token-a", "token-a", "token-b"]
    assert f"GET {PATH}: 401, retrying with new credentials from the test token" in caplog.messages
    assert await kube.get(PATH) == NAMESPACE
    assert api_server.presented[-1] == "token-b"


async def test_a_401_with_an_unchanged_token_file_fails_without_a_retry(
    api_server: StrictApiServer, kube_and_clock: tuple[client.KubeClient, Monotonic]
) -> None:
    kube, _ = kube_and_clock
    with pytest.raises(errors.AuthenticationError, match=f"^GET {PATH}: 401 Unauthorized$"):
        await kube.get(PATH)
    assert api_server.presented == ["token-a"]


async def test_a_refused_static_token_is_not_retried(api_server: StrictApiServer) -> None:
    kube = client.KubeClient(connection.KubeConnection(server=api_server.url, token="static"))
    try:
        with pytest.raises(errors.AuthenticationError):
            await kube.create(PATH, NAMESPACE)
    finally:
        await kube.close()
    assert api_server.presented == ["static"]


async def test_a_watch_refused_with_401_is_retried_with_the_new_token(
    api_server: StrictApiServer, token_file: Path, kube_and_clock: tuple[client.KubeClient, Monotonic]
) -> None:
    kube, _ = kube_and_clock
    api_server.accepted.add("token-a")
    await kube.get(PATH)
    rotate(token_file, "token-b")
    api_server.accepted.symmetric_difference_update({"token-a", "token-b"})
    events = [event async for event in kube.watch("/api/v1/namespaces", {}, timeout_seconds=5)]
    assert events == [{"type": "ADDED", "object": NAMESPACE}]
    assert api_server.presented == ["token-a", "token-a", "token-b"]


async def test_a_watch_refused_twice_raises(
    api_server: StrictApiServer, token_file: Path, kube_and_clock: tuple[client.KubeClient, Monotonic]
) -> None:
    kube, _ = kube_and_clock
    await kube.credential_source.current()
    rotate(token_file, "token-b")  # read after the first 401: also refused
    with pytest.raises(errors.AuthenticationError, match=r"^WATCH /api/v1/namespaces: 401 Unauthorized$"):
        async for _ in kube.watch("/api/v1/namespaces", {}):
            pass
    assert api_server.presented == ["token-a", "token-b"]


async def test_a_token_file_that_disappears_keeps_the_last_token(token_file: Path) -> None:
    clock = Monotonic()
    source = credentials.TokenFileCredentials(
        connection.KubeConnection(server="https://api"), token_file, description="test", monotonic=clock
    )
    first = await source.current()
    rotate(token_file, None)
    clock.now += 3600
    assert await source.current() is first
    source.invalidate(first)
    assert await source.current() is first


@pytest.mark.parametrize(("content", "reason"), [(None, "No such file or directory"), ("  \n", "is empty")])
async def test_an_unreadable_token_file_at_start_is_an_authentication_error(
    tmp_path: Path, content: str | None, reason: str
) -> None:
    path = tmp_path / "token"
    if content is not None:
        path.write_text(content)
    source = credentials.TokenFileCredentials(
        connection.KubeConnection(server="https://api"), path, description="t"
    )
    with pytest.raises(errors.AuthenticationError, match=f"token file {path}.*{reason}"):
        await source.current()


# --- Exec plugins ------------------------------------------------------------------------------------------------

PLUGIN = """
import json, os
here = os.path.dirname(os.path.abspath(__file__))
count_file = os.path.join(here, "runs")
runs = int(open(count_file).read()) + 1 if os.path.exists(count_file) else 1
open(count_file, "w").write(str(runs))
certificate = os.path.join(here, "client-%d.crt" % runs)
if os.path.exists(certificate):
    status = {"clientCertificateData": open(certificate).read(), "clientKeyData": open(certificate[:-3] + "key").read()}
else:
    status = {"token": "token-%d" % runs}
print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": status}))
"""


def plugin_source(folder: Path, endpoint: connection.KubeConnection) -> execplugin.ExecPluginCredentials:
    script = folder / "plugin.py"
    script.write_text(PLUGIN)
    config = kubeconfig.ExecConfig(
        api_version="client.authentication.k8s.io/v1",
        command=sys.executable,
        args=("-S", str(script)),
        interactive_mode="Never",
    )
    cluster = kubeconfig.Cluster(server=endpoint.server)
    return execplugin.ExecPluginCredentials(endpoint, config, cluster, description="the test plugin")


def runs(folder: Path) -> int:
    return int((folder / "runs").read_text())


async def test_an_exec_plugin_runs_again_after_a_401(api_server: StrictApiServer, tmp_path: Path) -> None:
    api_server.accepted.add("token-2")
    kube = client.KubeClient(plugin_source(tmp_path, connection.KubeConnection(server=api_server.url)))
    try:
        assert await kube.get(PATH) == NAMESPACE
        assert await kube.get(PATH) == NAMESPACE
    finally:
        await kube.close()
    assert api_server.presented == ["token-1", "token-2", "token-2"]
    assert runs(tmp_path) == 2


# --- An exec plugin's client certificate -------------------------------------------------------------------------


def pem(certificate: x509.Certificate) -> bytes:
    return certificate.public_bytes(serialization.Encoding.PEM)


def key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def issue(
    common_name: str,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None = None,
    *,
    server: bool = False,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = datetime.datetime.now(datetime.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(issuer[0].subject if issuer else name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=issuer is None, path_length=None), critical=True)
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
    return builder.sign(issuer[1] if issuer else key, hashes.SHA256()), key


async def test_an_exec_plugins_client_certificate_is_presented_and_replaced_after_a_401(
    tmp_path: Path,
) -> None:
    ca = issue("test-ca")
    server_certificate, server_key = issue("127.0.0.1", ca, server=True)
    (tmp_path / "ca.crt").write_bytes(pem(ca[0]))
    (tmp_path / "server.crt").write_bytes(pem(server_certificate) + key_pem(server_key))
    for run in (1, 2):
        certificate, key = issue(f"client-{run}", ca)
        (tmp_path / f"client-{run}.crt").write_bytes(pem(certificate))
        (tmp_path / f"client-{run}.key").write_bytes(key_pem(key))
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=str(tmp_path / "ca.crt"))
    server_tls.verify_mode = ssl.CERT_REQUIRED
    server_tls.load_cert_chain(str(tmp_path / "server.crt"))
    api_server = await start_server(server_tls)
    api_server.accepted.add("client-2")
    endpoint = connection.KubeConnection(server=api_server.url, ca_data=pem(ca[0]))
    kube = client.KubeClient(plugin_source(tmp_path, endpoint), timeout_seconds=1.0)
    try:
        assert await kube.get(PATH) == NAMESPACE
        assert await kube.get(PATH) == NAMESPACE
    finally:
        await kube.close()
        await api_server.server.close()
    assert api_server.presented == ["client-1", "client-2", "client-2"]
    assert runs(tmp_path) == 2


async def test_an_unreadable_ca_file_is_a_configuration_error(tmp_path: Path) -> None:
    endpoint = connection.KubeConnection(server="https://127.0.0.1:1", ca_path=str(tmp_path / "missing.crt"))
    kube = client.KubeClient(endpoint)
    try:
        with pytest.raises(
            errors.ConfigurationError, match=r"^cannot set up TLS to https://127\.0\.0\.1:1: "
        ):
            await kube.get(PATH)
    finally:
        await kube.close()


async def test_concurrent_401s_run_the_plugin_once(api_server: StrictApiServer, tmp_path: Path) -> None:
    api_server.accepted.add("token-2")
    kube = client.KubeClient(plugin_source(tmp_path, connection.KubeConnection(server=api_server.url)))
    try:
        await kube.credential_source.current()  # token-1, refused below by every request
        results = await asyncio.gather(*(kube.get(PATH) for _ in range(5)))
    finally:
        await kube.close()
    assert results == [NAMESPACE] * 5
    assert runs(tmp_path) == 2
