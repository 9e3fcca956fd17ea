"""The built-in ``coordination.k8s.io/v1`` Lease, as the operator's single-instance lock uses it.

Driven through the ``kubernetes`` client's ``CoordinationV1Api`` and the real kubectl, both
configured only from the harness's kubeconfig.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from kubernetes import client, config, watch
from kubernetes.client.exceptions import ApiException

from tests.kube_harness import KubeHarness


@pytest.fixture
def api(kube: KubeHarness) -> Iterator[client.ApiClient]:
    cfg = client.Configuration()
    config.load_kube_config(config_file=str(kube.kubeconfig), client_configuration=cfg)
    with client.ApiClient(cfg) as c:
        yield c


def lease(name: str, holder: str, *, duration: int = 15) -> client.V1Lease:
    now = datetime(2026, 12, 2, 15, 0, 0, 123456, tzinfo=UTC)
    return client.V1Lease(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1LeaseSpec(
            holder_identity=holder,
            lease_duration_seconds=duration,
            acquire_time=now,
            renew_time=now,
            lease_transitions=0,
        ),
    )


def test_discovery_lists_leases(api: client.ApiClient) -> None:
    resources = client.CoordinationV1Api(api).get_api_resources()
    entry = next(r for r in resources.resources if r.name == "leases")
    assert entry.kind == "Lease"
    assert entry.namespaced is True
    assert {"create", "get", "list", "watch", "update", "patch", "delete"} <= set(entry.verbs)


def test_lease_crud_and_conflict(api: client.ApiClient) -> None:
    co = client.CoordinationV1Api(api)
    created = co.create_namespaced_lease("default", lease("operator", "op-a"))
    assert created.spec.holder_identity == "op-a"
    assert created.spec.lease_duration_seconds == 15
    assert created.spec.lease_transitions == 0
    assert created.spec.renew_time == datetime(2026, 12, 2, 15, 0, 0, 123456, tzinfo=UTC)

    with pytest.raises(ApiException) as exists:
        co.create_namespaced_lease("default", lease("operator", "op-b"))
    assert exists.value.status == 409

    # A takeover races a renewal: both read the same version; the second write loses with 409.
    mine = co.read_namespaced_lease("operator", "default")
    theirs = co.read_namespaced_lease("operator", "default")
    mine.spec.renew_time = datetime(2026, 12, 2, 15, 0, 10, tzinfo=UTC)
    renewed = co.replace_namespaced_lease("operator", "default", mine)
    assert int(renewed.metadata.resource_version) > int(created.metadata.resource_version)
    theirs.spec.holder_identity = "op-b"
    theirs.spec.lease_transitions = 1
    with pytest.raises(ApiException) as conflict:
        co.replace_namespaced_lease("operator", "default", theirs)
    assert conflict.value.status == 409
    assert json.loads(conflict.value.body)["reason"] == "Conflict"

    # Like kube-apiserver, a Lease update must name the version it replaces.
    blind = co.read_namespaced_lease("operator", "default")
    blind.metadata.resource_version = None
    with pytest.raises(ApiException) as unconditional:
        co.replace_namespaced_lease("operator", "default", blind)
    assert unconditional.value.status == 422

    patched = co.patch_namespaced_lease("operator", "default", {"spec": {"holderIdentity": "op-c"}})
    assert patched.spec.holder_identity == "op-c"
    assert patched.spec.lease_duration_seconds == 15
    assert [item.metadata.name for item in co.list_namespaced_lease("default").items] == ["operator"]

    co.delete_namespaced_lease("operator", "default")
    with pytest.raises(ApiException) as gone:
        co.read_namespaced_lease("operator", "default")
    assert gone.value.status == 404


def test_lease_spec_is_checked(api: client.ApiClient) -> None:
    co = client.CoordinationV1Api(api)
    with pytest.raises(ApiException) as invalid:
        co.create_namespaced_lease("default", lease("bad", "x", duration=0))
    assert invalid.value.status == 422
    assert "leaseDurationSeconds" in invalid.value.body


def test_lease_watch(api: client.ApiClient) -> None:
    co = client.CoordinationV1Api(api)
    start = co.list_namespaced_lease("default").metadata.resource_version
    seen: list[tuple[str, str]] = []
    done = threading.Event()

    def follow() -> None:
        w = watch.Watch()
        for event in w.stream(
            co.list_namespaced_lease, "default", resource_version=start, timeout_seconds=10
        ):
            seen.append((event["type"], event["object"].spec.holder_identity))
            if len(seen) == 2:
                w.stop()
        done.set()

    thread = threading.Thread(target=follow, daemon=True)
    thread.start()
    co.create_namespaced_lease("default", lease("watched", "op-a"))
    co.patch_namespaced_lease("watched", "default", {"spec": {"holderIdentity": "op-b"}})
    assert done.wait(15)
    assert seen == [("ADDED", "op-a"), ("MODIFIED", "op-b")]


@pytest.mark.kubectl
@pytest.mark.usefixtures("needs_kubectl")
def test_kubectl_get_leases(api: client.ApiClient, kube: KubeHarness) -> None:
    client.CoordinationV1Api(api).create_namespaced_lease("default", lease("socialpub-operator", "op-a"))
    out = kube.kubectl("get", "leases", "-n", "default").stdout.splitlines()
    assert out[0].split() == ["NAME", "HOLDER", "AGE"]
    assert out[1].split()[:2] == ["socialpub-operator", "op-a"]
    got = kube.kubectl_json("get", "lease", "socialpub-operator", "-n", "default")
    assert got["spec"]["renewTime"] == "2026-12-02T15:00:00.123456+00:00"
