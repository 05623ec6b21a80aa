"""List, create and delete read their answers as summaries (``aci.summaries``), not as the SDK's models.

Judged against the SDK itself: the requests equal the ones its request builders make, a summary equals the one
read from the SDK's deserialised model, and an unexpected answer raises the SDK's exception (so ``translate``
gives the same acinode error). The client end to end runs against a plain-HTTP server on loopback.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from azure.mgmt.containerinstance import models
from azure.mgmt.containerinstance._serialization import Serializer
from azure.mgmt.containerinstance.operations import _container_groups_operations as sdk_requests

from acinode import errors, settings, types
from acinode.aci import api, azure, summaries, target

SUBSCRIPTION = types.SubscriptionId("00000000-0000-0000-0000-000000000001")
RESOURCE_GROUP = types.ResourceGroup("rg-virtual-nodes")
API_VERSION = settings.AciSettings().api_version

GROUP_JSON: dict[str, Any] = {
    "id": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/{RESOURCE_GROUP}/providers/"
    "Microsoft.ContainerInstance/containerGroups/default-web-0",
    "name": "default-web-0",
    "type": "Microsoft.ContainerInstance/containerGroups",
    "location": "westeurope",
    "tags": {"acinode.dev/node": "vn-1", "acinode.dev/pod-uid": "u-1"},
    "properties": {
        "provisioningState": "Creating",
        "osType": "Linux",
        "ipAddress": {"ip": "10.1.0.4", "type": "Private", "ports": [{"port": 80, "protocol": "TCP"}]},
        "containers": [
            {
                "name": "web",
                "properties": {
                    "image": "mcr.microsoft.com/azuredocs/aci-helloworld",
                    "resources": {"requests": {"cpu": 1.0, "memoryInGB": 1.5}},
                },
            }
        ],
    },
}


def sdk_summary(body: dict[str, Any]) -> api.GroupSummary:
    """What the SDK's model of ``body`` says, in a summary's fields."""
    group = models.ContainerGroup.deserialize(body)
    return api.GroupSummary(
        name=types.ContainerGroupName(group.name or ""),
        tags=dict(group.tags or {}),
        provisioning_state=group.provisioning_state,
        location=group.location,
        ip_address=group.ip_address.ip if group.ip_address else None,
    )


def without(body: dict[str, Any], *path: str) -> dict[str, Any]:
    copy: dict[str, Any] = json.loads(json.dumps(body))
    parent = copy
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return copy


@pytest.mark.parametrize(
    "body",
    [
        GROUP_JSON,
        without(GROUP_JSON, "tags"),
        without(GROUP_JSON, "properties", "ipAddress"),
        without(GROUP_JSON, "properties", "provisioningState"),
        without(GROUP_JSON, "location"),
    ],
    ids=["full", "no-tags", "no-ip", "no-state", "no-location"],
)
def test_a_summary_says_what_the_sdks_model_says(body: dict[str, Any]) -> None:
    assert summaries.summary_from_json(body) == sdk_summary(body)


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({}, None),
        ({"name": ""}, None),
        ({"name": 7}, None),
        (
            {"name": "g", "properties": "not-an-object", "tags": ["x"], "location": 3},
            api.GroupSummary(name=types.ContainerGroupName("g"), tags={}, provisioning_state=None),
        ),
        (
            {"name": "g", "properties": {"ipAddress": {"ip": None}, "provisioningState": 5}},
            api.GroupSummary(name=types.ContainerGroupName("g"), tags={}, provisioning_state=None),
        ),
    ],
)
def test_a_malformed_entry_gives_no_summary_or_only_what_is_well_formed(
    body: dict[str, Any], expected: api.GroupSummary | None
) -> None:
    assert summaries.summary_from_json(body) == expected


@pytest.mark.parametrize(
    ("body", "entries", "next_link"),
    [
        ({"value": [GROUP_JSON], "nextLink": "https://arm/x?$skipToken=1"}, 1, "https://arm/x?$skipToken=1"),
        ({"value": [GROUP_JSON, "junk"], "nextLink": ""}, 1, None),
        ({"value": []}, 0, None),
        ([], 0, None),
        ({"value": "nope", "nextLink": 3}, 0, None),
    ],
)
def test_a_list_page_gives_its_entries_and_next_link(body: Any, entries: int, next_link: str | None) -> None:
    found, link = summaries.list_page(body)
    assert (len(found), link) == (entries, next_link)


def same_request(ours: Any, theirs: Any) -> None:
    assert ours.method == theirs.method
    assert ours.url == theirs.url
    assert {k.lower(): v for k, v in ours.headers.items()} == {
        k.lower(): v for k, v in theirs.headers.items()
    }


@pytest.mark.parametrize("name", ["default-web-0", "a.b_c(d)"])
def test_requests_are_the_ones_the_sdk_builds(name: str) -> None:
    group_path = summaries.group_path(SUBSCRIPTION, RESOURCE_GROUP, name)
    same_request(
        summaries.list_request(summaries.groups_path(SUBSCRIPTION, RESOURCE_GROUP), API_VERSION),
        sdk_requests.build_list_by_resource_group_request(
            RESOURCE_GROUP, SUBSCRIPTION, api_version=API_VERSION
        ),
    )
    same_request(
        summaries.delete_request(group_path, API_VERSION),
        sdk_requests.build_delete_request(RESOURCE_GROUP, name, SUBSCRIPTION, api_version=API_VERSION),
    )
    body = json.dumps(GROUP_JSON).encode()
    ours = summaries.put_request(group_path, API_VERSION, body)
    theirs = sdk_requests.build_create_or_update_request(
        RESOURCE_GROUP,
        name,
        SUBSCRIPTION,
        api_version=API_VERSION,
        content_type="application/json",
        json=GROUP_JSON,
    )
    same_request(ours, theirs)
    assert ours.content == theirs.content.encode() == body


def test_a_next_link_keeps_its_query_and_takes_the_clients_api_version() -> None:
    path = "https://arm.test/subscriptions/s/resourceGroups/r/providers/Microsoft.ContainerInstance/containerGroups"
    request = summaries.next_page_request(f"{path}?api-version=2019-01-01&$skipToken=a%2Fb", API_VERSION)
    # What the SDK's list_by_resource_group sends for that link (its prepare_request unquotes, then quotes
    # each value with urllib's default safe characters).
    assert (request.method, request.url) == ("GET", f"{path}?$skipToken=a/b&api-version={API_VERSION}")


# --- the client end to end, against a loopback server ---------------------------------------------------------


class FakeArm:
    """Answers queued per (method, path suffix); records what it was sent."""

    def __init__(self) -> None:
        self.answers: dict[tuple[str, str], list[web.Response]] = {}
        self.seen: list[tuple[str, str, dict[str, str], bytes]] = []

    def answer(self, method: str, suffix: str, status: int, body: Any = None) -> None:
        text = None if body is None else json.dumps(body)
        response = web.Response(status=status, text=text, content_type="application/json")
        self.answers.setdefault((method, suffix), []).append(response)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.seen.append((request.method, request.path_qs, dict(request.query), await request.read()))
        for (method, suffix), queued in self.answers.items():
            if method == request.method and request.path.endswith(suffix) and queued:
                return queued.pop(0)
        return web.Response(status=599, text="unexpected request")


@pytest.fixture
async def arm() -> AsyncIterator[tuple[FakeArm, azure.AzureAciApi]]:
    fake = FakeArm()
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", fake.handle)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    aci_target = target.AciTarget(
        SUBSCRIPTION,
        RESOURCE_GROUP,
        "westeurope",
        cloud=target.custom_cloud(f"http://127.0.0.1:{server.port}"),
        credential=target.StaticToken("t"),
    )
    client = azure.AzureAciApi(aci_target, settings=settings.AciSettings())
    try:
        yield fake, client
    finally:
        await client.close()
        await server.close()


async def test_a_listing_follows_every_page_and_filters_by_tags(
    arm: tuple[FakeArm, azure.AzureAciApi],
) -> None:
    fake, client = arm
    other = {**GROUP_JSON, "name": "other", "tags": {"acinode.dev/node": "vn-2"}}
    second = {**GROUP_JSON, "name": "default-web-1"}
    base = f"http://127.0.0.1:{fake_port(client)}"
    next_link = (
        f"{base}{summaries.groups_path(SUBSCRIPTION, RESOURCE_GROUP)}?api-version=2019-01-01&$skipToken=p2"
    )
    fake.answer("GET", "/containerGroups", 200, {"value": [GROUP_JSON, other], "nextLink": next_link})
    fake.answer("GET", "/containerGroups", 200, {"value": [second]})
    found = await client.list_groups({"acinode.dev/node": "vn-1"})
    assert [s.name for s in found] == ["default-web-0", "default-web-1"]
    assert found[0] == summaries.summary_from_json(GROUP_JSON)
    assert [seen[2] for seen in fake.seen] == [
        {"api-version": API_VERSION},
        {"api-version": API_VERSION, "$skipToken": "p2"},
    ]
    assert client.arm_requests.count("list") == 2


def fake_port(client: azure.AzureAciApi) -> str:
    return client.target.cloud.arm_endpoint.rsplit(":", 1)[1]


async def test_a_create_puts_the_sdks_json_once_and_reads_the_answer(
    arm: tuple[FakeArm, azure.AzureAciApi],
) -> None:
    fake, client = arm
    group = models.ContainerGroup.deserialize(GROUP_JSON)
    fake.answer("PUT", "/default-web-0", 201, GROUP_JSON)
    summary = await client.create_or_update(types.ContainerGroupName("default-web-0"), group)
    assert summary == sdk_summary(GROUP_JSON)
    [(method, _, query, body)] = fake.seen
    assert (method, query) == ("PUT", {"api-version": API_VERSION})
    # The body the SDK's operation would have sent for the same model.
    sdk_serializer = Serializer({k: v for k, v in vars(models).items() if isinstance(v, type)})
    assert json.loads(body) == sdk_serializer.body(group, "ContainerGroup")  # type: ignore[no-untyped-call]


@pytest.mark.parametrize(
    ("status", "body", "error"),
    [
        (409, {"error": {"code": "Conflict", "message": "busy"}}, errors.ConflictError),
        (
            400,
            {"error": {"code": "InaccessibleImage", "message": "image 'x' ..."}},
            errors.ImageInaccessibleError,
        ),
        (401, {"error": {"code": "InvalidAuthenticationToken", "message": "no"}}, errors.AuthenticationError),
        (403, {"error": {"code": "AuthorizationFailed", "message": "no"}}, errors.PermissionDeniedError),
    ],
)
async def test_a_refused_create_raises_what_the_sdk_path_raises(
    arm: tuple[FakeArm, azure.AzureAciApi], status: int, body: dict[str, Any], error: type[Exception]
) -> None:
    fake, client = arm
    fake.answer("PUT", "/default-web-0", status, body)
    with pytest.raises(error):
        await client.create_or_update(
            types.ContainerGroupName("default-web-0"), models.ContainerGroup.deserialize(GROUP_JSON)
        )


@pytest.mark.parametrize(("status", "existed"), [(200, True), (202, True), (204, False), (404, False)])
async def test_a_delete_says_whether_the_group_was_there(
    arm: tuple[FakeArm, azure.AzureAciApi], status: int, existed: bool
) -> None:
    fake, client = arm
    body = GROUP_JSON if status == 200 else {"error": {"code": "ResourceNotFound"}} if status == 404 else None
    fake.answer("DELETE", "/default-web-0", status, body)
    assert await client.delete(types.ContainerGroupName("default-web-0")) is existed
    assert client.arm_requests.count("delete") == 1


async def test_a_refused_listing_raises_what_the_sdk_path_raises(
    arm: tuple[FakeArm, azure.AzureAciApi],
) -> None:
    fake, client = arm
    fake.answer("GET", "/containerGroups", 403, {"error": {"code": "AuthorizationFailed", "message": "no"}})
    with pytest.raises(errors.PermissionDeniedError, match=r"AuthorizationFailed|no"):
        await client.list_groups()
