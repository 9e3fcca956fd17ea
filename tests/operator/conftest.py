"""Fixtures for the operator's end-to-end tests: the real operator process on the embedded API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from socialpub.kube.client import KubeClient
from tests.kube_harness import KubeHarness
from tests.operator.harness import OperatorProcess, checked, own_operators, running_operator
from tests.operator.scenarios import KubeDriver, World


@pytest.fixture(scope="module")
def shared_operator(
    shared_kube: KubeHarness, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """One operator for the module's tests that do not stop it (each uses its own tenant)."""
    with running_operator(shared_kube.kubeconfig, tmp_path_factory.mktemp("operator") / "operator.log") as op:
        yield op


@pytest.fixture
def operator(shared_operator: OperatorProcess) -> Iterator[OperatorProcess]:
    """The shared operator; the test fails if the operator logged a problem while it ran."""
    with checked(shared_operator):
        yield shared_operator


@pytest.fixture
def world(shared_kube: KubeHarness, shared_client: KubeClient, operator: OperatorProcess) -> World:
    """A fresh tenant (sandbox namespace, one active sandbox account per platform), operator running."""
    return World.create(shared_kube, shared_client)


@pytest.fixture
def driver(world: World) -> KubeDriver:
    return KubeDriver(world)


@pytest.fixture
def own_operator(kube: KubeHarness, tmp_path: Path) -> Iterator[Callable[..., OperatorProcess]]:
    """For tests that stop, kill and restart the operator: a factory on the test's own API server.

    ``own_operator(**env)`` returns an :class:`OperatorProcess` (not started); at the end it is
    stopped and the test fails if any of its runs logged a problem.
    """
    with own_operators(kube.kubeconfig, tmp_path) as make:
        yield make


@pytest.fixture
def own_client(kube: KubeHarness) -> Iterator[KubeClient]:
    client = KubeClient.from_config(str(kube.kubeconfig))
    yield client
    kube.call(client.aclose())
