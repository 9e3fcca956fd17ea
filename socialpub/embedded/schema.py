"""Structural OpenAPI schemas applied to custom objects, the way kube-apiserver does.

The embedded API server stores custom objects for CRDs (``apiextensions.k8s.io/v1``).  kubectl,
kopf and the official client only behave as they do against a real cluster if every write goes
through the same three steps kube-apiserver applies to a custom resource:

1. **Pruning** (``k8s.io/apiextensions-apiserver/pkg/apiserver/schema/pruning``): fields the
   schema does not declare are dropped, except below ``x-kubernetes-preserve-unknown-fields``;
   non-nullable ``null`` values without a default are dropped too.  The removed paths feed
   ``fieldValidation=Warn|Strict``.
2. **Defaulting** (``.../schema/defaulting``): ``default:`` values fill absent fields (and
   non-nullable ``null``\\ s) wherever the parent object exists.
3. **Validation**: the OpenAPI value validations of ``k8s.io/kube-openapi/pkg/validation``
   (``type``, ``enum``, lengths, patterns, formats, bounds, ``allOf``/``anyOf``/``oneOf``/``not``,
   ...), ``x-kubernetes-list-type`` uniqueness (``.../schema/listtype``), embedded resources,
   and the CEL rules of ``x-kubernetes-validations`` (``.../schema/cel``).  The field errors are
   rendered exactly as ``k8s.io/apimachinery/pkg/util/validation/field`` renders them, so a 422
   ``Status`` from the embedded server reads like one from a real cluster.

Because the server validates on every write, :meth:`CompiledSchema.compile` turns the schema
dict into a tree of slotted node objects once per CRD version (regular expressions and CEL
programs included), and the per-request walks only touch those nodes.

Pure module: no I/O, no imports from the rest of socialpub.  CEL rules are evaluated with the
``common-expression-language`` package (``import cel``).
"""

from __future__ import annotations

import base64
import binascii
import datetime as _dt
import ipaddress
import itertools
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import cel
from cel.stdlib import STDLIB_FUNCTIONS

__all__ = [
    "Cause",
    "CompiledSchema",
    "SchemaError",
    "status_message",
]


class SchemaError(ValueError):
    """The schema cannot be applied: a CEL rule does not compile, a ``fieldPath`` is invalid..."""


@dataclass(frozen=True)
class Cause:
    """One field-level problem, shaped like ``metav1.StatusCause``."""

    reason: str
    """``FieldValueRequired``, ``FieldValueInvalid``, ``FieldValueTypeInvalid``, ... (the cause type)."""
    message: str
    """The kube-apiserver wording without the field, e.g. ``Required value``."""
    field: str
    """Dotted path with indexes, e.g. ``spec.targets[0].accountId``; ``<nil>`` for the object root."""

    def as_status_cause(self) -> dict[str, str]:
        """The ``details.causes[]`` entry of a ``Status`` body."""
        return {"reason": self.reason, "message": self.message, "field": self.field}

    def __str__(self) -> str:
        return f"{self.field}: {self.message}"


def status_message(kind: str, group: str, name: str, causes: Sequence[Cause]) -> str:
    """The ``message`` of a 422 ``Invalid`` Status, as ``apierrors.NewInvalid`` builds it.

    ``SocialPost.social.softsolz.uk "p1" is invalid: spec.body: Required value`` for one cause,
    ``... is invalid: [spec.a: Required value, spec.b: Too long: ...]`` for several (identical
    lines are listed once, as ``field.ErrorList.ToAggregate`` does).
    """
    qualified = f"{kind}.{group}" if group else kind
    head = f"{qualified} {_go_quote(name)} is invalid"
    lines: list[str] = []
    seen: set[str] = set()
    for cause in causes:
        line = str(cause)
        if line not in seen:
            seen.add(line)
            lines.append(line)
    if not lines:
        return head
    if len(lines) == 1:
        return f"{head}: {lines[0]}"
    return f"{head}: [{', '.join(lines)}]"


# ---------------------------------------------------------------------------------------------
# Go-compatible rendering of values (fmt %v / %q and encoding/json), used in error messages.
# ---------------------------------------------------------------------------------------------

_GO_ESCAPES: Final = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}
_JSON_ESCAPES: Final = {
    '"': '\\"',
    "\\": "\\\\",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}
_JSON_PLAIN_RE: Final = re.compile(r'[^"\\<>&\x00-\x1f\u2028\u2029]*\Z')


def _go_quote(s: str) -> str:
    """``strconv.Quote``: Go's ``%q`` of a string."""
    if s.isprintable() and '"' not in s and "\\" not in s:
        return f'"{s}"'
    out = ['"']
    for ch in s:
        if ch == '"' or ch == "\\":
            out.append("\\" + ch)
        elif ch.isprintable():
            out.append(ch)
        elif ch in _GO_ESCAPES:
            out.append(_GO_ESCAPES[ch])
        else:
            code = ord(ch)
            if code < 0x20 or code == 0x7F:
                out.append(f"\\x{code:02x}")
            elif code > 0xFFFF:
                out.append(f"\\U{code:08x}")
            else:
                out.append(f"\\u{code:04x}")
    out.append('"')
    return "".join(out)


def _float_digits(f: float) -> tuple[str, int]:
    """Shortest round-trip digits of ``abs(f)`` and the decimal point position (``0.d * 10**dp``)."""
    mantissa, _, exponent = repr(abs(f)).partition("e")
    whole, _, fraction = mantissa.partition(".")
    if fraction == "0":
        fraction = ""
    raw = whole + fraction
    digits = raw.lstrip("0")
    dp = len(whole) + (int(exponent) if exponent else 0) - (len(raw) - len(digits))
    digits = digits.rstrip("0")
    return (digits, dp) if digits else ("0", 1)


def _fixed(digits: str, dp: int) -> str:
    if dp <= 0:
        return "0." + "0" * -dp + digits
    if dp >= len(digits):
        return digits + "0" * (dp - len(digits))
    return digits[:dp] + "." + digits[dp:]


def _go_float(f: float, *, json: bool = False) -> str:
    """Go's ``%v`` of a float64 (``json=False``) or ``encoding/json``'s rendering (``json=True``)."""
    if math.isnan(f):
        return "NaN"
    if math.isinf(f):
        return "+Inf" if f > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, f) < 0 else ""
    if f == 0:
        return sign + "0"
    digits, dp = _float_digits(f)
    exp = dp - 1
    # encoding/json switches to exponents outside [1e-6, 1e21); %v is strconv 'g', shortest.
    scientific = (abs(f) < 1e-6 or abs(f) >= 1e21) if json else (exp < -4 or exp >= 6)
    if not scientific:
        return sign + _fixed(digits, dp)
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    if json and -10 < exp < 0:
        return f"{sign}{mantissa}e-{-exp}"  # encoding/json cleans e-07 up to e-7
    return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"


def _go_json_string(s: str) -> str:
    if _JSON_PLAIN_RE.match(s):
        return f'"{s}"'
    out = ['"']
    for ch in s:
        esc = _JSON_ESCAPES.get(ch)
        if esc is not None:
            out.append(esc)
        elif ord(ch) < 0x20:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    out.append('"')
    return "".join(out)


