"""ARM wire conventions: the CloudError envelope, timestamps, resource ids and the error catalogue.

Every error the emulator answers goes through ``ArmError`` so that the SDK always finds a CloudError JSON body
(a non-JSON body would surface as DecodeError without ``.error``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

PROVIDER = "Microsoft.ContainerInstance"
GROUP_TYPE = f"{PROVIDER}/containerGroups"
OPERATION_API_VERSION = "2018-06-01"

Json = dict[str, Any]


class ArmError(Exception):
    """An ARM error answer: HTTP status plus CloudError body (and extra headers such as Retry-After)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        target: str | None = None,
        details: list[Json] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.target = target
        self.details = details
        self.headers = headers or {}

    def body(self) -> Json:
        return {"error": error_body(self.code, self.message, target=self.target, details=self.details)}


def error_body(
    code: str, message: str, *, target: str | None = None, details: list[Json] | None = None
) -> Json:
    out: Json = {"code": code, "message": message}
    if target is not None:
        out["target"] = target
    if details:
        out["details"] = details
    return out


def iso(timestamp: float) -> str:
    """ARM style UTC timestamp with a Z suffix (the SDK parses it into an aware datetime)."""
    return dt.datetime.fromtimestamp(timestamp, dt.UTC).isoformat().replace("+00:00", "Z")


def group_id(subscription: str, resource_group: str, name: str) -> str:
    return f"/subscriptions/{subscription}/resourceGroups/{resource_group}/providers/{GROUP_TYPE}/{name}"


def normalize_location(location: str) -> str:
    """ARM answers canonical region names: "East US" is stored and returned as "eastus"."""
    return location.replace(" ", "").lower()


# -- the error catalogue (codes as the real service sends them; docs/emulator.md marks the inferred ones) --


def group_not_found(resource_group: str, name: str) -> ArmError:
    return ArmError(
        404,
        "ResourceNotFound",
        f"The Resource '{GROUP_TYPE}/{name}' under resource group '{resource_group}' was not found. "
        "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
    )


def resource_group_not_found(resource_group: str) -> ArmError:
    return ArmError(404, "ResourceGroupNotFound", f"Resource group '{resource_group}' could not be found.")


def subscription_not_found(subscription: str) -> ArmError:
    return ArmError(404, "SubscriptionNotFound", f"The subscription '{subscription}' could not be found.")


def container_not_found(container: str, group: str) -> ArmError:
    return ArmError(
        404, "ContainerNotFound", f"The container '{container}' does not exist in container group '{group}'."
    )


def invalid_content(reason: str, path: str | None = None) -> ArmError:
    where = f" Path '{path}'." if path else ""
    return ArmError(
        400,
        "InvalidRequestContent",
        f"The request content was invalid and could not be deserialized: '{reason}{where}'.",
        target=path,
    )


def transitioning(group: str) -> ArmError:
    return ArmError(
        409,
        "ContainerGroupTransitioning",
        f"The container group '{group}' is still transitioning, please retry later.",
    )


def inaccessible_image(image: str, group: str) -> ArmError:
    return ArmError(
        400,
        "InaccessibleImage",
        f"The image '{image}' in container group '{group}' is not accessible. "
        "Please check the image and registry credential.",
    )


def quota_reached(quota: str, location: str, limit: int, usage: float, requested: float) -> ArmError:
    return ArmError(
        400,
        "ContainerGroupQuotaReached",
        f"Resource type '{GROUP_TYPE}' container group quota '{quota}' exceeded in region '{location}'. "
        f"Limit: '{limit}', Usage: '{number(usage)}' Requested: '{number(requested)}'.",
    )


def number(value: float) -> str:
    """Numbers as ACI prints them in messages: 1.0 → '1', 0.5 → '0.5'."""
    return f"{value:g}"
