"""FakeKube: an in-memory Kubernetes API standing in for ``acinode.kube.client.KubeClient`` in unit tests.

It knows no resource kinds: objects are stored under their REST path (``/api/v1/nodes/vn-1``,
``/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases/vn-1``) and every verb follows the API server's
generic rules, so the same fake serves Nodes, Leases, VirtualNodes, Pods and Events:

- ``get`` of an object, or of a collection (a ``List``, filtered by ``labelSelector`` and ``fieldSelector``);
- ``create`` (POST to the collection): ``ConflictError`` when the name exists; assigns uid, resourceVersion,
  generation and creationTimestamp (``generateName`` too);
- ``replace`` (PUT) and ``patch`` (merge, strategic merge with list merge keys such as ``conditions`` by
  ``type``, JSON patch): ``NotFoundError`` when missing, ``ConflictError`` on a stale ``resourceVersion``;
- the ``status`` subresource: writes to ``<object>/status`` change only ``status``; writes to the object
  keep its ``status`` (as for every resource that has the subresource);
- ``delete``: ``NotFoundError`` when missing, ``ConflictError`` on a failed uid/resourceVersion precondition; an
  object with finalizers only gets a ``deletionTimestamp`` until they are removed;
- ``watch``: ADDED/MODIFIED/DELETED events of later writes (and of the current objects, without
  ``resourceVersion``) until ``close_watches``.

Every call is recorded (``calls``, ``count``) before it runs, so tests can count API requests, and can be made to
fail, wait or hang by method and path glob (``fail``, ``delay``, ``hold``). Each call yields to the event loop
once, like real I/O. Tests wait for what the code under test did with ``wait_until`` (no sleeps).
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import datetime
import fnmatch
import re
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from acinode import errors
from acinode.kube import client
from fakes import changes

JsonObject = client.JsonObject

PATCH_TYPES: Mapping[str, str] = {
    "application/merge-patch+json": "merge",
    "application/strategic-merge-patch+json": "strategic",
    "application/json-patch+json": "json",
}

STRATEGIC_MERGE_KEYS: Mapping[str, str | None] = {
    "conditions": "type",
    "addresses": "type",
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
    "env": "name",
    "imagePullSecrets": "name",
    "ownerReferences": "uid",
    "finalizers": None,
}
"""Lists that strategic merge patches merge rather than replace, by field name: the merge key of their items, or
None for lists of strings merged as sets. Other lists are replaced, as for fields without a patch strategy."""

ErrorSource = BaseException | Callable[[], BaseException]


@dataclasses.dataclass(frozen=True)
class Call:
    """One request as the code under test made it."""

    method: str
    path: str
    body: Any = None
    params: Mapping[str, str] | None = None
    content_type: str | None = None

    @property
    def patch_type(self) -> str | None:
        """``merge``, ``strategic`` or ``json`` for a PATCH; None otherwise."""
        return PATCH_TYPES.get(self.content_type or "") if self.method == "PATCH" else None


@dataclasses.dataclass
class _Fault:
    method: str | None
    pattern: str
    times: int | None
    error: ErrorSource | None = None
    delay_seconds: float = 0.0
    gate: asyncio.Event | None = None

    def matches(self, method: str, path: str) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        return (self.method is None or self.method == method) and fnmatch.fnmatchcase(path, self.pattern)


@dataclasses.dataclass(frozen=True)
class _Ref:
    """A parsed REST path: ``<prefix>[/namespaces/<ns>]/<resource>[/<name>[/<subresource>]]``."""

    prefix: str
    namespace: str | None
    resource: str
    name: str | None
    subresource: str | None

    @property
    def collection_path(self) -> str:
        scope = f"/namespaces/{self.namespace}" if self.namespace else ""
        return f"{self.prefix}{scope}/{self.resource}"

    def object_path(self, name: str | None = None) -> str:
        return f"{self.collection_path}/{name or self.name}"


def _parse(path: str) -> _Ref:
    parts = path.split("?", 1)[0].strip("/").split("/")
    if parts[0] == "api" and len(parts) >= 2:
        prefix_length = 2
    elif parts[0] == "apis" and len(parts) >= 3:
        prefix_length = 3
    else:
        raise errors.InvalidRequestError(f"{path}: not a Kubernetes API path", code="NotFound")
    prefix, rest = "/" + "/".join(parts[:prefix_length]), parts[prefix_length:]
    namespace = None
    if len(rest) >= 3 and rest[0] == "namespaces":
        namespace, rest = rest[1], rest[2:]
    if not rest or len(rest) > 3 or not all(rest):
        raise errors.InvalidRequestError(f"{path}: not a resource path", code="NotFound")
    return _Ref(
        prefix=prefix,
        namespace=namespace,
        resource=rest[0],
        name=rest[1] if len(rest) > 1 else None,
        subresource=rest[2] if len(rest) > 2 else None,
    )


class FakeKube(client.KubeClient):
    """In-memory ``KubeClient``: same methods, same error taxonomy, no network."""

    def __init__(
        self,
        *,
        strategic_merge_keys: Mapping[str, str | None] = STRATEGIC_MERGE_KEYS,
        clock: Callable[[], datetime.datetime] | None = None,
        changes_signal: changes.Changes | None = None,
    ) -> None:
        # No super().__init__(): there is no connection to make. ``_session_or_new`` refuses to open one.
        self.objects: dict[str, JsonObject] = {}
        """Stored objects by path. Read it in assertions; seed and change it with ``put`` and ``remove``."""
        self.calls: list[Call] = []
        self.closed = False
        self._merge_keys = dict(strategic_merge_keys)
        self._clock = clock or (lambda: datetime.datetime.now(datetime.UTC))
        self._faults: list[_Fault] = []
        self._serial = 0
        self._watchers: list[tuple[_Ref, Mapping[str, str], asyncio.Queue[JsonObject | None]]] = []
        self.changes = changes_signal or changes.Changes()
        """Pulsed on every call (start and end) and store change; share it with other fakes to wait on both."""

    # --- KubeClient's interface -----------------------------------------------------------------------------

    def _session_or_new(self) -> Any:
        raise AssertionError("FakeKube never opens a connection")

    async def close(self) -> None:
        self.closed = True

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> JsonObject:
        call = Call(
            method, path, copy.deepcopy(body), dict(params) if params is not None else None, content_type
        )
        self.calls.append(call)
        self.changes.wake()
        try:
            await self._apply_faults(method, path)
            return self._serve(call)
        finally:
            self.changes.wake()

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> JsonObject:
        return await self.request("GET", path, params=params)

    async def create(self, path: str, body: JsonObject) -> JsonObject:
        return await self.request("POST", path, body=body)

    async def replace(self, path: str, body: JsonObject) -> JsonObject:
        return await self.request("PUT", path, body=body)

    async def patch(self, path: str, body: Any, patch_type: client.PatchType = "merge") -> JsonObject:
        content_type = next(ct for ct, kind in PATCH_TYPES.items() if kind == patch_type)
        return await self.request("PATCH", path, body=body, content_type=content_type)

    async def delete(self, path: str, body: JsonObject | None = None) -> JsonObject:
        return await self.request("DELETE", path, body=body)

    async def watch(
        self, path: str, params: Mapping[str, str], *, timeout_seconds: int = 300
    ) -> AsyncIterator[JsonObject]:
        self.calls.append(Call("WATCH", path, None, dict(params)))
        self.changes.wake()
        await self._apply_faults("WATCH", path)
        ref = _parse(path)
        queue: asyncio.Queue[JsonObject | None] = asyncio.Queue()
        if not params.get("resourceVersion"):
            for item in self._list(ref, params)["items"]:
                queue.put_nowait({"type": "ADDED", "object": item})
        watcher = (ref, dict(params), queue)
        self._watchers.append(watcher)
        try:
            while (event := await queue.get()) is not None:
                yield event
                self.changes.wake()  # the consumer has handled the event
        finally:
            self._watchers.remove(watcher)

    # --- arranging and inspecting -----------------------------------------------------------------------------

    def put(self, path: str, obj: JsonObject) -> JsonObject:
        """Store ``obj`` as is (plus missing uid, resourceVersion…) at its object path, or in the collection
        ``path`` under its name. Not recorded as a call; watchers see it."""
        ref = _parse(path)
        stored = copy.deepcopy(obj)
        metadata = stored.setdefault("metadata", {})
        name = ref.name or metadata.get("name")
        if not name:
            raise ValueError(f"put({path!r}): no name in the path or the object")
        metadata["name"] = name
        if ref.namespace:
            metadata.setdefault("namespace", ref.namespace)
        object_path = ref.object_path(name)
        existed = object_path in self.objects
        metadata.setdefault("uid", self._new_uid())
        metadata.setdefault("creationTimestamp", self._timestamp())
        metadata.setdefault("generation", 1)
        metadata["resourceVersion"] = self._next_version()
        self.objects[object_path] = stored
        self._emit("MODIFIED" if existed else "ADDED", object_path, stored)
        return copy.deepcopy(stored)

    def remove(self, path: str) -> None:
        """Delete an object behind the code's back (another actor did it). Not recorded; watchers see it."""
        obj = self.objects.pop(path)
        self._emit("DELETED", path, obj)

    def stored(self, path: str) -> JsonObject | None:
        """A copy of the stored object, or None. Not recorded as a call."""
        obj = self.objects.get(path)
        return copy.deepcopy(obj) if obj is not None else None

    def collect_garbage(self) -> list[str]:
        """Delete objects whose every owner (``ownerReferences`` uid) is gone, as the garbage collector would."""
        alive = {obj["metadata"].get("uid") for obj in self.objects.values()}
        orphans = [
            path
            for path, obj in self.objects.items()
            if (owners := obj["metadata"].get("ownerReferences"))
            and not any(owner.get("uid") in alive for owner in owners)
        ]
        for path in orphans:
            self.remove(path)
        return orphans

    def count(self, method: str | None = None, path: str | None = None) -> int:
        """How many calls matched ``method`` (None: any) and ``path`` (a glob; None: any)."""
        return len(self.calls_to(method, path))

    def calls_to(self, method: str | None = None, path: str | None = None) -> list[Call]:
        return [
            call
            for call in self.calls
            if (method is None or call.method == method)
            and (path is None or fnmatch.fnmatchcase(call.path, path))
        ]

    def reset_calls(self) -> None:
        self.calls.clear()

    async def wait_until(self, predicate: Callable[[], object], within: float = 1.0, what: str = "") -> None:
        """Wait until ``predicate()`` holds; it is re-checked whenever a call starts or ends, or the store changes.

        Raises AssertionError after ``within`` seconds.
        """
        await self.changes.wait_until(predicate, within, what)

    async def wait_for_calls(
        self, count: int, method: str | None = None, path: str | None = None, within: float = 1.0
    ) -> None:
        """Wait until at least ``count`` calls matched ``method`` and ``path`` (a glob)."""
        await self.wait_until(
            lambda: self.count(method, path) >= count, within, f"{count} × {method or '*'} {path or '*'}"
        )

    # --- failure and latency injection ------------------------------------------------------------------------

    def fail(
        self, path: str, error: ErrorSource, *, method: str | None = None, times: int | None = 1
    ) -> None:
        """Make the next ``times`` matching calls (None: all) raise ``error`` (an exception or a factory)."""
        self._faults.append(_Fault(method, path, times, error=error))

    def delay(
        self, path: str, seconds: float, *, method: str | None = None, times: int | None = None
    ) -> None:
        """Make matching calls take ``seconds`` longer (real time)."""
        self._faults.append(_Fault(method, path, times, delay_seconds=seconds))

    def hold(self, path: str, *, method: str | None = None, times: int | None = None) -> asyncio.Event:
        """Make matching calls wait until the returned event is set (never set: they hang)."""
        gate = asyncio.Event()
        self._faults.append(_Fault(method, path, times, gate=gate))
        return gate

    def clear_faults(self) -> None:
        self._faults.clear()

    async def close_watches(self) -> None:
        """End every open watch stream, as the API server does on its timeout."""
        for _, _, queue in list(self._watchers):
            queue.put_nowait(None)
        await asyncio.sleep(0)

    # --- the API server's rules -----------------------------------------------------------------------------

    async def _apply_faults(self, method: str, path: str) -> None:
        await asyncio.sleep(0)  # a scheduling point, like real I/O
        for fault in [f for f in self._faults if f.matches(method, path)]:
            if fault.times is not None:
                fault.times -= 1
            if fault.delay_seconds:
                await asyncio.sleep(fault.delay_seconds)
            if fault.gate is not None:
                await fault.gate.wait()
            if fault.error is not None:
                raise fault.error if isinstance(fault.error, BaseException) else fault.error()

    def _serve(self, call: Call) -> JsonObject:
        ref = _parse(call.path)
        what = f"{call.method} {call.path}"
        if call.method == "GET" and ref.name is None:
            return self._list(ref, call.params or {})
        if call.method == "POST" and ref.name is None:
            return self._create(ref, call.body, what)
        if call.method == "POST" and ref.resource == "serviceaccounts" and ref.subresource == "token":
            return self._token(ref, call.body, what)
        if ref.name is None or ref.subresource not in (None, "status"):
            raise errors.InvalidRequestError(
                f"{what}: 405 not supported by FakeKube", code="MethodNotAllowed"
            )
        path = ref.object_path()
        current = self.objects.get(path)
        if current is None:
            raise errors.NotFoundError(f'{what}: 404 {ref.resource} "{ref.name}" not found')
        if call.method == "GET":
            return copy.deepcopy(current)
        if call.method == "DELETE":
            return self._delete(path, current, call.body or {}, what)
        if call.method == "PUT":
            updated = copy.deepcopy(call.body)
            self._check_version(current, updated, what)
        elif call.method == "PATCH":
            updated = self._patched(current, call, what)
        else:
            raise errors.InvalidRequestError(
                f"{what}: 405 not supported by FakeKube", code="MethodNotAllowed"
            )
        return self._update(path, current, updated, status_only=ref.subresource == "status", what=what)

    def _token(self, ref: _Ref, body: Any, what: str) -> JsonObject:
        """TokenRequest: a token naming its account, audiences and expiry (no signature: nothing verifies it)."""
        if ref.object_path() not in self.objects:
            raise errors.NotFoundError(f'{what}: 404 serviceaccounts "{ref.name}" not found')
        spec = (body or {}).get("spec", {})
        audiences = ",".join(spec.get("audiences", ()))
        token = f"token:{ref.namespace}:{ref.name}:{audiences}:{spec.get('expirationSeconds')}"
        return {"kind": "TokenRequest", "spec": spec, "status": {"token": token}}

    def _list(self, ref: _Ref, params: Mapping[str, str]) -> JsonObject:
        labels = _label_matcher(params.get("labelSelector", ""))
        fields = _field_matcher(params.get("fieldSelector", ""))
        items = [
            copy.deepcopy(obj)
            for path, obj in sorted(self.objects.items())
            if _in_collection(ref, path) and labels(obj) and fields(obj)
        ]
        return {
            "apiVersion": "v1",
            "kind": "List",
            "metadata": {"resourceVersion": str(self._serial)},
            "items": items,
        }

    def _create(self, ref: _Ref, body: Any, what: str) -> JsonObject:
        if not isinstance(body, dict):
            raise errors.InvalidRequestError(f"{what}: 400 the body must be an object", code="BadRequest")
        obj = copy.deepcopy(body)
        metadata = obj.setdefault("metadata", {})
        if ref.namespace and metadata.setdefault("namespace", ref.namespace) != ref.namespace:
            raise errors.InvalidRequestError(
                f"{what}: 400 namespace does not match the path", code="BadRequest"
            )
        name = metadata.get("name") or (
            f"{metadata['generateName']}{uuid.uuid4().hex[:5]}" if metadata.get("generateName") else None
        )
        if not name:
            raise errors.InvalidRequestError(f"{what}: 422 metadata.name: Required value", code="Invalid")
        path = ref.object_path(name)
        if path in self.objects:
            raise errors.ConflictError(f'{what}: 409 {ref.resource} "{name}" already exists')
        metadata.update(
            name=name,
            uid=self._new_uid(),
            resourceVersion=self._next_version(),
            creationTimestamp=self._timestamp(),
            generation=1,
        )
        self.objects[path] = obj
        self._emit("ADDED", path, obj)
        return copy.deepcopy(obj)

    def _patched(self, current: JsonObject, call: Call, what: str) -> JsonObject:
        kind = call.patch_type
        if kind == "json":
            return _json_patch(current, call.body, what)
        if not isinstance(call.body, dict):
            raise errors.InvalidRequestError(
                f"{what}: 400 a {kind} patch must be an object", code="BadRequest"
            )
        self._check_version(current, call.body, what)
        if kind == "merge":
            result: JsonObject = _merge_patch(current, call.body)
            return result
        if kind == "strategic":
            merged: JsonObject = _strategic_merge(current, call.body, self._merge_keys)
            return merged
        raise errors.InvalidRequestError(
            f"{what}: 415 unsupported patch type {call.content_type}", code="Invalid"
        )

    def _update(
        self, path: str, current: JsonObject, updated: Any, *, status_only: bool, what: str
    ) -> JsonObject:
        if not isinstance(updated, dict):
            raise errors.InvalidRequestError(f"{what}: 400 the body must be an object", code="BadRequest")
        old_meta = current["metadata"]
        new_meta = updated.setdefault("metadata", {})
        for key in ("name", "namespace"):
            if new_meta.get(key, old_meta.get(key)) != old_meta.get(key):
                raise errors.InvalidRequestError(f"{what}: 422 metadata.{key} is immutable", code="Invalid")
        if status_only:
            # Only status changes through the subresource.
            result = copy.deepcopy(current)
            if "status" in updated:
                result["status"] = updated["status"]
            else:
                result.pop("status", None)
        else:
            # Status changes only through the subresource.
            result = updated
            if "status" in current:
                result["status"] = copy.deepcopy(current["status"])
            else:
                result.pop("status", None)
        meta = result["metadata"]
        for key in ("name", "namespace", "uid", "creationTimestamp", "deletionTimestamp"):
            if key in old_meta:
                meta[key] = old_meta[key]
        generation = int(old_meta.get("generation", 1))
        meta["generation"] = generation + (1 if result.get("spec") != current.get("spec") else 0)
        meta["resourceVersion"] = self._next_version()
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            del self.objects[path]
            self._emit("DELETED", path, result)
        else:
            self.objects[path] = result
            self._emit("MODIFIED", path, result)
        return copy.deepcopy(result)

    def _delete(self, path: str, current: JsonObject, options: JsonObject, what: str) -> JsonObject:
        preconditions = options.get("preconditions") or {}
        for key in ("uid", "resourceVersion"):
            if key in preconditions and preconditions[key] != current["metadata"].get(key):
                raise errors.ConflictError(f"{what}: 409 precondition failed: {key} does not match")
        if current["metadata"].get("finalizers"):
            if not current["metadata"].get("deletionTimestamp"):
                current["metadata"]["deletionTimestamp"] = self._timestamp()
                current["metadata"]["resourceVersion"] = self._next_version()
                self._emit("MODIFIED", path, current)
            return copy.deepcopy(current)
        del self.objects[path]
        self._emit("DELETED", path, current)
        return copy.deepcopy(current)

    @staticmethod
    def _check_version(current: JsonObject, body: Any, what: str) -> None:
        wanted = (body.get("metadata") or {}).get("resourceVersion") if isinstance(body, dict) else None
        if wanted and wanted != current["metadata"].get("resourceVersion"):
            raise errors.ConflictError(
                f"{what}: 409 the object has been modified; please apply your changes to the latest version"
            )

    # --- bookkeeping ----------------------------------------------------------------------------------------

    def _next_version(self) -> str:
        self._serial += 1
        return str(self._serial)

    def _new_uid(self) -> str:
        self._serial += 1
        return str(uuid.UUID(int=self._serial))

    def _timestamp(self) -> str:
        return self._clock().astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _emit(self, kind: str, path: str, obj: JsonObject) -> None:
        self.changes.wake()
        for ref, params, queue in self._watchers:
            selected = _label_matcher(params.get("labelSelector", ""))(obj) and _field_matcher(
                params.get("fieldSelector", "")
            )(obj)
            if selected and _in_collection(ref, path):
                queue.put_nowait({"type": kind, "object": copy.deepcopy(obj)})


