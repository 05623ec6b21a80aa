#!/usr/bin/env python3
"""Build acinode's images without a container engine: Debian packages + PyPI wheels -> an OCI archive.

    python image/build.py build operator [--arch amd64] [--out dist/acinode-image.oci.tar]
    python image/build.py build test     (Debian with bash and curl, for the seed's test pod)
    python image/build.py lock  operator|test|python  (re-resolve the pinned inputs; commit the result)

Inputs are pinned: the Debian packages by version and SHA-256 (image/lock/<image>-<arch>.lock, resolved by apt
against Debian bookworm), the Python dependencies by version and SHA-256 (image/requirements.lock), the wheel
builder (image/build-requirements.txt). The rootfs is assembled distroless-style: each .deb's files are extracted
(merged /usr, no maintainer scripts, no docs but the copyright files), its control file kept in
/var/lib/dpkg/status.d/ for SBOM scanners. The operator image then gets acinode's wheel and its dependencies in
/usr/lib/python3/dist-packages, byte-compiled by the image's own Python (unchecked-hash .pyc: no timestamps).
image/oci.py writes the layers and the OCI layout deterministically (SOURCE_DATE_EPOCH, sorted entries, fixed
owners, gzip mtime 0). Same inputs, same digest. The last line printed is the image (manifest) digest.

Needs: root (chroot for byte-compiling), dpkg-deb, apt-get (lock only), the Debian archive keyring; the Debian
mirrors are those of this machine's apt sources (or DEBIAN_MIRROR / DEBIAN_SECURITY_MIRROR).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import oci

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
CACHE = REPO / ".cache" / "image"
SUITE = "bookworm"
PY_VERSION = "3.11"
NONROOT = 65532
EPOCH_PATHS = ("operator", "pyproject.toml", "README.md", "image", "helm/acinode/Chart.yaml")

# Debian architecture -> (OCI architecture, OCI variant, wheel platform machine).
ARCHES = {"amd64": ("amd64", "", "x86_64"), "arm64": ("arm64", "v8", "aarch64")}


@dataclass(frozen=True)
class ImageSpec:
    name: str
    packages: list[str]  # resolved with their dependencies by apt
    exclude: set[str] = field(default_factory=set)  # dependencies left out (never used at run time)
    python: bool = False


IMAGES = {
    "operator": ImageSpec(
        "operator",
        packages=[
            "python3.11-minimal",
            "libpython3.11-stdlib",
            "ca-certificates",
            "libgcc-s1",
            "base-files",
            "tzdata",
        ],
        exclude={
            # Package management and maintainer-script tooling: nothing runs them in the image.
            "dpkg",
            "tar",
            "debconf",
            "debconf-2.0",
            "perl-base",
            "openssl",
            "readline-common",
            "libselinux1",
            "libpcre2-8-0",
            "libacl1",
            "libzstd1",
            "libmd0",
            "mawk",
            "debianutils",
            "sensible-utils",
            # Only Python modules acinode never imports need these (nis, dbm, sqlite3, readline, curses).
            "libnsl2",
            "libtirpc3",
            "libtirpc-common",
            "libgssapi-krb5-2",
            "libkrb5-3",
            "libkrb5support0",
            "libk5crypto3",
            "libkeyutils1",
            "libcom-err2",
            "libdb5.3",
            "libsqlite3-0",
            "libreadline8",
            "libncursesw6",
            "libtinfo6",
        },
        python=True,
    ),
    "test": ImageSpec(
        "test",
        packages=[
            "base-files",
            "bash",
            "dash",
            "coreutils",
            "curl",
            "ca-certificates",
            "grep",
            "sed",
            "iproute2",
            "netbase",
            "procps",
        ],
        exclude={
            "dpkg",
            "tar",
            "debconf",
            "debconf-2.0",
            "perl-base",
            "openssl",
            "readline-common",
            "mawk",
            "debianutils",
            "sensible-utils",
            "init-system-helpers",
            "libpam-modules",
            "libpam-modules-bin",
            "libpam-runtime",
            "libpam0g",
        },
    ),
}

DROP_PREFIXES = (
    "usr/share/man/",
    "usr/share/info/",
    "usr/share/lintian/",
    "usr/share/locale/",
    "usr/share/bug/",
    "usr/share/doc-base/",
    "usr/share/menu/",
    "usr/share/bash-completion/",
    "etc/init.d/",
    "etc/cron.daily/",
    "etc/logrotate.d/",
    "usr/share/common-licenses/",
)
USRMERGE = ("bin", "sbin", "lib", "lib32", "lib64", "libx32")


def log(message: str) -> None:
    print(f"[image] {message}", file=sys.stderr, flush=True)


def run(*argv: str | Path, **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(a) for a in argv], check=True, text=True, **kwargs)  # type: ignore[call-overload,no-any-return]


# ---------------------------------------------------------------------------------------------------------
# Debian mirrors and the apt resolution (lock)


def mirrors() -> dict[str, str]:
    """Base URLs of the Debian archive ("debian") and the security archive ("debian-security"): the
    environment's, else those this machine's apt sources use for bookworm."""
    found: dict[str, str] = {}
    texts = []
    for path in [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]:
        if path.is_file():
            texts.append(path.read_text(errors="replace"))
    for text in texts:
        # deb822 stanzas
        for stanza in re.split(r"\n\s*\n", text):
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.search(r"^Suites:\s*(.+)$", stanza, re.M)
            if uris and suites:
                for suite in suites.group(1).split():
                    key = (
                        "debian-security"
                        if suite == f"{SUITE}-security"
                        else "debian"
                        if suite == SUITE
                        else ""
                    )
                    if key:
                        found.setdefault(key, uris.group(1).rstrip("/"))
        # one-line format
        for match in re.finditer(r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+(\S+)\s", text, re.M):
            suite = match.group(2)
            key = (
                "debian-security"
                if suite.startswith(f"{SUITE}-security") or suite.startswith(f"{SUITE}/updates")
                else "debian"
                if suite == SUITE
                else ""
            )
            if key:
                found.setdefault(key, match.group(1).rstrip("/"))
    if os.environ.get("DEBIAN_MIRROR"):
        found["debian"] = os.environ["DEBIAN_MIRROR"].rstrip("/")
    if os.environ.get("DEBIAN_SECURITY_MIRROR"):
        found["debian-security"] = os.environ["DEBIAN_SECURITY_MIRROR"].rstrip("/")
    missing = {"debian", "debian-security"} - found.keys()
    if missing:
        raise SystemExit(
            f"no Debian {SUITE} mirror for {sorted(missing)}: set DEBIAN_MIRROR / DEBIAN_SECURITY_MIRROR"
        )
    return found


def apt_root(arch: str) -> tuple[Path, list[str]]:
    """A private apt configuration for `arch` (the host's apt state is never touched), updated."""
    root = CACHE / "apt" / arch
    for sub in (
        "etc/apt/sources.list.d",
        "etc/apt/preferences.d",
        "etc/apt/apt.conf.d",
        "var/lib/apt/lists/partial",
        "var/cache/apt/archives/partial",
        "var/lib/dpkg",
    ):
        (root / sub).mkdir(parents=True, exist_ok=True)
    (root / "var/lib/dpkg/status").write_text("")
    keyring = "/usr/share/keyrings/debian-archive-keyring.gpg"
    urls = mirrors()
    (root / "etc/apt/sources.list.d/debian.sources").write_text(
        f"Types: deb\nURIs: {urls['debian']}\nSuites: {SUITE} {SUITE}-updates\nComponents: main\nSigned-By: {keyring}\n\n"
        f"Types: deb\nURIs: {urls['debian-security']}\nSuites: {SUITE}-security\nComponents: main\nSigned-By: {keyring}\n"
    )
    options = [
        "-o",
        f"Dir={root}",
        "-o",
        f"Dir::State::status={root}/var/lib/dpkg/status",
        "-o",
        f"APT::Architecture={arch}",
        "-o",
        f"APT::Architectures::={arch}",
        "-o",
        "Debug::NoLocking=1",
        "-o",
        "APT::Install-Recommends=false",
        "-o",
        "Acquire::Languages=none",
    ]
    log(f"apt-get update ({arch}, private state in {root.relative_to(REPO)})")
    run("apt-get", *options, "-qq", "update")
    return root, options


@dataclass(frozen=True)
class Deb:
    name: str
    version: str
    arch: str
    sha256: str
    archive: str  # "debian" or "debian-security"
    path: str  # pool/... below the archive's base URL

    def line(self) -> str:
        return f"{self.name} {self.version} {self.arch} {self.sha256} {self.archive} {self.path}"


def lock_file(image: str, arch: str) -> Path:
    return HERE / "lock" / f"{image}-{arch}.lock"


def resolve(spec: ImageSpec, arch: str) -> list[Deb]:
    _, options = apt_root(arch)
    out = run(
        "apt-get", *options, "install", "-qq", "--print-uris", "-y", *spec.packages, capture_output=True
    ).stdout
    wanted: list[tuple[str, str]] = []
    for line in out.splitlines():
        if not line.startswith("'"):
            continue
        filename = line.split()[1]
        name, version, _ = filename[: -len(".deb")].split("_")
        version = urllib.parse.unquote(version)
        if name in spec.exclude:
            continue
        wanted.append((name, version))
    shown = run("apt-cache", *options, "show", *(f"{n}={v}" for n, v in wanted), capture_output=True).stdout
    debs: dict[str, Deb] = {}
    for stanza in shown.strip().split("\n\n"):
        fields = dict(re.findall(r"^([A-Za-z0-9-]+): (.*)$", stanza, re.M))
        name = fields["Package"]
        if name in debs or (name, fields["Version"]) not in wanted:
            continue
        archive = (
            "debian-security"
            if "/updates/" in fields["Filename"] or fields["Filename"].startswith("pool/updates/")
            else "debian"
        )
        # apt-cache lists every source of a version; the security archive's pool is pool/updates/.
        debs[name] = Deb(
            name, fields["Version"], fields["Architecture"], fields["SHA256"], archive, fields["Filename"]
        )
    return [debs[name] for name in sorted(debs)]


def write_lock(spec: ImageSpec, arch: str) -> None:
    debs = resolve(spec, arch)
    path = lock_file(spec.name, arch)
    path.parent.mkdir(parents=True, exist_ok=True)
    header = (
        f"# Debian {SUITE} packages of the {spec.name} image ({arch}), resolved by `image/build.py lock {spec.name}`.\n"
        "# name version architecture sha256 archive path\n"
    )
    path.write_text(header + "".join(deb.line() + "\n" for deb in debs))
    log(f"{path.relative_to(REPO)}: {len(debs)} packages")


def read_lock(image: str, arch: str) -> list[Deb]:
    path = lock_file(image, arch)
    if not path.exists():
        raise SystemExit(f"{path} is missing: run `python image/build.py lock {image} --arch {arch}`")
    debs = []
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            debs.append(Deb(*line.split()))
    return debs


def fetch(url: str, dest: Path, sha256: str) -> None:
    if dest.exists() and hashlib.sha256(dest.read_bytes()).hexdigest() == sha256:
        return
    dest.parent.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(url, timeout=120) as response:
        data = response.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise SystemExit(f"{url}: sha256 {digest}, the lock says {sha256}")
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, dest)