def _go_json(value: Any) -> str:
    """``json.Marshal`` of a decoded JSON value (sorted keys, HTML-safe, Go float format)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value, json=True)
    if isinstance(value, str):
        return _go_json_string(value)
    if isinstance(value, Mapping):
        items = (f"{_go_json_string(str(k))}:{_go_json(value[k])}" for k in sorted(value))
        return "{" + ",".join(items) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_go_json(v) for v in value) + "]"
    return _go_json_string(str(value))


def _go_value(value: Any) -> str:
    """A ``field.Error`` BadValue as ``ErrorBody`` prints it."""
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value)
    if isinstance(value, str):
        return _go_quote(value)
    return _go_json(value)


# ---------------------------------------------------------------------------------------------
# Field errors (k8s.io/apimachinery/pkg/util/validation/field).
# ---------------------------------------------------------------------------------------------

_REQUIRED: Final = "FieldValueRequired"
_INVALID: Final = "FieldValueInvalid"
_TYPE_INVALID: Final = "FieldValueTypeInvalid"
_NOT_SUPPORTED: Final = "FieldValueNotSupported"
_TOO_LONG: Final = "FieldValueTooLong"
_TOO_MANY: Final = "FieldValueTooMany"
_DUPLICATE: Final = "FieldValueDuplicate"
_FORBIDDEN: Final = "FieldValueForbidden"

# Errors after which kube-apiserver skips all CEL rules (customResourceStrategy.hasBlockingErr).
_BLOCKING: Final = frozenset({_NOT_SUPPORTED, _REQUIRED, _TOO_LONG, _TOO_MANY, _TYPE_INVALID})
_RULE_REASONS: Final = frozenset({_INVALID, _FORBIDDEN, _REQUIRED, _DUPLICATE})
_NIL_FIELD: Final = "<nil>"
_CEL_SKIPPED: Final = Cause(
    _INVALID,
    "Invalid value: null: some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation",
    _NIL_FIELD,
)


def _field(path: str) -> str:
    return path or _NIL_FIELD


def _required(path: str, detail: str = "") -> Cause:
    return Cause(_REQUIRED, f"Required value: {detail}" if detail else "Required value", _field(path))


def _invalid(path: str, value: Any, detail: str) -> Cause:
    return Cause(_INVALID, f"Invalid value: {_go_value(value)}: {detail}", _field(path))


def _type_invalid(path: str, value: Any, detail: str) -> Cause:
    return Cause(_TYPE_INVALID, f"Invalid value: {_go_value(value)}: {detail}", _field(path))


def _too_many(path: str, actual: int, limit: int) -> Cause:
    noun = "item" if limit == 1 else "items"
    return Cause(_TOO_MANY, f"Too many: {actual}: must have at most {limit} {noun}", _field(path))


def _duplicate(path: str, value: Any) -> Cause:
    return Cause(_DUPLICATE, f"Duplicate value: {_go_value(value)}", _field(path))


def _composite(detail: str) -> Cause:
    # kube-openapi's composite errors are not *errors.Validation: they land on the nil root path.
    return Cause(_INVALID, f'Invalid value: "": {detail}', _NIL_FIELD)


_PATH_TOKEN_RE: Final = re.compile(r"\[(\d+)\]|\[([^\]]*)\]|([^.\[\]]+)")


def _path_sort_key(field: str) -> tuple[tuple[int, int, str], ...]:
    return tuple(
        (0, int(index), "") if index else (1, 0, key or name)
        for index, key, name in _PATH_TOKEN_RE.findall(field if field != _NIL_FIELD else "")
    )


def _sorted_causes(causes: list[Cause]) -> list[Cause]:
    if len(causes) < 2:
        return causes
    keys: dict[str, tuple[tuple[int, int, str], ...]] = {}
    for cause in causes:
        if cause.field not in keys:
            keys[cause.field] = _path_sort_key(cause.field)
    return sorted(causes, key=lambda c: keys[c.field])


# ---------------------------------------------------------------------------------------------
# Value identity as Go sees it (reflect.DeepEqual, map keys, json.Marshal).
# ---------------------------------------------------------------------------------------------


def _strict_key(value: Any) -> Any:
    """A hashable key equal for values ``reflect.DeepEqual`` deems equal (ints are not floats)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return ("b", value)
    if isinstance(value, int):
        return ("i", value)
    if isinstance(value, float):
        return ("f", value)
    if isinstance(value, Mapping):
        return ("m", tuple(sorted((str(k), _strict_key(v)) for k, v in value.items())))
    if isinstance(value, (list, tuple)):
        return ("l", tuple(_strict_key(v) for v in value))
    return ("?", repr(value))


def _set_key(value: Any) -> Any:
    """Identity of a ``x-kubernetes-list-type: set`` element (listtype.validateListSet)."""
    if isinstance(value, (Mapping, list)):
        return ("json", _go_json(value))  # compounds compare by their JSON encoding
    return _strict_key(value)


