"""The kinds the embedded server serves: built-in core kinds plus every registered CRD.

A :class:`ResourceType` is everything the server needs to know about one kind to route, store,
validate and describe it. Built-ins are fixed; custom kinds appear when a
CustomResourceDefinition is created and vanish when it is deleted, just as on a real cluster.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from socialpub.embedded.schema import CompiledSchema

__all__ = ["CRD_TYPE", "LEASE_TYPE", "NAMESPACE_TYPE", "Registry", "ResourceType"]

_ALL_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class ResourceType:
    """One served kind at one group/version."""

    group: str
    """API group; ``""`` for the core group."""
    version: str
    plural: str
    singular: str
    kind: str
    namespaced: bool
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    has_status: bool = False
    """Whether the ``status`` subresource is enabled (status writes split from spec writes)."""
    schema: CompiledSchema | None = None
    raw_schema: Mapping[str, Any] | None = None
    printer_columns: tuple[Mapping[str, Any], ...] = ()
    verbs: tuple[str, ...] = _ALL_VERBS
    custom: bool = False
    field_labels: tuple[str, ...] = ("metadata.name", "metadata.namespace")
    """The field selector labels the kind supports (kube-apiserver's ``SelectableFields``)."""
    unconditional_update: bool = True
    """Whether a PUT may omit ``resourceVersion`` (false for custom kinds and Lease, as upstream)."""
    """True for kinds defined by a CRD (these answer 415 to strategic merge patch)."""
    storage_key: str = field(default="")

    def __post_init__(self) -> None:
        object.__setattr__(self, "storage_key", f"{self.group}/{self.plural}")

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def group_version(self) -> str:
        return self.api_version

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    @property
    def qualified(self) -> str:
        """``plural.group`` as kube-apiserver names a resource in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


def _core(
    plural: str,
    kind: str,
    *,
    namespaced: bool,
    short: tuple[str, ...] = (),
    status: bool = False,
    verbs: tuple[str, ...] = _ALL_VERBS,
    fields: tuple[str, ...] = (),
) -> ResourceType:
    return ResourceType(
        group="",
        version="v1",
        plural=plural,
        singular=kind.lower(),
        kind=kind,
        namespaced=namespaced,
        short_names=short,
        has_status=status,
        verbs=verbs,
        field_labels=("metadata.name", "metadata.namespace", *fields),
    )


NAMESPACE_TYPE = _core(
    "namespaces", "Namespace", namespaced=False, short=("ns",), status=True, fields=("status.phase",)
)
EVENT_FIELD_LABELS = (
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.name",
    "involvedObject.uid",
    "involvedObject.apiVersion",
    "involvedObject.resourceVersion",
    "involvedObject.fieldPath",
    "reason",
    "reportingComponent",
    "source",
    "type",
)
"""What kube-apiserver lets a core/v1 Event list or watch select on (kubectl describe uses the
``involvedObject.*`` ones to show an object's events)."""
CRD_TYPE = ResourceType(
    group="apiextensions.k8s.io",
    version="v1",
    plural="customresourcedefinitions",
    singular="customresourcedefinition",
    kind="CustomResourceDefinition",
    namespaced=False,
    short_names=("crd", "crds"),
    categories=("api-extensions",),
    has_status=True,
)
_MICRO_TIME = {"type": "string", "format": "date-time"}
_LEASE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "Lease defines a lease concept (coordination.k8s.io/v1).",
    "properties": {
        "spec": {
            "type": "object",
            "description": "The lease: who holds it, since when, for how long.",
            "properties": {
                "holderIdentity": {"type": "string"},
                "leaseDurationSeconds": {"type": "integer", "format": "int32", "minimum": 1},
                "acquireTime": _MICRO_TIME,
                "renewTime": _MICRO_TIME,
                "leaseTransitions": {"type": "integer", "format": "int32", "minimum": 0},
                "strategy": {"type": "string"},
                "preferredHolder": {"type": "string"},
            },
        }
    },
}
LEASE_TYPE = ResourceType(
    group="coordination.k8s.io",
    version="v1",
    plural="leases",
    singular="lease",
    kind="Lease",
    namespaced=True,
    # Lease is a typed built-in: its schema drops unknown fields and checks the field types and
    # bounds kube-apiserver's decoder and ValidateLeaseSpec check; values are stored as given.
    schema=CompiledSchema.compile(_LEASE_SCHEMA),
    raw_schema=_LEASE_SCHEMA,
    unconditional_update=False,
    printer_columns=(
        {
            "name": "Holder",
            "type": "string",
            "jsonPath": ".spec.holderIdentity",
            "description": "Who holds the lease.",
        },
        {
            "name": "Age",
            "type": "date",
            "jsonPath": ".metadata.creationTimestamp",
            "description": "CreationTimestamp is the time the object was created.",
        },
    ),
)
_BUILTINS = (
    NAMESPACE_TYPE,
    LEASE_TYPE,
    _core("events", "Event", namespaced=True, short=("ev",), fields=EVENT_FIELD_LABELS),
    _core("secrets", "Secret", namespaced=True, fields=("type",)),
    _core("configmaps", "ConfigMap", namespaced=True, short=("cm",)),
    CRD_TYPE,
)


def types_from_crd(crd: Mapping[str, Any]) -> list[ResourceType]:
    """Every served version of ``crd`` as a :class:`ResourceType`.

    Raises ``ValueError`` (from schema compilation) when a CEL rule does not compile, so that a
    broken CRD is refused at create time rather than failing every later write.
    """
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    types: list[ResourceType] = []
    for version in spec.get("versions") or []:
        if not version.get("served", True):
            continue
        raw = ((version.get("schema") or {}).get("openAPIV3Schema")) or {}
        subresources = version.get("subresources") or {}
        types.append(
            ResourceType(
                group=spec["group"],
                version=version["name"],
                plural=names["plural"],
                singular=names.get("singular") or names["kind"].lower(),
                kind=names["kind"],
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                has_status="status" in subresources,
                schema=CompiledSchema.compile(raw) if raw else None,
                raw_schema=raw,
                printer_columns=tuple(version.get("additionalPrinterColumns") or ()),
                custom=True,
                unconditional_update=False,
            )
        )
    return types


class Registry:
    """Lookup of served kinds by group/version/plural, rebuilt as CRDs come and go."""

    def __init__(self) -> None:
        self._by_path: dict[tuple[str, str, str], ResourceType] = {}
        self._crd_types: dict[str, list[ResourceType]] = {}
        for rt in _BUILTINS:
            self._by_path[(rt.group, rt.version, rt.plural)] = rt

    def lookup(self, group: str, version: str, plural: str) -> ResourceType | None:
        return self._by_path.get((group, version, plural))

    def by_storage_key(self, storage_key: str) -> ResourceType | None:
        for rt in self._by_path.values():
            if rt.storage_key == storage_key:
                return rt
        return None

    def register_crd(self, crd: Mapping[str, Any]) -> None:
        """Serve the kinds of ``crd`` (replacing what an earlier version of it served)."""
        name = crd["metadata"]["name"]
        types = types_from_crd(crd)
        self.unregister_crd(name)
        self._crd_types[name] = types
        for rt in types:
            self._by_path[(rt.group, rt.version, rt.plural)] = rt

    def unregister_crd(self, name: str) -> None:
        for rt in self._crd_types.pop(name, []):
            self._by_path.pop((rt.group, rt.version, rt.plural), None)

    def __iter__(self) -> Iterator[ResourceType]:
        return iter(list(self._by_path.values()))

    def groups(self) -> dict[str, list[str]]:
        """``{group: [versions…]}`` of the named (non-core) groups, for ``/apis``."""
        groups: dict[str, list[str]] = {}
        for rt in self._by_path.values():
            if rt.group:
                versions = groups.setdefault(rt.group, [])
                if rt.version not in versions:
                    versions.append(rt.version)
        return groups
