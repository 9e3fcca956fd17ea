"""The rules of the emulated cluster: what each verb does to the stored objects.

This is the part of kube-apiserver that clients actually depend on, written once for every kind:
server-assigned metadata, ``generation`` and ``resourceVersion`` bookkeeping, optimistic
concurrency, the status subresource split, schema pruning/defaulting/validation for custom
kinds, finalizers and ``deletionTimestamp``, ownerReference garbage collection, namespace
termination, and CRDs that register their kinds when applied. The HTTP layer only parses and
renders; everything that decides an outcome lives here, as :class:`ApiError` or a result.

Deliberate approximations (documented in README):

* server-side apply merges the applied configuration into the object (lists atomic, nothing
  removed by omission) without ``managedFields`` or conflicts;
* ``Foreground`` deletion deletes dependents before the owner instead of via a finalizer;
* deleting a CRD removes its instances at once, finalizers notwithstanding;
* paged lists are served from the live state, not a snapshot at the first page's version.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import secrets
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from socialpub.embedded import patching
from socialpub.embedded.errors import ApiError
from socialpub.embedded.registry import CRD_TYPE, NAMESPACE_TYPE, Registry, ResourceType
from socialpub.embedded.selectors import FieldSelector, LabelSelector
from socialpub.embedded.store import Change, Store

__all__ = ["Cluster", "ListResult", "WriteOptions", "WriteResult"]

_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
_LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_GENERATE_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_DEFAULT_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
_MERGE = "application/merge-patch+json"
_JSON_PATCH = "application/json-patch+json"
_APPLY = "application/apply-patch+yaml"
_STRATEGIC = "application/strategic-merge-patch+json"


@dataclass
class WriteOptions:
    """Query options that shape a write (``dryRun``, ``fieldValidation``, ``fieldManager``, ``force``)."""

    dry_run: bool = False
    field_validation: str = "Warn"
    field_manager: str | None = None
    force: bool = False


@dataclass
class WriteResult:
    obj: dict[str, Any]
    created: bool = False
    warnings: list[str] = field(default_factory=list)


@dataclass
class ListResult:
    items: list[dict[str, Any]]
    resource_version: str
    continue_token: str | None = None
    remaining: int | None = None


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _clone(obj: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of a JSON object (stored objects are shared and never mutated in place)."""
    copy: dict[str, Any] = json.loads(json.dumps(obj))
    return copy


