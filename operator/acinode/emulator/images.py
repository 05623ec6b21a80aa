"""What a container without a ``command`` runs: its image's default command (the image's ENTRYPOINT/CMD).

ACI runs the image's own default when the container gives no command, so ``alpine`` with no command exits 0 at once
(its default is ``/bin/sh``, and a container has no TTY or stdin): Terminated/Completed, or a crash loop under
restartPolicy Always (Azure/azure-cli's recording ``test_container_create_with_msi``). Nothing is pulled here, so a
small table of well-known images stands in for their image configs; any other image is taken to be a server that
runs until stopped (the emulator cannot know better, and most images in tests are services).
"""

from __future__ import annotations

_SHELL = ["/bin/sh"]
"""A shell with no script and no stdin exits 0 at once."""
_SERVE: list[str] = []
"""Runs until stopped."""

# Repository name (no registry host, no tag or digest, ``library/`` dropped) → default command.
DEFAULT_COMMANDS: dict[str, list[str]] = {
    "alpine": _SHELL,
    "busybox": ["sh"],
    "debian": ["bash"],
    "ubuntu": ["/bin/bash"],
    "centos": ["/bin/bash"],
    "fedora": ["/bin/bash"],
    "amazonlinux": ["/bin/bash"],
    "rockylinux": ["/bin/bash"],
    "almalinux": ["/bin/bash"],
    "archlinux": ["/usr/bin/bash"],
    "opensuse/leap": ["/bin/bash"],
    "mcr.microsoft.com/cbl-mariner/base/core": ["bash"],
    "mcr.microsoft.com/azurelinux/base/core": ["bash"],
    "nginx": _SERVE,
    "httpd": _SERVE,
    "redis": _SERVE,
    "memcached": _SERVE,
    "postgres": _SERVE,
    "mysql": _SERVE,
    "mongo": _SERVE,
    "rabbitmq": _SERVE,
    "traefik": _SERVE,
    "caddy": _SERVE,
    "registry.k8s.io/pause": _SERVE,
    "mcr.microsoft.com/azuredocs/aci-helloworld": _SERVE,
    "microsoft/aci-helloworld": _SERVE,
}


def repository(image: str) -> str:
    """``docker.io/library/alpine:3.19@sha256:…`` → ``alpine``; ``mcr.microsoft.com/x/y:1`` keeps its host."""
    name = image.split("@", 1)[0]
    last_slash = name.rfind("/")
    colon = name.rfind(":")
    if colon > last_slash:
        name = name[:colon]
    for prefix in ("docker.io/", "index.docker.io/", "registry-1.docker.io/"):
        if name.startswith(prefix):
            name = name[len(prefix) :]
    if name.startswith("library/"):
        name = name[len("library/") :]
    return name.lower()


def default_command(image: str) -> list[str]:
    """The command a container of ``image`` runs when it gives none ([] = a server: runs until stopped)."""
    return list(DEFAULT_COMMANDS.get(repository(image), _SERVE))
