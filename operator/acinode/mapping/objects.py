"""The Kubernetes JSON shapes the mapping reads and writes (camelCase, as the API server sends them).

All are ``total=False``: the mapping must cope with any field being absent, and it reads with ``.get``. Only
the fields the mapping looks at are declared; the refusal tables in ``fields`` see every key actually
present.
"""

from __future__ import annotations

from typing import TypedDict

# --- metadata ---------------------------------------------------------------------------------------------


class ObjectMeta(TypedDict, total=False):
    name: str
    namespace: str
    uid: str
    generation: int
    creationTimestamp: str
    labels: dict[str, str]
    annotations: dict[str, str]


class ObjectReference(TypedDict, total=False):
    apiVersion: str
    kind: str
    name: str
    namespace: str
    uid: str
    fieldPath: str


class LocalObjectReference(TypedDict, total=False):
    name: str


# --- env --------------------------------------------------------------------------------------------------


class KeySelector(TypedDict, total=False):
    name: str
    key: str
    optional: bool


class ObjectFieldSelector(TypedDict, total=False):
    apiVersion: str
    fieldPath: str


class ResourceFieldSelector(TypedDict, total=False):
    containerName: str
    resource: str
    divisor: str | int


class EnvVarSource(TypedDict, total=False):
    fieldRef: ObjectFieldSelector
    resourceFieldRef: ResourceFieldSelector
    configMapKeyRef: KeySelector
    secretKeyRef: KeySelector
    fileKeyRef: dict[str, object]


class EnvVar(TypedDict, total=False):
    name: str
    value: str
    valueFrom: EnvVarSource


class EnvFromRef(TypedDict, total=False):
    name: str
    optional: bool


class EnvFromSource(TypedDict, total=False):
    prefix: str
    configMapRef: EnvFromRef
    secretRef: EnvFromRef


# --- containers -------------------------------------------------------------------------------------------


class ContainerPort(TypedDict, total=False):
    name: str
    containerPort: int
    hostPort: int
    hostIP: str
    protocol: str


class ResourceRequirements(TypedDict, total=False):
    requests: dict[str, str | int | float]
    limits: dict[str, str | int | float]
    claims: list[dict[str, object]]


class VolumeMount(TypedDict, total=False):
    name: str
    mountPath: str
    readOnly: bool
    recursiveReadOnly: str
    subPath: str
    subPathExpr: str
    mountPropagation: str


class ExecAction(TypedDict, total=False):
    command: list[str]


class HttpHeader(TypedDict, total=False):
    name: str
    value: str


class HttpGetAction(TypedDict, total=False):
    path: str
    port: int | str
    host: str
    scheme: str
    httpHeaders: list[HttpHeader]


class Probe(TypedDict, total=False):
    exec: ExecAction
    httpGet: HttpGetAction
    tcpSocket: dict[str, object]
    grpc: dict[str, object]
    initialDelaySeconds: int
    timeoutSeconds: int
    periodSeconds: int
    successThreshold: int
    failureThreshold: int
    terminationGracePeriodSeconds: int


class Capabilities(TypedDict, total=False):
    add: list[str]
    drop: list[str]


class SeccompProfile(TypedDict, total=False):
    type: str
    localhostProfile: str


class SecurityContext(TypedDict, total=False):
    capabilities: Capabilities
    privileged: bool
    runAsUser: int
    runAsGroup: int
    runAsNonRoot: bool
    readOnlyRootFilesystem: bool
    allowPrivilegeEscalation: bool
    procMount: str
    seccompProfile: SeccompProfile
    appArmorProfile: SeccompProfile
    seLinuxOptions: dict[str, str]
    windowsOptions: dict[str, object]


class Container(TypedDict, total=False):
    name: str
    image: str
    command: list[str]
    args: list[str]
    workingDir: str
    ports: list[ContainerPort]
    envFrom: list[EnvFromSource]
    env: list[EnvVar]
    resources: ResourceRequirements
    volumeMounts: list[VolumeMount]
    volumeDevices: list[dict[str, str]]
    livenessProbe: Probe
    readinessProbe: Probe
    startupProbe: Probe
    lifecycle: dict[str, object]
    terminationMessagePath: str
    terminationMessagePolicy: str
    imagePullPolicy: str
    securityContext: SecurityContext
    restartPolicy: str
    stdin: bool
    stdinOnce: bool
    tty: bool


