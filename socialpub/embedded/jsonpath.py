"""The subset of kubectl JSONPath that CRD ``additionalPrinterColumns`` use, plus Table cells.

``kubectl get`` asks for ``as=Table`` and prints the cells the server computes. For custom
resources kube-apiserver evaluates each printer column's ``jsonPath`` against the object,
takes the first result and converts it per the column ``type`` (apiextensions-apiserver
``tableconvertor.go``). This module does the same for the embedded server.

Supported syntax: ``.a.b`` fields (``\\.`` escapes a dot, as in
``.metadata.labels.social\\.softsolz\\.uk/id``), ``['key']`` / ``["key"]``, ``[0]`` and
``[-1]``, slices ``[1:3]``, ``[*]`` and ``.*``, and filters ``[?(@.type=="Ready")]`` with
``==``, ``!=``, ``<``, ``<=``, ``>``, ``>=`` against a string, number or boolean literal, or
``[?(@.field)]`` for existence.  An optional leading ``$`` and the kubectl ``{...}``
wrapper are accepted.  Recursive descent (``..``), unions and ``range`` are not supported.

Missing keys are not errors: like the apiserver (``AllowMissingKeys(true)``), a path that
does not resolve simply finds nothing.

Pure functions only: no I/O, no imports from the rest of socialpub.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

__all__ = [
    "JsonPath",
    "JsonPathError",
    "compile_path",
    "format_cell",
    "human_duration",
]


class JsonPathError(ValueError):
    """The expression is malformed or uses syntax outside the supported subset."""


@dataclass(frozen=True)
class _Field:
    name: str


@dataclass(frozen=True)
class _Index:
    index: int


@dataclass(frozen=True)
class _Slice:
    start: int | None
    stop: int | None
    step: int | None


@dataclass(frozen=True)
class _Wildcard:
    pass


@dataclass(frozen=True)
class _Filter:
    path: tuple[_Step, ...]
    operator: str  # "exists" or a comparison operator
    literal: Any = None


_Step = _Field | _Index | _Slice | _Wildcard | _Filter


@dataclass(frozen=True)
class JsonPath:
    """A compiled expression; evaluate it with :meth:`find` or :meth:`first`."""

    expression: str
    _steps: tuple[_Step, ...]

    def find(self, obj: Any) -> list[Any]:
        """All values the path selects, in document order; ``[]`` if nothing matches.

        The values are the objects inside ``obj`` themselves, not copies.
        """
        return _evaluate(self._steps, obj)

    def first(self, obj: Any) -> Any | None:
        """The first value the path selects, or None (also for a selected JSON null)."""
        found = _evaluate(self._steps, obj)
        return found[0] if found else None


def compile_path(expr: str) -> JsonPath:
    """Compile ``.status.phase``, ``{.status.phase}`` or ``$.status.phase``."""
    text = expr.strip()
    if text.startswith("{"):
        if not text.endswith("}"):
            raise JsonPathError(f"unclosed action in JSONPath {expr!r}")
        text = text[1:-1].strip()
    if text.startswith("$"):
        text = text[1:]
        if not text:
            return JsonPath(expr, ())
    if not text:
        raise JsonPathError(f"empty JSONPath {expr!r}")
    if text == ".":
        return JsonPath(expr, ())
    if not text.startswith((".", "[")):
        raise JsonPathError(f"JSONPath {expr!r} must start with '.', '[' or '$'")
    return JsonPath(expr, _parse_steps(text, expr))


# ---------------------------------------------------------------------------------------------
# Parsing.
# ---------------------------------------------------------------------------------------------

_FIELD_TERMINATORS = frozenset(" \t\r\n.,[]$@{}")
_SLICE_RE = re.compile(r"(-?\d+)?(?::(-?\d+)?)?(?::(-?\d+)?)?")
_FILTER_RE = re.compile(r"([^!<>=]+)([!<>=]+)(.+)", re.DOTALL)
_COMPARISONS = frozenset({"==", "!=", "<", "<=", ">", ">="})
_INT_RE = re.compile(r"-?\d+")
_FLOAT_RE = re.compile(r"-?(\d+\.\d*|\.\d+|\d+)([eE][-+]?\d+)?")


def _parse_steps(text: str, expr: str) -> tuple[_Step, ...]:
    steps: list[_Step] = []
    position = 0
    while position < len(text):
        char = text[position]
        if char == ".":
            position += 1
            if position < len(text) and text[position] == ".":
                raise JsonPathError(f"recursive descent '..' is not supported in JSONPath {expr!r}")
            if position < len(text) and text[position] == "[":
                continue  # `.[0]` is the same as `[0]`
            name, position = _read_field_name(text, position)
            if not name:
                raise JsonPathError(f"empty field name in JSONPath {expr!r}")
            steps.append(_Wildcard() if name == "*" else _Field(name))
        elif char == "[":
            step, position = _read_bracket(text, position, expr)
            steps.append(step)
        else:
            raise JsonPathError(f"unexpected {char!r} at position {position} in JSONPath {expr!r}")
    return tuple(steps)


def _read_field_name(text: str, position: int) -> tuple[str, int]:
    name: list[str] = []
    while position < len(text):
        char = text[position]
        if char == "\\" and position + 1 < len(text):
            name.append(text[position + 1])
            position += 2
        elif char in _FIELD_TERMINATORS:
            break
        else:
            name.append(char)
            position += 1
    return "".join(name), position


def _find_closing(text: str, position: int, closing: str, expr: str) -> int:
    """Index of ``closing`` at or after ``position``, skipping quoted strings."""
    quote: str | None = None
    while position < len(text):
        char = text[position]
        if quote:
            if char == "\\":
                position += 1
            elif char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif text.startswith(closing, position):
            return position
        position += 1
    raise JsonPathError(f"missing {closing!r} in JSONPath {expr!r}")


def _read_bracket(text: str, position: int, expr: str) -> tuple[_Step, int]:
    if text.startswith("[?(", position):
        end = _find_closing(text, position + 3, ")]", expr)
        return _parse_filter(text[position + 3 : end], expr), end + 2
    end = _find_closing(text, position + 1, "]", expr)
    content = text[position + 1 : end].strip()
    after = end + 1
    if content == "*":
        return _Wildcard(), after
    if len(content) >= 2 and content[0] in "'\"" and content[-1] == content[0]:
        return _Field(_unquote(content, expr)), after
    if "," in content:
        raise JsonPathError(f"unions are not supported in JSONPath {expr!r}")
    match = _SLICE_RE.fullmatch(content)
    if not match or not content:
        raise JsonPathError(f"invalid array index [{content}] in JSONPath {expr!r}")
    start, stop, step = (int(part) if part else None for part in match.groups())
    if ":" not in content:
        assert start is not None  # a non-empty match without ':' is a plain index
        return _Index(start), after
    if step == 0:
        raise JsonPathError(f"slice step cannot be zero in JSONPath {expr!r}")
    return _Slice(start, stop, step), after


def _unquote(quoted: str, expr: str) -> str:
    body = quoted[1:-1]
    result: list[str] = []
    position = 0
    while position < len(body):
        char = body[position]
        if char == "\\":
            if position + 1 >= len(body):
                raise JsonPathError(f"unterminated escape in {quoted} in JSONPath {expr!r}")
            escaped = body[position + 1]
            result.append({"n": "\n", "t": "\t", "r": "\r"}.get(escaped, escaped))
            position += 2
        elif char == quoted[0]:
            raise JsonPathError(f"unescaped quote in {quoted} in JSONPath {expr!r}")
        else:
            result.append(char)
            position += 1
    return "".join(result)


def _parse_filter(content: str, expr: str) -> _Filter:
    match = _FILTER_RE.fullmatch(content.strip())
    left_text = (match.group(1) if match else content).strip()
    if not left_text.startswith("@"):
        raise JsonPathError(f"filter must test a path starting with '@' in JSONPath {expr!r}")
    path = _parse_steps(left_text[1:], expr) if left_text != "@" else ()
    if match is None:
        return _Filter(path, "exists")
    operator = match.group(2)
    if operator not in _COMPARISONS:
        raise JsonPathError(f"unsupported filter operator {operator!r} in JSONPath {expr!r}")
    return _Filter(path, operator, _parse_literal(match.group(3).strip(), expr))


def _parse_literal(text: str, expr: str) -> Any:
    if len(text) >= 2 and text[0] in "'\"" and text[-1] == text[0]:
        return _unquote(text, expr)
    if text in ("true", "false"):
        return text == "true"
    if _INT_RE.fullmatch(text):
        return int(text)
    if _FLOAT_RE.fullmatch(text):
        return float(text)
    raise JsonPathError(
        f"filter value {text!r} must be a quoted string, a number or a boolean in JSONPath {expr!r}"
    )


# ---------------------------------------------------------------------------------------------
# Evaluation.
# ---------------------------------------------------------------------------------------------


def _evaluate(steps: tuple[_Step, ...], obj: Any) -> list[Any]:
    nodes = [obj]
    for step in steps:
        nodes = [child for node in nodes for child in _apply(step, node)]
    return nodes


def _apply(step: _Step, node: Any) -> list[Any]:
    if isinstance(step, _Field):
        return [node[step.name]] if isinstance(node, dict) and step.name in node else []
    if isinstance(step, _Wildcard):
        if isinstance(node, dict):
            return list(node.values())
        return list(node) if isinstance(node, list) else []
    if not isinstance(node, list):
        return []
    if isinstance(step, _Index):
        return [node[step.index]] if -len(node) <= step.index < len(node) else []
    if isinstance(step, _Slice):
        return node[step.start : step.stop : step.step]
    return [item for item in node if _filter_matches(step, item)]


def _filter_matches(step: _Filter, item: Any) -> bool:
    found = _evaluate(step.path, item)
    if step.operator == "exists":
        return bool(found)
    if not found:
        return False
    return _compare(found[0], step.operator, step.literal)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _compare(left: Any, operator: str, right: Any) -> bool:
    if operator in ("==", "!="):
        if _is_number(left) and _is_number(right):
            equal = left == right
        else:
            equal = type(left) is type(right) and left == right
        return equal if operator == "==" else not equal
    if not (_is_number(left) and _is_number(right)) and not (
        isinstance(left, str) and isinstance(right, str)
    ):
        return False
    if operator == "<":
        return bool(left < right)
    if operator == "<=":
        return bool(left <= right)
    if operator == ">":
        return bool(left > right)
    return bool(left >= right)


# ---------------------------------------------------------------------------------------------
# Table cells.
# ---------------------------------------------------------------------------------------------

_RFC3339_RE = re.compile(r"(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})")


def format_cell(value: Any, column_type: str, *, now: datetime | None = None) -> Any:
    """Convert the first value a printer column found into the Table cell kube-apiserver sends.

    Mirrors ``cellForJSONValue`` and ``PrintResults`` in apiextensions-apiserver:

    * ``None`` (missing or null) gives ``None``; kubectl prints ``<none>``.
    * ``string``: strings as they are; numbers and booleans as Go prints them (``3``,
      ``1.5``, ``1e+06``, ``true``); objects and lists as compact JSON with sorted keys,
      e.g. ``["a","b"]``.
    * ``integer``: integers, floats truncated to integers; ``number``: floats;
      ``boolean``: booleans.  A value of another JSON type gives ``None``.
    * ``date``: the server humanizes RFC 3339 strings itself, as the age since ``now``
      (default: the current UTC time), e.g. ``5m10s`` or ``3d``; ``""`` gives
      ``<unknown>``, an unparsable string or a time more than a second in the future
      ``<invalid>`` (exactly like a real cluster).  Naive ``now`` is taken as UTC.
    * any other column type gives ``None``.
    """
    if value is None:
        return None
    if column_type == "string":
        try:
            return _go_print(value)
        except ValueError:
            return None
    if column_type == "integer":
        if isinstance(value, float):
            return int(value) if math.isfinite(value) else None
        return value if _is_number(value) else None
    if column_type == "number":
        return float(value) if _is_number(value) else None
    if column_type == "boolean":
        return value if isinstance(value, bool) else None
    if column_type == "date":
        if not isinstance(value, str):
            return None
        if value in ("", "null"):
            return "<unknown>"
        timestamp = _parse_rfc3339(value)
        if timestamp is None:
            return "<invalid>"
        current = now or datetime.now(UTC)
        if current.tzinfo is None:
            current = current.replace(tzinfo=UTC)
        return human_duration(current - timestamp)
    return None


def human_duration(delta: timedelta) -> str:
    """Render an age the way ``k8s.io/apimachinery/pkg/util/duration.HumanDuration`` does.

    About two significant figures: ``45s``, ``2m5s``, ``12m``, ``7h30m``, ``30h``, ``3d4h``,
    ``100d``, ``2y30d``, ``9y``.  Up to a second in the future reads ``0s``, more is
    ``<invalid>``.
    """
    total = delta.total_seconds()
    seconds = math.trunc(total)
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 60 * 2:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        rest = seconds % 60
        return f"{minutes}m" if rest == 0 else f"{minutes}m{rest}s"
    if minutes < 60 * 3:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        rest = minutes % 60
        return f"{hours}h" if rest == 0 else f"{hours}h{rest}m"
    if hours < 48:
        return f"{hours}h"
    days = hours // 24
    if hours < 24 * 8:
        rest = hours % 24
        return f"{days}d" if rest == 0 else f"{days}d{rest}h"
    if hours < 24 * 365 * 2:
        return f"{days}d"
    if hours < 24 * 365 * 8:
        rest = days % 365
        return f"{days // 365}y" if rest == 0 else f"{days // 365}y{rest}d"
    return f"{days // 365}y"


def _parse_rfc3339(text: str) -> datetime | None:
    match = _RFC3339_RE.fullmatch(text)
    if not match:
        return None
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    if zone == "Z":
        tz: timezone = UTC
    else:
        sign = 1 if zone[0] == "+" else -1
        offset_hours, offset_minutes = int(zone[1:3]), int(zone[4:6])
        if offset_hours > 23 or offset_minutes > 59:
            return None
        tz = timezone(sign * timedelta(hours=offset_hours, minutes=offset_minutes))
    try:
        return datetime(
            int(year),
            int(month),
            int(day),
            int(hour),
            int(minute),
            int(second),
            int((fraction or "0")[:6].ljust(6, "0")),
            tzinfo=tz,
        )
    except ValueError:
        return None


def _go_print(value: Any) -> str:
    """Text like k8s JSONPath ``PrintResults``: ``fmt.Print`` for scalars, JSON for containers."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value, json_style=False)
    if isinstance(value, dict | list):
        return _go_json(value)
    return str(value)


