"""Exec credential plugins, run for real: a small Python script prints an ExecCredential and counts its runs in a
file. The cached credential is used until shortly before it expires, the plugin runs again then and after a 401,
and a failing plugin is reported with its command and the tail of its stderr, never with a secret."""

from __future__ import annotations

import asyncio
import datetime
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from acinode import errors
from acinode.kube import connection, credentials, execplugin, kubeconfig

V1 = "client.authentication.k8s.io/v1"
V1BETA1 = "client.authentication.k8s.io/v1beta1"
EXPIRY = datetime.datetime(2030, 1, 1, 12, 0, tzinfo=datetime.UTC)

PLUGIN = """
import json, os, sys, time
here = os.path.dirname(os.path.abspath(__file__))
count_file = os.path.join(here, "runs")
runs = int(open(count_file).read()) + 1 if os.path.exists(count_file) else 1
open(count_file, "w").write(str(runs))
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
open(os.path.join(here, "info.json"), "w").write(json.dumps({"info": info, "env": os.environ.get("PLUGIN_GREETING")}))
mode = os.environ.get("PLUGIN_MODE", "token")
if mode == "fail":
    sys.stderr.write("starting device login\\n" + "x" * 500 + "\\nerror: AADSTS700016: application not found\\n")
    print("leaked-stdout-token")
    sys.exit(3)
if mode == "hang":
    time.sleep(30)
if mode == "fail-after-first" and runs > 1:
    sys.exit(1)
status = {}
if mode == "certificate":
    status["clientCertificateData"] = "-----BEGIN CERTIFICATE-----\\ncert-" + str(runs) + "\\n"
    status["clientKeyData"] = "-----BEGIN PRIVATE KEY-----\\nkey\\n"
else:
    status["token"] = "token-" + str(runs)
if os.environ.get("PLUGIN_EXPIRES"):
    status["expirationTimestamp"] = os.environ["PLUGIN_EXPIRES"]
print(json.dumps({"apiVersion": os.environ.get("PLUGIN_ANSWERS", info["apiVersion"]), "kind": "ExecCredential", "status": status}))
"""


