"""Applying PATCH bodies to JSON documents: merge patch, JSON Patch and our server-side apply.

The embedded API server answers ``PATCH`` for three content types (see the reference,
section 4.7): ``application/merge-patch+json`` (RFC 7386, what kopf and the Python client
send), ``application/json-patch+json`` (RFC 6902 with RFC 6901 pointers) and
``application/apply-patch+yaml`` (server-side apply, approximated here).

Every function returns a new document and never mutates its arguments: the server keeps
the stored object untouched until the patched copy has been validated.  Results share no
mutable containers with the inputs, so callers may mutate them freely.

Errors: :class:`PatchError` for a malformed patch (HTTP 400 BadRequest).  Its subclass
:class:`PatchNotApplicable` means a well-formed JSON Patch operation does not apply to this
document (missing path, index out of bounds); kube-apiserver answers those with 422, like a
failed ``test``, which raises the further subclass :class:`PatchTestFailed`.

Pure functions only: no I/O, no imports from the rest of socialpub; no ``jsonpatch`` package.
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = [
    "PatchError",
    "PatchNotApplicable",
    "PatchTestFailed",
    "apply_patch",
    "json_patch",
    "merge_patch",
]


class PatchError(ValueError):
    """The patch is malformed or cannot be applied to the target document."""


class PatchNotApplicable(PatchError):
    """A well-formed JSON Patch operation does not apply to the document (kube answers 422)."""


class PatchTestFailed(PatchNotApplicable):
    """A JSON Patch ``test`` operation found a different value, or no value, at its path."""


def _clone(value: Any) -> Any:
    """Deep-copy a JSON value (dicts and lists; everything else is immutable)."""
    if isinstance(value, dict):
        return {key: _clone(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_clone(item) for item in value]
    return value


# ---------------------------------------------------------------------------------------------
# Merge patch (RFC 7386) and the server-side-apply approximation.
# ---------------------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """Apply an RFC 7386 JSON merge patch and return the new document.

    Objects merge recursively, ``null`` deletes a key, and everything else (lists, scalars)
    replaces the old value whole.  A patch that is not an object replaces the target.
    """
    return _merge(target, patch, null_deletes=True)


def apply_patch(target: Any, applied: Any) -> Any:
    """Apply a server-side-apply configuration using our documented approximation.

    Real server-side apply tracks field ownership in ``managedFields``, detects conflicts
    between field managers (409 unless ``force=true``) and removes fields that the same
    manager applied before but omits now.  This emulator does none of that:

    * objects merge recursively and lists (and scalars) are replaced atomically, as for a
      CRD without ``x-kubernetes-list-type`` annotations;
    * ``null`` values in the applied configuration are ignored: they neither delete nor set;
    * fields are never removed by omission, there are no conflicts and no ``managedFields``.

    A non-object configuration replaces the target; a ``null`` one leaves it unchanged.
    """
    if applied is None:
        return _clone(target)
    return _merge(target, applied, null_deletes=False)


def _merge(target: Any, patch: Any, *, null_deletes: bool) -> Any:
    if not isinstance(patch, dict):
        return _clone(patch)
    base: dict[str, Any] = target if isinstance(target, dict) else {}
    result: dict[str, Any] = {}
    for key, value in base.items():  # keep the target's key order
        if key not in patch:
            result[key] = _clone(value)
        elif patch[key] is not None:
            result[key] = _merge(value, patch[key], null_deletes=null_deletes)
        elif not null_deletes:
            result[key] = _clone(value)
    for key, value in patch.items():
        if key not in base and value is not None:
            result[key] = _merge(None, value, null_deletes=null_deletes)
    return result


# ---------------------------------------------------------------------------------------------
# JSON Patch (RFC 6902) with JSON Pointers (RFC 6901).
# ---------------------------------------------------------------------------------------------

_OPERATIONS = ("add", "remove", "replace", "move", "copy", "test")
_ARRAY_INDEX_RE = re.compile("0|[1-9][0-9]*")


class _OperationError(Exception):
    """Internal: one operation failed; wrapped with the operation's index, op and path."""


def json_patch(target: Any, operations: Any) -> Any:
    """Apply an RFC 6902 JSON Patch (a list of operation objects) and return the new document.

    The operations apply in order to a private copy; if any fails, the whole patch fails
    and nothing is returned.  ``-`` as the last array token appends (for ``add``, ``move``
    and ``copy`` targets); array indexes must be in range and written without leading zeros.
    """
    if not isinstance(operations, list):
        raise PatchError(f"json patch must be a list of operations, not {_json_type(operations)}")
    for index, operation in enumerate(operations):
        _validate_operation(index, operation)

    document = _clone(target)
    for index, operation in enumerate(operations):
        op, path = operation["op"], operation["path"]
        try:
            document = _apply_operation(document, operation)
        except PatchTestFailed as exc:
            raise PatchTestFailed(f"json patch operation {index} ({op} {path!r}) failed: {exc}") from None
        except _OperationError as exc:
            raise PatchNotApplicable(f"json patch operation {index} ({op} {path!r}) failed: {exc}") from None
    return document


def _validate_operation(index: int, operation: Any) -> None:
    if not isinstance(operation, dict):
        raise PatchError(f"json patch operation {index} must be an object, not {_json_type(operation)}")
    op = operation.get("op")
    if not isinstance(op, str):
        raise PatchError(f"json patch operation {index} has no 'op' string")
    if op not in _OPERATIONS:
        raise PatchError(f"json patch operation {index} has unknown op {op!r}")
    path = operation.get("path")
    if not isinstance(path, str):
        raise PatchError(f"json patch operation {index} ({op}) has no 'path' string")
    if op in ("add", "replace", "test") and "value" not in operation:
        raise PatchError(f"json patch operation {index} ({op} {path!r}) has no 'value'")
    if op in ("move", "copy") and not isinstance(operation.get("from"), str):
        raise PatchError(f"json patch operation {index} ({op} {path!r}) has no 'from' string")
    try:
        _parse_pointer(path)
        if op in ("move", "copy"):
            _parse_pointer(operation["from"])
    except _OperationError as exc:
        raise PatchError(f"json patch operation {index} ({op} {path!r}) is invalid: {exc}") from None


