"""The one place where acinode errors become HTTP statuses of the kubelet API (virtual-kubelet's errdefs idea).

Bodies are Kubernetes ``Status`` objects, so the API server and kubectl show the message as they would a kubelet's.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from acinode import errors

_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    409: "Conflict",
    429: "TooManyRequests",
    500: "InternalError",
    501: "NotImplemented",
    502: "BadGateway",
    503: "ServiceUnavailable",
}


def status_for(error: BaseException) -> int:
    """The HTTP status for an error raised while serving a request."""
    if isinstance(error, errors.NotFoundError):
        return 404
    if isinstance(error, errors.InvalidRequestError | errors.UnsupportedPodSpecError):
        return 400
    if isinstance(error, errors.AuthenticationError):
        return 401
    if isinstance(error, errors.PermissionDeniedError):
        return 403
    if isinstance(error, errors.ConflictError):
        return 409
    if isinstance(error, errors.ThrottledError | errors.QuotaExceededError):
        return 429
    if isinstance(error, errors.BackendUnavailableError):
        return 502
    if isinstance(error, errors.TransientError):
        return 503
    if isinstance(error, errors.ConfigurationError):
        return 500
    return 500


def status_body(code: int, message: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": _REASONS.get(code, "InternalError"),
        "code": code,
    }


def error_response(code: int, message: str) -> web.Response:
    headers = {}
    if code == 401:
        headers["WWW-Authenticate"] = 'Bearer realm="acinode kubelet"'
    return web.Response(
        status=code,
        text=json.dumps(status_body(code, message)),
        content_type="application/json",
        headers=headers,
    )


def response_for(error: BaseException) -> web.Response:
    code = status_for(error)
    message = str(error) if isinstance(error, errors.AcinodeError) else "internal error"
    if isinstance(error, errors.ThrottledError):
        response = error_response(code, message)
        response.headers["Retry-After"] = str(max(1, round(error.retry_after_seconds)))
        return response
    return error_response(code, message)
