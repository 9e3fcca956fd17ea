"""The operator writes each SocialTenant's status, so ``kubectl get socialtenants`` shows READY
(issue 9, item 10g): True once both namespaces exist and are distinct and no other tenant names
them; False with a reason otherwise; ``observedGeneration`` follows the spec."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from socialpub.kube.client import KubeClient
from socialpub.kube.namespaces import ensure_namespace
from socialpub.kube.resources import TENANTS
from socialpub.kube.tenants import ensure_tenant
from socialpub.operator.tenants import tenant_status
from tests.kube_harness import KubeHarness
from tests.operator.harness import OperatorProcess, running_operator
from tests.operator.scenarios import wait_for


@pytest.fixture(scope="module")
def operator(shared_kube: KubeHarness, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    log = tmp_path_factory.mktemp("tenants-operator") / "operator.log"
    with running_operator(shared_kube.kubeconfig, log) as operator:
        yield operator
        assert not operator.problems(), operator.log()


def _tenant(name: str, live: str, sandbox: str) -> dict[str, Any]:
    return {
        "apiVersion": TENANTS.api_version,
        "kind": TENANTS.kind,
        "metadata": {"name": name},
        "spec": {"displayName": name.title(), "liveNamespace": live, "sandboxNamespace": sandbox},
    }


def _rows(kube: KubeHarness, *args: str) -> dict[str, list[str]]:
    """``kubectl get socialtenants`` as {name: cells}, keyed by the header too (``NAME``)."""
    out = kube.kubectl("get", "socialtenants", *args).stdout
    return {line.split()[0]: line.split() for line in out.splitlines() if line.strip()}


def _ready(kube: KubeHarness, name: str, status: str, reason: str) -> list[str]:
    def probe() -> list[str] | None:
        row = _rows(kube, "-o", "wide").get(name)
        return row if row and row[4:6] == [status, reason] else None

    row: list[str] = wait_for(probe, timeout=20, what=f"tenant {name} {status}/{reason}")
    return row


@pytest.mark.kubectl
@pytest.mark.usefixtures("needs_kubectl")
def test_kubectl_get_shows_ready_and_why_not(
    shared_kube: KubeHarness, shared_client: KubeClient, operator: OperatorProcess
) -> None:
    kube = shared_kube
    kube.call(ensure_tenant(shared_client, "acme"))
    wait_for(lambda: _rows(kube).get("acme", [])[4:5] == ["True"], timeout=20, what="READY True")
    header = _rows(kube, "-o", "wide")["NAME"]
    assert header[:7] == ["NAME", "DISPLAY", "NAME", "LIVE", "SANDBOX", "READY", "REASON"]
    assert _ready(kube, "acme", "True", "NamespacesReady")[:4] == [
        "acme",
        "acme",
        "acme-live",
        "acme-sandbox",
    ]

    # Namespaces that do not exist yet: not ready, and ready as soon as they do.
    kube.call(shared_client.create(TENANTS, _tenant("globex", "globex-live", "globex-sandbox")))
    _ready(kube, "globex", "False", "NamespaceMissing")
    obj = kube.call(shared_client.get(TENANTS, "globex"))
    (condition,) = obj["status"]["conditions"]
    assert "globex-live" in condition["message"]
    kube.call(ensure_namespace(shared_client, "globex-live"))
    kube.call(ensure_namespace(shared_client, "globex-sandbox"))
    _ready(kube, "globex", "True", "NamespacesReady")

    # A tenant naming another tenant's namespace: neither publishes from it, both say so.
    kube.call(shared_client.create(TENANTS, _tenant("initech", "initech-live", "acme-sandbox")))
    kube.call(ensure_namespace(shared_client, "initech-live"))
    _ready(kube, "initech", "False", "NamespaceShared")
    _ready(kube, "acme", "False", "NamespaceShared")
    kube.call(shared_client.patch(TENANTS, "initech", {"spec": {"sandboxNamespace": "initech-sandbox"}}))
    kube.call(ensure_namespace(shared_client, "initech-sandbox"))
    _ready(kube, "initech", "True", "NamespacesReady")
    _ready(kube, "acme", "True", "NamespacesReady")
    obj = kube.call(shared_client.get(TENANTS, "initech"))
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"] == 2


def _obj(live: str, sandbox: str, status: dict[str, Any] | None = None) -> dict[str, Any]:
    return {**_tenant("acme", live, sandbox), "metadata": {"name": "acme", "generation": 3}, "status": status}


@pytest.mark.parametrize(
    ("live", "sandbox", "existing", "elsewhere", "expected"),
    [
        ("a-live", "a-sandbox", {"a-live": True, "a-sandbox": True}, {}, ("True", "NamespacesReady")),
        ("a-live", "a-sandbox", {"a-live": True, "a-sandbox": False}, {}, ("False", "NamespaceMissing")),
        ("a-live", "a-live", {"a-live": True}, {}, ("False", "NamespacesNotDistinct")),
        ("a-live", "", {"a-live": True}, {}, ("False", "NamespacesNotDistinct")),
        ("a-live", "b-live", {"a-live": True, "b-live": True}, {"b-live": "b"}, ("False", "NamespaceShared")),
    ],
)
def test_tenant_status_decisions(
    live: str, sandbox: str, existing: dict[str, bool], elsewhere: dict[str, str], expected: tuple[str, str]
) -> None:
    status = tenant_status(_obj(live, sandbox), existing=existing, claimed_elsewhere=elsewhere, now=1e9)
    (ready,) = status["conditions"]
    assert (ready["status"], ready["reason"]) == expected
    assert status["observedGeneration"] == ready["observedGeneration"] == 3


def test_the_transition_time_moves_only_when_ready_flips() -> None:
    ok = {"a-live": True, "a-sandbox": True}
    first = tenant_status(_obj("a-live", "a-sandbox"), existing=ok, claimed_elsewhere={}, now=1e9)
    again = tenant_status(_obj("a-live", "a-sandbox", first), existing=ok, claimed_elsewhere={}, now=2e9)
    assert again["conditions"][0]["lastTransitionTime"] == first["conditions"][0]["lastTransitionTime"]
    missing = {"a-live": True, "a-sandbox": False}
    flipped = tenant_status(
        _obj("a-live", "a-sandbox", again), existing=missing, claimed_elsewhere={}, now=3e9
    )
    assert flipped["conditions"][0]["lastTransitionTime"] != first["conditions"][0]["lastTransitionTime"]
