"""Build a binary from a Go module pinned in this repository, once, into a cache folder.

The control plane (``tests/controlplane/kubecluster.py``), helm (``tests/helm/helmbin.py``) and the
virtual-kubelet peers (``bench/virtualkubelet/vkbin.py``) are built this way. Beside each binary a stamp file,
``<binary>.source``, holds the digest of the files and flags it was built from; the binary is rebuilt only when
that digest changes. A first build takes minutes on 2 cores, so it logs a progress line every
``PROGRESS_EVERY_SECONDS``.
"""

from __future__ import annotations

import argparse
import collections
import dataclasses
import hashlib
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

PROGRESS_EVERY_SECONDS = 20.0
GO_INSTALL_URL = "https://go.dev/doc/install"
FAILURE_TAIL_LINES = 40


class GoBuildError(RuntimeError):
    """A Go binary could not be built; the message says why."""


def log(label: str, message: str) -> None:
    print(f"[{label} {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def required_version(go_mod: Path, module: str) -> str:
    """The version of ``module`` that ``go_mod`` requires (on a ``require`` line or in a require block)."""
    pattern = re.compile(rf"^\s*(?:require\s+)?{re.escape(module)}\s+(v\S+)", re.MULTILINE)
    match = pattern.search(go_mod.read_text())
    if match is None:
        raise GoBuildError(f"{module} is not required in {go_mod}")
    return match[1]


def source_digest(sources: Iterable[Path], extras: Iterable[str] = ()) -> str:
    """A short digest of each source's file name and bytes, in the order given, then of each extra string.

    The stamps in existing caches were computed exactly this way: any change here rebuilds every binary."""
    digest = hashlib.sha256()
    for path in sources:
        digest.update(path.name.encode())
        digest.update(path.read_bytes())
    for extra in extras:
        digest.update(extra.encode())
    return digest.hexdigest()[:16]


def stamp_path(binary: Path) -> Path:
    return binary.with_name(f"{binary.name}.source")


def is_current(binary: Path, digest: str) -> bool:
    """Whether ``binary`` exists and was built from sources with this digest."""
    stamp = stamp_path(binary)
    return binary.exists() and stamp.exists() and stamp.read_text().strip() == digest


def check_go(what: str, minimum: tuple[int, int], hint: str = "") -> str:
    """The path of ``go`` when it is at least ``minimum``; otherwise a GoBuildError saying that building
    ``what`` needs that version (``hint``: another way out, appended to the message)."""
    needs = f"building {what} needs Go >= {minimum[0]}.{minimum[1]}"
    or_else = f", {hint}" if hint else ""
    go = shutil.which("go")
    if go is None:
        raise GoBuildError(f"Go is not installed: {needs} ({GO_INSTALL_URL}){or_else}")
    result = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=False)
    found = result.stdout.strip()
    # search, not match: development builds report "devel go1.27-…"
    match = re.search(r"go(\d+)\.(\d+)", found)
    if result.returncode != 0 or match is None:
        output = found or result.stderr.strip()
        raise GoBuildError(f"`{go} env GOVERSION` printed {output!r}, not a Go version: {needs}{or_else}")
    if (int(match[1]), int(match[2])) < minimum:
        raise GoBuildError(f"{found} is too old: {needs}{or_else}")
    return go


def run_go_build(cmd: Sequence[str], cwd: Path, env: Mapping[str, str], what: str, label: str) -> int:
    """Run ``go build -v …`` (building ``what``), logging progress under ``label``; return how many packages it
    compiled, or raise a GoBuildError with the end of its output."""
    started = last_report = time.monotonic()
    proc = subprocess.Popen(
        cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    assert proc.stdout is not None
    packages, tail = 0, collections.deque[str](maxlen=FAILURE_TAIL_LINES)
    for line in proc.stdout:
        tail.append(line.rstrip())
        # -v prints each package as it is compiled; errors are indented or under "# package", notes start "go:"
        if not line.startswith((" ", "#", "go:")):
            packages += 1
        if time.monotonic() - last_report >= PROGRESS_EVERY_SECONDS:
            last_report = time.monotonic()
            elapsed = last_report - started
            log(label, f"  still building: {packages} packages compiled, {elapsed:.0f}s elapsed")
    if proc.wait() != 0:
        raise GoBuildError(f"go build of {what} failed:\n" + "\n".join(tail))
    return packages


@dataclasses.dataclass(frozen=True, kw_only=True)
class GoBinary:
    """One binary: ``go build -ldflags <ldflags> <package>`` run in ``module_dir``, written to ``path``."""

    path: Path  # in its cache folder; the stamp is beside it
    module_dir: Path  # holds the pinned go.mod and go.sum
    package: str  # ".", "./folder" or an import path (a Go tool declared in go.mod)
    ldflags: str
    sources: tuple[Path, ...]  # hashed in this order
    digest_extras: tuple[str, ...] = ()  # hashed after the sources: the flags that change the binary
    description: str  # names the binary in log lines and errors: "helm v3.22.0"
    log_label: str  # the log lines' prefix
    min_go: tuple[int, int]
    expected_duration: str  # said before building: "a few minutes on 2 cores"
    go_hint: str = ""  # another way out, said when Go is missing or too old
    low_priority: bool = False  # build under `nice -n 10`, on machines shared with other work
    cgo: bool = True  # False: CGO_ENABLED=0, a static binary that needs no C toolchain

    def digest(self) -> str:
        return source_digest(self.sources, self.digest_extras)

    def build(self, force: bool = False) -> Path:
        """Return ``path``, building it first if it is missing or its sources changed (or ``force``)."""
        digest = self.digest()
        if not force and is_current(self.path, digest):
            return self.path
        go = check_go(self.description, self.min_go, self.go_hint)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        log(self.log_label, f"building {self.description} into {self.path} ({self.expected_duration})")
        started = time.monotonic()
        tmp = self.path.with_name(f"{self.path.name}.tmp")
        cmd = [go, "build", "-v", "-trimpath", "-ldflags", self.ldflags, "-o", str(tmp), self.package]
        nice = shutil.which("nice") if self.low_priority else None
        if nice:
            cmd = [nice, "-n", "10", *cmd]
        env = {**os.environ} if self.cgo else {**os.environ, "CGO_ENABLED": "0"}
        packages = run_go_build(cmd, self.module_dir, env, self.description, self.log_label)
        os.replace(tmp, self.path)
        # The stamp is written last: a build that dies half-way leaves the binary out of date, not trusted.
        stamp_path(self.path).write_text(digest + "\n")
        log(self.log_label, f"built {self.path} in {time.monotonic() - started:.0f}s ({packages} packages)")
        return self.path


def main(description: str, build: Callable[[bool], Iterable[Path]], argv: Sequence[str] | None = None) -> int:
    """A build script's command line: ``[--force]``; ``build(force)`` builds what is out of date and yields the
    binaries, whose paths are printed (for ``$(...)`` in Makefiles)."""
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--force", action="store_true", help="rebuild even if up to date")
    args = parser.parse_args(argv)
    try:
        for path in build(args.force):
            print(path, flush=True)
    except GoBuildError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0
