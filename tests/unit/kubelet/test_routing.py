"""Which route answers what, for which node: pods, stats, healthz, logs and exec paths, unknown pods and containers."""

from __future__ import annotations

import json
from collections.abc import Callable

import aiohttp
import pytest
from kubelet_builders import NODE, FakeNode, fake_node, running_pod

from acinode import errors
from acinode.kubelet import responses, routes, targets

Url = Callable[[str], str]
PROXIED = {"X-Forwarded-Uri": f"/api/v1/nodes/{NODE}/proxy/stats/summary"}


async def test_healthz_answers_ok(http: aiohttp.ClientSession, url: Url) -> None:
    async with http.get(url("/healthz")) as response:
        assert (response.status, await response.text()) == (200, "ok")


async def test_unknown_paths_are_not_found(http: aiohttp.ClientSession, url: Url) -> None:
    async with http.get(url("/configz")) as response:
        assert response.status == 404


async def test_pods_lists_the_pods_of_the_virtual_nodes(
    http: aiohttp.ClientSession, url: Url, node: FakeNode
) -> None:
    node.add(running_pod("a"))
    node.add(running_pod("b"))
    async with http.get(url("/pods")) as response:
        body = await response.json()
    assert body["kind"] == "PodList"
    assert sorted(p["metadata"]["name"] for p in body["items"]) == ["a", "b"]


async def test_stats_summary_lists_running_containers_and_never_their_requests_as_usage(
    http: aiohttp.ClientSession, url: Url, node: FakeNode
) -> None:
    node.add(running_pod("web", containers=("main", "sidecar"), cpu="500m", memory="1Gi"))
    async with http.get(url("/stats/summary"), headers=PROXIED) as response:
        summary = await response.json()
    assert summary["node"]["nodeName"] == NODE
    (pod,) = summary["pods"]
    assert pod["podRef"] == {"name": "web", "namespace": "default", "uid": "uid-default-web"}
    assert [c["name"] for c in pod["containers"]] == ["main", "sidecar"]
    # Usage comes from Azure Monitor (test_usage_stats.py); until sampled, no figures at all.
    assert all("cpu" not in c and "memory" not in c for c in pod["containers"])
    assert "cpu" not in pod and "cpu" not in summary["node"]


async def test_stats_leave_out_pods_that_are_not_running(
    http: aiohttp.ClientSession, url: Url, node: FakeNode
) -> None:
    pending = running_pod("later")
    pending["status"] = {"phase": "Pending"}
    node.add(pending)
    async with http.get(url("/stats/summary"), headers=PROXIED) as response:
        assert (await response.json())["pods"] == []


async def test_metrics_resource_is_prometheus_text_with_the_kubelet_names(
    http: aiohttp.ClientSession, url: Url, node: FakeNode
) -> None:
    node.add(running_pod("web"))
    async with http.get(url("/metrics/resource")) as response:
        text = await response.text()
    assert response.headers["Content-Type"].startswith("text/plain")
    assert 'container_start_time_seconds{container="main",namespace="default",pod="web"}' in text
    assert "# TYPE container_cpu_usage_seconds_total counter" in text
    assert "container_memory_working_set_bytes{" not in text, "no usage before a sample, never the requests"
    assert "resource_scrape_error 0.0 " in text


@pytest.mark.parametrize(
    "path",
    [
        "/containerLogs/default/nope/main",
        "/exec/default/nope/main?command=ls",
        "/containerLogs/default/web/nope",
    ],
)
async def test_unknown_pods_and_containers_are_not_found(
    http: aiohttp.ClientSession, url: Url, node: FakeNode, path: str
) -> None:
    node.add(running_pod("web"))
    async with http.get(url(path)) as response:
        body = await response.json()
    assert response.status == 404
    assert body["kind"] == "Status" and body["reason"] == "NotFound"


async def test_exec_without_an_upgrade_is_a_bad_request(
    http: aiohttp.ClientSession, url: Url, node: FakeNode
) -> None:
    node.add(running_pod("web"))
    async with http.post(url("/exec/default/web/main?command=ls")) as response:
        assert response.status == 400
        assert "upgrade" in (await response.json())["message"]


