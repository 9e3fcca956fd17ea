"""``socialpub dev``, run as ``make run`` runs it: a real process, stopped by a signal, restarted.

The first start seeds tenant ``demo`` (three sandbox accounts and an all-scopes test key kept in
the state directory) and serves the api beside the embedded Kubernetes API; a restart on the same
state directory prints the same key and creates nothing twice.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import socket
import ssl
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import yaml

from socialpub.kube.accounts import account_id, find_accounts
from socialpub.kube.client import KubeClient
from socialpub.kube.keys import list_keys, revoke_key
from socialpub.kube.resources import TENANTS
from socialpub.models.keys import checksum_ok, hash_key, key_id
from tests.kube_harness import KUBECTL

CLI = (sys.executable, "-m", "socialpub.cli")
KEY = re.compile(r"\bsk_test_[0-9A-Za-z]{46}\b")
API_URL = re.compile(r"api on (http://127\.0\.0\.1:\d+)")
KUBE_URL = re.compile(r"embedded Kubernetes API on (https://127\.0\.0\.1:\d+)")
PRIVATE_FILES = ("kube.sqlite3", "kube.sqlite3-wal", "kube.sqlite3-shm", "kubeconfig", "token", "dev-key")
DEMO_ACCOUNTS = [("linkedin", "Acme Co"), ("facebook", "Acme Co"), ("instagram", "@acme")]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOCIALPUB_") and k != "KUBECONFIG"}
    return {**env, "PYTHONUNBUFFERED": "1"}


class Dev:
    """A ``socialpub dev`` process; its stdout is collected line by line by a thread."""

    def __init__(self, state_dir: Path, *args: str) -> None:
        self.state_dir = state_dir
        self.log = state_dir.parent / f"{state_dir.name}-stderr.log"
        with self.log.open("a") as err:
            self.proc = subprocess.Popen(
                [*CLI, "dev", "--state-dir", str(state_dir), "--port", "0", *args],
                stdout=subprocess.PIPE,
                stderr=err,
                text=True,
                env=_env(),
            )
        self.lines: list[str] = []
        self._ready = threading.Event()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line)
            if line.startswith("socialpub dev: ready"):
                self._ready.set()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def wait_ready(self, timeout: float = 60) -> Dev:
        deadline = time.monotonic() + timeout
        while not self._ready.wait(0.05):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(
                    f"socialpub dev did not get ready:\n{self.output}\n{self.log.read_text()}"
                )
        return self

    @property
    def key(self) -> str:
        keys: set[str] = set(KEY.findall(self.output))
        (key,) = keys
        return key

    @property
    def url(self) -> str:
        match = API_URL.search(self.output)
        assert match, self.output
        return match.group(1)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout)
        time.sleep(0.05)  # let the reader thread take the last lines
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def assert_private(state: Path) -> None:
    """The state directory holds every Secret in clear and the API's credential: owner only."""
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in state.iterdir() if p.is_file()}
    assert set(PRIVATE_FILES) <= set(modes), modes
    assert all(mode == 0o600 for mode in modes.values()), modes


def assert_kube_needs_the_kubeconfig(dev: Dev) -> None:
    """Only the kubeconfig's holder gets in: kubectl with it works, a request without its token
    is 401, one from a page (Origin) is 403."""
    match = KUBE_URL.search(dev.output)
    assert match, dev.output
    kube_url = match.group(1)
    kubeconfig = yaml.safe_load((dev.state_dir / "kubeconfig").read_text())
    assert kubeconfig["clusters"][0]["cluster"]["server"] == kube_url
    token = kubeconfig["users"][0]["user"]["token"]
    ca = ssl.create_default_context(cafile=str(dev.state_dir / "ca.crt"))
    secrets = f"{kube_url}/api/v1/secrets"
    assert httpx.get(secrets, verify=ca, timeout=5).status_code == 401
    headers = {"Authorization": f"Bearer {token}"}
    assert (
        httpx.get(secrets, verify=ca, headers={**headers, "Origin": "http://evil.example"}).status_code == 403
    )
    assert httpx.get(secrets, verify=ca, headers=headers, timeout=5).status_code == 200
    if KUBECTL is not None:
        env = {**_env(), "KUBECONFIG": str(dev.state_dir / "kubeconfig")}
        cache = f"--cache-dir={dev.state_dir.parent / 'kubectl-cache'}"
        got = subprocess.run(
            [KUBECTL, cache, "get", "namespaces", "-o", "name"], capture_output=True, text=True, env=env
        )
        assert "namespace/demo-sandbox" in got.stdout.split(), got.stderr