def download(debs: Iterable[Deb]) -> list[tuple[Deb, Path]]:
    urls = mirrors()
    out = []
    for deb in debs:
        dest = CACHE / "debs" / f"{deb.sha256}.deb"
        try:
            fetch(f"{urls[deb.archive]}/{deb.path}", dest, deb.sha256)
        except urllib.error.HTTPError as error:
            raise SystemExit(
                f"{deb.name} {deb.version}: {error} — the mirror no longer serves this version (a Debian point "
                "release replaced it): re-resolve with `make image-lock` (or point DEBIAN_MIRROR at a snapshot)"
            ) from error
        out.append((deb, dest))
    return out


# ---------------------------------------------------------------------------------------------------------
# The rootfs


def merged(name: str) -> str:
    """Merged /usr: /bin, /lib... go to /usr/bin, /usr/lib... (the top-level names are symlinks)."""
    head, _, rest = name.partition("/")
    if head in USRMERGE:
        return f"usr/{head}/{rest}" if rest else f"usr/{head}"
    return name


def keep(name: str, package: str) -> bool:
    if name.startswith("usr/share/doc/"):
        # Keep each package's copyright file: the licences travel with the binaries.
        return name.endswith("/copyright") or (
            name.count("/") <= 3 and not name.endswith((".gz", ".html", ".txt"))
        )
    if package == "base-files":
        return name in {
            "etc",
            "usr",
            "usr/lib",
            "etc/os-release",
            "usr/lib/os-release",
            "etc/debian_version",
        } or name.startswith("usr/share/doc")
    return not name.startswith(DROP_PREFIXES)


