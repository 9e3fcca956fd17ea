"""Fixtures for the webhook tests: the real operator process, a real receiver, tenants."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from socialpub._cli_webhooks import add_endpoint
from socialpub.kube.client import KubeClient
from socialpub.models.keys import Mode
from tests.kube_harness import KubeHarness
from tests.operator.harness import OperatorProcess, checked, own_operators, running_operator
from tests.operator.scenarios import KubeDriver, World
from tests.webhooks.receiver import Receiver

WEBHOOK_ENV = {
    "SOCIALPUB_WEBHOOK_RETRY_BASE_SECONDS": "0.01",  # 0, 0.01 s, 0.6 s, 3.6 s, 14.4 s, …
    "SOCIALPUB_WEBHOOK_TIMEOUT_SECONDS": "1",
    "SOCIALPUB_WEBHOOK_ALLOW_LOOPBACK": "1",
}


@pytest.fixture(scope="module")
def shared_operator(
    shared_kube: KubeHarness, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    log = tmp_path_factory.mktemp("operator") / "operator.log"
    with running_operator(shared_kube.kubeconfig, log, **WEBHOOK_ENV) as operator:
        yield operator


@pytest.fixture
def operator(shared_operator: OperatorProcess) -> Iterator[OperatorProcess]:
    with checked(shared_operator):
        yield shared_operator


@pytest.fixture
def world(shared_kube: KubeHarness, shared_client: KubeClient, operator: OperatorProcess) -> World:
    return World.create(shared_kube, shared_client)


@pytest.fixture
def driver(world: World) -> KubeDriver:
    return KubeDriver(world)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.close()


@pytest.fixture
def own_operator(kube: KubeHarness, tmp_path: Path) -> Iterator[Callable[..., OperatorProcess]]:
    """For tests that kill and restart the operator: a factory on the test's own API server."""
    with own_operators(kube.kubeconfig, tmp_path, **WEBHOOK_ENV) as make:
        yield make


@pytest.fixture
def own_client(kube: KubeHarness) -> Iterator[KubeClient]:
    client = KubeClient.from_config(str(kube.kubeconfig))
    yield client
    kube.call(client.aclose())


def endpoint(world: World, url: str, events: list[str] | None = None) -> tuple[dict[str, Any], str]:
    """A webhook endpoint in the world's sandbox namespace, made as ``socialpub webhooks add`` does."""
    result: tuple[dict[str, Any], str] = world.kube.call(
        add_endpoint(world.client, world.tenant, mode=Mode.TEST, url=url, events=list(events or []))
    )
    return result
