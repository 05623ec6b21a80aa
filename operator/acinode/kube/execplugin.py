"""Kubeconfig ``exec`` credential plugins, run as client-go runs them (client.authentication.k8s.io v1, v1beta1).

The plugin (kubelogin for Entra ID, aws-iam-authenticator, gke-gcloud-auth-plugin…) is run without a terminal, with
the operator's environment plus the kubeconfig's ``env`` and ``KUBERNETES_EXEC_INFO`` (an ``ExecCredential`` whose
``spec.cluster`` describes the API server when ``provideClusterInfo`` is set). It prints an ``ExecCredential``
whose ``status`` holds a token or a client certificate and key, and optionally ``expirationTimestamp``. The result
is cached until shortly before that expiry (``credentials.refresh_time``), and the plugin is run again then, or
after the API server refused the credential (401). A plugin that fails is reported with its command and the tail
of its stderr, never with its output (which holds the credential) nor its arguments and environment.

``exec_info``, ``credential_from_output`` and ``stderr_tail`` are pure; ``ExecPluginCredentials`` runs the
process.
"""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

from acinode import errors
from acinode.kube import connection, credentials, kubeconfig

logger = logging.getLogger(__name__)

EXEC_INFO_ENV = "KUBERNETES_EXEC_INFO"
TIMEOUT_SECONDS = 60.0
"""A plugin that has not answered after this long is killed and reported as failed."""
MARGIN_SECONDS = 30.0
"""A credential with an expiry is fetched again this long before it expires (see ``credentials.refresh_time``)."""
RETRY_SECONDS = 5.0
"""After a failed refresh, while the previous credential is still valid, the plugin is retried this often."""
STDERR_TAIL_CHARS = 300


def exec_info(config: kubeconfig.ExecConfig, cluster: kubeconfig.Cluster) -> dict[str, Any]:
    """The ``ExecCredential`` passed in ``KUBERNETES_EXEC_INFO``: never interactive; the cluster if asked for."""
    spec: dict[str, Any] = {"interactive": False}
    if config.provide_cluster_info:
        described: dict[str, Any] = {"server": cluster.server}
        if cluster.certificate_authority_data is not None:
            described["certificate-authority-data"] = base64.b64encode(
                cluster.certificate_authority_data
            ).decode()
        if cluster.insecure_skip_tls_verify:
            described["insecure-skip-tls-verify"] = True
        if cluster.exec_extension is not None:
            described["config"] = cluster.exec_extension
        spec["cluster"] = described
    return {"apiVersion": config.api_version, "kind": "ExecCredential", "spec": spec}


def credential_from_output(
    output: bytes,
    config: kubeconfig.ExecConfig,
    *,
    now: datetime.datetime,
    margin_seconds: float = MARGIN_SECONDS,
) -> credentials.Credential:
    """The credential in a plugin's standard output. ``AuthenticationError`` (naming the command, never quoting
    the output) if it is not a valid ``ExecCredential`` of the configured version."""
    what = f"exec plugin {config.command}"
    try:
        document = json.loads(output)
    except (ValueError, UnicodeDecodeError) as err:
        raise errors.AuthenticationError(f"{what} printed something that is not JSON") from err
    if not isinstance(document, dict) or document.get("kind") != "ExecCredential":
        raise errors.AuthenticationError(f"{what} did not print an ExecCredential")
    if document.get("apiVersion") != config.api_version:
        raise errors.AuthenticationError(
            f"{what} is configured for {config.api_version} but returned {document.get('apiVersion')!r}"
        )
    status = document.get("status")
    if not isinstance(status, dict):
        raise errors.AuthenticationError(f"{what} returned no status")
    token = status.get("token") or None
    certificate = status.get("clientCertificateData") or None
    key = status.get("clientKeyData") or None
    if not all(value is None or isinstance(value, str) for value in (token, certificate, key)):
        raise errors.AuthenticationError(
            f"{what} returned a status whose token or certificate is not a string"
        )
    if bool(certificate) != bool(key):
        raise errors.AuthenticationError(
            f"{what} returned a client certificate without its key, or the reverse"
        )
    if token is None and certificate is None:
        raise errors.AuthenticationError(f"{what} returned neither a token nor a client certificate and key")
    expires_at = _timestamp(status.get("expirationTimestamp"), what)
    if expires_at is not None and expires_at <= now:
        raise errors.AuthenticationError(
            f"{what} returned a credential that expired at {expires_at.isoformat()}"
        )
    return credentials.Credential(
        token=token,
        certificate_data=certificate.encode() if certificate else None,
        private_key_data=key.encode() if key else None,
        expires_at=expires_at,
        refresh_at=credentials.refresh_time(now, expires_at, margin_seconds),
    )


