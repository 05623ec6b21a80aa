"""Who may call the kubelet API: client certificates, tokens through TokenReview, SubjectAccessReview decisions on
``nodes/<node>`` subresources, their caches, and anonymous requests refused unless enabled."""

from __future__ import annotations

import ssl
from collections.abc import Callable

import aiohttp
import pytest
from kubelet_builders import NODE, FakeNode, FakeReviewer, KubeletPki, client_ssl, running_pod

from acinode import errors
from acinode.kubelet import auth
from fakes.fake_clock import FakeClock

Url = Callable[[str], str]
PROXIED = {"X-Forwarded-Uri": f"/api/v1/nodes/{NODE}/proxy/stats/summary"}


@pytest.mark.parametrize(
    ("path", "subresources"),
    [
        ("/stats/summary", ("stats",)),
        ("/metrics/resource", ("metrics",)),
        ("/containerLogs/ns/pod/c", ("log", "proxy")),
        ("/exec/ns/pod/c", ("proxy",)),
        ("/pods", ("pods", "proxy")),
        ("/healthz", ("healthz", "proxy")),
        ("/statsfoo", ("proxy",)),
        ("/runningpods/", ("pods", "proxy")),
        ("/logs/messages", ("log",)),
        ("/spec/", ("spec",)),
        ("/configz", ("configz", "proxy")),
        ("/attach/ns/pod/c", ("proxy",)),
        ("/portForward/ns/pod", ("proxy",)),
    ],
)
def test_paths_are_authorized_against_the_kubelets_subresources(
    path: str, subresources: tuple[str, ...]
) -> None:
    assert auth.subresources_for(path) == subresources


@pytest.mark.parametrize(
    ("method", "verb"),
    [("GET", "get"), ("POST", "create"), ("PUT", "update"), ("PATCH", "patch"), ("DELETE", "delete")],
)
def test_http_methods_map_to_verbs(method: str, verb: str) -> None:
    assert auth.verb_for(method) == verb


async def test_a_verified_client_certificate_names_the_user_and_groups() -> None:
    authenticator = auth.Authenticator(FakeReviewer(), ttl_seconds=60, anonymous=False)
    user = await authenticator.authenticate(("kube-apiserver-kubelet-client", ("kubelet-api-admin",)), None)
    assert user == auth.User(
        "kube-apiserver-kubelet-client", groups=("kubelet-api-admin", "system:authenticated")
    )


async def test_tokens_are_reviewed_once_then_cached_until_the_ttl() -> None:
    reviewer, clock = FakeReviewer(), FakeClock()
    reviewer.tokens["t"] = ("alice", ["devs"])
    authenticator = auth.Authenticator(reviewer, ttl_seconds=60, anonymous=False, clock=clock.monotonic)
    for _ in range(3):
        assert await authenticator.authenticate(None, "Bearer t") == auth.User(
            "alice", uid="u-1", groups=("devs",)
        )
    assert reviewer.count("tokenreviews") == 1
    clock.advance(61)
    await authenticator.authenticate(None, "Bearer t")
    assert reviewer.count("tokenreviews") == 2


async def test_a_rejected_token_is_unauthenticated_and_the_rejection_cached() -> None:
    reviewer = FakeReviewer()
    authenticator = auth.Authenticator(reviewer, ttl_seconds=60, anonymous=True)
    assert await authenticator.authenticate(None, "Bearer forged") is None
    assert await authenticator.authenticate(None, "Bearer forged") is None
    assert reviewer.count("tokenreviews") == 1


@pytest.mark.parametrize("header", [None, "", "Basic dXNlcjpwdw==", "Bearer "])
async def test_no_credentials_are_anonymous_only_when_enabled(header: str | None) -> None:
    assert (
        await auth.Authenticator(FakeReviewer(), ttl_seconds=60, anonymous=False).authenticate(None, header)
        is None
    )
    assert (
        await auth.Authenticator(FakeReviewer(), ttl_seconds=60, anonymous=True).authenticate(None, header)
        == auth.ANONYMOUS
    )


async def test_a_failing_token_review_is_an_error_not_a_refusal() -> None:
    reviewer = FakeReviewer()
    reviewer.failure = errors.TransientError("API server down")
    with pytest.raises(errors.TransientError):
        await auth.Authenticator(reviewer, ttl_seconds=60, anonymous=False).authenticate(None, "Bearer t")