def _essence(obj: Mapping[str, Any]) -> dict[str, Any]:
    """What ``generation`` counts: everything except metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


class Cluster:
    """Every verb of the Kubernetes API over one :class:`Store` and :class:`Registry`."""

    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry

    async def bootstrap(self) -> None:
        """Serve the CRDs found in storage and make sure the standard namespaces exist."""
        for crd in self.store.items(CRD_TYPE.storage_key):
            try:
                self.registry.register_crd(crd)
            except (ValueError, KeyError, TypeError):
                continue  # stored before a stricter check; it stays visible but serves no kinds
        for name in _DEFAULT_NAMESPACES:
            if self.store.get(NAMESPACE_TYPE.storage_key, "", name) is None:
                await self.create(
                    NAMESPACE_TYPE,
                    "",
                    {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}},
                    WriteOptions(),
                )

    # Reads.

    def get(self, rt: ResourceType, namespace: str, name: str) -> dict[str, Any]:
        obj = self.store.get(rt.storage_key, namespace, name)
        if obj is None:
            raise ApiError.not_found(rt.plural, name, group=rt.group)
        return obj

    def list_objects(
        self,
        rt: ResourceType,
        namespace: str | None,
        *,
        labels: LabelSelector,
        fields: FieldSelector,
        limit: int | None = None,
        continue_token: str | None = None,
    ) -> ListResult:
        list_rv = self.store.resource_version
        start: tuple[str, str] | None = None
        if continue_token:
            list_rv, start = self._decode_continue(continue_token)
        name = fields.required_name
        if name is not None and namespace is not None:
            found = self.store.get(rt.storage_key, namespace, name)
            candidates: Iterable[dict[str, Any]] = [found] if found is not None else []
        else:
            candidates = self.store.items(rt.storage_key, namespace)
        items: list[dict[str, Any]] = []
        remaining = 0
        token: str | None = None
        for obj in candidates:
            meta = obj["metadata"]
            position = (meta.get("namespace", ""), meta["name"])
            if start is not None and position <= start:
                continue
            if not (labels.matches(meta.get("labels")) and fields.matches(obj)):
                continue
            if limit is not None and len(items) >= limit:
                remaining += 1
                continue
            items.append(obj)
        if limit is not None and remaining:
            last = items[-1]["metadata"]
            token = self._encode_continue(list_rv, (last.get("namespace", ""), last["name"]))
        return ListResult(items, str(list_rv), token, remaining if token else None)

    def _encode_continue(self, rv: int, position: tuple[str, str]) -> str:
        raw = json.dumps({"rv": rv, "start": list(position)}).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    def _decode_continue(self, token: str) -> tuple[int, tuple[str, str]]:
        try:
            raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
            data = json.loads(raw)
            rv, start = int(data["rv"]), (str(data["start"][0]), str(data["start"][1]))
        except (binascii.Error, ValueError, KeyError, TypeError, IndexError) as exc:
            raise ApiError.bad_request(f"invalid continue token: {token!r}") from exc
        if rv < self.store.history_floor:
            raise ApiError.expired(
                "The provided continue parameter is too old to display a consistent list result. "
                "You can start a new list without the continue parameter."
            )
        return rv, start

    # Creates.

    async def create(self, rt: ResourceType, namespace: str, body: Any, options: WriteOptions) -> WriteResult:
        obj = self._check_body(rt, body, namespace=namespace)
        meta = obj.setdefault("metadata", {})
        if rt.namespaced:
            self._require_namespace(namespace)
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            prefix = meta.get("generateName")
            if not prefix:
                raise self._invalid(
                    rt,
                    "",
                    [
                        (
                            "FieldValueRequired",
                            "Required value: name or generateName is required",
                            "metadata.name",
                        )
                    ],
                )
            meta["name"] = self._generate_name(rt, namespace, str(prefix))
        name = str(meta["name"])
        if self.store.get(rt.storage_key, namespace if rt.namespaced else "", name) is not None:
            raise ApiError.already_exists(rt.plural, name, group=rt.group)
        if rt.has_status:
            obj.pop("status", None)
        for system in (
            "uid",
            "resourceVersion",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "managedFields",
            "selfLink",
        ):
            meta.pop(system, None)
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = now_rfc3339()
        if rt.custom or rt is CRD_TYPE:
            meta["generation"] = 1
        warnings = self._conform(rt, obj, old=None, options=options)
        if rt is CRD_TYPE:
            self._prepare_crd(obj)
        if rt is NAMESPACE_TYPE:
            obj["status"] = {"phase": "Active"}
        if options.dry_run:
            return WriteResult(obj, created=True, warnings=warnings)
        meta["resourceVersion"] = str(self.store.next_resource_version())
        if rt is CRD_TYPE:
            self.registry.register_crd(obj)
        await self.store.commit([self._change(rt, "ADDED", obj, None)])
        return WriteResult(obj, created=True, warnings=warnings)

    def _generate_name(self, rt: ResourceType, namespace: str, prefix: str) -> str:
        prefix = prefix[:58]
        for _ in range(16):
            name = prefix + "".join(secrets.choice(_GENERATE_ALPHABET) for _ in range(5))
            if self.store.get(rt.storage_key, namespace if rt.namespaced else "", name) is None:
                return name
        raise ApiError(504, "ServerTimeout", f"failed to generate a unique name for prefix {prefix!r}")

    # Updates.

    async def replace(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        options: WriteOptions,
        *,
        subresource: str | None = None,
    ) -> WriteResult:
        old = self.get(rt, namespace, name)
        new = self._check_body(rt, body, namespace=namespace, name=name)
        given_rv = (new.get("metadata") or {}).get("resourceVersion")
        if not given_rv and not rt.unconditional_update:
            raise self._invalid(
                rt,
                name,
                [
                    (
                        "FieldValueInvalid",
                        "Invalid value: 0x0: must be specified for an update",
                        "metadata.resourceVersion",
                    )
                ],
            )
        if given_rv and str(given_rv) != old["metadata"]["resourceVersion"]:
            raise ApiError.conflict(rt.plural, name, group=rt.group)
        return await self._update(rt, old, new, options, subresource=subresource)

    async def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        patch: Any,
        content_type: str,
        options: WriteOptions,
        *,
        subresource: str | None = None,
    ) -> WriteResult:
        if content_type == _STRATEGIC and rt.custom:
            raise ApiError.unsupported_media_type()
        current = self.store.get(rt.storage_key, namespace if rt.namespaced else "", name)
        if content_type == _APPLY:
            if not options.field_manager:
                raise ApiError(
                    422,
                    "Invalid",
                    'PatchOptions.meta.k8s.io "" is invalid: fieldManager: '
                    "Required value: is required for apply patch",
                )
            if current is None:
                if not isinstance(patch, dict):
                    raise ApiError.bad_request("the apply configuration must be an object")
                applied = self._check_body(rt, patch, namespace=namespace, name=name)
                applied["metadata"]["name"] = name
                return await self.create(rt, namespace, applied, options)
        if current is None:
            raise ApiError.not_found(rt.plural, name, group=rt.group)
        try:
            if content_type in (_MERGE, _STRATEGIC):
                if not isinstance(patch, dict):
                    raise patching.PatchError("a merge patch must be a JSON object")
                candidate = patching.merge_patch(current, patch)
            elif content_type == _JSON_PATCH:
                candidate = patching.json_patch(current, patch)
            elif content_type == _APPLY:
                candidate = patching.apply_patch(current, patch)
            else:
                raise ApiError.unsupported_media_type()
        except patching.PatchNotApplicable as exc:
            raise ApiError(422, "Invalid", str(exc)) from exc
        except patching.PatchError as exc:
            raise ApiError.bad_request(str(exc)) from exc
        candidate = self._check_body(rt, candidate, namespace=namespace, name=name)
        given_rv = (candidate.get("metadata") or {}).get("resourceVersion")
        if given_rv is not None and str(given_rv) != current["metadata"]["resourceVersion"]:
            raise ApiError.conflict(rt.plural, name, group=rt.group)
        return await self._update(rt, current, candidate, options, subresource=subresource)

    async def _update(
        self,
        rt: ResourceType,
        old: dict[str, Any],
        new: dict[str, Any],
        options: WriteOptions,
        *,
        subresource: str | None,
    ) -> WriteResult:
        old_meta = old["metadata"]
        if subresource == "status":
            # Only status changes through /status; metadata and spec stay as stored.
            candidate = {k: v for k, v in old.items() if k != "status"}
            if "status" in new:
                candidate["status"] = new["status"]
            new = _clone(candidate)
        else:
            if rt.has_status:
                new.pop("status", None)
                if "status" in old:
                    new["status"] = _clone(old["status"])
            meta = new.setdefault("metadata", {})
            if not isinstance(meta, dict):
                raise self._invalid(
                    rt, old_meta["name"], [("FieldValueInvalid", "must be an object", "metadata")]
                )
            for system in (
                "uid",
                "creationTimestamp",
                "deletionTimestamp",
                "deletionGracePeriodSeconds",
                "generation",
                "namespace",
                "name",
            ):
                if system in old_meta:
                    meta[system] = old_meta[system]
                else:
                    meta.pop(system, None)
            meta.pop("managedFields", None)
            meta.pop("selfLink", None)
            if old_meta.get("deletionTimestamp"):
                added = set(meta.get("finalizers") or ()) - set(old_meta.get("finalizers") or ())
                if added:
                    raise self._invalid(
                        rt,
                        old_meta["name"],
                        [
                            (
                                "FieldValueForbidden",
                                "Forbidden: no new finalizers can be added if the object is being deleted, "
                                f"found new finalizers {sorted(added)!r}",
                                "metadata.finalizers",
                            )
                        ],
                    )
        meta = new["metadata"]
        meta["resourceVersion"] = old_meta["resourceVersion"]
        warnings = self._conform(rt, new, old=old, options=options)
        if rt is CRD_TYPE:
            self._prepare_crd(new)
        if "generation" in old_meta:
            meta["generation"] = old_meta["generation"] + (1 if _essence(new) != _essence(old) else 0)
        if new == old:
            return WriteResult(old, warnings=warnings)
        if options.dry_run:
            return WriteResult(new, warnings=warnings)
        if old_meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return WriteResult(await self._remove(rt, new), warnings=warnings)
        meta["resourceVersion"] = str(self.store.next_resource_version())
        if rt is CRD_TYPE:
            self.registry.register_crd(new)
        await self.store.commit([self._change(rt, "MODIFIED", new, old)])
        return WriteResult(new, warnings=warnings)

    # Deletes.

    async def delete(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        options: Mapping[str, Any],
        *,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        obj = self.get(rt, namespace, name)
        meta = obj["metadata"]
        preconditions = options.get("preconditions") or {}
        if not isinstance(preconditions, dict):
            raise ApiError.bad_request("preconditions must be an object")
        if preconditions.get("uid") and preconditions["uid"] != meta["uid"]:
            raise ApiError.conflict(
                rt.plural,
                name,
                group=rt.group,
                why=f"Precondition failed: UID in precondition: {preconditions['uid']}, "
                f"UID in object meta: {meta['uid']}",
            )
        if (
            preconditions.get("resourceVersion")
            and str(preconditions["resourceVersion"]) != meta["resourceVersion"]
        ):
            raise ApiError.conflict(
                rt.plural,
                name,
                group=rt.group,
                why="Precondition failed: ResourceVersion in precondition: "
                f"{preconditions['resourceVersion']}, ResourceVersion in object meta: "
                f"{meta['resourceVersion']}",
            )
        policy = options.get("propagationPolicy")
        if policy is None:
            policy = "Orphan" if options.get("orphanDependents") else "Background"
        if policy not in ("Background", "Foreground", "Orphan"):
            raise ApiError.bad_request(f"unsupported propagationPolicy {policy!r}")
        if dry_run:
            return obj
        if rt is NAMESPACE_TYPE:
            return await self._terminate_namespace(obj)
        if policy == "Orphan":
            await self._orphan_dependents(meta["uid"])
        elif policy == "Foreground":
            await self._collect_dependents(meta["uid"], exclude=None)
        if meta.get("finalizers"):
            if meta.get("deletionTimestamp"):
                return obj
            new = _clone(obj)
            new["metadata"]["deletionTimestamp"] = now_rfc3339()
            new["metadata"]["deletionGracePeriodSeconds"] = 0
            if "generation" in meta:
                new["metadata"]["generation"] = meta["generation"] + 1
            new["metadata"]["resourceVersion"] = str(self.store.next_resource_version())
            await self.store.commit([self._change(rt, "MODIFIED", new, obj)])
            return new
        return await self._remove(rt, obj)

    async def delete_collection(
        self,
        rt: ResourceType,
        namespace: str | None,
        *,
        labels: LabelSelector,
        fields: FieldSelector,
        options: Mapping[str, Any],
        dry_run: bool = False,
    ) -> list[dict[str, Any]]:
        deleted = []
        for obj in list(self.list_objects(rt, namespace, labels=labels, fields=fields).items):
            meta = obj["metadata"]
            try:
                deleted.append(
                    await self.delete(rt, meta.get("namespace", ""), meta["name"], options, dry_run=dry_run)
                )
            except ApiError as exc:
                if exc.code != 404:
                    raise
        return deleted

    async def _remove(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """Really remove ``obj``, then collect what depended on it."""
        meta = obj["metadata"]
        namespace = meta.get("namespace", "")
        current = self.store.get(rt.storage_key, namespace, meta["name"])
        if current is None:
            return obj
        final = _clone(obj)
        final["metadata"]["resourceVersion"] = str(self.store.next_resource_version())
        await self.store.commit([self._change(rt, "DELETED", final, current)])
        if rt is CRD_TYPE:
            await self._drop_crd_instances(final)
        await self._collect_dependents(meta["uid"], exclude=None)
        if namespace:
            await self._finish_namespace_if_empty(namespace)
        return final

    async def _collect_dependents(self, owner_uid: str, *, exclude: str | None) -> None:
        """Background garbage collection: delete dependents none of whose owners remain.

        A dependent that still has another owner stays, and loses its reference to this one (the
        garbage collector removes dangling ownerReferences).
        """
        for skey, dependent in self.store.dependents(owner_uid):
            dep_rt = self.registry.by_storage_key(skey)
            if dep_rt is None:
                continue
            owners = [r.get("uid") for r in dependent["metadata"].get("ownerReferences") or ()]
            if any(uid != owner_uid and self.store.get_by_uid(uid) is not None for uid in owners if uid):
                await self._drop_owner_reference(dep_rt, dependent, owner_uid)
                continue
            dmeta = dependent["metadata"]
            try:
                await self.delete(dep_rt, dmeta.get("namespace", ""), dmeta["name"], {})
            except ApiError as exc:
                if exc.code != 404:
                    raise

    async def _orphan_dependents(self, owner_uid: str) -> None:
        for skey, dependent in self.store.dependents(owner_uid):
            dep_rt = self.registry.by_storage_key(skey)
            if dep_rt is None:
                continue
            await self._drop_owner_reference(dep_rt, dependent, owner_uid)

    async def _drop_owner_reference(
        self, rt: ResourceType, dependent: dict[str, Any], owner_uid: str
    ) -> None:
        new = _clone(dependent)
        refs = [r for r in new["metadata"].get("ownerReferences") or () if r.get("uid") != owner_uid]
        if refs:
            new["metadata"]["ownerReferences"] = refs
        else:
            new["metadata"].pop("ownerReferences", None)
        new["metadata"]["resourceVersion"] = str(self.store.next_resource_version())
        await self.store.commit([self._change(rt, "MODIFIED", new, dependent)])

    async def _terminate_namespace(self, ns: dict[str, Any]) -> dict[str, Any]:
        name = ns["metadata"]["name"]
        if not ns["metadata"].get("deletionTimestamp"):
            new = _clone(ns)
            new["metadata"]["deletionTimestamp"] = now_rfc3339()
            new["status"] = {"phase": "Terminating"}
            new["metadata"]["resourceVersion"] = str(self.store.next_resource_version())
            await self.store.commit([self._change(NAMESPACE_TYPE, "MODIFIED", new, ns)])
            ns = new
        for skey, obj in self.store.namespaced_objects(name):
            rt = self.registry.by_storage_key(skey)
            if rt is not None:
                try:
                    await self.delete(rt, name, obj["metadata"]["name"], {})
                except ApiError as exc:
                    if exc.code != 404:
                        raise
        await self._finish_namespace_if_empty(name)
        return self.store.get(NAMESPACE_TYPE.storage_key, "", name) or ns

    async def _finish_namespace_if_empty(self, namespace: str) -> None:
        ns = self.store.get(NAMESPACE_TYPE.storage_key, "", namespace)
        if ns is None or not ns["metadata"].get("deletionTimestamp"):
            return
        if self.store.namespace_is_empty(namespace):
            final = _clone(ns)
            final["metadata"]["resourceVersion"] = str(self.store.next_resource_version())
            await self.store.commit([self._change(NAMESPACE_TYPE, "DELETED", final, ns)])

    async def _drop_crd_instances(self, crd: dict[str, Any]) -> None:
        spec = crd.get("spec") or {}
        skey = f"{spec.get('group', '')}/{(spec.get('names') or {}).get('plural', '')}"
        changes = []
        for obj in list(self.store.items(skey)):
            final = _clone(obj)
            final["metadata"]["resourceVersion"] = str(self.store.next_resource_version())
            changes.append(
                Change(
                    int(final["metadata"]["resourceVersion"]),
                    skey,
                    obj["metadata"].get("namespace", ""),
                    obj["metadata"]["name"],
                    "DELETED",
                    final,
                    obj,
                )
            )
        self.registry.unregister_crd(crd["metadata"]["name"])
        if changes:
            await self.store.commit(changes)

    # Checks shared by every write.

    def _check_body(
        self, rt: ResourceType, body: Any, *, namespace: str, name: str | None = None
    ) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ApiError.bad_request("the request body must be a JSON or YAML object")
        obj: dict[str, Any] = _clone(body)
        if not rt.custom:
            # kube-apiserver's typed decoder defaults a missing kind/apiVersion from the URL (the
            # kubernetes client omits them); custom kinds decode as unstructured and need both.
            obj["kind"] = obj.get("kind") or rt.kind
            obj["apiVersion"] = obj.get("apiVersion") or rt.api_version
        kind = obj.get("kind")
        api_version = obj.get("apiVersion")
        if not kind:
            raise ApiError.bad_request("Object 'Kind' is missing in the request body")
        if not api_version:
            raise ApiError.bad_request("Object 'apiVersion' is missing in the request body")
        if kind != rt.kind or api_version != rt.api_version:
            raise ApiError.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({rt.api_version})"
                if kind == rt.kind
                else f"the kind in the data ({kind}) does not match the expected kind ({rt.kind})"
            )
        if not rt.custom:
            _decode_string_maps(rt, obj)
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise self._invalid(
                rt, name or "", [("FieldValueInvalid", "Invalid value: must be an object", "metadata")]
            )
        if name is not None and meta.get("name", name) != name:
            raise ApiError.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        if rt.namespaced and meta.get("namespace") not in (None, "", namespace):
            raise ApiError.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        return obj

    def _conform(
        self, rt: ResourceType, obj: dict[str, Any], *, old: dict[str, Any] | None, options: WriteOptions
    ) -> list[str]:
        """Validate metadata, then prune, default and validate against the kind's schema.

        Returns the warnings to send (unknown fields under ``fieldValidation=Warn``).
        """
        meta = obj["metadata"]
        name = str(meta.get("name") or "")
        causes = self._metadata_causes(rt, meta)
        warnings: list[str] = []
        if rt.group == "" and rt.kind == "Secret" and not obj.get("type"):
            obj["type"] = "Opaque"  # SetDefaults_Secret
        if rt.schema is not None:
            pruned = rt.schema.prune(obj)
            if pruned and options.field_validation == "Strict":
                joined = ", ".join(f'unknown field "{p}"' for p in pruned)
                raise ApiError.bad_request(f"strict decoding error: {joined}")
            if options.field_validation == "Warn":
                warnings = [f'unknown field "{p}"' for p in pruned]
            rt.schema.default(obj)
            causes += [(c.reason, c.message, c.field) for c in rt.schema.validate(obj, old=old)]
        if causes:
            raise self._invalid(rt, name, causes)
        return warnings

    def _metadata_causes(self, rt: ResourceType, meta: dict[str, Any]) -> list[tuple[str, str, str]]:
        causes: list[tuple[str, str, str]] = []
        name = meta.get("name")
        pattern, limit = (_DNS_LABEL, 63) if rt is NAMESPACE_TYPE else (_DNS_SUBDOMAIN, 253)
        if not isinstance(name, str) or len(name) > limit or not pattern.match(name):
            causes.append(
                (
                    "FieldValueInvalid",
                    f"Invalid value: {json.dumps(name)}: a lowercase RFC 1123 "
                    f"{'label' if rt is NAMESPACE_TYPE else 'subdomain'} must consist of lower case "
                    "alphanumeric characters, '-' or '.', and must start and end with an alphanumeric "
                    "character",
                    "metadata.name",
                )
            )
        for field_name in ("labels", "annotations"):
            values = meta.get(field_name)
            if values is None:
                continue
            if not isinstance(values, dict) or not all(isinstance(v, str) for v in values.values()):
                causes.append(
                    ("FieldValueInvalid", "Invalid value: must be a map of strings", f"metadata.{field_name}")
                )
                continue
            for key, value in values.items():
                if not _qualified_name_ok(key):
                    causes.append(
                        (
                            "FieldValueInvalid",
                            f'Invalid value: "{key}": name part must consist of '
                            "alphanumeric characters, '-', '_' or '.'",
                            f"metadata.{field_name}",
                        )
                    )
                elif field_name == "labels" and value and (len(value) > 63 or not _LABEL_NAME.match(value)):
                    causes.append(
                        (
                            "FieldValueInvalid",
                            f'Invalid value: "{value}": a valid label must be an '
                            "empty string or consist of alphanumeric characters, '-', '_' or '.'",
                            f"metadata.labels.{key}",
                        )
                    )
        finalizers = meta.get("finalizers")
        if finalizers is not None and (
            not isinstance(finalizers, list)
            or not all(isinstance(f, str) and _qualified_name_ok(f) for f in finalizers)
        ):
            causes.append(
                (
                    "FieldValueInvalid",
                    "Invalid value: finalizers must be qualified names",
                    "metadata.finalizers",
                )
            )
        refs = meta.get("ownerReferences")
        if refs is not None:
            if not isinstance(refs, list):
                causes.append(
                    ("FieldValueInvalid", "Invalid value: must be a list", "metadata.ownerReferences")
                )
            else:
                for i, ref in enumerate(refs):
                    missing = [
                        k
                        for k in ("apiVersion", "kind", "name", "uid")
                        if not isinstance(ref, dict) or not ref.get(k)
                    ]
                    for k in missing:
                        causes.append(
                            ("FieldValueRequired", "Required value", f"metadata.ownerReferences[{i}].{k}")
                        )
        return causes

    def _prepare_crd(self, crd: dict[str, Any]) -> None:
        """Check a CRD the way the apiextensions server does, and mark it established."""
        spec = crd.get("spec")
        name = crd["metadata"].get("name", "")
        causes: list[tuple[str, str, str]] = []
        if not isinstance(spec, dict):
            raise self._invalid(CRD_TYPE, name, [("FieldValueRequired", "Required value", "spec")])
        names: dict[str, Any] = spec["names"] if isinstance(spec.get("names"), dict) else {}
        for key in ("plural", "kind"):
            if not names.get(key):
                causes.append(("FieldValueRequired", "Required value", f"spec.names.{key}"))
        if not spec.get("group"):
            causes.append(("FieldValueRequired", "Required value", "spec.group"))
        if spec.get("scope") not in ("Namespaced", "Cluster"):
            causes.append(
                (
                    "FieldValueNotSupported",
                    'Unsupported value: supported values: "Cluster", "Namespaced"',
                    "spec.scope",
                )
            )
        versions: list[Any] = spec["versions"] if isinstance(spec.get("versions"), list) else []
        if not versions:
            causes.append(
                (
                    "FieldValueRequired",
                    "Required value: must have exactly one version marked as storage version",
                    "spec.versions",
                )
            )
        for i, version in enumerate(versions):
            columns = version.get("additionalPrinterColumns") if isinstance(version, dict) else None
            if columns is not None and not (
                isinstance(columns, list)
                and all(
                    isinstance(c, dict)
                    and isinstance(c.get("name"), str)
                    and isinstance(c.get("jsonPath"), str)
                    for c in columns
                )
            ):
                causes.append(
                    (
                        "FieldValueInvalid",
                        "Invalid value: must be a list of columns with a name and a jsonPath",
                        f"spec.versions[{i}].additionalPrinterColumns",
                    )
                )
        if not causes and name != f"{names['plural']}.{spec['group']}":
            causes.append(
                (
                    "FieldValueInvalid",
                    f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group',
                    "metadata.name",
                )
            )
        if not causes:
            try:
                from socialpub.embedded.registry import types_from_crd

                types_from_crd(crd)
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                causes.append(("FieldValueInvalid", f"Invalid value: {exc}", "spec.versions"))
        if causes:
            raise self._invalid(CRD_TYPE, name, causes)
        now = now_rfc3339()
        accepted = dict(names)
        accepted.setdefault("singular", names["kind"].lower())
        accepted.setdefault("listKind", f"{names['kind']}List")
        crd["status"] = {
            "acceptedNames": accepted,
            "storedVersions": [v["name"] for v in versions if isinstance(v, dict) and v.get("storage")],
            "conditions": [
                {
                    "type": "NamesAccepted",
                    "status": "True",
                    "reason": "NoConflicts",
                    "message": "no conflicts found",
                    "lastTransitionTime": now,
                },
                {
                    "type": "Established",
                    "status": "True",
                    "reason": "InitialNamesAccepted",
                    "message": "the initial names have been accepted",
                    "lastTransitionTime": now,
                },
            ],
        }

    def _require_namespace(self, namespace: str) -> None:
        ns = self.store.get(NAMESPACE_TYPE.storage_key, "", namespace)
        if ns is None:
            raise ApiError.not_found("namespaces", namespace)
        if ns["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                "Forbidden",
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )

    def _invalid(self, rt: ResourceType, name: str, causes: list[tuple[str, str, str]]) -> ApiError:
        return ApiError.invalid(rt.kind, rt.group, name, causes)

    def _change(self, rt: ResourceType, kind: str, obj: dict[str, Any], old: dict[str, Any] | None) -> Change:
        meta = obj["metadata"]
        return Change(
            rv=int(meta["resourceVersion"]),
            storage_key=rt.storage_key,
            namespace=meta.get("namespace", "") if rt.namespaced else "",
            name=meta["name"],
            type=kind,
            obj=obj,
            old=old,
        )


_STRING_MAPS = {"ConfigMap": ("data", "binaryData"), "Secret": ("data", "stringData")}
_BASE64_MAPS = {"ConfigMap": ("binaryData",), "Secret": ("data",)}


def _decode_string_maps(rt: ResourceType, obj: dict[str, Any]) -> None:
    """What kube-apiserver's typed decoding does to ConfigMap and Secret payloads.

    Their maps hold strings (``[]byte`` as base64 for Secret ``data`` and ConfigMap
    ``binaryData``), anything else is a 400; a Secret's write-only ``stringData`` is folded into
    ``data`` and never stored.
    """
    if rt.group:
        return
    undecodable = f'{rt.kind} in version "{rt.version}" cannot be handled as a {rt.kind}'
    for name in _STRING_MAPS.get(rt.kind, ()):
        value = obj.get(name)
        if value is None:
            continue
        if not isinstance(value, dict) or not all(isinstance(v, str | None) for v in value.values()):
            raise ApiError.bad_request(f"{undecodable}: {name} must be a map of strings")
        obj[name] = {k: v or "" for k, v in value.items()}
    for name in _BASE64_MAPS.get(rt.kind, ()):
        for value in (obj.get(name) or {}).values():
            try:
                base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise ApiError.bad_request(f"{undecodable}: illegal base64 data in {name}: {exc}") from exc
    string_data = obj.pop("stringData", None) if rt.kind == "Secret" else None
    if string_data:
        data = obj.get("data") or {}
        data.update(
            {k: base64.b64encode(v.encode(errors="replace")).decode() for k, v in string_data.items()}
        )
        obj["data"] = data


def _qualified_name_ok(key: str) -> bool:
    prefix, _, name = key.rpartition("/")
    if prefix and (len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        return False
    return 0 < len(name) <= 63 and bool(_LABEL_NAME.match(name))