def _go_json(value: Any) -> str:
    """Compact JSON as Go's ``json.Marshal`` writes it: sorted keys, HTML-safe escapes."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _go_float(value, json_style=True)
    if isinstance(value, str):
        return _go_json_string(value)
    if isinstance(value, dict):
        items = sorted((str(key), item) for key, item in value.items())
        return "{" + ",".join(f"{_go_json_string(key)}:{_go_json(item)}" for key, item in items) + "}"
    if isinstance(value, list):
        return "[" + ",".join(_go_json(item) for item in value) + "]"
    return _go_json_string(str(value))


def _go_json_string(text: str) -> str:
    encoded = json.dumps(text, ensure_ascii=False)
    for char, escape in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        encoded = encoded.replace(char, escape)
    return encoded.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _go_float(number: float, *, json_style: bool) -> str:
    """Shortest round-trip digits, laid out like Go's ``%v`` or ``encoding/json``."""
    if not math.isfinite(number):
        if json_style:
            raise ValueError(f"unsupported value: {number}")
        return "NaN" if math.isnan(number) else ("+Inf" if number > 0 else "-Inf")
    sign, digit_tuple, exponent = Decimal(repr(number)).normalize().as_tuple()
    assert isinstance(exponent, int)  # finite numbers only
    digits = "".join(map(str, digit_tuple))
    point = len(digits) + exponent  # position of the decimal point relative to the digits
    leading_exponent = point - 1
    prefix = "-" if sign else ""
    if number == 0:
        return prefix + "0"
    if json_style:
        scientific = abs(number) < 1e-6 or abs(number) >= 1e21
    else:
        scientific = leading_exponent < -4 or leading_exponent >= 6
    if scientific:
        mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
        exponent_sign = "-" if leading_exponent < 0 else "+"
        width = 1 if json_style else 2
        return f"{prefix}{mantissa}e{exponent_sign}{abs(leading_exponent):0{width}d}"
    if point <= 0:
        return f"{prefix}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return prefix + digits + "0" * (point - len(digits))
    return f"{prefix}{digits[:point]}.{digits[point:]}"
