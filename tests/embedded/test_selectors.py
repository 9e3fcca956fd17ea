"""Label and field selectors: grammar, matching and kube-apiserver error wording."""

from __future__ import annotations

from typing import Any

import pytest

from socialpub.embedded.registry import EVENT_FIELD_LABELS
from socialpub.embedded.selectors import (
    FieldRequirement,
    FieldSelector,
    LabelRequirement,
    LabelSelector,
    SelectorError,
)

LABELS = {
    "app": "socialpub",
    "tier": "web",
    "social.softsolz.uk/id": "abc-123",
    "empty": "",
    "replicas": "5",
    "in": "notin",
}

# ---------------------------------------------------------------------------------------------
# Label selectors: parsing.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ()),
        ("   ", ()),
        ("app", (LabelRequirement("app", "exists"),)),
        ("!app", (LabelRequirement("app", "!"),)),
        ("! app", (LabelRequirement("app", "!"),)),
        ("app=web", (LabelRequirement("app", "=", ("web",)),)),
        ("app==web", (LabelRequirement("app", "==", ("web",)),)),
        ("app!=web", (LabelRequirement("app", "!=", ("web",)),)),
        ("app=", (LabelRequirement("app", "=", ("",)),)),
        ("app!=", (LabelRequirement("app", "!=", ("",)),)),
        ("app in (b,a)", (LabelRequirement("app", "in", ("a", "b")),)),
        ("app notin (a, b ,a)", (LabelRequirement("app", "notin", ("a", "b")),)),
        ("app in ()", (LabelRequirement("app", "in", ("",)),)),
        ("app in (,a)", (LabelRequirement("app", "in", ("", "a")),)),
        ("app in (a,)", (LabelRequirement("app", "in", ("", "a")),)),
        ("app in (a,,b)", (LabelRequirement("app", "in", ("", "a", "b")),)),
        ("replicas>3", (LabelRequirement("replicas", "gt", ("3",)),)),
        ("replicas < 3", (LabelRequirement("replicas", "lt", ("3",)),)),
        ("social.softsolz.uk/id=abc-123", (LabelRequirement("social.softsolz.uk/id", "=", ("abc-123",)),)),
        ("in=notin", (LabelRequirement("in", "=", ("notin",)),)),
        ("in in (in,notin)", (LabelRequirement("in", "in", ("in", "notin")),)),
        (
            " app = web , !tier,env  notin ( prod )\t",
            (
                LabelRequirement("app", "=", ("web",)),
                LabelRequirement("tier", "!"),
                LabelRequirement("env", "notin", ("prod",)),
            ),
        ),
        (
            "a,b=,c!=d",
            (
                LabelRequirement("a", "exists"),
                LabelRequirement("b", "=", ("",)),
                LabelRequirement("c", "!=", ("d",)),
            ),
        ),
    ],
)
def test_label_parse(text: str, expected: tuple[LabelRequirement, ...]) -> None:
    assert LabelSelector.parse(text).requirements == expected


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("", ""),
        ("a", "a"),
        ("!a", "!a"),
        ("a = b", "a=b"),
        ("a==b", "a==b"),
        ("a!=b", "a!=b"),
        ("a in (c, b)", "a in (b,c)"),
        ("a notin (b)", "a notin (b)"),
        ("a>1,b<2", "a>1,b<2"),
    ],
)
def test_label_str_is_canonical(text: str, rendered: str) -> None:
    assert str(LabelSelector.parse(text)) == rendered
    assert LabelSelector.parse(rendered) == LabelSelector.parse(text)


def test_label_empty_property() -> None:
    assert LabelSelector.parse("").empty
    assert LabelSelector.parse(" ").empty
    assert not LabelSelector.parse("a").empty


