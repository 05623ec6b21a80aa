"""Fakes and builders for the kubelet API tests: ACI (logs, an exec websocket), the reviews API, nodes, pods and a
test PKI. Each fake records what it was asked, and nothing sleeps: tests wait on what the code did."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import secrets
import ssl
from pathlib import Path
from typing import Any

from aiohttp import WSMsgType, web
from azure.mgmt.containerinstance import models
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from acinode import errors
from acinode import types as ids
from acinode.aci import api
from acinode.mapping import placement

T0 = dt.datetime(2026, 1, 1, 12, 0, 0, tzinfo=dt.UTC)
NODE = "vn-1"


def stamp(seconds: float) -> str:
    return (T0 + dt.timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")


class FakeAci:
    """The ACI calls the kubelet uses (``pods.protocols.ContainerAccess``). Logs are (seconds after T0, text) lines per container; exec
    sessions go to ``exec_server`` (a ``FakeAciExecServer``) when one is set."""

    def __init__(self) -> None:
        self.logs: dict[str, list[tuple[float, str]]] = {}
        self.log_calls: list[tuple[str, str, int | None, bool]] = []
        self.exec_calls: list[tuple[str, str, str]] = []
        self.exec_sizes: list[tuple[int, int]] = []
        """The (rows, cols) each exec asked ACI for."""
        self.attach_calls: list[tuple[str, str]] = []
        self.exec_server: FakeAciExecServer | None = None
        self.exec_error: errors.AcinodeError | None = None
        self.gone: set[str] = set()
        """Groups that no longer exist."""
        self.ended: set[str] = set()
        """Containers that have terminated."""
        self.restarts = 0
        self.group_read = asyncio.Event()
        self.log_read = asyncio.Event()
        self.ca_bundle_path: str | None = None

    async def container_logs(
        self, name: str, container: str, *, tail: int | None = None, timestamps: bool = False
    ) -> str:
        self.log_calls.append((name, container, tail, timestamps))
        self.log_read.set()
        if name in self.gone:
            raise errors.NotFoundError(f"group {name} not found")
        lines = self.logs.get(container, [])
        if tail is not None:
            lines = lines[-tail:] if tail else []
        return "".join(f"{stamp(t)} {text}\n" if timestamps else f"{text}\n" for t, text in lines)

    async def container_usage(self, name: str, *, start: dt.datetime, end: dt.datetime) -> api.GroupUsage:
        """No usage known (tests of usage answer it themselves: test_usage_*.py)."""
        return api.GroupUsage(grain_seconds=60.0, containers={})

    async def get(self, name: str) -> models.ContainerGroup:
        """The group with one container per log, running, or terminated once in ``ended``."""
        self.group_read.set()
        if name in self.gone:
            raise errors.NotFoundError(f"group {name} not found")
        containers = []
        for container in self.logs or {"main": []}:
            current: dict[str, Any] = {"state": "Running", "startTime": stamp(0)}
            if container in self.ended:
                current = {
                    "state": "Terminated",
                    "startTime": stamp(0),
                    "finishTime": stamp(9),
                    "exitCode": 0,
                }
            view = {"restartCount": self.restarts, "currentState": current, "events": []}
            requests = {"requests": {"cpu": 1, "memoryInGB": 1.5}}
            properties = {"image": "busybox", "resources": requests, "instanceView": view}
            containers.append({"name": container, "properties": properties})
        body = {
            "name": name,
            "properties": {"provisioningState": "Succeeded", "osType": "Linux", "containers": containers},
        }
        return models.ContainerGroup.deserialize(body)

    async def exec_command(
        self, name: str, container: str, command: str, *, rows: int = 24, cols: int = 80
    ) -> api.ExecSession:
        self.exec_calls.append((name, container, command))
        self.exec_sizes.append((rows, cols))
        if self.exec_error is not None:
            raise self.exec_error
        assert self.exec_server is not None, "no exec server"
        return self.exec_server.session(command)

    async def attach(self, name: str, container: str) -> api.ExecSession:
        self.attach_calls.append((name, container))
        if self.exec_error is not None:
            raise self.exec_error
        assert self.exec_server is not None, "no exec server"
        return self.exec_server.session("attach")


class FakeAciExecServer:
    """ACI's exec websocket as the emulator serves it: password first, output as text frames, close code
    4000 + exit status. ``scripts`` maps a command string to (output lines, status); other commands are an
    interactive shell that echoes each input line until ``exit N``."""

    def __init__(self) -> None:
        self.scripts: dict[str, tuple[list[str], int]] = {}
        self.received: list[str] = []
        self._passwords: dict[str, str] = {}
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/exec/{id}", self._handle)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"ws://127.0.0.1:{self._runner.addresses[0][1]}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def session(self, command: str) -> api.ExecSession:
        session_id, password = secrets.token_hex(4), secrets.token_hex(8)
        self._passwords[session_id] = f"{password}\n{command}"
        return api.ExecSession(f"{self.url}/exec/{session_id}", password)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        password, command = self._passwords.pop(request.match_info["id"]).split("\n", 1)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        first = await ws.receive()
        if first.data != password:
            await ws.close(code=4401)
            return ws
        if command in self.scripts:
            lines, status = self.scripts[command]
            for line in lines:
                await ws.send_str(line + "\n")
            await ws.close(code=4000 + status)
            return ws
        async for message in ws:
            if message.type != WSMsgType.TEXT:
                break
            for line in str(message.data).splitlines():
                self.received.append(line)
                if line.startswith("exit"):
                    await ws.close(code=4000 + int(line.split()[1] if " " in line else 0))
                    return ws
                await ws.send_str(f"you said {line}\n")
        return ws


class FakeReviewer:
    """The TokenReview and SubjectAccessReview APIs: ``tokens`` maps a token to a user name (with ``groups``),
    ``allowed`` holds (user, verb, node, subresource) tuples that are allowed ("*" matches any node)."""

    def __init__(self) -> None:
        self.tokens: dict[str, tuple[str, list[str]]] = {}
        self.allowed: set[tuple[str, str, str, str]] = set()
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.failure: errors.AcinodeError | None = None

    async def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        self.calls.append((path, body))
        if self.failure is not None:
            raise self.failure
        if path.endswith("/tokenreviews"):
            user = self.tokens.get(body["spec"]["token"])
            if user is None:
                return {"status": {"authenticated": False}}
            return {
                "status": {
                    "authenticated": True,
                    "user": {"username": user[0], "uid": "u-1", "groups": user[1]},
                }
            }
        spec = body["spec"]
        attributes = spec["resourceAttributes"]
        key = (spec["user"], attributes["verb"], attributes["name"], attributes["subresource"])
        wildcard = (spec["user"], attributes["verb"], "*", attributes["subresource"])
        return {"status": {"allowed": key in self.allowed or wildcard in self.allowed}}

    def count(self, kind: str) -> int:
        return sum(1 for path, _ in self.calls if path.endswith(kind))


@dataclasses.dataclass
class FakeNode:
    """A ``pods.protocols.ServedNode``: what the kubelet API may read of a node's pod controller."""

    aci: FakeAci
    where: placement.GroupPlacement
    pods: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def node_name(self) -> ids.NodeName:
        return self.where.node_name

    @property
    def placement(self) -> placement.GroupPlacement:
        return self.where

    @property
    def containers(self) -> FakeAci:
        return self.aci

    def bound_pods(self) -> list[Any]:
        return list(self.pods.values())

    def find_pod(self, namespace: str, name: str) -> Any:
        for pod in self.pods.values():
            if pod["metadata"]["namespace"] == namespace and pod["metadata"]["name"] == name:
                return pod
        return None

    def pod_by_uid(self, uid: str) -> Any:
        return self.pods.get(uid)

    def add(self, pod: dict[str, Any]) -> dict[str, Any]:
        self.pods[pod["metadata"]["uid"]] = pod
        return pod


