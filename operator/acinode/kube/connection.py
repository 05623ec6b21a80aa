"""Where the API server is, how to trust it and, for fixed credentials, how to authenticate to it, as plain data.

Credentials that change (token files, exec plugins) come from a ``credentials.CredentialSource`` whose ``endpoint``
is one of these; the client adds the source's current credential to each request.
"""

from __future__ import annotations

import dataclasses
import ssl
import tempfile
from pathlib import Path


@dataclasses.dataclass(frozen=True)
class KubeConnection:
    server: str
    """Base URL of the API server, e.g. ``https://127.0.0.1:6443``."""
    ca_path: str | None = None
    ca_data: bytes | None = None
    insecure: bool = False
    token: str | None = dataclasses.field(default=None, repr=False)
    certificate_path: str | None = None
    certificate_data: bytes | None = dataclasses.field(default=None, repr=False)
    private_key_path: str | None = None
    private_key_data: bytes | None = dataclasses.field(default=None, repr=False)
    namespace: str | None = None
    """The default namespace: the pod's in a cluster, the kubeconfig context's otherwise (None: unset)."""

    def with_identity(self, identity: tuple[bytes, bytes] | None) -> KubeConnection:
        """The same endpoint presenting another client certificate and key (PEM), e.g. an exec plugin's."""
        if identity is None:
            return self
        return dataclasses.replace(
            self,
            certificate_path=None,
            certificate_data=identity[0],
            private_key_path=None,
            private_key_data=identity[1],
        )

    def ssl_context(self) -> ssl.SSLContext:
        """An SSL context trusting the cluster CA and presenting the client certificate, if any."""
        context = ssl.create_default_context(
            cafile=self.ca_path,
            cadata=self.ca_data.decode() if self.ca_data else None,
        )
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if self.certificate_path or self.certificate_data:
            # ssl only loads client certificates from files; write in-memory ones to a private temp folder.
            with tempfile.TemporaryDirectory(prefix="acinode-") as folder:
                cert = self.certificate_path or _write(Path(folder) / "client.crt", self.certificate_data)
                key = self.private_key_path or _write(Path(folder) / "client.key", self.private_key_data)
                context.load_cert_chain(cert, key)
        return context


def _write(path: Path, data: bytes | None) -> str:
    path.touch(mode=0o600)
    path.write_bytes(data or b"")
    return str(path)
