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

import argparse
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

SOURCE_DIR = Path(__file__).resolve().parent
REPO_ROOT = SOURCE_DIR.parents[1]
MODULE = "github.com/virtual-kubelet/virtual-kubelet"
PACKAGES = {"virtual-kubelet": f"{MODULE}/cmd/virtual-kubelet", "tunedmock": "./tunedmock"}
MIN_GO = (1, 26)  # the module's own go directive (go 1.26.0)
PROGRESS_EVERY_SECONDS = 20.0


class BuildError(RuntimeError):
    """virtual-kubelet could not be built; the message says why."""


def log(message: str) -> None:
    print(f"[virtual-kubelet {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def version() -> str:
    """The virtual-kubelet version go.mod requires."""
    pattern = re.compile(rf"^\s*(?:require\s+)?{re.escape(MODULE)}\s+(v\S+)", re.MULTILINE)
    match = pattern.search((SOURCE_DIR / "go.mod").read_text())
    if match is None:
        raise BuildError(f"{MODULE} is not required in {SOURCE_DIR / 'go.mod'}")
    return match[1]


def ldflags() -> str:
    # As the project's Makefile stamps it (cmd/virtual-kubelet/main.go: buildVersion, buildTime).
    return f"-s -w -X main.buildVersion={version()} -X main.buildTime=pinned"


def cache_dir() -> Path:
    root = os.environ.get("ACINODE_VIRTUAL_KUBELET_CACHE", REPO_ROOT / ".cache" / "virtual-kubelet")
    return Path(root) / version()


def source_digest(name: str) -> str:
    digest = hashlib.sha256()
    sources = [SOURCE_DIR / "go.mod", SOURCE_DIR / "go.sum"]
    if PACKAGES[name].startswith("./"):
        sources += sorted((SOURCE_DIR / PACKAGES[name]).glob("*.go"))
    for path in sources:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    digest.update(ldflags().encode())
    return digest.hexdigest()[:16]


def _check_go() -> str:
    go = shutil.which("go")
    if go is None:
        raise BuildError(f"Go is not installed: building virtual-kubelet needs Go >= {MIN_GO[0]}.{MIN_GO[1]}")
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout.strip()
    match = re.match(r"go(\d+)\.(\d+)", out)
    if not match or (int(match[1]), int(match[2])) < MIN_GO:
        raise BuildError(f"{out or 'go'} is too old: virtual-kubelet {version()} needs Go >= 1.26")
    return go


def build(name: str = "virtual-kubelet", force: bool = False) -> Path:
    """Return the binary ``name`` (see ``PACKAGES``), building it first if it is missing or its sources
    changed."""
    target = cache_dir() / name
    stamp = cache_dir() / f"{name}.source"
    digest = source_digest(name)
    if not force and target.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return target
    go = _check_go()
    target.parent.mkdir(parents=True, exist_ok=True)
    log(f"building {name} (virtual-kubelet {version()}) into {target} (minutes on 2 cores, the first time)")
    started = time.monotonic()
    tmp = target.with_name(f"{name}.tmp")
    cmd = [go, "build", "-v", "-trimpath", "-ldflags", ldflags(), "-o", str(tmp), PACKAGES[name]]
    nice = shutil.which("nice")
    if nice:  # the machine is shared: build at a lower priority
        cmd = [nice, "-n", "10", *cmd]
    env = {**os.environ, "CGO_ENABLED": "0"}
    proc = subprocess.Popen(
        cmd, cwd=SOURCE_DIR, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    packages, tail, last_report = 0, list[str](), time.monotonic()
    for line in proc.stdout:
        tail = [*tail[-40:], line.rstrip()]
        if not line.startswith((" ", "#", "go:")):
            packages += 1
        if time.monotonic() - last_report >= PROGRESS_EVERY_SECONDS:
            last_report = time.monotonic()
            log(f"  still building: {packages} packages compiled, {time.monotonic() - started:.0f}s elapsed")
    if proc.wait() != 0:
        raise BuildError(f"go build of {name} failed:\n" + "\n".join(tail))
    os.replace(tmp, target)
    stamp.write_text(digest + "\n")
    log(f"built {target} in {time.monotonic() - started:.0f}s ({packages} packages)")
    return target


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args(argv)
    try:
        for name in PACKAGES:
            print(build(name, force=args.force))
    except BuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