async def test_port_forward_is_refused_as_not_implemented_naming_why(
    http: aiohttp.ClientSession, url: Url, node: FakeNode
) -> None:
    node.add(running_pod("web"))
    async with http.post(url("/portForward/default/web?port=80")) as response:
        assert response.status == 501
        body = await response.json()
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "NotImplemented", 501)
    assert body["message"] == routes.PORT_FORWARD_REFUSAL.format(pod="web")
    assert "no port-forward API" in body["message"]


async def test_port_forward_to_an_unknown_pod_is_not_found(http: aiohttp.ClientSession, url: Url) -> None:
    async with http.post(url("/portForward/default/ghost")) as response:
        assert response.status == 404


async def test_runningpods_lists_pods_with_running_containers_in_the_kubelets_format(
    http: aiohttp.ClientSession, url: Url, node: FakeNode
) -> None:
    node.add(running_pod("b", containers=("main", "side")))
    node.add(running_pod("a"))
    pending = running_pod("waiting")
    pending["status"]["containerStatuses"][0]["state"] = {"waiting": {"reason": "ContainerCreating"}}
    node.add(pending)
    half = node.add(running_pod("half", containers=("main", "done")))
    half["status"]["containerStatuses"][1]["state"] = {"terminated": {"exitCode": 0}}
    for path in ("/runningpods/", "/runningpods"):
        async with http.get(url(path), headers=PROXIED) as response:
            assert response.status == 200
            body = await response.json()
        assert (body["kind"], body["apiVersion"], body["metadata"]) == ("PodList", "v1", {})
        assert [p["metadata"]["name"] for p in body["items"]] == ["a", "b", "half"]
        first = body["items"][0]
        assert first == {
            "metadata": {
                "name": "a",
                "namespace": "default",
                "uid": "uid-default-a",
                "creationTimestamp": None,
            },
            "spec": {"containers": [{"name": "main", "image": "busybox", "resources": {}}]},
            "status": {},
        }
        assert [c["name"] for c in body["items"][1]["spec"]["containers"]] == ["main", "side"]
        assert [c["name"] for c in body["items"][2]["spec"]["containers"]] == ["main"]


async def test_runningpods_of_an_unserved_node_is_not_found(http: aiohttp.ClientSession, url: Url) -> None:
    headers = {"X-Forwarded-Uri": "/api/v1/nodes/elsewhere/proxy/runningpods/"}
    async with http.get(url("/runningpods/"), headers=headers) as response:
        assert response.status == 404


def test_a_pod_is_found_on_whichever_node_it_is_bound_to() -> None:
    first, second = fake_node("vn-1"), fake_node("vn-2")
    second.add(running_pod("web", namespace="team"))
    target = targets.container_target(lambda: [first, second], "team", "web", "main")  # type: ignore[arg-type,return-value]
    assert target.node_name == "vn-2"
    assert target.group == "team-web"
    assert target.aci is second.aci


def test_a_pod_with_one_container_needs_no_container_name() -> None:
    node = fake_node()
    node.add(running_pod("web"))
    assert targets.container_target(lambda: [node], "default", "web", "").container == "main"  # type: ignore[arg-type,return-value]


@pytest.mark.parametrize(
    ("forwarded", "node"),
    [
        ("/api/v1/nodes/vn-1/proxy/stats/summary", "vn-1"),
        ("/api/v1/nodes/vn-1:10250/proxy/metrics/resource", "vn-1"),
        ("/api/v1/nodes/vn-1/proxy", "vn-1"),
        ("/api/v1/namespaces/default/pods/web/log", None),
        ("", None),
        (None, None),
    ],
)
def test_the_node_is_read_from_the_api_servers_proxy_path(forwarded: str | None, node: str | None) -> None:
    assert targets.node_from_forwarded_uri(forwarded) == node


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errors.NotFoundError("x"), 404),
        (errors.InvalidRequestError("x"), 400),
        (errors.AuthenticationError("x"), 401),
        (errors.PermissionDeniedError("x"), 403),
        (errors.ConflictError("x"), 409),
        (errors.ThrottledError("x", 3.0), 429),
        (errors.BackendUnavailableError("x"), 502),
        (errors.TransientError("x"), 503),
        (errors.ConfigurationError("x"), 500),
        (RuntimeError("x"), 500),
    ],
)
def test_errors_map_to_one_http_status_each(error: BaseException, status: int) -> None:
    assert responses.status_for(error) == status
    response = responses.response_for(error)
    assert response.status == status
    assert json.loads(str(response.text))["code"] == status
