"""OpenAPI documents, enough for ``kubectl apply`` validation and ``kubectl explain``.

kubectl (1.27+) reads ``/openapi/v3``: an index of group-versions, then one document per
group-version. When the kind's PATCH operation advertises the ``fieldValidation`` parameter,
kubectl leaves validation to the server (which prunes and validates against the CRD schema);
``kubectl explain`` walks ``components.schemas`` found by ``x-kubernetes-group-version-kind``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from socialpub.embedded.registry import Registry, ResourceType

__all__ = ["v2_document", "v3_document", "v3_index"]

_OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta"
_OBJECT_META_SCHEMA: dict[str, Any] = {
    "description": "ObjectMeta is metadata that all persisted resources must have.",
    "type": "object",
    "properties": {
        "name": {"type": "string", "description": "Name must be unique within a namespace."},
        "generateName": {"type": "string", "description": "Prefix used to generate a unique name."},
        "namespace": {"type": "string", "description": "Namespace the object belongs to."},
        "labels": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "Map of string keys and values to organize and select objects.",
        },
        "annotations": {
            "type": "object",
            "additionalProperties": {"type": "string"},
            "description": "Unstructured key value map stored with a resource.",
        },
        "finalizers": {
            "type": "array",
            "items": {"type": "string"},
            "description": "Must be empty before the object is deleted from the registry.",
        },
        "ownerReferences": {
            "type": "array",
            "items": {"type": "object"},
            "description": "Objects depended by this object; garbage collection follows them.",
        },
        "uid": {"type": "string", "description": "Unique in time and space; set by the server."},
        "resourceVersion": {
            "type": "string",
            "description": "Opaque version used for optimistic concurrency.",
        },
        "generation": {
            "type": "integer",
            "format": "int64",
            "description": "A sequence number representing a specific generation of the desired state.",
        },
        "creationTimestamp": {"type": "string", "format": "date-time", "description": "When it was created."},
        "deletionTimestamp": {
            "type": "string",
            "format": "date-time",
            "description": "When deletion was requested; set by the server.",
        },
    },
}


def _schema_name(rt: ResourceType) -> str:
    group = ".".join(reversed(rt.group.split("."))) if rt.group else "io.k8s.api.core"
    return f"{group}.{rt.version}.{rt.kind}"


def _kind_schema(rt: ResourceType, ref_prefix: str) -> dict[str, Any]:
    if rt.raw_schema:
        schema: dict[str, Any] = json.loads(json.dumps(rt.raw_schema))
    else:
        schema = {
            "type": "object",
            "description": f"{rt.kind} (built-in)",
            "x-kubernetes-preserve-unknown-fields": True,
        }
    props = schema.setdefault("properties", {})
    props["apiVersion"] = {
        "type": "string",
        "description": "APIVersion defines the versioned schema of this representation of an object.",
    }
    props["kind"] = {
        "type": "string",
        "description": "Kind is a string value representing the REST resource this object represents.",
    }
    props["metadata"] = {
        "allOf": [{"$ref": f"{ref_prefix}{_OBJECT_META}"}],
        "description": "Standard object's metadata.",
    }
    schema["x-kubernetes-group-version-kind"] = [{"group": rt.group, "version": rt.version, "kind": rt.kind}]
    return schema


def _gvk(rt: ResourceType) -> dict[str, str]:
    return {"group": rt.group, "version": rt.version, "kind": rt.kind}


def _paths(rt: ResourceType, ref_prefix: str) -> dict[str, Any]:
    base = f"/apis/{rt.group}/{rt.version}" if rt.group else f"/api/{rt.version}"
    scope = f"{base}/namespaces/{{namespace}}/{rt.plural}" if rt.namespaced else f"{base}/{rt.plural}"
    ref = {"$ref": f"{ref_prefix}{_schema_name(rt)}"}
    field_validation = {
        "name": "fieldValidation",
        "in": "query",
        "description": "Ignore, Warn (default) or Strict handling of unknown fields.",
        "schema": {"type": "string", "uniqueItems": True},
    }
    ok = {"200": {"description": "OK", "content": {"application/json": {"schema": ref}}}}
    return {
        scope: {
            "get": {"x-kubernetes-group-version-kind": _gvk(rt), "responses": ok},
            "post": {
                "x-kubernetes-group-version-kind": _gvk(rt),
                "parameters": [field_validation],
                "responses": ok,
            },
        },
        f"{scope}/{{name}}": {
            "get": {"x-kubernetes-group-version-kind": _gvk(rt), "responses": ok},
            "put": {
                "x-kubernetes-group-version-kind": _gvk(rt),
                "parameters": [field_validation],
                "responses": ok,
            },
            "patch": {
                "x-kubernetes-group-version-kind": _gvk(rt),
                "parameters": [field_validation],
                "responses": ok,
            },
        },
    }


def _group_versions(registry: Registry) -> dict[str, list[ResourceType]]:
    by_gv: dict[str, list[ResourceType]] = {}
    for rt in registry:
        path = f"apis/{rt.group}/{rt.version}" if rt.group else f"api/{rt.version}"
        by_gv.setdefault(path, []).append(rt)
    return by_gv


def v3_document(registry: Registry, path: str) -> dict[str, Any] | None:
    """The OpenAPI 3.0 document of one group-version (``path`` like ``apis/G/V`` or ``api/v1``)."""
    kinds = _group_versions(registry).get(path)
    if not kinds:
        return None
    prefix = "#/components/schemas/"
    schemas: dict[str, Any] = {_OBJECT_META: _OBJECT_META_SCHEMA}
    paths: dict[str, Any] = {}
    for rt in sorted(kinds, key=lambda r: r.plural):
        schemas[_schema_name(rt)] = _kind_schema(rt, prefix)
        paths.update(_paths(rt, prefix))
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "components": {"schemas": schemas},
    }


def v3_index(registry: Registry) -> dict[str, Any]:
    """``/openapi/v3``: where each group-version's document is, with a content hash."""
    paths = {}
    for path in sorted(_group_versions(registry)):
        doc = v3_document(registry, path)
        digest = hashlib.sha256(json.dumps(doc, sort_keys=True).encode()).hexdigest()[:32].upper()
        paths[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": paths}


def v2_document(registry: Registry) -> dict[str, Any]:
    """A Swagger 2.0 document of every kind (for clients that still read ``/openapi/v2``)."""
    prefix = "#/definitions/"
    definitions: dict[str, Any] = {_OBJECT_META: _OBJECT_META_SCHEMA}
    paths: dict[str, Any] = {}
    for rt in registry:
        definitions[_schema_name(rt)] = _kind_schema(rt, prefix)
    return {
        "swagger": "2.0",
        "info": {"title": "Kubernetes", "version": "v1.32.0"},
        "paths": paths,
        "definitions": definitions,
    }
