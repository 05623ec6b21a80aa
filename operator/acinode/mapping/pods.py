"""Pod → container group: the one entry point that composes the other mapping modules.

``container_group_from_pod`` either returns the complete SDK ``ContainerGroup`` to PUT, or raises
``UnsupportedPodSpecError`` naming every field it cannot express — never a group that silently differs from
the pod. The group's name (the PUT URL's last segment) comes from ``container_group_name_from_pod``.
"""

from __future__ import annotations

from azure.mgmt.containerinstance import models

from acinode import types
from acinode.mapping import (
    containers,
    env,
    fields,
    keyvault,
    names,
    networking,
    objects,
    options,
    placement,
    problems,
    references,
    registry,
    resources,
    services,
    tags,
    volumes,
)

MAX_CONTAINERS = 60
RESTART_POLICIES = ("Always", "OnFailure", "Never")

_POD_FIELDS = (
    "volumes",
    "initContainers",
    "containers",
    "restartPolicy",
    "dnsPolicy",
    "dnsConfig",
    "serviceAccountName",
    "securityContext",
    "imagePullSecrets",
    "os",
    "resources",
    "nodeName",
    "readinessGates",
    # Accepted without a group field (docs/mapping.md says why): scheduling, done before the pod reaches us;
    # lifecycle the reconciler enforces; cluster DNS records; and isolation ACI gives every group anyway.
    "terminationGracePeriodSeconds",
    "activeDeadlineSeconds",
    "nodeSelector",
    "serviceAccount",
    "automountServiceAccountToken",
    "affinity",
    "schedulerName",
    "tolerations",
    "priorityClassName",
    "priority",
    "preemptionPolicy",
    "overhead",
    "topologySpreadConstraints",
    "schedulingGates",
    "schedulingGroup",
    "enableServiceLinks",
    "subdomain",
    "hostUsers",
)
_POD_REFUSED = {
    "hostNetwork": "a virtual node has no host network; the group gets its own IP",
    "hostPID": "a virtual node has no host process namespace",
    "hostIPC": "a virtual node has no host IPC namespace",
    "shareProcessNamespace": "ACI does not share a process namespace between containers",
    "hostname": "ACI sets the container group's host name itself",
    "hostnameOverride": "ACI sets the container group's host name itself",
    "setHostnameAsFQDN": "ACI sets the container group's host name itself",
    "hostAliases": "ACI has no /etc/hosts setting and mounts volumes as directories only, so no file can replace "
    "a container's /etc/hosts (an init container cannot change another container's); use DNS names instead",
    "ephemeralContainers": "ACI cannot add containers to a running group",
    "resourceClaims": "ACI has no dynamic resource allocation",
    "runtimeClassName": "ACI has a single runtime; use the aci.acinode.dev/sku annotation for confidential groups",
    "evictionResponders": "acinode does not take part in eviction requests",
}


def container_group_name_from_pod(pod: objects.Pod) -> types.ContainerGroupName:
    metadata = pod.get("metadata", {})
    return names.container_group_name(metadata.get("namespace", "default"), metadata.get("name", ""))


def _check_pod(spec: objects.PodSpec, where: placement.GroupPlacement, found: problems.Problems) -> None:
    fields.check_fields(spec, "spec", _POD_FIELDS, _POD_REFUSED, found)
    fields.check_fields(
        spec.get("securityContext", {}),
        "spec.securityContext",
        containers.POD_SECURITY_FIELDS,
        containers.POD_SECURITY_REFUSED,
        found,
    )
    if spec.get("securityContext", {}).get("supplementalGroups"):
        found.add("spec.securityContext.supplementalGroups", "ACI cannot add supplementary groups")
    if spec.get("restartPolicy", "Always") not in RESTART_POLICIES:
        found.add("spec.restartPolicy", f"must be one of {', '.join(RESTART_POLICIES)}")
    pod_os = spec.get("os", {}).get("name")
    if pod_os and pod_os.lower() != where.os_type.lower():
        found.add("spec.os.name", f"this virtual node runs {where.os_type} container groups")
    app = spec.get("containers", [])
    if not app:
        found.add("spec.containers", "a container group needs at least one container")
    if len(app) + len(spec.get("initContainers", [])) > MAX_CONTAINERS:
        found.add("spec.containers", f"ACI allows {MAX_CONTAINERS} containers per group")
    aci_names: dict[str, str] = {}
    for kind, items in (("initContainers", spec.get("initContainers", [])), ("containers", app)):
        for index, container in enumerate(items):
            name = container.get("name", "")
            aci_name = names.aci_container_name(name)
            if aci_name in aci_names and aci_names[aci_name] != name:
                found.add(
                    f"spec.{kind}[{index}].name",
                    f"its ACI name {aci_name!r} clashes with {aci_names[aci_name]!r}",
                )
            aci_names[aci_name] = name