def extract(deb: Deb, path: Path, root: Path) -> None:
    proc = subprocess.Popen(["dpkg-deb", "--fsys-tarfile", str(path)], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    pending_links: list[tuple[str, str]] = []
    with tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
        for member in tar:
            name = merged(
                os.path.normpath(member.name).lstrip("./") if member.name not in (".", "./") else ""
            )
            if not name or name == "." or not keep(name, deb.name):
                continue
            dest = root / name
            if member.isdir():
                if dest.is_symlink():
                    continue
                dest.mkdir(parents=True, exist_ok=True)
                dest.chmod(member.mode & 0o7777)
                continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            if dest.is_symlink() or dest.exists():
                if dest.is_dir() and not dest.is_symlink():
                    continue
                dest.unlink()
            if member.issym():
                os.symlink(member.linkname, dest)
            elif member.islnk():
                pending_links.append((name, merged(os.path.normpath(member.linkname).lstrip("./"))))
            elif member.isfile():
                source = tar.extractfile(member)
                assert source is not None
                with dest.open("wb") as out:
                    shutil.copyfileobj(source, out)
                dest.chmod(member.mode & 0o7777 & ~0o6000)  # no setuid/setgid in these images
            # devices, fifos: none in the packages used here; skipped
    if proc.wait() != 0:
        raise SystemExit(f"dpkg-deb failed on {path}")
    for name, target in pending_links:  # hard links: a copy (layers dedupe nothing anyway)
        if (root / target).exists():
            shutil.copy2(root / target, root / name)
    control = run("dpkg-deb", "-f", path, capture_output=True).stdout
    status = root / "var/lib/dpkg/status.d" / deb.name
    status.parent.mkdir(parents=True, exist_ok=True)
    status.write_text(control.rstrip("\n") + "\nStatus: install ok installed\n")


def base_rootfs(root: Path, debs: list[tuple[Deb, Path]], shell_user: bool) -> None:
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    for top in USRMERGE[:4]:
        (root / "usr" / top).mkdir(parents=True, exist_ok=True)
        os.symlink(f"usr/{top}", root / top)
    for deb, path in debs:
        extract(deb, path, root)
    for top in USRMERGE[4:]:
        if (root / "usr" / top).exists() and not (root / top).exists():
            os.symlink(f"usr/{top}", root / top)
    etc = root / "etc"
    etc.mkdir(exist_ok=True)
    shell = "/bin/bash" if shell_user else "/usr/sbin/nologin"
    (etc / "passwd").write_text(
        f"root:x:0:0:root:/root:{shell}\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n"
        f"nonroot:x:{NONROOT}:{NONROOT}:nonroot:/home/nonroot:/usr/sbin/nologin\n"
    )
    (etc / "group").write_text(f"root:x:0:\nnogroup:x:65534:\nnonroot:x:{NONROOT}:\n")
    (etc / "nsswitch.conf").write_text("passwd: files\ngroup: files\nhosts: files dns\nnetworks: files\n")
    # What update-ca-certificates would generate: every Mozilla CA, in name order, in one bundle.
    certs = sorted((root / "usr/share/ca-certificates/mozilla").glob("*.crt"))
    if certs:
        bundle = etc / "ssl/certs/ca-certificates.crt"
        bundle.parent.mkdir(parents=True, exist_ok=True)
        bundle.write_bytes(b"".join(c.read_bytes().rstrip(b"\n") + b"\n" for c in certs))
        ssl = root / "usr/lib/ssl"
        ssl.mkdir(parents=True, exist_ok=True)
        for name, target in (("certs", "/etc/ssl/certs"), ("cert.pem", "/etc/ssl/certs/ca-certificates.crt")):
            if not (ssl / name).is_symlink() and not (ssl / name).exists():
                os.symlink(target, ssl / name)
    if (root / "usr/share/zoneinfo/UTC").exists() and not (etc / "localtime").exists():
        os.symlink("/usr/share/zoneinfo/UTC", etc / "localtime")
    if (root / "usr/bin/dash").exists() and not (root / "usr/bin/sh").exists():
        os.symlink("dash", root / "usr/bin/sh")
    for folder, mode in (
        ("tmp", 0o1777),
        ("root", 0o700),
        ("home/nonroot", 0o755),
        ("var/tmp", 0o1777),
        ("proc", 0o555),
        ("sys", 0o555),
        ("dev", 0o755),
        ("run", 0o755),
    ):
        (root / folder).mkdir(parents=True, exist_ok=True)
        (root / folder).chmod(mode)


# ---------------------------------------------------------------------------------------------------------
# Python: the wheel and the pinned dependencies


def wheel_platforms(machine: str) -> list[str]:
    # Debian bookworm's glibc is 2.36: every manylinux wheel up to 2_36 runs.
    return [f"manylinux_2_{minor}_{machine}" for minor in range(36, 16, -1)] + [f"manylinux2014_{machine}"]


def builder_python() -> Path:
    venv = CACHE / "build-venv"
    python = venv / "bin" / "python"
    stamp = venv / ".requirements"
    wanted = (HERE / "build-requirements.txt").read_text()
    if not python.exists() or not stamp.exists() or stamp.read_text() != wanted:
        log("builder venv (pinned setuptools and wheel)")
        run(sys.executable, "-m", "venv", "--clear", venv)
        run(
            python,
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            "--require-hashes",
            "--no-deps",
            "-r",
            HERE / "build-requirements.txt",
        )
        stamp.write_text(wanted)
    return python


def build_wheel(epoch: int, git_ref: str | None) -> Path:
    """acinode's wheel, built from a clean copy of the sources (no stale build/ directory can leak in): the
    work tree's, or those of the commit `git_ref`."""
    python = builder_python()
    work = CACHE / "wheel"
    if work.exists():
        shutil.rmtree(work)
    src = work / "src"
    src.mkdir(parents=True)
    if git_ref:
        archive = subprocess.run(
            [
                "git",
                "-C",
                str(REPO),
                "archive",
                "--format=tar",
                git_ref,
                "pyproject.toml",
                "README.md",
                "operator",
            ],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(src)], input=archive, check=True)
    else:
        shutil.copy2(REPO / "pyproject.toml", src)
        shutil.copy2(REPO / "README.md", src)
        shutil.copytree(
            REPO / "operator",
            src / "operator",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info"),
        )
    env = dict(os.environ, SOURCE_DATE_EPOCH=str(epoch))
    run(
        python,
        "-m",
        "pip",
        "wheel",
        "-q",
        "--disable-pip-version-check",
        "--no-deps",
        "--no-build-isolation",
        "-w",
        work / "dist",
        src,
        env=env,
    )
    (wheel,) = (work / "dist").glob("acinode-*.whl")
    return wheel


