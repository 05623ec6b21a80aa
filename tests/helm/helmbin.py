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
REPO_ROOT = SOURCE_DIR.parent.parent
HELM_PACKAGE = "helm.sh/helm/v3/cmd/helm"
MIN_GO = (1, 24)  # the `tool` directive in go.mod
PROGRESS_EVERY_SECONDS = 20.0


class HelmBuildError(RuntimeError):
    """helm could not be built; the message says why."""


def log(message: str) -> None:
    print(f"[helm {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _module_version(module: str) -> str:
    """The version of ``module`` that go.mod requires (helm, client-go…)."""
    pattern = re.compile(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", re.MULTILINE)
    match = pattern.search((SOURCE_DIR / "go.mod").read_text())
    if match is None:
        raise HelmBuildError(f"{module} is not required in {SOURCE_DIR / 'go.mod'}")
    return match[1]


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


def source_digest() -> str:
    digest = hashlib.sha256()
    for path in (SOURCE_DIR / "go.mod", SOURCE_DIR / "go.sum"):
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    digest.update(ldflags().encode())
    return digest.hexdigest()[:16]


def _check_go() -> str:
    go = shutil.which("go")
    if go is None:
        raise HelmBuildError(f"Go is not installed: building helm needs Go >= {MIN_GO[0]}.{MIN_GO[1]}")
    out = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout.strip()
    match = re.match(r"go(\d+)\.(\d+)", out)
    if not match or (int(match[1]), int(match[2])) < MIN_GO:
        raise HelmBuildError(f"{out or 'go'} is too old: the go.mod tool directive needs Go >= 1.24")
    return go


def build(force: bool = False) -> Path:
    """Return the helm binary, building it first if it is missing or go.mod/go.sum changed."""
    target = cache_dir() / "helm"
    stamp = cache_dir() / "helm.source"
    digest = source_digest()
    if not force and target.exists() and stamp.exists() and stamp.read_text().strip() == digest:
        return target
    go = _check_go()
    target.parent.mkdir(parents=True, exist_ok=True)
    log(f"building helm {helm_version()} from its Go module into {target} (a few minutes on 2 cores)")
    started = time.monotonic()
    tmp = target.with_name("helm.tmp")
    cmd = [go, "build", "-v", "-trimpath", "-ldflags", ldflags(), "-o", str(tmp), HELM_PACKAGE]
    nice = shutil.which("nice")
    if nice:  # the machines that run the tests are shared: build at a lower priority
        cmd = [nice, "-n", "10", *cmd]
    env = {**os.environ, "CGO_ENABLED": "0"}
    proc = subprocess.Popen(
        cmd,
        cwd=SOURCE_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
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
        raise HelmBuildError("go build of helm failed:\n" + "\n".join(tail))
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
        print(build(force=args.force))
    except HelmBuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
