"""API server error responses become acinode's error taxonomy, whose kinds drive retries."""

from __future__ import annotations

import json

import pytest

from acinode import errors
from acinode.kube import client


def status_body(code: int, message: str, reason: str = "") -> bytes:
    return json.dumps(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": message,
            "reason": reason,
            "code": code,
        }
    ).encode()


@pytest.mark.parametrize(
    ("status", "error_type", "retryable"),
    [
        (400, errors.InvalidRequestError, False),
        (401, errors.AuthenticationError, False),
        (403, errors.PermissionDeniedError, False),
        (404, errors.NotFoundError, False),
        (409, errors.ConflictError, True),
        (410, errors.ConflictError, True),  # an expired watch resourceVersion: relist
        (422, errors.InvalidRequestError, False),
        (429, errors.ThrottledError, True),
        (500, errors.TransientError, True),
        (502, errors.TransientError, True),
        (503, errors.TransientError, True),
        (504, errors.TransientError, True),
    ],
)
def test_status_codes_map_to_error_kinds(
    status: int, error_type: type[errors.AcinodeError], retryable: bool
) -> None:
    error = client.error_from_response(status, status_body(status, "boom"), "GET /api/v1/nodes/vn-1")
    assert type(error) is error_type
    assert error.retryable is retryable


def test_the_message_names_the_request_status_and_server_message() -> None:
    error = client.error_from_response(
        404, status_body(404, 'nodes "vn-1" not found'), "GET /api/v1/nodes/vn-1"
    )
    assert str(error) == 'GET /api/v1/nodes/vn-1: 404 nodes "vn-1" not found'


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        pytest.param(b"", "PATCH /x: 503", id="empty"),
        pytest.param(b"upstream connect error", "PATCH /x: 503 upstream connect error", id="plain-text"),
        pytest.param(b"[1, 2]", "PATCH /x: 503 [1, 2]", id="json-not-an-object"),
        pytest.param(b'{"kind": "Status"}', "PATCH /x: 503", id="status-without-message"),
        pytest.param(b"\xff\xfe broken", "PATCH /x: 503 \ufffd\ufffd broken", id="undecodable"),
        pytest.param(b"x" * 500, "PATCH /x: 503 " + "x" * 200, id="long-text-cut"),
    ],
)
def test_payloads_that_are_not_a_status_still_give_a_readable_message(payload: bytes, message: str) -> None:
    assert str(client.error_from_response(503, payload, "PATCH /x")) == message


def test_invalid_requests_carry_the_invalid_code() -> None:
    error = client.error_from_response(
        422, status_body(422, "spec.taints: Duplicate value"), "POST /api/v1/nodes"
    )
    assert isinstance(error, errors.InvalidRequestError)
    assert error.code == "Invalid"


def test_throttling_asks_for_a_pause() -> None:
    error = client.error_from_response(429, status_body(429, "too many requests"), "GET /x")
    assert isinstance(error, errors.ThrottledError)
    assert error.retry_after_seconds > 0
