"""``acinode gc`` against the emulator: it finds the groups acinode created for a cluster whose pod is gone (and
only those: not another cluster's, not a group without acinode's tags, not one whose pod still runs), lists them
without deleting anything by default, and deletes exactly them with --delete."""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from pathlib import Path

import pytest

from acinode import gc, settings, types
from acinode.aci import azure
from acinode.mapping import tags
from contract import emulated

CLUSTER = "c1a55e11-0000-4000-8000-000000000001"
OTHER_CLUSTER = "c1a55e11-0000-4000-8000-000000000002"


def acinode_tags(cluster: str, node: str, pod: str, uid: str) -> dict[str, str]:
    return {
        tags.TAG_CLUSTER_ID: cluster,
        tags.TAG_NODE: node,
        tags.TAG_NAMESPACE: "default",
        tags.TAG_POD: pod,
        tags.TAG_POD_UID: uid,
    }


@pytest.fixture
async def groups(
    clean_emulator: emulated.Emulator, resource_group: str, client_settings: settings.AciSettings
) -> dict[str, str]:
    """Five groups: two of CLUSTER whose pods run, two of CLUSTER whose pods are gone, one of another cluster,
    and one without acinode's tags. Returns name -> pod uid."""
    made = {
        "running-a": acinode_tags(CLUSTER, "vn-a", "web-1", "uid-running-a"),
        "running-b": acinode_tags(CLUSTER, "vn-b", "web-2", "uid-running-b"),
        "gone-a": acinode_tags(CLUSTER, "vn-a", "job-1", "uid-gone-a"),
        "gone-b": acinode_tags(CLUSTER, "vn-b", "job-2", "uid-gone-b"),
        "other-cluster": acinode_tags(OTHER_CLUSTER, "vn-a", "web-9", "uid-other"),
        "untagged": {"team": "someone-else"},
    }
    async with emulated.make_client(clean_emulator, resource_group, client_settings) as aci:
        for name, group_tags in made.items():
            await aci.create_or_update(
                types.ContainerGroupName(name), emulated.container_group(tags=group_tags)
            )
    return {name: t.get(tags.TAG_POD_UID, "") for name, t in made.items()}


async def remaining(
    emulator: emulated.Emulator, resource_group: str, aci_settings: settings.AciSettings
) -> set[str]:
    async with emulated.make_client(emulator, resource_group, aci_settings) as aci:
        return {g.name for g in await aci.list_groups() if (g.provisioning_state or "") != "Deleting"}


async def test_survey_finds_only_this_clusters_groups_whose_pod_is_gone(
    clean_emulator: emulated.Emulator,
    resource_group: str,
    client_settings: settings.AciSettings,
    groups: dict[str, str],
) -> None:
    running = {"vn-a": {"uid-running-a", "some-other-pod"}, "vn-b": {"uid-running-b"}}
    asked: list[str] = []

    async def pods_on_node(node: str) -> set[str]:
        asked.append(node)
        return running.get(node, set())

    async with emulated.make_client(clean_emulator, resource_group, client_settings) as aci:
        result = await gc.survey(aci, CLUSTER, pods_on_node)
    assert result.ours == 4
    assert [(x.group, x.node, x.pod, x.pod_uid) for x in result.leftovers] == [
        ("gone-a", "vn-a", "default/job-1", "uid-gone-a"),
        ("gone-b", "vn-b", "default/job-2", "uid-gone-b"),
    ]
    assert sorted(asked) == ["vn-a", "vn-b"]  # one pod listing per node


async def run_cli(command: list[str]) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    output, _ = await asyncio.wait_for(process.communicate(), 50)
    return process.returncode or 0, output.decode()


def gc_command(emulator: emulated.Emulator, resource_group: str, token_file: Path, *more: str) -> list[str]:
    return [
        str(emulated.ACINODE),
        "gc",
        "--subscription-id",
        emulated.SUBSCRIPTION,
        "--resource-group",
        resource_group,
        "--endpoint",
        emulator.url,
        "--ca-bundle",
        emulator.ca_file,
        "--token-file",
        str(token_file),
        *more,
    ]


async def test_gc_lists_by_default_and_deletes_with_delete_when_the_cluster_is_gone(
    clean_emulator: emulated.Emulator,
    resource_group: str,
    client_settings: settings.AciSettings,
    groups: dict[str, str],
    tmp_path: Path,
) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(clean_emulator.token + "\n")
    command = gc_command(
        clean_emulator, resource_group, token_file, "--cluster-gone", "--cluster-id", CLUSTER
    )

    code, dry = await run_cli(command)
    assert code == 0, dry
    assert f"cluster {CLUSTER}: 4 container groups of acinode" in dry
    assert "4 left behind" in dry
    assert "dry run: nothing deleted" in dry
    for name in ("running-a", "running-b", "gone-a", "gone-b"):
        assert name in dry
    assert "other-cluster" not in dry and "untagged" not in dry
    assert await remaining(clean_emulator, resource_group, client_settings) == set(groups)

    code, deleting = await run_cli([*command, "--delete"])
    assert code == 0, deleting
    assert deleting.count("deleted ") == 4
    assert await remaining(clean_emulator, resource_group, client_settings) == {"other-cluster", "untagged"}


def test_cluster_gone_needs_the_cluster_id(tmp_path: Path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("t")
    result = subprocess.run(
        [
            str(emulated.ACINODE),
            "gc",
            "--subscription-id",
            str(uuid.uuid4()),
            "--resource-group",
            "rg",
            "--token-file",
            str(token_file),
            "--cluster-gone",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 2
    assert "--cluster-gone needs --cluster-id" in result.stdout


def test_azure_client_is_what_gc_uses() -> None:
    target = gc.aci_target(
        gc.GcOptions(
            subscription_id="s", resource_group="rg", endpoint="https://127.0.0.1:1", token_file=None
        )
    )
    assert target.cloud.arm_endpoint == "https://127.0.0.1:1"
    assert azure.AzureAciApi  # the same client the operator uses
