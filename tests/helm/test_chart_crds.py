"""The chart carries copies of the CRDs in crds/ (the single source): they must not drift apart."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCE = REPO_ROOT / "crds"
CHART_CRDS = REPO_ROOT / "helm" / "acinode" / "crds"
SOURCE_CRDS = sorted(p.name for p in SOURCE.glob("*.yaml"))


@pytest.mark.parametrize("name", SOURCE_CRDS)
def test_chart_crd_is_a_byte_for_byte_copy_of_the_source(name: str) -> None:
    copy = CHART_CRDS / name
    assert copy.exists(), f"{copy} is missing: run make update-chart-crds"
    assert copy.read_bytes() == (SOURCE / name).read_bytes(), (
        f"{copy} differs from crds/{name}: run make update-chart-crds"
    )


def test_chart_ships_the_source_crds_and_kopf_peering_only() -> None:
    chart_only = {p.name for p in CHART_CRDS.glob("*.yaml")} - set(SOURCE_CRDS)
    assert chart_only == {"clusterkopfpeerings.kopf.dev.yaml"}


def test_kopf_peering_crd_is_the_cluster_scoped_kopf_dev_v1_resource() -> None:
    crd = yaml.safe_load((CHART_CRDS / "clusterkopfpeerings.kopf.dev.yaml").read_text())
    spec = crd["spec"]
    assert (spec["group"], spec["scope"], spec["names"]["plural"]) == (
        "kopf.dev",
        "Cluster",
        "clusterkopfpeerings",
    )
    version = spec["versions"][0]
    assert version["name"] == "v1" and version["served"] and version["storage"]
    # Kopf patches keep-alives into the main resource: a status subresource would drop them.
    assert "subresources" not in version
    assert version["schema"]["openAPIV3Schema"]["properties"]["status"][
        "x-kubernetes-preserve-unknown-fields"
    ]


def run_make(tree: Path, target: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-f", "helm/helm.mk", target],
        cwd=tree,
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.skipif(shutil.which("make") is None, reason="needs make")
def test_make_verify_chart_crds_fails_on_drift_and_update_fixes_it(tmp_path: Path) -> None:
    shutil.copytree(SOURCE, tmp_path / "crds")
    shutil.copytree(REPO_ROOT / "helm", tmp_path / "helm")
    assert run_make(tmp_path, "verify-chart-crds").returncode == 0

    drifted = tmp_path / "helm" / "acinode" / "crds" / SOURCE_CRDS[0]
    drifted.write_text(drifted.read_text().replace("served: true", "served: false"))
    failed = run_make(tmp_path, "verify-chart-crds")
    assert failed.returncode != 0
    assert f"differs from crds/{SOURCE_CRDS[0]}: run make update-chart-crds" in failed.stderr

    assert run_make(tmp_path, "update-chart-crds").returncode == 0
    assert run_make(tmp_path, "verify-chart-crds").returncode == 0
    assert drifted.read_bytes() == (SOURCE / SOURCE_CRDS[0]).read_bytes()
