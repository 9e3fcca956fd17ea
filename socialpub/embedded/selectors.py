"""Kubernetes label and field selectors, parsed and matched the way kube-apiserver does.

The embedded API server accepts ``?labelSelector=`` and ``?fieldSelector=`` on lists and
watches. kubectl (``-l``, ``kubectl wait``), kopf and the official client all send them,
and expect the same acceptance, matching and 400 error wording as a real cluster.

The label grammar and error messages follow ``k8s.io/apimachinery/pkg/labels/selector.go``
(lexer with longest-match symbols, ``in``/``notin`` keywords that double as identifiers,
key and value validation from ``util/validation``).  The field grammar follows
``k8s.io/apimachinery/pkg/fields/selector.go`` (terms split on unescaped commas, ``\\``
escapes in values) plus the apiserver's field-label check (``field label not supported``).

Pure functions only: no I/O, no imports from the rest of socialpub.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "FieldRequirement",
    "FieldSelector",
    "LabelRequirement",
    "LabelSelector",
    "SelectorError",
]

LabelOperator = Literal["=", "==", "!=", "in", "notin", "exists", "!", "gt", "lt"]
FieldOperator = Literal["=", "==", "!="]


class SelectorError(ValueError):
    """A label or field selector cannot be parsed or is not supported (HTTP 400 BadRequest)."""


# ---------------------------------------------------------------------------------------------
# Validation of label keys and values (k8s.io/apimachinery/pkg/util/validation).
# ---------------------------------------------------------------------------------------------

_QUALIFIED_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_QUALIFIED_NAME_RE = re.compile(_QUALIFIED_NAME_FMT)
_QUALIFIED_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_LABEL_VALUE_FMT = f"({_QUALIFIED_NAME_FMT})?"
_LABEL_VALUE_RE = re.compile(_LABEL_VALUE_FMT)
_LABEL_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_DNS1123_LABEL_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?"
_DNS1123_SUBDOMAIN_FMT = f"{_DNS1123_LABEL_FMT}(\\.{_DNS1123_LABEL_FMT})*"
_DNS1123_SUBDOMAIN_RE = re.compile(_DNS1123_SUBDOMAIN_FMT)
_DNS1123_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)
_NAME_MAX_LENGTH = 63
_SUBDOMAIN_MAX_LENGTH = 253
_INT64_RE = re.compile("[+-]?[0-9]+")


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    shown = " or ".join(f"'{example}', " for example in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def _max_len_error(length: int) -> str:
    return f"must be no more than {length} characters"


def _qualified_name_errors(value: str) -> list[str]:
    errors: list[str] = []
    parts = value.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            if len(prefix) > _SUBDOMAIN_MAX_LENGTH:
                errors.append("prefix part " + _max_len_error(_SUBDOMAIN_MAX_LENGTH))
            if not _DNS1123_SUBDOMAIN_RE.fullmatch(prefix):
                errors.append(
                    "prefix part "
                    + _regex_error(_DNS1123_SUBDOMAIN_MSG, _DNS1123_SUBDOMAIN_FMT, "example.com")
                )
    else:
        return [
            "a qualified name "
            + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errors.append("name part must be non-empty")
    elif len(name) > _NAME_MAX_LENGTH:
        errors.append("name part " + _max_len_error(_NAME_MAX_LENGTH))
    if not _QUALIFIED_NAME_RE.fullmatch(name):
        errors.append(
            "name part "
            + _regex_error(_QUALIFIED_NAME_MSG, _QUALIFIED_NAME_FMT, "MyName", "my.name", "123-abc")
        )
    return errors


def _label_value_errors(value: str) -> list[str]:
    errors: list[str] = []
    if len(value) > _NAME_MAX_LENGTH:
        errors.append(_max_len_error(_NAME_MAX_LENGTH))
    if not _LABEL_VALUE_RE.fullmatch(value):
        errors.append(_regex_error(_LABEL_VALUE_MSG, _LABEL_VALUE_FMT, "MyValue", "my_value", "12345"))
    return errors


def _invalid(field: str, value: str, details: list[str]) -> str:
    """Format like ``field.Invalid(...).Error()``: ``key: Invalid value: "x": detail``."""
    return f"{field}: Invalid value: {json.dumps(value)}: {'; '.join(details)}"


def _parse_int64(text: str) -> int | None:
    if not _INT64_RE.fullmatch(text):
        return None
    number = int(text)
    return number if -(2**63) <= number < 2**63 else None


# ---------------------------------------------------------------------------------------------
# Label selectors.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LabelRequirement:
    """One comma-separated term of a label selector; ``values`` are sorted and unique."""

    key: str
    operator: LabelOperator
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        if self.operator == "exists":
            return present
        if self.operator == "!":
            return not present
        if self.operator in ("=", "==", "in"):
            return present and labels[self.key] in self.values
        if self.operator in ("!=", "notin"):
            return not present or labels[self.key] not in self.values
        # gt / lt: both sides must be 64-bit integers, otherwise the requirement never matches.
        if not present:
            return False
        actual = _parse_int64(labels[self.key])
        wanted = _parse_int64(self.values[0])
        if actual is None or wanted is None:
            return False
        return actual > wanted if self.operator == "gt" else actual < wanted

    def __str__(self) -> str:
        if self.operator == "exists":
            return self.key
        if self.operator == "!":
            return f"!{self.key}"
        if self.operator in ("in", "notin"):
            return f"{self.key} {self.operator} ({','.join(self.values)})"
        symbol = {"gt": ">", "lt": "<"}.get(self.operator, self.operator)
        return f"{self.key}{symbol}{self.values[0]}"


@dataclass(frozen=True)
class LabelSelector:
    """A parsed ``labelSelector``: all requirements must match (comma means AND)."""

    requirements: tuple[LabelRequirement, ...] = ()

    @classmethod
    def parse(cls, text: str) -> LabelSelector:
        """Parse the query-string form; empty (or blank) text selects everything."""
        return cls(tuple(_LabelParser(text).parse()))

    @property
    def empty(self) -> bool:
        """True if this selector matches every object."""
        return not self.requirements

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        present: Mapping[str, str] = labels if labels is not None else {}
        return all(requirement.matches(present) for requirement in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(requirement) for requirement in self.requirements)


_WHITESPACE = " \t\r\n"
_SPECIAL_CHARS = "=!(),<>"
_SYMBOLS = frozenset({"=", "==", "!=", "!", "(", ")", ",", "<", ">"})
_EOS = "<eos>"
_IDENT = "<ident>"
_KEYWORDS = frozenset({"in", "notin"})


class _RequirementError(Exception):
    """Internal: a requirement failed to parse; wrapped as ``unable to parse requirement: ...``."""


def _lex(text: str) -> list[tuple[str, str]]:
    """Tokenise into ``(kind, literal)`` pairs; ``kind`` is a symbol, keyword, ident or eos."""
    tokens: list[tuple[str, str]] = []
    i, n = 0, len(text)
    while True:
        while i < n and text[i] in _WHITESPACE:
            i += 1
        if i >= n:
            tokens.append((_EOS, ""))
            return tokens
        if text[i] in _SPECIAL_CHARS:
            # Longest match among the symbols, like the Go lexer's scanSpecialSymbol.
            end = i + 1
            j = i + 1
            while j < n and text[j] in _SPECIAL_CHARS and text[i : j + 1] in _SYMBOLS:
                j += 1
                end = j
            symbol = text[i:end]
            tokens.append((symbol, symbol))
            i = end
        else:
            j = i
            while j < n and text[j] not in _WHITESPACE and text[j] not in _SPECIAL_CHARS:
                j += 1
            word = text[i:j]
            tokens.append((word if word in _KEYWORDS else _IDENT, word))
            i = j


class _LabelParser:
    def __init__(self, text: str) -> None:
        self._tokens = _lex(text)
        self._position = 0

    def _lookahead(self, *, values: bool = True) -> tuple[str, str]:
        kind, literal = self._tokens[min(self._position, len(self._tokens) - 1)]
        if values and kind in _KEYWORDS:
            kind = _IDENT  # `in` and `notin` are plain identifiers wherever a key or value may stand
        return kind, literal

    def _consume(self, *, values: bool = True) -> tuple[str, str]:
        token = self._lookahead(values=values)
        self._position += 1
        return token

    def parse(self) -> list[LabelRequirement]:
        requirements: list[LabelRequirement] = []
        while True:
            kind, literal = self._lookahead()
            if kind == _EOS:
                return requirements
            if kind not in (_IDENT, "!"):
                raise SelectorError(f"found '{literal}', expected: !, identifier, or 'end of string'")
            try:
                requirements.append(self._parse_requirement())
            except _RequirementError as exc:
                raise SelectorError(f"unable to parse requirement: {exc}") from None
            kind, literal = self._consume()
            if kind == _EOS:
                return requirements
            if kind != ",":
                raise SelectorError(f"found '{literal}', expected: ',' or 'end of string'")
            kind, literal = self._lookahead()
            if kind not in (_IDENT, "!"):
                raise SelectorError(f"found '{literal}', expected: identifier after ','")

    def _parse_requirement(self) -> LabelRequirement:
        does_not_exist = False
        kind, key = self._consume()
        if kind == "!":
            does_not_exist = True
            kind, key = self._consume()
        if kind != _IDENT:
            raise _RequirementError(f"found '{key}', expected: identifier")
        if errors := _qualified_name_errors(key):
            raise _RequirementError(_invalid("key", key, errors))
        if does_not_exist:
            return LabelRequirement(key, "!")
        if self._lookahead()[0] in (_EOS, ","):
            return LabelRequirement(key, "exists")

        operator = self._parse_operator()
        values = self._parse_values() if operator in ("in", "notin") else self._parse_exact_value()
        ordered = sorted(values)
        problems: list[str] = []
        for index, value in enumerate(ordered):
            if errors := _label_value_errors(value):
                problems.append(_invalid(f"values[{index}]", value, errors))
        if operator in ("gt", "lt"):
            for index, value in enumerate(ordered):
                if _parse_int64(value) is None:
                    problems.append(
                        _invalid(
                            f"values[{index}]",
                            value,
                            ["for 'Gt', 'Lt' operators, the value must be an integer"],
                        )
                    )
        if len(problems) == 1:
            raise _RequirementError(problems[0])
        if problems:
            raise _RequirementError(f"[{', '.join(problems)}]")
        return LabelRequirement(key, operator, tuple(ordered))

    def _parse_operator(self) -> LabelOperator:
        kind, literal = self._consume(values=False)
        operators: dict[str, LabelOperator] = {
            "in": "in",
            "notin": "notin",
            "=": "=",
            "==": "==",
            "!=": "!=",
            ">": "gt",
            "<": "lt",
        }
        if kind not in operators:
            raise _RequirementError(f"found '{literal}', expected: in, notin, =, ==, !=, gt, lt")
        return operators[kind]

    def _parse_exact_value(self) -> set[str]:
        if self._lookahead()[0] in (_EOS, ","):
            return {""}
        kind, literal = self._consume()
        if kind != _IDENT:
            raise _RequirementError(f"found '{literal}', expected: identifier")
        return {literal}

    def _parse_values(self) -> set[str]:
        kind, literal = self._consume()
        if kind != "(":
            raise _RequirementError(f"found '{literal}' expected: '('")
        kind, literal = self._lookahead()
        if kind == ")":
            self._consume()
            return {""}
        if kind not in (_IDENT, ","):
            raise _RequirementError(f"found '{literal}', expected: ',', ')' or identifier")
        values = self._parse_identifiers()
        kind, literal = self._consume()
        if kind != ")":
            raise _RequirementError(f"found '{literal}', expected: ')'")
        return values

    def _parse_identifiers(self) -> set[str]:
        values: set[str] = set()
        while True:
            kind, literal = self._consume()
            if kind == _IDENT:
                values.add(literal)
                next_kind, next_literal = self._lookahead()
                if next_kind == ")":
                    return values
                if next_kind != ",":
                    raise _RequirementError(f"found '{next_literal}', expected: ',' or ')'")
            elif kind == ",":
                # Empty entries, as in `(,a)`, `(a,)` or `(a,,b)`, stand for the empty value.
                if not values:
                    values.add("")
                next_kind, _ = self._lookahead()
                if next_kind == ")":
                    values.add("")
                    return values
                if next_kind == ",":
                    self._consume()
                    values.add("")
            else:
                raise _RequirementError(f"found '{literal}', expected: ',', or identifier")


# ---------------------------------------------------------------------------------------------
# Field selectors.
# ---------------------------------------------------------------------------------------------

DEFAULT_FIELD_LABELS: tuple[str, ...] = ("metadata.name", "metadata.namespace")


@dataclass(frozen=True)
class FieldRequirement:
    """One term of a field selector: ``field`` compared with ``value`` (unescaped)."""

    field: str
    operator: FieldOperator
    value: str

    def matches(self, obj: Mapping[str, Any]) -> bool:
        actual = _field_value(obj, self.field)
        return actual != self.value if self.operator == "!=" else actual == self.value

    def __str__(self) -> str:
        return f"{self.field}{self.operator}{_escape_field_value(self.value)}"


@dataclass(frozen=True)
class FieldSelector:
    """A parsed ``fieldSelector``: all terms must match (comma means AND)."""

    requirements: tuple[FieldRequirement, ...] = ()

    @classmethod
    def parse(cls, text: str, *, supported: Collection[str] = DEFAULT_FIELD_LABELS) -> FieldSelector:
        """Parse ``a.b=x,c.d!=y``; every field label must be in ``supported``.

        Whitespace around field labels and values is ignored (kube-apiserver would keep it
        and then reject the label or fail to match). An empty selector matches everything.
        """
        requirements: list[FieldRequirement] = []
        for raw_term in _split_terms(text):
            term = raw_term.strip()
            if not term:
                continue
            split = _split_term(term)
            if split is None:
                raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
            field, operator, raw_value = split
            requirements.append(
                FieldRequirement(field.strip(), operator, _unescape_field_value(raw_value.strip()))
            )
        for requirement in requirements:
            if requirement.field not in supported:
                raise SelectorError(f"field label not supported: {requirement.field}")
        return cls(tuple(requirements))

    @property
    def empty(self) -> bool:
        """True if this selector matches every object."""
        return not self.requirements

    @property
    def required_name(self) -> str | None:
        """The name pinned by ``metadata.name=X`` (or ``==``), for an O(1) lookup; else None."""
        return self._required("metadata.name")

    @property
    def required_namespace(self) -> str | None:
        """The namespace pinned by ``metadata.namespace=X`` (or ``==``); else None."""
        return self._required("metadata.namespace")

    def _required(self, field: str) -> str | None:
        for requirement in self.requirements:
            if requirement.field == field and requirement.operator in ("=", "=="):
                return requirement.value
        return None

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all(requirement.matches(obj) for requirement in self.requirements)

    def __str__(self) -> str:
        return ",".join(str(requirement) for requirement in self.requirements)


def _split_terms(text: str) -> list[str]:
    """Split on commas not escaped by a backslash (the backslashes stay for unescaping)."""
    terms: list[str] = []
    start = 0
    escaped = False
    for index, char in enumerate(text):
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == ",":
            terms.append(text[start:index])
            start = index + 1
    terms.append(text[start:])
    return terms


def _split_term(term: str) -> tuple[str, FieldOperator, str] | None:
    """Split at the first operator; at each position `!=` and `==` win over `=`."""
    operators: tuple[FieldOperator, ...] = ("!=", "==", "=")
    for index in range(len(term)):
        for operator in operators:
            if term.startswith(operator, index):
                return term[:index], operator, term[index + len(operator) :]
    return None


def _unescape_field_value(value: str) -> str:
    result: list[str] = []
    escaped = False
    for char in value:
        if escaped:
            if char not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{char}")
            result.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",=":
            raise SelectorError(f"invalid field selector: unescaped character in value: {char}")
        else:
            result.append(char)
    if escaped:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(result)


def _escape_field_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=")


def _event_source(obj: Mapping[str, Any]) -> str:
    """An Event's ``source`` field label: ``source.component``, else ``reportingComponent``
    (what kube-apiserver's event strategy selects on, for old and new style events alike)."""
    source = obj.get("source")
    component = source.get("component") if isinstance(source, Mapping) else None
    return str(component or obj.get("reportingComponent") or "")


def _field_value(obj: Mapping[str, Any], path: str) -> str:
    """The string form kube-apiserver compares: missing or null is "", bools are lowercase."""
    if path == "source" and obj.get("kind") == "Event":
        return _event_source(obj)
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return ""
        current = current[part]
    if current is None:
        return ""
    if isinstance(current, bool):
        return "true" if current else "false"
    if isinstance(current, str):
        return current
    if isinstance(current, int | float):
        return str(current)
    return json.dumps(current, separators=(",", ":"), sort_keys=True)
