"""Build go-containerregistry's registry (``pkg/registry``, a real OCI distribution registry, served on loopback by
this folder's ``main.go``) and ``crane`` (a client that pushes and edits images), pinned in this folder's
go.mod/go.sum, for the tests that read image configs from a registry.

Both are built once into ``.cache/ociregistry/<version>/`` and rebuilt only when their sources change.

Command line::

    python tests/ociregistry/ocibin.py            # build if needed, print the binaries' paths
    python tests/ociregistry/ocibin.py --force    # rebuild
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
MODULE = "github.com/google/go-containerregistry"
MIN_GO = (1, 24)  # the `tool` directive in go.mod


def version() -> str:
    return gobuild.required_version(SOURCE_DIR / "go.mod", MODULE)


def cache_dir() -> Path:
    return Path(os.environ.get("ACINODE_OCIREGISTRY_CACHE", REPO_ROOT / ".cache" / "ociregistry")) / version()


def _binary(name: str, package: str) -> gobuild.GoBinary:
    flags = "-s -w"
    return gobuild.GoBinary(
        path=cache_dir() / name,
        module_dir=SOURCE_DIR,
        package=package,
        ldflags=flags,
        sources=(SOURCE_DIR / "go.mod", SOURCE_DIR / "go.sum", SOURCE_DIR / "main.go"),
        digest_extras=(flags, name),
        description=f"go-containerregistry {name} {version()}",
        log_label=name,
        min_go=MIN_GO,
        expected_duration="a minute or two on 2 cores",
        low_priority=True,  # the machines that run the tests are shared
        cgo=False,
    )


def build(force: bool = False) -> tuple[Path, Path]:
    """Return (registry, crane), building them first if missing or go.mod/go.sum changed."""
    registry = _binary("ociregistry", ".").build(force=force)
    return registry, _binary("crane", f"{MODULE}/cmd/crane").build(force=force)


def main(argv: Sequence[str] | None = None) -> int:
    return gobuild.main(__doc__ or "", lambda force: list(build(force=force)), argv)


if __name__ == "__main__":
    sys.exit(main())
