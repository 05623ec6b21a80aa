"""The shared Go build helper (``tests/support/gobuild.py``): source digests and stamps, the Go version check, and
``GoBinary.build`` against a fake ``go`` on PATH (no real Go build, 2 s per test)."""

from __future__ import annotations

import hashlib
import stat
from pathlib import Path

import pytest

from support import gobuild

pytestmark = pytest.mark.timeout(2)

# Records each call, answers `go env GOVERSION`, and for `go build -v … -o OUT …` prints two package lines and
# writes OUT (holding the CGO_ENABLED it saw); FAKE_GO_FAIL makes the build fail with a compiler error.
FAKE_GO = """#!/bin/sh
echo "$*" >> "$FAKE_GO_CALLS"
if [ "$1" = env ]; then
  if [ -n "$FAKE_GO_ENV_FAILS" ]; then echo "go: broken install" >&2; exit 2; fi
  echo "$FAKE_GO_VERSION"
  exit 0
fi
out=""
while [ $# -gt 0 ]; do
  if [ "$1" = "-o" ]; then out="$2"; fi
  shift
done
echo "example.com/app/a"
echo "example.com/app"
if [ -n "$FAKE_GO_FAIL" ]; then
  echo "# example.com/app"
  echo "  ./main.go:3:2: undefined: missing"
  exit 1
fi
echo "CGO_ENABLED=${CGO_ENABLED:-unset}" > "$out"
"""