def _in_collection(ref: _Ref, path: str) -> bool:
    """Whether the object at ``path`` belongs to the collection ``ref`` (all namespaces when it names none)."""
    try:
        other = _parse(path)
    except errors.InvalidRequestError:
        return False
    return (
        other.prefix == ref.prefix
        and other.resource == ref.resource
        and (ref.namespace is None or other.namespace == ref.namespace)
    )


_LABEL_REQUIREMENT = re.compile(
    r"\s*(?P<not>!)?(?P<key>[\w./-]+)\s*"
    r"(?:(?P<op>==|=|!=)\s*(?P<value>[\w./-]*)|\s(?P<setop>in|notin)\s*\((?P<values>[^)]*)\))?\s*(?:,|$)"
)


def _label_matcher(selector: str) -> Callable[[JsonObject], bool]:
    """A label selector (``a=b,c!=d,e,!f,g in (h,i),j notin (k)``) as a predicate on objects."""
    requirements: list[tuple[str, str, frozenset[str]]] = []  # (key, operator, values)
    position = 0
    selector = selector.strip()
    while position < len(selector):
        match = _LABEL_REQUIREMENT.match(selector, position)
        if match is None or match.end() == position:
            raise errors.InvalidRequestError(f"400 unparsable label selector {selector!r}", code="BadRequest")
        position = match.end()
        if match["not"]:
            requirements.append((match["key"], "!exists", frozenset()))
        elif match["op"]:
            operator = "notin" if match["op"] == "!=" else "in"
            requirements.append((match["key"], operator, frozenset([match["value"]])))
        elif match["setop"]:
            values = frozenset(v.strip() for v in match["values"].split(",") if v.strip())
            requirements.append((match["key"], match["setop"], values))
        else:
            requirements.append((match["key"], "exists", frozenset()))

    def holds(labels: Mapping[str, str], key: str, operator: str, values: frozenset[str]) -> bool:
        if operator == "exists":
            return key in labels
        if operator == "!exists":
            return key not in labels
        if operator == "in":
            return key in labels and labels[key] in values
        return labels.get(key) not in values  # notin and != also match objects without the label

    def matches(obj: JsonObject) -> bool:
        labels = (obj.get("metadata") or {}).get("labels") or {}
        return all(holds(labels, *requirement) for requirement in requirements)

    return matches