# --- volumes ----------------------------------------------------------------------------------------------


class KeyToPath(TypedDict, total=False):
    key: str
    path: str
    mode: int


class SecretVolumeSource(TypedDict, total=False):
    secretName: str
    items: list[KeyToPath]
    defaultMode: int
    optional: bool


class ConfigMapVolumeSource(TypedDict, total=False):
    name: str
    items: list[KeyToPath]
    defaultMode: int
    optional: bool


class DownwardApiFile(TypedDict, total=False):
    path: str
    fieldRef: ObjectFieldSelector
    resourceFieldRef: ResourceFieldSelector
    mode: int


class DownwardApiVolumeSource(TypedDict, total=False):
    items: list[DownwardApiFile]
    defaultMode: int


class SecretProjection(TypedDict, total=False):
    name: str
    items: list[KeyToPath]
    optional: bool


class ServiceAccountTokenProjection(TypedDict, total=False):
    audience: str
    expirationSeconds: int
    path: str


class VolumeProjection(TypedDict, total=False):
    secret: SecretProjection
    configMap: ConfigMapVolumeSource
    downwardAPI: DownwardApiVolumeSource
    serviceAccountToken: ServiceAccountTokenProjection


class ProjectedVolumeSource(TypedDict, total=False):
    sources: list[VolumeProjection]
    defaultMode: int


class EmptyDirVolumeSource(TypedDict, total=False):
    medium: str
    sizeLimit: str | int


class AzureFileVolumeSource(TypedDict, total=False):
    secretName: str
    shareName: str
    readOnly: bool


class CsiVolumeSource(TypedDict, total=False):
    driver: str
    readOnly: bool
    fsType: str
    volumeAttributes: dict[str, str]
    nodePublishSecretRef: LocalObjectReference


class PersistentVolumeClaimVolumeSource(TypedDict, total=False):
    claimName: str
    readOnly: bool


class GitRepoVolumeSource(TypedDict, total=False):
    repository: str
    revision: str
    directory: str


class Volume(TypedDict, total=False):
    name: str
    emptyDir: EmptyDirVolumeSource
    secret: SecretVolumeSource
    configMap: ConfigMapVolumeSource
    projected: ProjectedVolumeSource
    downwardAPI: DownwardApiVolumeSource
    azureFile: AzureFileVolumeSource
    csi: CsiVolumeSource
    gitRepo: GitRepoVolumeSource
    persistentVolumeClaim: PersistentVolumeClaimVolumeSource


# --- pod --------------------------------------------------------------------------------------------------


class PodDnsConfigOption(TypedDict, total=False):
    name: str
    value: str


class PodDnsConfig(TypedDict, total=False):
    nameservers: list[str]
    searches: list[str]
    options: list[PodDnsConfigOption]


class PodSecurityContext(TypedDict, total=False):
    runAsUser: int
    runAsGroup: int
    runAsNonRoot: bool
    seccompProfile: SeccompProfile
    appArmorProfile: SeccompProfile
    supplementalGroups: list[int]
    fsGroup: int
    sysctls: list[dict[str, str]]


class PodOs(TypedDict, total=False):
    name: str


class PodReadinessGate(TypedDict, total=False):
    conditionType: str


class PodSpec(TypedDict, total=False):
    volumes: list[Volume]
    initContainers: list[Container]
    containers: list[Container]
    restartPolicy: str
    dnsPolicy: str
    dnsConfig: PodDnsConfig
    nodeName: str
    serviceAccountName: str
    hostNetwork: bool
    securityContext: PodSecurityContext
    imagePullSecrets: list[LocalObjectReference]
    hostname: str
    subdomain: str
    readinessGates: list[PodReadinessGate]
    enableServiceLinks: bool
    os: PodOs
    resources: ResourceRequirements


class ContainerStateWaiting(TypedDict, total=False):
    reason: str
    message: str


class ContainerStateRunning(TypedDict, total=False):
    startedAt: str


