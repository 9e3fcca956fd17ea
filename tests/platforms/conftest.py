from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.fakes.fixtures import Fakes, adapters, fakes, fakes_session
from tests.kube_harness import KubeHarness
from tests.operator.harness import OperatorProcess, running_operator
from tests.platforms.live import operator_env

__all__ = ["adapters", "fakes", "fakes_session", "live_operator"]


@pytest.fixture(scope="module")
def live_operator(
    shared_kube: KubeHarness, fakes_session: Fakes, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[OperatorProcess]:
    """The real operator for a module's live tests, publishing to the platform fakes (a module
    that needs another setup, such as a key ring file, defines its own)."""
    log = tmp_path_factory.mktemp("live-operator") / "operator.log"
    with running_operator(shared_kube.kubeconfig, log, **operator_env(fakes_session)) as operator:
        yield operator
