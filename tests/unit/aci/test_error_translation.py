"""Every SDK and transport failure becomes one ``acinode.errors`` type, chained to the original."""

from __future__ import annotations

import asyncio
import json

import pytest
from azure.core import exceptions as azure_exceptions
from azure.identity import CredentialUnavailableError
from azure.mgmt.core.exceptions import ARMErrorFormat

from acinode import errors
from acinode.aci import translate


class FakeResponse:
    """Just enough of an HTTP response for azure-core to build its exception from."""

    def __init__(self, status: int, body: str, headers: dict[str, str] | None = None) -> None:
        self.status_code = status
        self.reason = "Reason"
        self.headers = headers or {}
        self.content_type = "application/json"
        self.request = None
        self._body = body

    def text(self, encoding: str | None = None) -> str:
        return self._body

    def body(self) -> bytes:
        return self._body.encode()


def arm_error(
    status: int,
    code: str | None = None,
    message: str = "it went wrong",
    headers: dict[str, str] | None = None,
) -> azure_exceptions.HttpResponseError:
    """The exception the SDK raises for an ARM CloudError answer (via map_error for 401/404/409)."""
    body = json.dumps({"error": {"code": code, "message": message}}) if code else "not json"
    response = FakeResponse(status, body, headers)
    error_map = {
        401: azure_exceptions.ClientAuthenticationError,
        404: azure_exceptions.ResourceNotFoundError,
        409: azure_exceptions.ResourceExistsError,
    }
    try:
        azure_exceptions.map_error(status_code=status, response=response, error_map=error_map)  # type: ignore[arg-type]
    except azure_exceptions.HttpResponseError as mapped:
        return mapped
    return azure_exceptions.HttpResponseError(response=response, error_format=ARMErrorFormat)  # type: ignore[arg-type]


def translate_raised(exc: BaseException) -> BaseException:
    with pytest.raises(BaseException) as caught, translate.translated():
        raise exc
    return caught.value


QUOTA_MESSAGE = (
    "Resource type 'Microsoft.ContainerInstance/containerGroups' container group quota 'StandardCores' "
    "exceeded in region 'westeurope'. Limit: '10', Usage: '10' Requested: '1'."
)
CAPACITY_MESSAGE = "The requested resource is not available in the location 'westeurope' at this moment."


@pytest.mark.parametrize(
    ("exc", "expected_type"),
    [
        (arm_error(429, "TooManyRequests", headers={"Retry-After": "17"}), errors.ThrottledError),
        (arm_error(401, "InvalidAuthenticationToken"), errors.AuthenticationError),
        (arm_error(403, "AuthorizationFailed"), errors.PermissionDeniedError),
        (arm_error(404, "ResourceNotFound"), errors.NotFoundError),
        (arm_error(404), errors.NotFoundError),
        (
            arm_error(
                400,
                "InaccessibleImage",
                "The image 'ghcr.io/x/y:1' in container group 'g' is not accessible.",
            ),
            errors.ImageInaccessibleError,
        ),
        (arm_error(400, "ContainerGroupQuotaReached", QUOTA_MESSAGE), errors.QuotaExceededError),
        (arm_error(409, "ServiceUnavailable", CAPACITY_MESSAGE), errors.QuotaExceededError),
        (arm_error(409, "Conflict"), errors.ConflictError),
        (arm_error(400, "InvalidContainerName"), errors.InvalidRequestError),
        (arm_error(400, "ContainerLimitGreaterThanContainerGroupTotalRequest"), errors.InvalidRequestError),
        (arm_error(422, "UnprocessableEntity"), errors.InvalidRequestError),
        (arm_error(500, "InternalServerError"), errors.TransientError),
        (arm_error(503, "ServiceUnavailable"), errors.TransientError),
        (arm_error(502), errors.TransientError),
        (arm_error(408, "RequestTimeout"), errors.TransientError),
        (azure_exceptions.ClientAuthenticationError("token request failed"), errors.AuthenticationError),
        (CredentialUnavailableError("no managed identity endpoint"), errors.AuthenticationError),
        (azure_exceptions.ServiceRequestError("Cannot connect to host"), errors.BackendUnavailableError),
        (azure_exceptions.ServiceResponseError("Connection reset by peer"), errors.TransientError),
        (azure_exceptions.AzureError("something else in the SDK"), errors.TransientError),
        (TimeoutError(), errors.TransientError),
        (ConnectionRefusedError("refused"), errors.BackendUnavailableError),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, BaseException) else None,
)
def test_each_failure_maps_to_one_acinode_error(exc: BaseException, expected_type: type[Exception]) -> None:
    translated = translate_raised(exc)
    assert type(translated) is expected_type
    assert translated.__cause__ is exc


def test_throttled_carries_the_servers_retry_after() -> None:
    translated = translate_raised(arm_error(429, "TooManyRequests", headers={"Retry-After": "17"}))
    assert isinstance(translated, errors.ThrottledError)
    assert translated.retry_after_seconds == 17.0


def test_invalid_request_keeps_the_services_code_and_message() -> None:
    translated = translate_raised(arm_error(400, "InvalidContainerName", "Container name 'A' is invalid."))
    assert isinstance(translated, errors.InvalidRequestError)
    assert translated.code == "InvalidContainerName"
    assert "Container name 'A' is invalid." in str(translated)
    assert not translated.retryable


def test_image_inaccessible_names_the_image() -> None:
    message = "The image 'ghcr.io/x/y:1' in container group 'g' is not accessible. Please check the image."
    translated = translate_raised(arm_error(400, "InaccessibleImage", message))
    assert isinstance(translated, errors.ImageInaccessibleError)
    assert translated.image == "ghcr.io/x/y:1"


def test_quota_keeps_the_code_that_names_the_limit() -> None:
    translated = translate_raised(arm_error(400, "ContainerGroupQuotaReached", QUOTA_MESSAGE))
    assert isinstance(translated, errors.QuotaExceededError)
    assert translated.code == "ContainerGroupQuotaReached"
    assert "StandardCores" in str(translated)


def test_our_own_errors_pass_through_untouched() -> None:
    own = errors.ThrottledError("budget exhausted", retry_after_seconds=3.0)
    assert translate_raised(own) is own


def test_unknown_exceptions_are_not_disguised() -> None:
    bug = KeyError("a bug of ours")
    assert translate_raised(bug) is bug


def test_cancellation_is_never_translated() -> None:
    cancelled = asyncio.CancelledError()
    assert translate_raised(cancelled) is cancelled
