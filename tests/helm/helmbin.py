"""Build the ``helm`` binary from its Go module, pinned in this folder's go.mod/go.sum, for the chart tests.

There is no helm on the machines that run acinode's tests, and downloading release binaries would bypass the
Go checksum database. So ``tests/helm/go.mod`` declares ``helm.sh/helm/v3/cmd/helm`` as a Go *tool* (Go >= 1.24)
at one pinned version, and this helper builds it once into ``.cache/helm/<version>/helm``. It rebuilds only when
go.mod, go.sum or the build flags change (a stamp file records their digest).

Command line::

    python tests/helm/helmbin.py            # build if needed, print the binary's path
    python tests/helm/helmbin.py --force    # rebuild

From Python (pytest fixtures): ``helmbin.build()`` returns the path.
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
HELM_PACKAGE = "helm.sh/helm/v3/cmd/helm"
MIN_GO = (1, 24)  # the `tool` directive in go.mod

HelmBuildError = gobuild.GoBuildError  # what build() raises, under the name this module always used


def _module_version(module: str) -> str:
    """The version of ``module`` that go.mod requires (helm, client-go…)."""
    return gobuild.required_version(SOURCE_DIR / "go.mod", module)


def helm_version() -> str:
    return _module_version("helm.sh/helm/v3")


def ldflags() -> str:
    """Version stamps as helm's own Makefile sets them: its version, and the Kubernetes version it targets
    (client-go v0.X.Y -> 1.X), which ``helm template`` reports as ``.Capabilities.KubeVersion``."""
    minor = _module_version("k8s.io/client-go").split(".")[1]
    return " ".join(
        [
            "-s -w",
            f"-X helm.sh/helm/v3/internal/version.version={helm_version()}",
            "-X helm.sh/helm/v3/internal/version.gitTreeState=clean",
            "-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMajor=1",
            f"-X helm.sh/helm/v3/pkg/lint/rules.k8sVersionMinor={minor}",
            "-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1",
            f"-X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor={minor}",
        ]
    )


def cache_dir() -> Path:
    return Path(os.environ.get("ACINODE_HELM_CACHE", REPO_ROOT / ".cache" / "helm")) / helm_version()


def _binary() -> gobuild.GoBinary:
    flags = ldflags()
    return gobuild.GoBinary(
        path=cache_dir() / "helm",
        module_dir=SOURCE_DIR,
        package=HELM_PACKAGE,
        ldflags=flags,
        sources=(SOURCE_DIR / "go.mod", SOURCE_DIR / "go.sum"),
        digest_extras=(flags,),
        description=f"helm {helm_version()}",
        log_label="helm",
        min_go=MIN_GO,
        expected_duration="a few minutes on 2 cores",
        low_priority=True,  # the machines that run the tests are shared
        cgo=False,
    )


def source_digest() -> str:
    return _binary().digest()


def build(force: bool = False) -> Path:
    """Return the helm binary, building it first if it is missing or go.mod/go.sum changed."""
    return _binary().build(force=force)


def main(argv: Sequence[str] | None = None) -> int:
    return gobuild.main(__doc__ or "", lambda force: [build(force=force)], argv)


if __name__ == "__main__":
    sys.exit(main())
