"""In-cluster credentials, as client-go's ``rest.InClusterConfig``: the pod's service-account token and CA.

The API server is ``https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT``. The token is a projected
service-account token that the kubelet rewrites before it expires (at 80 % of its lifetime), so it is read again
every minute and after a 401, never only once.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from acinode.kube import connection, credentials

SERVICE_ACCOUNT_FOLDER = Path("/var/run/secrets/kubernetes.io/serviceaccount")


def server_url(host: str, port: str) -> str:
    """The API server's URL from the service environment variables (an IPv6 host is bracketed)."""
    return f"https://[{host}]:{port}" if ":" in host else f"https://{host}:{port}"


def in_cluster_credentials(
    environ: Mapping[str, str], folder: Path = SERVICE_ACCOUNT_FOLDER
) -> credentials.TokenFileCredentials | None:
    """The pod's credentials, or None when not running in a pod with a service-account token."""
    host = environ.get("KUBERNETES_SERVICE_HOST", "")
    port = environ.get("KUBERNETES_SERVICE_PORT", "")
    token_file = folder / "token"
    if not host or not port or not token_file.is_file():
        return None
    ca_file = folder / "ca.crt"
    namespace_file = folder / "namespace"
    namespace = namespace_file.read_text().strip() if namespace_file.is_file() else None
    endpoint = connection.KubeConnection(
        server=server_url(host, port),
        ca_path=str(ca_file) if ca_file.is_file() else None,
        namespace=namespace or None,
    )
    return credentials.TokenFileCredentials(
        endpoint, token_file, description=f"the in-cluster service account token {token_file}"
    )
