"""The one error taxonomy of acinode, grouped by what the caller should do about it.

Adapters (the ACI client, the Kubernetes adapters) translate foreign exceptions into these once, at the boundary,
chained with ``from``. Everything above speaks only these types; Kopf handlers turn them into
``kopf.TemporaryError`` (retryable) or ``kopf.PermanentError`` (not retryable), and the kubelet API maps them to
HTTP status codes in one function.
"""

from __future__ import annotations


class AcinodeError(Exception):
    """Base of every error acinode raises on purpose."""

    #: Whether repeating the same operation later may succeed without anything else changing.
    retryable: bool = False


# --- Retryable: the same call may succeed later -------------------------------------------------------------


class TransientError(AcinodeError):
    """A passing fault: a 5xx, a timeout, a dropped connection. Retry soon, with bounded backoff."""

    retryable = True


class ThrottledError(TransientError):
    """The backend asked us to slow down (HTTP 429). ``retry_after_seconds`` is how long it asked us to wait."""

    def __init__(self, message: str, retry_after_seconds: float) -> None:
        super().__init__(message)
        self.retry_after_seconds = retry_after_seconds


class QuotaExceededError(AcinodeError):
    """A quota or capacity limit was reached (cores, container groups, regional capacity). Retry with backoff:
    it clears when other workloads go away or the quota is raised."""

    retryable = True

    def __init__(self, message: str, code: str = "QuotaExceeded") -> None:
        super().__init__(message)
        self.code = code


class ImageInaccessibleError(AcinodeError):
    """An image cannot be pulled (missing, private without valid credentials). Retried with backoff, like a
    kubelet's ImagePullBackOff, since the image or the credentials may appear later."""

    retryable = True

    def __init__(self, message: str, image: str | None = None) -> None:
        super().__init__(message)
        self.image = image


class BackendUnavailableError(TransientError):
    """The backend cannot be reached at all (DNS, TLS, connection refused). Heartbeats report Ready=False."""


# --- Not retryable until something changes ------------------------------------------------------------------


class NotFoundError(AcinodeError):
    """The object does not exist. Deleting something that is not found counts as success."""


class ConflictError(AcinodeError):
    """The object changed underneath us (a precondition or resourceVersion did not match)."""

    retryable = True


class AuthenticationError(AcinodeError):
    """Credentials were refused or could not be obtained. Not retried quickly: a human must fix them."""


class PermissionDeniedError(AcinodeError):
    """Authenticated, but not allowed (HTTP 403): RBAC or an Azure role assignment is missing."""


class InvalidRequestError(AcinodeError):
    """The backend refused the request as invalid (HTTP 400). ``code`` is the service's error code."""

    def __init__(self, message: str, code: str = "InvalidRequest") -> None:
        super().__init__(message)
        self.code = code


class IntegrityError(AcinodeError):
    """An answer is not what was asked for (another object than the one requested). Never trusted or retried
    quickly: something between acinode and the server is wrong."""


class ConfigurationError(AcinodeError):
    """acinode's own settings or a VirtualNode's spec cannot work as given."""


class FieldProblem:
    """One offending field of a spec the mapping cannot express, with a human reason. ``missing_object``: the
    field names a Secret, ConfigMap or service account that does not exist (yet): a kubelet waits for it."""

    __slots__ = ("missing_object", "path", "reason")

    def __init__(self, path: str, reason: str, *, missing_object: bool = False) -> None:
        self.path = path
        self.reason = reason
        self.missing_object = missing_object

    def __repr__(self) -> str:
        return f"FieldProblem({self.path!r}, {self.reason!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, FieldProblem) and (self.path, self.reason) == (other.path, other.reason)

    def __hash__(self) -> int:
        return hash((self.path, self.reason))

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


class UnsupportedPodSpecError(AcinodeError):
    """A pod asks for something ACI cannot do. Lists every offending field at once, so the user fixes all of
    them in one go. The pod gets reason ``ProviderFailed`` and an Event; not retried until the pod changes."""

    def __init__(self, problems: list[FieldProblem]) -> None:
        self.problems = list(problems)
        super().__init__("; ".join(str(p) for p in self.problems) or "unsupported pod spec")

    @property
    def only_missing_objects(self) -> bool:
        """Every problem is an object that may yet be created (a new namespace's kube-root-ca.crt, a Secret
        applied after the Deployment): retried, as a kubelet retries, rather than refused."""
        return bool(self.problems) and all(p.missing_object for p in self.problems)
