"""Fixtures for the operator's end-to-end tests: the real operator process on the embedded API."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from socialpub.kube.client import KubeClient
from tests.kube_harness import KubeHarness
from tests.operator.harness import OperatorProcess
from tests.operator.scenarios import KubeDriver, World


def _fail_on_problems(operator: OperatorProcess, offset: int = 0) -> None:
    problems = operator.problems(offset)
    if problems:
        pytest.fail(
            f"the operator logged {len(problems)} problem(s), first: {problems[0]}\n"
            f"----- operator log -----\n{operator.log(offset)[-20000:]}",
            pytrace=False,
        )


@pytest.fixture(scope="module")
def shared_client(shared_kube: KubeHarness) -> Iterator[KubeClient]:
    client = KubeClient.from_config(str(shared_kube.kubeconfig))
    yield client
    shared_kube.call(client.aclose())


@pytest.fixture(scope="module")
def shared_operator(
    shared_kube: KubeHarness, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """One operator for the module's tests that do not stop it (each uses its own tenant)."""
    operator = OperatorProcess(shared_kube.kubeconfig, tmp_path_factory.mktemp("operator") / "operator.log")
    operator.start()
    try:
        yield operator
    finally:
        operator.stop()


@pytest.fixture
def operator(shared_operator: OperatorProcess) -> Iterator[OperatorProcess]:
    """The shared operator; the test fails if the operator logged a problem while it ran."""
    offset = shared_operator.log_size()
    yield shared_operator
    assert shared_operator.running, f"the operator died:\n{shared_operator.log(offset)}"
    _fail_on_problems(shared_operator, offset)


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
    made: list[OperatorProcess] = []

    def make(**env: str) -> OperatorProcess:
        operator = OperatorProcess(kube.kubeconfig, tmp_path / f"operator-{len(made)}.log", **env)
        made.append(operator)
        return operator

    yield make
    for operator in made:
        operator.stop()
    for operator in made:
        _fail_on_problems(operator)


@pytest.fixture
def own_client(kube: KubeHarness) -> Iterator[KubeClient]:
    client = KubeClient.from_config(str(kube.kubeconfig))
    yield client
    kube.call(client.aclose())
