"""SDK and transport exceptions into ``acinode.errors``, in one place, chained with ``from``.

The rest of acinode never sees an azure exception. What each ARM answer becomes:

| ARM answer | acinode error |
|---|---|
| 429 | ThrottledError (retry-after from the response, 0 if none) |
| 401, or no token could be had | AuthenticationError |
| 403 | PermissionDeniedError (a role assignment is missing) |
| 404 | NotFoundError |
| 400 ``InaccessibleImage`` | ImageInaccessibleError (with the image when the message names it) |
| quota or capacity codes (``ContainerGroupQuotaReached``, 409 ``ServiceUnavailable``…) | QuotaExceededError |
| 409 otherwise | ConflictError |
| 408, 5xx | TransientError |
| any other 4xx | InvalidRequestError (the service's code and message) |
| request never got out (DNS, refused, TLS) | BackendUnavailableError |
| sent, no answer (reset, read timeout) | TransientError |
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator, Mapping

from azure.core import exceptions as azure_exceptions

from acinode import errors
from acinode.aci import ratelimit

IMAGE_CODES = frozenset({"InaccessibleImage", "RegistryErrorResponse"})
QUOTA_CODES = frozenset(
    {
        "ContainerGroupQuotaReached",
        "QuotaExceeded",
        "InsufficientCapacity",
        "ResourceRequestsNotAvailable",
        "SkuNotAvailable",
    }
)
_IMAGE_IN_MESSAGE = re.compile(r"image '([^']+)'")


@contextlib.contextmanager
def translated() -> Iterator[None]:
    """Run a block of SDK calls; whatever they raise leaves as an ``acinode.errors`` type.

    Errors already of our taxonomy (the rate limiter's ThrottledError) pass through; exceptions we do not know
    (bugs) propagate unchanged rather than being disguised.
    """
    try:
        yield
    except errors.AcinodeError:
        raise
    except Exception as exc:
        error = error_from(exc)
        if error is None:
            raise
        raise error from exc


def error_from(exc: BaseException) -> errors.AcinodeError | None:
    """The acinode error for ``exc``, or None when it is not an SDK or transport failure."""
    if isinstance(exc, azure_exceptions.ClientAuthenticationError):
        # Includes azure-identity's CredentialUnavailableError: no token could be obtained at all.
        return errors.AuthenticationError(f"Azure authentication failed: {_short(exc)}")
    if isinstance(exc, azure_exceptions.HttpResponseError) and exc.status_code is not None:
        return _from_response(exc)
    if isinstance(exc, azure_exceptions.ServiceRequestError):
        return errors.BackendUnavailableError(f"ARM not reachable: {_short(exc)}")
    if isinstance(exc, azure_exceptions.ServiceResponseError):
        return errors.TransientError(f"ARM did not answer: {_short(exc)}")
    if isinstance(exc, azure_exceptions.AzureError):
        return errors.TransientError(f"Azure SDK error: {_short(exc)}")
    if isinstance(exc, TimeoutError):
        return errors.TransientError("ARM request timed out")
    if isinstance(exc, ConnectionError):
        return errors.BackendUnavailableError(f"ARM not reachable: {exc}")
    return None


def _from_response(exc: azure_exceptions.HttpResponseError) -> errors.AcinodeError:
    status = int(exc.status_code or 0)
    code, message = _code_and_message(exc)
    text = f"{code}: {message}" if code else message
    if status == 429:
        headers: Mapping[str, str] = getattr(exc.response, "headers", None) or {}
        retry_after = ratelimit.retry_after_seconds(headers) or 0.0
        return errors.ThrottledError(f"ARM throttled the request: {text}", retry_after_seconds=retry_after)
    if status == 401:
        return errors.AuthenticationError(f"ARM refused the credentials: {text}")
    if status == 403:
        return errors.PermissionDeniedError(f"ARM denied the request: {text}")
    if status == 404:
        return errors.NotFoundError(text)
    if code in IMAGE_CODES:
        found = _IMAGE_IN_MESSAGE.search(message)
        return errors.ImageInaccessibleError(text, image=found.group(1) if found else None)
    if _is_quota(status, code):
        return errors.QuotaExceededError(text, code=code or "QuotaExceeded")
    if status == 409:
        return errors.ConflictError(text)
    if status == 408 or status >= 500:
        return errors.TransientError(f"ARM failed ({status}): {text}")
    return errors.InvalidRequestError(text, code=code or f"HTTP{status}")


def _is_quota(status: int, code: str | None) -> bool:
    if not code:
        return False
    if code in QUOTA_CODES or "quota" in code.lower():
        return True
    # ACI reports "no capacity in this region" as a 409 ServiceUnavailable; a real 503 stays transient.
    return code == "ServiceUnavailable" and 400 <= status < 500


def _code_and_message(exc: azure_exceptions.HttpResponseError) -> tuple[str | None, str]:
    body = exc.error
    code = getattr(body, "code", None) if body is not None else None
    message = getattr(body, "message", None) if body is not None else None
    if not message:
        message = exc.reason or f"HTTP {exc.status_code}"
    return (str(code) if code else None), str(message)


def _short(exc: BaseException) -> str:
    # The SDK's messages can span lines (code, message, inner details); the first line says what happened.
    text = str(getattr(exc, "message", None) or exc) or type(exc).__name__
    return text.strip().splitlines()[0]