@pytest.fixture
def fake_go(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Put a fake ``go`` (reporting go1.26.3) alone on PATH; return the file its calls are appended to."""
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    go = bin_dir / "go"
    go.write_text(FAKE_GO)
    go.chmod(go.stat().st_mode | stat.S_IXUSR)
    calls = tmp_path / "go-calls"
    calls.touch()
    monkeypatch.setenv("PATH", str(bin_dir))
    monkeypatch.setenv("FAKE_GO_CALLS", str(calls))
    monkeypatch.setenv("FAKE_GO_VERSION", "go1.26.3")
    return calls


def build_calls(calls: Path) -> list[str]:
    return [line for line in calls.read_text().splitlines() if line.startswith("build ")]


@pytest.fixture
def module_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "module"
    folder.mkdir()
    (folder / "go.mod").write_text("module example.com/app\n\ngo 1.26.0\n")
    (folder / "main.go").write_text("package main\n\nfunc main() {}\n")
    return folder


def app_binary(module_dir: Path, cache: Path, ldflags: str = "-s -w", cgo: bool = True) -> gobuild.GoBinary:
    return gobuild.GoBinary(
        path=cache / "app",
        module_dir=module_dir,
        package=".",
        ldflags=ldflags,
        sources=(module_dir / "go.mod", module_dir / "main.go"),
        digest_extras=(ldflags,),
        description="app v1.0.0",
        log_label="app",
        min_go=(1, 26),
        expected_duration="seconds",
        cgo=cgo,
    )


# --- Digests and stamps ------------------------------------------------------------------------------------


def test_digest_is_sha256_of_names_bytes_then_extras(module_dir: Path) -> None:
    # Pinned: the stamps in existing caches hold digests computed exactly so (a change rebuilds everything).
    sources = [module_dir / "go.mod", module_dir / "main.go"]
    expected = hashlib.sha256()
    for path in sources:
        expected.update(path.name.encode() + path.read_bytes())
    expected.update(b"-s -w")
    assert gobuild.source_digest(sources, ["-s -w"]) == expected.hexdigest()[:16]


def test_digest_changes_with_a_source_its_name_or_an_extra(module_dir: Path) -> None:
    sources = [module_dir / "go.mod", module_dir / "main.go"]
    before = gobuild.source_digest(sources, ["-s -w"])
    assert gobuild.source_digest(sources, ["-s -w"]) == before
    assert gobuild.source_digest(sources, ["-s -w -X main.version=v2"]) != before
    assert gobuild.source_digest(sources) != before
    assert gobuild.source_digest(reversed(sources), ["-s -w"]) != before

    (module_dir / "main.go").write_text("package main\n\nfunc main() { println() }\n")
    assert gobuild.source_digest(sources, ["-s -w"]) != before

    renamed = module_dir / "app.go"
    renamed.write_bytes((module_dir / "main.go").read_bytes())
    assert gobuild.source_digest([module_dir / "go.mod", renamed]) != gobuild.source_digest(
        [module_dir / "go.mod", module_dir / "main.go"]
    )


def test_is_current_needs_the_binary_and_a_stamp_with_the_same_digest(tmp_path: Path) -> None:
    binary = tmp_path / "app"
    assert not gobuild.is_current(binary, "0123456789abcdef")
    binary.write_bytes(b"\x7fELF")
    assert not gobuild.is_current(binary, "0123456789abcdef")  # no stamp
    gobuild.stamp_path(binary).write_text("fedcba9876543210\n")
    assert not gobuild.is_current(binary, "0123456789abcdef")
    gobuild.stamp_path(binary).write_text("0123456789abcdef\n")
    assert gobuild.stamp_path(binary) == tmp_path / "app.source"
    assert gobuild.is_current(binary, "0123456789abcdef")
    binary.unlink()
    assert not gobuild.is_current(binary, "0123456789abcdef")


# --- The Go version check ----------------------------------------------------------------------------------


def test_missing_go_names_what_needs_it_and_the_minimum(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(gobuild.GoBuildError) as err:
        gobuild.check_go("helm v3.22.0", (1, 24), hint="or use a cluster")
    message = str(err.value)
    assert message.startswith("Go is not installed: building helm v3.22.0 needs Go >= 1.24")
    assert gobuild.GO_INSTALL_URL in message
    assert message.endswith(", or use a cluster")


@pytest.mark.parametrize("version", ["go1.25.9", "go1.9"])
def test_too_old_go_says_which_it_found_and_the_minimum(
    fake_go: Path, monkeypatch: pytest.MonkeyPatch, version: str
) -> None:
    monkeypatch.setenv("FAKE_GO_VERSION", version)
    with pytest.raises(
        gobuild.GoBuildError, match=rf"^{version} is too old: building kube needs Go >= 1\.26$"
    ):
        gobuild.check_go("kube", (1, 26))


@pytest.mark.parametrize("version", ["go1.26.0", "go1.26rc1", "go2.0", "devel go1.27-abcdef"])
def test_recent_enough_go_is_returned(fake_go: Path, monkeypatch: pytest.MonkeyPatch, version: str) -> None:
    monkeypatch.setenv("FAKE_GO_VERSION", version)
    assert gobuild.check_go("kube", (1, 26)) == str(fake_go.parent / "fake-bin" / "go")


def test_a_go_that_cannot_say_its_version_is_an_error(fake_go: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_GO_ENV_FAILS", "1")
    with pytest.raises(gobuild.GoBuildError, match=r"go: broken install.*not a Go version: building kube"):
        gobuild.check_go("kube", (1, 26))


# --- Building ----------------------------------------------------------------------------------------------


def test_build_writes_the_binary_and_its_stamp_then_reuses_them(
    fake_go: Path, module_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    binary = app_binary(module_dir, tmp_path / "cache" / "v1")

    assert binary.build() == tmp_path / "cache" / "v1" / "app"
    assert gobuild.stamp_path(binary.path).read_text() == binary.digest() + "\n"
    assert not binary.path.with_name("app.tmp").exists()
    (call,) = build_calls(fake_go)
    assert call == f"build -v -trimpath -ldflags -s -w -o {binary.path}.tmp ."
    log = capsys.readouterr().err
    assert "] building app v1.0.0 into" in log
    assert "(2 packages)" in log  # the "# package" and indented error lines are not packages

    assert binary.build() == binary.path
    assert len(build_calls(fake_go)) == 1  # current: go is not run


def test_build_runs_again_when_a_source_or_flag_changes_or_when_forced(
    fake_go: Path, module_dir: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    app_binary(module_dir, cache).build()
    app_binary(module_dir, cache).build(force=True)
    assert len(build_calls(fake_go)) == 2
    app_binary(module_dir, cache, ldflags="-s -w -X main.version=v2").build()
    assert len(build_calls(fake_go)) == 3
    (module_dir / "main.go").write_text("package main\n\nfunc main() { println() }\n")
    app_binary(module_dir, cache).build()
    app_binary(module_dir, cache).build()
    assert len(build_calls(fake_go)) == 4


def test_without_cgo_the_build_gets_cgo_enabled_0(fake_go: Path, module_dir: Path, tmp_path: Path) -> None:
    assert app_binary(module_dir, tmp_path / "a", cgo=False).build().read_text() == "CGO_ENABLED=0\n"


def test_a_failed_build_raises_with_go_output_and_leaves_no_stamp(
    fake_go: Path, module_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FAKE_GO_FAIL", "1")
    binary = app_binary(module_dir, tmp_path / "cache")
    with pytest.raises(
        gobuild.GoBuildError, match=r"(?s)go build of app v1\.0\.0 failed:\n.*undefined: missing"
    ):
        binary.build()
    assert not binary.path.exists()
    assert not gobuild.stamp_path(binary.path).exists()


def test_a_long_build_logs_progress(
    fake_go: Path,
    module_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(gobuild, "PROGRESS_EVERY_SECONDS", 0.0)
    app_binary(module_dir, tmp_path / "cache").build()
    log = capsys.readouterr().err
    assert "] building app v1.0.0 into" in log
    assert "still building: 1 packages compiled" in log
    assert "still building: 2 packages compiled" in log


# --- go.mod ------------------------------------------------------------------------------------------------


def test_required_version_reads_require_lines_and_blocks(tmp_path: Path) -> None:
    go_mod = tmp_path / "go.mod"
    go_mod.write_text(
        "module example.com/app\n\ngo 1.26.0\n\nrequire example.com/lib v1.2.3\n\n"
        "require (\n\texample.com/other v0.4.0 // indirect\n\texample.com/libx v9.9.9\n)\n"
    )
    assert gobuild.required_version(go_mod, "example.com/lib") == "v1.2.3"
    assert gobuild.required_version(go_mod, "example.com/other") == "v0.4.0"
    with pytest.raises(gobuild.GoBuildError, match=r"example\.com/missing is not required in .*go\.mod"):
        gobuild.required_version(go_mod, "example.com/missing")


# --- The build scripts' command line -----------------------------------------------------------------------


def test_main_prints_each_binary_and_passes_force(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    forced: list[bool] = []

    def build(force: bool) -> list[Path]:
        forced.append(force)
        return [tmp_path / "a", tmp_path / "b"]

    assert gobuild.main("doc", build, []) == 0
    assert gobuild.main("doc", build, ["--force"]) == 0
    assert forced == [False, True]
    assert capsys.readouterr().out.splitlines() == [str(tmp_path / name) for name in "abab"]


def test_main_reports_a_build_error_on_stderr(capsys: pytest.CaptureFixture[str]) -> None:
    def build(force: bool) -> list[Path]:
        raise gobuild.GoBuildError("Go is not installed")

    assert gobuild.main("doc", build, []) == 1
    assert capsys.readouterr().err == "error: Go is not installed\n"
