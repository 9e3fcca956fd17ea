"""kube-apiserver HTTP semantics of the embedded Kubernetes API, asserted over real HTTP with httpx.

One test (or a few) per bullet of docs/embedded-kubernetes-api.md "Semantics": discovery and
OpenAPI, server-assigned metadata, generation and resourceVersion rules, optimistic concurrency,
every patch type, the status split, selectors and paging, Tables, watches (replay, live,
selector transitions, bookmarks, timeouts, expiry), finalizers, garbage collection, namespace
termination, dryRun, preconditions, schema validation, error bodies, malformed input, restart
durability and concurrent writers. Each test works in its own namespace on a module-wide server
unless it needs special settings or a restart.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import re
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from socialpub.embedded.server import ServerSettings
from tests.kube_harness import KubeHarness

GROUP = "social.softsolz.uk"
VERSION = "v1alpha1"
GV = f"/apis/{GROUP}/{VERSION}"
API_VERSION = f"{GROUP}/{VERSION}"
MERGE = {"Content-Type": "application/merge-patch+json"}
JSON_PATCH = {"Content-Type": "application/json-patch+json"}
APPLY = {"Content-Type": "application/apply-patch+yaml"}
STRATEGIC = {"Content-Type": "application/strategic-merge-patch+json"}
TABLE = {"Accept": "application/json;as=Table;v=v1;g=meta.k8s.io"}
FINALIZER = f"{GROUP}/cleanup"
SMP_MESSAGE = (
    "the body of the request was in an unknown format - accepted media types include: "
    "application/json-patch+json, application/merge-patch+json, application/apply-patch+yaml"
)
CONFLICT_MESSAGE = (
    'Operation cannot be fulfilled on socialposts.social.softsolz.uk "{name}": the object has been '
    "modified; please apply your changes to the latest version and try again"
)
APPLY_TEMPLATE = """\
apiVersion: social.softsolz.uk/v1alpha1
kind: SocialPost
metadata:
  name: p
  labels:
    {label}
spec:
  body: {body}
  scheduledFor: 2030-01-01T00:00:00Z
  targets:
  - accountId: {account}