def _entrypoint(
    container: objects.Container, chosen: options.GroupOptions, refs: references.ResolvedReferences
) -> tuple[str, ...] | None:
    name, image = container.get("name", ""), container.get("image", "")
    if name in chosen.entrypoints:
        return chosen.entrypoints[name]
    return refs.image_entrypoints.get(image)


def _diagnostics(
    pod: objects.Pod, where: placement.GroupPlacement
) -> models.ContainerGroupDiagnostics | None:
    settings = where.log_analytics
    if settings is None:
        return None
    metadata = None
    if settings.cluster_resource_id:
        # The metadata virtual-kubelet's provider sends so Container Insights files logs under the cluster.
        metadata = {
            "cluster-resource-id": settings.cluster_resource_id,
            "node-name": where.node_name,
            "pod-uuid": pod.get("metadata", {}).get("uid", ""),
        }
    return models.ContainerGroupDiagnostics(
        log_analytics=models.LogAnalytics(
            workspace_id=settings.workspace_id,
            workspace_key=settings.workspace_key,
            log_type=settings.log_type,
            metadata=metadata,
            workspace_resource_id=settings.workspace_resource_id,
        )
    )


def _check_identities(
    chosen: options.GroupOptions, namespace: str, where: placement.GroupPlacement, found: problems.Problems
) -> None:
    """Deny by default: a pod attaches only identities its VirtualNode lists for its namespace."""
    asked = [
        (chosen.identity_keys.get(identity, options.IDENTITIES), identity) for identity in chosen.identities
    ]
    if chosen.acr_identity:
        asked.append((options.ACR_IDENTITY, chosen.acr_identity))
    for key, identity in asked:
        if not where.identity_allowed(identity, namespace):
            found.add(
                problems.key_path("metadata.annotations", key),
                f"identity {identity!r} is not allowed for namespace {namespace!r} on node {where.node_name} "
                "(the VirtualNode's spec.azure.allowedIdentities)",
            )