def _field_matcher(selector: str) -> Callable[[JsonObject], bool]:
    """A field selector (``spec.nodeName=vn-1,status.phase!=Failed``) as a predicate on objects."""
    tests: list[tuple[list[str], bool, str]] = []
    for requirement in filter(None, (part.strip() for part in selector.split(","))):
        match = re.fullmatch(r"([\w.]+)\s*(==|=|!=)\s*(.*)", requirement)
        if match is None:
            raise errors.InvalidRequestError(f"400 unparsable field selector {selector!r}", code="BadRequest")
        tests.append((match[1].split("."), match[2] != "!=", match[3]))

    def value_at(obj: Any, field: list[str]) -> str:
        for part in field:
            obj = obj.get(part) if isinstance(obj, dict) else None
        return "" if obj is None else str(obj)

    return lambda obj: all((value_at(obj, field) == value) == equal for field, equal, value in tests)


def _merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge recursively, null removes, anything else (lists too) replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = _merge_patch(result.get(key), value)
    return result


def _strategic_merge(target: Any, patch: Any, merge_keys: Mapping[str, str | None]) -> Any:
    """Strategic merge patch: a merge patch in which the lists named in ``merge_keys`` merge item by item.

    Supports ``$patch: replace`` on an object and ``$patch: delete`` on a list item; other directives are ignored.
    """
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    if patch.get("$patch") == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if not k.startswith("$")}
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if key.startswith("$"):
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, list) and key in merge_keys:
            before = result.get(key)
            result[key] = _merge_list(
                before if isinstance(before, list) else [], value, merge_keys[key], merge_keys
            )
        elif isinstance(value, list):
            result[key] = copy.deepcopy(value)
        else:
            result[key] = _strategic_merge(result.get(key), value, merge_keys)
    return result


