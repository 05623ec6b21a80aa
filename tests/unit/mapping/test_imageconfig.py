"""Image references as Docker reads them, which images need their ENTRYPOINT, and the registry's documents."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest

from acinode.mapping import imageconfig, options, problems
from acinode.mapping.imageconfig import ImageReference

DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("image", "expected"),
    [
        ("nginx", ImageReference("index.docker.io", "registry-1.docker.io", "library/nginx", "latest")),
        ("nginx:1.27", ImageReference("index.docker.io", "registry-1.docker.io", "library/nginx", "1.27")),
        ("user/app:v1", ImageReference("index.docker.io", "registry-1.docker.io", "user/app", "v1")),
        (
            "docker.io/library/busybox",
            ImageReference("index.docker.io", "registry-1.docker.io", "library/busybox", "latest"),
        ),
        (
            "docker.io/busybox",
            ImageReference("index.docker.io", "registry-1.docker.io", "library/busybox", "latest"),
        ),
        (
            "mcr.microsoft.com/azuredocs/aci-helloworld",
            ImageReference("mcr.microsoft.com", "mcr.microsoft.com", "azuredocs/aci-helloworld", "latest"),
        ),
        ("127.0.0.1:5000/team/app:2", ImageReference("127.0.0.1:5000", "127.0.0.1:5000", "team/app", "2")),
        ("localhost/app", ImageReference("localhost", "localhost", "app", "latest")),
        (
            f"myacr.azurecr.io/app@{DIGEST}",
            ImageReference("myacr.azurecr.io", "myacr.azurecr.io", "app", DIGEST),
        ),
        (f"host:5000/app:1@{DIGEST}", ImageReference("host:5000", "host:5000", "app", DIGEST)),
    ],
)
def test_image_references_read_as_docker_reads_them(image: str, expected: ImageReference) -> None:
    assert imageconfig.parse_image_reference(image) == expected


@pytest.mark.parametrize(
    "image",
    ["UPPER/app", "app@sha256:short", "host:5000/app:bad/tag", "ho_st.example/app", "app:", "app::1", "a//b"],
)
def test_references_no_registry_accepts_are_refused(image: str) -> None:
    with pytest.raises(ValueError, match="image"):
        imageconfig.parse_image_reference(image)


def _pod(*containers: dict[str, Any], init: tuple[dict[str, Any], ...] = ()) -> dict[str, Any]:
    return {"spec": {"containers": list(containers), "initContainers": list(init)}}


def test_only_args_without_command_need_the_entrypoint_unless_annotated() -> None:
    pod = _pod(
        {"name": "a", "image": "one", "args": ["x"]},
        {"name": "b", "image": "two", "command": ["run"], "args": ["x"]},
        {"name": "c", "image": "three"},
        {"name": "d", "image": "one", "args": ["y"]},
        {"name": "e", "image": "five", "args": ["z"]},
        init=({"name": "i", "image": "init", "args": ["w"]},),
    )
    chosen = options.group_options_from_annotations(
        {options.ENTRYPOINTS: json.dumps({"e": ["/annotated"]})}, problems.Problems()
    )
    assert imageconfig.images_needing_entrypoints(pod, chosen) == ("init", "one")


INDEX = {
    "mediaType": imageconfig.OCI_INDEX,
    "manifests": [
        {"digest": "sha256:" + "11" * 32, "platform": {"os": "linux", "architecture": "arm64"}},
        {"digest": "sha256:" + "22" * 32, "platform": {"os": "linux", "architecture": "amd64"}},
        {"digest": "sha256:" + "33" * 32, "platform": {"os": "windows", "architecture": "amd64"}},
    ],
}


@pytest.mark.parametrize(
    ("os_name", "arch", "expected"),
    [("linux", "amd64", "22"), ("windows", "amd64", "33"), ("linux", "s390x", None)],
)
def test_the_platforms_manifest_is_chosen_from_an_index(
    os_name: str, arch: str, expected: str | None
) -> None:
    digest = imageconfig.platform_manifest(INDEX, os_name, arch)
    assert digest == (None if expected is None else "sha256:" + expected * 32)


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        ({"config": {"Entrypoint": ["/docker-entrypoint.sh"], "Cmd": ["nginx"]}}, ("/docker-entrypoint.sh",)),
        ({"config": {"Cmd": ["sh"]}}, ()),
        ({"config": {"Entrypoint": None}}, ()),
        ({}, ()),
    ],
)
def test_the_entrypoint_comes_from_the_config(config: dict[str, Any], expected: tuple[str, ...]) -> None:
    assert imageconfig.entrypoint_from_config(config) == expected


@pytest.mark.parametrize("entrypoint", ["/bin/sh", [1, 2], {"a": 1}])
def test_a_malformed_entrypoint_is_refused(entrypoint: object) -> None:
    with pytest.raises(ValueError, match="Entrypoint"):
        imageconfig.entrypoint_from_config({"config": {"Entrypoint": entrypoint}})


def test_a_manifest_without_a_sha256_config_is_refused() -> None:
    assert imageconfig.config_digest({"config": {"digest": DIGEST}}) == DIGEST
    with pytest.raises(ValueError, match="config"):
        imageconfig.config_digest({"config": {"digest": "md5:00"}})


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:a/b:pull"',
            {
                "realm": "https://auth.docker.io/token",
                "service": "registry.docker.io",
                "scope": "repository:a/b:pull",
            },
        ),
        ('Basic realm="registry"', None),
        ("Bearer service=x", None),
    ],
)
def test_bearer_challenges(header: str, expected: dict[str, str] | None) -> None:
    assert imageconfig.bearer_challenge(header) == expected


def _docker_config(auths: dict[str, Any]) -> dict[str, Any]:
    payload = base64.b64encode(json.dumps({"auths": auths}).encode()).decode()
    return {"type": "kubernetes.io/dockerconfigjson", "data": {".dockerconfigjson": payload}}


def test_pull_credentials_come_from_the_pods_own_pull_secrets() -> None:
    secrets = {
        "first": _docker_config(
            {
                "https://index.docker.io/v1/": {"auth": base64.b64encode(b"hub:pw").decode()},
                "myacr.azurecr.io": {"identitytoken": "refresh-token"},
            }
        ),
        "second": _docker_config({"reg.example:5000": {"username": "u", "password": "p"}}),
        "unused": _docker_config({"other.example": {"username": "x", "password": "y"}}),
    }
    spec = {"imagePullSecrets": [{"name": "first"}, {"name": "second"}, {"name": "missing"}]}
    assert imageconfig.pull_credentials(spec, secrets) == {
        "index.docker.io": ("hub", "pw"),
        "reg.example:5000": ("u", "p"),
    }
