"""Merge patch (RFC 7386), JSON Patch (RFC 6902/6901) and the server-side-apply approximation."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from socialpub.embedded.patching import (
    PatchError,
    PatchNotApplicable,
    PatchTestFailed,
    apply_patch,
    json_patch,
    merge_patch,
)

# ---------------------------------------------------------------------------------------------
# Merge patch.
# ---------------------------------------------------------------------------------------------

RFC7386_APPENDIX_A = [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
]


@pytest.mark.parametrize(("target", "patch", "expected"), RFC7386_APPENDIX_A)
def test_merge_patch_rfc7386_appendix(target: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(target, patch) == expected


@pytest.mark.parametrize(
    ("target", "patch", "expected"),
    [
        # kopf adds and removes finalizers by replacing the whole list.
        (
            {"metadata": {"name": "p", "finalizers": ["kopf.zalando.org/KopfFinalizerMarker", "x"]}},
            {"metadata": {"finalizers": ["x"]}},
            {"metadata": {"name": "p", "finalizers": ["x"]}},
        ),
        # annotation removal with null, siblings kept
        (
            {"metadata": {"annotations": {"a": "1", "b": "2"}}},
            {"metadata": {"annotations": {"a": None}}},
            {"metadata": {"annotations": {"b": "2"}}},
        ),
        # deleting a key that is absent is a no-op
        ({"a": 1}, {"zzz": None}, {"a": 1}),
        # nulls inside lists are kept as values
        ({"a": 1}, {"l": [None, {"x": None}]}, {"a": 1, "l": [None, {"x": None}]}),
        # an object patch on a scalar starts from an empty object
        ({"a": 5}, {"a": {"b": 1, "c": None}}, {"a": {"b": 1}}),
        # empty patch returns a copy
        ({"a": {"b": [1]}}, {}, {"a": {"b": [1]}}),
        # status patch on a missing status
        ({"spec": {}}, {"status": {"phase": "Done"}}, {"spec": {}, "status": {"phase": "Done"}}),
        (None, {"a": 1}, {"a": 1}),
        ({"a": 1}, 0, 0),
        ({"a": 1}, False, False),
    ],
)
def test_merge_patch_cases(target: Any, patch: Any, expected: Any) -> None:
    assert merge_patch(target, patch) == expected


def test_merge_patch_does_not_mutate_or_alias() -> None:
    target = {"metadata": {"labels": {"a": "1"}, "finalizers": ["f"]}, "spec": {"items": [{"x": 1}]}}
    patch = {"metadata": {"labels": {"b": "2", "a": None}}, "spec": {"new": {"deep": [1]}}}
    target_before, patch_before = copy.deepcopy(target), copy.deepcopy(patch)

    result = merge_patch(target, patch)

    assert result == {
        "metadata": {"labels": {"b": "2"}, "finalizers": ["f"]},
        "spec": {"items": [{"x": 1}], "new": {"deep": [1]}},
    }
    assert target == target_before
    assert patch == patch_before
    # The result shares no containers with the inputs.
    result["metadata"]["finalizers"].append("g")
    result["spec"]["items"][0]["x"] = 2
    result["spec"]["new"]["deep"].append(2)
    assert target == target_before
    assert patch == patch_before


@pytest.mark.parametrize("function", [merge_patch, apply_patch])
def test_merge_keeps_target_key_order_and_appends_new_keys(function: Any) -> None:
    result = function({"c": 1, "a": 2, "b": 3}, {"d": 4, "a": 5})
    assert list(result) == ["c", "a", "b", "d"]


def test_merge_patch_non_object_patch_is_copied() -> None:
    patch = [{"a": 1}]
    result = merge_patch({}, patch)
    result[0]["a"] = 2
    assert patch == [{"a": 1}]


# ---------------------------------------------------------------------------------------------
# Server-side apply approximation.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "applied", "expected"),
    [
        ({"a": "b"}, {"a": "c"}, {"a": "c"}),
        ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
        # null is ignored, not a deletion
        ({"a": "b"}, {"a": None}, {"a": "b"}),
        ({"a": {"b": "c", "d": "e"}}, {"a": {"b": None, "d": "f"}}, {"a": {"b": "c", "d": "f"}}),
        ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
        # fields are never removed by omission
        ({"spec": {"a": 1, "b": 2}}, {"spec": {"a": 3}}, {"spec": {"a": 3, "b": 2}}),
        # lists are atomic
        ({"spec": {"l": [1, 2, 3]}}, {"spec": {"l": [4]}}, {"spec": {"l": [4]}}),
        ({"spec": {"l": [{"n": 1, "x": 1}]}}, {"spec": {"l": [{"n": 1}]}}, {"spec": {"l": [{"n": 1}]}}),
        # scalars and non-object configurations replace
        ({"a": {"b": 1}}, {"a": 7}, {"a": 7}),
        ({"a": 1}, ["x"], ["x"]),
        ({"a": 1}, "s", "s"),
        # a null configuration changes nothing
        ({"a": 1}, None, {"a": 1}),
        (None, {"a": 1}, {"a": 1}),
    ],
)
def test_apply_patch(target: Any, applied: Any, expected: Any) -> None:
    assert apply_patch(target, applied) == expected


def test_apply_patch_does_not_mutate_or_alias() -> None:
    target = {"metadata": {"labels": {"a": "1"}}, "spec": {"l": [{"x": 1}]}}
    applied = {"metadata": {"labels": {"a": None, "b": "2"}}, "spec": {"m": [{"y": 1}]}}
    target_before, applied_before = copy.deepcopy(target), copy.deepcopy(applied)

    result = apply_patch(target, applied)
    assert result == {
        "metadata": {"labels": {"a": "1", "b": "2"}},
        "spec": {"l": [{"x": 1}], "m": [{"y": 1}]},
    }

    result["spec"]["l"][0]["x"] = 9
    result["spec"]["m"][0]["y"] = 9
    result["metadata"]["labels"]["c"] = "3"
    assert target == target_before
    assert applied == applied_before

    unchanged = apply_patch(target, None)
    unchanged["spec"]["l"].append(1)
    assert target == target_before


# ---------------------------------------------------------------------------------------------
# JSON Patch: RFC 6902 Appendix A.
# ---------------------------------------------------------------------------------------------

RFC6902_SUCCESS = [
    pytest.param(
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux"}],
        {"baz": "qux", "foo": "bar"},
        id="A.1 add object member",
    ),
    pytest.param(
        {"foo": ["bar", "baz"]},
        [{"op": "add", "path": "/foo/1", "value": "qux"}],
        {"foo": ["bar", "qux", "baz"]},
        id="A.2 add array element",
    ),
    pytest.param(
        {"baz": "qux", "foo": "bar"},
        [{"op": "remove", "path": "/baz"}],
        {"foo": "bar"},
        id="A.3 remove object member",
    ),
    pytest.param(
        {"foo": ["bar", "qux", "baz"]},
        [{"op": "remove", "path": "/foo/1"}],
        {"foo": ["bar", "baz"]},
        id="A.4 remove array element",
    ),
    pytest.param(
        {"baz": "qux", "foo": "bar"},
        [{"op": "replace", "path": "/baz", "value": "boo"}],
        {"baz": "boo", "foo": "bar"},
        id="A.5 replace a value",
    ),
    pytest.param(
        {"foo": {"bar": "baz", "waldo": "fred"}, "qux": {"corge": "grault"}},
        [{"op": "move", "from": "/foo/waldo", "path": "/qux/thud"}],
        {"foo": {"bar": "baz"}, "qux": {"corge": "grault", "thud": "fred"}},
        id="A.6 move a value",
    ),
    pytest.param(
        {"foo": ["all", "grass", "cows", "eat"]},
        [{"op": "move", "from": "/foo/1", "path": "/foo/3"}],
        {"foo": ["all", "cows", "eat", "grass"]},
        id="A.7 move an array element",
    ),
    pytest.param(
        {"baz": "qux", "foo": ["a", 2, "c"]},
        [{"op": "test", "path": "/baz", "value": "qux"}, {"op": "test", "path": "/foo/1", "value": 2}],
        {"baz": "qux", "foo": ["a", 2, "c"]},
        id="A.8 test success",
    ),
    pytest.param(
        {"foo": "bar"},
        [{"op": "add", "path": "/child", "value": {"grandchild": {}}}],
        {"foo": "bar", "child": {"grandchild": {}}},
        id="A.10 add nested member object",
    ),
    pytest.param(
        {"foo": "bar"},
        [{"op": "add", "path": "/baz", "value": "qux", "xyz": 123}],
        {"foo": "bar", "baz": "qux"},
        id="A.11 ignore unrecognized elements",
    ),
    pytest.param(
        {"/": 9, "~1": 10},
        [{"op": "test", "path": "/~01", "value": 10}],
        {"/": 9, "~1": 10},
        id="A.14 escape ordering",
    ),
    pytest.param(
        {"foo": ["bar"]},
        [{"op": "add", "path": "/foo/-", "value": ["abc", "def"]}],
        {"foo": ["bar", ["abc", "def"]]},
        id="A.16 add an array value",
    ),
]


@pytest.mark.parametrize(("target", "operations", "expected"), RFC6902_SUCCESS)
def test_json_patch_rfc6902_appendix(target: Any, operations: Any, expected: Any) -> None:
    assert json_patch(target, operations) == expected


@pytest.mark.parametrize(
    ("target", "operations", "error", "message"),
    [
        pytest.param(
            {"baz": "qux"},
            [{"op": "test", "path": "/baz", "value": "bar"}],
            PatchTestFailed,
            'json patch operation 0 (test \'/baz\') failed: value mismatch: expected "bar", found "qux"',
            id="A.9 test error",
        ),
        pytest.param(
            {"foo": "bar"},
            [{"op": "add", "path": "/baz/bat", "value": "qux"}],
            PatchNotApplicable,
            "json patch operation 0 (add '/baz/bat') failed: path '/baz' does not exist",
            id="A.12 add to a nonexistent target",
        ),
        pytest.param(
            {"/": 9, "~1": 10},
            [{"op": "test", "path": "/~01", "value": "10"}],
            PatchTestFailed,
            "json patch operation 0 (test '/~01') failed: value mismatch: expected \"10\", found 10",
            id="A.15 comparing strings and numbers",
        ),
    ],
)
def test_json_patch_rfc6902_appendix_errors(
    target: Any, operations: Any, error: type[PatchError], message: str
) -> None:
    with pytest.raises(error) as info:
        json_patch(target, operations)
    assert str(info.value) == message


# ---------------------------------------------------------------------------------------------
# JSON Pointer: RFC 6901 section 5 examples, read through `test` and `copy`.
# ---------------------------------------------------------------------------------------------

RFC6901_DOC: dict[str, Any] = {
    "foo": ["bar", "baz"],
    "": 0,
    "a/b": 1,
    "c%d": 2,
    "e^f": 3,
    "g|h": 4,
    "i\\j": 5,
    'k"l': 6,
    " ": 7,
    "m~n": 8,
}


@pytest.mark.parametrize(
    ("pointer", "value"),
    [
        ("", RFC6901_DOC),
        ("/foo", ["bar", "baz"]),
        ("/foo/0", "bar"),
        ("/", 0),
        ("/a~1b", 1),
        ("/c%d", 2),
        ("/e^f", 3),
        ("/g|h", 4),
        ("/i\\j", 5),
        ('/k"l', 6),
        ("/ ", 7),
        ("/m~0n", 8),
    ],
)
def test_json_pointer_rfc6901_examples(pointer: str, value: Any) -> None:
    assert json_patch(RFC6901_DOC, [{"op": "test", "path": pointer, "value": value}]) == RFC6901_DOC
    copied = json_patch({"doc": RFC6901_DOC}, [{"op": "copy", "from": "/doc" + pointer, "path": "/out"}])
    assert copied["out"] == value


# ---------------------------------------------------------------------------------------------
# JSON Patch: each operation.
# ---------------------------------------------------------------------------------------------

DOC: dict[str, Any] = {
    "metadata": {"name": "p", "labels": {"a": "1"}, "finalizers": ["f1", "f2"]},
    "spec": {"list": [0, 1, 2], "flag": True, "nothing": None},
}


@pytest.mark.parametrize(
    ("operations", "expected_changes"),
    [
        # add
        ([{"op": "add", "path": "/metadata/labels/b", "value": "2"}], {"labels": {"a": "1", "b": "2"}}),
        ([{"op": "add", "path": "/metadata/labels/a", "value": "9"}], {"labels": {"a": "9"}}),
        ([{"op": "add", "path": "/spec/list/0", "value": "x"}], {"list": ["x", 0, 1, 2]}),
        ([{"op": "add", "path": "/spec/list/3", "value": "x"}], {"list": [0, 1, 2, "x"]}),
        ([{"op": "add", "path": "/spec/list/-", "value": "x"}], {"list": [0, 1, 2, "x"]}),
        ([{"op": "add", "path": "/spec/nothing", "value": 1}], {"nothing": 1}),
        ([{"op": "add", "path": "/metadata/labels/x~1y", "value": "z"}], {"labels": {"a": "1", "x/y": "z"}}),
        ([{"op": "add", "path": "/metadata/labels/", "value": "e"}], {"labels": {"a": "1", "": "e"}}),
        # remove
        ([{"op": "remove", "path": "/metadata/finalizers/0"}], {"finalizers": ["f2"]}),
        ([{"op": "remove", "path": "/metadata/finalizers/1"}], {"finalizers": ["f1"]}),
        ([{"op": "remove", "path": "/metadata/labels/a"}], {"labels": {}}),
        ([{"op": "remove", "path": "/spec/nothing"}], {"nothing": "<gone>"}),
        # replace
        ([{"op": "replace", "path": "/spec/list/2", "value": 20}], {"list": [0, 1, 20]}),
        ([{"op": "replace", "path": "/spec/flag", "value": False}], {"flag": False}),
        ([{"op": "replace", "path": "/spec/nothing", "value": {"k": "v"}}], {"nothing": {"k": "v"}}),
        # move
        ([{"op": "move", "from": "/spec/list/0", "path": "/spec/list/-"}], {"list": [1, 2, 0]}),
        ([{"op": "move", "from": "/spec/list/2", "path": "/spec/list/0"}], {"list": [2, 0, 1]}),
        (
            [{"op": "move", "from": "/metadata/labels/a", "path": "/metadata/labels/b"}],
            {"labels": {"b": "1"}},
        ),
        ([{"op": "move", "from": "/spec/flag", "path": "/spec/flag"}], {}),
        # copy
        ([{"op": "copy", "from": "/spec/list/1", "path": "/spec/list/0"}], {"list": [1, 0, 1, 2]}),
        (
            [{"op": "copy", "from": "/metadata/labels/a", "path": "/metadata/labels/c"}],
            {"labels": {"a": "1", "c": "1"}},
        ),
        # test (passing)
        ([{"op": "test", "path": "/spec/flag", "value": True}], {}),
        ([{"op": "test", "path": "/spec/nothing", "value": None}], {}),
        ([{"op": "test", "path": "/spec/list", "value": [0, 1.0, 2]}], {}),
        ([{"op": "test", "path": "/metadata/labels", "value": {"a": "1"}}], {}),
        # several operations, each seeing the previous result
        (
            [
                {"op": "test", "path": "/metadata/finalizers/0", "value": "f1"},
                {"op": "remove", "path": "/metadata/finalizers/0"},
                {"op": "add", "path": "/metadata/finalizers/-", "value": "f3"},
                {"op": "replace", "path": "/spec/list/0", "value": "zero"},
            ],
            {"finalizers": ["f2", "f3"], "list": ["zero", 1, 2]},
        ),
        ([], {}),
    ],
)
def test_json_patch_operations(operations: list[dict[str, Any]], expected_changes: dict[str, Any]) -> None:
    """``expected_changes`` maps a key of DOC's metadata or spec to its new value (or "<gone>")."""
    expected = copy.deepcopy(DOC)
    for key, value in expected_changes.items():
        section = expected["metadata"] if key in ("name", "labels", "finalizers") else expected["spec"]
        if value == "<gone>":
            del section[key]
        else:
            section[key] = value
    assert json_patch(DOC, operations) == expected


