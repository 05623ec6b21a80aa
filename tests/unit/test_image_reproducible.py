"""The OCI writer of `make image` (image/oci.py) is deterministic: the same tree gives the same bytes, whatever
the files' mtimes, creation order, the builder's umask or uid; the layout it writes is a valid OCI image layout.

The full build (Debian packages and PyPI wheels, ~30 s and a network) is checked by `make image-check`."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import io
import json
import os
import sys
import tarfile
from pathlib import Path
from types import ModuleType

import pytest

IMAGE_DIR = Path(__file__).resolve().parents[2] / "image"


def _load(name: str) -> ModuleType:
    """image/<name>.py, under a name of its own (image/build.py is no PyPI `build`)."""
    key = f"acinode_image_{name}"
    if key in sys.modules:
        return sys.modules[key]
    spec = importlib.util.spec_from_file_location(key, IMAGE_DIR / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[key] = module
    spec.loader.exec_module(module)
    return module


oci = _load("oci")

EPOCH = 1_700_000_000


def make_tree(root: Path, order: list[str], mtime: int, umask: int) -> None:
    """A tiny rootfs: directories, an executable, a symlink, a non-root home; created in `order`."""
    files = {
        "usr/bin/hello": (b"#!/bin/sh\necho hello\n", 0o755),
        "usr/lib/data.txt": (b"data\n" * 100, 0o644),
        "etc/passwd": (
            b"root:x:0:0::/root:/bin/sh\nnonroot:x:65532:65532::/home/nonroot:/bin/false\n",
            0o644,
        ),
    }
    old = os.umask(umask)
    try:
        for name in order:
            if name == "home/nonroot":
                (root / name).mkdir(parents=True, exist_ok=True)
                (root / name).chmod(0o755)
            elif name == "bin":
                (root / "usr/bin").mkdir(parents=True, exist_ok=True)
                os.symlink("usr/bin", root / "bin")
            else:
                data, mode = files[name]
                (root / name).parent.mkdir(parents=True, exist_ok=True)
                (root / name).write_bytes(data)
                (root / name).chmod(mode)
        for dirpath, dirnames, filenames in os.walk(root):
            for entry in dirnames + filenames:
                path = Path(dirpath) / entry
                if not path.is_symlink():
                    path.chmod(path.stat().st_mode | 0o044 if path.is_file() else 0o755)
                os.utime(path, (mtime, mtime), follow_symlinks=False)
    finally:
        os.umask(old)


def build(tmp: Path, tree: Path) -> tuple[str, bytes, Path]:
    layout = tmp / "layout"
    writer = oci.Layout(layout)

    def owner(name: str) -> tuple[int, int] | None:
        return (65532, 65532) if name == "home/nonroot" else None

    layer = writer.add_layer(oci.tree_entries(tree, owner=owner), "tiny rootfs", EPOCH)
    config = oci.ImageConfig(architecture="amd64", user="65532:65532", entrypoint=["/usr/bin/hello"])
    manifest = writer.add_image(
        [layer], config, EPOCH, {"a": "b"}, ref_name="1.0", image_name="example.test/tiny:1.0"
    )
    archive = tmp / "image.oci.tar"
    oci.write_archive(layout, archive, EPOCH)
    return manifest.digest, archive.read_bytes(), layout


ORDER = ["usr/bin/hello", "usr/lib/data.txt", "etc/passwd", "home/nonroot", "bin"]


@pytest.fixture
def two_builds(tmp_path: Path) -> tuple[tuple[str, bytes, Path], tuple[str, bytes, Path]]:
    one, two = tmp_path / "one", tmp_path / "two"
    make_tree(one / "tree", ORDER, mtime=1_000_000, umask=0o022)
    make_tree(two / "tree", list(reversed(ORDER)), mtime=1_999_999_999, umask=0o077)
    return build(one, one / "tree"), build(two, two / "tree")


def test_same_tree_same_digest_and_bytes(two_builds: tuple[tuple[str, bytes, Path], ...]) -> None:
    (digest_one, archive_one, _), (digest_two, archive_two, _) = two_builds
    assert digest_one == digest_two
    assert hashlib.sha256(archive_one).hexdigest() == hashlib.sha256(archive_two).hexdigest()


def test_changed_content_changes_the_digest(tmp_path: Path) -> None:
    make_tree(tmp_path / "tree", ORDER, mtime=0, umask=0o022)
    digest, _, _ = build(tmp_path / "a", tmp_path / "tree")
    (tmp_path / "tree/usr/lib/data.txt").write_bytes(b"other\n")
    other, _, _ = build(tmp_path / "b", tmp_path / "tree")
    assert digest != other


def _blob(layout: Path, digest: str) -> bytes:
    data = (layout / "blobs" / "sha256" / digest.split(":", 1)[1]).read_bytes()
    assert "sha256:" + hashlib.sha256(data).hexdigest() == digest
    return data


def test_layout_is_a_valid_oci_image(two_builds: tuple[tuple[str, bytes, Path], ...]) -> None:
    digest, archive, layout = two_builds[0]
    assert json.loads((layout / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((layout / "index.json").read_text())
    (descriptor,) = index["manifests"]
    assert descriptor["digest"] == digest
    assert descriptor["mediaType"] == oci.MEDIA_MANIFEST
    assert descriptor["annotations"]["io.containerd.image.name"] == "example.test/tiny:1.0"
    assert descriptor["annotations"]["org.opencontainers.image.ref.name"] == "1.0"
    assert descriptor["platform"] == {"architecture": "amd64", "os": "linux"}
    manifest = json.loads(_blob(layout, digest))
    assert manifest["mediaType"] == oci.MEDIA_MANIFEST
    config = json.loads(_blob(layout, manifest["config"]["digest"]))
    assert config["config"]["User"] == "65532:65532"
    assert config["config"]["Entrypoint"] == ["/usr/bin/hello"]
    assert config["created"] == "2023-11-14T22:13:20Z"
    (layer,) = manifest["layers"]
    assert layer["mediaType"] == oci.MEDIA_LAYER_GZIP
    compressed = _blob(layout, layer["digest"])
    assert compressed[4:8] == b"\0\0\0\0"  # gzip header mtime 0
    raw = gzip.decompress(compressed)
    assert config["rootfs"]["diff_ids"] == ["sha256:" + hashlib.sha256(raw).hexdigest()]
    with tarfile.open(fileobj=io.BytesIO(raw)) as tar:
        members = tar.getmembers()
    names = [m.name for m in members]
    assert names == sorted(names)
    assert "usr/bin" in names and names.index("usr/bin") < names.index("usr/bin/hello")
    assert {m.mtime for m in members} == {EPOCH}
    assert {m.uname for m in members} == {""}
    by_name = {m.name: m for m in members}
    assert (by_name["home/nonroot"].uid, by_name["home/nonroot"].gid) == (65532, 65532)
    assert by_name["usr/bin/hello"].uid == 0 and by_name["usr/bin/hello"].mode == 0o755
    assert by_name["bin"].issym() and by_name["bin"].linkname == "usr/bin"
    # The archive is the layout: every blob and index.json are in it.
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        archived = set(tar.getnames())
    assert {"oci-layout", "index.json", f"blobs/sha256/{digest.split(':')[1]}"} <= archived


def test_merged_usr_paths() -> None:
    build_module = _load("build")
    assert build_module.merged("bin/sh") == "usr/bin/sh"
    assert build_module.merged("lib/x86_64-linux-gnu/libc.so.6") == "usr/lib/x86_64-linux-gnu/libc.so.6"
    assert build_module.merged("lib64") == "usr/lib64"
    assert build_module.merged("etc/passwd") == "etc/passwd"
    assert build_module.merged("library/x") == "library/x"
