"""Fixtures shared by the whole suite: the real embedded Kubernetes API, over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from socialpub.kube.client import KubeClient
from tests.kube_harness import KUBECTL, KubeHarness


@pytest.fixture
def kube(tmp_path: Path) -> Iterator[KubeHarness]:
    """A fresh embedded Kubernetes API with our CRDs applied, on a free port."""
    harness = KubeHarness(tmp_path / "state").start()
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture(scope="module")
def shared_kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeHarness]:
    """One embedded Kubernetes API for a whole module (tests use their own namespaces)."""
    harness = KubeHarness(tmp_path_factory.mktemp("kube") / "state").start()
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture(scope="module")
def shared_client(shared_kube: KubeHarness) -> Iterator[KubeClient]:
    """A client of the module's embedded API (closed with the module)."""
    client = KubeClient.from_config(str(shared_kube.kubeconfig))
    yield client
    shared_kube.call(client.aclose())


@pytest.fixture
def needs_kubectl() -> None:
    if KUBECTL is None:
        pytest.skip("kubectl is not installed on this machine; the kubectl conformance tests need it")