def _merge_list(
    current: list[Any], items: list[Any], key: str | None, merge_keys: Mapping[str, str | None]
) -> list[Any]:
    result = copy.deepcopy(current)
    for item in items:
        if key is None or not isinstance(item, dict) or key not in item:
            if item not in result:
                result.append(copy.deepcopy(item))
            continue
        index = next(
            (i for i, old in enumerate(result) if isinstance(old, dict) and old.get(key) == item[key]), None
        )
        if item.get("$patch") == "delete":
            if index is not None:
                del result[index]
        elif index is None:
            result.append(_strategic_merge({}, item, merge_keys))
        else:
            result[index] = _strategic_merge(result[index], item, merge_keys)
    return result


def _json_patch(target: JsonObject, operations: Any, what: str) -> JsonObject:
    """RFC 6902 JSON patch: ``add``, ``remove``, ``replace`` and ``test``."""
    if not isinstance(operations, list):
        raise errors.InvalidRequestError(f"{what}: 400 a JSON patch must be a list", code="BadRequest")
    document = copy.deepcopy(target)
    for operation in operations:
        op, pointer = operation.get("op"), str(operation.get("path", ""))
        tokens = [t.replace("~1", "/").replace("~0", "~") for t in pointer.split("/")[1:]]
        if not tokens:
            raise errors.InvalidRequestError(f"{what}: 422 cannot {op} the whole document", code="Invalid")
        parent: Any = document
        try:
            for token in tokens[:-1]:
                parent = parent[int(token)] if isinstance(parent, list) else parent[token]
            last = tokens[-1]
            if op == "test":
                actual = parent[int(last)] if isinstance(parent, list) else parent[last]
                if actual != operation.get("value"):
                    raise errors.InvalidRequestError(f"{what}: 422 test of {pointer} failed", code="Invalid")
            elif op == "remove":
                del parent[int(last) if isinstance(parent, list) else last]
            elif op == "replace":
                if isinstance(parent, list):
                    parent[int(last)] = copy.deepcopy(operation["value"])
                elif last not in parent:
                    raise KeyError(last)
                else:
                    parent[last] = copy.deepcopy(operation["value"])
            elif op == "add":
                value = copy.deepcopy(operation["value"])
                if isinstance(parent, list):
                    parent.insert(len(parent) if last == "-" else int(last), value)
                else:
                    parent[last] = value
            else:
                raise errors.InvalidRequestError(
                    f"{what}: 422 unsupported JSON patch op {op!r}", code="Invalid"
                )
        except (KeyError, IndexError, ValueError, TypeError) as err:
            raise errors.InvalidRequestError(
                f"{what}: 422 {op} {pointer}: no such path", code="Invalid"
            ) from err
    return document