@pytest.mark.parametrize(
    ("target", "operations", "expected"),
    [
        ({"a": 1}, [{"op": "replace", "path": "", "value": [1]}], [1]),
        ({"a": 1}, [{"op": "add", "path": "", "value": {"b": 2}}], {"b": 2}),
        ("scalar", [{"op": "test", "path": "", "value": "scalar"}], "scalar"),
        ({"a": {"b": 1}}, [{"op": "move", "from": "/a", "path": ""}], {"b": 1}),
        ({"a": {"b": 1}}, [{"op": "copy", "from": "/a", "path": ""}], {"b": 1}),
        ([1, 2], [{"op": "add", "path": "/-", "value": 3}], [1, 2, 3]),
        ([1, 2], [{"op": "remove", "path": "/0"}], [2]),
    ],
)
def test_json_patch_whole_document(target: Any, operations: Any, expected: Any) -> None:
    assert json_patch(target, operations) == expected


@pytest.mark.parametrize(
    ("operations", "message"),
    [
        ({"op": "add"}, "json patch must be a list of operations, not an object"),
        ("[]", "json patch must be a list of operations, not a string"),
        (None, "json patch must be a list of operations, not null"),
        ([1], "json patch operation 0 must be an object, not a number"),
        ([{"path": "/a"}], "json patch operation 0 has no 'op' string"),
        ([{"op": 1, "path": "/a"}], "json patch operation 0 has no 'op' string"),
        ([{"op": "merge", "path": "/a"}], "json patch operation 0 has unknown op 'merge'"),
        ([{"op": "remove"}], "json patch operation 0 (remove) has no 'path' string"),
        ([{"op": "remove", "path": 3}], "json patch operation 0 (remove) has no 'path' string"),
        ([{"op": "add", "path": "/a"}], "json patch operation 0 (add '/a') has no 'value'"),
        ([{"op": "replace", "path": "/a"}], "json patch operation 0 (replace '/a') has no 'value'"),
        ([{"op": "test", "path": "/a"}], "json patch operation 0 (test '/a') has no 'value'"),
        ([{"op": "move", "path": "/a"}], "json patch operation 0 (move '/a') has no 'from' string"),
        (
            [{"op": "copy", "path": "/a", "from": 1}],
            "json patch operation 0 (copy '/a') has no 'from' string",
        ),
        (
            [{"op": "remove", "path": "a"}],
            "json patch operation 0 (remove 'a') is invalid: "
            "JSON pointer 'a' must be empty or start with '/'",
        ),
        (
            [{"op": "remove", "path": "/a~2"}],
            "json patch operation 0 (remove '/a~2') is invalid: "
            "JSON pointer '/a~2' has an invalid '~' escape",
        ),
        (
            [{"op": "remove", "path": "/a~"}],
            "json patch operation 0 (remove '/a~') is invalid: JSON pointer '/a~' has an invalid '~' escape",
        ),
        (
            [{"op": "copy", "path": "/a", "from": "b"}],
            "json patch operation 0 (copy '/a') is invalid: JSON pointer 'b' must be empty or start with '/'",
        ),
        (
            [{"op": "remove", "path": "/a"}, {"op": "nope", "path": "/a"}],
            "json patch operation 1 has unknown op 'nope'",
        ),
    ],
)
def test_json_patch_malformed(operations: Any, message: str) -> None:
    with pytest.raises(PatchError) as info:
        json_patch({"a": 1}, operations)
    assert type(info.value) is PatchError
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        ({"op": "remove", "path": "/metadata/missing"}, "path '/metadata/missing' does not exist"),
        ({"op": "replace", "path": "/spec/x", "value": 1}, "path '/spec/x' does not exist"),
        ({"op": "add", "path": "/nope/x", "value": 1}, "path '/nope' does not exist"),
        (
            {"op": "add", "path": "/spec/list/4", "value": 1},
            "array index 4 at '/spec/list/4' is out of bounds (length 3)",
        ),
        (
            {"op": "replace", "path": "/spec/list/3", "value": 1},
            "array index 3 at '/spec/list/3' is out of bounds (length 3)",
        ),
        (
            {"op": "remove", "path": "/spec/list/-"},
            "index '-' at '/spec/list/-' refers to no existing element",
        ),
        (
            {"op": "replace", "path": "/spec/list/-", "value": 1},
            "index '-' at '/spec/list/-' refers to no existing element",
        ),
        ({"op": "remove", "path": "/spec/list/01"}, "'01' at '/spec/list/01' is not a valid array index"),
        (
            {"op": "add", "path": "/spec/list/-1", "value": 1},
            "'-1' at '/spec/list/-1' is not a valid array index",
        ),
        (
            {"op": "add", "path": "/spec/list/x", "value": 1},
            "'x' at '/spec/list/x' is not a valid array index",
        ),
        (
            {"op": "add", "path": "/spec/flag/x", "value": 1},
            "cannot add '/spec/flag/x': /spec/flag is a boolean",
        ),
        (
            {"op": "remove", "path": "/metadata/name/x"},
            "path '/metadata/name/x' does not exist: /metadata/name is a string",
        ),
        ({"op": "remove", "path": ""}, "cannot remove the whole document"),
        (
            {"op": "move", "from": "/metadata", "path": "/metadata/labels/m"},
            "cannot move '/metadata' into its own child",
        ),
        ({"op": "move", "from": "/nope", "path": "/x"}, "path '/nope' does not exist"),
        (
            {"op": "copy", "from": "/spec/list/9", "path": "/x"},
            "array index 9 at '/spec/list/9' is out of bounds (length 3)",
        ),
    ],
)
def test_json_patch_not_applicable(operation: dict[str, Any], message: str) -> None:
    with pytest.raises(PatchNotApplicable) as info:
        json_patch(DOC, [operation])
    assert type(info.value) is PatchNotApplicable
    assert (
        str(info.value)
        == f"json patch operation 0 ({operation['op']} {operation['path']!r}) failed: {message}"
    )


