"""The stack every benchmark runs on: the local control plane, the ACI emulator and `acinode run`, torn down
together. Benchmarks differ only in what they do with it."""

from __future__ import annotations

import base64
import contextlib
import dataclasses
import json
import sys
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "tests" / "controlplane")]

import kubecluster  # noqa: E402
from kubernetes import client, config  # noqa: E402

from contract import emulated  # noqa: E402
from support.operator_process import OperatorProcess  # noqa: E402
from support.virtualnodes import TOKEN_SECRET  # noqa: E402


@dataclasses.dataclass
class Stack:
    control_plane: kubecluster.ControlPlane
    emulator: emulated.Emulator
    api: client.ApiClient
    operator: OperatorProcess

    @property
    def operator_pid(self) -> int:
        assert self.operator.process is not None
        return self.operator.process.pid


@contextlib.contextmanager
def running_stack(
    work: Path, emulator_flags: Sequence[str], operator_env: Mapping[str, str] | None = None
) -> Iterator[Stack]:
    with kubecluster.ControlPlane(work / "cluster", node_monitor_grace_period="40s") as cp:
        cp.kubectl("apply", "-f", str(REPO / "crds" / "virtualnodes.acinode.dev.yaml"))
        cp.kubectl("wait", "--for=condition=Established", "crd/virtualnodes.acinode.dev")
        emu = emulated.start_emulator(work / "emulator", *emulator_flags, "--log-level", "warning")
        api = config.new_client_from_config(config_file=str(cp.kubeconfig))
        operator = OperatorProcess(cp.kubeconfig, work / "operator.log", env=operator_env)
        try:
            client.CoreV1Api(api).create_namespaced_secret(
                "default",
                client.V1Secret(
                    metadata=client.V1ObjectMeta(name=TOKEN_SECRET),
                    data={"token": base64.b64encode(emu.token.encode()).decode()},
                ),
            )
            operator.start()
            yield Stack(cp, emu, api, operator)
        finally:
            operator.stop()
            emulated.stop_emulator(emu.process)
            api.close()


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def main(name: str, run: Callable[[Path], dict[str, Any]]) -> int:
    """Run one benchmark in a scratch folder and print its JSON summary."""
    with tempfile.TemporaryDirectory(prefix="acinode-bench-") as folder:
        result = run(Path(folder))
    print(json.dumps({"benchmark": name, **result}, indent=2))
    return 0