class Plugin:
    """The script on disk, and what it recorded."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.script = folder / "plugin.py"
        self.script.write_text(PLUGIN)

    @property
    def runs(self) -> int:
        runs_file = self.folder / "runs"
        return int(runs_file.read_text()) if runs_file.exists() else 0

    @property
    def seen(self) -> dict[str, Any]:
        recorded: dict[str, Any] = json.loads((self.folder / "info.json").read_text())
        return recorded

    def config(
        self, api_version: str = V1, provide_cluster_info: bool = False, **env: str
    ) -> kubeconfig.ExecConfig:
        return kubeconfig.ExecConfig(
            api_version=api_version,
            command=sys.executable,
            args=("-S", str(self.script), "--client-secret=argument-secret"),
            env=(
                ("PLUGIN_GREETING", "hello"),
                *((f"PLUGIN_{key.upper()}", value) for key, value in env.items()),
            ),
            interactive_mode="Never",
            provide_cluster_info=provide_cluster_info,
        )


@pytest.fixture
def plugin(tmp_path: Path) -> Plugin:
    return Plugin(tmp_path)


class Clock:
    def __init__(self, now: datetime.datetime) -> None:
        self.now = now

    def __call__(self) -> datetime.datetime:
        return self.now


CLUSTER = kubeconfig.Cluster(
    server="https://aks.example:443", certificate_authority_data=b"CA-PEM", exec_extension={"audience": "aks"}
)


def source_for(
    config: kubeconfig.ExecConfig, clock: Callable[[], datetime.datetime] | None = None, **options: Any
) -> execplugin.ExecPluginCredentials:
    return execplugin.ExecPluginCredentials(
        connection.KubeConnection(server=CLUSTER.server),
        config,
        CLUSTER,
        description="the test plugin",
        environ={"PATH": "/usr/bin:/bin", "OPERATOR_SECRET": "never-shown"},
        clock=clock or Clock(EXPIRY - datetime.timedelta(hours=1)),
        **options,
    )


# --- Running the plugin ------------------------------------------------------------------------------------------


async def test_the_token_is_cached_without_an_expiry(plugin: Plugin) -> None:
    source = source_for(plugin.config())
    first = await source.current()
    assert (first.token, first.expires_at, first.refresh_at) == ("token-1", None, None)
    assert await source.current() is first
    assert plugin.runs == 1


async def test_the_plugin_gets_its_env_and_the_exec_info_without_the_cluster(plugin: Plugin) -> None:
    await source_for(plugin.config()).current()
    assert plugin.seen == {
        "info": {"apiVersion": V1, "kind": "ExecCredential", "spec": {"interactive": False}},
        "env": "hello",
    }


async def test_provide_cluster_info_passes_the_cluster(plugin: Plugin) -> None:
    await source_for(plugin.config(V1BETA1, provide_cluster_info=True)).current()
    assert plugin.seen["info"] == {
        "apiVersion": V1BETA1,
        "kind": "ExecCredential",
        "spec": {
            "interactive": False,
            "cluster": {
                "server": "https://aks.example:443",
                "certificate-authority-data": "Q0EtUEVN",  # base64 of CA-PEM
                "config": {"audience": "aks"},
            },
        },
    }


async def test_the_expiry_is_honoured_with_a_margin(plugin: Plugin) -> None:
    clock = Clock(EXPIRY - datetime.timedelta(hours=1))
    source = source_for(plugin.config(expires=EXPIRY.isoformat()), clock, margin_seconds=30)
    first = await source.current()
    assert (first.expires_at, first.refresh_at) == (EXPIRY, EXPIRY - datetime.timedelta(seconds=30))
    clock.now = EXPIRY - datetime.timedelta(seconds=31)
    assert await source.current() is first
    assert plugin.runs == 1
    clock.now = EXPIRY - datetime.timedelta(seconds=30)
    assert (await source.current()).token == "token-2"
    assert plugin.runs == 2


async def test_a_short_lived_token_is_refreshed_after_three_quarters_of_its_life(plugin: Plugin) -> None:
    clock = Clock(EXPIRY - datetime.timedelta(seconds=20))
    source = source_for(plugin.config(expires=EXPIRY.isoformat()), clock, margin_seconds=30)
    assert (await source.current()).refresh_at == EXPIRY - datetime.timedelta(seconds=5)


async def test_invalidating_the_current_credential_runs_the_plugin_again(plugin: Plugin) -> None:
    source = source_for(plugin.config())
    first = await source.current()
    source.invalidate(credentials.Credential(token="token-1"))  # equal, but not the one handed out: no effect
    assert await source.current() is first
    source.invalidate(first)
    assert (await source.current()).token == "token-2"
    source.invalidate(first)  # already replaced: no effect
    assert (await source.current()).token == "token-2"
    assert plugin.runs == 2


async def test_concurrent_callers_share_one_run(plugin: Plugin) -> None:
    source = source_for(plugin.config())
    tokens = await asyncio.gather(*(source.current() for _ in range(5)))
    assert {credential.token for credential in tokens} == {"token-1"}
    assert plugin.runs == 1


async def test_a_client_certificate_becomes_the_tls_identity(plugin: Plugin) -> None:
    credential = await source_for(plugin.config(mode="certificate")).current()
    assert credential.token is None
    assert credential.identity == (
        b"-----BEGIN CERTIFICATE-----\ncert-1\n",
        b"-----BEGIN PRIVATE KEY-----\nkey\n",
    )


# --- Failures ----------------------------------------------------------------------------------------------------


async def test_a_failing_plugin_names_its_command_and_its_stderr_tail_never_a_secret(plugin: Plugin) -> None:
    with pytest.raises(errors.AuthenticationError) as caught:
        await source_for(plugin.config(mode="fail")).current()
    message = str(caught.value)
    assert message.startswith(f"exec plugin {sys.executable} failed with exit code 3: …")
    assert message.endswith("xxx error: AADSTS700016: application not found")
    assert len(message) < len(sys.executable) + 400
    assert "\n" not in message
    for secret in ("leaked-stdout-token", "argument-secret", "never-shown", "hello"):
        assert secret not in message


async def test_a_missing_plugin_gives_the_install_hint(tmp_path: Path) -> None:
    config = kubeconfig.ExecConfig(
        api_version=V1,
        command=str(tmp_path / "kubelogin"),
        interactive_mode="Never",
        install_hint="kubelogin is not installed:\n  az aks install-cli",
    )
    with pytest.raises(
        errors.AuthenticationError,
        match=r"^exec plugin .*/kubelogin: not found \(kubelogin is not installed: az aks install-cli\)$",
    ):
        await source_for(config).current()


async def test_a_plugin_that_hangs_is_killed(plugin: Plugin) -> None:
    with pytest.raises(errors.AuthenticationError, match=r"did not answer within 0\.5s$"):
        await source_for(plugin.config(mode="hang"), timeout_seconds=0.5).current()


async def test_a_plugin_of_another_version_is_refused(plugin: Plugin) -> None:
    with pytest.raises(errors.AuthenticationError, match=f"configured for {V1} but returned '{V1BETA1}'"):
        await source_for(plugin.config(V1, answers=V1BETA1)).current()


async def test_a_failed_refresh_keeps_the_credential_until_it_really_expires(plugin: Plugin) -> None:
    clock = Clock(EXPIRY - datetime.timedelta(hours=1))
    source = source_for(
        plugin.config(mode="fail-after-first", expires=EXPIRY.isoformat()),
        clock,
        margin_seconds=60,
        retry_seconds=0,
    )
    first = await source.current()
    clock.now = EXPIRY - datetime.timedelta(seconds=30)  # due, still valid
    assert await source.current() is first
    assert plugin.runs == 2
    clock.now = EXPIRY
    with pytest.raises(errors.AuthenticationError, match="failed with exit code 1 \\(no stderr\\)"):
        await source.current()


# --- The ExecCredential, parsed (pure) ---------------------------------------------------------------------------

NOW = EXPIRY - datetime.timedelta(hours=1)
CONFIG = kubeconfig.ExecConfig(api_version=V1, command="kubelogin", interactive_mode="Never")


def output(status: Any, api_version: str = V1, kind: str = "ExecCredential") -> bytes:
    return json.dumps({"apiVersion": api_version, "kind": kind, "status": status}).encode()


@pytest.mark.parametrize(
    ("printed", "message"),
    [
        (b"Please visit https://microsoft.com/devicelogin", "printed something that is not JSON"),
        (output({"token": "t"}, kind="Status"), "did not print an ExecCredential"),
        (b"[]", "did not print an ExecCredential"),
        (output({"token": "t"}, api_version=V1BETA1), f"is configured for {V1} but returned '{V1BETA1}'"),
        (output(None), "returned no status"),
        (output({}), "returned neither a token nor a client certificate and key"),
        (output({"token": ""}), "returned neither a token nor a client certificate and key"),
        (output({"clientCertificateData": "C"}), "returned a client certificate without its key"),
        (output({"token": 42}), "whose token or certificate is not a string"),
        (output({"token": "t", "expirationTimestamp": "tomorrow"}), "invalid expirationTimestamp 'tomorrow'"),
        (
            output({"token": "t", "expirationTimestamp": "2029-12-31T00:00:00Z"}),
            "expired at 2029-12-31T00:00:00+00:00",
        ),
    ],
)
def test_invalid_output_is_refused(printed: bytes, message: str) -> None:
    with pytest.raises(errors.AuthenticationError) as caught:
        execplugin.credential_from_output(printed, CONFIG, now=NOW)
    assert str(caught.value).startswith("exec plugin kubelogin ")
    assert message in str(caught.value)
    assert "devicelogin" not in str(caught.value)


@pytest.mark.parametrize(
    ("timestamp", "expires_at"),
    [
        ("2030-01-01T12:00:00Z", EXPIRY),
        ("2030-01-01T13:00:00+01:00", EXPIRY),
        ("2030-01-01T12:00:00", EXPIRY),  # no zone: UTC
        (None, None),
        ("", None),
    ],
)
def test_the_expiration_timestamp_is_read_as_rfc3339(
    timestamp: str | None, expires_at: datetime.datetime | None
) -> None:
    credential = execplugin.credential_from_output(
        output({"token": "t", "expirationTimestamp": timestamp}), CONFIG, now=NOW
    )
    assert credential.expires_at == expires_at


@pytest.mark.parametrize(
    ("lifetime_seconds", "margin_seconds", "refresh_after_seconds"),
    [
        (3600, 30, 3570),  # an hour: 30 s before it expires
        (20, 30, 15),  # 20 s: after three quarters of it
        (120, 30, 90),
        (0, 30, 0),
    ],
)
def test_refresh_time(lifetime_seconds: float, margin_seconds: float, refresh_after_seconds: float) -> None:
    expires_at = NOW + datetime.timedelta(seconds=lifetime_seconds)
    assert credentials.refresh_time(NOW, expires_at, margin_seconds) == NOW + datetime.timedelta(
        seconds=refresh_after_seconds
    )
    assert credentials.refresh_time(NOW, None, margin_seconds) is None


@pytest.mark.parametrize(
    ("stderr", "tail"),
    [
        (b"", ""),
        (b"  error:\n\tlogin   failed \n", "error: login failed"),
        (b"a" * 20 + b"\n" + b"b" * 10, "…" + "a" * 9 + " " + "b" * 10),
        (b"\xff\xfeoops", "\ufffd\ufffdoops"),
    ],
)
def test_stderr_tail(stderr: bytes, tail: str) -> None:
    assert execplugin.stderr_tail(stderr, limit=20) == tail