# ---------------------------------------------------------------------------------------------
# Label selectors: matching.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("app", True),
        ("missing", False),
        ("!app", False),
        ("!missing", True),
        ("app=socialpub", True),
        ("app==socialpub", True),
        ("app=other", False),
        ("missing=socialpub", False),
        ("app!=socialpub", False),
        ("app!=other", True),
        ("missing!=anything", True),
        ("app in (other,socialpub)", True),
        ("app in (other)", False),
        ("missing in (socialpub)", False),
        ("app notin (socialpub)", False),
        ("app notin (other)", True),
        ("missing notin (socialpub)", True),
        ("empty=", True),
        ("empty", True),
        ("empty in ()", True),
        ("app=", False),
        ("missing=", False),
        ("empty!=", False),
        ("social.softsolz.uk/id=abc-123", True),
        ("social.softsolz.uk/id", True),
        ("other.example.com/id", False),
        ("replicas>4", True),
        ("replicas>5", False),
        ("replicas<6", True),
        ("replicas<5", False),
        ("missing>1", False),
        ("app>1", False),  # label value is not an integer: never matches
        ("in=notin", True),
        ("app=socialpub,tier=web", True),
        ("app=socialpub,tier=db", False),
        ("app,!missing,tier in (web,db),replicas notin (1)", True),
    ],
)
def test_label_matches(text: str, expected: bool) -> None:
    assert LabelSelector.parse(text).matches(LABELS) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("app", False),
        ("!app", True),
        ("app=x", False),
        ("app!=x", True),
        ("app in (x)", False),
        ("app notin (x)", True),
        ("app>1", False),
    ],
)
def test_label_matches_without_labels(text: str, expected: bool) -> None:
    selector = LabelSelector.parse(text)
    assert selector.matches(None) is expected
    assert selector.matches({}) is expected


# ---------------------------------------------------------------------------------------------
# Label selectors: errors.
# ---------------------------------------------------------------------------------------------

_KEY_NAME_REGEX = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
    "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
    "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)
_VALUE_REGEX = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or "
    "'12345', regex used for validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
_PREFIX_REGEX = (
    "prefix part a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, "
    "'-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex "
    "used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("=a", "found '=', expected: !, identifier, or 'end of string'"),
        ("(a)", "found '(', expected: !, identifier, or 'end of string'"),
        ("a,", "found '', expected: identifier after ','"),
        ("a,,b", "found ',', expected: identifier after ','"),
        ("a,=b", "found '=', expected: identifier after ','"),
        ("a=b c", "found 'c', expected: ',' or 'end of string'"),
        ("a=b=c", "found '=', expected: ',' or 'end of string'"),
        ("!a=b", "found '=', expected: ',' or 'end of string'"),
        ("a b", "unable to parse requirement: found 'b', expected: in, notin, =, ==, !=, gt, lt"),
        ("a in", "unable to parse requirement: found '' expected: '('"),
        ("!", "unable to parse requirement: found '', expected: identifier"),
        ("!!a", "unable to parse requirement: found '!', expected: identifier"),
        ("a=(b)", "unable to parse requirement: found '(', expected: identifier"),
        ("a in b", "unable to parse requirement: found 'b' expected: '('"),
        ("a in (b", "unable to parse requirement: found '', expected: ',' or ')'"),
        ("a in (b c)", "unable to parse requirement: found 'c', expected: ',' or ')'"),
        ("a in (b,", "unable to parse requirement: found '', expected: ',', or identifier"),
        ("a in (=)", "unable to parse requirement: found '=', expected: ',', ')' or identifier"),
        ("a notin (b,=)", "unable to parse requirement: found '=', expected: ',', or identifier"),
        (
            "a>b",
            "unable to parse requirement: " + 'values[0]: Invalid value: "b": '
            "for 'Gt', 'Lt' operators, the value must be an integer",
        ),
        ("-a", 'unable to parse requirement: key: Invalid value: "-a": ' + _KEY_NAME_REGEX),
        (
            "a" * 64,
            "unable to parse requirement: key: Invalid value: "
            f'"{"a" * 64}": name part must be no more than 63 characters',
        ),
        (
            "Example.com/a",
            'unable to parse requirement: key: Invalid value: "Example.com/a": ' + _PREFIX_REGEX,
        ),
        ("/a", 'unable to parse requirement: key: Invalid value: "/a": prefix part must be non-empty'),
        (
            "a/",
            'unable to parse requirement: key: Invalid value: "a/": name part must be non-empty; '
            + _KEY_NAME_REGEX,
        ),
        ("a=b-", 'unable to parse requirement: values[0]: Invalid value: "b-": ' + _VALUE_REGEX),
        (
            "a=" + "b" * 64,
            "unable to parse requirement: values[0]: Invalid value: "
            f'"{"b" * 64}": must be no more than 63 characters',
        ),
        (
            "a in (ok,-x,y-)",
            "unable to parse requirement: ["
            f'values[0]: Invalid value: "-x": {_VALUE_REGEX}, '
            f'values[2]: Invalid value: "y-": {_VALUE_REGEX}]',
        ),
    ],
)
def test_label_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        LabelSelector.parse(text)
    assert str(info.value) == message


