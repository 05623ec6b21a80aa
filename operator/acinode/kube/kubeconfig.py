"""The kubeconfig file, read as client-go reads it: the parts acinode uses, validated, with clear errors.

``read_documents`` is the only I/O here (it reads and parses the YAML files); ``context_from_documents`` is pure:
it merges several files as client-go does (for every named cluster, user and context, and for
``current-context``, the first file that sets it wins), resolves relative paths against the file that holds them
and picks one context. Everything acinode cannot honour is refused with a message naming the field, rather than
ignored: a credential silently dropped would run the operator anonymously.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from acinode import errors

EXEC_API_VERSIONS = ("client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1")
EXEC_CLUSTER_EXTENSION = "client.authentication.k8s.io/exec"
"""The cluster extension whose ``extension`` is passed to exec plugins as ``spec.cluster.config``."""
INTERACTIVE_MODES = ("Never", "IfAvailable", "Always")


@dataclasses.dataclass(frozen=True)
class Cluster:
    server: str
    certificate_authority: Path | None = None
    certificate_authority_data: bytes | None = None
    insecure_skip_tls_verify: bool = False
    exec_extension: Any = None
    """The ``client.authentication.k8s.io/exec`` cluster extension, for plugins with ``provideClusterInfo``."""


@dataclasses.dataclass(frozen=True)
class ExecConfig:
    """A ``users[].user.exec`` entry: a command that prints an ``ExecCredential``."""

    api_version: str
    command: str
    args: tuple[str, ...] = ()
    env: tuple[tuple[str, str], ...] = dataclasses.field(default=(), repr=False)
    interactive_mode: str = "IfAvailable"
    provide_cluster_info: bool = False
    install_hint: str | None = None


@dataclasses.dataclass(frozen=True)
class User:
    token: str | None = dataclasses.field(default=None, repr=False)
    token_file: Path | None = None
    client_certificate: Path | None = None
    client_certificate_data: bytes | None = dataclasses.field(default=None, repr=False)
    client_key: Path | None = None
    client_key_data: bytes | None = dataclasses.field(default=None, repr=False)
    exec: ExecConfig | None = None


@dataclasses.dataclass(frozen=True)
class Context:
    """The context acinode connects with: its cluster, its user and where it was found."""

    name: str
    cluster: Cluster
    user: User
    user_name: str | None
    namespace: str | None
    files: tuple[Path, ...]

    @property
    def description(self) -> str:
        files = ", ".join(str(path) for path in self.files)
        return f"kubeconfig {files} (context {self.name!r}, user {self.user_name or '(none)'!r})"


Document = tuple[Path, Any]
"""One kubeconfig file: its path and its parsed YAML."""


def read_documents(paths: Sequence[Path]) -> list[Document]:
    """Read and parse each kubeconfig file. ``ConfigurationError`` if one cannot be read or is not YAML."""
    documents: list[Document] = []
    for path in paths:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as err:
            raise errors.ConfigurationError(f"kubeconfig {path}: {err.strerror or err}") from err
        except UnicodeDecodeError as err:
            raise errors.ConfigurationError(f"kubeconfig {path} is not UTF-8 text") from err
        try:
            documents.append((path, yaml.safe_load(text)))
        except yaml.YAMLError as err:
            where = ""
            mark = getattr(err, "problem_mark", None)
            if mark is not None:
                where = f" (line {mark.line + 1}, column {mark.column + 1})"
            problem = getattr(err, "problem", None) or err.__class__.__name__
            raise errors.ConfigurationError(f"kubeconfig {path} is not valid YAML: {problem}{where}") from err
    return documents


def context_from_documents(documents: Sequence[Document], context_name: str | None = None) -> Context:
    """The named context (or the current one) of the merged kubeconfig files, validated."""
    if not documents:
        raise errors.ConfigurationError("no kubeconfig file to read")
    files = tuple(path for path, _ in documents)
    shown = ", ".join(str(path) for path in files)
    current: str | None = None
    contexts: dict[str, tuple[Path, Mapping[str, Any]]] = {}
    clusters: dict[str, tuple[Path, Mapping[str, Any]]] = {}
    users: dict[str, tuple[Path, Mapping[str, Any]]] = {}
    for path, content in documents:
        config = _mapping(content if content is not None else {}, f"kubeconfig {path}")
        if current is None:
            current = _string(config, "current-context", f"kubeconfig {path}") or None
        for key, into in (("contexts", contexts), ("clusters", clusters), ("users", users)):
            for entry_name, entry in _named_entries(config, key, path):
                into.setdefault(entry_name, (path, entry))
    name = context_name or current
    if not name:
        raise errors.ConfigurationError(f"kubeconfig {shown}: no current-context is set and none was chosen")
    if name not in contexts:
        raise errors.ConfigurationError(f"kubeconfig {shown}: context {name!r} is not defined")
    _, context = contexts[name]
    cluster_name = _string(context, "cluster", f"context {name!r}")
    if not cluster_name or cluster_name not in clusters:
        raise errors.ConfigurationError(
            f"kubeconfig {shown}: context {name!r} refers to cluster {cluster_name!r}, which is not defined"
        )
    user_name = _string(context, "user", f"context {name!r}") or None
    if user_name is not None and user_name not in users:
        raise errors.ConfigurationError(
            f"kubeconfig {shown}: context {name!r} refers to user {user_name!r}, which is not defined"
        )
    cluster_path, cluster_entry = clusters[cluster_name]
    user = User()
    if user_name is not None:
        user_path, user_entry = users[user_name]
        user = _user(user_entry, user_path.parent, f"kubeconfig {user_path}: user {user_name!r}")
    return Context(
        name=name,
        cluster=_cluster(
            cluster_entry, cluster_path.parent, f"kubeconfig {cluster_path}: cluster {cluster_name!r}"
        ),
        user=user,
        user_name=user_name,
        namespace=_string(context, "namespace", f"context {name!r}") or None,
        files=files,
    )


# --- The entries -----------------------------------------------------------------------------------------------

_UNSUPPORTED_CLUSTER_FIELDS = {
    "proxy-url": "proxy-url is not supported; reach the API server directly",
    "tls-server-name": "tls-server-name is not supported; use a server address that its certificate names",
}


def _cluster(entry: Mapping[str, Any], base: Path, where: str) -> Cluster:
    for field, reason in _UNSUPPORTED_CLUSTER_FIELDS.items():
        if entry.get(field):
            raise errors.ConfigurationError(f"{where}: {reason}")
    server = _string(entry, "server", where)
    if not server:
        raise errors.ConfigurationError(f"{where}: no server is set")
    if not server.startswith(("https://", "http://")):
        raise errors.ConfigurationError(f"{where}: server {server!r} is not an http(s) URL")
    ca_path = _path(entry, "certificate-authority", base, where)
    ca_data = _base64(entry, "certificate-authority-data", where)
    insecure = _bool(entry, "insecure-skip-tls-verify", where)
    if insecure and (ca_path or ca_data):
        raise errors.ConfigurationError(
            f"{where}: insecure-skip-tls-verify and a certificate authority cannot both be set"
        )
    extension = None
    for value in _list(entry, "extensions", where):
        item = _mapping(value, f"{where}: extensions[]")
        if item.get("name") == EXEC_CLUSTER_EXTENSION:
            extension = item.get("extension")
    return Cluster(
        server=server.rstrip("/"),
        certificate_authority=ca_path,
        certificate_authority_data=ca_data,
        insecure_skip_tls_verify=insecure,
        exec_extension=extension,
    )


def _user(entry: Mapping[str, Any], base: Path, where: str) -> User:
    provider = entry.get("auth-provider")
    if provider:
        kind = provider.get("name", "?") if isinstance(provider, Mapping) else "?"
        raise errors.ConfigurationError(
            f"{where}: the legacy auth-provider {kind!r} is not supported (client-go removed it); use an exec "
            "credential plugin instead (for Azure: `kubelogin convert-kubeconfig`)"
        )
    if entry.get("username") or entry.get("password"):
        raise errors.ConfigurationError(
            f"{where}: basic authentication (username/password) is not supported (Kubernetes removed it in 1.19)"
        )
    for field in ("as", "as-uid", "as-groups", "as-user-extra"):
        if entry.get(field):
            raise errors.ConfigurationError(f"{where}: impersonation ({field}) is not supported")
    for path_field, data_field in (
        ("client-certificate", "client-certificate-data"),
        ("client-key", "client-key-data"),
    ):
        if entry.get(path_field) and entry.get(data_field):
            raise errors.ConfigurationError(f"{where}: {path_field} and {data_field} cannot both be set")
    user = User(
        token=_string(entry, "token", where) or None,
        token_file=_path(entry, "tokenFile", base, where),
        client_certificate=_path(entry, "client-certificate", base, where),
        client_certificate_data=_base64(entry, "client-certificate-data", where),
        client_key=_path(entry, "client-key", base, where),
        client_key_data=_base64(entry, "client-key-data", where),
        exec=_exec(entry["exec"], base, f"{where}: exec") if entry.get("exec") else None,
    )
    has_certificate = bool(user.client_certificate or user.client_certificate_data)
    has_key = bool(user.client_key or user.client_key_data)
    if has_certificate != has_key:
        raise errors.ConfigurationError(f"{where}: a client certificate and its key must be set together")
    if user.exec is not None and (user.token or user.token_file):
        raise errors.ConfigurationError(f"{where}: token or tokenFile cannot be combined with an exec plugin")
    return user


def _exec(value: Any, base: Path, where: str) -> ExecConfig:
    entry = _mapping(value, where)
    api_version = _string(entry, "apiVersion", where)
    if api_version not in EXEC_API_VERSIONS:
        raise errors.ConfigurationError(
            f"{where}: apiVersion {api_version or '(unset)'!r} is not supported (use one of "
            f"{', '.join(EXEC_API_VERSIONS)})"
        )
    command = _string(entry, "command", where)
    if not command:
        raise errors.ConfigurationError(f"{where}: no command is set")
    if "/" in command and not Path(command).is_absolute():
        command = str(base / command)  # as client-go: a relative path is relative to the kubeconfig file
    mode = _string(entry, "interactiveMode", where)
    if not mode:
        if api_version.endswith("/v1"):
            raise errors.ConfigurationError(f"{where}: interactiveMode must be set for {api_version}")
        mode = "IfAvailable"
    if mode not in INTERACTIVE_MODES:
        raise errors.ConfigurationError(
            f"{where}: interactiveMode {mode!r} is not one of {', '.join(INTERACTIVE_MODES)}"
        )
    if mode == "Always":
        raise errors.ConfigurationError(
            f"{where}: interactiveMode Always needs a terminal, and the operator has none; use Never"
        )
    env: list[tuple[str, str]] = []
    for item in _list(entry, "env", where):
        variable = _mapping(item, f"{where}: env[]")
        name = _string(variable, "name", f"{where}: env[]")
        if not name:
            raise errors.ConfigurationError(f"{where}: an env entry has no name")
        env.append((name, _string(variable, "value", f"{where}: env[{name}]")))
    args = _list(entry, "args", where)
    if not all(isinstance(arg, str) for arg in args):
        raise errors.ConfigurationError(f"{where}: args must be strings")
    return ExecConfig(
        api_version=api_version,
        command=command,
        args=tuple(args),
        env=tuple(env),
        interactive_mode=mode,
        provide_cluster_info=_bool(entry, "provideClusterInfo", where),
        install_hint=_string(entry, "installHint", where) or None,
    )


# --- Typed access to the parsed YAML -----------------------------------------------------------------------------


def _named_entries(config: Mapping[str, Any], key: str, path: Path) -> list[tuple[str, Mapping[str, Any]]]:
    where = f"kubeconfig {path}: {key}"
    inner_key = key[:-1]  # contexts → context, clusters → cluster, users → user
    entries = []
    for value in _list(config, key, f"kubeconfig {path}"):
        item = _mapping(value, f"{where}[]")
        name = item.get("name")
        if not isinstance(name, str) or not name:
            raise errors.ConfigurationError(f"{where}: an entry has no name")
        inner = item.get(inner_key)
        entries.append((name, _mapping(inner if inner is not None else {}, f"{where}[{name!r}].{inner_key}")))
    return entries


def _mapping(value: Any, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise errors.ConfigurationError(f"{where}: expected a mapping, found {type(value).__name__}")
    return value


def _list(entry: Mapping[str, Any], key: str, where: str) -> list[Any]:
    value = entry.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise errors.ConfigurationError(f"{where}: {key} must be a list")
    return value


def _string(entry: Mapping[str, Any], key: str, where: str) -> str:
    value = entry.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise errors.ConfigurationError(f"{where}: {key} must be a string")
    return value


def _bool(entry: Mapping[str, Any], key: str, where: str) -> bool:
    value = entry.get(key, False)
    if not isinstance(value, bool):
        raise errors.ConfigurationError(f"{where}: {key} must be true or false")
    return value


def _path(entry: Mapping[str, Any], key: str, base: Path, where: str) -> Path | None:
    value = _string(entry, key, where)
    return base / value if value else None  # an absolute value stays absolute


def _base64(entry: Mapping[str, Any], key: str, where: str) -> bytes | None:
    value = _string(entry, key, where)
    if not value:
        return None
    try:
        return base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError) as err:
        raise errors.ConfigurationError(f"{where}: {key} is not valid base64") from err