def pip_target(root: Path, machine: str, *args: str | Path) -> None:
    target = root / "usr/lib/python3/dist-packages"
    platforms = [arg for p in wheel_platforms(machine) for arg in ("--platform", p)]
    run(
        sys.executable,
        "-m",
        "pip",
        "install",
        "-q",
        "--disable-pip-version-check",
        "--no-deps",
        "--no-compile",
        "--only-binary=:all:",
        "--python-version",
        PY_VERSION,
        "--implementation",
        "cp",
        "--abi",
        "cp311",
        *platforms,
        "--target",
        target,
        "--upgrade",
        *args,
    )


def install_python(root: Path, arch: str, epoch: int, git_ref: str | None) -> None:
    machine = ARCHES[arch][2]
    log("Python dependencies (image/requirements.lock, hashes required)")
    pip_target(root, machine, "--require-hashes", "-r", HERE / "requirements.lock")
    wheel = build_wheel(epoch, git_ref)
    log(f"acinode: {wheel.name}")
    pip_target(root, machine, wheel)
    site = root / "usr/lib/python3/dist-packages"
    shutil.rmtree(site / "bin", ignore_errors=True)  # console scripts with the builder's shebang
    for dist_info in site.glob("*.dist-info"):
        # The wheel's path on the build machine; RECORD and the installer name are harmless but say nothing.
        (dist_info / "direct_url.json").unlink(missing_ok=True)
        record = dist_info / "RECORD"
        if record.exists():
            lines = [
                line
                for line in record.read_text().splitlines()
                if "direct_url.json" not in line and not line.startswith("../../bin/")
            ]
            record.write_text("\n".join(lines) + "\n")
    python3 = root / "usr/bin/python3"
    if not python3.exists():
        os.symlink(f"python{PY_VERSION}", python3)  # what python3-minimal would add
    script = root / "usr/bin/acinode"
    script.write_text(
        f"#!/usr/bin/python{PY_VERSION}\n"
        'import sys\n\nfrom acinode.cli import main\n\nif __name__ == "__main__":\n    sys.exit(main())\n'
    )
    script.chmod(0o755)


