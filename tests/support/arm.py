"""Read the emulator's ARM state from synchronous tests (what `az container list/show` would show)."""

from __future__ import annotations

import json
import ssl
import time
import urllib.error
import urllib.request
from typing import Any

from contract import emulated

API_VERSION = "2023-05-01"


def _get(emulator: emulated.Emulator, path: str, attempts: int = 10) -> Any:
    """GET, waiting out 429s as ``az`` does (Retry-After), for when a test's fault rules throttle reads."""
    request = urllib.request.Request(
        f"{emulator.url}{path}{'&' if '?' in path else '?'}api-version={API_VERSION}",
        headers={"Authorization": f"Bearer {emulator.token}"},
    )
    context = ssl.create_default_context(cafile=emulator.ca_file)
    for attempt in range(attempts):
        try:
            with urllib.request.urlopen(request, context=context, timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as err:
            if err.code != 429 or attempt == attempts - 1:
                raise
            time.sleep(float(err.headers.get("Retry-After") or 1))  # the server's own pacing
    raise AssertionError("unreachable")


def _groups_path(resource_group: str) -> str:
    return (
        f"/subscriptions/{emulated.SUBSCRIPTION}/resourceGroups/{resource_group}"
        "/providers/Microsoft.ContainerInstance/containerGroups"
    )


def list_groups(emulator: emulated.Emulator, resource_group: str) -> list[dict[str, Any]]:
    groups: list[dict[str, Any]] = []
    page = _get(emulator, _groups_path(resource_group))
    groups.extend(page.get("value", []))
    while page.get("nextLink"):
        link = page["nextLink"].removeprefix(emulator.url)
        page = _get(
            emulator,
            link.split("?")[0]
            + "?"
            + "&".join(p for p in link.split("?", 1)[1].split("&") if not p.startswith("api-version")),
        )
        groups.extend(page.get("value", []))
    return groups


def get_group(emulator: emulated.Emulator, resource_group: str, name: str) -> dict[str, Any]:
    result: dict[str, Any] = _get(emulator, f"{_groups_path(resource_group)}/{name}")
    return result


def stats(emulator: emulated.Emulator) -> dict[str, Any]:
    result: dict[str, Any] = _get(emulator, "/_emulator/stats")
    return result