def test_label_key_with_too_many_slashes() -> None:
    with pytest.raises(SelectorError, match="a qualified name must consist of alphanumeric characters"):
        LabelSelector.parse("a/b/c")


def test_label_prefix_too_long() -> None:
    prefix = ".".join(["a" * 60] * 5)  # 304 characters, each label valid
    with pytest.raises(SelectorError, match="prefix part must be no more than 253 characters"):
        LabelSelector.parse(f"{prefix}/name")


def test_label_long_but_valid_key_and_value() -> None:
    key = "example.com/" + "k" * 63
    value = "v" * 63
    assert LabelSelector.parse(f"{key}={value}").matches({key: value})


def test_selector_error_is_value_error() -> None:
    assert issubclass(SelectorError, ValueError)


# ---------------------------------------------------------------------------------------------
# Field selectors.
# ---------------------------------------------------------------------------------------------

OBJ: dict[str, Any] = {
    "metadata": {"name": "p1", "namespace": "default", "labels": {"a": "b"}},
    "spec": {"platform": "linkedin", "count": 3, "enabled": True, "disabled": False, "nothing": None},
}
SPEC_FIELDS = (
    "metadata.name",
    "metadata.namespace",
    "spec.platform",
    "spec.count",
    "spec.enabled",
    "spec.disabled",
    "spec.nothing",
    "spec.absent",
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", ()),
        (",", ()),
        ("metadata.name=p1", (FieldRequirement("metadata.name", "=", "p1"),)),
        ("metadata.name==p1", (FieldRequirement("metadata.name", "==", "p1"),)),
        ("metadata.name!=p1", (FieldRequirement("metadata.name", "!=", "p1"),)),
        ("metadata.name=", (FieldRequirement("metadata.name", "=", ""),)),
        (" metadata.name = p1 ", (FieldRequirement("metadata.name", "=", "p1"),)),
        (r"metadata.name=a\,b", (FieldRequirement("metadata.name", "=", "a,b"),)),
        (r"metadata.name=a\=b", (FieldRequirement("metadata.name", "=", "a=b"),)),
        (r"metadata.name=a\\b", (FieldRequirement("metadata.name", "=", "a\\b"),)),
        (
            "metadata.name=p1,metadata.namespace!=kube-system",
            (
                FieldRequirement("metadata.name", "=", "p1"),
                FieldRequirement("metadata.namespace", "!=", "kube-system"),
            ),
        ),
    ],
)
def test_field_parse(text: str, expected: tuple[FieldRequirement, ...]) -> None:
    assert FieldSelector.parse(text).requirements == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", True),
        ("metadata.name=p1", True),
        ("metadata.name==p1", True),
        ("metadata.name=p2", False),
        ("metadata.name!=p1", False),
        ("metadata.name!=p2", True),
        ("metadata.namespace=default", True),
        ("metadata.namespace=other", False),
        ("metadata.name=p1,metadata.namespace=default", True),
        ("metadata.name=p1,metadata.namespace=other", False),
        ("metadata.name=p1,metadata.name=p2", False),
        ("spec.platform=linkedin", True),
        ("spec.platform!=facebook", True),
        ("spec.count=3", True),
        ("spec.count!=3", False),
        ("spec.enabled=true", True),
        ("spec.disabled=false", True),
        ("spec.enabled=True", False),
        ("spec.nothing=", True),
        ("spec.absent=", True),
        ("spec.absent!=x", True),
        ("spec.absent=x", False),
    ],
)
def test_field_matches(text: str, expected: bool) -> None:
    assert FieldSelector.parse(text, supported=SPEC_FIELDS).matches(OBJ) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("metadata.namespace=", True),
        ("metadata.namespace!=", False),
        ("metadata.namespace=default", False),
    ],
)
def test_field_matches_cluster_scoped_object(text: str, expected: bool) -> None:
    assert FieldSelector.parse(text).matches({"metadata": {"name": "ns1"}}) is expected