def stderr_tail(stderr: bytes, limit: int = STDERR_TAIL_CHARS) -> str:
    """The end of a plugin's stderr on one line (whitespace runs collapsed), for an error message."""
    text = " ".join(stderr.decode(errors="replace").split())
    return text if len(text) <= limit else "…" + text[-limit:]


def _timestamp(value: Any, what: str) -> datetime.datetime | None:
    if value in (None, ""):
        return None
    try:
        parsed = datetime.datetime.fromisoformat(str(value))
    except ValueError as err:
        raise errors.AuthenticationError(f"{what} returned an invalid expirationTimestamp {value!r}") from err
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=datetime.UTC)


class ExecPluginCredentials(credentials.SourceOf):
    """A ``credentials.CredentialSource`` backed by an exec plugin. One run at a time; concurrent callers wait
    for it. When a refresh before expiry fails, the previous credential is used until it really expires."""

    def __init__(
        self,
        endpoint: connection.KubeConnection,
        config: kubeconfig.ExecConfig,
        cluster: kubeconfig.Cluster,
        *,
        description: str,
        environ: Mapping[str, str] | None = None,
        timeout_seconds: float = TIMEOUT_SECONDS,
        margin_seconds: float = MARGIN_SECONDS,
        retry_seconds: float = RETRY_SECONDS,
        clock: credentials.Clock = credentials.utc_now,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(endpoint, description)
        self._config = config
        self._cluster = cluster
        self._environ = environ
        self._timeout = timeout_seconds
        self._margin = margin_seconds
        self._retry = retry_seconds
        self._clock = clock
        self._monotonic = monotonic
        self._cached: credentials.Credential | None = None
        self._next_attempt = float("-inf")
        self._lock = asyncio.Lock()

    async def current(self) -> credentials.Credential:
        cached = self._cached
        if cached is not None and not cached.is_due(self._clock()):
            return cached
        async with self._lock:
            cached = self._cached  # another caller may have refreshed it while this one waited
            now = self._clock()
            if cached is not None and not cached.is_due(now):
                return cached
            still_valid = cached is not None and (cached.expires_at is None or now < cached.expires_at)
            if cached is not None and still_valid and self._monotonic() < self._next_attempt:
                return cached
            try:
                fresh = await self._run()
            except errors.AuthenticationError as err:
                if cached is None or not still_valid:
                    raise
                self._next_attempt = self._monotonic() + self._retry
                logger.warning("%s; the current credential stays in use until it expires", err)
                return cached
            self._cached = fresh
            until = fresh.expires_at.isoformat() if fresh.expires_at else "a 401"
            logger.info("exec plugin %s gave a new credential, valid until %s", self._config.command, until)
            return fresh

    def invalidate(self, stale: credentials.Credential) -> None:
        if self._cached is stale:
            self._cached = None
            self._next_attempt = float("-inf")

    async def _run(self) -> credentials.Credential:
        config = self._config
        what = f"exec plugin {config.command}"
        env = dict(os.environ if self._environ is None else self._environ)
        env.update(config.env)
        env[EXEC_INFO_ENV] = json.dumps(exec_info(config, self._cluster))
        try:
            process = await asyncio.create_subprocess_exec(
                config.command,
                *config.args,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
                env=env,
            )
        except OSError as err:
            hint = f" ({' '.join(config.install_hint.split())})" if config.install_hint else ""
            reason = "not found" if isinstance(err, FileNotFoundError) else (err.strerror or str(err))
            raise errors.AuthenticationError(f"{what}: {reason}{hint}") from err
        try:
            stdout, stderr = await asyncio.wait_for(process.communicate(), self._timeout)
        except TimeoutError as err:
            raise errors.AuthenticationError(f"{what} did not answer within {self._timeout:g}s") from err
        finally:
            if process.returncode is None:  # timed out or cancelled: don't leave it running
                process.kill()
                await process.wait()
        if process.returncode != 0:
            tail = stderr_tail(stderr)
            raise errors.AuthenticationError(
                f"{what} failed with exit code {process.returncode}"
                + (f": {tail}" if tail else " (no stderr)")
            )
        return credential_from_output(stdout, config, now=self._clock(), margin_seconds=self._margin)