"""

Event = dict[str, Any]


# ---------------------------------------------------------------------------------------------
# Helpers.
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http(shared_kube: KubeHarness) -> Iterator[httpx.Client]:
    with shared_kube.http(timeout=10) as c:
        yield c


def client_for(kube: KubeHarness) -> httpx.Client:
    return kube.http(timeout=10)


def posts(ns: str, name: str = "", sub: str = "") -> str:
    return "/".join(p for p in (f"{GV}/namespaces/{ns}/socialposts", name, sub) if p)


def targets(ns: str, name: str = "") -> str:
    return "/".join(p for p in (f"{GV}/namespaces/{ns}/socialtargets", name) if p)


def configmaps(ns: str, name: str = "") -> str:
    return "/".join(p for p in (f"/api/v1/namespaces/{ns}/configmaps", name) if p)


def post_body(
    name: str | None = None,
    *,
    labels: dict[str, str] | None = None,
    body: str = "hello",
    accounts: tuple[int, ...] = (1,),
    **spec: Any,
) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    if name is not None:
        meta["name"] = name
    if labels:
        meta["labels"] = labels
    return {
        "apiVersion": API_VERSION,
        "kind": "SocialPost",
        "metadata": meta,
        "spec": {"body": body, "targets": [{"accountId": a} for a in accounts], **spec},
    }


def new_namespace(c: httpx.Client, name: str) -> str:
    r = c.post(
        "/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
    )
    assert r.status_code == 201, r.text
    return name


def create(c: httpx.Client, path: str, body: dict[str, Any], **params: str) -> dict[str, Any]:
    r = c.post(path, json=body, params=params)
    assert r.status_code == 201, r.text
    obj: dict[str, Any] = r.json()
    return obj


def get(c: httpx.Client, path: str) -> dict[str, Any]:
    r = c.get(path)
    assert r.status_code == 200, r.text
    obj: dict[str, Any] = r.json()
    return obj


def merge(c: httpx.Client, path: str, patch: Any, **params: str) -> dict[str, Any]:
    r = c.patch(path, content=json.dumps(patch), headers=MERGE, params=params)
    assert r.status_code == 200, r.text
    obj: dict[str, Any] = r.json()
    return obj


def rv_of(obj: dict[str, Any]) -> int:
    return int(obj["metadata"]["resourceVersion"])


def list_rv(c: httpx.Client, path: str) -> str:
    rv: str = get(c, path)["metadata"]["resourceVersion"]
    return rv


def names(listing: dict[str, Any]) -> list[str]:
    return [item["metadata"]["name"] for item in listing["items"]]


def assert_status(r: httpx.Response, code: int, reason: str) -> dict[str, Any]:
    """``r`` failed with a ``kind: Status`` body carrying ``code`` and ``reason``."""
    assert r.status_code == code, r.text
    assert r.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = r.json()
    assert body["kind"] == "Status", body
    assert body["apiVersion"] == "v1"
    assert body["metadata"] == {}
    assert body["status"] == "Failure"
    assert body["code"] == code
    assert body["reason"] == reason
    assert isinstance(body["message"], str)
    assert body["message"]
    return body


SKIPPED_RULES = (
    "some validation rules were not checked because the object was invalid; "
    "correct the existing errors to complete validation"
)


def cause_fields(r: httpx.Response) -> dict[str, str]:
    """``field -> reason`` of a 422's ``details.causes``.

    Like kube-apiserver, the server skips the CEL rules of an object that already fails its
    schema and says so in an extra cause with field ``<nil>``; that cause is checked and left out.
    """
    body = assert_status(r, 422, "Invalid")
    causes = {c["field"]: c["reason"] for c in body["details"]["causes"]}
    for cause in body["details"]["causes"]:
        if cause["field"] == "<nil>":
            assert cause["reason"] == "FieldValueInvalid"
            assert cause["message"].endswith(SKIPPED_RULES)
            del causes["<nil>"]
    return causes


def watch(
    c: httpx.Client,
    path: str,
    *,
    until: Callable[[Event], bool],
    headers: dict[str, str] | None = None,
    before_reading: Callable[[], None] | None = None,
    **params: str,
) -> list[Event]:
    """Events of a watch on ``path`` up to and including the first one ``until`` accepts.

    ``before_reading`` runs once the response headers are in (the watch is open), so the writes
    it makes arrive as live events. The client read timeout bounds every wait.
    """
    query = {"watch": "1", "timeoutSeconds": "20", **params}
    events: list[Event] = []
    with c.stream("GET", path, params=query, headers=headers, timeout=5) as r:
        assert r.status_code == 200, r.read()
        assert r.headers["content-type"].startswith("application/json")
        if before_reading is not None:
            before_reading()
        for line in r.iter_lines():
            if not line:
                continue
            event: Event = json.loads(line)
            events.append(event)
            if until(event):
                return events
    raise AssertionError(f"the watch ended before the expected event; got {events}")


def named(name: str, event_type: str = "ADDED") -> Callable[[Event], bool]:
    return lambda e: e["type"] == event_type and e["object"]["metadata"]["name"] == name


def summary(events: list[Event]) -> list[tuple[str, str]]:
    return [(e["type"], e["object"]["metadata"]["name"]) for e in events]


def snapshot(c: httpx.Client) -> dict[str, Any]:
    """Everything stored, including the list resourceVersion (which any write would bump)."""
    paths = (
        f"{GV}/socialposts",
        f"{GV}/socialtargets",
        f"{GV}/socialaccounts",
        "/api/v1/namespaces",
        "/api/v1/configmaps",
        "/api/v1/secrets",
        "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
    )
    return {path: get(c, path) for path in paths}


def wait_until(check: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.02)


def gone(c: httpx.Client, path: str) -> bool:
    return c.get(path).status_code == 404


# ---------------------------------------------------------------------------------------------
# Discovery and OpenAPI.
# ---------------------------------------------------------------------------------------------


def test_version_and_core_discovery(http: httpx.Client) -> None:
    version = get(http, "/version")
    assert version["major"] == "1"
    assert version["minor"].isdigit()
    assert version["gitVersion"].startswith(f"v1.{version['minor']}.")

    assert get(http, "/api") == {**get(http, "/api"), "kind": "APIVersions", "versions": ["v1"]}

    core = get(http, "/api/v1")
    assert core["kind"] == "APIResourceList"
    assert core["groupVersion"] == "v1"
    resources = {r["name"]: r for r in core["resources"]}
    assert {"namespaces", "events", "secrets", "configmaps"} <= set(resources)
    assert resources["namespaces"]["namespaced"] is False
    assert resources["namespaces"]["kind"] == "Namespace"
    assert "ns" in resources["namespaces"]["shortNames"]
    assert resources["configmaps"]["namespaced"] is True
    assert {"create", "list", "watch"} <= set(resources["events"]["verbs"])
    for name in ("namespaces", "secrets", "configmaps"):
        assert {"get", "list", "watch", "create", "update", "patch", "delete"} <= set(
            resources[name]["verbs"]
        )


def test_group_discovery(http: httpx.Client) -> None:
    groups = get(http, "/apis")
    assert groups["kind"] == "APIGroupList"
    by_name = {g["name"]: g for g in groups["groups"]}
    social = by_name[GROUP]
    assert social["versions"] == [{"groupVersion": API_VERSION, "version": VERSION}]
    assert social["preferredVersion"] == {"groupVersion": API_VERSION, "version": VERSION}
    assert "apiextensions.k8s.io" in by_name

    group = get(http, f"/apis/{GROUP}")
    assert group["kind"] == "APIGroup"
    assert group["name"] == GROUP
    assert group["preferredVersion"]["groupVersion"] == API_VERSION

    resources = get(http, GV)
    assert resources["kind"] == "APIResourceList"
    assert resources["groupVersion"] == API_VERSION
    by_resource = {r["name"]: r for r in resources["resources"]}
    sp = by_resource["socialposts"]
    assert sp["kind"] == "SocialPost"
    assert sp["singularName"] == "socialpost"
    assert sp["namespaced"] is True
    assert sp["shortNames"] == ["sp"]
    assert sp["categories"] == ["social"]
    assert sorted(sp["verbs"]) == sorted(
        ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
    )
    status = by_resource["socialposts/status"]
    assert status["kind"] == "SocialPost"
    assert status["namespaced"] is True
    assert sorted(status["verbs"]) == ["get", "patch", "update"]
    assert by_resource["socialtenants"]["namespaced"] is False
    assert by_resource["socialtargets"]["shortNames"] == ["st"]
    assert {"socialaccounts", "socialwebhookendpoints"} <= set(by_resource)

    crds = get(http, "/apis/apiextensions.k8s.io/v1")
    assert "customresourcedefinitions" in {r["name"] for r in crds["resources"]}

    for missing in ("/apis/nope.example.com", "/apis/nope.example.com/v1", f"/apis/{GROUP}/v9"):
        body = assert_status(http.get(missing), 404, "NotFound")
        assert body["message"] == "the server could not find the requested resource"


def test_openapi_v3_index_and_group_version_document(http: httpx.Client) -> None:
    index = get(http, "/openapi/v3")
    entry = index["paths"][f"apis/{GROUP}/{VERSION}"]
    assert "api/v1" in index["paths"]
    url = entry["serverRelativeURL"]
    assert url.startswith(f"/openapi/v3/apis/{GROUP}/{VERSION}")

    doc = get(http, url)
    assert doc["openapi"].startswith("3.")
    tagged = {
        (gvk["group"], gvk["version"], gvk["kind"]): schema
        for schema in doc["components"]["schemas"].values()
        for gvk in schema.get("x-kubernetes-group-version-kind", [])
    }
    schema = tagged[(GROUP, VERSION, "SocialPost")]
    assert "spec" in schema["properties"]
    assert schema["properties"]["spec"]["description"]

    item = doc["paths"][f"{GV}/namespaces/{{namespace}}/socialposts/{{name}}"]
    patch = item["patch"]
    assert patch["x-kubernetes-group-version-kind"] == {
        "group": GROUP,
        "version": VERSION,
        "kind": "SocialPost",
    } or (
        {"group": GROUP, "version": VERSION, "kind": "SocialPost"} in patch["x-kubernetes-group-version-kind"]
    )
    parameters = [p.get("name") for p in patch.get("parameters", []) + item.get("parameters", [])]
    assert "fieldValidation" in parameters

    v2 = http.get("/openapi/v2")
    assert v2.status_code == 200
    assert "definitions" in v2.json() or "paths" in v2.json()


# ---------------------------------------------------------------------------------------------
# Metadata, generation, resourceVersion, optimistic concurrency.
# ---------------------------------------------------------------------------------------------


def test_create_assigns_metadata_drops_status_and_generates_names(http: httpx.Client) -> None:
    ns = new_namespace(http, "meta")
    body = post_body("p1")
    body["metadata"].update(uid="fake", resourceVersion="999999", creationTimestamp="2000-01-01T00:00:00Z")
    body["metadata"]["generation"] = 7
    body["status"] = {"phase": "published"}
    created = create(http, posts(ns), body)
    meta = created["metadata"]
    assert re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", meta["uid"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta["creationTimestamp"])
    assert meta["creationTimestamp"] != "2000-01-01T00:00:00Z"
    assert meta["resourceVersion"] != "999999"
    assert meta["generation"] == 1
    assert meta["namespace"] == ns
    assert "status" not in created
    assert "status" not in get(http, posts(ns, "p1"))

    generated = [
        create(http, posts(ns), post_body(None) | {"metadata": {"generateName": "gen-"}}) for _ in range(3)
    ]
    gen_names = [g["metadata"]["name"] for g in generated]
    for name in gen_names:
        assert re.fullmatch(r"gen-[bcdfghjklmnpqrstvwxz2456789]{5}", name)
    assert len(set(gen_names)) == 3
    assert generated[0]["metadata"]["generateName"] == "gen-"

    # Without name or generateName: 422 on metadata.name.
    assert "metadata.name" in cause_fields(http.post(posts(ns), json=post_body(None)))

    # resourceVersions come from one global counter.
    cm = create(http, configmaps(ns), {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    assert rv_of(cm) > max(rv_of(g) for g in generated)
    assert "generation" not in cm["metadata"]


def test_bodies_decode_as_kube_apiserver_decodes_them(http: httpx.Client) -> None:
    ns = new_namespace(http, "decoding")

    # A create or update without Content-Type is JSON (the kubernetes client sends none).
    r = http.post(posts(ns), content=json.dumps(post_body("no-type")).encode())
    assert r.status_code == 201, r.text
    # Built-in kinds default a missing kind/apiVersion from the URL; custom kinds need them.
    r = http.post(configmaps(ns), json={"metadata": {"name": "bare"}, "data": {"a": "1"}})
    assert r.status_code == 201, r.text
    assert (r.json()["kind"], r.json()["apiVersion"]) == ("ConfigMap", "v1")
    assert get(http, configmaps(ns, "bare"))["kind"] == "ConfigMap"
    bare = post_body("bare")
    del bare["kind"], bare["apiVersion"]
    assert_status(http.post(posts(ns), json=bare), 400, "BadRequest")

    # YAML: timestamps and dates stay strings, as written.
    manifest = (
        "apiVersion: social.softsolz.uk/v1alpha1\nkind: SocialPost\nmetadata:\n  name: yaml\n"
        "  annotations:\n    day: 2030-01-01\nspec:\n  body: from yaml\n"
        "  scheduledFor: 2030-01-01T09:30:00Z\n  targets:\n  - accountId: 1\n"
    )
    r = http.post(posts(ns), content=manifest, headers={"Content-Type": "application/yaml"})
    assert r.status_code == 201, r.text
    assert r.json()["spec"]["scheduledFor"] == "2030-01-01T09:30:00Z"
    assert r.json()["metadata"]["annotations"] == {"day": "2030-01-01"}

    # A Secret's write-only stringData is folded into data (base64) and never stored.
    secrets = f"/api/v1/namespaces/{ns}/secrets"
    secret = {"metadata": {"name": "s"}, "data": {"a": "YQ=="}, "stringData": {"b": "bee", "a": "override"}}
    r = http.post(secrets, json=secret)
    assert r.status_code == 201, r.text
    assert "stringData" not in r.json()
    assert r.json()["data"] == {"a": "b3ZlcnJpZGU=", "b": "YmVl"}
    assert get(http, f"{secrets}/s") == r.json()
    patched = merge(http, f"{secrets}/s", {"stringData": {"c": "sea"}})
    assert patched["data"] == {"a": "b3ZlcnJpZGU=", "b": "YmVl", "c": "c2Vh"}
    assert "stringData" not in patched


def test_generation_and_resource_version_rules(http: httpx.Client) -> None:
    ns = new_namespace(http, "generation")
    path = posts(ns, "p")
    obj = create(http, posts(ns), post_body("p"))
    rv = rv_of(obj)

    labelled = merge(http, path, {"metadata": {"labels": {"a": "b"}, "annotations": {"n": "1"}}})
    assert labelled["metadata"]["generation"] == 1
    assert rv_of(labelled) > rv

    spec = merge(http, path, {"spec": {"body": "changed"}})
    assert spec["metadata"]["generation"] == 2
    assert rv_of(spec) > rv_of(labelled)

    # A no-op merge patch, a no-op JSON patch and a no-op PUT return the object unchanged.
    same = merge(http, path, {"spec": {"body": "changed"}, "metadata": {"labels": {"a": "b"}}})
    assert same["metadata"]["resourceVersion"] == spec["metadata"]["resourceVersion"]
    assert same == get(http, path)
    r = http.patch(
        path, json=[{"op": "replace", "path": "/spec/body", "value": "changed"}], headers=JSON_PATCH
    )
    assert r.status_code == 200
    assert r.json()["metadata"]["resourceVersion"] == spec["metadata"]["resourceVersion"]
    put = http.put(path, json=get(http, path))
    assert put.status_code == 200
    assert put.json()["metadata"]["resourceVersion"] == spec["metadata"]["resourceVersion"]
    assert put.json()["metadata"]["generation"] == 2

    status = merge(http, posts(ns, "p", "status"), {"status": {"phase": "scheduled"}})
    assert status["metadata"]["generation"] == 2
    assert rv_of(status) > rv_of(spec)

    # Server-owned metadata cannot be changed by a write.
    forged = merge(
        http, path, {"metadata": {"uid": "x", "generation": 40, "creationTimestamp": "2000-01-01T00:00:00Z"}}
    )
    assert forged["metadata"]["uid"] == obj["metadata"]["uid"]
    assert forged["metadata"]["generation"] == 2
    assert forged["metadata"]["creationTimestamp"] == obj["metadata"]["creationTimestamp"]
    assert forged["metadata"]["resourceVersion"] == status["metadata"]["resourceVersion"]


def test_optimistic_concurrency(http: httpx.Client) -> None:
    ns = new_namespace(http, "occ")
    path = posts(ns, "p")
    first = create(http, posts(ns), post_body("p"))
    current = merge(http, path, {"spec": {"body": "two"}})

    # A stale resourceVersion in a merge patch, a JSON patch or a PUT body → 409 Conflict.
    stale_rv = first["metadata"]["resourceVersion"]
    r = http.patch(
        path,
        content=json.dumps({"metadata": {"resourceVersion": stale_rv}, "spec": {"body": "x"}}),
        headers=MERGE,
    )
    body = assert_status(r, 409, "Conflict")
    assert body["message"] == CONFLICT_MESSAGE.format(name="p")
    assert body["details"]["name"] == "p"
    r = http.patch(
        path,
        json=[
            {"op": "replace", "path": "/metadata/resourceVersion", "value": stale_rv},
            {"op": "replace", "path": "/spec/body", "value": "x"},
        ],
        headers=JSON_PATCH,
    )
    assert_status(r, 409, "Conflict")
    assert_status(
        http.put(path, json=first | {"spec": {"body": "x", "targets": [{"accountId": 1}]}}), 409, "Conflict"
    )

    # A PUT without resourceVersion on a custom kind → 422.
    r = http.put(path, json=post_body("p", body="unconditional"))
    body = assert_status(r, 422, "Invalid")
    assert "must be specified for an update" in body["message"]
    assert body["details"]["causes"][0]["field"] == "metadata.resourceVersion"

    # Nothing of that was stored; the current version wins.
    assert get(http, path) == current
    ok = merge(
        http,
        path,
        {"metadata": {"resourceVersion": current["metadata"]["resourceVersion"]}, "spec": {"body": "three"}},
    )
    assert ok["spec"]["body"] == "three"

    # Core kinds accept an unconditional PUT.
    create(
        http,
        configmaps(ns),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}},
    )
    r = http.put(
        configmaps(ns, "c"),
        json={"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"b": "2"}},
    )
    assert r.status_code == 200
    assert r.json()["data"] == {"b": "2"}


# ---------------------------------------------------------------------------------------------
# Patches.
# ---------------------------------------------------------------------------------------------


def test_merge_patch_null_deletes_and_lists_are_replaced(http: httpx.Client) -> None:
    ns = new_namespace(http, "merge")
    path = posts(ns, "p")
    body = post_body("p", labels={"a": "1", "b": "2"}, accounts=(1, 2), draft=True)
    body["spec"]["media"] = [{"url": "https://x.example/1.png", "alt": "one"}]
    create(http, posts(ns), body)

    patched = merge(
        http,
        path,
        {
            "metadata": {"labels": {"a": None, "c": "3"}},
            "spec": {
                "draft": None,
                "targets": [{"accountId": 3}],
                "media": [{"url": "https://x.example/2.png"}],
            },
        },
    )
    assert patched["metadata"]["labels"] == {"b": "2", "c": "3"}
    assert "draft" not in patched["spec"]
    assert patched["spec"]["targets"] == [{"accountId": 3}]
    assert patched["spec"]["media"] == [{"url": "https://x.example/2.png"}]
    assert get(http, path) == patched

    # null on an absent key is harmless; nested nulls delete nested keys.
    again = merge(http, path, {"spec": {"scheduledFor": None}, "metadata": {"annotations": None}})
    assert again["metadata"]["resourceVersion"] == patched["metadata"]["resourceVersion"]


def test_json_patch_operations(http: httpx.Client) -> None:
    ns = new_namespace(http, "jsonpatch")
    path = posts(ns, "p")
    create(http, posts(ns), post_body("p", labels={"keep": "1"}, accounts=(1, 2)))

    def jp(ops: list[dict[str, Any]]) -> httpx.Response:
        return http.patch(path, content=json.dumps(ops), headers=JSON_PATCH)

    r = jp(
        [
            {"op": "test", "path": "/spec/body", "value": "hello"},
            {"op": "add", "path": "/spec/draft", "value": True},
            {"op": "add", "path": "/metadata/labels/added", "value": "yes"},
            {"op": "add", "path": "/spec/targets/-", "value": {"accountId": 3}},
            {"op": "replace", "path": "/spec/body", "value": "replaced"},
            {"op": "copy", "from": "/spec/body", "path": "/spec/targets/0/overrideBody"},
            {"op": "move", "from": "/spec/targets/0/overrideBody", "path": "/spec/targets/1/overrideBody"},
            {"op": "remove", "path": "/metadata/labels/keep"},
        ]
    )
    assert r.status_code == 200, r.text
    obj = r.json()
    assert obj["spec"] == {
        "body": "replaced",
        "draft": True,
        "targets": [{"accountId": 1}, {"accountId": 2, "overrideBody": "replaced"}, {"accountId": 3}],
    }
    assert obj["metadata"]["labels"] == {"added": "yes"}
    assert obj["metadata"]["generation"] == 2

    # A failed test (and any operation that cannot apply) → 422, nothing stored.
    before = get(http, path)
    assert_status(
        jp([{"op": "test", "path": "/spec/body", "value": "nope"}, {"op": "remove", "path": "/spec/draft"}]),
        422,
        "Invalid",
    )
    assert_status(jp([{"op": "remove", "path": "/spec/missing"}]), 422, "Invalid")
    assert_status(jp([{"op": "replace", "path": "/spec/targets/9/accountId", "value": 1}]), 422, "Invalid")
    # A malformed patch document → 400.
    assert_status(jp({"op": "add"}), 400, "BadRequest")  # type: ignore[arg-type]
    assert_status(jp([{"op": "frobnicate", "path": "/spec"}]), 400, "BadRequest")
    assert get(http, path) == before


def test_apply_patch(http: httpx.Client) -> None:
    ns = new_namespace(http, "apply")
    path = posts(ns, "p")
    config = APPLY_TEMPLATE.format(label="a: '1'", body="applied", account=1)

    body = assert_status(http.patch(path, content=config, headers=APPLY), 422, "Invalid")
    assert body["message"] == (
        'PatchOptions.meta.k8s.io "" is invalid: fieldManager: Required value: is required for apply patch'
    )
    assert gone(http, path)

    created = http.patch(path, content=config, headers=APPLY, params={"fieldManager": "test"})
    assert created.status_code == 201, created.text
    assert created.json()["spec"]["body"] == "applied"
    assert created.json()["metadata"]["generation"] == 1

    second = APPLY_TEMPLATE.format(label="b: '2'", body="reapplied", account=2)
    merged = http.patch(path, content=second, headers=APPLY, params={"fieldManager": "test"})
    assert merged.status_code == 200, merged.text
    obj = merged.json()
    assert obj["spec"]["body"] == "reapplied"
    assert obj["spec"]["targets"] == [{"accountId": 2}]
    assert obj["metadata"]["labels"] == {"a": "1", "b": "2"}
    assert obj["metadata"]["generation"] == 2
    assert obj["metadata"]["uid"] == created.json()["metadata"]["uid"]

    # An unquoted YAML timestamp stays the string it was (as sigs.k8s.io/yaml reads it).
    assert obj["spec"]["scheduledFor"] == "2030-01-01T00:00:00Z"

    # Creating through apply checks the name in the body against the URL.
    other = APPLY_TEMPLATE.format(label="a: '1'", body="x", account=1).replace("name: p", "name: q")
    r = http.patch(posts(ns, "elsewhere"), content=other, headers=APPLY, params={"fieldManager": "test"})
    assert_status(r, 400, "BadRequest")
    assert gone(http, posts(ns, "elsewhere"))
    assert gone(http, posts(ns, "q"))

    # JSON is YAML: the same endpoint takes a JSON apply configuration.
    as_json = http.patch(
        path, content=json.dumps(post_body("p", body="json")), headers=APPLY, params={"fieldManager": "test"}
    )
    assert as_json.status_code == 200
    assert as_json.json()["spec"]["body"] == "json"


def test_strategic_merge_patch(http: httpx.Client) -> None:
    ns = new_namespace(http, "smp")
    create(http, posts(ns), post_body("p"))
    r = http.patch(posts(ns, "p"), content=json.dumps({"spec": {"body": "x"}}), headers=STRATEGIC)
    body = assert_status(r, 415, "UnsupportedMediaType")
    assert body == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": SMP_MESSAGE,
        "reason": "UnsupportedMediaType",
        "code": 415,
    }
    assert get(http, posts(ns, "p"))["spec"]["body"] == "hello"

    # On a core kind it is served (as a merge patch).
    create(
        http,
        configmaps(ns),
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}},
    )
    r = http.patch(configmaps(ns, "c"), content=json.dumps({"data": {"b": "2"}}), headers=STRATEGIC)
    assert r.status_code == 200
    assert r.json()["data"] == {"a": "1", "b": "2"}


# ---------------------------------------------------------------------------------------------
# Status subresource.
# ---------------------------------------------------------------------------------------------


def test_status_split(http: httpx.Client) -> None:
    ns = new_namespace(http, "status")
    path, status_path = posts(ns, "p"), posts(ns, "p", "status")
    create(http, posts(ns), post_body("p"))

    # Writes to /status change only status (spec, labels ignored), and not the generation.
    s = merge(
        http,
        status_path,
        {"status": {"phase": "scheduled"}, "spec": {"body": "ignored"}, "metadata": {"labels": {"x": "y"}}},
    )
    assert s["status"] == {"phase": "scheduled"}
    assert s["spec"]["body"] == "hello"
    assert "labels" not in s["metadata"]
    assert s["metadata"]["generation"] == 1
    put = s | {
        "status": {"phase": "publishing"},
        "spec": {"body": "ignored too", "targets": [{"accountId": 1}]},
    }
    r = http.put(status_path, json=put)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == {"phase": "publishing"}
    assert r.json()["spec"]["body"] == "hello"
    assert get(http, status_path) == r.json()

    # Writes to the object keep the stored status: a status-only change is a no-op.
    current = r.json()
    noop = merge(http, path, {"status": {"phase": "failed"}})
    assert noop == current
    r = http.put(
        path,
        json=current
        | {"status": {"phase": "failed"}, "spec": {"body": "new", "targets": [{"accountId": 1}]}},
    )
    assert r.status_code == 200
    assert r.json()["status"] == {"phase": "publishing"}
    assert r.json()["spec"]["body"] == "new"
    assert r.json()["metadata"]["generation"] == 2

    # Status is validated on the status write.
    assert cause_fields(
        http.patch(status_path, content=json.dumps({"status": {"phase": "exploded"}}), headers=MERGE)
    ) == {"status.phase": "FieldValueNotSupported"}

    # Kinds without the subresource have no /status.
    create(http, configmaps(ns), {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    assert_status(http.get(configmaps(ns, "c") + "/status"), 404, "NotFound")
    assert_status(http.get(posts(ns, "p", "scale")), 404, "NotFound")


# ---------------------------------------------------------------------------------------------
# Lists: selectors, paging, Table.
# ---------------------------------------------------------------------------------------------


def test_label_selectors(http: httpx.Client) -> None:
    ns = new_namespace(http, "labels")
    for name, labels in (
        ("a", {"app": "web", "tier": "front"}),
        ("b", {"app": "web", "tier": "back"}),
        ("c", {"app": "db"}),
        ("d", {}),
    ):
        create(http, posts(ns), post_body(name, labels=labels))
    cases = {
        "app=web": ["a", "b"],
        "app==web": ["a", "b"],
        "app!=web": ["c", "d"],
        "tier in (front,back)": ["a", "b"],
        "tier in (front)": ["a"],
        "tier notin (front)": ["b", "c", "d"],
        "tier": ["a", "b"],
        "!tier": ["c", "d"],
        "app=web,tier!=front": ["b"],
        "app in (web,db),!tier": ["c"],
        "app": ["a", "b", "c"],
        "": ["a", "b", "c", "d"],
    }
    for selector, expected in cases.items():
        assert names(get(http, f"{posts(ns)}?{httpx.QueryParams(labelSelector=selector)}")) == expected, (
            selector
        )
    assert_status(http.get(posts(ns), params={"labelSelector": "tier in (front"}), 400, "BadRequest")


def test_field_selectors(http: httpx.Client) -> None:
    ns = new_namespace(http, "fields")
    other = new_namespace(http, "fields-other")
    for name in ("a", "b", "c"):
        create(http, posts(ns), post_body(name))
    create(http, posts(other), post_body("a"))

    def select(path: str, selector: str) -> list[tuple[str, str]]:
        listing = get(http, f"{path}?{httpx.QueryParams(fieldSelector=selector)}")
        found = [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in listing["items"]]
        return [item for item in found if item[0] in (ns, other)]  # other tests share the server

    assert select(posts(ns), "metadata.name=a") == [(ns, "a")]
    assert select(posts(ns), "metadata.name==b") == [(ns, "b")]
    assert select(posts(ns), "metadata.name!=a") == [(ns, "b"), (ns, "c")]
    assert select(f"{GV}/socialposts", "metadata.name=a") == [(ns, "a"), (other, "a")]
    assert select(f"{GV}/socialposts", f"metadata.namespace={other}") == [(other, "a")]
    assert select(f"{GV}/socialposts", f"metadata.namespace={ns},metadata.name!=c") == [(ns, "a"), (ns, "b")]
    assert select(f"{GV}/socialposts", f"metadata.namespace!={ns},metadata.namespace!={other}") == []
    active = get(http, "/api/v1/namespaces?fieldSelector=status.phase%3DActive")
    assert {ns, other, "default"} <= set(names(active))

    for bad in ("spec.body=hello", "status.phase=Active", "metadata.labels=x", "nonsense"):
        assert_status(http.get(posts(ns), params={"fieldSelector": bad}), 400, "BadRequest")


def test_paging(http: httpx.Client) -> None:
    ns = new_namespace(http, "paging")
    all_names = [f"p{i}" for i in range(7)]
    for name in reversed(all_names):
        create(http, posts(ns), post_body(name, labels={"page": "yes"}))
    create(http, posts(ns), post_body("unlabelled"))

    seen: list[str] = []
    pages: list[dict[str, Any]] = []
    params: dict[str, str] = {"limit": "3", "labelSelector": "page=yes"}
    while True:
        page = get(http, f"{posts(ns)}?{httpx.QueryParams(params)}")
        pages.append(page)
        seen += names(page)
        token = page["metadata"].get("continue")
        if not token:
            break
        params["continue"] = token
    assert [len(p["items"]) for p in pages] == [3, 3, 1]
    assert [p["metadata"].get("remainingItemCount") for p in pages] == [4, 1, None]
    assert seen == all_names
    assert len({p["metadata"]["resourceVersion"] for p in pages}) == 1

    # The whole list without a limit has no continue.
    full = get(http, posts(ns))
    assert "continue" not in full["metadata"]
    assert "remainingItemCount" not in full["metadata"]
    assert names(full) == [*all_names, "unlabelled"]

    # limit larger than the list, and limit=0 (no limit).
    assert names(get(http, f"{posts(ns)}?limit=100")) == [*all_names, "unlabelled"]
    assert names(get(http, f"{posts(ns)}?limit=0")) == [*all_names, "unlabelled"]

    first = get(http, f"{posts(ns)}?limit=2")
    r = http.get(
        posts(ns), params={"limit": "2", "continue": first["metadata"]["continue"], "resourceVersion": "5"}
    )
    assert_status(r, 400, "BadRequest")
    assert_status(http.get(posts(ns), params={"limit": "2", "continue": "!!garbage!!"}), 400, "BadRequest")


def test_table(http: httpx.Client) -> None:
    ns = new_namespace(http, "table")
    create(http, posts(ns), post_body("t1", scheduledFor="2030-01-01T00:00:00Z"))
    merge(
        http,
        posts(ns, "t1", "status"),
        {"status": {"phase": "scheduled", "targetCounts": {"total": 2, "published": 1}}},
    )
    create(http, posts(ns), post_body("t2"))

    r = http.get(posts(ns), headers=TABLE)
    assert r.status_code == 200
    table = r.json()
    assert table["kind"] == "Table"
    assert table["apiVersion"] == "meta.k8s.io/v1"
    assert table["metadata"]["resourceVersion"]
    columns = table["columnDefinitions"]
    assert [c["name"] for c in columns] == ["Name", "Phase", "Scheduled For", "Published", "Targets", "Age"]
    assert [c["type"] for c in columns] == ["string", "string", "string", "integer", "integer", "date"]
    assert columns[0]["format"] == "name"
    assert all(c["priority"] == 0 for c in columns)
    assert columns[1]["description"].startswith("Where the post is")
    first, second = table["rows"]
    assert first["cells"][:5] == ["t1", "scheduled", "2030-01-01T00:00:00Z", 1, 2]
    assert re.fullmatch(r"\d+[smhdy].*", first["cells"][5])
    assert second["cells"][0] == "t2"
    assert second["cells"][1] is None
    assert first["object"]["kind"] == "PartialObjectMetadata"
    assert first["object"]["apiVersion"] == "meta.k8s.io/v1"
    assert first["object"]["metadata"]["name"] == "t1"

    # One object, a paged list, a built-in kind and kubectl's full Accept header.
    single = http.get(posts(ns, "t1"), headers=TABLE).json()
    assert single["kind"] == "Table"
    assert [row["cells"][0] for row in single["rows"]] == ["t1"]
    paged = http.get(posts(ns), params={"limit": "1"}, headers=TABLE).json()
    assert len(paged["rows"]) == 1
    assert paged["metadata"]["continue"]
    create(http, configmaps(ns), {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    kubectl_accept = {
        "Accept": "application/json;as=Table;v=v1;g=meta.k8s.io,"
        "application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
    }
    cm_table = http.get(configmaps(ns), headers=kubectl_accept).json()
    assert [c["name"] for c in cm_table["columnDefinitions"]] == ["Name", "Age"]
    assert [row["cells"][0] for row in cm_table["rows"]] == ["c"]

    # Watches render events as Tables too (kubectl get -w).
    rv = list_rv(http, posts(ns))
    events = watch(
        http,
        posts(ns),
        headers=TABLE,
        resourceVersion=rv,
        until=lambda e: e["type"] == "ADDED",
        before_reading=lambda: create(http, posts(ns), post_body("t3")),
    )
    assert events[-1]["object"]["kind"] == "Table"
    assert events[-1]["object"]["rows"][0]["cells"][0] == "t3"


# ---------------------------------------------------------------------------------------------
# Watch.
# ---------------------------------------------------------------------------------------------


def test_watch_replay_then_live(http: httpx.Client) -> None:
    ns = new_namespace(http, "watch")
    create(http, posts(ns), post_body("before"))
    rv = list_rv(http, posts(ns))
    create(http, posts(ns), post_body("w1"))
    merge(http, posts(ns, "w1"), {"spec": {"body": "changed"}})
    deleted = http.delete(posts(ns, "w1"))
    assert deleted.status_code == 200
    create(
        http, configmaps(ns), {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "not-a-post"}}
    )

    def live() -> None:
        create(http, posts(ns), post_body("w2"))
        merge(http, posts(ns, "before"), {"metadata": {"labels": {"x": "y"}}})
        create(http, posts(ns), post_body("marker"))

    events = watch(http, posts(ns), resourceVersion=rv, until=named("marker"), before_reading=live)
    assert summary(events) == [
        ("ADDED", "w1"),
        ("MODIFIED", "w1"),
        ("DELETED", "w1"),
        ("ADDED", "w2"),
        ("MODIFIED", "before"),
        ("ADDED", "marker"),
    ]
    assert events[1]["object"]["spec"]["body"] == "changed"
    versions = [rv_of(e["object"]) for e in events]
    assert versions == sorted(versions)
    assert len(set(versions)) == len(versions)
    assert versions[0] > int(rv)
    # DELETED carries the last state with the deletion's own resourceVersion.
    assert events[2]["object"]["spec"]["body"] == "changed"
    assert rv_of(events[2]["object"]) > rv_of(events[1]["object"])
    assert all(
        e["object"]["kind"] == "SocialPost" and e["object"]["apiVersion"] == API_VERSION for e in events
    )

    # Cluster-wide watch of the kind sees the same changes.
    events = watch(http, f"{GV}/socialposts", resourceVersion=rv, until=named("marker"))
    assert [n for _, n in summary(events)] == ["w1", "w1", "w1", "w2", "before", "marker"]


def test_watch_without_resource_version_starts_with_synthetic_added(http: httpx.Client) -> None:
    ns = new_namespace(http, "watch-initial")
    existing = ["a", "b"]
    for name in existing:
        create(http, posts(ns), post_body(name))
    for rv in (None, "0"):
        marker = f"live-{rv or 'unset'}"

        def write_live(marker: str = marker) -> None:
            create(http, posts(ns), post_body(marker))

        params = {"resourceVersion": rv} if rv is not None else {}
        events = watch(http, posts(ns), until=named(marker), before_reading=write_live, **params)
        # One ADDED per existing object (in list order), then the live change.
        assert summary(events) == [("ADDED", name) for name in existing] + [("ADDED", marker)]
        existing.append(marker)


def test_watch_selectors_turn_transitions_into_added_and_deleted(http: httpx.Client) -> None:
    ns = new_namespace(http, "watch-selectors")
    rv = list_rv(http, posts(ns))
    create(http, posts(ns), post_body("o1"))  # does not match yet
    merge(http, posts(ns, "o1"), {"metadata": {"labels": {"app": "x"}}})  # starts matching → ADDED
    merge(http, posts(ns, "o1"), {"spec": {"body": "still matching"}})  # MODIFIED
    merge(http, posts(ns, "o1"), {"metadata": {"labels": {"app": "y"}}})  # stops matching → DELETED
    merge(http, posts(ns, "o1"), {"spec": {"body": "unseen"}})  # nothing
    http.delete(posts(ns, "o1"))  # nothing
    create(http, posts(ns), post_body("o2", labels={"app": "x"}))  # ADDED
    http.delete(posts(ns, "o2"))  # DELETED
    create(http, posts(ns), post_body("marker", labels={"app": "x"}))

    events = watch(http, posts(ns), resourceVersion=rv, labelSelector="app=x", until=named("marker"))
    assert summary(events) == [
        ("ADDED", "o1"),
        ("MODIFIED", "o1"),
        ("DELETED", "o1"),
        ("ADDED", "o2"),
        ("DELETED", "o2"),
        ("ADDED", "marker"),
    ]
    # The DELETED for leaving the selection carries the state that no longer matches.
    assert events[2]["object"]["metadata"]["labels"] == {"app": "y"}

    # Field selectors filter watches too; a watch on one object's URL sees only that object.
    events = watch(
        http, posts(ns), resourceVersion=rv, fieldSelector="metadata.name=o2", until=named("o2", "DELETED")
    )
    assert summary(events) == [("ADDED", "o2"), ("DELETED", "o2")]
    events = watch(http, posts(ns, "o2"), resourceVersion=rv, until=named("o2", "DELETED"))
    assert summary(events) == [("ADDED", "o2"), ("DELETED", "o2")]


def test_watch_timeout_seconds_ends_the_stream(http: httpx.Client) -> None:
    ns = new_namespace(http, "watch-timeout")
    rv = list_rv(http, posts(ns))
    started = time.monotonic()
    with http.stream(
        "GET", posts(ns), params={"watch": "true", "resourceVersion": rv, "timeoutSeconds": "1"}
    ) as r:
        assert r.status_code == 200
        lines = [line for line in r.iter_lines() if line]
    elapsed = time.monotonic() - started
    assert lines == []
    assert 0.9 <= elapsed < 4


def test_watch_bookmarks(tmp_path: Path) -> None:
    kube = KubeHarness(tmp_path / "state", ServerSettings(bookmark_interval=0.2)).start()
    try:
        with client_for(kube) as c:
            ns = new_namespace(c, "bookmarks")
            rv = list_rv(c, posts(ns))
            params = {
                "watch": "1",
                "resourceVersion": rv,
                "allowWatchBookmarks": "true",
                "timeoutSeconds": "1",
            }
            with c.stream("GET", posts(ns), params=params) as r:
                assert r.status_code == 200
                events = [json.loads(line) for line in r.iter_lines() if line]
            assert len(events) >= 2
            assert {e["type"] for e in events} == {"BOOKMARK"}
            current = list_rv(c, posts(ns))
            for event in events:
                assert event["object"]["kind"] == "SocialPost"
                assert event["object"]["apiVersion"] == API_VERSION
                assert int(event["object"]["metadata"]["resourceVersion"]) <= int(current)
                assert int(event["object"]["metadata"]["resourceVersion"]) >= int(rv)

            # Without allowWatchBookmarks: none.
            params.pop("allowWatchBookmarks")
            with c.stream("GET", posts(ns), params=params) as r:
                assert [line for line in r.iter_lines() if line] == []
    finally:
        kube.close()


def test_watch_and_continue_expire_after_the_kept_history(tmp_path: Path) -> None:
    kube = KubeHarness(tmp_path / "state", ServerSettings(history=5)).start()
    try:
        with client_for(kube) as c:
            ns = new_namespace(c, "expiry")
            for name in ("a", "b", "c"):
                create(c, posts(ns), post_body(name))
            old_rv = list_rv(c, posts(ns))
            page = get(c, f"{posts(ns)}?limit=1")
            for i in range(7):
                merge(c, posts(ns, "a"), {"spec": {"body": f"v{i}"}})

            started = time.monotonic()
            with c.stream(
                "GET", posts(ns), params={"watch": "1", "resourceVersion": old_rv, "timeoutSeconds": "30"}
            ) as r:
                assert r.status_code == 200
                events = [json.loads(line) for line in r.iter_lines() if line]
            assert time.monotonic() - started < 5, "the stream must end after the ERROR event"
            assert len(events) == 1
            assert events[0]["type"] == "ERROR"
            status = events[0]["object"]
            assert status["kind"] == "Status"
            assert status["apiVersion"] == "v1"
            assert status["status"] == "Failure"
            assert status["code"] == 410
            assert status["reason"] == "Expired"
            assert status["message"].startswith(f"too old resource version: {old_rv} (")

            r = c.get(posts(ns), params={"limit": "1", "continue": page["metadata"]["continue"]})
            assert_status(r, 410, "Expired")

            # The most recent changes are still there to resume from.
            recent = list_rv(c, posts(ns))
            events = watch(
                c,
                posts(ns),
                resourceVersion=str(int(recent) - 2),
                until=lambda e: rv_of(e["object"]) == int(recent),
            )
            assert [rv_of(e["object"]) for e in events] == [int(recent) - 1, int(recent)]
    finally:
        kube.close()


# ---------------------------------------------------------------------------------------------
# Deletion: finalizers, preconditions, garbage collection, namespaces.
# ---------------------------------------------------------------------------------------------


def test_finalizers_hold_deletion(http: httpx.Client) -> None:
    ns = new_namespace(http, "finalizers")
    path = posts(ns, "p")
    body = post_body("p")
    body["metadata"]["finalizers"] = [FINALIZER]
    created = create(http, posts(ns), body)
    rv = created["metadata"]["resourceVersion"]

    r = http.delete(path)
    assert r.status_code == 200
    deleting = r.json()
    assert deleting["metadata"]["deletionTimestamp"]
    assert deleting["metadata"]["deletionGracePeriodSeconds"] == 0
    assert deleting["metadata"]["generation"] == 2
    assert deleting["metadata"]["finalizers"] == [FINALIZER]
    assert get(http, path) == deleting

    # Deleting again changes nothing; no new finalizer may be added.
    again = http.delete(path)
    assert again.status_code == 200
    assert again.json()["metadata"]["resourceVersion"] == deleting["metadata"]["resourceVersion"]
    r = http.patch(
        path, content=json.dumps({"metadata": {"finalizers": [FINALIZER, "other.io/x"]}}), headers=MERGE
    )
    assert "metadata.finalizers" in cause_fields(r)
    assert get(http, path) == deleting

    # Emptying the finalizers removes the object.
    r = http.patch(path, content=json.dumps({"metadata": {"finalizers": None}}), headers=MERGE)
    assert r.status_code == 200
    assert_status(http.get(path), 404, "NotFound")

    events = watch(http, posts(ns), resourceVersion=rv, until=named("p", "DELETED"))
    assert summary(events) == [("MODIFIED", "p"), ("DELETED", "p")]
    assert events[0]["object"]["metadata"]["deletionTimestamp"]


def test_delete_preconditions(http: httpx.Client) -> None:
    ns = new_namespace(http, "preconditions")
    obj = create(http, posts(ns), post_body("p"))
    meta = obj["metadata"]

    def delete(preconditions: dict[str, str]) -> httpx.Response:
        options = {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": preconditions}
        return http.request("DELETE", posts(ns, "p"), json=options)

    assert (
        "Precondition failed"
        in assert_status(delete({"uid": "00000000-0000-4000-8000-000000000000"}), 409, "Conflict")["message"]
    )
    assert (
        "Precondition failed" in assert_status(delete({"resourceVersion": "1"}), 409, "Conflict")["message"]
    )
    assert get(http, posts(ns, "p")) == obj
    r = delete({"uid": meta["uid"], "resourceVersion": meta["resourceVersion"]})
    assert r.status_code == 200
    assert gone(http, posts(ns, "p"))
    assert_status(http.delete(posts(ns, "p")), 404, "NotFound")


def target_body(name: str, owners: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "SocialTarget",
        "metadata": {
            "name": name,
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "SocialPost",
                    "name": o["metadata"]["name"],
                    "uid": o["metadata"]["uid"],
                }
                for o in owners
            ],
        },
        "spec": {"postName": owners[0]["metadata"]["name"], "accountId": 1},
    }


def test_owner_reference_garbage_collection(http: httpx.Client) -> None:
    ns = new_namespace(http, "gc")
    p1 = create(http, posts(ns), post_body("p1"))
    p2 = create(http, posts(ns), post_body("p2"))
    t1 = create(http, targets(ns), target_body("t1", [p1]))
    create(http, targets(ns), target_body("t2", [p1, p2]))
    # A grandchild: a ConfigMap owned by t1 goes with it (recursively).
    create(
        http,
        configmaps(ns),
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {
                "name": "grandchild",
                "ownerReferences": [
                    {
                        "apiVersion": API_VERSION,
                        "kind": "SocialTarget",
                        "name": "t1",
                        "uid": t1["metadata"]["uid"],
                    }
                ],
            },
        },
    )

    assert http.delete(posts(ns, "p1")).status_code == 200
    wait_until(lambda: gone(http, targets(ns, "t1")) and gone(http, configmaps(ns, "grandchild")))
    # t2 still has a live owner: it stays, and the collector drops its dangling reference to p1.
    survivor = get(http, targets(ns, "t2"))
    assert [ref["uid"] for ref in survivor["metadata"]["ownerReferences"]] == [p2["metadata"]["uid"]]

    assert http.delete(posts(ns, "p2")).status_code == 200
    wait_until(lambda: gone(http, targets(ns, "t2")))

    # Orphan: the dependent stays and loses its ownerReference (DeleteOptions body or query).
    for how in ("body", "query"):
        owner = create(http, posts(ns), post_body(f"p-{how}"))
        create(http, targets(ns), target_body(f"t-{how}", [owner]))
        if how == "body":
            r = http.request(
                "DELETE",
                posts(ns, f"p-{how}"),
                json={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Orphan"},
            )
        else:
            r = http.delete(posts(ns, f"p-{how}"), params={"propagationPolicy": "Orphan"})
        assert r.status_code == 200
        assert gone(http, posts(ns, f"p-{how}"))
        orphan = get(http, targets(ns, f"t-{how}"))
        assert "ownerReferences" not in orphan["metadata"]


def test_namespace_deletion(http: httpx.Client) -> None:
    ns = new_namespace(http, "doomed")
    create(http, posts(ns), post_body("plain"))
    create(http, configmaps(ns), {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    held = post_body("held")
    held["metadata"]["finalizers"] = [FINALIZER]
    create(http, posts(ns), held)

    r = http.delete(f"/api/v1/namespaces/{ns}")
    assert r.status_code == 200
    assert r.json()["status"]["phase"] == "Terminating"
    assert r.json()["metadata"]["deletionTimestamp"]

    wait_until(lambda: gone(http, posts(ns, "plain")) and gone(http, configmaps(ns, "c")))
    assert get(http, posts(ns, "held"))["metadata"]["deletionTimestamp"]
    namespace = get(http, f"/api/v1/namespaces/{ns}")
    assert namespace["status"]["phase"] == "Terminating"
    assert_status(http.post(posts(ns), json=post_body("late")), 403, "Forbidden")

    merge(http, posts(ns, "held"), {"metadata": {"finalizers": []}})
    wait_until(lambda: gone(http, posts(ns, "held")) and gone(http, f"/api/v1/namespaces/{ns}"))
    assert_status(http.post(posts(ns), json=post_body("after")), 404, "NotFound")


# ---------------------------------------------------------------------------------------------
# dryRun.
# ---------------------------------------------------------------------------------------------


def test_dry_run_persists_nothing(http: httpx.Client) -> None:
    ns = new_namespace(http, "dryrun")
    existing = create(http, posts(ns), post_body("p"))
    before = snapshot(http)
    rv = before[f"{GV}/socialposts"]["metadata"]["resourceVersion"]

    r = http.post(posts(ns), json=post_body("dry"), params={"dryRun": "All"})
    assert r.status_code == 201
    assert r.json()["metadata"]["name"] == "dry"
    assert r.json()["metadata"]["generation"] == 1
    r = http.patch(
        posts(ns, "p"), content=json.dumps({"spec": {"body": "dry"}}), headers=MERGE, params={"dryRun": "All"}
    )
    assert r.status_code == 200
    assert r.json()["spec"]["body"] == "dry"
    assert r.json()["metadata"]["generation"] == 2
    r = http.put(
        posts(ns, "p"),
        json=existing | {"spec": {"body": "dry put", "targets": [{"accountId": 1}]}},
        params={"dryRun": "All"},
    )
    assert r.status_code == 200
    assert r.json()["spec"]["body"] == "dry put"
    r = http.patch(
        posts(ns, "p", "status"),
        content=json.dumps({"status": {"phase": "draft"}}),
        headers=MERGE,
        params={"dryRun": "All"},
    )
    assert r.status_code == 200
    assert r.json()["status"] == {"phase": "draft"}
    assert http.delete(posts(ns, "p"), params={"dryRun": "All"}).status_code == 200
    r = http.request(
        "DELETE", posts(ns, "p"), json={"kind": "DeleteOptions", "apiVersion": "v1", "dryRun": ["All"]}
    )
    assert r.status_code == 200
    assert http.delete(posts(ns), params={"dryRun": "All"}).status_code == 200
    assert http.delete(f"/api/v1/namespaces/{ns}", params={"dryRun": "All"}).status_code == 200
    # dryRun still validates.
    assert cause_fields(http.post(posts(ns), json=post_body("bad", body=""), params={"dryRun": "All"}))
    assert_status(http.post(posts(ns), json=post_body("x"), params={"dryRun": "Some"}), 400, "BadRequest")

    assert snapshot(http) == before
    create(http, posts(ns), post_body("marker"))
    events = watch(http, posts(ns), resourceVersion=rv, until=named("marker"))
    assert summary(events) == [("ADDED", "marker")]


# ---------------------------------------------------------------------------------------------
# Validation: schema, pruning, defaults, metadata.
# ---------------------------------------------------------------------------------------------


def test_schema_validation_causes(http: httpx.Client) -> None:
    ns = new_namespace(http, "validation")

    missing_body = post_body("missing-body")
    del missing_body["spec"]["body"]
    r = http.post(posts(ns), json=missing_body)
    assert cause_fields(r) == {"spec.body": "FieldValueRequired"}
    body = r.json()
    # Several causes are listed in brackets, the skipped-rules one last (as kube-apiserver does).
    assert body["message"] == (
        f'SocialPost.{GROUP} "missing-body" is invalid: [spec.body: Required value, '
        f"<nil>: Invalid value: null: {SKIPPED_RULES}]"
    )
    assert body["details"]["name"] == "missing-body"
    assert body["details"]["group"] == GROUP
    assert body["details"]["kind"] == "SocialPost"

    assert cause_fields(http.post(posts(ns), json=post_body("dupes", accounts=(4, 4)))) == {
        "spec.targets": "FieldValueDuplicate"
    }
    media = post_body("media")
    media["spec"]["media"] = [{"url": f"https://x.example/{i}.png"} for i in range(11)]
    assert cause_fields(http.post(posts(ns), json=media)) == {"spec.media": "FieldValueTooMany"}
    assert "spec.scheduledFor" in cause_fields(
        http.post(posts(ns), json=post_body("date", scheduledFor="next tuesday"))
    )
    assert "spec.targets[0].accountId" in cause_fields(
        http.post(posts(ns), json=post_body("zero", accounts=(0,)))
    )
    assert "metadata.name" in cause_fields(http.post(posts(ns), json=post_body("Not_A_Name")))
    bad_labels = post_body("labels")
    bad_labels["metadata"]["labels"] = {"bad key!": "v"}
    assert "metadata.labels" in cause_fields(http.post(posts(ns), json=bad_labels))

    create(http, posts(ns), post_body("ok"))
    r = http.patch(
        posts(ns, "ok", "status"), content=json.dumps({"status": {"phase": "bogus"}}), headers=MERGE
    )
    assert cause_fields(r) == {"status.phase": "FieldValueNotSupported"}
    # x-kubernetes-list-type map (conditions keyed by type) and set (webhook events) are unique.
    ready = {
        "type": "Ready",
        "status": "True",
        "lastTransitionTime": "2030-01-01T00:00:00Z",
        "reason": "Ok",
        "message": "",
    }
    r = http.patch(
        posts(ns, "ok", "status"),
        content=json.dumps({"status": {"conditions": [ready, ready | {"status": "False"}]}}),
        headers=MERGE,
    )
    assert cause_fields(r) == {"status.conditions[1]": "FieldValueDuplicate"}
    endpoint = {
        "apiVersion": API_VERSION,
        "kind": "SocialWebhookEndpoint",
        "metadata": {"name": "hook"},
        "spec": {
            "url": "https://hooks.example",
            "secretRef": {"name": "s"},
            "events": ["social.post_failed"] * 2,
        },
    }
    r = http.post(f"{GV}/namespaces/{ns}/socialwebhookendpoints", json=endpoint)
    assert cause_fields(r) == {"spec.events[1]": "FieldValueDuplicate"}
    # An update is validated too, and a failure stores nothing.
    ok = get(http, posts(ns, "ok"))
    assert cause_fields(
        http.patch(posts(ns, "ok"), content=json.dumps({"spec": {"targets": []}}), headers=MERGE)
    )
    assert get(http, posts(ns, "ok")) == ok
    assert names(get(http, posts(ns))) == ["ok"]


def test_pruning_strict_validation_and_defaults(http: httpx.Client) -> None:
    ns = new_namespace(http, "pruning")
    body = post_body("warn")
    body["spec"]["bogus"] = 1
    body["extra"] = {"x": 1}

    r = http.post(posts(ns), json=body)
    assert r.status_code == 201
    assert "bogus" not in r.json()["spec"]
    assert "extra" not in r.json()
    warning = r.headers["Warning"]
    assert warning.startswith("299 - ")
    assert 'unknown field \\"spec.bogus\\"' in warning
    assert 'unknown field \\"extra\\"' in warning
    assert "bogus" not in get(http, posts(ns, "warn"))["spec"]

    strict = body | {"metadata": {"name": "strict"}}
    r = http.post(posts(ns), json=strict, params={"fieldValidation": "Strict"})
    message = assert_status(r, 400, "BadRequest")["message"]
    assert message.startswith("strict decoding error: ")
    assert 'unknown field "spec.bogus"' in message
    assert gone(http, posts(ns, "strict"))
    r = http.patch(
        posts(ns, "warn"),
        content=json.dumps({"spec": {"bogus": 2}}),
        headers=MERGE,
        params={"fieldValidation": "Strict"},
    )
    assert_status(r, 400, "BadRequest")

    r = http.post(
        posts(ns), json=body | {"metadata": {"name": "ignore"}}, params={"fieldValidation": "Ignore"}
    )
    assert r.status_code == 201
    assert "Warning" not in r.headers
    assert "bogus" not in r.json()["spec"]
    assert_status(
        http.post(posts(ns), json=post_body("x"), params={"fieldValidation": "Loose"}), 400, "BadRequest"
    )

    # Defaults from the schema are applied (SocialAccount: sandbox=false, credentialsSecretRef.key=token).
    account = {
        "apiVersion": API_VERSION,
        "kind": "SocialAccount",
        "metadata": {"name": "acct"},
        "spec": {
            "platform": "linkedin",
            "displayName": "Acme",
            "credentialsSecretRef": {"name": "acct-token"},
        },
    }
    created = create(http, f"{GV}/namespaces/{ns}/socialaccounts", account)
    assert created["spec"]["sandbox"] is False
    assert created["spec"]["credentialsSecretRef"] == {"name": "acct-token", "key": "token"}


# ---------------------------------------------------------------------------------------------
# Errors and malformed input.
# ---------------------------------------------------------------------------------------------


def test_error_bodies(http: httpx.Client) -> None:
    ns = new_namespace(http, "errors")
    create(http, posts(ns), post_body("p"))
    body = assert_status(http.get(posts(ns, "nope")), 404, "NotFound")
    assert body["message"] == f'socialposts.{GROUP} "nope" not found'
    assert body["details"]["name"] == "nope"
    body = assert_status(http.post(posts(ns), json=post_body("p")), 409, "AlreadyExists")
    assert body["message"] == f'socialposts.{GROUP} "p" already exists'
    assert_status(http.get("/apis/nope.example.com/v1/things"), 404, "NotFound")
    assert_status(http.post(posts(ns, "p"), json=post_body("p")), 405, "MethodNotAllowed")
    assert_status(http.put(posts(ns), json=post_body("p")), 405, "MethodNotAllowed")
    assert_status(http.post(posts("no-such-namespace"), json=post_body("p")), 404, "NotFound")
    assert_status(
        http.post(posts(ns), content=b"body: x", headers={"Content-Type": "text/plain"}),
        415,
        "UnsupportedMediaType",
    )


def test_malformed_input_never_5xx_and_changes_nothing(http: httpx.Client) -> None:
    ns = new_namespace(http, "malformed")
    other = new_namespace(http, "malformed-other")
    create(http, posts(ns), post_body("p"))
    create(http, configmaps(ns), {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    current = get(http, posts(ns, "p"))
    before = snapshot(http)
    js = {"Content-Type": "application/json"}

    yml = {"Content-Type": "application/yaml"}
    crds = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"
    deep = (
        b'{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "deep"}, "x": '
        + b"[" * 100_000
        + b"]" * 100_000
        + b"}"
    )

    def cm_body(name: str = "c2", **fields: Any) -> bytes:
        return json.dumps(
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, **fields}
        ).encode()

    def secret_body(**fields: Any) -> bytes:
        return json.dumps(
            {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "s"}, **fields}
        ).encode()

    def crd_body(versions: list[Any]) -> bytes:
        spec = {
            "group": "b.example.com",
            "names": {"plural": "as", "kind": "A"},
            "scope": "Namespaced",
            "versions": versions,
        }
        body = {
            "apiVersion": "apiextensions.k8s.io/v1",
            "kind": "CustomResourceDefinition",
            "metadata": {"name": "as.b.example.com"},
            "spec": spec,
        }
        return json.dumps(body).encode()

    metadata_string = post_body("m") | {"metadata": "not an object"}
    wrong_namespace = post_body("wrong-ns")
    wrong_namespace["metadata"]["namespace"] = other
    cases: list[tuple[str, str, str, bytes | None, dict[str, str], int | tuple[int, ...]]] = [
        ("invalid JSON", "POST", posts(ns), b'{"apiVersion": ', js, 400),
        ("JSON array", "POST", posts(ns), b"[1, 2]", js, 400),
        ("JSON array of objects", "POST", posts(ns), json.dumps([post_body("arr")]).encode(), js, 400),
        ("JSON null", "POST", posts(ns), b"null", js, 400),
        ("JSON string", "POST", posts(ns), b'"hello"', js, 400),
        ("empty body", "POST", posts(ns), b"", js, 400),
        ("invalid YAML", "POST", posts(ns), b"a: [b", {"Content-Type": "application/yaml"}, 400),
        (
            "wrong kind",
            "POST",
            posts(ns),
            json.dumps({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "x"}}).encode(),
            js,
            400,
        ),
        (
            "wrong apiVersion",
            "POST",
            posts(ns),
            json.dumps(post_body("v") | {"apiVersion": f"{GROUP}/v9"}).encode(),
            js,
            400,
        ),
        (
            "missing kind",
            "POST",
            posts(ns),
            json.dumps({"apiVersion": API_VERSION, "metadata": {"name": "k"}}).encode(),
            js,
            400,
        ),
        ("namespace mismatch", "POST", posts(ns), json.dumps(wrong_namespace).encode(), js, 400),
        (
            "name mismatch",
            "PUT",
            posts(ns, "p"),
            json.dumps(current | {"metadata": {**current["metadata"], "name": "q"}}).encode(),
            js,
            400,
        ),
        ("metadata not an object", "POST", posts(ns), json.dumps(metadata_string).encode(), js, (400, 422)),
        ("merge patch array", "PATCH", posts(ns, "p"), b"[1]", MERGE, 400),
        ("merge patch invalid JSON", "PATCH", posts(ns, "p"), b"{", MERGE, 400),
        ("json patch object", "PATCH", posts(ns, "p"), b'{"op": "add"}', JSON_PATCH, 400),
        ("merge patch renames", "PATCH", posts(ns, "p"), b'{"metadata": {"name": "q"}}', MERGE, 400),
        ("patch metadata string", "PATCH", posts(ns, "p"), b'{"metadata": "x"}', MERGE, (400, 422)),
        ("patch spec type", "PATCH", posts(ns, "p"), b'{"spec": {"body": 5}}', MERGE, 422),
        (
            "labels not strings",
            "PATCH",
            posts(ns, "p"),
            b'{"metadata": {"labels": {"a": 1}}}',
            MERGE,
            (400, 422),
        ),
        ("no content type", "PATCH", posts(ns, "p"), b'{"spec": {"body": "x"}}', {}, 415),
        ("delete options not JSON", "DELETE", posts(ns, "p"), b"{oops", js, 400),
        ("delete options array", "DELETE", posts(ns, "p"), b"[]", js, 400),
        ("bad propagationPolicy", "DELETE", posts(ns, "p"), b'{"propagationPolicy": "Sideways"}', js, 400),
        ("unknown URL", "GET", "/nothing/here", None, {}, 404),
        ("unknown resource", "GET", f"{GV}/namespaces/{ns}/nothings", None, {}, 404),
        ("too deep", "GET", posts(ns, "p", "status") + "/deeper", None, {}, 404),
        ("bad labelSelector", "GET", f"{posts(ns)}?labelSelector=a%20in%20(b", None, {}, 400),
        ("bad labelSelector operator", "GET", f"{posts(ns)}?labelSelector=a%3E%3Eb", None, {}, 400),
        ("bad fieldSelector", "GET", f"{posts(ns)}?fieldSelector=spec.body%3Dx", None, {}, 400),
        ("bad limit", "GET", f"{posts(ns)}?limit=ten", None, {}, 400),
        ("bad watch resourceVersion", "GET", f"{posts(ns)}?watch=1&resourceVersion=abc", None, {}, 400),
        ("bad timeoutSeconds", "GET", f"{posts(ns)}?watch=1&timeoutSeconds=soon", None, {}, 400),
        ("bad deletecollection selector", "DELETE", f"{posts(ns)}?labelSelector=%3D%3D", None, {}, 400),
        ("NaN", "POST", posts(ns), json.dumps(post_body("nan", accounts=(float("nan"),))).encode(), js, 400),
        (
            "Infinity",
            "PATCH",
            posts(ns, "p"),
            b'{"spec": {"targets": [{"accountId": Infinity}]}}',
            MERGE,
            400,
        ),
        ("nesting too deep", "POST", configmaps(ns), deep, js, 400),
        ("delete options too deep", "DELETE", posts(ns, "p"), b"[" * 100_000 + b"]" * 100_000, js, 400),
        (
            "YAML !!binary",
            "POST",
            configmaps(ns),
            b"kind: ConfigMap\napiVersion: v1\nmetadata: !!binary aGk=\n",
            yml,
            400,
        ),
        (
            "YAML !!set",
            "POST",
            configmaps(ns),
            b"kind: ConfigMap\napiVersion: v1\nmetadata: !!set {a}\n",
            yml,
            400,
        ),
        (
            "YAML .nan",
            "POST",
            configmaps(ns),
            b"kind: ConfigMap\napiVersion: v1\nmetadata: {name: n}\nx: .nan\n",
            yml,
            400,
        ),
        ("YAML multi-document", "POST", configmaps(ns), b"kind: ConfigMap\n---\nkind: ConfigMap\n", yml, 400),
        ("ConfigMap data not strings", "POST", configmaps(ns), cm_body(data={"a": 5}), js, 400),
        ("ConfigMap data a list", "PUT", configmaps(ns, "c"), cm_body("c", data=["a"]), js, 400),
        ("ConfigMap binaryData not base64", "POST", configmaps(ns), cm_body(binaryData={"a": "!!"}), js, 400),
        (
            "Secret data not base64",
            "POST",
            f"/api/v1/namespaces/{ns}/secrets",
            secret_body(data={"a": "%%"}),
            js,
            400,
        ),
        (
            "Secret stringData not strings",
            "POST",
            f"/api/v1/namespaces/{ns}/secrets",
            secret_body(stringData={"a": 1}),
            js,
            400,
        ),
        ("CRD version not an object", "POST", crds, crd_body([1]), js, 422),
        (
            "CRD schema not an object",
            "POST",
            crds,
            crd_body([{"name": "v1", "served": True, "storage": True, "schema": {"openAPIV3Schema": "x"}}]),
            js,
            422,
        ),
        (
            "CRD printer columns not a list",
            "POST",
            crds,
            crd_body(
                [{"name": "v1", "served": True, "storage": True, "additionalPrinterColumns": {"name": "x"}}]
            ),
            js,
            422,
        ),
    ]
    reasons = {
        400: "BadRequest",
        404: "NotFound",
        405: "MethodNotAllowed",
        413: "RequestEntityTooLarge",
        415: "UnsupportedMediaType",
        422: "Invalid",
    }
    for label, method, url, content, headers, expected in cases:
        r = http.request(method, url, content=content, headers=headers)
        assert r.status_code < 500, (label, r.text)
        # Metadata that is not an ObjectMeta is refused by kube-apiserver while decoding (400)
        # or validating (422) depending on the path; either is a Status.
        allowed = expected if isinstance(expected, tuple) else (expected,)
        assert r.status_code in allowed, (label, r.status_code, r.text)
        assert_status(r, r.status_code, reasons[r.status_code])

    # A body over 3 MiB is refused with 413 and a Status.
    huge = post_body("huge", body="x" * (3 * 1024 * 1024 + 10))
    r = http.post(posts(ns), content=json.dumps(huge).encode(), headers=js)
    assert_status(r, 413, "RequestEntityTooLarge")

    assert snapshot(http) == before


# ---------------------------------------------------------------------------------------------
# Durability across a restart.
# ---------------------------------------------------------------------------------------------


def test_restart_keeps_objects_resource_versions_and_history(kube: KubeHarness) -> None:
    with client_for(kube) as c:
        ns = new_namespace(c, "durable")
        create(c, posts(ns), post_body("a"))
        create(c, posts(ns), post_body("b", labels={"k": "v"}))
        merge(c, posts(ns, "a", "status"), {"status": {"phase": "scheduled"}})
        mid_rv = list_rv(c, posts(ns))
        merge(c, posts(ns, "b"), {"spec": {"body": "before restart"}})
        create(
            c,
            configmaps(ns),
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"x": "1"}},
        )
        c.delete(posts(ns, "a"))
        before = snapshot(c)
        last_rv = before[f"{GV}/socialposts"]["metadata"]["resourceVersion"]

    kube.restart()

    with client_for(kube) as c:
        after = snapshot(c)
        assert after == before
        assert after[f"{GV}/socialposts"]["metadata"]["resourceVersion"] == last_rv
        b = get(c, posts(ns, "b"))
        assert b["spec"]["body"] == "before restart"
        assert gone(c, posts(ns, "a"))

        new = create(c, posts(ns), post_body("after"))
        assert rv_of(new) > int(last_rv)

        events = watch(c, posts(ns), resourceVersion=mid_rv, until=named("after"))
        assert summary(events) == [("MODIFIED", "b"), ("DELETED", "a"), ("ADDED", "after")]
        assert events[0]["object"]["spec"]["body"] == "before restart"

        # The CRDs came back from storage: discovery still serves the kinds.
        assert "socialposts" in {r["name"] for r in get(c, GV)["resources"]}


# ---------------------------------------------------------------------------------------------
# Concurrent writers.
# ---------------------------------------------------------------------------------------------


async def test_concurrent_merge_patches_all_land(kube: KubeHarness) -> None:
    async with kube.async_http(timeout=20) as c:
        r = await c.post(
            "/api/v1/namespaces", json={"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "race"}}
        )
        assert r.status_code == 201
        r = await c.post(posts("race"), json=post_body("p"))
        assert r.status_code == 201
        start_rv = rv_of(r.json())

        async def annotate(i: int) -> httpx.Response:
            patch = {"metadata": {"annotations": {f"writer-{i}": str(i)}}}
            return await c.patch(posts("race", "p"), content=json.dumps(patch), headers=MERGE)

        responses = await asyncio.gather(*(annotate(i) for i in range(50)))
        assert [r.status_code for r in responses] == [200] * 50
        versions = [rv_of(r.json()) for r in responses]
        assert len(set(versions)) == 50
        assert min(versions) > start_rv

        final = (await c.get(posts("race", "p"))).json()
        assert final["metadata"]["annotations"] == {f"writer-{i}": str(i) for i in range(50)}
        assert rv_of(final) == max(versions)
        assert final["metadata"]["generation"] == 1

        # The watch sees 50 MODIFIED events, resourceVersions strictly increasing, each adding one annotation.
        seen: list[Event] = []
        params = {"watch": "1", "resourceVersion": str(start_rv), "timeoutSeconds": "10"}
        async with c.stream("GET", posts("race"), params=params) as stream:
            async for line in stream.aiter_lines():
                if line:
                    seen.append(json.loads(line))
                if len(seen) == 50:
                    break
        assert {e["type"] for e in seen} == {"MODIFIED"}
        rvs = [rv_of(e["object"]) for e in seen]
        assert all(a < b for a, b in itertools.pairwise(rvs))
        counts = [len(e["object"]["metadata"]["annotations"]) for e in seen]
        assert counts == list(range(1, 51))

        # 20 PUTs carrying the same resourceVersion, each changing something: exactly one wins.
        base = final

        async def put(i: int) -> httpx.Response:
            body = json.loads(json.dumps(base))
            body["metadata"]["annotations"]["put"] = str(i)
            return await c.put(posts("race", "p"), json=body)

        results = await asyncio.gather(*(put(i) for i in range(20)))
        codes = sorted(r.status_code for r in results)
        assert codes == [200] + [409] * 19
        for r in results:
            if r.status_code == 409:
                assert_status(r, 409, "Conflict")
        winner = next(r for r in results if r.status_code == 200).json()
        stored = (await c.get(posts("race", "p"))).json()
        assert stored == winner
        assert rv_of(stored) > rv_of(base)
