"""The chart carries copies of the CRDs in crds/ (the single source): they must not drift apart."""

from __future__ import annotations

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