def test_field_matches_non_mapping_on_path() -> None:
    selector = FieldSelector.parse("metadata.name.x=", supported=["metadata.name.x"])
    assert selector.matches({"metadata": {"name": "p1"}})


@pytest.mark.parametrize(
    ("text", "name", "namespace"),
    [
        ("", None, None),
        ("metadata.name=p1", "p1", None),
        ("metadata.name==p1", "p1", None),
        ("metadata.name!=p1", None, None),
        ("metadata.namespace=ns", None, "ns"),
        ("metadata.namespace!=ns,metadata.name=p1", "p1", None),
        ("metadata.name=p1,metadata.namespace==ns", "p1", "ns"),
        ("metadata.name!=p0,metadata.name=p1", "p1", None),
        ("metadata.name=", "", None),
    ],
)
def test_field_required_name_and_namespace(text: str, name: str | None, namespace: str | None) -> None:
    selector = FieldSelector.parse(text)
    assert selector.required_name == name
    assert selector.required_namespace == namespace


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("spec.x=1", "field label not supported: spec.x"),
        ("metadata.name=a,status.phase!=b", "field label not supported: status.phase"),
        ("=a", "field label not supported: "),
        ("metadata.name", "invalid selector: 'metadata.name'; can't understand 'metadata.name'"),
        ("metadata.name=a,oops", "invalid selector: 'metadata.name=a,oops'; can't understand 'oops'"),
        ("metadata.name=a=b", "invalid field selector: unescaped character in value: ="),
        (r"metadata.name=a\x", "invalid field selector: invalid escape sequence: \\x"),
        ("metadata.name=a\\", "invalid field selector: invalid escape sequence: \\"),
    ],
)
def test_field_errors(text: str, message: str) -> None:
    with pytest.raises(SelectorError) as info:
        FieldSelector.parse(text)
    assert str(info.value) == message


def test_field_supported_can_be_extended() -> None:
    selector = FieldSelector.parse("spec.platform=linkedin", supported={"spec.platform"})
    assert selector.matches(OBJ)
    with pytest.raises(SelectorError, match=r"^field label not supported: metadata\.name$"):
        FieldSelector.parse("metadata.name=p1", supported={"spec.platform"})


@pytest.mark.parametrize(
    ("text", "rendered"),
    [
        ("", ""),
        ("metadata.name=p1", "metadata.name=p1"),
        (" metadata.name == p1 ,metadata.namespace!=x", "metadata.name==p1,metadata.namespace!=x"),
        (r"metadata.name=a\,b\=c\\d", r"metadata.name=a\,b\=c\\d"),
    ],
)
def test_field_str_round_trips(text: str, rendered: str) -> None:
    assert str(FieldSelector.parse(text)) == rendered
    assert FieldSelector.parse(rendered) == FieldSelector.parse(text)


def test_field_empty_property() -> None:
    assert FieldSelector.parse("").empty
    assert not FieldSelector.parse("metadata.name=x").empty


# Event field labels (kube-apiserver's event strategy).


@pytest.mark.parametrize(
    ("event", "text", "expected"),
    [
        ({"kind": "Event", "source": {"component": "kubelet"}}, "source=kubelet", True),
        # New-style events name only the reporting controller; ``source`` falls back to it.
        ({"kind": "Event", "reportingComponent": "socialpub-operator"}, "source=socialpub-operator", True),
        ({"kind": "Event", "source": {}, "reportingComponent": "op"}, "source=op", True),
        ({"kind": "Event", "source": {"component": "a"}, "reportingComponent": "b"}, "source=b", False),
        ({"kind": "Event"}, "source=", True),
        (
            {"kind": "Event", "involvedObject": {"fieldPath": "spec.x"}},
            "involvedObject.fieldPath=spec.x",
            True,
        ),
        ({"kind": "Event", "reportingComponent": "op"}, "reportingComponent!=op", False),
    ],
)
def test_event_field_labels(event: dict[str, Any], text: str, expected: bool) -> None:
    supported = ("metadata.name", "metadata.namespace", *EVENT_FIELD_LABELS)
    assert FieldSelector.parse(text, supported=supported).matches(event) is expected