@pytest.mark.parametrize(
    ("operation", "message"),
    [
        ({"op": "test", "path": "/spec/flag", "value": 1}, "value mismatch: expected 1, found true"),
        ({"op": "test", "path": "/spec/list/0", "value": False}, "value mismatch: expected false, found 0"),
        ({"op": "test", "path": "/spec/nothing", "value": 0}, "value mismatch: expected 0, found null"),
        (
            {"op": "test", "path": "/spec/list", "value": [0, 1]},
            "value mismatch: expected [0,1], found [0,1,2]",
        ),
        (
            {"op": "test", "path": "/metadata/labels", "value": {"a": "1", "b": None}},
            'value mismatch: expected {"a":"1","b":null}, found {"a":"1"}',
        ),
        ({"op": "test", "path": "/spec/missing", "value": None}, "path '/spec/missing' does not exist"),
        (
            {"op": "test", "path": "/spec/list/7", "value": 1},
            "array index 7 at '/spec/list/7' is out of bounds (length 3)",
        ),
    ],
)
def test_json_patch_test_failed(operation: dict[str, Any], message: str) -> None:
    with pytest.raises(PatchTestFailed) as info:
        json_patch(DOC, [operation])
    assert str(info.value) == f"json patch operation 0 (test {operation['path']!r}) failed: {message}"