def check_requirements(root: Path) -> None:
    """What pip check would say of the image: every requirement of acinode (and of what it pulls in) is installed
    at a version it accepts. A dependency added to pyproject.toml but not to image/requirements.lock fails here
    (fix: make image-lock), not at the operator's first import in a cluster."""
    from importlib import metadata  # noqa: PLC0415 - the builder's own packaging, not the image's

    from packaging.requirements import Requirement  # noqa: PLC0415
    from packaging.utils import canonicalize_name  # noqa: PLC0415

    site = str(root / "usr/lib/python3/dist-packages")
    installed = {canonicalize_name(d.metadata["Name"]): d for d in metadata.distributions(path=[site])}
    environment = {
        "python_version": PY_VERSION,
        "python_full_version": f"{PY_VERSION}.2",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "os_name": "posix",
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "extra": "",
    }
    problems: list[str] = []
    seen: set[str] = set()
    pending = ["acinode"]
    while pending:
        name = canonicalize_name(pending.pop())
        if name in seen:
            continue
        seen.add(name)
        dist = installed.get(name)
        if dist is None:
            problems.append(f"{name} is not installed")
            continue
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is not None and not requirement.marker.evaluate(environment):
                continue
            wanted = installed.get(canonicalize_name(requirement.name))
            if wanted is None:
                problems.append(
                    f"{dist.metadata['Name']} needs {requirement}: not in image/requirements.lock"
                )
            elif not requirement.specifier.contains(wanted.version, prereleases=True):
                problems.append(f"{dist.metadata['Name']} needs {requirement}, the lock has {wanted.version}")
            pending.append(requirement.name)
    if problems:
        raise SystemExit(
            "the image's Python packages do not fit together (make image-lock):\n  " + "\n  ".join(problems)
        )