class ContainerStateTerminated(TypedDict, total=False):
    exitCode: int
    signal: int
    reason: str
    message: str
    startedAt: str
    finishedAt: str
    containerID: str


class ContainerState(TypedDict, total=False):
    waiting: ContainerStateWaiting
    running: ContainerStateRunning
    terminated: ContainerStateTerminated


class ContainerStatus(TypedDict, total=False):
    name: str
    state: ContainerState
    lastState: ContainerState
    ready: bool
    restartCount: int
    image: str
    imageID: str
    containerID: str
    started: bool


class PodCondition(TypedDict, total=False):
    type: str
    status: str
    lastProbeTime: str | None
    lastTransitionTime: str
    reason: str
    message: str
    observedGeneration: int


class PodIp(TypedDict, total=False):
    ip: str


class PodStatus(TypedDict, total=False):
    observedGeneration: int
    phase: str
    conditions: list[PodCondition]
    message: str
    reason: str
    hostIP: str
    hostIPs: list[PodIp]
    podIP: str
    podIPs: list[PodIp]
    startTime: str
    initContainerStatuses: list[ContainerStatus]
    containerStatuses: list[ContainerStatus]
    qosClass: str


class Pod(TypedDict, total=False):
    apiVersion: str
    kind: str
    metadata: ObjectMeta
    spec: PodSpec
    status: PodStatus


# --- referenced objects -----------------------------------------------------------------------------------


class PersistentVolumeClaimSpec(TypedDict, total=False):
    volumeName: str
    volumeMode: str


class PersistentVolumeClaimStatus(TypedDict, total=False):
    phase: str


class PersistentVolumeClaim(TypedDict, total=False):
    metadata: ObjectMeta
    spec: PersistentVolumeClaimSpec
    status: PersistentVolumeClaimStatus


class SecretReference(TypedDict, total=False):
    name: str
    namespace: str


class AzureFilePersistentVolumeSource(TypedDict, total=False):
    secretName: str
    shareName: str
    readOnly: bool
    secretNamespace: str


class CsiPersistentVolumeSource(TypedDict, total=False):
    driver: str
    volumeHandle: str
    readOnly: bool
    fsType: str
    volumeAttributes: dict[str, str]
    nodeStageSecretRef: SecretReference
    nodePublishSecretRef: SecretReference
    controllerPublishSecretRef: SecretReference
    controllerExpandSecretRef: SecretReference
    nodeExpandSecretRef: SecretReference


class ClaimReference(TypedDict, total=False):
    kind: str
    namespace: str
    name: str
    uid: str


class PersistentVolumeSpec(TypedDict, total=False):
    claimRef: ClaimReference
    azureFile: AzureFilePersistentVolumeSource
    csi: CsiPersistentVolumeSource
    mountOptions: list[str]
    volumeMode: str


class PersistentVolume(TypedDict, total=False):
    metadata: ObjectMeta
    spec: PersistentVolumeSpec


class Secret(TypedDict, total=False):
    metadata: ObjectMeta
    type: str
    data: dict[str, str]
    """Values are base64, as the API returns them."""


class ConfigMap(TypedDict, total=False):
    metadata: ObjectMeta
    data: dict[str, str]
    binaryData: dict[str, str]
    """Values are base64, as the API returns them."""


# --- events -----------------------------------------------------------------------------------------------


class EventSource(TypedDict, total=False):
    component: str
    host: str


class Event(TypedDict, total=False):
    """A core/v1 Event body, ready to be created in the pod's namespace."""

    apiVersion: str
    kind: str
    metadata: ObjectMeta
    involvedObject: ObjectReference
    reason: str
    message: str
    type: str
    count: int
    firstTimestamp: str
    lastTimestamp: str
    source: EventSource
    reportingComponent: str
    reportingInstance: str


# --- services (for the kubelet's service environment variables) ----------------------------------------------


class ServicePort(TypedDict, total=False):
    name: str
    port: int
    protocol: str


class ServiceSpec(TypedDict, total=False):
    clusterIP: str
    ports: list[ServicePort]


class Service(TypedDict, total=False):
    metadata: ObjectMeta
    spec: ServiceSpec
