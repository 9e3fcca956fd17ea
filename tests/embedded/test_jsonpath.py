"""JSONPath for printer columns, and Table cell conversion as kube-apiserver does it."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from socialpub.embedded.jsonpath import JsonPathError, compile_path, format_cell, human_duration

POST: dict[str, Any] = {
    "apiVersion": "social.softsolz.uk/v1",
    "kind": "SocialPost",
    "metadata": {
        "name": "p1",
        "labels": {"social.softsolz.uk/id": "42", "app": "x"},
        "annotations": {"a.b/c": "d", "a]b": "bracket", 'say "hi"': "quoted"},
        "creationTimestamp": "2024-01-01T00:00:00Z",
    },
    "spec": {
        "text": "hello",
        "platforms": ["linkedin", "facebook"],
        "targets": [{"name": "a", "weight": 1, "ok": True}, {"name": "b", "weight": 2, "ok": False}],
    },
    "status": {
        "phase": "Scheduled",
        "conditions": [
            {"type": "Ready", "status": "True"},
            {"type": "Published", "status": "False", "reason": "Waiting"},
            {"type": "a)]b", "status": "odd"},
        ],
        "nullish": None,
    },
}


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        # plain fields and the accepted wrappers
        (".status.phase", ["Scheduled"]),
        ("{.status.phase}", ["Scheduled"]),
        ("  { .status.phase }  ", ["Scheduled"]),
        ("$.status.phase", ["Scheduled"]),
        ("{$.status.phase}", ["Scheduled"]),
        (".metadata.creationTimestamp", ["2024-01-01T00:00:00Z"]),
        # escaped dots and bracket keys
        (r".metadata.labels.social\.softsolz\.uk/id", ["42"]),
        (r"{.metadata.labels.social\.softsolz\.uk/id}", ["42"]),
        (".metadata.labels['social.softsolz.uk/id']", ["42"]),
        ('.metadata.labels["social.softsolz.uk/id"]', ["42"]),
        ('.metadata.labels[ "app" ]', ["x"]),
        (r".metadata.annotations.a\.b/c", ["d"]),
        (".metadata.annotations['a]b']", ["bracket"]),
        ('.metadata.annotations["say \\"hi\\""]', ["quoted"]),
        ("['metadata']['name']", ["p1"]),
        ("$['metadata'].name", ["p1"]),
        # indexes, slices, wildcards
        (".spec.platforms[0]", ["linkedin"]),
        (".spec.platforms[1]", ["facebook"]),
        (".spec.platforms[-1]", ["facebook"]),
        (".spec.platforms[-2]", ["linkedin"]),
        (".spec.platforms[2]", []),
        (".spec.platforms[-3]", []),
        (".spec.platforms[ 0 ]", ["linkedin"]),
        (".spec.platforms[0:1]", ["linkedin"]),
        (".spec.platforms[1:]", ["facebook"]),
        (".spec.platforms[:1]", ["linkedin"]),
        (".spec.platforms[0:2:1]", ["linkedin", "facebook"]),
        (".spec.platforms[::-1]", ["facebook", "linkedin"]),
        (".spec.platforms[5:9]", []),
        (".spec.platforms[:]", ["linkedin", "facebook"]),
        (".spec.platforms[-1:]", ["facebook"]),
        (".spec.platforms[*]", ["linkedin", "facebook"]),
        (".spec.platforms.*", ["linkedin", "facebook"]),
        (".spec.targets[*].name", ["a", "b"]),
        (".spec.targets[1].weight", [2]),
        (".metadata.labels.*", ["42", "x"]),
        (".metadata.labels[*]", ["42", "x"]),
        (".spec.targets[0].*", ["a", 1, True]),
        # filters
        ('.status.conditions[?(@.type=="Ready")].status', ["True"]),
        (".status.conditions[?(@.type == 'Published')].status", ["False"]),
        ('{.status.conditions[?(@.type=="Ready")].status}', ["True"]),
        ('.status.conditions[?(@.type!="Ready")].type', ["Published", "a)]b"]),
        ('.status.conditions[?(@.type=="a)]b")].status', ["odd"]),
        ('.status.conditions[?(@.type=="Missing")].status', []),
        ('.status.conditions[?(@.reason!="x")].type', ["Published"]),  # a missing left side never matches
        (".status.conditions[?(@.reason)].type", ["Published"]),
        (".status.conditions[?(@.type)].type", ["Ready", "Published", "a)]b"]),
        (".spec.targets[?(@.weight==2)].name", ["b"]),
        (".spec.targets[?(@.weight==2.0)].name", ["b"]),
        ('.spec.targets[?(@.weight=="2")].name', []),
        (".spec.targets[?(@.weight!=2)].name", ["a"]),
        (".spec.targets[?(@.weight>1)].name", ["b"]),
        (".spec.targets[?(@.weight>=1)].name", ["a", "b"]),
        (".spec.targets[?(@.weight<2)].name", ["a"]),
        (".spec.targets[?(@.weight<=1.5)].name", ["a"]),
        (".spec.targets[?(@.name<'b')].name", ["a"]),
        (".spec.targets[?(@.name>1)].name", []),
        (".spec.targets[?(@.ok==true)].name", ["a"]),
        (".spec.targets[?(@.ok==false)].name", ["b"]),
        (".spec.targets[?(@.weight==true)].name", []),
        ('.spec.platforms[?(@=="facebook")]', ["facebook"]),
        ('.status[?(@.phase=="Scheduled")]', []),  # filters apply to lists only
        # missing keys and type mismatches find nothing
        (".status.missing", []),
        (".missing.deeper.still", []),
        (".spec.text.length", []),
        (".spec.platforms.name", []),
        (".spec.text[0]", []),
        (".spec.text[*]", []),
        (".status.nullish", [None]),
    ],
)
def test_find(expr: str, expected: list[Any]) -> None:
    assert compile_path(expr).find(POST) == expected


@pytest.mark.parametrize("expr", [".", "{.}", "$", "{$}"])
def test_root(expr: str) -> None:
    assert compile_path(expr).find(POST) == [POST]


def test_top_level_brackets_on_a_list() -> None:
    assert compile_path("[1]").find([5, 6]) == [6]
    assert compile_path("[*].a").find([{"a": 1}, {"b": 2}, {"a": 3}]) == [1, 3]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (".status.phase", "Scheduled"),
        (".spec.targets[*].name", "a"),
        (".status.missing", None),
        (".status.nullish", None),
        ('.status.conditions[?(@.type=="Ready")].status', "True"),
    ],
)
def test_first(expr: str, expected: Any) -> None:
    assert compile_path(expr).first(POST) == expected


def test_find_returns_values_and_does_not_mutate() -> None:
    before = copy.deepcopy(POST)
    found = compile_path(".spec.targets[*]").find(POST)
    assert found == before["spec"]["targets"]
    assert before == POST


def test_expression_is_kept() -> None:
    assert compile_path("{.status.phase}").expression == "{.status.phase}"


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("", "empty JSONPath ''"),
        ("{}", "empty JSONPath '{}'"),
        ("{.a", "unclosed action in JSONPath '{.a'"),
        ("status.phase", "JSONPath 'status.phase' must start with '.', '[' or '$'"),
        ("..a", "recursive descent '..' is not supported in JSONPath '..a'"),
        (".a..b", "recursive descent '..' is not supported in JSONPath '.a..b'"),
        (".a.", "empty field name in JSONPath '.a.'"),
        (".a.{", "empty field name in JSONPath '.a.{'"),
        (".a b", "unexpected ' ' at position 2 in JSONPath '.a b'"),
        ("{.a}{.b}", "unexpected '}' at position 2 in JSONPath '{.a}{.b}'"),
        (".a[", "missing ']' in JSONPath '.a['"),
        (".a[0", "missing ']' in JSONPath '.a[0'"),
        (".a[]", "invalid array index [] in JSONPath '.a[]'"),
        (".a[x]", "invalid array index [x] in JSONPath '.a[x]'"),
        (".a[1.5]", "invalid array index [1.5] in JSONPath '.a[1.5]'"),
        (".a[-]", "invalid array index [-] in JSONPath '.a[-]'"),
        (".a[1:-]", "invalid array index [1:-] in JSONPath '.a[1:-]'"),
        (".a[1,2]", "unions are not supported in JSONPath '.a[1,2]'"),
        (".a['x','y']", "unescaped quote in 'x','y' in JSONPath \".a['x','y']\""),
        (".a[::0]", "slice step cannot be zero in JSONPath '.a[::0]'"),
        ('.a[?(@.x=="y")', "missing ')]' in JSONPath '.a[?(@.x==\"y\")'"),
        ('.a[?(x=="y")]', "filter must test a path starting with '@' in JSONPath '.a[?(x==\"y\")]'"),
        (
            '.a[?(@.x=~"y")]',
            "unsupported filter operator '=' in JSONPath '.a[?(@.x=~\"y\")]'",
        ),
        (
            ".a[?(@.x===1)]",
            "unsupported filter operator '===' in JSONPath '.a[?(@.x===1)]'",
        ),
        (
            ".a[?(@.x==y)]",
            "filter value 'y' must be a quoted string, a number or a boolean in JSONPath '.a[?(@.x==y)]'",
        ),
        (
            ".a[?(@.x==@.y)]",
            "filter value '@.y' must be a quoted string, a number or a boolean in JSONPath '.a[?(@.x==@.y)]'",
        ),
    ],
)
def test_compile_errors(expr: str, message: str) -> None:
    with pytest.raises(JsonPathError) as info:
        compile_path(expr)
    assert str(info.value) == message


def test_json_path_error_is_value_error() -> None:
    assert issubclass(JsonPathError, ValueError)


@pytest.mark.parametrize(
    ("literal", "item", "matches"),
    [
        ('"x"', "x", True),
        ("'x'", "x", True),
        ('"x\\"y"', 'x"y', True),
        ("'it\\'s'", "it's", True),
        ('"a\\nb"', "a\nb", True),
        ("3", 3, True),
        ("-3", -3, True),
        ("3", 3.0, True),
        ("2.5", 2.5, True),
        ("-0.5e1", -5, True),
        ("true", True, True),
        ("false", False, True),
        ("1", True, False),
        ('"3"', 3, False),
        ("3", "3", False),
    ],
)
def test_filter_literals(literal: str, item: Any, matches: bool) -> None:
    path = compile_path(f".items[?(@.v=={literal})].v")
    assert path.find({"items": [{"v": item}]}) == ([item] if matches else [])


# ---------------------------------------------------------------------------------------------
# Table cells.
# ---------------------------------------------------------------------------------------------

NOW = datetime(2024, 1, 10, tzinfo=UTC)


@pytest.mark.parametrize("column_type", ["string", "integer", "number", "boolean", "date", "other"])
def test_format_cell_none_is_null(column_type: str) -> None:
    assert format_cell(None, column_type, now=NOW) is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Scheduled", "Scheduled"),
        ("", ""),
        (3, "3"),
        (-3, "-3"),
        (True, "true"),
        (False, "false"),
        (1.5, "1.5"),
        (-2.5, "-2.5"),
        (3.0, "3"),
        (0.0, "0"),
        (123456.0, "123456"),
        (1e6, "1e+06"),
        (1234567.0, "1.234567e+06"),
        (0.0001, "0.0001"),
        (0.00001, "1e-05"),
        (1.5e-7, "1.5e-07"),
        (1e100, "1e+100"),
        (["linkedin", "facebook"], '["linkedin","facebook"]'),
        ([], "[]"),
        ({}, "{}"),
        ({"b": 1, "a": [1, 2]}, '{"a":[1,2],"b":1}'),
        ({"x": 1.0, "y": 0.5}, '{"x":1,"y":0.5}'),
        ({"x": 1e-7, "y": 1e21, "z": 1e20}, '{"x":1e-7,"y":1e+21,"z":100000000000000000000}'),
        ([None, True, False], "[null,true,false]"),
        (["<a&b>"], '["\\u003ca\\u0026b\\u003e"]'),
        (["é", 'q"\n'], '["é","q\\"\\n"]'),
    ],
)
def test_format_cell_string(value: Any, expected: str) -> None:
    assert format_cell(value, "string") == expected


@pytest.mark.parametrize(
    ("value", "column_type", "expected"),
    [
        (3, "integer", 3),
        (3.9, "integer", 3),
        (-3.9, "integer", -3),
        (True, "integer", None),
        ("3", "integer", None),
        ([1], "integer", None),
        (float("inf"), "integer", None),
        (2.5, "number", 2.5),
        (True, "number", None),
        ("2.5", "number", None),
        (True, "boolean", True),
        (False, "boolean", False),
        ("true", "boolean", None),
        (1, "boolean", None),
        ("x", "object", None),
        ({"a": 1}, "date", None),
        (1704758400, "date", None),
    ],
)
def test_format_cell_typed(value: Any, column_type: str, expected: Any) -> None:
    result = format_cell(value, column_type, now=NOW)
    assert result == expected
    assert type(result) is type(expected)


def test_format_cell_number_from_integer_is_float() -> None:
    result = format_cell(3, "number")
    assert result == 3.0
    assert isinstance(result, float)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2024-01-10T00:00:00Z", "0s"),
        ("2024-01-09T23:59:15Z", "45s"),
        ("2024-01-09T23:58:01Z", "119s"),
        ("2024-01-09T23:57:55Z", "2m5s"),
        ("2024-01-09T23:50:00Z", "10m"),
        ("2024-01-09T20:30:00Z", "3h30m"),
        ("2024-01-08T00:00:00Z", "2d"),
        ("2024-01-01T00:00:00Z", "9d"),
        ("2024-01-09T23:59:59.999Z", "0s"),
        ("2024-01-09T23:59:30.123456789Z", "29s"),
        ("2024-01-10T01:00:00+01:00", "0s"),
        ("2024-01-09T18:00:00-05:00", "60m"),
        ("2024-01-10T00:00:01Z", "0s"),  # up to a second of clock skew reads as now
        ("2024-01-10T00:00:05Z", "<invalid>"),  # future: kube-apiserver says <invalid>
        ("", "<unknown>"),
        ("null", "<unknown>"),
        ("yesterday", "<invalid>"),
        ("2024-01-09", "<invalid>"),
        ("2024-01-09T00:00:00", "<invalid>"),
        ("2024-01-09 00:00:00Z", "<invalid>"),
        ("2024-13-01T00:00:00Z", "<invalid>"),
        ("2024-01-09T00:00:60Z", "<invalid>"),
        ("2024-01-09T00:00:00+25:00", "<invalid>"),
    ],
)
def test_format_cell_date(value: str, expected: str) -> None:
    assert format_cell(value, "date", now=NOW) == expected


def test_format_cell_date_with_naive_now_is_utc() -> None:
    assert format_cell("2024-01-09T23:00:00Z", "date", now=datetime(2024, 1, 10)) == "60m"


def test_format_cell_date_defaults_to_current_time() -> None:
    ten_minutes_ago = (datetime.now(UTC) - timedelta(minutes=10, seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert format_cell(ten_minutes_ago, "date") == "10m"


@pytest.mark.parametrize(
    ("delta", "expected"),
    [
        (timedelta(seconds=-2), "<invalid>"),
        (timedelta(seconds=-1.5), "0s"),
        (timedelta(seconds=-1), "0s"),
        (timedelta(0), "0s"),
        (timedelta(seconds=0.9), "0s"),
        (timedelta(seconds=59), "59s"),
        (timedelta(seconds=119), "119s"),
        (timedelta(seconds=120), "2m"),
        (timedelta(seconds=125), "2m5s"),
        (timedelta(seconds=599), "9m59s"),
        (timedelta(minutes=10), "10m"),
        (timedelta(minutes=179, seconds=59), "179m"),
        (timedelta(hours=3), "3h"),
        (timedelta(hours=7, minutes=30), "7h30m"),
        (timedelta(hours=7, minutes=59, seconds=59), "7h59m"),
        (timedelta(hours=8), "8h"),
        (timedelta(hours=47, minutes=59), "47h"),
        (timedelta(hours=48), "2d"),
        (timedelta(days=3, hours=4), "3d4h"),
        (timedelta(days=7, hours=23), "7d23h"),
        (timedelta(days=8), "8d"),
        (timedelta(days=729), "729d"),
        (timedelta(days=730), "2y"),
        (timedelta(days=760), "2y30d"),
        (timedelta(days=8 * 365), "8y"),
        (timedelta(days=10 * 365 + 100), "10y"),
    ],
)
def test_human_duration(delta: timedelta, expected: str) -> None:
    assert human_duration(delta) == expected