def container_group_from_pod(
    pod: objects.Pod,
    where: placement.GroupPlacement,
    refs: references.ResolvedReferences | None = None,
) -> models.ContainerGroup:
    """The container group to create for ``pod`` on the virtual node ``where``.

    Raises ``UnsupportedPodSpecError`` listing every field that cannot be expressed, and every Secret,
    ConfigMap, key or token the pod needs but ``refs`` lacks.
    """
    refs = refs or references.ResolvedReferences()
    found = problems.Problems()
    metadata = pod.get("metadata", {})
    spec = pod.get("spec", {})
    _check_pod(spec, where, found)
    chosen = options.group_options_from_annotations(metadata.get("annotations", {}), found)
    _check_identities(chosen, metadata.get("namespace", "default"), where, found)

    group_resources = resources.group_resources_from_pod(spec, where, chosen.gpu_sku, found)
    init_specs, app_specs = spec.get("initContainers", []), spec.get("containers", [])
    by_name = {c.get("name", ""): r for c, r in zip(init_specs, group_resources.init_containers, strict=True)}
    by_name.update({c.get("name", ""): r for c, r in zip(app_specs, group_resources.containers, strict=True)})

    service_env = services.service_environment(
        refs.services, metadata.get("namespace", "default"), spec.get("enableServiceLinks", True)
    )
    env_context = env.EnvContext(
        pod, where, refs, pod_ip=chosen.ip_address, container_resources=by_name, service_env=service_env
    )
    aci_volumes = volumes.aci_volumes_from_pod(volumes.VolumeContext(pod, where, refs, by_name), found)
    pod_security = spec.get("securityContext", {})

    init_containers: list[models.InitContainerDefinition] = []
    for index, container in enumerate(init_specs):
        path = f"spec.initContainers[{index}]"
        containers.check_container_fields(container, path, init=True, found=found)
        environment = env.environment_from_container(container, path, env_context, found)
        init_containers.append(
            models.InitContainerDefinition(
                name=names.aci_container_name(container.get("name", "")),
                image=container.get("image", ""),
                command=containers.aci_command_from_container(
                    container, path, environment, _entrypoint(container, chosen, refs), found
                ),
                environment_variables=env.aci_environment_variables(environment) or None,
                volume_mounts=volumes.aci_volume_mounts_from_container(container, path, aci_volumes, found)
                or None,
                security_context=containers.aci_security_context_from_container(
                    container, path, pod_security, found
                ),
            )
        )

    app: list[models.Container] = []
    app_ports: list[list[models.ContainerPort]] = []
    for index, container in enumerate(app_specs):
        path = f"spec.containers[{index}]"
        containers.check_container_fields(container, path, init=False, found=found)
        environment = env.environment_from_container(container, path, env_context, found)
        ports = containers.aci_ports_from_container(container, path, found)
        app_ports.append(ports)
        liveness = container.get("livenessProbe")
        readiness = container.get("readinessProbe")
        app.append(
            models.Container(
                name=names.aci_container_name(container.get("name", "")),
                image=container.get("image", ""),
                command=containers.aci_command_from_container(
                    container, path, environment, _entrypoint(container, chosen, refs), found
                ),
                ports=ports or None,
                environment_variables=env.aci_environment_variables(environment) or None,
                resources=resources.aci_resources_from_container(
                    group_resources.containers[index], group_resources.gpu_sku
                ),
                volume_mounts=volumes.aci_volume_mounts_from_container(container, path, aci_volumes, found)
                or None,
                liveness_probe=(
                    containers.aci_probe_from_probe(liveness, f"{path}.livenessProbe", container, found)
                    if liveness
                    else None
                ),
                readiness_probe=(
                    containers.aci_probe_from_probe(readiness, f"{path}.readinessProbe", container, found)
                    if readiness
                    else None
                ),
                security_context=containers.aci_security_context_from_container(
                    container, path, pod_security, found
                ),
            )
        )

    exposed = networking.group_ports(app_specs, app_ports, found)
    ip_address = networking.aci_ip_address_from_pod(exposed, where, chosen, found)
    dns_config = networking.aci_dns_config_from_pod(
        pod, where, found, inject_dns=chosen.inject_dns is not False
    )
    credentials = registry.aci_registry_credentials_from_pod(spec, refs, chosen, found)
    group_tags = tags.tags_from_pod(
        pod,
        where,
        found,
        chosen.custom_tags,
        problems.key_path("metadata.annotations", options.VN2_CUSTOM_TAGS),
    )
    subnet_ids = networking.aci_subnet_ids_from_pod(where, chosen, found)
    extensions = networking.aci_extensions_from_pod(where, chosen, found)
    found.raise_if_any()
    key_vault = keyvault.group_secret_references(pod, refs.secret_provider_classes, where)

    group = models.ContainerGroup(
        location=where.region,
        tags=group_tags,
        zones=list(chosen.zones) or None,
        identity=_with_identities(
            registry.aci_identity_from_options(chosen), [r.identity for r in key_vault]
        ),
        containers=app,
        init_containers=init_containers or None,
        image_registry_credentials=credentials or None,
        restart_policy=spec.get("restartPolicy", "Always"),
        ip_address=ip_address,
        os_type=where.os_type,
        volumes=list(aci_volumes.values()) or None,
        diagnostics=_diagnostics(pod, where),
        subnet_ids=subnet_ids,
        dns_config=dns_config,
        sku=chosen.sku,
        extensions=extensions,
        encryption_properties=(
            models.EncryptionProperties(
                vault_base_url=chosen.encryption.vault_base_url,
                key_name=chosen.encryption.key_name,
                key_version=chosen.encryption.key_version,
                identity=chosen.encryption.identity,
            )
            if chosen.encryption
            else None
        ),
        confidential_compute_properties=(
            models.ConfidentialComputeProperties(cce_policy=chosen.cce_policy) if chosen.cce_policy else None
        ),
        priority=chosen.priority,
    )
    if key_vault:
        # Newer than the SDK's 2023-05-01 models: ``aci/`` sends them with the API version that has them.
        group.additional_properties = {"properties": {"secretReferences": [r.as_arm() for r in key_vault]}}
    return group


def _with_identities(
    identity: models.ContainerGroupIdentity | None, more: list[str]
) -> models.ContainerGroupIdentity | None:
    """The group's user-assigned identities plus those its Key Vault references fetch with."""
    if not more:
        return identity
    known = dict((identity.user_assigned_identities or {}) if identity else {})
    for resource_id in more:
        if not any(k.lower() == resource_id.lower() for k in known):
            known[resource_id] = models.UserAssignedIdentities()
    return models.ContainerGroupIdentity(type="UserAssigned", user_assigned_identities=known)