def compile_python(root: Path) -> bool:
    """Byte-compile the standard library and dist-packages with the image's own Python (in a chroot):
    unchecked-hash .pyc files (no source mtimes in them), one process, a fixed hash seed. False when the image's
    Python cannot run here (another architecture): the image then ships sources only (slower starts)."""
    python = f"/usr/bin/python{PY_VERSION}"
    # PYTHONDONTWRITEBYTECODE: the interpreter's own imports would leave timestamp-based .pyc files (with the
    # extraction time in them) that compileall then takes as up to date; -f recompiles everything anyway.
    env = {
        "PATH": "/usr/bin",
        "PYTHONHASHSEED": "0",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LC_ALL": "C.UTF-8",
        "SOURCE_DATE_EPOCH": "0",
    }
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    try:
        subprocess.run([chroot, str(root), python, "-c", "pass"], check=True, env=env, capture_output=True)
    except (subprocess.CalledProcessError, OSError) as error:
        log(f"byte-compiling skipped: the image's Python does not run here ({error})")
        return False
    log("byte-compiling (the image's Python, unchecked-hash .pyc)")
    subprocess.run(
        [
            chroot,
            str(root),
            python,
            "-I",
            "-m",
            "compileall",
            "-q",
            "-f",
            "-j",
            "1",
            "--invalidation-mode",
            "unchecked-hash",
            "-x",
            r"/(test|tests|idlelib|lib2to3|tkinter|turtledemo)/",
            f"/usr/lib/python{PY_VERSION}",
            "/usr/lib/python3/dist-packages",
        ],
        check=True,
        env=env,
    )
    return True


def lock_python() -> None:
    """image/requirements.lock: acinode's runtime dependency closure at the versions installed in .venv, each
    with the SHA-256 of its wheels for every architecture (pip --require-hashes accepts any listed hash)."""
    from importlib import metadata  # noqa: PLC0415 - only the lock needs these

    from packaging.requirements import Requirement  # noqa: PLC0415

    versions: dict[str, str] = {}

    def walk(name: str) -> None:
        key = re.sub(r"[-_.]+", "-", name).lower()
        if key in versions:
            return
        dist = metadata.distribution(name)
        versions[key] = dist.version
        for text in dist.requires or []:
            requirement = Requirement(text)
            if requirement.marker is None or requirement.marker.evaluate({"extra": ""}):
                walk(requirement.name)

    walk("acinode")
    versions.pop("acinode")
    hashes: dict[str, set[str]] = {name: set() for name in versions}
    with tempfile.TemporaryDirectory() as tmp:
        for arch, (_, _, machine) in ARCHES.items():
            dest = Path(tmp) / arch
            platforms = [arg for p in wheel_platforms(machine) for arg in ("--platform", p)]
            log(f"pip download ({arch})")
            run(
                sys.executable,
                "-m",
                "pip",
                "download",
                "-q",
                "--disable-pip-version-check",
                "--no-deps",
                "--only-binary=:all:",
                "--python-version",
                PY_VERSION,
                "--implementation",
                "cp",
                "--abi",
                "cp311",
                *platforms,
                "-d",
                dest,
                *(f"{n}=={v}" for n, v in sorted(versions.items())),
            )
            for wheel in dest.glob("*.whl"):
                key = re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()
                hashes[key].add(hashlib.sha256(wheel.read_bytes()).hexdigest())
    lines = [
        "# acinode's runtime dependencies, pinned with the hashes of their amd64 and arm64 wheels.",
        "# Regenerate: make image-lock (versions as installed in .venv).",
    ]
    for name in sorted(versions):
        digests = " ".join(f"--hash=sha256:{h}" for h in sorted(hashes[name]))
        lines.append(f"{name}=={versions[name]} {digests}")
    (HERE / "requirements.lock").write_text("\n".join(lines) + "\n")
    log(f"image/requirements.lock: {len(versions)} packages")


