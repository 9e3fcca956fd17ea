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
from tests.kube_harness import KubeHarness
from tests.operator.harness import OperatorProcess
from tests.operator.scenarios import wait_for

pytestmark = [pytest.mark.kubectl, pytest.mark.usefixtures("needs_kubectl")]


@pytest.fixture(scope="module")
def client(shared_kube: KubeHarness) -> Iterator[KubeClient]:
    client = KubeClient.from_config(str(shared_kube.kubeconfig))
    yield client
    shared_kube.call(client.aclose())


@pytest.fixture(scope="module")
def operator(shared_kube: KubeHarness, tmp_path_factory: pytest.TempPathFactory) -> Iterator[OperatorProcess]:
    log = tmp_path_factory.mktemp("tenants-operator") / "operator.log"
    operator = OperatorProcess(shared_kube.kubeconfig, log)
    operator.start()
    try:
        yield operator
    finally:
        assert not operator.problems(), operator.log()
        operator.stop()


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


def test_kubectl_get_shows_ready_and_why_not(
    shared_kube: KubeHarness, client: KubeClient, operator: OperatorProcess
) -> None:
    kube = shared_kube
    kube.call(ensure_tenant(client, "acme"))
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
    kube.call(client.create(TENANTS, _tenant("globex", "globex-live", "globex-sandbox")))
    _ready(kube, "globex", "False", "NamespaceMissing")
    obj = kube.call(client.get(TENANTS, "globex"))
    (condition,) = obj["status"]["conditions"]
    assert "globex-live" in condition["message"]
    kube.call(ensure_namespace(client, "globex-live"))
    kube.call(ensure_namespace(client, "globex-sandbox"))
    _ready(kube, "globex", "True", "NamespacesReady")

    # A tenant naming another tenant's namespace: neither publishes from it, both say so.
    kube.call(client.create(TENANTS, _tenant("initech", "initech-live", "acme-sandbox")))
    kube.call(ensure_namespace(client, "initech-live"))
    _ready(kube, "initech", "False", "NamespaceShared")
    _ready(kube, "acme", "False", "NamespaceShared")
    kube.call(client.patch(TENANTS, "initech", {"spec": {"sandboxNamespace": "initech-sandbox"}}))
    kube.call(ensure_namespace(client, "initech-sandbox"))
    _ready(kube, "initech", "True", "NamespacesReady")
    _ready(kube, "acme", "True", "NamespacesReady")
    obj = kube.call(client.get(TENANTS, "initech"))
    assert obj["status"]["observedGeneration"] == obj["metadata"]["generation"] == 2
