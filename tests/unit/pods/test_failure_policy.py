"""The failure-policy table as pure functions: each error of the taxonomy → failure kind, pod status, Event, and
whether the pod is retried or refused until it changes; a lost group per restartPolicy."""

from __future__ import annotations

import datetime
from typing import Any, cast

import pytest
from pods_builders import pod, ran

from acinode import errors
from acinode.mapping import objects
from acinode.pods import policy, retry

NOW = datetime.datetime(2025, 1, 1, 12, 0, tzinfo=datetime.UTC)
Kind = retry.FailureKind


def missing_secret() -> errors.UnsupportedPodSpecError:
    return errors.UnsupportedPodSpecError(
        [errors.FieldProblem("spec.containers[0].envFrom[0]", 'secret "db" not found', missing_object=True)]
    )


def waiting_reason(status: objects.PodStatus | None) -> str | None:
    assert status is not None
    return cast(Any, status)["containerStatuses"][0]["state"]["waiting"]["reason"]


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        (missing_secret(), Kind.MISSING_REFERENCES),
        (errors.ImageInaccessibleError("no such image", image="nope:1"), Kind.IMAGE_PULL),
        (errors.QuotaExceededError("cores", code="ContainerGroupQuotaReached"), Kind.QUOTA),
        (errors.ThrottledError("slow down", retry_after_seconds=7), Kind.THROTTLED),
        (errors.TransientError("502"), Kind.TRANSIENT),
        (errors.BackendUnavailableError("timeout"), Kind.TRANSIENT),
        (errors.UnsupportedPodSpecError([errors.FieldProblem("spec.hostNetwork", "not supported")]), None),
        (errors.InvalidRequestError("bad group", code="InvalidImage"), None),
    ],
)
def test_each_error_has_its_kind(error: errors.AcinodeError, kind: Kind | None) -> None:
    assert policy.kind_of(error) is kind
    decision = policy.decide_create_failure(error, cast(objects.Pod, pod()), now=NOW, attempt=1)
    assert decision.kind is kind and decision.refuses == (kind is None)


def test_a_refused_spec_fails_the_pod_until_it_changes() -> None:
    problem = errors.FieldProblem("spec.hostNetwork", "not supported")
    decision = policy.decide_create_failure(
        errors.UnsupportedPodSpecError([problem]),
        cast(objects.Pod, pod(restart_policy="Never")),
        now=NOW,
        attempt=1,
    )
    assert decision.status is not None and decision.status.get("phase") == "Failed"
    assert decision.status.get("reason") == "ProviderFailed"
    assert decision.event is not None and "spec.hostNetwork" in str(decision.event.body.get("message"))


def test_aci_refusing_the_group_is_a_refusal_naming_its_code() -> None:
    decision = policy.decide_create_failure(
        errors.InvalidRequestError("bad", code="InvalidImage"), cast(objects.Pod, pod()), now=NOW, attempt=1
    )
    assert decision.refuses and decision.status is not None
    assert "InvalidImage" in str(decision.status.get("message"))


def test_a_missing_secret_waits_with_a_config_error() -> None:
    decision = policy.decide_create_failure(missing_secret(), cast(objects.Pod, pod()), now=NOW, attempt=3)
    assert waiting_reason(decision.status) == "CreateContainerConfigError"
    assert decision.event is not None and decision.event.body.get("reason") == "Failed"


def test_an_image_pull_backs_off_after_its_first_failure() -> None:
    error = errors.ImageInaccessibleError("no such image", image="busybox")
    first = policy.decide_create_failure(error, cast(objects.Pod, pod()), now=NOW, attempt=1)
    later = policy.decide_create_failure(error, cast(objects.Pod, pod()), now=NOW, attempt=2)
    assert waiting_reason(first.status) == "ErrImagePull"
    assert waiting_reason(later.status) == "ImagePullBackOff"


def test_a_quota_names_its_code() -> None:
    error = errors.QuotaExceededError("cores", code="ContainerGroupQuotaReached")
    decision = policy.decide_create_failure(error, cast(objects.Pod, pod()), now=NOW, attempt=1)
    assert decision.status is not None and decision.status.get("reason") == "ContainerGroupQuotaReached"
    assert decision.event is not None and decision.event.body.get("reason") == "ContainerGroupQuotaReached"


def test_throttling_and_transient_errors_leave_the_pod_alone() -> None:
    throttled = policy.decide_create_failure(
        errors.ThrottledError("429", retry_after_seconds=7), cast(objects.Pod, pod()), now=NOW, attempt=1
    )
    assert (throttled.status, throttled.event, throttled.retry_at_least_seconds) == (None, None, 7)
    assert policy.decide_action_failure(errors.TransientError("502")).kind is Kind.TRANSIENT
    assert policy.decide_action_failure(errors.ThrottledError("429", 3)).retry_at_least_seconds == 3


@pytest.mark.parametrize(
    ("restart_policy", "recreate"), [("Always", True), ("OnFailure", True), ("Never", False)]
)
def test_a_lost_group_per_restart_policy(restart_policy: str, recreate: bool) -> None:
    decision = policy.decide_lost_group(cast(objects.Pod, ran(pod(restart_policy=restart_policy))), now=NOW)
    assert decision.recreate is recreate
    assert decision.event.body.get("reason") == "ContainerGroupLost"
    if not recreate:
        assert decision.status is not None and decision.status.get("phase") == "Failed"