def _enum_key(value: Any) -> Any:
    """Enum membership: like _strict_key, but an int matches the equal float (Go converts)."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return ("n", value)
    return _strict_key(value)


# ---------------------------------------------------------------------------------------------
# Formats (k8s.io/kube-openapi/pkg/validation/strfmt, as far as CRDs support them).
# ---------------------------------------------------------------------------------------------

_DATE_RE: Final = re.compile(r"(\d{4})-(\d{2})-(\d{2})\Z")
_TIME_RE: Final = re.compile(r"([0-9]{2}):([0-9]{2}):([0-9]{2})(.([0-9]+))?(z|([+-])([0-9]{2}):([0-9]{2}))\Z")
_GO_DURATION_RE: Final = re.compile(r"[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|\u00b5s|\u03bcs|ms|s|m|h))+\Z")
_GO_DURATION_PART_RE: Final = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
_SIMPLE_DURATION_RE: Final = re.compile(r"(\d+)\s*(ns|us|\u00b5s|ms|s|m|h|d|w)\Z")
_DURATION_UNITS: Final = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,
    "\u03bcs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}
_UUID_RES: Final = {
    "uuid": re.compile(r"(?i)[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\Z"),
    "uuid3": re.compile(r"(?i)[0-9a-f]{8}-?[0-9a-f]{4}-?3[0-9a-f]{3}-?[0-9a-f]{4}-?[0-9a-f]{12}\Z"),
    "uuid4": re.compile(r"(?i)[0-9a-f]{8}-?[0-9a-f]{4}-?4[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}\Z"),
    "uuid5": re.compile(r"(?i)[0-9a-f]{8}-?[0-9a-f]{4}-?5[0-9a-f]{3}-?[89ab][0-9a-f]{3}-?[0-9a-f]{12}\Z"),
}
_HEXCOLOR_RE: Final = re.compile(r"#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6})\Z")
_MAC_RE: Final = re.compile(
    r"(?:[0-9a-fA-F]{2}(?:[:-][0-9a-fA-F]{2}){5}|[0-9a-fA-F]{2}(?:[:-][0-9a-fA-F]{2}){7}"
    r"|[0-9a-fA-F]{2}(?:[:-][0-9a-fA-F]{2}){19}|[0-9a-fA-F]{4}(?:\.[0-9a-fA-F]{4}){2,9})\Z"
)


def _parse_date(s: str) -> _dt.datetime | None:
    m = _DATE_RE.match(s)
    if m is None:
        return None
    try:
        return _dt.datetime(int(m[1]), int(m[2]), int(m[3]), tzinfo=_dt.UTC)
    except ValueError:
        return None


def _parse_datetime(s: str) -> _dt.datetime | None:
    """strfmt.IsDateTime (RFC 3339 ``date-time``), returning the instant for CEL."""
    if len(s) < 4:
        return None
    parts = s.lower().split("t")
    if len(parts) < 2:
        return None
    day = _parse_date(parts[0])
    m = _TIME_RE.match(parts[1])
    if day is None or m is None or m[1] > "23" or m[2] > "59" or m[3] > "59":
        return None
    micros = int((m[5] or "0")[:6].ljust(6, "0"))
    tz = _dt.UTC
    if m[6] != "z":
        offset = _dt.timedelta(hours=int(m[8]), minutes=int(m[9]))
        tz = _dt.timezone(-offset if m[7] == "-" else offset)
    return day.replace(hour=int(m[1]), minute=int(m[2]), second=int(m[3]), microsecond=micros, tzinfo=tz)


def _parse_duration(s: str) -> _dt.timedelta | None:
    """Go ``time.ParseDuration`` (or strfmt's ``<n> <unit>`` form), for ``format: duration``."""
    if s == "0":
        return _dt.timedelta(0)
    if _GO_DURATION_RE.match(s):
        total = sum(float(n) * _DURATION_UNITS[unit] for n, unit in _GO_DURATION_PART_RE.findall(s))
        return _dt.timedelta(seconds=-total if s.startswith("-") else total)
    m = _SIMPLE_DURATION_RE.match(s.strip())
    if m is not None:
        return _dt.timedelta(seconds=int(m[1]) * _DURATION_UNITS[m[2]])
    return None


def _is_base64(s: str) -> bool:
    try:
        base64.b64decode(s, validate=True)
    except (binascii.Error, ValueError):
        return False
    return True


def _is_ipv4(s: str) -> bool:
    try:
        ipaddress.IPv4Address(s)
    except ValueError:
        return False
    return True


def _is_ipv6(s: str) -> bool:
    try:
        ipaddress.IPv6Address(s)
    except ValueError:
        return False
    return True


def _is_cidr(s: str) -> bool:
    if "/" not in s:
        return False
    try:
        ipaddress.ip_network(s, strict=False)
    except ValueError:
        return False
    return True


def _regex_check(pattern: re.Pattern[str]) -> Callable[[str], bool]:
    return lambda s: pattern.match(s) is not None


_FORMAT_CHECKS: Final[dict[str, Callable[[str], bool]]] = {
    "datetime": lambda s: _parse_datetime(s) is not None,
    "date": lambda s: _parse_date(s) is not None,
    "duration": lambda s: _parse_duration(s) is not None,
    "byte": _is_base64,
    "ipv4": _is_ipv4,
    "ipv6": _is_ipv6,
    "cidr": _is_cidr,
    "mac": _regex_check(_MAC_RE),
    "hexcolor": _regex_check(_HEXCOLOR_RE),
    **{name: _regex_check(rx) for name, rx in _UUID_RES.items()},
}


def _normalize_format(fmt: str) -> str:
    return fmt.replace("-", "").replace("_", "").lower()


def _compile_pattern(pattern: str) -> re.Pattern[str] | None:
    """A Go RE2 pattern as a Python regex (``re.search`` semantics, ``$`` only at the very end)."""
    out: list[str] = []
    multiline = re.search(r"\(\?[a-zA-Z]*m", pattern) is not None
    in_class, class_start, i, n = False, 0, 0, len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "\\" and i + 1 < n:
            nxt = pattern[i + 1]
            out.append("\\Z" if nxt == "z" and not in_class else ch + nxt)
            i += 2
            continue
        if in_class:
            in_class = not (ch == "]" and i > class_start)  # a leading ] is literal
        elif ch == "[":
            in_class = True
            class_start = i + 2 if pattern.startswith("[^", i) else i + 1
        elif ch == "$" and not multiline:
            ch = "\\Z"
        out.append(ch)
        i += 1
    try:
        return re.compile("".join(out))
    except re.error:
        return None  # e.g. \pL classes: RE2 knows them, Python's re does not; do not reject


# ---------------------------------------------------------------------------------------------
# CEL support (k8s.io/apiextensions-apiserver/pkg/apiserver/schema/cel).
# ---------------------------------------------------------------------------------------------

_CEL_RESERVED: Final = frozenset(
    [
        "true",
        "false",
        "null",
        "in",
        "as",
        "break",
        "const",
        "continue",
        "else",
        "for",
        "function",
        "if",
        "import",
        "let",
        "loop",
        "package",
        "namespace",
        "return",
        "var",
        "void",
        "while",
    ]
)
_CEL_ESCAPE_RE: Final = re.compile(r"(__|[-./]|[^a-zA-Z0-9\-./_])")
_CEL_ESCAPES: Final = {"__": "__underscores__", ".": "__dot__", "-": "__dash__", "/": "__slash__"}


def _cel_escape(name: str) -> str | None:
    """The CEL field name of a property (apiserver/pkg/cel.Escape), or None if inaccessible."""
    if not name or name[0].isdigit():
        return None
    if name in _CEL_RESERVED:
        return f"__{name}__"
    ok = True

    def repl(m: re.Match[str]) -> str:
        nonlocal ok
        escaped = _CEL_ESCAPES.get(m[0])
        if escaped is None:
            ok = False
            return ""
        return escaped

    escaped = _CEL_ESCAPE_RE.sub(repl, name)
    return escaped if ok else None


def _is_sorted(items: list[Any]) -> bool:
    return all(a <= b for a, b in itertools.pairwise(items))


def _index_of(container: Any, item: Any, *rest: Any) -> int:
    if isinstance(container, list):
        return container.index(item) if item in container else -1
    return int(STDLIB_FUNCTIONS["indexOf"](container, item, *rest))


def _last_index_of(container: Any, item: Any, *rest: Any) -> int:
    if isinstance(container, list):
        return len(container) - 1 - container[::-1].index(item) if item in container else -1
    return int(STDLIB_FUNCTIONS["lastIndexOf"](container, item, *rest))


def _find(s: str, pattern: str) -> str:
    m = re.search(pattern, s)
    return m[0] if m else ""


def _find_all(s: str, pattern: str, limit: int = -1) -> list[str]:
    found = [m[0] for m in re.finditer(pattern, s)]
    return found if limit < 0 else found[:limit]


# The cel-go extension libraries Kubernetes enables, as far as the cel package (plus a few
# Kubernetes list/regex functions here) can provide them.
_CEL_FUNCTIONS: Final[dict[str, Callable[..., Any]]] = {
    **STDLIB_FUNCTIONS,
    "isSorted": _is_sorted,
    "indexOf": _index_of,
    "lastIndexOf": _last_index_of,
    "find": _find,
    "findAll": _find_all,
}


def _functions_by_short_name() -> dict[str, list[str]]:
    # Program.functions() reports "greatest" for "math.greatest": index by the last segment.
    index: dict[str, list[str]] = {}
    for name in _CEL_FUNCTIONS:
        index.setdefault(name.rpartition(".")[2], []).append(name)
    return index


_CEL_FUNCTIONS_BY_NAME: Final = _functions_by_short_name()


def _cel_functions(*programs: Any) -> dict[str, Callable[..., Any]]:
    """The Python-implemented functions the programs call (passing all of them is slow)."""
    wanted: dict[str, Callable[..., Any]] = {}
    for program in programs:
        if program is None:
            continue
        for short in program.functions():
            for name in _CEL_FUNCTIONS_BY_NAME.get(short, ()):
                wanted[name] = _CEL_FUNCTIONS[name]
    return wanted


def _cel_error_text(exc: Exception, rule: _Rule) -> str:
    """The detail of a rule that failed to evaluate, worded like cel-go errors in kube."""
    text = str(exc).split("\n", 1)[0]
    if isinstance(exc, TypeError) and ("overload" in text or text.startswith("Unsupported")):
        return (
            "'no such overload': call arguments did not match a supported operator, function or "
            f"macro signature for rule: {rule.error_string}"
        )
    if isinstance(exc, KeyError):
        text = f"no such key: {exc.args[0] if exc.args else ''}"
    elif isinstance(exc, ZeroDivisionError):
        text = "division by zero"
    elif isinstance(exc, OverflowError):
        text = "integer overflow"
    return f"{text} evaluating rule: {rule.error_string}"


@dataclass(frozen=True, slots=True)
class _Rule:
    """One compiled ``x-kubernetes-validations`` entry."""

    source: str
    program: Any
    message_program: Any
    reason: str
    field_path: str
    uses_old_self: bool
    optional_old_self: bool
    message_uses_old_self: bool
    functions: dict[str, Callable[..., Any]]
    error_string: str
    default_message: str


def _parse_field_path(field_path: str, node: _Node, where: str) -> str:
    """Normalize a rule's ``fieldPath`` (cel.ValidFieldPath): ``.a['b.c']`` -> ``a.b.c`` / ``a[k]``."""
    out = ""
    i, n = 0, len(field_path)
    current: _Node | None = node
    while i < n:
        if field_path[i] == ".":
            j = i + 1
            while j < n and field_path[j] not in ".[]":
                j += 1
            name, i = field_path[i + 1 : j], j
            if not name:
                raise SchemaError(f"{where}: fieldPath {field_path!r}: unexpected end of JSON path")
        elif field_path[i] == "[" and field_path.startswith("['", i):
            j = i + 2
            while j < n and not (field_path[j] == "'" and field_path[j - 1] != "\\"):
                j += 1
            if j + 1 >= n or field_path[j + 1] != "]":
                raise SchemaError(f"{where}: fieldPath {field_path!r}: expected single quoted string")
            name = re.sub(r"\\(.)", r"\1", field_path[i + 2 : j])
            i = j + 2
        else:
            raise SchemaError(f"{where}: fieldPath {field_path!r}: expected [ or . but got {field_path[i]!r}")
        if current is not None and current.properties is not None:
            if name not in current.properties:
                raise SchemaError(f"{where}: fieldPath {field_path!r} does not refer to a valid field")
            current = current.properties[name]
            out = f"{out}.{name}" if out else name
        elif current is not None and current.additional is not None:
            current = current.additional
            out = f"{out}[{name}]"
        else:
            raise SchemaError(f"{where}: fieldPath {field_path!r} does not refer to a valid field")
    return out


def _compile_rules(raw: Any, node: _Node, where: str) -> tuple[_Rule, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise SchemaError(f"{where}: x-kubernetes-validations must be a list")
    rules: list[_Rule] = []
    for index, entry in enumerate(raw):
        at = f"{where}.x-kubernetes-validations[{index}]"
        if not isinstance(entry, Mapping) or not isinstance(entry.get("rule"), str):
            raise SchemaError(f"{at}: rule must be a string")
        source = entry["rule"]
        if not source.strip():
            continue  # an empty rule compiles to no program: kube skips it
        try:
            program = cel.compile(source)
        except Exception as exc:
            raise SchemaError(f"{at}.rule: compilation failed: {exc}") from exc
        message = str(entry.get("message") or "").strip()
        message_program = None
        message_expression = entry.get("messageExpression")
        if isinstance(message_expression, str) and message_expression.strip():
            try:
                message_program = cel.compile(message_expression)
            except Exception as exc:
                raise SchemaError(f"{at}.messageExpression: compilation failed: {exc}") from exc
        reason = entry.get("reason") or _INVALID
        if reason not in _RULE_REASONS:
            raise SchemaError(f"{at}.reason: Unsupported value: {reason!r}")
        field_path = entry.get("fieldPath") or ""
        if not isinstance(field_path, str):
            raise SchemaError(f"{at}.fieldPath must be a string")
        error_string = message or source.strip()
        rules.append(
            _Rule(
                source=source,
                program=program,
                message_program=message_program,
                reason=reason,
                field_path=_parse_field_path(field_path, node, f"{at}.fieldPath") if field_path else "",
                uses_old_self="oldSelf" in program.variables(),
                optional_old_self=bool(entry.get("optionalOldSelf")),
                message_uses_old_self=message_program is not None
                and "oldSelf" in message_program.variables(),
                functions=_cel_functions(program, message_program),
                error_string=error_string,
                default_message=message or f"failed rule: {error_string}",
            )
        )
    return tuple(rules)


# ---------------------------------------------------------------------------------------------
# The compiled schema tree.
# ---------------------------------------------------------------------------------------------

_MISSING: Final[Any] = object()
_META_FIELDS: Final = frozenset({"apiVersion", "kind", "metadata"})
_NUMBER_TYPES: Final = frozenset({"integer", "number"})
_STRING_OR_ARRAY: Final = frozenset({"string", "array"})


def _json_type(value: Any) -> tuple[str, str]:
    """kube-openapi's schemaInfoForType for decoded JSON: (type, format)."""
    if isinstance(value, str):
        return "string", ""
    if isinstance(value, bool):
        return "boolean", ""
    if isinstance(value, int):
        return "integer", "int64"
    if isinstance(value, float):
        return "number", "float64"
    if isinstance(value, Mapping):
        return "object", ""
    if isinstance(value, list):
        return "array", ""
    return "", ""


def _opt_int(schema: Mapping[str, Any], key: str) -> int | None:
    value = schema.get(key)
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _opt_float(schema: Mapping[str, Any], key: str) -> float | None:
    value = schema.get(key)
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


class _Node:
    """One schema node, with everything the per-request walks need precomputed."""

    __slots__ = (
        "additional",
        "all_of",
        "any_of",
        "cel_fields",
        "cel_kind",
        "cel_value_label",
        "default",
        "default_props",
        "embedded",
        "enum_detail",
        "enum_keys",
        "enum_values",
        "excl_max",
        "excl_min",
        "format",
        "format_check",
        "has_defaults",
        "has_rules",
        "int_or_string",
        "items",
        "list_map_keys",
        "list_type",
        "map_atomic",
        "max_items",
        "max_length",
        "max_props",
        "maximum",
        "min_items",
        "min_length",
        "min_props",
        "minimum",
        "multiple_of",
        "not_",
        "nullable",
        "one_of",
        "pattern",
        "pattern_source",
        "preserve_unknown",
        "properties",
        "required",
        "resource_root",
        "rule_props",
        "rules",
        "rules_use_old",
        "type_",
        "types",
        "types_label",
        "unique_items",
        "vprops",
    )

    def __init__(self) -> None:
        self.type_: str | None = None
        self.types: frozenset[str] = frozenset()
        self.types_label = ""
        self.int_or_string = False
        self.nullable = False
        self.format: str | None = None
        self.format_check: Callable[[str], bool] | None = None
        self.properties: dict[str, _Node] | None = None
        self.vprops: dict[str, _Node] | None = None
        self.additional: _Node | None = None
        self.items: _Node | None = None
        self.preserve_unknown = False
        self.embedded = False
        self.resource_root = False
        self.required: tuple[str, ...] = ()
        self.enum_values: tuple[Any, ...] | None = None
        self.enum_keys: frozenset[Any] = frozenset()
        self.enum_detail = ""
        self.min_length: int | None = None
        self.max_length: int | None = None
        self.pattern: re.Pattern[str] | None = None
        self.pattern_source = ""
        self.minimum: float | None = None
        self.maximum: float | None = None
        self.excl_min = False
        self.excl_max = False
        self.multiple_of: float | None = None
        self.min_items: int | None = None
        self.max_items: int | None = None
        self.unique_items = False
        self.min_props: int | None = None
        self.max_props: int | None = None
        self.list_type: str | None = None
        self.list_map_keys: tuple[str, ...] = ()
        self.map_atomic = False
        self.all_of: tuple[_Node, ...] = ()
        self.any_of: tuple[_Node, ...] = ()
        self.one_of: tuple[_Node, ...] = ()
        self.not_: _Node | None = None
        self.default: Any = _MISSING
        self.default_props: tuple[tuple[str, _Node], ...] = ()
        self.has_defaults = False
        self.rules: tuple[_Rule, ...] = ()
        self.rules_use_old = False
        self.rule_props: tuple[tuple[str, _Node], ...] = ()
        self.has_rules = False
        self.cel_kind = "dyn"
        self.cel_value_label = '""'
        self.cel_fields: tuple[tuple[str, str, _Node], ...] = ()


def _any_node() -> _Node:
    node = _Node()
    node.preserve_unknown = True
    return node


_ANY: Final = _any_node()  # additionalProperties: true


def _compile_node(schema: Any, where: str) -> _Node:
    if not isinstance(schema, Mapping):
        raise SchemaError(f"{where}: a schema must be an object")
    node = _Node()
    type_ = schema.get("type")
    node.type_ = type_ if isinstance(type_, str) and type_ else None
    node.int_or_string = bool(schema.get("x-kubernetes-int-or-string"))
    if node.int_or_string:
        node.types = frozenset({"integer", "string"})
        node.types_label = "integer,string"
    elif node.type_ is not None:
        node.types = frozenset({node.type_})
        node.types_label = node.type_
    node.nullable = bool(schema.get("nullable"))
    fmt = schema.get("format")
    if isinstance(fmt, str) and fmt:
        node.format = fmt
        node.format_check = _FORMAT_CHECKS.get(_normalize_format(fmt))

    properties = schema.get("properties")
    if isinstance(properties, Mapping):
        node.properties = {
            str(k): _compile_node(v, f"{where}.properties[{k}]") for k, v in properties.items()
        }
        node.vprops = node.properties
    additional = schema.get("additionalProperties")
    if additional is True:
        node.additional = _ANY
    elif isinstance(additional, Mapping):
        node.additional = _compile_node(additional, f"{where}.additionalProperties")
    items = schema.get("items")
    if isinstance(items, Mapping):
        node.items = _compile_node(items, f"{where}.items")

    node.preserve_unknown = bool(schema.get("x-kubernetes-preserve-unknown-fields"))
    node.embedded = bool(schema.get("x-kubernetes-embedded-resource"))
    required = schema.get("required")
    if isinstance(required, list):
        node.required = tuple(str(r) for r in required)

    enum = schema.get("enum")
    if isinstance(enum, list) and enum:
        node.enum_values = tuple(enum)
        node.enum_keys = frozenset(_enum_key(v) for v in enum)
        shown = (v if isinstance(v, str) else _go_json(v) for v in enum)
        node.enum_detail = "supported values: " + ", ".join(_go_quote(s) for s in shown)

    node.min_length = _opt_int(schema, "minLength")
    node.max_length = _opt_int(schema, "maxLength")
    pattern = schema.get("pattern")
    if isinstance(pattern, str) and pattern:
        node.pattern_source = pattern
        node.pattern = _compile_pattern(pattern)
    node.minimum = _opt_float(schema, "minimum")
    node.maximum = _opt_float(schema, "maximum")
    node.excl_min = bool(schema.get("exclusiveMinimum"))
    node.excl_max = bool(schema.get("exclusiveMaximum"))
    node.multiple_of = _opt_float(schema, "multipleOf")
    node.min_items = _opt_int(schema, "minItems")
    node.max_items = _opt_int(schema, "maxItems")
    node.unique_items = bool(schema.get("uniqueItems"))
    node.min_props = _opt_int(schema, "minProperties")
    node.max_props = _opt_int(schema, "maxProperties")
    list_type = schema.get("x-kubernetes-list-type")
    node.list_type = list_type if list_type in ("set", "map") else None
    keys = schema.get("x-kubernetes-list-map-keys")
    if isinstance(keys, list):
        node.list_map_keys = tuple(str(k) for k in keys)
    node.map_atomic = schema.get("x-kubernetes-map-type") == "atomic"

    for key in ("allOf", "anyOf", "oneOf"):
        branches = schema.get(key)
        if isinstance(branches, list):
            compiled = tuple(_compile_node(b, f"{where}.{key}[{i}]") for i, b in enumerate(branches))
            setattr(node, {"allOf": "all_of", "anyOf": "any_of", "oneOf": "one_of"}[key], compiled)
    if isinstance(schema.get("not"), Mapping):
        node.not_ = _compile_node(schema["not"], f"{where}.not")

    default = schema.get("default")
    node.default = _MISSING if default is None else default
    _finish_node(node)
    node.rules = _compile_rules(schema.get("x-kubernetes-validations"), node, where)
    node.rules_use_old = any(r.uses_old_self or r.message_uses_old_self for r in node.rules)
    node.has_rules = bool(node.rules) or node.has_rules
    return node


def _finish_node(node: _Node) -> None:
    """Derived fields: what defaulting, CEL and CEL value conversion need to visit."""
    children = list(node.properties.values()) if node.properties else []
    if node.additional is not None and node.additional is not _ANY:
        children.append(node.additional)
    if node.items is not None:
        children.append(node.items)
    if node.properties:
        node.default_props = tuple((k, p) for k, p in node.properties.items() if p.default is not _MISSING)
    node.has_defaults = bool(node.default_props) or any(
        c.has_defaults or c.default is not _MISSING for c in children
    )
    props = node.vprops or {}
    node.rule_props = tuple((k, p) for k, p in props.items() if p.has_rules)
    node.has_rules = (
        bool(node.rule_props)
        or any(c.has_rules for c in (node.additional, node.items) if c is not None)
        or any(b.has_rules for b in node.all_of)
    )

    # CEL types (cel/model.SchemaDeclType).
    if node.int_or_string:
        node.cel_kind = "dyn"
    elif node.type_ == "object":
        node.cel_kind = "map" if node.additional is not None and node.additional is not _ANY else "object"
    elif node.type_ == "array":
        node.cel_kind = "list"
    elif node.type_ == "integer":
        node.cel_kind = "int"
    elif node.type_ == "number":
        node.cel_kind = "float"
    elif node.type_ == "boolean":
        node.cel_kind = "bool"
    elif node.type_ == "string":
        fmt = _normalize_format(node.format or "")
        node.cel_kind = {
            "byte": "bytes",
            "duration": "duration",
            "date": "date",
            "datetime": "timestamp",
        }.get(fmt, "string")
    else:
        node.cel_kind = "skip"  # untyped (preserve-unknown-fields only): invisible to CEL
    node.cel_value_label = _go_quote(node.type_ or "")
    fields: list[tuple[str, str, _Node]] = []
    for key, prop in (node.properties or {}).items():
        escaped = _cel_escape(key)
        if escaped is not None and prop.cel_kind != "skip":
            fields.append((key, escaped, prop))
    node.cel_fields = tuple(fields)


def _compile_root(schema: Mapping[str, Any]) -> _Node:
    root = _compile_node(schema, "openAPIV3Schema")
    root.resource_root = True
    root.embedded = True
    if root.properties is not None:
        vprops = {k: v for k, v in root.properties.items() if k not in _META_FIELDS}
        meta = root.properties.get("metadata")
        if meta is not None and meta.properties:
            # metadata may only restrict name and generateName; everything else is ObjectMeta's.
            restricted = _Node()
            restricted.preserve_unknown = True
            restricted.properties = {
                k: v for k, v in meta.properties.items() if k in ("name", "generateName")
            }
            restricted.vprops = restricted.properties
            if restricted.properties:
                _finish_node(restricted)
                vprops["metadata"] = restricted
        root.vprops = vprops
        _finish_node(root)
        root.has_rules = root.has_rules or bool(root.rules)
    return root


# ---------------------------------------------------------------------------------------------
# Pruning and defaulting.
# ---------------------------------------------------------------------------------------------


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _prune(node: _Node | None, value: Any, path: str, removed: list[str]) -> None:
    """pruning.prune: drop undeclared fields, recording their paths."""
    if node is not None and node.preserve_unknown:
        _skip_prune(node, value, path, removed)
        return
    if isinstance(value, dict):
        if node is None:
            for key in value:
                removed.append(_join(path, key))
            value.clear()
            return
        props, additional, embedded = node.properties, node.additional, node.embedded
        for key in list(value):
            child = value[key]
            if (
                embedded
                and key in _META_FIELDS
                and (node.resource_root or key == "metadata" or isinstance(child, str))
            ):
                continue  # apiVersion/kind/metadata of a resource are ObjectMeta's business
            prop = props.get(key) if props is not None else None
            if prop is not None:
                _prune(prop, child, _join(path, key), removed)
            elif additional is not None:
                _prune(additional, child, _join(path, key), removed)
            else:
                removed.append(_join(path, key))
                del value[key]
    elif isinstance(value, list):
        items = node.items if node is not None else None
        for index, item in enumerate(value):
            _prune(items, item, f"{path}[{index}]", removed)


def _skip_prune(node: _Node, value: Any, path: str, removed: list[str]) -> None:
    """pruning.skipPrune: below preserve-unknown-fields only declared children are pruned."""
    if isinstance(value, dict):
        props, additional = node.properties, node.additional
        for key, child in value.items():
            if node.embedded and key in _META_FIELDS:
                continue
            prop = props.get(key) if props is not None else None
            if prop is not None:
                _prune(prop, child, _join(path, key), removed)
            elif additional is not None:
                _prune(additional, child, _join(path, key), removed)
    elif isinstance(value, list) and node.items is not None:
        for index, item in enumerate(value):
            _skip_prune(node.items, item, f"{path}[{index}]", removed)


def _prune_nulls(node: _Node | None, value: Any, *, root: bool = False) -> None:
    """defaulting.PruneNonNullableNullsWithoutDefaults."""
    if node is None:
        return
    if isinstance(value, dict):
        props, additional = node.properties, node.additional
        for key in list(value):
            if root and key in _META_FIELDS:
                continue
            child_node = props.get(key) if props is not None else None
            if child_node is None and additional is not _ANY:
                child_node = additional
            child = value[key]
            if child is None:
                if child_node is not None and not child_node.nullable and child_node.default is _MISSING:
                    del value[key]
            else:
                _prune_nulls(child_node, child)
    elif isinstance(value, list) and node.items is not None:
        for item in value:
            _prune_nulls(node.items, item)


def _copy_json(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _copy_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copy_json(v) for v in value]
    return value


def _default(node: _Node, value: Any, *, root: bool = False) -> None:
    """defaulting.Default: fill absent (or non-nullable null) fields from ``default:``."""
    if not node.has_defaults:
        return
    if isinstance(value, dict):
        for key, prop in node.default_props:
            if root and key in _META_FIELDS:
                continue
            if key not in value or (value[key] is None and not prop.nullable):
                value[key] = _copy_json(prop.default)
        props, additional = node.properties, node.additional
        for key, child in value.items():
            if root and key in _META_FIELDS:
                continue
            child_node = props.get(key) if props is not None else None
            if child_node is not None:
                _default(child_node, child)
            elif additional is not None and additional is not _ANY:
                if child is None and not additional.nullable and additional.default is not _MISSING:
                    child = value[key] = _copy_json(additional.default)
                _default(additional, child)
    elif isinstance(value, list) and node.items is not None:
        items = node.items
        for index, child in enumerate(value):
            if child is None and not items.nullable and items.default is not _MISSING:
                child = value[index] = _copy_json(items.default)
            _default(items, child)


# ---------------------------------------------------------------------------------------------
# OpenAPI value validation (kube-openapi SchemaValidator) and list types.
# ---------------------------------------------------------------------------------------------


def _check_type(node: _Node, value: Any, path: str) -> Cause | None:
    """kube-openapi typeValidator for a non-null value."""
    sch, data_format = _json_type(value)
    types = node.types
    fmt = node.format or ""
    is_float_int = sch == "number" and "integer" in types and float(value).is_integer()
    is_int_float = sch == "integer" and "number" in types
    if (
        fmt
        and sch not in _STRING_OR_ARRAY
        and not (
            sch in types
            or data_format == fmt
            or is_float_int
            or is_int_float
            or (fmt == "int64" and data_format == "int32")
            or (fmt == "float64" and data_format == "float32")
        )
    ):
        return _type_invalid(
            path, data_format, f"{path} in body must be of type {fmt}: {_go_quote(data_format)}"
        )
    if fmt and sch in _STRING_OR_ARRAY and not (types & _NUMBER_TYPES):
        return None
    if sch in types or is_float_int or is_int_float:
        return None
    return _type_invalid(path, sch, f"{path} in body must be of type {node.types_label}: {_go_quote(sch)}")


def _is_json_integer(f: float) -> bool:
    """swag.IsFloat64AJSONInteger."""
    if math.isnan(f) or math.isinf(f):
        return False
    if f.is_integer():
        return True
    nearest = round(f)
    return abs(f - nearest) / min(abs(f) + abs(nearest), 1.7976931348623157e308) < 1e-9


def _check_number(node: _Node, value: int | float, path: str, out: list[Cause]) -> None:
    """kube-openapi numberValidator: multipleOf, minimum, maximum (each reported)."""
    is_int = isinstance(value, int)
    factor = node.multiple_of
    if factor is not None:
        if factor < 0:
            out.append(
                _invalid(
                    path,
                    factor,
                    f"factor MultipleOf declared for {path} must be positive: {_go_float(factor)}",
                )
            )
        elif is_int and factor >= 1:
            int_factor = int(factor)
            if value % int_factor:
                out.append(_invalid(path, value, f"{path} in body should be a multiple of {int_factor}"))
        elif factor > 0:
            data = float(value)
            if not _is_json_integer(1 / factor * data if factor < 1 else data / factor):
                out.append(
                    _invalid(path, value, f"{path} in body should be a multiple of {_go_float(factor)}")
                )
    bound = node.minimum
    if bound is not None:
        limit: int | float = int(bound) if is_int else bound
        if value < limit or (node.excl_min and value == limit):
            shown = str(limit) if is_int else _go_float(bound)
            rel = "greater than" if node.excl_min else "greater than or equal to"
            out.append(_invalid(path, value, f"{path} in body should be {rel} {shown}"))
    bound = node.maximum
    if bound is not None:
        limit = int(bound) if is_int else bound
        if value > limit or (node.excl_max and value == limit):
            shown = str(limit) if is_int else _go_float(bound)
            rel = "less than" if node.excl_max else "less than or equal to"
            out.append(_invalid(path, value, f"{path} in body should be {rel} {shown}"))


def _check_string(node: _Node, value: str, path: str, out: list[Cause]) -> None:
    """kube-openapi stringValidator (first failure only), then formatValidator."""
    if node.max_length is not None and len(value) > node.max_length:
        unit = "byte" if node.max_length == 1 else "bytes"
        out.append(Cause(_TOO_LONG, f"Too long: may not be more than {node.max_length} {unit}", _field(path)))
    elif node.min_length is not None and len(value) < node.min_length:
        out.append(_invalid(path, value, f"{path} in body should be at least {node.min_length} chars long"))
    elif node.pattern is not None and node.pattern.search(value) is None:
        out.append(_invalid(path, value, f"{path} in body should match '{node.pattern_source}'"))
    if node.format_check is not None and not node.format_check(value):
        out.append(
            _type_invalid(path, value, f"{path} in body must be of type {node.format}: {_go_quote(value)}")
        )


def _check_composition(node: _Node, value: Any, path: str, out: list[Cause]) -> None:
    """kube-openapi schemaPropsValidator: anyOf, oneOf, allOf, not."""
    quoted = _go_quote(path)
    if node.any_of:
        best: list[Cause] | None = None
        for branch in node.any_of:
            errs: list[Cause] = []
            _check(branch, value, path, errs)
            if not errs:
                break
            best = best or errs
        else:
            out.append(_composite(f"{quoted} must validate at least one schema (anyOf)"))
            out.extend(best or ())
    if node.one_of:
        valid = 0
        first_failure: list[Cause] | None = None
        for branch in node.one_of:
            errs = []
            _check(branch, value, path, errs)
            if errs:
                first_failure = first_failure or errs
            else:
                valid += 1
        if valid != 1:
            found = "Found none valid" if valid == 0 else f"Found {valid} valid alternatives"
            out.append(_composite(f"{quoted} must validate one and only one schema (oneOf). {found}"))
            if valid == 0:
                out.extend(first_failure or ())
    if node.all_of:
        valid = 0
        for branch in node.all_of:
            errs = []
            _check(branch, value, path, errs)
            if errs:
                out.extend(errs)
            else:
                valid += 1
        if valid != len(node.all_of):
            none = ". None validated" if valid == 0 else ""
            out.append(_composite(f"{quoted} must validate all the schemas (allOf){none}"))
    if node.not_ is not None:
        errs = []
        _check(node.not_, value, path, errs)
        if not errs:
            out.append(_composite(f"{quoted} must not validate the schema (not)"))


def _check_list_type(node: _Node, value: list[Any], path: str, out: list[Cause]) -> None:
    """listtype.ValidateListSetsAndMaps for one array."""
    if len(value) <= 1:
        return
    if node.list_type == "set":
        seen: dict[Any, int] = {}
        for index, item in enumerate(value):
            key = _set_key(item)
            times = seen.get(key, 0)
            seen[key] = times + 1
            if times == 1:
                out.append(_duplicate(f"{path}[{index}]", item))
        return
    if any(item is not None and not isinstance(item, dict) for item in value):
        return  # the items' own type errors say it
    key_fields = node.list_map_keys
    seen = {}
    for index, item in enumerate(value):
        present = {k: item[k] for k in key_fields if item is not None and k in item}
        if len(key_fields) == 1:
            key = _set_key(present[key_fields[0]]) if present else ("unspecified",)
        else:
            key = ("json", _go_json(present))
        times = seen.get(key, 0)
        seen[key] = times + 1
        if times == 1:
            out.append(_duplicate(f"{path}[{index}]", present))


def _check_embedded(value: dict[str, Any], path: str, out: list[Cause]) -> None:
    """objectmeta.validateEmbeddedResource: apiVersion and kind are required strings."""
    for key in ("apiVersion", "kind"):
        sub = _join(path, key)
        if key not in value:
            out.append(_required(sub))
        elif not isinstance(value[key], str):
            out.append(_invalid(sub, value[key], "must be a string"))
        elif not value[key]:
            out.append(_required(sub))


def _check(node: _Node, value: Any, path: str, out: list[Cause]) -> None:
    """Validate one value against one node; a type mismatch stops at that node."""
    if value is None:
        if node.types and not node.nullable:
            out.append(
                _type_invalid(path, "null", f'{path} in body must be of type {node.types_label}: "null"')
            )
        elif node.enum_values is not None and None not in node.enum_keys:
            out.append(Cause(_NOT_SUPPORTED, f"Unsupported value: null: {node.enum_detail}", _field(path)))
        return
    if node.types or node.format:
        type_error = _check_type(node, value, path)
        if type_error is not None:
            out.append(type_error)
            return
    if node.any_of or node.one_of or node.all_of or node.not_ is not None:
        _check_composition(node, value, path, out)

    if isinstance(value, str):
        if node.max_length is not None or node.min_length is not None or node.pattern is not None:
            _check_string(node, value, path, out)
        elif node.format_check is not None and not node.format_check(value):
            out.append(
                _type_invalid(
                    path, value, f"{path} in body must be of type {node.format}: {_go_quote(value)}"
                )
            )
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        if node.minimum is not None or node.maximum is not None or node.multiple_of is not None:
            _check_number(node, value, path, out)
    elif isinstance(value, list):
        items = node.items
        if items is not None:
            for index, item in enumerate(value):
                _check(items, item, f"{path}[{index}]", out)
        size = len(value)
        if node.min_items is not None and size < node.min_items:
            out.append(_invalid(path, size, f"{path} in body should have at least {node.min_items} items"))
        if node.max_items is not None and size > node.max_items:
            out.append(_too_many(path, size, node.max_items))
        if node.unique_items and len({_strict_key(v) for v in value}) != size:
            out.append(_invalid(path, "", f"{path} in body shouldn't contain duplicates"))
        if node.list_type is not None:
            _check_list_type(node, value, path, out)

    if node.enum_values is not None and _enum_key(value) not in node.enum_keys:
        out.append(
            Cause(_NOT_SUPPORTED, f"Unsupported value: {_go_value(value)}: {node.enum_detail}", _field(path))
        )

    if isinstance(value, dict):
        size = len(value)
        if node.min_props is not None and size < node.min_props:
            out.append(
                _invalid(
                    path, node.min_props, f"{path} in body should have at least {node.min_props} properties"
                )
            )
            return
        if node.max_props is not None and size > node.max_props:
            out.append(_too_many(path, size, node.max_props))
            return
        props, additional = node.vprops, node.additional
        if additional is not None and additional is not _ANY:
            declared = node.properties or {}
            for key, child in value.items():
                if key not in declared:
                    _check(additional, child, _join(path, key), out)
        if props:
            for key, child in value.items():
                prop = props.get(key)
                if prop is not None:
                    _check(prop, child, _join(path, key), out)
        for key in node.required:
            if key not in value:
                out.append(_required(_join(path, key)))
        if node.embedded and not node.resource_root:
            _check_embedded(value, path, out)


# ---------------------------------------------------------------------------------------------
# CEL rules.
# ---------------------------------------------------------------------------------------------


def _to_cel(node: _Node, value: Any) -> Any:
    """A JSON value as CEL sees it under this schema (cel.UnstructuredToVal)."""
    if value is None:
        return None
    kind = node.cel_kind
    if kind == "object":
        if not isinstance(value, dict):
            return value
        out: dict[str, Any] = {}
        for key, escaped, child in node.cel_fields:
            item = value.get(key)
            if item is not None:
                out[escaped] = _to_cel(child, item)
        if node.embedded:
            _add_type_and_object_meta(value, out)
        return out
    if kind == "map":
        additional = node.additional
        if not isinstance(value, dict) or additional is None:
            return value
        return {k: _to_cel(additional, v) for k, v in value.items() if v is not None}
    if kind == "list":
        items = node.items
        if not isinstance(value, list) or items is None:
            return value
        return [_to_cel(items, v) for v in value]
    if kind == "float":
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value
    if kind == "timestamp" and isinstance(value, str):
        instant = _parse_datetime(value)
        return instant if instant is not None else value
    if kind == "date" and isinstance(value, str):
        day = _parse_date(value)
        return day if day is not None else value
    if kind == "duration" and isinstance(value, str):
        duration = _parse_duration(value)
        return duration if duration is not None else value
    if kind == "bytes" and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return value
    return value


def _add_type_and_object_meta(value: dict[str, Any], out: dict[str, Any]) -> None:
    """cel/model.WithTypeAndObjectMeta: apiVersion, kind, metadata.name/generateName."""
    for key in ("apiVersion", "kind"):
        if isinstance(value.get(key), str):
            out[key] = value[key]
    meta = value.get("metadata")
    if isinstance(meta, dict):
        out["metadata"] = {k: meta[k] for k in ("name", "generateName") if isinstance(meta.get(k), str)}


def _rule_cause(rule: _Rule, node: _Node, path: str, detail: str) -> Cause:
    """fieldErrorForReason, at the node's path plus the rule's fieldPath."""
    if rule.field_path:
        path = _join(path, rule.field_path) if not rule.field_path.startswith("[") else path + rule.field_path
    if rule.reason == _FORBIDDEN:
        return Cause(_FORBIDDEN, f"Forbidden: {detail}", _field(path))
    if rule.reason == _REQUIRED:
        return _required(path, detail)
    if rule.reason == _DUPLICATE:
        return Cause(_DUPLICATE, f"Duplicate value: {node.cel_value_label}", _field(path))
    return Cause(_INVALID, f"Invalid value: {node.cel_value_label}: {detail}", _field(path))


def _eval_rules(node: _Node, value: Any, old: Any, path: str, out: list[Cause]) -> None:
    """validateExpressions for one node: every rule, never raising."""
    self_value = _to_cel(node, value)
    has_old = old is not _MISSING and old is not None
    old_value = _to_cel(node, old) if has_old and node.rules_use_old else None
    for rule in node.rules:
        if rule.uses_old_self and not has_old and not rule.optional_old_self:
            continue  # transition rules only run when there is a correlated old value
        activation: dict[str, Any] = {"self": self_value}
        if rule.uses_old_self:
            if rule.optional_old_self:
                activation["oldSelf"] = (
                    cel.OptionalValue.of(old_value) if has_old else cel.OptionalValue.none()
                )
            else:
                activation["oldSelf"] = old_value
        if rule.functions:
            activation.update(rule.functions)
        try:
            result = rule.program.execute(activation)
        except Exception as exc:
            text = _cel_error_text(exc, rule)
            out.append(Cause(_INVALID, f"Invalid value: {node.cel_value_label}: {text}", _field(path)))
            continue
        if result is True:
            continue
        detail = rule.default_message
        if rule.message_program is not None:
            message_activation: dict[str, Any] = {"self": self_value, **rule.functions}
            if rule.message_uses_old_self and has_old:
                message_activation["oldSelf"] = old_value
            try:
                message = rule.message_program.execute(message_activation)
            except Exception:
                message = None
            if isinstance(message, str):
                message = message.strip()
                if message and "\n" not in message and len(message.encode()) <= 5000:
                    detail = message
        out.append(_rule_cause(rule, node, path, detail))


def _list_map_key(node: _Node, item: dict[str, Any]) -> Any:
    return tuple(_set_key(item[k]) if k in item else ("unspecified",) for k in node.list_map_keys)


def _walk_rules(node: _Node, value: Any, old: Any, path: str, out: list[Cause]) -> None:
    """cel.Validator.validate: rules of this node, its allOf branches, then the children."""
    if value is None:
        return
    if node.rules:
        _eval_rules(node, value, old, path, out)
    for branch in node.all_of:
        if branch.has_rules:
            _walk_rules(branch, value, old, path, out)
    if isinstance(value, dict):
        old_map = old if isinstance(old, dict) and not node.map_atomic else None
        additional = node.additional
        if additional is not None and additional.has_rules:
            for key, child in value.items():
                old_child = old_map.get(key, _MISSING) if old_map is not None else _MISSING
                _walk_rules(additional, child, old_child, f"{path}[{key}]", out)
        for key, prop in node.rule_props:
            if key in value:
                old_child = old_map.get(key, _MISSING) if old_map is not None else _MISSING
                _walk_rules(prop, value[key], old_child, _join(path, key), out)
    elif isinstance(value, list):
        items = node.items
        if items is None or not items.has_rules:
            return
        old_items: dict[Any, Any] | None = None
        if node.list_type == "map" and isinstance(old, list):
            old_items = {_list_map_key(node, o): o for o in old if isinstance(o, dict)}
        for index, item in enumerate(value):
            old_item = _MISSING
            if old_items is not None and isinstance(item, dict):
                old_item = old_items.get(_list_map_key(node, item), _MISSING)
            _walk_rules(items, item, old_item, f"{path}[{index}]", out)


# ---------------------------------------------------------------------------------------------
# Public API.
# ---------------------------------------------------------------------------------------------


class CompiledSchema:
    """One CRD version's ``openAPIV3Schema``, compiled once and applied to custom objects.

    Per write, kube-apiserver order: :meth:`prune`, then :meth:`default`, then :meth:`validate`.
    """

    __slots__ = ("_root",)

    def __init__(self, root: _Node) -> None:
        self._root = root

    @classmethod
    def compile(cls, schema: Mapping[str, Any]) -> CompiledSchema:
        """Compile the schema tree and all of its CEL programs; :class:`SchemaError` if one fails."""
        if not isinstance(schema, Mapping):
            raise SchemaError("openAPIV3Schema must be an object")
        return cls(_compile_root(schema))

    @property
    def has_rules(self) -> bool:
        """Whether any ``x-kubernetes-validations`` rule exists in the schema."""
        return self._root.has_rules

    def prune(self, obj: dict[str, Any]) -> list[str]:
        """Remove unknown fields in place; return their paths (``spec.foo``, ``spec.items[0].x``).

        ``apiVersion``, ``kind`` and ``metadata`` at the root are left alone.  Non-nullable
        ``null`` values without a default are dropped as well, but not reported (kube-apiserver
        does not warn about them either).
        """
        removed: list[str] = []
        _prune(self._root, obj, "", removed)
        _prune_nulls(self._root, obj, root=True)
        return removed

    def default(self, obj: dict[str, Any]) -> None:
        """Apply ``default:`` values in place, wherever the parent object exists."""
        _default(self._root, obj, root=True)

    def validate(self, obj: Mapping[str, Any], *, old: Mapping[str, Any] | None = None) -> list[Cause]:
        """All field errors of ``obj``, ordered by field path; empty if valid.

        ``old`` is the stored object on update: transition rules (those using ``oldSelf``) run
        only where the old object has a correlated value.  As in kube-apiserver, CEL rules are
        skipped altogether while there are type, required, enum, too-long or too-many errors,
        and a trailing ``<nil>`` cause says so.
        """
        root = self._root
        causes: list[Cause] = []
        _check(root, obj, "", causes)
        causes = _sorted_causes(causes)
        if root.has_rules:
            if any(c.reason in _BLOCKING for c in causes):
                causes.append(_CEL_SKIPPED)
            else:
                rule_causes: list[Cause] = []
                _walk_rules(root, obj, _MISSING if old is None else old, "", rule_causes)
                if rule_causes:
                    causes = _sorted_causes(causes + rule_causes)
        return causes
