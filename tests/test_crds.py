"""The CustomResourceDefinitions in ``crds/`` and the manifests in ``examples/``.

The CRDs are the contract for kubectl and GitOps users, so these tests hold them to the Kubernetes
conventions the project follows (structural schemas, ``metav1.Condition`` conditions, the status
subresource, bounded strings and lists for cheap CEL) by walking the files themselves, not lists
kept here. The CEL rules are run with the ``cel`` module against the examples (which must pass)
and against specs broken on purpose (which must not). Applying the examples to a running API
server is tested with the embedded Kubernetes API.
"""

from __future__ import annotations

import copy
import datetime
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cel
import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml

Schema = dict[str, Any]
SchemaPath = tuple[str, ...]
"""A path to a schema node: property names, and ``"[]"`` for the items of an array."""

ROOT = Path(__file__).resolve().parent.parent
CRD_DIR = ROOT / "crds"
EXAMPLES_DIR = ROOT / "examples"
GROUP = "social.softsolz.uk"
VERSION = "v1alpha1"
KUBERNETES_VERSION: str = kubernetes_validate.utils.latest_version()

# The resource contract of DESIGN.md: kind -> (plural, scope, short name).
EXPECTED_KINDS: dict[str, tuple[str, str, str]] = {
    "SocialTenant": ("socialtenants", "Cluster", "stn"),
    "SocialAccount": ("socialaccounts", "Namespaced", "sa"),
    "SocialPost": ("socialposts", "Namespaced", "sp"),
    "SocialTarget": ("socialtargets", "Namespaced", "st"),
    "SocialWebhookEndpoint": ("socialwebhookendpoints", "Namespaced", "swe"),
    "SocialWebhookDelivery": ("socialwebhookdeliveries", "Namespaced", "swd"),
}

# Root fields whose shape the API server owns: `metadata` may not even carry a description.
ROOT_FIELDS_OWNED_BY_THE_SERVER = {("apiVersion",), ("kind",), ("metadata",)}

CONDITION_FIELDS = {"type", "status", "observedGeneration", "lastTransitionTime", "reason", "message"}


def load_single_document(path: Path) -> Schema:
    documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]
    assert len(documents) == 1, f"{path.name} must hold exactly one document"
    document = documents[0]
    assert isinstance(document, dict)
    return document


CRD_FILES = sorted(CRD_DIR.glob("*.yaml"))
CRDS: dict[str, Schema] = {path.name: load_single_document(path) for path in CRD_FILES}
CRDS_BY_KIND: dict[str, Schema] = {crd["spec"]["names"]["kind"]: crd for crd in CRDS.values()}
EXAMPLE_FILES = sorted(EXAMPLES_DIR.glob("*.yaml"))
EXAMPLES: dict[str, Schema] = {path.name: load_single_document(path) for path in EXAMPLE_FILES}


def version_of(crd: Schema) -> Schema:
    versions = crd["spec"]["versions"]
    assert isinstance(versions, list)
    assert len(versions) == 1
    version = versions[0]
    assert isinstance(version, dict)
    return version


def schema_of(crd: Schema) -> Schema:
    schema = version_of(crd)["schema"]["openAPIV3Schema"]
    assert isinstance(schema, dict)
    return schema


def walk(schema: Schema, path: SchemaPath = ()) -> Iterator[tuple[SchemaPath, Schema]]:
    """Every schema node, depth first, with its path."""
    yield path, schema
    for name, child in schema.get("properties", {}).items():
        yield from walk(child, (*path, name))
    if "items" in schema:
        yield from walk(schema["items"], (*path, "[]"))


def dotted(path: SchemaPath) -> str:
    return ".".join(path).replace(".[]", "[]") or "<root>"


def all_nodes() -> Iterator[tuple[str, SchemaPath, Schema]]:
    for name, crd in CRDS.items():
        for path, node in walk(schema_of(crd)):
            if path not in ROOT_FIELDS_OWNED_BY_THE_SERVER:
                yield name, path, node


