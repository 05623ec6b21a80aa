"""Build the virtual-kubelet peers of ``bench/peer.py`` from the Go module pinned in this folder.

``go.mod`` declares ``github.com/virtual-kubelet/virtual-kubelet/cmd/virtual-kubelet`` as a Go *tool* at one
pinned version (v1.14.1; go.sum pins every dependency through the Go checksum database). Two binaries are built
once into ``.cache/virtual-kubelet/<version>/`` and rebuilt only when their sources or flags change:

- ``virtual-kubelet``: the reference binary, with its ``mock`` provider, exactly as published;
- ``tunedmock``: ``tunedmock/main.go``, the same node library with a provider that behaves as the mock, and a
  Kubernetes client rate limit set by flags (the reference binary keeps client-go's 5 requests/s).

Only ``bench/peer.py`` (and ``make bench``) builds them: CI's test run never does.

Command line::

    python bench/virtualkubelet/vkbin.py            # build both if needed, print their paths
    python bench/virtualkubelet/vkbin.py --force    # rebuild
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

# tests/, for support.gobuild when this file is run as a script
sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
from support import gobuild

SOURCE_DIR = Path(__file__).resolve().parent
REPO_ROOT = SOURCE_DIR.parents[1]
MODULE = "github.com/virtual-kubelet/virtual-kubelet"
PACKAGES = {"virtual-kubelet": f"{MODULE}/cmd/virtual-kubelet", "tunedmock": "./tunedmock"}
MIN_GO = (1, 26)  # the module's own go directive (go 1.26.0)

BuildError = gobuild.GoBuildError  # what build() raises, under the name this module always used


def version() -> str:
    """The virtual-kubelet version go.mod requires."""
    return gobuild.required_version(SOURCE_DIR / "go.mod", MODULE)


def ldflags() -> str:
    # As the project's Makefile stamps it (cmd/virtual-kubelet/main.go: buildVersion, buildTime).
    return f"-s -w -X main.buildVersion={version()} -X main.buildTime=pinned"


def cache_dir() -> Path:
    root = os.environ.get("ACINODE_VIRTUAL_KUBELET_CACHE", REPO_ROOT / ".cache" / "virtual-kubelet")
    return Path(root) / version()


def _binary(name: str) -> gobuild.GoBinary:
    package = PACKAGES[name]
    sources = [SOURCE_DIR / "go.mod", SOURCE_DIR / "go.sum"]
    if package.startswith("./"):  # built from this folder: its Go files are sources too
        sources += sorted((SOURCE_DIR / package).glob("*.go"))
    flags = ldflags()
    return gobuild.GoBinary(
        path=cache_dir() / name,
        module_dir=SOURCE_DIR,
        package=package,
        ldflags=flags,
        sources=tuple(sources),
        digest_extras=(flags,),
        description=f"{name} (virtual-kubelet {version()})",
        log_label="virtual-kubelet",
        min_go=MIN_GO,
        expected_duration="minutes on 2 cores, the first time",
        low_priority=True,  # the machine is shared
        cgo=False,
    )


def source_digest(name: str) -> str:
    return _binary(name).digest()


def build(name: str = "virtual-kubelet", force: bool = False) -> Path:
    """Return the binary ``name`` (see ``PACKAGES``), building it first if it is missing or its sources
    changed."""
    return _binary(name).build(force=force)


def main(argv: Sequence[str] | None = None) -> int:
    return gobuild.main(__doc__ or "", lambda force: (build(name, force=force) for name in PACKAGES), argv)


if __name__ == "__main__":
    sys.exit(main())
