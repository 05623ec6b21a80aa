"""Write a one-layer OCI image archive (an OCI image layout in a tar), reproducibly, without any registry or tool.

The worker node's containerd imports such archives with ``ctr images import``: the sandbox (pause) image and
small test images are built this way. Same inputs, same bytes: every timestamp is 0, owners are root, entries
sorted, gzip without a name or time.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Sequence
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class File:
    path: str  # inside the image, without a leading slash: "pause"
    data: bytes
    mode: int = 0o755


def _tar(entries: Sequence[tuple[str, bytes | None, int]]) -> bytes:
    """A tar of (name, data, mode); data None is a directory."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mode in sorted(entries, key=lambda e: e[0]):
            info = tarfile.TarInfo(name)
            info.mode, info.mtime, info.uid, info.gid, info.uname, info.gname = mode, 0, 0, 0, "", ""
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _blob(blobs: dict[str, bytes], data: bytes, media_type: str) -> dict[str, object]:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    blobs[digest] = data
    return {"mediaType": media_type, "digest": digest, "size": len(data)}


def write(
    archive: Path,
    name: str,
    files: Sequence[File],
    entrypoint: Sequence[str],
    user: str = "65535:65535",
    architecture: str = "amd64",
) -> str:
    """Write ``archive`` holding image ``name`` (e.g. ``acinode.local/pause:3.10``); return the manifest digest."""
    dirs = {str(Path(f.path).parent) for f in files} - {"."}
    layer_tar = _tar([*((d, None, 0o755) for d in dirs), *((f.path, f.data, f.mode) for f in files)])
    layer_gz = gzip.compress(layer_tar, compresslevel=9, mtime=0)
    blobs: dict[str, bytes] = {}
    config = {
        "architecture": architecture,
        "os": "linux",
        "config": {"Entrypoint": list(entrypoint), "User": user, "WorkingDir": "/"},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(layer_tar).hexdigest()]},
        "history": [{"created_by": "acinode tests/controlplane/ociarchive.py"}],
    }
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": _blob(
            blobs, json.dumps(config, sort_keys=True).encode(), "application/vnd.oci.image.config.v1+json"
        ),
        "layers": [_blob(blobs, layer_gz, "application/vnd.oci.image.layer.v1.tar+gzip")],
    }
    manifest_desc = _blob(blobs, json.dumps(manifest, sort_keys=True).encode(), manifest["mediaType"])
    manifest_desc["annotations"] = {
        "io.containerd.image.name": name,
        "org.opencontainers.image.ref.name": name.rpartition(":")[2],
    }
    manifest_desc["platform"] = {"architecture": architecture, "os": "linux"}
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [manifest_desc],
    }
    entries: list[tuple[str, bytes | None, int]] = [
        ("blobs", None, 0o755),
        ("blobs/sha256", None, 0o755),
        ("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode(), 0o644),
        ("index.json", json.dumps(index, sort_keys=True).encode(), 0o644),
    ]
    entries += [(f"blobs/sha256/{d.removeprefix('sha256:')}", data, 0o644) for d, data in blobs.items()]
    archive.parent.mkdir(parents=True, exist_ok=True)
    tmp = archive.with_name(archive.name + ".tmp")
    tmp.write_bytes(_tar(entries))
    tmp.replace(archive)
    return str(manifest_desc["digest"])