def node_at(schema: Schema, path: SchemaPath) -> Schema | None:
    node: Schema | None = schema
    for segment in path:
        if node is None:
            return None
        node = node.get("items") if segment == "[]" else node.get("properties", {}).get(segment)
    return node


def values_at(value: Any, path: SchemaPath) -> Iterator[Any]:
    """The values of an object found at a schema path (several below an array, none if absent)."""
    if not path:
        yield value
        return
    head, rest = path[0], path[1:]
    if head == "[]":
        if isinstance(value, list):
            for item in value:
                yield from values_at(item, rest)
    elif isinstance(value, dict) and head in value:
        yield from values_at(value[head], rest)


def with_defaults(value: Any, schema: Schema) -> Any:
    """The value with the schema's defaults filled in, as the API server does before CEL runs."""
    if isinstance(value, dict):
        properties: Schema = schema.get("properties", {})
        result = {
            key: with_defaults(item, properties[key]) if key in properties else item
            for key, item in value.items()
        }
        for key, child in properties.items():
            if key not in result and "default" in child:
                result[key] = with_defaults(copy.deepcopy(child["default"]), child)
        return result
    if isinstance(value, list) and "items" in schema:
        return [with_defaults(item, schema["items"]) for item in value]
    return value


# A small structural validator for the examples: types, required fields, enums, bounds, patterns and
# unknown fields. It covers the keywords these CRDs use, nothing more.

JSON_TYPES: dict[str, Callable[[Any], bool]] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
}


def is_date_time(value: str) -> bool:
    try:
        parsed = datetime.datetime.fromisoformat(value)
    except ValueError:
        return False
    return "T" in value and parsed.tzinfo is not None


def schema_errors(value: Any, schema: Schema, path: SchemaPath = ()) -> list[str]:
    where = dotted(path)
    if path in ROOT_FIELDS_OWNED_BY_THE_SERVER:
        return []
    if not JSON_TYPES[schema["type"]](value):
        return [f"{where}: expected {schema['type']}, got {value!r}"]
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
            errors.append(f"{where}: length {len(value)} is out of bounds")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            errors.append(f"{where}: {value!r} does not match {schema['pattern']}")
        if schema.get("format") == "date-time" and not is_date_time(value):
            errors.append(f"{where}: {value!r} is not an RFC 3339 date-time")
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if is_number and not schema.get("minimum", value) <= value <= schema.get("maximum", value):
        errors.append(f"{where}: {value} is out of bounds")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", len(value)):
            errors.append(f"{where}: {len(value)} items is out of bounds")
        for item in value:
            errors += schema_errors(item, schema["items"], (*path, "[]"))
    if isinstance(value, dict):
        properties: Schema = schema.get("properties", {})
        errors += [f"{where}.{key}: required" for key in schema.get("required", []) if key not in value]
        for key, item in value.items():
            if key in properties:
                errors += schema_errors(item, properties[key], (*path, key))
            else:
                errors.append(f"{dotted((*path, key))}: not in the schema")
    return errors


# CEL rules (x-kubernetes-validations), where they sit, and how to run them.


def cel_rules(crd: Schema) -> Iterator[tuple[SchemaPath, Schema]]:
    for path, node in walk(schema_of(crd)):
        for rule in node.get("x-kubernetes-validations", []):
            yield path, rule


ALL_CEL_RULES: list[tuple[str, SchemaPath, Schema]] = [
    (kind, path, rule) for kind, crd in CRDS_BY_KIND.items() for path, rule in cel_rules(crd)
]


def rule_id(kind: str, path: SchemaPath, rule: Schema) -> str:
    return f"{kind}:{dotted(path)}:{rule['message']}"


def is_transition_rule(rule: Schema) -> bool:
    """A rule about a change (``oldSelf``): the API server checks it on updates only."""
    return "oldSelf" in rule["rule"]


