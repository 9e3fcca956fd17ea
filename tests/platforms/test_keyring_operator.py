"""A running operator follows its key ring file (issue 9, items 8 and 10d): the real operator
process, its key ring mounted as a file, a key removed from the file while it runs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from socialpub.crypto import KeyRing
from socialpub.kube.client import KubeClient
from socialpub.models.platforms import Platform
from tests.fakes.fixtures import Fakes
from tests.kube_harness import KubeHarness
from tests.operator.harness import OperatorProcess, running_operator
from tests.platforms.live import KEY_RING, LiveWorld, driver, operator_env

FB = Platform.FACEBOOK


@pytest.fixture(scope="module")
def keyring_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("keyring") / "keyring.json"
    path.write_text(KEY_RING.to_json())
    return path


@pytest.fixture(scope="module")
def live_operator(
    shared_kube: KubeHarness,
    fakes_session: Fakes,
    keyring_file: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[OperatorProcess]:
    log = tmp_path_factory.mktemp("keyring-operator") / "operator.log"
    env = operator_env(fakes_session)
    del env["SOCIALPUB_ENCRYPTION_KEY"]  # only the file: the production setup
    env["SOCIALPUB_ENCRYPTION_KEYRING_FILE"] = str(keyring_file)
    with running_operator(shared_kube.kubeconfig, log, **env) as operator:
        yield operator


def test_a_key_removed_from_the_file_stops_decrypting_in_the_running_operator(
    shared_kube: KubeHarness,
    shared_client: KubeClient,
    fakes: Fakes,
    keyring_file: Path,
    live_operator: OperatorProcess,
) -> None:
    world = LiveWorld.create_live(shared_kube, shared_client, fakes)
    first = driver(world).create_post(body="Sealed under k1", account_ids=[world.accounts[FB]])
    assert world.wait_settled(first)["status"]["phase"] == "published"
    assert len(fakes.facebook.posts) == 1

    # k1 is dropped from the store (it leaked); the mounted file changes; no restart.
    keyring_file.write_text(KeyRing.generate("k2").to_json())
    second = driver(world).create_post(body="Still under k1", account_ids=[world.accounts[FB]])
    status = world.wait_target(second, FB, lambda s: bool(s.get("lastError")))
    assert status["state"] != "published"
    assert status["lastError"]["code"] == "encryption_key_unknown"
    assert "keyring.json" in status["lastError"]["message"]
    assert len(fakes.facebook.posts) == 1
    assert live_operator.running
