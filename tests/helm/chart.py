"""Drive the helm binary built by ``helmbin`` against acinode's chart: lint, template, install, uninstall.

Helm runs with its cache, config and data folders under a private directory, so tests neither read nor change the
user's helm repositories or plugins. Rendered manifests come back as parsed objects.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from helm import helmbin

CHART_DIR = helmbin.REPO_ROOT / "helm" / "acinode"
HELM_TIMEOUT_SECONDS = 180

Manifest = dict[str, Any]
NOTES_PREVIEW = """apiVersion: v1
kind: ConfigMap
metadata:
  name: notes
data:
  notes: |
    {{- tpl (.Files.Get "notes-source.txt") . | nindent 4 }}
"""


class HelmError(AssertionError):
    """helm exited non-zero; the message carries its stderr."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str) -> None:
        super().__init__(f"helm {' '.join(args)} exited {returncode}:\n{stderr.strip()}")
        self.stderr = stderr


@dataclasses.dataclass(frozen=True)
class Rendered:
    """The objects one ``helm template`` produced, with lookups by kind and name."""

    objects: list[Manifest]

    def __iter__(self) -> Iterator[Manifest]:
        return iter(self.objects)

    def kinds(self) -> list[str]:
        return sorted(o["kind"] for o in self.objects)

    def all(self, kind: str) -> list[Manifest]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> Manifest:
        found = [o for o in self.all(kind) if name is None or o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name or ''}, rendered {len(found)}: {self.kinds()}"
        return found[0]

    def has(self, kind: str) -> bool:
        return bool(self.all(kind))


@dataclasses.dataclass(frozen=True)
class Helm:
    binary: Path
    home: Path
    kubeconfig: Path | None = None

    def env(self) -> dict[str, str]:
        env = {
            **os.environ,
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }
        env.pop("KUBECONFIG", None)
        if self.kubeconfig is not None:
            env["KUBECONFIG"] = str(self.kubeconfig)
        return env

    def with_kubeconfig(self, kubeconfig: Path) -> Helm:
        return dataclasses.replace(self, kubeconfig=kubeconfig)

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(
            [str(self.binary), *args],
            check=False,
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=HELM_TIMEOUT_SECONDS,
        )
        if check and result.returncode != 0:
            raise HelmError(args, result.returncode, result.stderr)
        return result

    def lint(self, values: Mapping[str, Any] | None = None) -> str:
        return self.run("lint", "--strict", str(CHART_DIR), *values_args(values)).stdout

    def template(
        self,
        values: Mapping[str, Any] | None = None,
        *,
        release: str = "acinode",
        namespace: str = "acinode-system",
        extra: Sequence[str] = (),
    ) -> Rendered:
        out = self.run(
            "template", release, str(CHART_DIR), "--namespace", namespace, *values_args(values), *extra
        ).stdout
        return Rendered([doc for doc in yaml.safe_load_all(out) if doc])

    def notes(
        self,
        values: Mapping[str, Any] | None = None,
        *,
        release: str = "acinode",
        namespace: str = "acinode-system",
    ) -> str:
        """NOTES.txt as `helm install` would print it (helm template never renders it: render a copy of the
        chart where a ConfigMap carries the notes through `tpl`)."""
        with tempfile.TemporaryDirectory() as tmp:
            copy = Path(tmp) / "acinode"
            shutil.copytree(CHART_DIR, copy)
            shutil.copy(copy / "templates" / "NOTES.txt", copy / "notes-source.txt")
            (copy / "templates" / "notes-preview.yaml").write_text(NOTES_PREVIEW)
            out = self.run(
                "template",
                release,
                str(copy),
                "--namespace",
                namespace,
                "--show-only",
                "templates/notes-preview.yaml",
                *values_args(values),
            ).stdout
        notes: str = yaml.safe_load(out)["data"]["notes"]
        return notes

    def install(
        self, release: str, namespace: str, values: Mapping[str, Any] | None = None, *extra: str
    ) -> subprocess.CompletedProcess[str]:
        return self.run(
            "install",
            release,
            str(CHART_DIR),
            "--namespace",
            namespace,
            "--create-namespace",
            *values_args(values),
            *extra,
        )

    def uninstall(self, release: str, namespace: str, *extra: str) -> subprocess.CompletedProcess[str]:
        return self.run("uninstall", release, "--namespace", namespace, *extra)

    def manifest(self, release: str, namespace: str) -> Rendered:
        out = self.run("get", "manifest", release, "--namespace", namespace).stdout
        return Rendered([doc for doc in yaml.safe_load_all(out) if doc])


def values_args(values: Mapping[str, Any] | None) -> list[str]:
    """Pass values as one JSON document on --set-json per top-level key (types survive, unlike --set)."""
    if not values:
        return []
    args: list[str] = []
    for key, value in values.items():
        args += ["--set-json", f"{key}={json.dumps(value)}"]
    return args


def build(home: Path) -> Helm:
    return Helm(helmbin.build(), home)