# ---------------------------------------------------------------------------------------------------------
# The image


def version() -> str:
    text = (REPO / "helm/acinode/Chart.yaml").read_text()
    match = re.search(r'^appVersion:\s*"?([^"\s]+)"?', text, re.M)
    assert match
    return match.group(1)


def layer_of(image: str) -> Callable[[str], str]:
    def which(name: str) -> str:
        if image != "operator":
            return "base"
        if name == "usr/bin/acinode" or re.match(r"usr/lib/python3/dist-packages/acinode[-/]", name + "/"):
            return "app"
        if name.startswith("usr/lib/python3/dist-packages/"):
            return "deps"
        return "base"

    return which


def build(image: str, arch: str, out: Path, name: str, epoch: int, git_ref: str | None = None) -> str:
    spec = IMAGES[image]
    debs = download(read_lock(image, arch))
    root = CACHE / "rootfs" / f"{image}-{arch}"
    log(f"rootfs: {len(debs)} Debian packages -> {root.relative_to(REPO)}")
    os.umask(0o022)
    base_rootfs(root, debs, shell_user=not spec.python)
    if spec.python:
        install_python(root, arch, epoch, git_ref)
        check_requirements(root)
        compile_python(root)
    which = layer_of(image)

    def owner(name: str) -> tuple[int, int] | None:
        return (NONROOT, NONROOT) if name == "home/nonroot" else None

    layout = CACHE / "layout" / f"{image}-{arch}"
    writer = oci.Layout(layout)
    layers = []
    comments = {
        "base": f"Debian {SUITE} packages: image/lock/{image}-{arch}.lock",
        "deps": "Python dependencies: image/requirements.lock",
        "app": "acinode (its wheel)",
    }
    for part in ("base", "deps", "app"):

        def include(name: str, part: str = part) -> bool:
            return which(name) == part

        entries = list(oci.tree_entries(root, include=include, owner=owner, strip_setuid=True))
        if not entries:
            continue
        if part != "base":
            # Parent directories of the entries, so that each layer stands alone.
            parents = sorted(
                {"/".join(e.name.split("/")[:i]) for e in entries for i in range(1, e.name.count("/") + 1)}
            )
            known = {e.name for e in entries}
            entries = sorted(
                [oci.TarEntry(p, "dir", 0o755) for p in parents if p not in known] + entries,
                key=lambda e: e.name,
            )
        log(f"layer {part}: {len(entries)} entries")
        layers.append(writer.add_layer(entries, comments[part], epoch))
    tag = version()
    labels = {
        "org.opencontainers.image.title": "acinode" if image == "operator" else "acinode-test",
        "org.opencontainers.image.version": tag,
        "org.opencontainers.image.licenses": "Apache-2.0",
        "org.opencontainers.image.source": "https://github.com/acinode/acinode",
        "org.opencontainers.image.description": (
            "Serverless virtual nodes for Kubernetes, backed by Azure Container Instances"
            if image == "operator"
            else "Debian with curl: the test pod of acinode's story"
        ),
    }
    if image == "operator":
        config = oci.ImageConfig(
            architecture=ARCHES[arch][0],
            variant=ARCHES[arch][1],
            user=f"{NONROOT}:{NONROOT}",
            entrypoint=["/usr/bin/acinode"],
            cmd=["run", "--log-format=json", "--liveness=http://0.0.0.0:8080/healthz"],
            env=[
                "PATH=/usr/local/bin:/usr/bin:/bin",
                "PYTHONDONTWRITEBYTECODE=1",
                "PYTHONUNBUFFERED=1",
                "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt",
                "HOME=/home/nonroot",
                "LANG=C.UTF-8",
            ],
            exposed_ports=["10250/tcp", "8080/tcp", "9090/tcp"],
            labels=labels,
        )
    else:
        config = oci.ImageConfig(
            architecture=ARCHES[arch][0],
            variant=ARCHES[arch][1],
            cmd=["/bin/bash"],
            env=["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"],
            labels=labels,
        )
    manifest = writer.add_image(
        layers,
        config,
        epoch,
        annotations={"org.opencontainers.image.created": oci.iso_time(epoch), **labels},
        ref_name=name.rsplit(":", 1)[1],
        image_name=name,
    )
    oci.write_archive(layout, out, epoch)
    size = sum(layer.blob.size for layer in layers)
    log(
        f"{out.relative_to(REPO) if out.is_relative_to(REPO) else out}: {name} ({arch}), {size / 1e6:.1f} MB compressed"
    )
    return manifest.digest


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="build an image into an OCI archive; print its digest last")
    b.add_argument("image", choices=sorted(IMAGES))
    b.add_argument("--arch", default=host_arch(), choices=sorted(ARCHES))
    b.add_argument("--out", type=Path)
    b.add_argument(
        "--name", help="image name (default: ghcr.io/acinode/acinode:<appVersion>, or acinode-test)"
    )
    b.add_argument(
        "--epoch",
        type=int,
        help="timestamp of every file and of the image (default: SOURCE_DATE_EPOCH, else the last commit's time)",
    )
    b.add_argument(
        "--git-ref", help="build acinode from this commit's sources instead of the work tree's (e.g. HEAD)"
    )
    ins = sub.add_parser("inspect", help="print an OCI archive's digest, platform, user, entrypoint and size")
    ins.add_argument("archive", type=Path)
    ins.add_argument("--expect-user", help="fail unless the image runs as this user")
    lk = sub.add_parser(
        "lock", help="re-resolve the pinned inputs (Debian packages, or python: the PyPI wheels)"
    )
    lk.add_argument("image", choices=[*sorted(IMAGES), "python"])
    lk.add_argument("--arch", action="append", choices=sorted(ARCHES))
    args = parser.parse_args(argv)
    if args.command == "inspect":
        return inspect(args.archive, args.expect_user)
    if args.command == "lock":
        if args.image == "python":
            lock_python()
        else:
            for arch in args.arch or sorted(ARCHES):
                write_lock(IMAGES[args.image], arch)
        return 0
    epoch = args.epoch if args.epoch is not None else default_epoch(args.git_ref)
    os.environ["SOURCE_DATE_EPOCH"] = str(epoch)
    suffix = "" if args.arch == host_arch() else f"-{args.arch}"
    stem = "acinode-image" if args.image == "operator" else "acinode-test-image"
    out = Path(args.out or REPO / "dist" / f"{stem}{suffix}.oci.tar")
    name = args.name or (
        f"ghcr.io/acinode/acinode:{version()}"
        if args.image == "operator"
        else f"ghcr.io/acinode/acinode-test:{version()}"
    )
    digest = build(args.image, args.arch, out, name, epoch, args.git_ref)
    print(digest, flush=True)
    return 0


