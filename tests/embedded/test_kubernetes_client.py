"""The official ``kubernetes`` Python client against the embedded Kubernetes API, over real HTTP.

Every client here is built from the harness's kubeconfig into its own ``Configuration`` and
``ApiClient`` (never the package's global state), exactly as a program pointed at a cluster would.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config, dynamic, watch
from kubernetes.client.exceptions import ApiException

from socialpub.embedded.server import ServerSettings
from tests.kube_harness import KubeHarness

GROUP = "social.softsolz.uk"
VERSION = "v1alpha1"
PLURAL = "socialposts"


def api_client(kube: KubeHarness) -> client.ApiClient:
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kube.kubeconfig), client_configuration=cfg)
    return client.ApiClient(cfg)


@pytest.fixture
def api(kube: KubeHarness) -> Iterator[client.ApiClient]:
    with api_client(kube) as c:
        yield c


def make_namespace(api: client.ApiClient, name: str) -> str:
    client.CoreV1Api(api).create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
    return name


def post(name: str, *, labels: dict[str, str] | None = None, body: str = "hello") -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SocialPost",
        "metadata": {"name": name, "labels": labels or {}},
        "spec": {"body": body, "targets": [{"accountId": 1}]},
    }


def error_body(exc: ApiException) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(exc.body)
    return body


# ---------------------------------------------------------------------------------------------
# CustomObjectsApi.
# ---------------------------------------------------------------------------------------------


def test_custom_object_crud(api: client.ApiClient) -> None:
    ns = make_namespace(api, "crud")
    co = client.CustomObjectsApi(api)

    created = co.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, post("p1", labels={"app": "a"}))
    meta = created["metadata"]
    assert meta["uid"]
    assert meta["creationTimestamp"].endswith("Z")
    assert int(meta["resourceVersion"]) > 0
    assert meta["generation"] == 1
    assert meta["namespace"] == ns
    co.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, post("p2", labels={"app": "b"}))

    got = co.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "p1")
    assert got["metadata"]["uid"] == meta["uid"]
    assert got["spec"] == {"body": "hello", "targets": [{"accountId": 1}]}

    listed = co.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, label_selector="app=a")
    assert listed["kind"] == "SocialPostList"
    assert [i["metadata"]["name"] for i in listed["items"]] == ["p1"]
    assert [
        i["metadata"]["name"] for i in co.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["items"]
    ] == ["p1", "p2"]

    patched = co.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "p1", {"spec": {"body": "bye"}})
    assert patched["spec"]["body"] == "bye"
    assert patched["metadata"]["generation"] == 2
    assert int(patched["metadata"]["resourceVersion"]) > int(meta["resourceVersion"])

    status = co.patch_namespaced_custom_object_status(
        GROUP, VERSION, ns, PLURAL, "p1", {"status": {"phase": "scheduled"}}
    )
    assert status["status"] == {"phase": "scheduled"}
    assert status["metadata"]["generation"] == 2
    assert int(status["metadata"]["resourceVersion"]) > int(patched["metadata"]["resourceVersion"])

    # A replace carrying the resourceVersion of an earlier read loses.
    stale = dict(patched, spec={"body": "stale", "targets": [{"accountId": 1}]})
    with pytest.raises(ApiException) as conflict:
        co.replace_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "p1", stale)
    assert conflict.value.status == 409
    assert error_body(conflict.value)["reason"] == "Conflict"

    # A replace of a custom object must carry a resourceVersion at all.
    unversioned = post("p1", body="no rv")
    with pytest.raises(ApiException) as invalid:
        co.replace_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "p1", unversioned)
    assert invalid.value.status == 422
    assert error_body(invalid.value)["reason"] == "Invalid"
    assert "must be specified for an update" in error_body(invalid.value)["message"]

    # A replace with the current resourceVersion wins and keeps the status.
    current = co.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "p1")
    current["spec"]["body"] = "replaced"
    replaced = co.replace_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "p1", current)
    assert replaced["spec"]["body"] == "replaced"
    assert replaced["status"] == {"phase": "scheduled"}
    assert replaced["metadata"]["generation"] == 3

    with pytest.raises(ApiException) as duplicate:
        co.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, post("p1"))
    assert duplicate.value.status == 409
    assert error_body(duplicate.value)["reason"] == "AlreadyExists"

    with pytest.raises(ApiException) as missing:
        co.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "nope")
    assert missing.value.status == 404
    body = error_body(missing.value)
    assert body["kind"] == "Status"
    assert body["apiVersion"] == "v1"
    assert body["status"] == "Failure"
    assert body["reason"] == "NotFound"
    assert body["code"] == 404
    assert body["message"] == f'{PLURAL}.{GROUP} "nope" not found'

    co.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "p1")
    with pytest.raises(ApiException) as gone:
        co.get_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "p1")
    assert gone.value.status == 404
    cluster_wide = co.list_cluster_custom_object(GROUP, VERSION, PLURAL)
    assert [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in cluster_wide["items"]] == [
        (ns, "p2")
    ]


# ---------------------------------------------------------------------------------------------
# CoreV1Api.
# ---------------------------------------------------------------------------------------------


def test_core_namespaces_secrets_configmaps(api: client.ApiClient) -> None:
    core = client.CoreV1Api(api)
    ns = core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name="core", labels={"t": "1"}))
    )
    assert ns.status.phase == "Active"
    assert ns.metadata.uid
    names = {n.metadata.name for n in core.list_namespace().items}
    assert {"default", "kube-system", "core"} <= names
    assert [n.metadata.name for n in core.list_namespace(label_selector="t=1").items] == ["core"]

    secret = core.create_namespaced_secret(
        "core",
        client.V1Secret(metadata=client.V1ObjectMeta(name="s1"), string_data={"token": "x"}, type="Opaque"),
    )
    assert secret.metadata.resource_version
    got = core.read_namespaced_secret("s1", "core")
    assert got.metadata.uid == secret.metadata.uid
    # stringData is write-only: the server folds it into data (base64).
    assert got.data == {"token": "eA=="}
    assert got.string_data is None
    core.patch_namespaced_secret("s1", "core", {"metadata": {"labels": {"k": "v"}}})
    assert core.read_namespaced_secret("s1", "core").metadata.labels == {"k": "v"}
    assert [s.metadata.name for s in core.list_namespaced_secret("core").items] == ["s1"]
    core.delete_namespaced_secret("s1", "core")
    with pytest.raises(ApiException) as missing:
        core.read_namespaced_secret("s1", "core")
    assert missing.value.status == 404

    cm = core.create_namespaced_config_map(
        "core", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c1"), data={"a": "1"})
    )
    cm.data = {"a": "2", "b": "3"}
    replaced = core.replace_namespaced_config_map("c1", "core", cm)
    assert replaced.data == {"a": "2", "b": "3"}
    assert int(replaced.metadata.resource_version) > int(cm.metadata.resource_version)
    # Core kinds accept an unconditional replace (no resourceVersion), as kube-apiserver does.
    unconditional = core.replace_namespaced_config_map(
        "c1", "core", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c1"), data={"z": "9"})
    )
    assert unconditional.data == {"z": "9"}
    assert unconditional.metadata.uid == cm.metadata.uid
    # A stale one still conflicts.
    cm.data = {"stale": "1"}
    with pytest.raises(ApiException) as conflict:
        core.replace_namespaced_config_map("c1", "core", cm)
    assert conflict.value.status == 409
    with pytest.raises(ApiException) as duplicate:
        core.create_namespaced_config_map(
            "core", client.V1ConfigMap(metadata=client.V1ObjectMeta(name="c1"), data={})
        )
    assert duplicate.value.status == 409
    assert error_body(duplicate.value)["reason"] == "AlreadyExists"
    core.delete_namespaced_config_map("c1", "core")
    assert core.list_namespaced_config_map("core").items == []

    core.delete_namespace("core")
    with pytest.raises(ApiException) as deleted:
        core.read_namespace("core")
    assert deleted.value.status == 404


# ---------------------------------------------------------------------------------------------
# Watch.
# ---------------------------------------------------------------------------------------------


def test_watch_from_resource_version_sees_exactly_the_later_changes(api: client.ApiClient) -> None:
    ns = make_namespace(api, "watched")
    co = client.CustomObjectsApi(api)
    co.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, post("before"))
    rv = co.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["metadata"]["resourceVersion"]

    co.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, post("w1"))
    co.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "w1", {"spec": {"body": "changed"}})
    co.patch_namespaced_custom_object(
        GROUP, VERSION, ns, PLURAL, "before", {"metadata": {"labels": {"x": "y"}}}
    )
    co.delete_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "w1")

    events = list(
        watch.Watch().stream(
            co.list_namespaced_custom_object,
            GROUP,
            VERSION,
            ns,
            PLURAL,
            resource_version=rv,
            timeout_seconds=1,
        )
    )
    seen = [(e["type"], e["object"]["metadata"]["name"]) for e in events]
    assert seen == [("ADDED", "w1"), ("MODIFIED", "w1"), ("MODIFIED", "before"), ("DELETED", "w1")]
    assert events[1]["object"]["spec"]["body"] == "changed"
    versions = [int(e["object"]["metadata"]["resourceVersion"]) for e in events]
    assert versions == sorted(versions)
    assert len(set(versions)) == len(versions)
    assert versions[0] > int(rv)


def test_watch_from_expired_resource_version_raises_410(tmp_path: Path) -> None:
    kube = KubeHarness(tmp_path / "state", ServerSettings(history=5)).start()
    try:
        with api_client(kube) as api:
            ns = make_namespace(api, "expiry")
            co = client.CustomObjectsApi(api)
            co.create_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, post("p"))
            old_rv = co.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["metadata"][
                "resourceVersion"
            ]
            for i in range(8):
                co.patch_namespaced_custom_object(
                    GROUP, VERSION, ns, PLURAL, "p", {"spec": {"body": f"v{i}"}}
                )

            # The stream sees an ERROR event carrying a 410 Status. Watch.stream documents that it
            # then resumes once and, when that is too old as well, raises ApiException(410); with
            # timeout_seconds it does not retry and raises at once. Both paths end in the raise.
            for kwargs in ({"timeout_seconds": 1}, {}):
                stream = watch.Watch().stream(
                    co.list_namespaced_custom_object,
                    GROUP,
                    VERSION,
                    ns,
                    PLURAL,
                    resource_version=old_rv,
                    **kwargs,
                )
                with pytest.raises(ApiException) as expired:
                    next(stream)
                assert expired.value.status == 410
                assert "Expired" in str(expired.value.reason)
                assert "too old resource version" in str(expired.value.reason)

            # A watch from the current version works.
            current = co.list_namespaced_custom_object(GROUP, VERSION, ns, PLURAL)["metadata"][
                "resourceVersion"
            ]
            stream = watch.Watch().stream(
                co.list_namespaced_custom_object,
                GROUP,
                VERSION,
                ns,
                PLURAL,
                resource_version=current,
                timeout_seconds=1,
            )
            co.patch_namespaced_custom_object(GROUP, VERSION, ns, PLURAL, "p", {"spec": {"body": "live"}})
            event = next(stream)
            assert event["type"] == "MODIFIED"
            assert event["object"]["spec"]["body"] == "live"
            stream.close()
    finally:
        kube.close()


# ---------------------------------------------------------------------------------------------
# Dynamic client (discovery).
# ---------------------------------------------------------------------------------------------


def test_dynamic_client_discovers_socialpost_by_kind(api: client.ApiClient) -> None:
    ns = make_namespace(api, "dyn")
    dyn = dynamic.DynamicClient(api)
    posts = dyn.resources.get(api_version=f"{GROUP}/{VERSION}", kind="SocialPost")
    assert posts.name == PLURAL
    assert posts.namespaced is True
    assert "sp" in posts.short_names
    assert posts.subresources["status"] is not None

    created = posts.create(body=post("d1"), namespace=ns)
    assert created.metadata.generation == 1
    assert posts.get(name="d1", namespace=ns).spec.body == "hello"
    patched = posts.patch(
        name="d1",
        namespace=ns,
        body={"spec": {"body": "dynamic"}},
        content_type="application/merge-patch+json",
    )
    assert patched.spec.body == "dynamic"
    assert [i.metadata.name for i in posts.get(namespace=ns).items] == ["d1"]
    posts.delete(name="d1", namespace=ns)
    assert posts.get(namespace=ns).items == []

    namespaces = dyn.resources.get(api_version="v1", kind="Namespace")
    assert namespaces.namespaced is False
    assert dyn.resources.get(api_version="apiextensions.k8s.io/v1", kind="CustomResourceDefinition")
