"""Build metrics-server from its Go module, pinned in this folder's go.mod/go.sum, for the autoscaling tests.

The Horizontal Pod Autoscaler reads pod usage through the ``metrics.k8s.io`` API, which metrics-server serves
from each node's ``/metrics/resource``. Testing acinode's usage numbers against the real metrics-server and the
real HPA controller (kube-controller-manager) proves them against code acinode did not write. The binary is
built once into ``.cache/metrics-server/<version>/metrics-server`` and rebuilt only when go.mod/go.sum change.

Command line::

    python tests/metricsserver/msbin.py            # build if needed, print the binary's path
    python tests/metricsserver/msbin.py --force    # rebuild
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

# tests/, for support.gobuild when this file is run as a script
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from support import gobuild

SOURCE_DIR = Path(__file__).resolve().parent
REPO_ROOT = SOURCE_DIR.parent.parent
PACKAGE = "sigs.k8s.io/metrics-server/cmd/metrics-server"
MIN_GO = (1, 24)  # the `tool` directive in go.mod


def version() -> str:
    return gobuild.required_version(SOURCE_DIR / "go.mod", "sigs.k8s.io/metrics-server")


def cache_dir() -> Path:
    return (
        Path(os.environ.get("ACINODE_METRICS_SERVER_CACHE", REPO_ROOT / ".cache" / "metrics-server"))
        / version()
    )


def _binary() -> gobuild.GoBinary:
    flags = "-s -w"
    return gobuild.GoBinary(
        path=cache_dir() / "metrics-server",
        module_dir=SOURCE_DIR,
        package=PACKAGE,
        ldflags=flags,
        sources=(SOURCE_DIR / "go.mod", SOURCE_DIR / "go.sum"),
        digest_extras=(flags,),
        description=f"metrics-server {version()}",
        log_label="metrics-server",
        min_go=MIN_GO,
        expected_duration="a few minutes on 2 cores",
        low_priority=True,  # the machines that run the tests are shared
        cgo=False,
    )


def build(force: bool = False) -> Path:
    """Return the metrics-server binary, building it first if it is missing or go.mod/go.sum changed."""
    return _binary().build(force=force)


def main(argv: Sequence[str] | None = None) -> int:
    return gobuild.main(__doc__ or "", lambda force: [build(force=force)], argv)


if __name__ == "__main__":
    sys.exit(main())
