"""Which credentials the operator uses, in the order client-based tools look for them.

1. an explicit ``--kubeconfig`` (it must exist);
2. in a pod: the service account (``incluster``);
3. ``KUBECONFIG`` (a list of files joined with ``os.pathsep``; missing ones are skipped, as client-go does);
4. ``~/.kube/config``.

Then the context's user decides the source: an ``exec`` plugin, a ``tokenFile`` (read again as it rotates), or
a fixed token and/or client certificate. Every problem is an ``errors.ConfigurationError`` with one line saying
what to fix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from acinode import errors
from acinode.kube import connection, credentials, execplugin, incluster, kubeconfig


def credential_source(
    *,
    kubeconfig_path: str | None = None,
    context: str | None = None,
    environ: Mapping[str, str] | None = None,
    home: Path | None = None,
    service_account_folder: Path = incluster.SERVICE_ACCOUNT_FOLDER,
) -> credentials.CredentialSource:
    """The operator's credential source (see the module docstring for the order)."""
    environ = os.environ if environ is None else environ
    if kubeconfig_path:
        return source_from_context(_load([Path(kubeconfig_path)], context))
    in_cluster = incluster.in_cluster_credentials(environ, service_account_folder)
    if in_cluster is not None:
        return in_cluster
    listed = [Path(entry) for entry in environ.get("KUBECONFIG", "").split(os.pathsep) if entry.strip()]
    if listed:
        existing = [path for path in listed if path.exists()]
        if not existing:
            shown = os.pathsep.join(str(path) for path in listed)
            raise errors.ConfigurationError(f"no kubeconfig found: KUBECONFIG={shown} names no existing file")
        return source_from_context(_load(existing, context))
    default = (home if home is not None else Path.home()) / ".kube" / "config"
    if default.exists():
        return source_from_context(_load([default], context))
    raise errors.ConfigurationError(
        "no Kubernetes credentials: not in a cluster (no service-account token), no --kubeconfig, "
        f"KUBECONFIG is unset and {default} does not exist"
    )


def _load(paths: list[Path], context: str | None) -> kubeconfig.Context:
    return kubeconfig.context_from_documents(kubeconfig.read_documents(paths), context)


def source_from_context(
    context: kubeconfig.Context, environ: Mapping[str, str] | None = None
) -> credentials.CredentialSource:
    """The credential source for a kubeconfig context's user."""
    cluster, user = context.cluster, context.user
    endpoint = connection.KubeConnection(
        server=cluster.server,
        ca_path=str(cluster.certificate_authority) if cluster.certificate_authority else None,
        ca_data=cluster.certificate_authority_data,
        insecure=cluster.insecure_skip_tls_verify,
        token=user.token if user.token_file is None else None,
        certificate_path=str(user.client_certificate) if user.client_certificate else None,
        certificate_data=user.client_certificate_data,
        private_key_path=str(user.client_key) if user.client_key else None,
        private_key_data=user.client_key_data,
        namespace=context.namespace,
    )
    if user.exec is not None:
        return execplugin.ExecPluginCredentials(
            endpoint,
            user.exec,
            cluster,
            description=f"the exec plugin {user.exec.command} of {context.description}",
            environ=environ,
        )
    if user.token_file is not None:
        # As client-go: the file's token, read again as it changes, wins over a `token` set beside it.
        return credentials.TokenFileCredentials(
            endpoint,
            user.token_file,
            description=f"the token file {user.token_file} of {context.description}",
        )
    return credentials.StaticCredentials(endpoint, description=context.description)