def failed_rules(obj: Schema, old: Schema | None = None) -> list[str]:
    """The messages of the CEL rules an object breaks, evaluated as the API server would: on a
    create (``old`` is None) transition rules are skipped; on an update they see ``oldSelf``."""
    crd = CRDS_BY_KIND[obj["kind"]]
    defaulted = with_defaults(obj, schema_of(crd))
    previous = with_defaults(old, schema_of(crd)) if old is not None else None
    failures: list[str] = []
    for path, rule in cel_rules(crd):
        program = cel.compile(rule["rule"])
        transition = is_transition_rule(rule)
        if transition and previous is None:
            continue
        olds: list[Any] = list(values_at(previous, path)) if previous is not None else []
        for index, value in enumerate(values_at(defaulted, path)):
            if transition and index >= len(olds):
                continue  # nothing there before: a transition rule does not apply
            bindings = {"self": value, "oldSelf": olds[index]} if transition else {"self": value}
            try:
                result = program.execute(bindings)
            except (RuntimeError, TypeError, ValueError) as error:
                failures.append(f"{rule['message']} (error: {error})")
                continue
            assert isinstance(result, bool), f"{rule['rule']!r} gave {result!r}, not a bool"
            if not result:
                failures.append(rule["message"])
    return failures


def evaluated_rules(obj: Schema) -> set[str]:
    crd = CRDS_BY_KIND[obj["kind"]]
    defaulted = with_defaults(obj, schema_of(crd))
    return {
        rule_id(obj["kind"], path, rule)
        for path, rule in cel_rules(crd)
        if any(True for _ in values_at(defaulted, path))
    }


# The CRD files


def test_there_is_one_crd_per_kind() -> None:
    assert {name: crd["spec"]["names"]["kind"] for name, crd in CRDS.items()} == {
        f"{plural}.yaml": kind for kind, (plural, _, _) in EXPECTED_KINDS.items()
    }


