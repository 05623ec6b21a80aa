"""``acinode emulator`` as a process: endpoint.json, TLS with its CA, clean SIGTERM, state kept with --persist."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from azure.core.exceptions import ServiceRequestError
from azure.mgmt.containerinstance import ContainerInstanceManagementClient

from acinode.emulator import config, server
from emulator.harness import SUBSCRIPTION, FakeCredential, group_spec, wait_for

ACINODE = Path(sys.executable).with_name("acinode")


def start(state_dir: Path, *flags: str) -> tuple[subprocess.Popen[bytes], dict]:
    process = subprocess.Popen(
        [str(ACINODE), "emulator", "--state-dir", str(state_dir), "--provisioning-delay", "0", *flags],
        stderr=subprocess.PIPE,
    )
    endpoint = state_dir / "endpoint.json"
    info = wait_for(lambda: json.loads(endpoint.read_text()), timeout=20, what="endpoint.json")
    return process, info


def stop(process: subprocess.Popen[bytes]) -> tuple[int, str]:
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=15)
    return process.returncode, err.decode()


def client_for(info: dict, **kw) -> ContainerInstanceManagementClient:
    return ContainerInstanceManagementClient(
        FakeCredential(info["token"]),
        SUBSCRIPTION,
        base_url=info["url"],
        connection_verify=info["ca_file"],
        polling_interval=0,
        retry_total=0,
        **kw,
    )


@pytest.mark.timeout(60)
def test_the_cli_serves_https_and_keeps_state_across_a_restart(tmp_path) -> None:
    flags = ("--persist", "--token", "tok-123", "--ip-range", "127.250.7.0/24")
    process, info = start(tmp_path, *flags)
    try:
        assert info["url"].startswith("https://127.0.0.1:")
        assert info["ca_file"] == str(tmp_path / "ca.pem") and info["token"] == "tok-123"
        assert info["pid"] == process.pid
        with client_for(info) as client:
            spec = group_spec(["sh", "-c", "echo persisted; sleep 3600"], ports=[80])
            group = client.container_groups.begin_create_or_update("rg", "keep", spec).result()
            wait_for(lambda: client.containers.list_logs("rg", "keep", "app").content == "persisted\n")
        wait_for(lambda: urllib.request.urlopen(f"http://{group.ip_address.ip}/", timeout=5).status == 200)
        with (
            ContainerInstanceManagementClient(
                FakeCredential("tok-123"), SUBSCRIPTION, base_url=info["url"], retry_total=0
            ) as untrusted,
            pytest.raises(ServiceRequestError),
        ):
            untrusted.container_groups.get("rg", "keep")  # the private CA is needed
    finally:
        code, logs = stop(process)
    assert code == 0
    assert not (tmp_path / "endpoint.json").exists()
    assert "tok-123" not in logs
    assert all(json.loads(line) for line in logs.splitlines())  # structured logs
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(f"http://{group.ip_address.ip}/", timeout=2)  # listeners closed

    process, info = start(tmp_path, *flags)
    try:
        with client_for(info) as client:
            again = client.container_groups.get("rg", "keep")
            assert again.instance_view.state == "Running" and again.ip_address.ip == group.ip_address.ip
            assert client.containers.list_logs("rg", "keep", "app").content.startswith("persisted\n")
        wait_for(lambda: urllib.request.urlopen(f"http://{group.ip_address.ip}/", timeout=5).status == 200)
    finally:
        assert stop(process)[0] == 0


def test_a_non_loopback_ip_range_is_refused(tmp_path) -> None:
    result = subprocess.run(
        [str(ACINODE), "emulator", "--state-dir", str(tmp_path), "--ip-range", "10.0.0.0/24"],
        capture_output=True,
        timeout=20,
        check=False,
    )
    assert result.returncode == 2 and b"127.0.0.0/8" in result.stderr


async def test_the_in_process_server_api(tmp_path) -> None:
    emulator = server.EmulatorServer(config.EmulatorConfig(state_dir=tmp_path, network=False))
    await emulator.start()
    try:
        assert emulator.url.startswith("https://127.0.0.1:") and emulator.ca_file == tmp_path / "ca.pem"
    finally:
        await emulator.stop()
