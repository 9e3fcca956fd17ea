"""Decoding the few protobuf request bodies kubectl sends for built-in kinds.

kubectl's typed generators (``kubectl create namespace|secret|configmap``) send
``application/vnd.kubernetes.protobuf`` and do not fall back to JSON on a 415, so the embedded
server reads that envelope for the core kinds it serves. Only decoding is needed (answers are
JSON, which every client accepts) and only the fields these kinds carry.
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

__all__ = ["PROTOBUF", "ProtobufError", "decode_object"]

PROTOBUF = "application/vnd.kubernetes.protobuf"
_MAGIC = b"k8s\x00"

Fields = list[tuple[int, int | bytes]]


class ProtobufError(ValueError):
    """The body is not a Kubernetes protobuf envelope this server can read."""


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("varint too long")


def _fields(data: bytes) -> Fields:
    """The (field number, value) pairs of one message: ints for varints, bytes for length-delimited."""
    out: Fields = []
    pos = 0
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = _varint(data, pos)
            out.append((number, value))
        elif wire == 2:
            length, pos = _varint(data, pos)
            if pos + length > len(data):
                raise ProtobufError("truncated field")
            out.append((number, data[pos : pos + length]))
            pos += length
        elif wire == 1:
            pos += 8
        elif wire == 5:
            pos += 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
    return out


def _text(value: int | bytes) -> str:
    if not isinstance(value, bytes):
        raise ProtobufError("expected a string field")
    return value.decode()


def _entry(value: int | bytes) -> tuple[str, bytes]:
    if not isinstance(value, bytes):
        raise ProtobufError("expected a map entry")
    key, raw = "", b""
    for number, part in _fields(value):
        if number == 1:
            key = _text(part)
        elif number == 2 and isinstance(part, bytes):
            raw = part
    return key, raw


def _object_meta(data: bytes) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    names = {1: "name", 2: "generateName", 3: "namespace", 6: "resourceVersion"}
    for number, value in _fields(data):
        if number in names:
            text = _text(value)
            if text:  # Go marshals empty strings; their JSON form omits them
                meta[names[number]] = text
        elif number in (11, 12):
            key, raw = _entry(value)
            meta.setdefault("labels" if number == 11 else "annotations", {})[key] = raw.decode()
        elif number == 14:
            meta.setdefault("finalizers", []).append(_text(value))
    return meta


def _string_map(into: dict[str, Any], name: str, value: int | bytes, *, binary: bool) -> None:
    key, raw = _entry(value)
    into.setdefault(name, {})[key] = base64.b64encode(raw).decode() if binary else raw.decode()


def _namespace(fields: Fields, obj: dict[str, Any]) -> None:
    del fields, obj  # spec.finalizers and status are server-owned here


def _secret(fields: Fields, obj: dict[str, Any]) -> None:
    for number, value in fields:
        if number == 2:
            _string_map(obj, "data", value, binary=True)
        elif number == 3 and _text(value):
            obj["type"] = _text(value)
        elif number == 4:
            _string_map(obj, "stringData", value, binary=False)
        elif number == 5 and isinstance(value, int):
            obj["immutable"] = bool(value)


def _configmap(fields: Fields, obj: dict[str, Any]) -> None:
    for number, value in fields:
        if number == 2:
            _string_map(obj, "data", value, binary=False)
        elif number == 3:
            _string_map(obj, "binaryData", value, binary=True)
        elif number == 4 and isinstance(value, int):
            obj["immutable"] = bool(value)


_KINDS: dict[str, Callable[[Fields, dict[str, Any]], None]] = {
    "Namespace": _namespace,
    "Secret": _secret,
    "ConfigMap": _configmap,
}


def decode_object(body: bytes) -> dict[str, Any]:
    """The JSON form of a protobuf-encoded Namespace, Secret or ConfigMap."""
    if not body.startswith(_MAGIC):
        raise ProtobufError("missing the k8s protobuf magic prefix")
    api_version = kind = ""
    raw = b""
    for number, value in _fields(body[len(_MAGIC) :]):
        if number == 1 and isinstance(value, bytes):
            for part_number, part in _fields(value):
                if part_number == 1:
                    api_version = _text(part)
                elif part_number == 2:
                    kind = _text(part)
        elif number == 2 and isinstance(value, bytes):
            raw = value
    decoder = _KINDS.get(kind)
    if decoder is None:
        raise ProtobufError(f"protobuf bodies are accepted only for {', '.join(_KINDS)}, not {kind!r}")
    obj: dict[str, Any] = {"apiVersion": api_version, "kind": kind}
    fields = _fields(raw)
    for number, value in fields:
        if number == 1 and isinstance(value, bytes):
            obj["metadata"] = _object_meta(value)
    decoder(fields, obj)
    return obj