async def test_any_allowing_subresource_allows_and_answers_are_cached_by_outcome() -> None:
    reviewer, clock = FakeReviewer(), FakeClock()
    reviewer.allowed.add(("bob", "get", NODE, "proxy"))
    authorizer = auth.Authorizer(reviewer, allow_ttl_seconds=300, deny_ttl_seconds=10, clock=clock.monotonic)
    bob = auth.User("bob")
    assert await authorizer.is_allowed(bob, "get", NODE, ("log", "proxy"))
    assert not await authorizer.is_allowed(bob, "get", NODE, ("stats",))
    assert reviewer.count("subjectaccessreviews") == 3
    await authorizer.is_allowed(bob, "get", NODE, ("log", "proxy"))
    await authorizer.is_allowed(bob, "get", NODE, ("stats",))
    assert reviewer.count("subjectaccessreviews") == 3, "both answers were cached"
    clock.advance(11)
    await authorizer.is_allowed(bob, "get", NODE, ("stats",))
    await authorizer.is_allowed(bob, "get", NODE, ("log", "proxy"))
    assert reviewer.count("subjectaccessreviews") == 5, (
        "the two denials (stats, log) expired, not proxy's allowance"
    )


async def test_the_review_names_the_user_the_verb_and_the_node_subresource() -> None:
    reviewer = FakeReviewer()
    authorizer = auth.Authorizer(reviewer, allow_ttl_seconds=1, deny_ttl_seconds=1)
    await authorizer.is_allowed(auth.User("carol", uid="u-9", groups=("g",)), "create", NODE, ("proxy",))
    ((path, body),) = reviewer.calls
    assert path == auth.SUBJECT_ACCESS_REVIEWS
    assert body["spec"] == {
        "user": "carol",
        "uid": "u-9",
        "groups": ["g"],
        "resourceAttributes": {
            "verb": "create",
            "group": "",
            "version": "v1",
            "resource": "nodes",
            "subresource": "proxy",
            "name": NODE,
        },
    }


# --- the server's decisions ---------------------------------------------------------------------------------


async def test_requests_without_credentials_get_401(
    bare_http: aiohttp.ClientSession, url: Url, node: FakeNode
) -> None:
    node.add(running_pod("web"))
    async with bare_http.get(url("/containerLogs/default/web/main")) as response:
        assert response.status == 401
        assert (await response.json())["reason"] == "Unauthorized"


async def test_a_token_without_rights_gets_403_naming_what_was_asked(
    bare_http: aiohttp.ClientSession, url: Url, node: FakeNode, reviewer: FakeReviewer
) -> None:
    node.add(running_pod("web"))
    reviewer.tokens["t"] = ("system:serviceaccount:default:nobody", [])
    async with bare_http.get(
        url("/stats/summary"), headers={"Authorization": "Bearer t", **PROXIED}
    ) as response:
        assert response.status == 403
        message = (await response.json())["message"]
    assert "verb=get" in message and "subresource(s)=['stats']" in message and f"node={NODE}" in message


async def test_a_token_with_rights_on_the_pods_node_reads_its_logs(
    bare_http: aiohttp.ClientSession, url: Url, node: FakeNode, reviewer: FakeReviewer
) -> None:
    node.add(running_pod("web"))
    node.aci.logs["main"] = [(1, "hello")]
    reviewer.tokens["t"] = ("dev", [])
    reviewer.allowed.add(("dev", "get", NODE, "log"))
    path = url("/containerLogs/default/web/main")
    async with bare_http.get(path, headers={"Authorization": "Bearer t"}) as response:
        assert (response.status, await response.text()) == (200, "hello\n")


async def test_a_client_certificate_from_another_ca_fails_the_handshake(url: Url, pki: KubeletPki) -> None:
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(ssl=client_ssl(pki.stranger))
    ) as stranger:
        with pytest.raises((aiohttp.ClientError, ssl.SSLError)):
            async with stranger.get(url("/healthz")) as response:
                await response.read()


async def test_a_trusted_client_certificate_is_authorized_by_its_user(
    http: aiohttp.ClientSession, url: Url, reviewer: FakeReviewer
) -> None:
    async with http.get(url("/healthz")) as response:
        assert response.status == 200
    ((_path, body),) = reviewer.calls
    assert body["spec"]["user"] == "kube-apiserver-kubelet-client"
    assert body["spec"]["resourceAttributes"]["subresource"] == "healthz"
