"""Tests for socialpub.embedded.schema: pruning, defaulting and validation like kube-apiserver."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import yaml

from socialpub.embedded.schema import Cause, CompiledSchema, SchemaError, status_message

ROOT = Path(__file__).resolve().parents[2]

INVALID = "FieldValueInvalid"
TYPE_INVALID = "FieldValueTypeInvalid"
REQUIRED = "FieldValueRequired"
NOT_SUPPORTED = "FieldValueNotSupported"
TOO_LONG = "FieldValueTooLong"
TOO_MANY = "FieldValueTooMany"
DUPLICATE = "FieldValueDuplicate"
FORBIDDEN = "FieldValueForbidden"

CEL_SKIPPED = Cause(
    INVALID,
    "Invalid value: null: some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation",
    "<nil>",
)


def crd_schema(spec: dict[str, Any], **root: Any) -> dict[str, Any]:
    """A root openAPIV3Schema around a spec schema, as CRDs usually write it."""
    return {
        "type": "object",
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
        **root,
    }


def obj(spec: Any = None, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": "social.softsolz.uk/v1alpha1",
        "kind": "SocialPost",
        "metadata": {"name": "p1", "namespace": "default"},
    }
    if spec is not None:
        body["spec"] = spec
    body.update(extra)
    return body


def spec_with(field: dict[str, Any], **spec_extra: Any) -> CompiledSchema:
    """A schema whose spec has the single property ``f``."""
    return CompiledSchema.compile(crd_schema({"type": "object", "properties": {"f": field}, **spec_extra}))


def validate_f(field: dict[str, Any], value: Any) -> list[Cause]:
    return spec_with(field).validate(obj({"f": value}))


# ---------------------------------------------------------------------------------------------
# Structural value validation, one keyword at a time.
# ---------------------------------------------------------------------------------------------

KEYWORD_CASES: list[tuple[str, dict[str, Any], Any, list[Cause]]] = [
    # type
    ("string ok", {"type": "string"}, "x", []),
    (
        "string given int",
        {"type": "string"},
        5,
        [
            Cause(
                TYPE_INVALID,
                'Invalid value: "integer": spec.f in body must be of type string: "integer"',
                "spec.f",
            )
        ],
    ),
    (
        "array given string",
        {"type": "array", "items": {"type": "string"}},
        "string",
        [
            Cause(
                TYPE_INVALID,
                'Invalid value: "string": spec.f in body must be of type array: "string"',
                "spec.f",
            )
        ],
    ),
    ("number accepts int", {"type": "number"}, 3, []),
    ("integer accepts integral float", {"type": "integer"}, 3.0, []),
    (
        "integer rejects fraction",
        {"type": "integer"},
        1.5,
        [
            Cause(
                TYPE_INVALID,
                'Invalid value: "number": spec.f in body must be of type integer: "number"',
                "spec.f",
            )
        ],
    ),
    (
        "boolean given string",
        {"type": "boolean"},
        "true",
        [
            Cause(
                TYPE_INVALID,
                'Invalid value: "string": spec.f in body must be of type boolean: "string"',
                "spec.f",
            )
        ],
    ),
    (
        "integer given bool",
        {"type": "integer"},
        True,
        [
            Cause(
                TYPE_INVALID,
                'Invalid value: "boolean": spec.f in body must be of type integer: "boolean"',
                "spec.f",
            )
        ],
    ),
    (
        "object given list",
        {"type": "object"},
        [1],
        [
            Cause(
                TYPE_INVALID,
                'Invalid value: "array": spec.f in body must be of type object: "array"',
                "spec.f",
            )
        ],
    ),
    (
        "no cascade below a type mismatch",
        {"type": "object", "required": ["a"], "properties": {"a": {"type": "string"}}, "maxProperties": 0},
        "oops",
        [
            Cause(
                TYPE_INVALID,
                'Invalid value: "string": spec.f in body must be of type object: "string"',
                "spec.f",
            )
        ],
    ),
    ("nullable null", {"type": "string", "nullable": True}, None, []),
    (
        "null item in a non-nullable list",
        {"type": "array", "items": {"type": "string"}},
        ["a", None],
        [
            Cause(
                TYPE_INVALID,
                'Invalid value: "null": spec.f[1] in body must be of type string: "null"',
                "spec.f[1]",
            )
        ],
    ),
    ("int-or-string int", {"x-kubernetes-int-or-string": True}, 5, []),
    ("int-or-string string", {"x-kubernetes-int-or-string": True}, "50%", []),
    (
        "int-or-string bool",
        {"x-kubernetes-int-or-string": True},
        True,
        [
            Cause(
                TYPE_INVALID,
                'Invalid value: "boolean": spec.f in body must be of type integer,string: "boolean"',
                "spec.f",
            )
        ],
    ),
    (
        "format mismatch on a non-string reports the format (kube-openapi quirk)",
        {"type": "string", "format": "date-time"},
        5,
        [
            Cause(
                TYPE_INVALID,
                'Invalid value: "int64": spec.f in body must be of type date-time: "int64"',
                "spec.f",
            )
        ],
    ),
    # enum
    ("enum ok", {"type": "string", "enum": ["a", "b"]}, "b", []),
    (
        "enum string",
        {"type": "string", "enum": ["a", "b"]},
        "x",
        [Cause(NOT_SUPPORTED, 'Unsupported value: "x": supported values: "a", "b"', "spec.f")],
    ),
    (
        "enum integers",
        {"type": "integer", "enum": [1, 2]},
        3,
        [Cause(NOT_SUPPORTED, 'Unsupported value: 3: supported values: "1", "2"', "spec.f")],
    ),
    ("enum int matches float", {"type": "number", "enum": [1.0, 2.5]}, 1, []),
    # minLength / maxLength count characters, not bytes
    ("maxLength counts characters", {"type": "string", "maxLength": 3}, "h\u00e9\u00e9", []),
    (
        "maxLength",
        {"type": "string", "maxLength": 200},
        "x" * 201,
        [Cause(TOO_LONG, "Too long: may not be more than 200 bytes", "spec.f")],
    ),
    (
        "maxLength 1",
        {"type": "string", "maxLength": 1},
        "ab",
        [Cause(TOO_LONG, "Too long: may not be more than 1 byte", "spec.f")],
    ),
    (
        "minLength",
        {"type": "string", "minLength": 2},
        "a",
        [Cause(INVALID, 'Invalid value: "a": spec.f in body should be at least 2 chars long', "spec.f")],
    ),
    (
        "maxLength wins over pattern (first string failure only)",
        {"type": "string", "maxLength": 2, "pattern": "^[a-z]+$"},
        "ABC",
        [Cause(TOO_LONG, "Too long: may not be more than 2 bytes", "spec.f")],
    ),
    # pattern: RE2 syntax, unanchored search
    ("pattern unanchored", {"type": "string", "pattern": "b"}, "abc", []),
    (
        "pattern anchored",
        {"type": "string", "pattern": "^[a-z]+$"},
        "ab1",
        [Cause(INVALID, "Invalid value: \"ab1\": spec.f in body should match '^[a-z]+$'", "spec.f")],
    ),
    (
        "pattern $ does not match before a trailing newline",
        {"type": "string", "pattern": "^[a-z]+$"},
        "abc\n",
        [Cause(INVALID, "Invalid value: \"abc\\n\": spec.f in body should match '^[a-z]+$'", "spec.f")],
    ),
    ("pattern \\z", {"type": "string", "pattern": "^a\\z"}, "a", []),
    # format
    ("date-time Z", {"type": "string", "format": "date-time"}, "2024-01-01T10:00:00Z", []),
    (
        "date-time offset+fraction",
        {"type": "string", "format": "date-time"},
        "2024-01-01t10:00:00.123+02:00",
        [],
    ),
    (
        "date-time garbage",
        {"type": "string", "format": "date-time"},
        "yesterday",
        [
            Cause(
                TYPE_INVALID,
                'Invalid value: "yesterday": spec.f in body must be of type date-time: "yesterday"',
                "spec.f",
            )
        ],
    ),
    (
        "date-time impossible date",
        {"type": "string", "format": "date-time"},
        "2024-02-30T00:00:00Z",
        [
            Cause(
                TYPE_INVALID,
                'Invalid value: "2024-02-30T00:00:00Z": spec.f in body must be of type date-time: '
                '"2024-02-30T00:00:00Z"',
                "spec.f",
            )
        ],
    ),
    ("date", {"type": "string", "format": "date"}, "2024-02-29", []),
    (
        "date invalid",
        {"type": "string", "format": "date"},
        "2023-02-29",
        [
            Cause(
                TYPE_INVALID,
                'Invalid value: "2023-02-29": spec.f in body must be of type date: "2023-02-29"',
                "spec.f",
            )
        ],
    ),
    ("uuid", {"type": "string", "format": "uuid"}, "0F8FAD5B-D9CB-469F-A165-70867728950E", []),
    (
        "byte",
        {"type": "string", "format": "byte"},
        "not base64!",
        [
            Cause(
                TYPE_INVALID,
                'Invalid value: "not base64!": spec.f in body must be of type byte: "not base64!"',
                "spec.f",
            )
        ],
    ),
    ("unknown format ignored", {"type": "string", "format": "social-handle"}, "anything", []),
    ("int32 format has no range check in kube", {"type": "integer", "format": "int32"}, 2**40, []),
    ("int64 format", {"type": "integer", "format": "int64"}, 2**40, []),
    (
        "int32 format still type-checks",
        {"type": "integer", "format": "int32"},
        "7",
        [
            Cause(
                TYPE_INVALID,
                'Invalid value: "string": spec.f in body must be of type integer: "string"',
                "spec.f",
            )
        ],
    ),
    # numeric bounds
    (
        "minimum",
        {"type": "integer", "minimum": 1},
        0,
        [Cause(INVALID, "Invalid value: 0: spec.f in body should be greater than or equal to 1", "spec.f")],
    ),
    (
        "exclusiveMinimum",
        {"type": "integer", "minimum": 1, "exclusiveMinimum": True},
        1,
        [Cause(INVALID, "Invalid value: 1: spec.f in body should be greater than 1", "spec.f")],
    ),
    (
        "maximum",
        {"type": "integer", "maximum": 10},
        11,
        [Cause(INVALID, "Invalid value: 11: spec.f in body should be less than or equal to 10", "spec.f")],
    ),
    (
        "exclusiveMaximum",
        {"type": "number", "maximum": 10, "exclusiveMaximum": True},
        10.0,
        [Cause(INVALID, "Invalid value: 10: spec.f in body should be less than 10", "spec.f")],
    ),
    (
        "float value, go float formatting",
        {"type": "number", "maximum": 1000000},
        2.5e7,
        [
            Cause(
                INVALID,
                "Invalid value: 2.5e+07: spec.f in body should be less than or equal to 1e+06",
                "spec.f",
            )
        ],
    ),
    (
        "multipleOf int",
        {"type": "integer", "multipleOf": 5},
        7,
        [Cause(INVALID, "Invalid value: 7: spec.f in body should be a multiple of 5", "spec.f")],
    ),
    ("multipleOf float ok", {"type": "number", "multipleOf": 0.1}, 0.3, []),
    (
        "multipleOf float",
        {"type": "number", "multipleOf": 0.1},
        0.35,
        [Cause(INVALID, "Invalid value: 0.35: spec.f in body should be a multiple of 0.1", "spec.f")],
    ),
    (
        "multipleOf and maximum are both reported",
        {"type": "integer", "multipleOf": 2, "maximum": 4},
        5,
        [
            Cause(INVALID, "Invalid value: 5: spec.f in body should be a multiple of 2", "spec.f"),
            Cause(INVALID, "Invalid value: 5: spec.f in body should be less than or equal to 4", "spec.f"),
        ],
    ),
    # arrays
    (
        "maxItems",
        {"type": "array", "maxItems": 10, "items": {"type": "integer"}},
        list(range(11)),
        [Cause(TOO_MANY, "Too many: 11: must have at most 10 items", "spec.f")],
    ),
    (
        "maxItems 1",
        {"type": "array", "maxItems": 1, "items": {"type": "integer"}},
        [1, 2],
        [Cause(TOO_MANY, "Too many: 2: must have at most 1 item", "spec.f")],
    ),
    (
        "minItems",
        {"type": "array", "minItems": 1, "items": {"type": "integer"}},
        [],
        [Cause(INVALID, "Invalid value: 0: spec.f in body should have at least 1 items", "spec.f")],
    ),
    (
        "uniqueItems",
        {
            "type": "array",
            "uniqueItems": True,
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
        [{"a": 1}, {"a": 1}],
        [Cause(INVALID, 'Invalid value: "": spec.f in body shouldn\'t contain duplicates', "spec.f")],
    ),
    (
        "uniqueItems: 1 and 1.0 differ (reflect.DeepEqual)",
        {"type": "array", "uniqueItems": True, "items": {"type": "number"}},
        [1, 1.0],
        [],
    ),
    # objects
    (
        "maxProperties",
        {"type": "object", "maxProperties": 1, "additionalProperties": {"type": "string"}},
        {"a": "1", "b": "2"},
        [Cause(TOO_MANY, "Too many: 2: must have at most 1 item", "spec.f")],
    ),
    (
        "minProperties",
        {"type": "object", "minProperties": 2, "additionalProperties": {"type": "string"}},
        {"a": "1"},
        [Cause(INVALID, "Invalid value: 2: spec.f in body should have at least 2 properties", "spec.f")],
    ),
    (
        "additionalProperties values are validated",
        {"type": "object", "additionalProperties": {"type": "integer"}},
        {"a": 1, "b": "2"},
        [
            Cause(
                TYPE_INVALID,
                'Invalid value: "string": spec.f.b in body must be of type integer: "string"',
                "spec.f.b",
            )
        ],
    ),
    (
        "required",
        {
            "type": "object",
            "required": ["a", "b"],
            "properties": {"a": {"type": "string"}, "b": {"type": "string"}},
        },
        {"a": "x"},
        [Cause(REQUIRED, "Required value", "spec.f.b")],
    ),
    # list types
    (
        "list-type set",
        {"type": "array", "x-kubernetes-list-type": "set", "items": {"type": "string"}},
        ["a", "b", "a", "a", "b"],
        [
            Cause(DUPLICATE, 'Duplicate value: "a"', "spec.f[2]"),
            Cause(DUPLICATE, 'Duplicate value: "b"', "spec.f[4]"),
        ],
    ),
    (
        "list-type map",
        {
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["type"],
            "items": {
                "type": "object",
                "properties": {"type": {"type": "string"}, "status": {"type": "string"}},
            },
        },
        [{"type": "Ready", "status": "True"}, {"type": "Synced"}, {"type": "Ready", "status": "False"}],
        [Cause(DUPLICATE, 'Duplicate value: {"type":"Ready"}', "spec.f[2]")],
    ),
    (
        "list-type map with two keys",
        {
            "type": "array",
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name", "port"],
            "items": {
                "type": "object",
                "properties": {"name": {"type": "string"}, "port": {"type": "integer"}},
            },
        },
        [{"name": "a", "port": 1}, {"name": "a", "port": 2}, {"port": 1, "name": "a"}],
        [Cause(DUPLICATE, 'Duplicate value: {"name":"a","port":1}', "spec.f[2]")],
    ),
    (
        "list-type atomic allows duplicates",
        {"type": "array", "x-kubernetes-list-type": "atomic", "items": {"type": "string"}},
        ["a", "a"],
        [],
    ),
    # allOf / anyOf / oneOf / not (value validations only)
    ("anyOf ok", {"type": "object", "anyOf": [{"required": ["a"]}, {"required": ["b"]}]}, {"b": 1}, []),
    (
        "anyOf none",
        {"type": "object", "anyOf": [{"required": ["a"]}, {"required": ["b"]}]},
        {"c": 1},
        [
            Cause(INVALID, 'Invalid value: "": "spec.f" must validate at least one schema (anyOf)', "<nil>"),
            Cause(REQUIRED, "Required value", "spec.f.a"),
        ],
    ),
    (
        "oneOf two valid",
        {"type": "object", "oneOf": [{"required": ["a"]}, {"required": ["b"]}]},
        {"a": 1, "b": 2},
        [
            Cause(
                INVALID,
                'Invalid value: "": "spec.f" must validate one and only one schema (oneOf). '
                "Found 2 valid alternatives",
                "<nil>",
            )
        ],
    ),
    (
        "oneOf one valid",
        {"type": "object", "oneOf": [{"required": ["a"]}, {"required": ["b"]}]},
        {"a": 1},
        [],
    ),
    (
        "allOf",
        {"type": "integer", "allOf": [{"minimum": 1}, {"maximum": 5}]},
        9,
        [
            Cause(INVALID, 'Invalid value: "": "spec.f" must validate all the schemas (allOf)', "<nil>"),
            Cause(INVALID, "Invalid value: 9: spec.f in body should be less than or equal to 5", "spec.f"),
        ],
    ),
    (
        "not",
        {"type": "string", "not": {"enum": ["forbidden"]}},
        "forbidden",
        [Cause(INVALID, 'Invalid value: "": "spec.f" must not validate the schema (not)', "<nil>")],
    ),
]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [pytest.param(field, value, expected, id=name) for name, field, value, expected in KEYWORD_CASES],
)
def test_keyword(field: dict[str, Any], value: Any, expected: list[Cause]) -> None:
    assert validate_f(field, value) == expected


def test_required_at_root_and_nested() -> None:
    schema = CompiledSchema.compile(
        crd_schema(
            {"type": "object", "required": ["body"], "properties": {"body": {"type": "string"}}},
            required=["spec"],
        )
    )
    assert schema.validate(obj()) == [Cause(REQUIRED, "Required value", "spec")]
    assert schema.validate(obj({})) == [Cause(REQUIRED, "Required value", "spec.body")]


def test_causes_are_ordered_by_field_path_with_numeric_indexes() -> None:
    schema = spec_with({"type": "array", "items": {"type": "integer", "minimum": 0}}, required=["g"])
    value = [-1 if i in (2, 10) else 0 for i in range(11)]
    assert [c.field for c in schema.validate(obj({"f": value}))] == ["spec.f[2]", "spec.f[10]", "spec.g"]


def test_metadata_apiversion_kind_are_not_validated_but_name_restrictions_are() -> None:
    schema = CompiledSchema.compile(
        {
            "type": "object",
            "properties": {
                "apiVersion": {"type": "integer"},
                "kind": {"type": "integer"},
                "metadata": {
                    "type": "object",
                    "properties": {"name": {"type": "string", "maxLength": 5, "pattern": "^[a-z0-9-]+$"}},
                },
            },
        }
    )
    assert schema.validate(obj()) == []
    assert schema.validate({"apiVersion": "v1", "kind": "K", "metadata": {"name": "Too-Long", "uid": 1}}) == [
        Cause(TOO_LONG, "Too long: may not be more than 5 bytes", "metadata.name")
    ]


def test_embedded_resource_requires_apiversion_and_kind() -> None:
    schema = spec_with(
        {
            "type": "object",
            "x-kubernetes-embedded-resource": True,
            "x-kubernetes-preserve-unknown-fields": True,
        }
    )
    assert schema.validate(obj({"f": {"apiVersion": "v1", "kind": "ConfigMap"}})) == []
    assert schema.validate(obj({"f": {"kind": "", "metadata": {}}})) == [
        Cause(REQUIRED, "Required value", "spec.f.apiVersion"),
        Cause(REQUIRED, "Required value", "spec.f.kind"),
    ]


# ---------------------------------------------------------------------------------------------
# Pruning.
# ---------------------------------------------------------------------------------------------

PRUNE_SCHEMA = crd_schema(
    {
        "type": "object",
        "properties": {
            "body": {"type": "string"},
            "items": {"type": "array", "items": {"type": "object", "properties": {"a": {"type": "string"}}}},
            "labels": {
                "type": "object",
                "additionalProperties": {"type": "object", "properties": {"v": {"type": "string"}}},
            },
            "free": {"type": "object", "additionalProperties": True},
            "extra": {
                "type": "object",
                "x-kubernetes-preserve-unknown-fields": True,
                "properties": {"typed": {"type": "object", "properties": {"x": {"type": "integer"}}}},
            },
            "template": {
                "type": "object",
                "x-kubernetes-embedded-resource": True,
                "properties": {"spec": {"type": "object"}},
            },
            "note": {"type": "string"},
            "maybe": {"type": "string", "nullable": True},
            "withDefault": {"type": "string", "default": "d"},
        },
    }
)


def test_prune_removes_unknown_fields_and_reports_paths() -> None:
    schema = CompiledSchema.compile(PRUNE_SCHEMA)
    body = obj(
        {
            "body": "b",
            "foo": 1,
            "items": [{"a": "x", "b": 2}, {"c": {"d": 1}}],
            "labels": {"k1": {"v": "1", "w": "2"}},
            "free": {"anything": {"goes": True}},
            "extra": {"kept": {"deep": 1}, "typed": {"x": 1, "y": 2}},
            "template": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {"name": "n", "junk": 1},
                "spec": {},
                "other": 1,
            },
        },
        status={"whatever": [1, 2]},
        unknownTop={"a": 1},
    )
    removed = schema.prune(body)
    assert removed == [
        "spec.foo",
        "spec.items[0].b",
        "spec.items[1].c",
        "spec.labels.k1.w",
        "spec.extra.typed.y",
        "spec.template.other",
        "unknownTop",
    ]
    assert body == obj(
        {
            "body": "b",
            "items": [{"a": "x"}, {}],
            "labels": {"k1": {"v": "1"}},
            "free": {"anything": {"goes": True}},
            "extra": {"kept": {"deep": 1}, "typed": {"x": 1}},
            "template": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "n", "junk": 1}, "spec": {}},
        },
        status={"whatever": [1, 2]},
    )


def test_prune_leaves_root_metadata_apiversion_kind_alone() -> None:
    schema = CompiledSchema.compile({"type": "object", "properties": {"spec": {"type": "object"}}})
    body = {
        "apiVersion": "g/v1",
        "kind": "K",
        "metadata": {"name": "a", "labels": {"x": "y"}, "odd": 1},
        "spec": {},
    }
    before = copy.deepcopy(body)
    assert schema.prune(body) == []
    assert body == before


def test_prune_drops_non_nullable_nulls_without_reporting_them() -> None:
    schema = CompiledSchema.compile(PRUNE_SCHEMA)
    body = obj({"note": None, "maybe": None, "withDefault": None, "free": {"x": None}, "extra": {"y": None}})
    assert schema.prune(body) == []
    # nullable nulls stay; nulls with a default stay for defaulting; preserved data is untouched
    assert body["spec"] == {"maybe": None, "withDefault": None, "free": {"x": None}, "extra": {"y": None}}
    schema.default(body)
    assert body["spec"]["withDefault"] == "d"


# ---------------------------------------------------------------------------------------------
# Defaulting.
# ---------------------------------------------------------------------------------------------

DEFAULT_SCHEMA = crd_schema(
    {
        "type": "object",
        "properties": {
            "replicas": {"type": "integer", "default": 1, "minimum": 1},
            "strategy": {
                "type": "object",
                "properties": {
                    "type": {"type": "string", "default": "Rolling"},
                    "maxSurge": {"x-kubernetes-int-or-string": True, "default": "25%"},
                },
            },
            "options": {
                "type": "object",
                "default": {},
                "properties": {"retries": {"type": "integer", "default": 3}},
            },
            "targets": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"weight": {"type": "integer", "default": 100}, "name": {"type": "string"}},
                },
            },
            "byName": {
                "type": "object",
                "additionalProperties": {
                    "type": "object",
                    "properties": {"on": {"type": "boolean", "default": True}},
                },
            },
        },
    }
)


def test_defaults_apply_recursively_only_where_the_parent_exists() -> None:
    schema = CompiledSchema.compile(DEFAULT_SCHEMA)
    body = obj({"targets": [{"name": "a"}, {"name": "b", "weight": 5}], "byName": {"x": {}}})
    schema.default(body)
    assert body["spec"] == {
        "replicas": 1,
        "options": {"retries": 3},  # defaulted object, then defaulted inside
        "targets": [{"name": "a", "weight": 100}, {"name": "b", "weight": 5}],
        "byName": {"x": {"on": True}},
    }  # no "strategy": its parent object does not exist, so neither do its defaults
    body["spec"]["strategy"] = {}
    schema.default(body)
    assert body["spec"]["strategy"] == {"type": "Rolling", "maxSurge": "25%"}


def test_defaults_do_not_overwrite_and_are_copies() -> None:
    schema = CompiledSchema.compile(DEFAULT_SCHEMA)
    first, second = obj({"replicas": 4}), obj({})
    schema.default(first)
    schema.default(second)
    assert first["spec"]["replicas"] == 4
    first["spec"]["options"]["retries"] = 9
    assert second["spec"]["options"] == {"retries": 3}


def test_default_then_validate() -> None:
    schema = CompiledSchema.compile(DEFAULT_SCHEMA)
    body = obj({"replicas": 0, "strategy": {"maxSurge": True}})
    schema.prune(body)
    schema.default(body)
    assert schema.validate(body) == [
        Cause(
            INVALID,
            "Invalid value: 0: spec.replicas in body should be greater than or equal to 1",
            "spec.replicas",
        ),
        Cause(
            TYPE_INVALID,
            'Invalid value: "boolean": spec.strategy.maxSurge in body '
            'must be of type integer,string: "boolean"',
            "spec.strategy.maxSurge",
        ),
    ]
    assert body["spec"]["strategy"]["type"] == "Rolling"


def test_default_root_metadata_is_untouched() -> None:
    schema = CompiledSchema.compile(DEFAULT_SCHEMA)
    body = obj()
    schema.default(body)
    assert body == obj()


# ---------------------------------------------------------------------------------------------
# CEL (x-kubernetes-validations).
# ---------------------------------------------------------------------------------------------

POST_SCHEMA = crd_schema(
    {
        "type": "object",
        "x-kubernetes-validations": [
            {
                "rule": "self.targets.all(t, self.targets.exists_one(u, u.accountId == t.accountId))",
                "message": "targets must name each accountId at most once",
                "fieldPath": ".targets",
                "reason": "FieldValueDuplicate",
            },
            {"rule": "!has(self.publishAt) || !has(self.expireAt) || self.publishAt < self.expireAt"},
            {
                "rule": "!has(oldSelf.locked) || !oldSelf.locked || self.publishAt == oldSelf.publishAt",
                "message": "publishAt is immutable once locked",
                "fieldPath": ".publishAt",
            },
        ],
        "properties": {
            "body": {"type": "string", "pattern": "^[^<]*$"},
            "locked": {"type": "boolean"},
            "publishAt": {"type": "string", "format": "date-time"},
            "expireAt": {"type": "string", "format": "date-time"},
            "targets": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["accountId"],
                    "properties": {
                        "accountId": {"type": "integer", "minimum": 1},
                        "url": {
                            "type": "string",
                            "x-kubernetes-validations": [
                                {
                                    "rule": "self.startsWith('https://')",
                                    "message": "url must start with https://",
                                }
                            ],
                        },
                    },
                },
            },
        },
    }
)


def post(**spec: Any) -> dict[str, Any]:
    return obj({"targets": [{"accountId": 1}], **spec})


@pytest.fixture(scope="module")
def posts() -> CompiledSchema:
    return CompiledSchema.compile(POST_SCHEMA)


def test_cel_valid_post(posts: CompiledSchema) -> None:
    assert posts.validate(post(publishAt="2024-01-01T10:00:00Z", expireAt="2024-01-02T10:00:00+02:00")) == []


def test_cel_uniqueness_rule_with_reason_and_field_path(posts: CompiledSchema) -> None:
    body = post(targets=[{"accountId": 1}, {"accountId": 2}, {"accountId": 1}])
    assert posts.validate(body) == [Cause(DUPLICATE, 'Duplicate value: "object"', "spec.targets")]


def test_cel_date_time_fields_are_timestamps(posts: CompiledSchema) -> None:
    # As strings publishAt < expireAt, but as instants 12:00+02:00 (10:00Z) is before 11:00Z.
    body = post(publishAt="2024-01-01T11:00:00Z", expireAt="2024-01-01T12:00:00+02:00")
    assert posts.validate(body) == [
        Cause(
            INVALID,
            'Invalid value: "object": failed rule: '
            "!has(self.publishAt) || !has(self.expireAt) || self.publishAt < self.expireAt",
            "spec",
        )
    ]


def test_cel_transition_rule_only_on_update(posts: CompiledSchema) -> None:
    old = post(locked=True, publishAt="2024-01-01T10:00:00Z")
    changed = post(locked=True, publishAt="2024-01-01T11:00:00Z")
    assert posts.validate(changed) == []  # create: no oldSelf, the transition rule is skipped
    assert posts.validate(changed, old=old) == [
        Cause(INVALID, 'Invalid value: "object": publishAt is immutable once locked', "spec.publishAt")
    ]
    assert posts.validate(old, old=old) == []
    assert posts.validate(changed, old=obj()) == []  # old object without spec: nothing to correlate


def test_cel_rules_on_list_items(posts: CompiledSchema) -> None:
    body = post(targets=[{"accountId": 1, "url": "https://a"}, {"accountId": 2, "url": "http://b"}])
    assert posts.validate(body) == [
        Cause(INVALID, 'Invalid value: "string": url must start with https://', "spec.targets[1].url")
    ]


def test_cel_is_skipped_after_blocking_errors(posts: CompiledSchema) -> None:
    body = post(targets=[{"accountId": 1}, {"accountId": 1}, {}])
    assert posts.validate(body) == [
        Cause(REQUIRED, "Required value", "spec.targets[2].accountId"),
        CEL_SKIPPED,
    ]


def test_cel_still_runs_after_non_blocking_errors(posts: CompiledSchema) -> None:
    body = post(body="<b>", targets=[{"accountId": 0}, {"accountId": 0}])
    assert posts.validate(body) == [
        Cause(INVALID, "Invalid value: \"<b>\": spec.body in body should match '^[^<]*$'", "spec.body"),
        Cause(DUPLICATE, 'Duplicate value: "object"', "spec.targets"),
        Cause(
            INVALID,
            "Invalid value: 0: spec.targets[0].accountId in body should be greater than or equal to 1",
            "spec.targets[0].accountId",
        ),
        Cause(
            INVALID,
            "Invalid value: 0: spec.targets[1].accountId in body should be greater than or equal to 1",
            "spec.targets[1].accountId",
        ),
    ]


def cel_schema(rules: list[dict[str, Any]], properties: dict[str, Any], **spec: Any) -> CompiledSchema:
    return CompiledSchema.compile(
        crd_schema({"type": "object", "x-kubernetes-validations": rules, "properties": properties, **spec})
    )


def test_cel_evaluation_error_is_a_cause_not_an_exception() -> None:
    schema = cel_schema([{"rule": "self.b == 1"}], {"a": {"type": "integer"}, "b": {"type": "integer"}})
    assert schema.validate(obj({"a": 1})) == [
        Cause(INVALID, 'Invalid value: "object": no such key: b evaluating rule: self.b == 1', "spec")
    ]
    assert schema.validate(obj({"b": 1})) == []


def test_cel_runtime_overload_error() -> None:
    schema = cel_schema(
        [{"rule": "self.v < 100", "message": "v too big"}], {"v": {"x-kubernetes-int-or-string": True}}
    )
    assert schema.validate(obj({"v": 5})) == []
    assert schema.validate(obj({"v": "5%"})) == [
        Cause(
            INVALID,
            "Invalid value: \"object\": 'no such overload': call arguments did not match a supported "
            "operator, function or macro signature for rule: v too big",
            "spec",
        )
    ]


def test_cel_message_expression_and_fallback() -> None:
    schema = cel_schema(
        [
            {
                "rule": "self.replicas <= self.maxReplicas",
                "messageExpression": (
                    "'replicas ' + string(self.replicas) + ' exceeds ' + string(self.maxReplicas)"
                ),
                "message": "unused",
                "fieldPath": ".replicas",
            },
            {
                "rule": "self.replicas > 0",
                "messageExpression": "self.nope",
                "message": "replicas must be positive",
            },
        ],
        {"replicas": {"type": "integer"}, "maxReplicas": {"type": "integer"}},
    )
    assert schema.validate(obj({"replicas": 5, "maxReplicas": 3})) == [
        Cause(INVALID, 'Invalid value: "object": replicas 5 exceeds 3', "spec.replicas")
    ]
    # a messageExpression that fails to evaluate falls back to message
    assert schema.validate(obj({"replicas": 0, "maxReplicas": 3})) == [
        Cause(INVALID, 'Invalid value: "object": replicas must be positive', "spec")
    ]


@pytest.mark.parametrize(
    ("reason", "expected"),
    [
        ("FieldValueForbidden", Cause(FORBIDDEN, "Forbidden: no b with a", "spec.b")),
        ("FieldValueRequired", Cause(REQUIRED, "Required value: no b with a", "spec.b")),
        ("FieldValueDuplicate", Cause(DUPLICATE, 'Duplicate value: "object"', "spec.b")),
        ("FieldValueInvalid", Cause(INVALID, 'Invalid value: "object": no b with a', "spec.b")),
    ],
)
def test_cel_reasons(reason: str, expected: Cause) -> None:
    schema = cel_schema(
        [
            {
                "rule": "!(has(self.a) && has(self.b))",
                "message": "no b with a",
                "reason": reason,
                "fieldPath": ".b",
            }
        ],
        {"a": {"type": "string"}, "b": {"type": "string"}},
    )
    assert schema.validate(obj({"a": "x", "b": "y"})) == [expected]


def test_cel_field_path_into_a_map() -> None:
    schema = cel_schema(
        [{"rule": "!('bad' in self.labels)", "fieldPath": ".labels['bad']"}],
        {"labels": {"type": "object", "additionalProperties": {"type": "string"}}},
    )
    assert schema.validate(obj({"labels": {"bad": "x"}})) == [
        Cause(INVALID, "Invalid value: \"object\": failed rule: !('bad' in self.labels)", "spec.labels[bad]")
    ]


def test_cel_rule_on_map_values_uses_key_paths() -> None:
    schema = cel_schema(
        [],
        {
            "ports": {
                "type": "object",
                "additionalProperties": {
                    "type": "integer",
                    "x-kubernetes-validations": [{"rule": "self < 1024"}],
                },
            }
        },
    )
    assert schema.validate(obj({"ports": {"http": 80, "alt": 8080}})) == [
        Cause(INVALID, 'Invalid value: "integer": failed rule: self < 1024', "spec.ports[alt]")
    ]


def test_cel_rule_at_root_reports_nil_field_and_sees_metadata_name() -> None:
    schema = CompiledSchema.compile(
        {
            "type": "object",
            "x-kubernetes-validations": [
                {"rule": "self.metadata.name.startsWith('p')", "message": "name must start with p"}
            ],
            "properties": {"spec": {"type": "object"}},
        }
    )
    assert schema.validate(obj({})) == []
    body = obj({})
    body["metadata"]["name"] = "q1"
    assert schema.validate(body) == [
        Cause(INVALID, 'Invalid value: "object": name must start with p', "<nil>")
    ]


def test_cel_number_fields_are_doubles_and_preserved_fields_are_invisible() -> None:
    schema = cel_schema(
        [
            {"rule": "self.ratio + 0.5 > 1.0", "message": "ratio too small"},
            {"rule": "!has(self.extra.hidden)", "message": "unknown fields are invisible"},
        ],
        {
            "ratio": {"type": "number"},
            "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    )
    assert schema.validate(obj({"ratio": 1, "extra": {"hidden": True}})) == []
    assert schema.validate(obj({"ratio": 0, "extra": {}})) == [
        Cause(INVALID, 'Invalid value: "object": ratio too small', "spec")
    ]


def test_cel_escaped_property_names_and_string_library() -> None:
    schema = cel_schema(
        [{"rule": "self.__namespace__ == self.dns__dash__name.lowerAscii()", "message": "mismatch"}],
        {"namespace": {"type": "string"}, "dns-name": {"type": "string"}},
    )
    assert schema.validate(obj({"namespace": "abc", "dns-name": "ABC"})) == []
    assert schema.validate(obj({"namespace": "abc", "dns-name": "X"})) == [
        Cause(INVALID, 'Invalid value: "object": mismatch', "spec")
    ]


def test_cel_optional_old_self() -> None:
    schema = cel_schema(
        [
            {
                "rule": "!oldSelf.hasValue() || self.mode == oldSelf.value().mode",
                "optionalOldSelf": True,
                "message": "mode is immutable",
            }
        ],
        {"mode": {"type": "string"}},
    )
    assert schema.validate(obj({"mode": "a"})) == []  # evaluated on create with oldSelf = none
    assert schema.validate(obj({"mode": "b"}), old=obj({"mode": "a"})) == [
        Cause(INVALID, 'Invalid value: "object": mode is immutable', "spec")
    ]


def test_cel_transition_rules_correlate_list_map_items_by_key() -> None:
    schema = cel_schema(
        [],
        {
            "conditions": {
                "type": "array",
                "x-kubernetes-list-type": "map",
                "x-kubernetes-list-map-keys": ["type"],
                "items": {
                    "type": "object",
                    "x-kubernetes-validations": [
                        {
                            "rule": "self.status == oldSelf.status || oldSelf.status == 'Unknown'",
                            "message": "frozen",
                        }
                    ],
                    "properties": {"type": {"type": "string"}, "status": {"type": "string"}},
                },
            }
        },
    )
    old = obj({"conditions": [{"type": "A", "status": "True"}, {"type": "B", "status": "Unknown"}]})
    new = obj(
        {
            "conditions": [
                {"type": "B", "status": "True"},
                {"type": "C", "status": "True"},
                {"type": "A", "status": "False"},
            ]
        }
    )
    assert schema.validate(new, old=old) == [
        Cause(INVALID, 'Invalid value: "object": frozen', "spec.conditions[2]")
    ]


def test_cel_null_values_are_not_evaluated() -> None:
    schema = cel_schema(
        [],
        {
            "note": {
                "type": "string",
                "nullable": True,
                "x-kubernetes-validations": [{"rule": "size(self) > 1"}],
            }
        },
    )
    assert schema.validate(obj({"note": None})) == []
    assert schema.validate(obj({"note": "x"})) == [
        Cause(INVALID, 'Invalid value: "string": failed rule: size(self) > 1', "spec.note")
    ]


@pytest.mark.parametrize(
    ("rules", "match"),
    [
        ([{"rule": "self.a =="}], "compilation failed"),
        ([{"rule": "true", "messageExpression": "'x' +"}], "messageExpression: compilation failed"),
        ([{"rule": "true", "fieldPath": ".nope"}], "does not refer to a valid field"),
        ([{"rule": "true", "reason": "FieldValueTooLong"}], "reason"),
    ],
)
def test_schema_errors(rules: list[dict[str, Any]], match: str) -> None:
    with pytest.raises(SchemaError, match=match):
        cel_schema(rules, {"a": {"type": "string"}})


# ---------------------------------------------------------------------------------------------
# The 422 message, and the project's own CRDs.
# ---------------------------------------------------------------------------------------------


def test_status_message() -> None:
    one = [Cause(REQUIRED, "Required value", "spec.body")]
    assert status_message("SocialPost", "social.softsolz.uk", "p1", one) == (
        'SocialPost.social.softsolz.uk "p1" is invalid: spec.body: Required value'
    )
    many = [
        Cause(REQUIRED, "Required value", "spec.a"),
        Cause(TOO_LONG, "Too long: may not be more than 3 bytes", "spec.b"),
        Cause(REQUIRED, "Required value", "spec.a"),
    ]
    assert status_message("SocialPost", "social.softsolz.uk", "p1", many) == (
        'SocialPost.social.softsolz.uk "p1" is invalid: '
        "[spec.a: Required value, spec.b: Too long: may not be more than 3 bytes]"
    )
    assert status_message("Pod", "", "x", []) == 'Pod "x" is invalid'


def test_cause_as_status_cause() -> None:
    cause = Cause(REQUIRED, "Required value", "spec.body")
    assert cause.as_status_cause() == {"reason": REQUIRED, "message": "Required value", "field": "spec.body"}


@pytest.mark.parametrize("path", sorted((ROOT / "crds").glob("*.yaml")), ids=lambda p: p.name)
def test_project_crds_compile(path: Path) -> None:
    crd = yaml.safe_load(path.read_text())
    for version in crd["spec"]["versions"]:
        CompiledSchema.compile(version["schema"]["openAPIV3Schema"])


def test_project_socialpost() -> None:
    crd = yaml.safe_load((ROOT / "crds" / "socialposts.yaml").read_text())
    schema = CompiledSchema.compile(crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"])
    body = obj({"body": "hello", "targets": [{"accountId": 3}], "bogus": 1})
    assert schema.prune(body) == ["spec.bogus"]
    schema.default(body)
    assert schema.validate(body) == []
    body["spec"]["targets"].append({"accountId": 3})
    causes = schema.validate(body)
    assert [c.reason for c in causes] == [DUPLICATE]
    assert status_message("SocialPost", "social.softsolz.uk", "p1", causes) == (
        'SocialPost.social.softsolz.uk "p1" is invalid: spec.targets: Duplicate value: "object"'
    )