def test_json_patch_error_hierarchy() -> None:
    assert issubclass(PatchError, ValueError)
    assert issubclass(PatchNotApplicable, PatchError)
    assert issubclass(PatchTestFailed, PatchNotApplicable)


def test_json_patch_error_names_the_failing_operation_index() -> None:
    operations = [
        {"op": "add", "path": "/spec/new", "value": 1},
        {"op": "test", "path": "/spec/new", "value": 2},
    ]
    with pytest.raises(PatchTestFailed, match=r"^json patch operation 1 \(test '/spec/new'\) failed"):
        json_patch(DOC, operations)


def test_json_patch_is_atomic_and_does_not_mutate() -> None:
    target = copy.deepcopy(DOC)
    operations = [
        {"op": "add", "path": "/metadata/labels/b", "value": {"deep": [1]}},
        {"op": "remove", "path": "/metadata/finalizers/0"},
        {"op": "remove", "path": "/does/not/exist"},
    ]
    operations_before = copy.deepcopy(operations)
    with pytest.raises(PatchNotApplicable):
        json_patch(target, operations)
    assert target == DOC
    assert operations == operations_before


def test_json_patch_result_shares_nothing_with_inputs() -> None:
    target = copy.deepcopy(DOC)
    value = {"deep": [1]}
    operations = [
        {"op": "add", "path": "/spec/added", "value": value},
        {"op": "copy", "from": "/spec/list", "path": "/spec/copied"},
    ]
    result = json_patch(target, operations)
    result["spec"]["added"]["deep"].append(2)
    result["spec"]["copied"].append(3)
    result["spec"]["list"].append(4)
    result["metadata"]["labels"]["z"] = "z"
    assert value == {"deep": [1]}
    assert target == DOC
    assert result["spec"]["list"] == [0, 1, 2, 4]
    assert result["spec"]["copied"] == [0, 1, 2, 3]


def test_json_patch_add_same_value_twice_gives_independent_copies() -> None:
    value: dict[str, list[int]] = {"k": []}
    result = json_patch(
        {},
        [{"op": "add", "path": "/a", "value": value}, {"op": "add", "path": "/b", "value": value}],
    )
    result["a"]["k"].append(1)
    assert result == {"a": {"k": [1]}, "b": {"k": []}}