def fake_node(name: str = NODE) -> FakeNode:
    return FakeNode(
        FakeAci(),
        placement.GroupPlacement(
            node_name=ids.NodeName(name), cluster_id=ids.ClusterId("c-1"), region="westeurope"
        ),
    )


def running_pod(
    name: str = "web",
    namespace: str = "default",
    containers: tuple[str, ...] = ("main",),
    cpu: str = "250m",
    memory: str = "256Mi",
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "uid": f"uid-{namespace}-{name}"},
        "spec": {
            "nodeName": NODE,
            "containers": [
                {"name": c, "image": "busybox", "resources": {"requests": {"cpu": cpu, "memory": memory}}}
                for c in containers
            ],
        },
        "status": {
            "phase": "Running",
            "startTime": stamp(0),
            "containerStatuses": [
                {"name": c, "ready": True, "restartCount": 0, "state": {"running": {"startedAt": stamp(0)}}}
                for c in containers
            ],
        },
    }


# --- PKI ----------------------------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class KubeletPki:
    ca_path: Path
    client: tuple[Path, Path]
    """Signed by the CA: user ``kube-apiserver-kubelet-client``, group ``kubelet-api-admin``."""
    stranger: tuple[Path, Path]
    """Self-signed, same user name."""


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _certificate(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    issuer: x509.Name,
    signer: ec.EllipticCurvePrivateKey,
    ca: bool,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
        .not_valid_after(dt.datetime.now(dt.UTC) + dt.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True
        )
    else:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False
        )
    return builder.sign(signer, hashes.SHA256())


def make_pki(directory: Path) -> KubeletPki:
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test CA")])
    ca = _certificate(ca_name, ca_key, ca_name, ca_key, ca=True)
    (directory / "ca.crt").write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    user = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "kubelet-api-admin"),
            x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver-kubelet-client"),
        ]
    )
    paths = []
    for name, issuer, signer in (("client", ca_name, ca_key), ("stranger", user, None)):
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _certificate(user, key, issuer, signer or key, ca=False)
        cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
        cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(_key_pem(key))
        paths.append((cert_path, key_path))
    return KubeletPki(directory / "ca.crt", paths[0], paths[1])


def client_ssl(cert: tuple[Path, Path] | None = None) -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    return context