def in_cluster(state_dir: Path, work: Any) -> Any:
    async def go() -> Any:
        client = KubeClient.from_config(str(state_dir / "kubeconfig"))
        try:
            return await work(client)
        finally:
            await client.aclose()

    return asyncio.run(go())


def demo_accounts(state_dir: Path) -> list[tuple[int | None, str, str, str]]:
    accounts = in_cluster(state_dir, lambda c: find_accounts(c, "demo-sandbox"))
    return [
        (account_id(a), a["spec"]["platform"], a["spec"]["displayName"], a["status"]["state"])
        for a in accounts
    ]


def api_accounts(url: str, key: str, timeout: float = 20) -> list[dict[str, Any]]:
    """``GET /accounts`` with ``key``, retried until the api's caches have the accounts."""
    deadline = time.monotonic() + timeout
    while True:
        response = httpx.get(
            f"{url}/api/v1/services/social/accounts", headers={"Authorization": f"Bearer {key}"}, timeout=5
        )
        if response.status_code == 200 and len(response.json()["data"]["accounts"]) == 3:
            accounts: list[dict[str, Any]] = response.json()["data"]["accounts"]
            return accounts
        assert time.monotonic() < deadline, (response.status_code, response.text)
        time.sleep(0.1)


def test_first_start_seeds_the_demo_and_restarts_reuse_it(tmp_path: Path) -> None:
    state = tmp_path / "state"
    dev = Dev(state)
    try:
        dev.wait_ready()
        key = dev.key
        assert checksum_ok(key)
        key_file = state / "dev-key"
        assert key_file.read_text().strip() == key
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        assert (
            f'curl -H "Authorization: Bearer {key}" {dev.url}/api/v1/services/social/accounts' in dev.output
        )
        assert_private(state)
        assert_kube_needs_the_kubeconfig(dev)

        tenant = in_cluster(state, lambda c: c.get(TENANTS, "demo"))
        assert tenant["spec"]["sandboxNamespace"] == "demo-sandbox"
        expected = [(i + 1, p, n, "active") for i, (p, n) in enumerate(DEMO_ACCOUNTS)]
        assert demo_accounts(state) == expected
        listed = api_accounts(dev.url, key)
        assert [(a["id"], a["platform"], a["display_name"], a["status"]) for a in listed] == expected

        assert dev.stop(signal.SIGTERM) == 0
        assert dev.output.rstrip().endswith("socialpub dev: stopped")
        assert "Traceback" not in dev.log.read_text()

        # A restart prints the same key and creates nothing twice; the kubeconfig keeps working.
        dev = Dev(state).wait_ready()
        assert dev.key == key
        assert_private(state)
        assert_kube_needs_the_kubeconfig(dev)
        assert demo_accounts(state) == expected
        (record,) = in_cluster(state, lambda c: list_keys(c, tenant="demo"))
        assert record.id == key_id(hash_key(key))
        assert [a["id"] for a in api_accounts(dev.url, key)] == [1, 2, 3]

        # A revoked dev key is replaced on the next start.
        in_cluster(state, lambda c: revoke_key(c, tenant="demo", key_id_=record.id))
        assert dev.stop(signal.SIGINT) == 0

        dev = Dev(state).wait_ready()
        new_key = dev.key
        assert new_key != key
        assert checksum_ok(new_key)
        assert key_file.read_text().strip() == new_key
        assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
        records = in_cluster(state, lambda c: list_keys(c, tenant="demo"))
        assert sorted((r.id, r.active) for r in records) == sorted(
            [(key_id(hash_key(key)), False), (key_id(hash_key(new_key)), True)]
        )
        assert demo_accounts(state) == expected
        assert dev.stop() == 0
        assert "Traceback" not in dev.log.read_text()
    finally:
        dev.kill()


def test_a_busy_port_is_a_clean_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [*CLI, "dev", "--state-dir", str(tmp_path / "state"), "--port", str(port)],
            capture_output=True,
            text=True,
            env=_env(),
            timeout=60,
        )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert (
        proc.stderr.strip().splitlines()[-1]
        == f"socialpub: cannot listen on 127.0.0.1:{port}: Address already in use"
    )
