"""A small deterministic OCI image writer: directory trees in, an OCI image layout (and its tar archive) out.

Same inputs, same bytes: tar entries are sorted by path; every entry gets the same mtime (SOURCE_DATE_EPOCH),
uid/gid 0 unless an owner is named, no user/group names, no device or socket entries; gzip streams carry no
file name and mtime 0; JSON is written with sorted keys and no spaces. On-disk mtimes, inode numbers, the order
the files were created in and the builder's uid never reach the output.

The result is an OCI image layout (oci-layout, index.json, blobs/sha256/...) holding one image manifest; the
archive is that layout as a tar, which `ctr images import`, `skopeo copy oci-archive:` and `podman load` read.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import stat
import tarfile
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

MEDIA_INDEX = "application/vnd.oci.image.index.v1+json"
MEDIA_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MEDIA_CONFIG = "application/vnd.oci.image.config.v1+json"
MEDIA_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"

_CHUNK = 1 << 20


@dataclass(frozen=True)
class Blob:
    media_type: str
    digest: str  # "sha256:<hex>"
    size: int

    def descriptor(self, annotations: Mapping[str, str] | None = None, **extra: Any) -> dict[str, Any]:
        out: dict[str, Any] = {"mediaType": self.media_type, "digest": self.digest, "size": self.size}
        out.update(extra)
        if annotations:
            out["annotations"] = dict(annotations)
        return out


@dataclass(frozen=True)
class Layer:
    blob: Blob  # the gzip-compressed tar
    diff_id: str  # sha256 of the uncompressed tar
    comment: str


@dataclass
class ImageConfig:
    """The runtime part of the image config (the `config` object) plus the platform."""

    architecture: str
    os: str = "linux"
    variant: str = ""
    user: str = ""
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    env: list[str] = field(default_factory=list)
    working_dir: str = "/"
    exposed_ports: list[str] = field(default_factory=list)
    labels: dict[str, str] = field(default_factory=dict)


def canonical_json(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def iso_time(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _HashingWriter(io.RawIOBase):
    """A write-only file that hashes and counts what goes through it (and writes it on, when given a target)."""

    def __init__(self, target: io.BufferedIOBase | None = None) -> None:
        self.sha = hashlib.sha256()
        self.size = 0
        self.target = target

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        chunk = bytes(data)
        self.sha.update(chunk)
        self.size += len(chunk)
        if self.target is not None:
            self.target.write(chunk)
        return len(chunk)

    @property
    def digest(self) -> str:
        return "sha256:" + self.sha.hexdigest()


class Layout:
    """An OCI image layout directory being written."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.blobs = path / "blobs" / "sha256"
        if path.exists():
            shutil.rmtree(path)
        self.blobs.mkdir(parents=True)

    def _adopt(self, tmp: Path, digest: str) -> None:
        final = self.blobs / digest.split(":", 1)[1]
        os.replace(tmp, final)
        final.chmod(0o644)

    def add_bytes(self, media_type: str, data: bytes) -> Blob:
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        (self.blobs / digest.split(":", 1)[1]).write_bytes(data)
        return Blob(media_type, digest, len(data))

    def add_json(self, media_type: str, value: Any) -> Blob:
        return self.add_bytes(media_type, canonical_json(value))

    def add_layer(self, entries: Iterable[TarEntry], comment: str = "", epoch: int | None = None) -> Layer:
        """Write a gzip-compressed tar of `entries` (written in the order given: sort them) as a layer blob;
        every entry's mtime is `epoch` (default: SOURCE_DATE_EPOCH, else 0)."""
        fd, name = tempfile.mkstemp(dir=self.blobs, prefix=".layer-")
        tmp = Path(name)
        with os.fdopen(fd, "wb") as raw:
            compressed = _HashingWriter(raw)
            # filename="" and mtime=0: no name and no time in the gzip header.
            with gzip.GzipFile(filename="", mode="wb", fileobj=compressed, compresslevel=9, mtime=0) as gz:
                uncompressed = _HashingWriter(gz)
                write_tar(entries, uncompressed, epoch)
        blob = Blob(MEDIA_LAYER_GZIP, compressed.digest, compressed.size)
        self._adopt(tmp, blob.digest)
        return Layer(blob, uncompressed.digest, comment)

    def add_image(
        self,
        layers: Sequence[Layer],
        config: ImageConfig,
        epoch: int,
        annotations: Mapping[str, str],
        ref_name: str,
        image_name: str,
    ) -> Blob:
        """Write the config and manifest of an image made of `layers`, and index.json naming it; return the
        manifest's blob (its digest is the image digest a registry reports)."""
        created = iso_time(epoch)
        runtime: dict[str, Any] = {"WorkingDir": config.working_dir}
        if config.user:
            runtime["User"] = config.user
        if config.entrypoint:
            runtime["Entrypoint"] = list(config.entrypoint)
        if config.cmd:
            runtime["Cmd"] = list(config.cmd)
        if config.env:
            runtime["Env"] = list(config.env)
        if config.exposed_ports:
            runtime["ExposedPorts"] = {port: {} for port in sorted(config.exposed_ports)}
        if config.labels:
            runtime["Labels"] = dict(config.labels)
        image_config: dict[str, Any] = {
            "created": created,
            "architecture": config.architecture,
            "os": config.os,
            "config": runtime,
            "rootfs": {"type": "layers", "diff_ids": [layer.diff_id for layer in layers]},
            "history": [{"created": created, "created_by": layer.comment} for layer in layers],
        }
        if config.variant:
            image_config["variant"] = config.variant
        config_blob = self.add_json(MEDIA_CONFIG, image_config)
        manifest = {
            "schemaVersion": 2,
            "mediaType": MEDIA_MANIFEST,
            "config": config_blob.descriptor(),
            "layers": [layer.blob.descriptor() for layer in layers],
            "annotations": dict(annotations),
        }
        manifest_blob = self.add_json(MEDIA_MANIFEST, manifest)
        platform = {"architecture": config.architecture, "os": config.os}
        if config.variant:
            platform["variant"] = config.variant
        index = {
            "schemaVersion": 2,
            "mediaType": MEDIA_INDEX,
            "manifests": [
                manifest_blob.descriptor(
                    {
                        # containerd (ctr images import) names the image after this one...
                        "io.containerd.image.name": image_name,
                        # ...skopeo, podman and the OCI layout spec after this one (a tag).
                        "org.opencontainers.image.ref.name": ref_name,
                    },
                    platform=platform,
                )
            ],
        }
        (self.path / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
        (self.path / "index.json").write_bytes(canonical_json(index))
        return manifest_blob


@dataclass(frozen=True)
class TarEntry:
    """One entry of a layer: `name` relative to /, no leading slash."""

    name: str
    kind: str  # "dir", "file", "symlink"
    mode: int
    uid: int = 0
    gid: int = 0
    linkname: str = ""
    source: Path | None = None  # a file's content, read when written
    data: bytes | None = None  # or the content itself


def write_tar(entries: Iterable[TarEntry], fileobj: io.RawIOBase, epoch: int | None = None) -> None:
    mtime = source_date_epoch() if epoch is None else epoch
    with tarfile.open(fileobj=fileobj, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.mtime = mtime
            info.mode = entry.mode & 0o7777
            info.uid, info.gid = entry.uid, entry.gid
            info.uname = info.gname = ""
            if entry.kind == "dir":
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            elif entry.kind == "symlink":
                info.type = tarfile.SYMTYPE
                info.linkname = entry.linkname
                tar.addfile(info)
            elif entry.kind == "file":
                info.type = tarfile.REGTYPE
                if entry.data is not None:
                    info.size = len(entry.data)
                    tar.addfile(info, io.BytesIO(entry.data))
                else:
                    assert entry.source is not None
                    info.size = entry.source.stat().st_size
                    with entry.source.open("rb") as content:
                        tar.addfile(info, content)
            else:
                raise ValueError(f"{entry.name}: unsupported entry kind {entry.kind!r}")


def source_date_epoch() -> int:
    return int(os.environ.get("SOURCE_DATE_EPOCH", "0"))


Owner = Callable[[str], tuple[int, int] | None]


def tree_entries(
    root: Path,
    include: Callable[[str], bool] = lambda name: True,
    owner: Owner = lambda name: None,
    strip_setuid: bool = False,
) -> Iterator[TarEntry]:
    """The entries of the tree under `root` (itself excluded), sorted by path. Directory modes and file modes
    are taken from disk (permission bits only); owners are 0:0 unless `owner(name)` names one. Sockets, fifos
    and devices are refused: a layer built from a rootfs has none."""
    names: list[str] = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for name in dirnames + filenames:
            names.append(name if rel == "." else f"{rel}/{name}")
        # os.walk does not follow directory symlinks: they are listed in dirnames and emitted as symlinks.
    for name in sorted(names):
        if not include(name):
            continue
        path = root / name
        st = path.lstat()
        mode = stat.S_IMODE(st.st_mode)
        if strip_setuid:
            mode &= ~(stat.S_ISUID | stat.S_ISGID)
        uid, gid = owner(name) or (0, 0)
        if stat.S_ISLNK(st.st_mode):
            yield TarEntry(name, "symlink", 0o777, uid, gid, linkname=os.readlink(path))
        elif stat.S_ISDIR(st.st_mode):
            yield TarEntry(name, "dir", mode, uid, gid)
        elif stat.S_ISREG(st.st_mode):
            yield TarEntry(name, "file", mode, uid, gid, source=path)
        else:
            raise ValueError(f"{path}: not a file, directory or symlink")


def write_archive(layout: Path, archive: Path, epoch: int) -> None:
    """The layout directory as a tar (sorted, fixed metadata): an OCI archive."""
    entries = [
        TarEntry(e.name, e.kind, 0o755 if e.kind == "dir" else 0o644, source=e.source)
        for e in tree_entries(layout)
    ]
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_name(archive.name + ".tmp")
    with tmp.open("wb") as raw:
        write_tar(entries, raw, epoch)  # type: ignore[arg-type]
    os.replace(tmp, archive)


def read_index(layout: Path) -> dict[str, Any]:
    value: dict[str, Any] = json.loads((layout / "index.json").read_text())
    return value
