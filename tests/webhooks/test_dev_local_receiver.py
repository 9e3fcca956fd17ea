"""Against ``socialpub dev`` (what ``make run`` starts) a local receiver can be added and receives
events, as the README promises (issue 9, item 10f); the real CLI, in its own process."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.test_dev import Dev
from tests.webhooks.receiver import Receiver

CLI = (sys.executable, "-m", "socialpub.cli")


def _cli(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOCIALPUB_")}
    env["KUBECONFIG"] = str(kubeconfig)
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=60, check=False)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver().start()
    yield receiver
    receiver.close()


def test_a_loopback_receiver_added_to_the_dev_stack_gets_its_events(
    tmp_path: Path, receiver: Receiver
) -> None:
    state = tmp_path / "state"
    dev = Dev(state)
    try:
        dev.wait_ready()
        kubeconfig = state / "kubeconfig"
        url = receiver.url("hook")
        added = _cli(
            kubeconfig, "webhooks", "add", "--tenant", "demo", "--mode", "test", "--url", url,
            "--event", "social.account_disconnected",
        )  # fmt: skip
        assert added.returncode == 0, added.stderr
        secret = added.stdout.strip()
        assert secret.startswith("whsec_")
        assert "dev stack" in added.stderr

        # Live endpoints still need https, dev stack or not.
        live = _cli(kubeconfig, "webhooks", "add", "--tenant", "demo", "--mode", "live", "--url", url)
        assert live.returncode == 2
        assert "https" in live.stderr

        # An event the operator of the dev stack delivers to that receiver.
        disconnected = _cli(kubeconfig, "accounts", "disconnect", "--tenant", "demo", "--mode", "test", "1")
        assert disconnected.returncode == 0, disconnected.stderr
        (delivery,) = receiver.wait_ok("hook", 1, timeout=30)
        payload = delivery.verify(secret)
        assert payload["type"] == "social.account_disconnected"
        assert dev.stop() == 0
    finally:
        dev.kill()