def _apply_operation(document: Any, operation: dict[str, Any]) -> Any:
    op: str = operation["op"]
    path = _parse_pointer(operation["path"])
    if op == "add":
        return _add(document, path, _clone(operation["value"]))
    if op == "remove":
        _remove(document, path)
        return document
    if op == "replace":
        _get(document, path)  # the target location must exist
        if not path:
            return _clone(operation["value"])
        _set(document, path, _clone(operation["value"]))
        return document
    if op == "test":
        try:
            actual = _get(document, path)
        except _OperationError as exc:
            raise PatchTestFailed(str(exc)) from None
        if not _json_equal(actual, operation["value"]):
            raise PatchTestFailed(
                f"value mismatch: expected {_dump(operation['value'])}, found {_dump(actual)}"
            )
        return document
    source = _parse_pointer(operation["from"])
    if op == "copy":
        return _add(document, path, _clone(_get(document, source)))
    # move
    if path == source:
        _get(document, source)
        return document
    if path[: len(source)] == source:
        raise _OperationError(f"cannot move {operation['from']!r} into its own child")
    value = _get(document, source)
    _remove(document, source)
    return _add(document, path, value)


def _parse_pointer(pointer: str) -> list[str]:
    """Split an RFC 6901 pointer into unescaped reference tokens ("" is the whole document)."""
    if pointer == "":
        return []
    if not pointer.startswith("/"):
        raise _OperationError(f"JSON pointer {pointer!r} must be empty or start with '/'")
    tokens = pointer[1:].split("/")
    for token in tokens:
        if re.search("~(?![01])", token):
            raise _OperationError(f"JSON pointer {pointer!r} has an invalid '~' escape")
    return [token.replace("~1", "/").replace("~0", "~") for token in tokens]


def _format_pointer(tokens: list[str]) -> str:
    return "".join("/" + token.replace("~", "~0").replace("/", "~1") for token in tokens)


def _array_index(container: list[Any], token: str, tokens: list[str], *, for_insert: bool) -> int:
    limit = len(container) if for_insert else len(container) - 1
    if token == "-":
        if for_insert:
            return len(container)
        raise _OperationError(f"index '-' at {_format_pointer(tokens)!r} refers to no existing element")
    if not _ARRAY_INDEX_RE.fullmatch(token):
        raise _OperationError(f"{token!r} at {_format_pointer(tokens)!r} is not a valid array index")
    index = int(token)
    if index > limit:
        raise _OperationError(
            f"array index {index} at {_format_pointer(tokens)!r} is out of bounds (length {len(container)})"
        )
    return index


def _get(document: Any, path: list[str]) -> Any:
    current = document
    for depth, token in enumerate(path):
        walked = path[: depth + 1]
        if isinstance(current, dict):
            if token not in current:
                raise _OperationError(f"path {_format_pointer(walked)!r} does not exist")
            current = current[token]
        elif isinstance(current, list):
            current = current[_array_index(current, token, walked, for_insert=False)]
        else:
            raise _OperationError(
                f"path {_format_pointer(walked)!r} does not exist: "
                f"{_format_pointer(path[:depth]) or 'the document'} is {_json_type(current)}"
            )
    return current


def _add(document: Any, path: list[str], value: Any) -> Any:
    if not path:
        return value
    parent = _get(document, path[:-1])
    token = path[-1]
    if isinstance(parent, dict):
        parent[token] = value
    elif isinstance(parent, list):
        parent.insert(_array_index(parent, token, path, for_insert=True), value)
    else:
        raise _OperationError(
            f"cannot add {_format_pointer(path)!r}: {_format_pointer(path[:-1]) or 'the document'} "
            f"is {_json_type(parent)}"
        )
    return document


def _set(document: Any, path: list[str], value: Any) -> None:
    parent = _get(document, path[:-1])
    token = path[-1]
    if isinstance(parent, dict):
        parent[token] = value
    else:  # a list: _get already checked the index
        parent[_array_index(parent, token, path, for_insert=False)] = value


def _remove(document: Any, path: list[str]) -> None:
    if not path:
        raise _OperationError("cannot remove the whole document")
    _get(document, path)  # the target location must exist
    parent = _get(document, path[:-1])
    token = path[-1]
    if isinstance(parent, dict):
        del parent[token]
    else:
        del parent[_array_index(parent, token, path, for_insert=False)]


def _json_equal(left: Any, right: Any) -> bool:
    """JSON equality: numbers by value, booleans distinct from numbers, objects unordered."""
    if isinstance(left, bool) or isinstance(right, bool):
        return isinstance(left, bool) and isinstance(right, bool) and left == right
    if isinstance(left, int | float) and isinstance(right, int | float):
        return left == right
    if isinstance(left, dict) and isinstance(right, dict):
        return left.keys() == right.keys() and all(_json_equal(left[key], right[key]) for key in left)
    if isinstance(left, list) and isinstance(right, list):
        return len(left) == len(right) and all(_json_equal(a, b) for a, b in zip(left, right, strict=True))
    if type(left) is not type(right):
        return False
    return bool(left == right)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _dump(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    except (TypeError, ValueError):
        return repr(value)