@pytest.mark.parametrize("name", CRDS)
def test_crd_is_a_valid_custom_resource_definition(name: str) -> None:
    crd = CRDS[name]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["kind"] == "CustomResourceDefinition"
    assert kubernetes_validate.validate(crd, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("name", CRDS)
def test_crd_names_group_and_version(name: str) -> None:
    crd = CRDS[name]
    names = crd["spec"]["names"]
    plural, scope, short_name = EXPECTED_KINDS[names["kind"]]
    assert crd["metadata"]["name"] == f"{plural}.{GROUP}"
    assert crd["spec"]["group"] == GROUP
    assert crd["spec"]["scope"] == scope
    assert names == {
        "kind": names["kind"],
        "listKind": f"{names['kind']}List",
        "plural": plural,
        "singular": names["kind"].lower(),
        "shortNames": [short_name],
        "categories": ["social"],
    }
    version = version_of(crd)
    assert (version["name"], version["served"], version["storage"]) == (VERSION, True, True)


@pytest.mark.parametrize("name", CRDS)
def test_status_is_a_subresource(name: str) -> None:
    assert version_of(CRDS[name])["subresources"] == {"status": {}}


@pytest.mark.parametrize("name", CRDS)
def test_spec_and_status_are_the_only_fields(name: str) -> None:
    schema = schema_of(CRDS[name])
    assert set(schema["properties"]) == {"apiVersion", "kind", "metadata", "spec", "status"}
    assert schema["properties"]["metadata"] == {"type": "object"}
    assert schema["required"] == ["spec"]


# Structural schema rules, checked on every node of every CRD


def test_every_node_is_typed_and_structural() -> None:
    untyped = [f"{name}: {dotted(path)}" for name, path, node in all_nodes() if "type" not in node]
    assert untyped == []
    banned = {"x-kubernetes-preserve-unknown-fields", "additionalProperties", "anyOf", "oneOf", "allOf"}
    loose = [f"{name}: {dotted(path)}" for name, path, node in all_nodes() if banned & set(node)]
    assert loose == []
    empty = [
        f"{name}: {dotted(path)}"
        for name, path, node in all_nodes()
        if node["type"] == "object" and not node.get("properties")
    ]
    assert empty == [], "objects without declared fields would have everything pruned"


def test_every_field_has_a_description() -> None:
    missing = [
        f"{name}: {dotted(path)}"
        for name, path, node in all_nodes()
        if not node.get("description", "").strip()
    ]
    assert missing == []


def test_status_fields_say_the_operator_sets_them() -> None:
    unclear = [
        f"{name}: {dotted(path)}"
        for name, path, node in all_nodes()
        # The entries of a condition are covered by the description of the list.
        if path[:1] == ("status",)
        and path[1:3] != ("conditions", "[]")
        and "Set by the operator." not in node["description"]
    ]
    assert unclear == []


def test_times_are_date_times() -> None:
    def is_time(path: SchemaPath) -> bool:
        field = path[-1] if path else ""
        return field.endswith(("At", "Time")) or field == "scheduledFor"

    wrong = [
        f"{name}: {dotted(path)}"
        for name, path, node in all_nodes()
        if is_time(path) and (node["type"], node.get("format")) != ("string", "date-time")
    ]
    assert wrong == []


def test_every_string_is_bounded() -> None:
    bounds = {"maxLength", "enum", "pattern", "format"}
    unbounded = [
        f"{name}: {dotted(path)}"
        for name, path, node in all_nodes()
        if node["type"] == "string" and not bounds & set(node)
    ]
    assert unbounded == []


def test_every_array_is_bounded() -> None:
    unbounded = [
        f"{name}: {dotted(path)}"
        for name, path, node in all_nodes()
        if node["type"] == "array" and "maxItems" not in node
    ]
    assert unbounded == []


def test_required_fields_are_declared() -> None:
    undeclared = [
        f"{name}: {dotted(path)}.{field}"
        for name, path, node in all_nodes()
        for field in node.get("required", [])
        if field not in node.get("properties", {})
    ]
    assert undeclared == []


def test_defaults_and_enums_satisfy_their_own_schema() -> None:
    bad = [
        f"{name}: {dotted(path)}: {error}"
        for name, path, node in all_nodes()
        for value in ([node["default"]] if "default" in node else []) + node.get("enum", [])
        for error in schema_errors(value, {k: v for k, v in node.items() if k != "enum"}, path)
    ]
    assert bad == []


# Conditions


@pytest.mark.parametrize("name", CRDS)
def test_conditions_are_a_metav1_condition_list_map(name: str) -> None:
    status = schema_of(CRDS[name])["properties"]["status"]
    assert status["properties"]["observedGeneration"]["type"] == "integer"
    conditions = status["properties"]["conditions"]
    assert conditions["type"] == "array"
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert set(item["properties"]) == CONDITION_FIELDS
    assert "type" in item["required"]
    assert set(item["required"]) <= CONDITION_FIELDS
    assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
    assert item["properties"]["type"]["maxLength"] == 316
    assert item["properties"]["reason"]["maxLength"] == 1024
    assert item["properties"]["reason"]["pattern"] == "^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"
    assert item["properties"]["message"]["maxLength"] == 32768
    assert item["properties"]["lastTransitionTime"]["format"] == "date-time"
    assert item["properties"]["observedGeneration"]["minimum"] == 0


def conditions_block(text: str) -> str:
    """The text of the ``status.conditions`` schema: its key line and everything indented below it."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "conditions:")
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = next(
        (i for i in range(start + 1, len(lines)) if len(lines[i]) - len(lines[i].lstrip()) <= indent),
        len(lines),
    )
    return "\n".join(lines[start:end])


def test_the_conditions_schema_is_byte_identical_everywhere() -> None:
    blocks = {path.name: conditions_block(path.read_text()) for path in CRD_FILES}
    assert len(set(blocks.values())) == 1, sorted(blocks)


# Printer columns


def column_schema_path(json_path: str) -> SchemaPath:
    """``.status.conditions[?(@.type=="Ready")].status`` -> ``("status", "conditions", "[]", "status")``."""
    without_filters = re.sub(r"\[\?\(.*?\)\]", ".[]", json_path)
    return tuple(segment for segment in without_filters.split(".") if segment)


@pytest.mark.parametrize("name", CRDS)
def test_printer_columns_point_at_fields_of_the_right_type(name: str) -> None:
    crd = CRDS[name]
    columns = version_of(crd)["additionalPrinterColumns"]
    assert columns[-1] == {
        "name": "Age",
        "type": "date",
        "jsonPath": ".metadata.creationTimestamp",
        "description": columns[-1]["description"],
    }
    for column in columns[:-1]:
        assert column["description"]
        node = node_at(schema_of(crd), column_schema_path(column["jsonPath"]))
        assert node is not None, column
        expected = "date" if node.get("format") == "date-time" else node["type"]
        # A future time reads "<invalid>" as a date column, so scheduled times are shown as strings.
        assert column["type"] == expected or (column["type"], expected) == ("string", "date"), column


# CEL rules


@pytest.mark.parametrize(
    ("kind", "path", "rule"), ALL_CEL_RULES, ids=[rule_id(*entry) for entry in ALL_CEL_RULES]
)
def test_cel_rule_compiles_and_explains_itself(kind: str, path: SchemaPath, rule: Schema) -> None:
    assert cel.compile(rule["rule"])
    assert rule["message"]
    assert set(rule) <= {"rule", "message", "fieldPath", "reason"}


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_satisfies_the_cel_rules(name: str) -> None:
    assert failed_rules(EXAMPLES[name]) == []


def test_every_cel_rule_is_exercised_by_an_example() -> None:
    exercised = set().union(*(evaluated_rules(example) for example in EXAMPLES.values()))
    rules = {rule_id(*entry) for entry in ALL_CEL_RULES if not is_transition_rule(entry[2])}
    assert rules - exercised == set()


def broken(example: str, change: Callable[[Schema], None]) -> Schema:
    obj = copy.deepcopy(EXAMPLES[example])
    change(obj["spec"])
    return obj


BAD_SPECS: dict[str, tuple[Schema, str]] = {
    "duplicate accountIds": (
        broken("scheduled-post.yaml", lambda spec: spec["targets"].append({"accountId": 12})),
        "targets must name each accountId at most once",
    ),
    "empty targets": (
        broken("draft-post.yaml", lambda spec: spec.update(targets=[])),
        "a post needs at least one target",
    ),
    "no targets": (
        broken("draft-post.yaml", lambda spec: spec.pop("targets")),
        "a post needs at least one target",
    ),
    "empty overrideBody": (
        broken("scheduled-post.yaml", lambda spec: spec["targets"][0].update(overrideBody="")),
        "overrideBody must not be empty when given; omit it to publish the post's body",
    ),
    "plain http media": (
        broken("scheduled-post.yaml", lambda spec: spec["media"][0].update(url="http://example.com/a.png")),
        "media url must start with https://",
    ),
    "sandbox account with credentials": (
        broken("sandbox-account.yaml", lambda spec: spec.update(credentialsSecretRef={"name": "token-12"})),
        "sandbox accounts must not have credentialsSecretRef",
    ),
    "live account without credentials": (
        broken("sandbox-account.yaml", lambda spec: spec.pop("sandbox")),
        "non-sandbox accounts must have credentialsSecretRef",
    ),
    "tenant with one namespace for both": (
        broken("tenant.yaml", lambda spec: spec.update(sandboxNamespace=spec["liveNamespace"])),
        "liveNamespace and sandboxNamespace must differ",
    ),
    "webhook to an ftp url": (
        broken("webhook-endpoint.yaml", lambda spec: spec.update(url="ftp://hooks.example.com/x")),
        "url must start with https:// or http://",
    ),
}


@pytest.mark.parametrize("case", BAD_SPECS)
def test_cel_rules_reject_a_bad_spec(case: str) -> None:
    obj, message = BAD_SPECS[case]
    assert failed_rules(obj) == [message]


TARGET: Schema = {
    "apiVersion": f"{GROUP}/{VERSION}",
    "kind": "SocialTarget",
    "metadata": {"name": "post-1-6", "namespace": "acme-live"},
    "spec": {"postName": "post-1", "accountId": 6},
}


def changed_target(change: Callable[[Schema], None]) -> Schema:
    obj = copy.deepcopy(TARGET)
    change(obj["spec"])
    return obj


BAD_CHANGES: dict[str, tuple[Schema, Schema, str]] = {
    "a target moved to another account": (
        TARGET,
        changed_target(lambda spec: spec.update(accountId=5)),
        "accountId is immutable (a target delivers to one account for good: changing it could send a "
        "post to an account that already has it)",
    ),
    "a target moved to another post": (
        TARGET,
        changed_target(lambda spec: spec.update(postName="post-2")),
        "postName is immutable (a target belongs to one post for good)",
    ),
}


@pytest.mark.parametrize("case", BAD_CHANGES)
def test_transition_rules_reject_a_bad_change(case: str) -> None:
    old, new, message = BAD_CHANGES[case]
    assert failed_rules(old) == []
    assert failed_rules(new) == []  # as a create, the new object is fine
    assert failed_rules(new, old) == [message]


def test_an_unchanged_target_passes_its_transition_rules() -> None:
    same = changed_target(lambda spec: spec.update(overrideBody="Hello"))
    assert failed_rules(same, TARGET) == []


def test_every_cel_rule_has_a_bad_spec() -> None:
    covered = {message for _, message in BAD_SPECS.values()} | {m for _, _, m in BAD_CHANGES.values()}
    assert {rule["message"] for _, _, rule in ALL_CEL_RULES} == covered


def test_a_live_account_with_credentials_passes() -> None:
    def go_live(spec: Schema) -> None:
        spec.update(sandbox=False, credentialsSecretRef={"name": "account-12-token"})

    assert failed_rules(broken("sandbox-account.yaml", go_live)) == []


# The examples


def test_every_kind_a_user_writes_has_an_example() -> None:
    kinds = {example["kind"] for example in EXAMPLES.values()}
    # Targets and webhook deliveries are kept by the operator.
    assert kinds == set(CRDS_BY_KIND) - {"SocialTarget", "SocialWebhookDelivery"}


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_matches_its_crd(name: str) -> None:
    example = EXAMPLES[name]
    assert example["apiVersion"] == f"{GROUP}/{VERSION}"
    assert example["kind"] in CRDS_BY_KIND
    crd = CRDS_BY_KIND[example["kind"]]
    namespaced = crd["spec"]["scope"] == "Namespaced"
    assert ("namespace" in example["metadata"]) == namespaced
    assert "status" not in example, "status is written by the operator through /status"
    assert schema_errors(example, schema_of(crd)) == []


@pytest.mark.parametrize("name", EXAMPLES)
def test_example_explains_itself(name: str) -> None:
    text = (EXAMPLES_DIR / name).read_text()
    assert text.startswith("# ")
    assert "kubectl apply" in text


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda spec: spec.update(colour="red"), "spec.colour: not in the schema"),
        (
            lambda spec: spec["targets"][0].update(accountId="12"),
            "spec.targets[].accountId: expected integer",
        ),
        (lambda spec: spec["targets"][0].update(accountId=0), "spec.targets[].accountId: 0 is out of bounds"),
        (lambda spec: spec.update(scheduledFor="tomorrow"), "spec.scheduledFor: 'tomorrow' is not an RFC"),
        (lambda spec: spec.pop("body"), "spec.body: required"),
    ],
)
def test_the_example_validator_catches_mistakes(change: Callable[[Schema], None], error: str) -> None:
    errors = schema_errors(broken("scheduled-post.yaml", change), schema_of(CRDS_BY_KIND["SocialPost"]))
    assert any(found.startswith(error) for found in errors), errors


def test_every_key_an_adapter_checkpoints_is_declared_in_the_target_status() -> None:
    """The API server prunes undeclared fields: a platformState marker missing from the schema is
    silently dropped, and the crash it guards against then publishes twice (issue 9, found by the soak)."""
    from socialpub.platforms import _http, instagram, linkedin

    declared = schema_of(CRDS_BY_KIND["SocialTarget"])["properties"]["status"]["properties"]["platformState"]
    keys = {_http.UNCONFIRMED, instagram.CONTAINER_ID, instagram.CONTAINER_CREATED_AT, linkedin.CREATE_SENT}
    assert keys <= set(declared["properties"]), sorted(keys - set(declared["properties"]))