def inspect(archive: Path, expect_user: str | None) -> int:
    with tarfile.open(archive) as tar:

        def blob(digest: str) -> dict[str, Any]:
            member = tar.extractfile(f"blobs/sha256/{digest.split(':', 1)[1]}")
            assert member is not None
            value: dict[str, Any] = json.load(member)
            return value

        index_file = tar.extractfile("index.json")
        assert index_file is not None
        (descriptor,) = json.load(index_file)["manifests"]
        manifest = blob(descriptor["digest"])
        config = blob(manifest["config"]["digest"])
    facts = {
        "name": descriptor.get("annotations", {}).get("io.containerd.image.name"),
        "digest": descriptor["digest"],
        "platform": f"{config['os']}/{config['architecture']}",
        "user": config["config"].get("User", ""),
        "entrypoint": config["config"].get("Entrypoint", []),
        "layers_compressed_bytes": sum(layer["size"] for layer in manifest["layers"]),
    }
    print(json.dumps(facts))
    if expect_user is not None and facts["user"] != expect_user:
        print(f"{archive}: runs as {facts['user']!r}, not {expect_user!r}", file=sys.stderr)
        return 1
    return 0


def host_arch() -> str:
    return subprocess.run(
        ["dpkg", "--print-architecture"], check=True, capture_output=True, text=True
    ).stdout.strip()


def default_epoch(git_ref: str | None = None) -> int:
    if os.environ.get("SOURCE_DATE_EPOCH"):
        return int(os.environ["SOURCE_DATE_EPOCH"])
    try:
        # The last change to what goes into the images: a commit elsewhere (docs, tests) keeps the digest.
        out = subprocess.run(
            ["git", "-C", str(REPO), "log", "-1", "--format=%ct", git_ref or "HEAD", "--", *EPOCH_PATHS],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        return int(out.strip())
    except (subprocess.CalledProcessError, OSError, ValueError):
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
