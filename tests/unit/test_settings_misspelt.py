"""A misspelt ACINODE_* variable is reported when the operator starts, naming the setting it most likely meant,
whether the typo is in the field (ACINODE_LEASE_DURATON_SECONDS) or in the section (ACINODE_METRIC_PORT); variables
of the project's own tools (ACINODE_BENCH_*, ACINODE_TEST_*) and ACINODE_REPLICA_ID are not settings and pass."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from acinode import settings


@pytest.mark.parametrize(
    ("name", "meant"),
    [
        ("ACINODE_METRIC_PORT", "ACINODE_METRICS_PORT"),
        ("ACINODE_LEASES_DURATION_SECONDS", "ACINODE_LEASE_DURATION_SECONDS"),
        ("ACINODE_LEASE_DURATON_SECONDS", "ACINODE_LEASE_DURATION_SECONDS"),
        ("ACINODE_ACI_READS_PER_SECONDS", "ACINODE_ACI_READS_PER_SECOND"),
        ("ACINODE_NODE_KUBELETPORT", "ACINODE_NODE_KUBELET_PORT"),
    ],
)
@pytest.mark.timeout(2)
def test_a_misspelt_setting_is_refused_naming_what_it_meant(name: str, meant: str) -> None:
    with pytest.raises(ValueError, match=rf"unknown setting {name} \(did you mean {meant}\?\)"):
        settings.settings_from_environment({name: "5"})


@pytest.mark.timeout(2)
def test_variables_that_are_not_settings_pass() -> None:
    env = {
        "ACINODE_REPLICA_ID": "acinode-0",
        "ACINODE_BENCH_PODS": "100",
        "ACINODE_TEST_KUBECONFIG": "/tmp/kubeconfig",
        "ACINODE_CHAOS_SEED": "1",
        "ACINODE_KUBE_CACHE": "/tmp/kube",
        "ACINODE_IMAGE_ARCHIVE": "dist/acinode-image.oci.tar",
    }
    assert settings.settings_from_environment(env) == settings.Settings()


@pytest.mark.timeout(30)
def test_acinode_run_reports_the_misspelt_variable_at_start_and_exits_2(tmp_path: Path) -> None:
    """The operator refuses to start (before it needs a cluster) and says which variable, and what it meant."""
    acinode = Path(sys.executable).with_name("acinode")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ACINODE_")}
    env.update({"ACINODE_METRIC_PORT": "9191", "KUBECONFIG": str(tmp_path / "none")})
    result = subprocess.run(
        [str(acinode), "run", "--log-format=plain"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=25,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    output = result.stdout + result.stderr
    assert "invalid setting" in output
    assert "ACINODE_METRIC_PORT (did you mean ACINODE_METRICS_PORT?)" in output
