"""The probe's verdict on the backend (which errors mean unreachable or refused credentials, with which reason),
and the node's Ready that follows from it: ready whatever the backend does, unless the configuration can never
work."""

from __future__ import annotations

import pytest

from acinode import errors
from acinode.mapping import node as node_mapping
from acinode.node import heartbeat
from fakes.fake_backend import FakeBackendProbe


@pytest.mark.parametrize(
    ("error", "ready", "reason"),
    [
        pytest.param(
            errors.AuthenticationError("token refused"), False, "BackendCredentialsRefused", id="auth"
        ),
        pytest.param(
            errors.PermissionDeniedError("no role"), False, "BackendCredentialsRefused", id="permission"
        ),
        pytest.param(errors.BackendUnavailableError("dns"), False, "BackendUnreachable", id="unavailable"),
        pytest.param(errors.TransientError("503"), False, "BackendUnreachable", id="transient"),
        pytest.param(errors.NotFoundError("no such rg"), False, "BackendUnreachable", id="not-found"),
        pytest.param(errors.QuotaExceededError("cores"), False, "BackendUnreachable", id="quota"),
        # a misconfigured VirtualNode (the handlers' stand-in probe) reads as unreachable too
        pytest.param(
            errors.ConfigurationError("bad cloud"), False, "InvalidConfiguration", id="configuration"
        ),
        # throttled means the backend answered: reachable
        pytest.param(
            errors.ThrottledError("429", retry_after_seconds=5), True, "BackendReachable", id="throttled"
        ),
    ],
)
def test_readiness_from_error(error: errors.AcinodeError, ready: bool, reason: str) -> None:
    readiness = heartbeat.readiness_from_error(error)
    assert (readiness.ready, readiness.reason) == (ready, reason)
    if not ready:
        assert readiness.message == str(error)


@pytest.mark.parametrize(
    ("error", "message"),
    [
        (errors.TransientError(""), "TransientError"),
        (errors.TransientError("x" * 600), "x" * 500),
        (errors.AuthenticationError("y" * 600), "y" * 500),
    ],
)
def test_messages_are_bounded_and_never_empty_for_unreachable(
    error: errors.AcinodeError, message: str
) -> None:
    assert heartbeat.readiness_from_error(error).message == message


async def test_a_healthy_probe_is_reachable() -> None:
    assert await heartbeat.probe_readiness(FakeBackendProbe()) == heartbeat.REACHABLE


@pytest.mark.parametrize(
    "error",
    [
        pytest.param(errors.AuthenticationError("token refused"), id="auth"),
        pytest.param(errors.PermissionDeniedError("no role"), id="permission"),
        pytest.param(errors.BackendUnavailableError("hung"), id="unavailable"),
        pytest.param(errors.TransientError("503"), id="5xx"),
        pytest.param(errors.ThrottledError("429", retry_after_seconds=5), id="throttled"),
        pytest.param(None, id="healthy"),
    ],
)
def test_the_node_is_ready_whatever_the_backend_does(error: errors.AcinodeError | None) -> None:
    verdict = heartbeat.REACHABLE if error is None else heartbeat.readiness_from_error(error)
    assert heartbeat.node_readiness(verdict) == heartbeat.READY


def test_only_a_configuration_that_cannot_work_makes_the_node_not_ready() -> None:
    verdict = heartbeat.readiness_from_error(errors.ConfigurationError("Azure settings unusable: no Secret"))
    assert heartbeat.node_readiness(verdict) == node_mapping.Readiness(
        False, "InvalidConfiguration", "Azure settings unusable: no Secret"
    )


async def test_a_failing_probe_is_not_ready() -> None:
    readiness = await heartbeat.probe_readiness(FakeBackendProbe(errors.AuthenticationError("expired")))
    assert readiness == node_mapping.Readiness(False, "BackendCredentialsRefused", "expired")


async def test_errors_outside_the_taxonomy_are_not_swallowed() -> None:
    with pytest.raises(RuntimeError):
        await heartbeat.probe_readiness(FakeBackendProbe(RuntimeError("bug")))
