"""Kubeconfig files read as client-go reads them: every kind of user, merged files, relative paths, and a clear
one-line error for everything acinode refuses; then which credentials the operator picks, in client-go's order."""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from acinode import errors
from acinode.kube import credentials, execplugin, kubeconfig, login

CA_PEM = b"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
EXEC_V1 = {
    "apiVersion": "client.authentication.k8s.io/v1",
    "command": "kubelogin",
    "args": ["get-token", "--server-id", "6dae42f8"],
    "env": [{"name": "AAD_LOGIN_METHOD", "value": "workloadidentity"}],
    "interactiveMode": "Never",
    "provideClusterInfo": True,
    "installHint": "install kubelogin:\n  az aks install-cli",
}


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def config(
    user: dict[str, Any] | None = None, cluster: dict[str, Any] | None = None, **extra: Any
) -> dict[str, Any]:
    """A kubeconfig with one context ``ctx`` on cluster ``k`` for user ``u``."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "ctx",
        "contexts": [{"name": "ctx", "context": {"cluster": "k", "user": "u", "namespace": "ops"}}],
        "clusters": [
            {
                "name": "k",
                "cluster": cluster
                or {"server": "https://api.example:6443", "certificate-authority-data": b64(CA_PEM)},
            }
        ],
        "users": [{"name": "u", "user": user if user is not None else {"token": "static-token"}}],
        **extra,
    }


def context_of(
    content: Any, path: str = "/etc/acinode/kubeconfig", name: str | None = None
) -> kubeconfig.Context:
    return kubeconfig.context_from_documents([(Path(path), content)], name)


def source_of(content: Any, path: str = "/etc/acinode/kubeconfig") -> credentials.CredentialSource:
    return login.source_from_context(context_of(content, path))


# --- Every kind of user ------------------------------------------------------------------------------------------


async def test_a_static_token_and_the_cluster_ca_are_used() -> None:
    source = source_of(config())
    assert isinstance(source, credentials.StaticCredentials)
    assert (source.endpoint.server, source.endpoint.ca_data, source.endpoint.namespace) == (
        "https://api.example:6443",
        CA_PEM,
        "ops",
    )
    assert (await source.current()).token == "static-token"
    assert source.description == "kubeconfig /etc/acinode/kubeconfig (context 'ctx', user 'u')"


def test_a_token_file_is_resolved_against_the_kubeconfig_folder_and_wins_over_a_token() -> None:
    source = source_of(config({"token": "ignored", "tokenFile": "tokens/operator"}))
    assert isinstance(source, credentials.TokenFileCredentials)
    assert "/etc/acinode/tokens/operator" in source.description
    assert source.endpoint.token is None


def test_client_certificate_files_are_resolved_and_absolute_paths_kept() -> None:
    source = source_of(
        config(
            {"client-certificate": "pki/admin.crt", "client-key": "/secure/admin.key"},
            {"server": "https://api:6443", "certificate-authority": "pki/ca.crt"},
        )
    )
    assert isinstance(source, credentials.StaticCredentials)
    endpoint = source.endpoint
    assert (endpoint.ca_path, endpoint.certificate_path, endpoint.private_key_path) == (
        "/etc/acinode/pki/ca.crt",
        "/etc/acinode/pki/admin.crt",
        "/secure/admin.key",
    )


def test_client_certificate_data_is_decoded() -> None:
    endpoint = source_of(
        config({"client-certificate-data": b64(b"CERT"), "client-key-data": b64(b"KEY")})
    ).endpoint
    assert (endpoint.certificate_data, endpoint.private_key_data) == (b"CERT", b"KEY")


def test_insecure_skip_tls_verify_is_honoured() -> None:
    endpoint = source_of(
        config(cluster={"server": "https://api:6443", "insecure-skip-tls-verify": True})
    ).endpoint
    assert endpoint.insecure
    assert endpoint.ca_path is None
    assert endpoint.ca_data is None


def test_an_exec_plugin_is_parsed_as_configured() -> None:
    cluster = {
        "server": "https://aks.example:443/",
        "certificate-authority-data": b64(CA_PEM),
        "extensions": [{"name": "client.authentication.k8s.io/exec", "extension": {"audience": "aks"}}],
    }
    context = context_of(config({"exec": EXEC_V1}, cluster))
    assert context.user.exec == kubeconfig.ExecConfig(
        api_version="client.authentication.k8s.io/v1",
        command="kubelogin",
        args=("get-token", "--server-id", "6dae42f8"),
        env=(("AAD_LOGIN_METHOD", "workloadidentity"),),
        interactive_mode="Never",
        provide_cluster_info=True,
        install_hint="install kubelogin:\n  az aks install-cli",
    )
    assert context.cluster.server == "https://aks.example:443"
    assert context.cluster.exec_extension == {"audience": "aks"}
    source = login.source_from_context(context)
    assert isinstance(source, execplugin.ExecPluginCredentials)
    assert source.description.startswith("the exec plugin kubelogin of kubeconfig")


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        ("kubelogin", "kubelogin"),  # looked up on PATH
        ("./bin/plugin", "/etc/acinode/bin/plugin"),  # relative to the kubeconfig's folder
        ("/usr/local/bin/plugin", "/usr/local/bin/plugin"),
    ],
)
def test_an_exec_command_with_a_relative_path_is_relative_to_the_kubeconfig(
    command: str, expected: str
) -> None:
    exec_config = context_of(config({"exec": {**EXEC_V1, "command": command}})).user.exec
    assert exec_config is not None
    assert exec_config.command == expected


def test_v1beta1_exec_plugins_default_to_interactive_if_available() -> None:
    plugin = {"apiVersion": "client.authentication.k8s.io/v1beta1", "command": "aws-iam-authenticator"}
    exec_config = context_of(config({"exec": plugin})).user.exec
    assert exec_config is not None
    assert (exec_config.interactive_mode, exec_config.args, exec_config.provide_cluster_info) == (
        "IfAvailable",
        (),
        False,
    )


def test_a_context_without_a_user_is_anonymous() -> None:
    content = config()
    content["contexts"][0]["context"].pop("user")
    context = context_of(content)
    assert (context.user, context.user_name) == (kubeconfig.User(), None)


# --- Choosing and merging ----------------------------------------------------------------------------------------


def test_a_named_context_is_used_instead_of_the_current_one() -> None:
    content = config()
    content["contexts"].append({"name": "other", "context": {"cluster": "k", "user": "v"}})
    content["users"].append({"name": "v", "user": {"token": "other-token"}})
    context = context_of(content, name="other")
    assert (context.name, context.user.token, context.namespace) == ("other", "other-token", None)


def test_merged_files_take_the_first_current_context_and_the_first_entry_of_each_name() -> None:
    first = {
        "current-context": "ctx",
        "users": [{"name": "u", "user": {"tokenFile": "first-token"}}],
    }
    second = config({"tokenFile": "second-token"})
    second["current-context"] = "ignored"
    context = kubeconfig.context_from_documents([(Path("/a/config"), first), (Path("/b/config"), second)])
    assert context.name == "ctx"
    assert context.user.token_file == Path("/a/first-token")  # each path relative to the file that holds it
    assert context.files == (Path("/a/config"), Path("/b/config"))


def test_read_documents_parses_yaml_and_json(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("current-context: ctx\n")
    (tmp_path / "b.json").write_text(json.dumps(config()))
    documents = kubeconfig.read_documents([tmp_path / "a.yaml", tmp_path / "b.json"])
    assert [content["current-context"] for _, content in documents] == ["ctx", "ctx"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "kubeconfig {path}: No such file or directory"),
        (
            "clusters: [\n",
            "kubeconfig {path} is not valid YAML: expected the node content, but found '<stream end>' (line 2, column 1)",
        ),
        ("key: value\n\tbad", "kubeconfig {path} is not valid YAML"),
    ],
)
def test_an_unreadable_or_malformed_file_is_one_clear_line(
    tmp_path: Path, text: str | None, message: str
) -> None:
    path = tmp_path / "kubeconfig"
    if text is not None:
        path.write_text(text)
    with pytest.raises(errors.ConfigurationError) as caught:
        kubeconfig.read_documents([path])
    assert str(caught.value).startswith(message.format(path=path))
    assert "\n" not in str(caught.value)


# --- Refused, with the reason ------------------------------------------------------------------------------------


def with_user(**user: Any) -> dict[str, Any]:
    return config(user)


def with_cluster(**cluster: Any) -> dict[str, Any]:
    return config(cluster={"server": "https://api:6443", **cluster})


def with_exec(**fields: Any) -> dict[str, Any]:
    plugin = {**EXEC_V1, **fields}
    return config({"exec": {key: value for key, value in plugin.items() if value is not None}})


PROBLEMS: list[tuple[str, Any, str]] = [
    (
        "auth-provider",
        with_user(**{"auth-provider": {"name": "azure", "config": {"access-token": "x"}}}),
        "the legacy auth-provider 'azure' is not supported",
    ),
    (
        "basic auth",
        with_user(username="admin", password="pw"),
        "basic authentication (username/password) is not supported",
    ),
    ("impersonation", with_user(token="t", **{"as": "system:admin"}), "impersonation (as) is not supported"),
    (
        "certificate without key",
        with_user(**{"client-certificate": "a.crt"}),
        "a client certificate and its key must be set together",
    ),
    (
        "certificate path and data",
        with_user(**{"client-certificate": "a.crt", "client-certificate-data": b64(b"C"), "client-key": "k"}),
        "client-certificate and client-certificate-data cannot both be set",
    ),
    (
        "bad base64",
        with_user(**{"client-certificate-data": "not base64!", "client-key-data": b64(b"K")}),
        "client-certificate-data is not valid base64",
    ),
    ("token type", with_user(token=42), "token must be a string"),
    (
        "exec and token",
        config({"exec": EXEC_V1, "token": "t"}),
        "token or tokenFile cannot be combined with an exec plugin",
    ),
    ("exec without apiVersion", with_exec(apiVersion=None), "apiVersion '(unset)' is not supported"),
    (
        "exec v1alpha1",
        with_exec(apiVersion="client.authentication.k8s.io/v1alpha1"),
        "apiVersion 'client.authentication.k8s.io/v1alpha1' is not supported",
    ),
    ("exec without command", with_exec(command=None), "exec: no command is set"),
    (
        "v1 without interactiveMode",
        with_exec(interactiveMode=None),
        "interactiveMode must be set for client.authentication.k8s.io/v1",
    ),
    (
        "interactiveMode Always",
        with_exec(interactiveMode="Always"),
        "interactiveMode Always needs a terminal",
    ),
    (
        "interactiveMode unknown",
        with_exec(interactiveMode="Sometimes"),
        "interactiveMode 'Sometimes' is not one of Never, IfAvailable, Always",
    ),
    ("exec args", with_exec(args=["ok", 3]), "args must be strings"),
    ("exec env without name", with_exec(env=[{"value": "x"}]), "an env entry has no name"),
    ("proxy-url", with_cluster(**{"proxy-url": "socks5://proxy:1080"}), "proxy-url is not supported"),
    (
        "tls-server-name",
        with_cluster(**{"tls-server-name": "kubernetes"}),
        "tls-server-name is not supported",
    ),
    (
        "insecure with a CA",
        with_cluster(**{"insecure-skip-tls-verify": True, "certificate-authority": "ca.crt"}),
        "insecure-skip-tls-verify and a certificate authority cannot both be set",
    ),
    (
        "insecure not a bool",
        with_cluster(**{"insecure-skip-tls-verify": "yes"}),
        "insecure-skip-tls-verify must be true or false",
    ),
    (
        "no server",
        config(cluster={"certificate-authority-data": b64(CA_PEM)}),
        "cluster 'k': no server is set",
    ),
    ("not a URL", with_cluster(server="api.example:6443"), "server 'api.example:6443' is not an http(s) URL"),
    (
        "no current context",
        {**config(), "current-context": ""},
        "no current-context is set and none was chosen",
    ),
    ("unknown context", {**config(), "current-context": "gone"}, "context 'gone' is not defined"),
    (
        "unknown cluster",
        {**config(), "clusters": []},
        "context 'ctx' refers to cluster 'k', which is not defined",
    ),
    ("unknown user", {**config(), "users": []}, "context 'ctx' refers to user 'u', which is not defined"),
    ("top level not a mapping", ["a", "list"], "expected a mapping, found list"),
    ("users not a list", {**config(), "users": {"u": {}}}, "users must be a list"),
    ("entry without a name", {**config(), "users": [{"user": {}}]}, "users: an entry has no name"),
]


@pytest.mark.parametrize(("case", "content", "message"), PROBLEMS, ids=[case for case, _, _ in PROBLEMS])
def test_what_cannot_be_honoured_is_refused_with_its_reason(case: str, content: Any, message: str) -> None:
    with pytest.raises(errors.ConfigurationError) as caught:
        source_of(content)
    assert message in str(caught.value)
    assert str(caught.value).startswith("kubeconfig /etc/acinode/kubeconfig")
    assert "\n" not in str(caught.value)


def test_secrets_stay_out_of_the_parsed_reprs() -> None:
    context = context_of(
        config(
            {"token": "s3cret", "client-certificate-data": b64(b"CERT"), "client-key-data": b64(b"PRIVATE")}
        )
    )
    shown = repr(context)
    assert "s3cret" not in shown
    assert "PRIVATE" not in shown
    exec_context = context_of(config({"exec": {**EXEC_V1, "env": [{"name": "SECRET", "value": "hunter2"}]}}))
    assert "hunter2" not in repr(exec_context)


# --- Where the operator finds its credentials --------------------------------------------------------------------


def write_kubeconfig(path: Path, token: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config({"token": token})))
    return path


def service_account(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "token").write_text("pod-token\n")
    (folder / "namespace").write_text("acinode-system")
    return folder


IN_CLUSTER_ENV = {"KUBERNETES_SERVICE_HOST": "10.0.0.1", "KUBERNETES_SERVICE_PORT": "443"}


async def test_an_explicit_kubeconfig_wins(tmp_path: Path) -> None:
    explicit = write_kubeconfig(tmp_path / "explicit", "explicit-token")
    source = login.credential_source(
        kubeconfig_path=str(explicit),
        environ=IN_CLUSTER_ENV,
        service_account_folder=service_account(tmp_path / "sa"),
    )
    assert (await source.current()).token == "explicit-token"


async def test_in_a_pod_the_service_account_is_used(tmp_path: Path) -> None:
    folder = service_account(tmp_path / "sa")
    (folder / "ca.crt").write_bytes(CA_PEM)
    source = login.credential_source(
        environ={**IN_CLUSTER_ENV, "KUBECONFIG": str(write_kubeconfig(tmp_path / "k", "x"))},
        service_account_folder=folder,
    )
    assert isinstance(source, credentials.TokenFileCredentials)
    assert (await source.current()).token == "pod-token"
    endpoint = source.endpoint
    assert (endpoint.server, endpoint.ca_path, endpoint.namespace) == (
        "https://10.0.0.1:443",
        str(folder / "ca.crt"),
        "acinode-system",
    )


def test_an_ipv6_service_host_is_bracketed(tmp_path: Path) -> None:
    source = login.credential_source(
        environ={"KUBERNETES_SERVICE_HOST": "fd00::1", "KUBERNETES_SERVICE_PORT": "443"},
        service_account_folder=service_account(tmp_path / "sa"),
    )
    assert source.endpoint.server == "https://[fd00::1]:443"


async def test_kubeconfig_lists_skip_missing_files(tmp_path: Path) -> None:
    present = write_kubeconfig(tmp_path / "present", "listed-token")
    source = login.credential_source(
        environ={"KUBECONFIG": f"{tmp_path / 'missing'}:{present}"},
        home=tmp_path,
        service_account_folder=tmp_path / "no-sa",
    )
    assert (await source.current()).token == "listed-token"


def test_a_kubeconfig_list_of_missing_files_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigurationError, match=r"KUBECONFIG=.*/gone names no existing file"):
        login.credential_source(
            environ={"KUBECONFIG": str(tmp_path / "gone")},
            home=tmp_path,
            service_account_folder=tmp_path / "no",
        )


async def test_the_home_kubeconfig_is_the_last_resort(tmp_path: Path) -> None:
    write_kubeconfig(tmp_path / ".kube" / "config", "home-token")
    source = login.credential_source(environ={}, home=tmp_path, service_account_folder=tmp_path / "no-sa")
    assert (await source.current()).token == "home-token"


def test_no_credentials_at_all_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigurationError) as caught:
        login.credential_source(environ={}, home=tmp_path, service_account_folder=tmp_path / "no-sa")
    assert str(caught.value) == (
        "no Kubernetes credentials: not in a cluster (no service-account token), no --kubeconfig, KUBECONFIG is "
        f"unset and {tmp_path}/.kube/config does not exist"
    )


def test_a_missing_explicit_kubeconfig_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(errors.ConfigurationError, match=r"kubeconfig .*/absent: No such file or directory"):
        login.credential_source(kubeconfig_path=str(tmp_path / "absent"), environ={})
