"""``socialpub webhooks add|list|rotate-secret|remove`` and ``accounts disconnect``, as subprocesses."""

from __future__ import annotations

import base64
import contextlib
import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from socialpub.cli import main
from socialpub.kube.client import NotFound
from socialpub.kube.resources import ACCOUNTS, SECRETS, WEBHOOK_ENDPOINTS
from socialpub.kube.tenants import ensure_tenant
from socialpub.webhooks import signing
from tests.kube_harness import KubeHarness

CLI = (sys.executable, "-m", "socialpub.cli")


def subprocess_run(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """The real entry point, in its own interpreter."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig)}
    env.pop("SOCIALPUB_WEBHOOK_ALLOW_LOOPBACK", None)
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=60)


def run(kubeconfig: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """``main(ARGS)`` in this process (the interpreter start costs seconds on a busy machine)."""
    out, err = io.StringIO(), io.StringIO()
    code = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(["--kubeconfig", str(kubeconfig), *args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return subprocess.CompletedProcess(["socialpub", *args], code, out.getvalue(), err.getvalue())


def test_webhooks_commands(kube: KubeHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOCIALPUB_WEBHOOK_ALLOW_LOOPBACK", raising=False)
    kube.call(_tenant(kube))
    cfg = kube.kubeconfig

    refused = run(
        cfg, "webhooks", "add", "--tenant", "acme", "--mode", "live", "--url", "http://hooks.example.com/"
    )
    assert refused.returncode == 2
    assert "https" in refused.stderr
    assert refused.stdout == ""
    loopback = run(
        cfg, "webhooks", "add", "--tenant", "acme", "--mode", "test", "--url", "http://127.0.0.1:9/x"
    )
    assert loopback.returncode == 2
    assert "loopback" in loopback.stderr

    added = subprocess_run(
        cfg,
        "webhooks",
        "add",
        "--tenant",
        "acme",
        "--mode",
        "test",
        "--url",
        "http://127.0.0.1:9/hooks",
        "--allow-loopback",
        "--event",
        "social.post_failed",
        "--event",
        "social.post_published",
    )
    assert added.returncode == 0, added.stderr
    secret = added.stdout.strip()
    assert secret.startswith("whsec_")
    assert "\n" not in secret
    assert "shown only this once" in added.stderr
    endpoint = kube.call(_get(kube, WEBHOOK_ENDPOINTS, "webhook-1", "acme-sandbox"))
    assert endpoint["spec"]["events"] == ["social.post_published", "social.post_failed"]
    stored = kube.call(_get(kube, SECRETS, endpoint["spec"]["secretRef"]["name"], "acme-sandbox"))
    assert base64.b64decode(stored["data"]["secret"]).decode() == secret
    assert stored["metadata"]["ownerReferences"][0]["uid"] == endpoint["metadata"]["uid"]

    listed = run(cfg, "webhooks", "list", "--tenant", "acme", "-o", "json")
    assert listed.returncode == 0, listed.stderr
    (row,) = json.loads(listed.stdout)
    assert (row["id"], row["mode"], row["url"]) == (1, "test", "http://127.0.0.1:9/hooks")
    table = run(cfg, "webhooks", "list", "--tenant", "acme")
    assert "post_failed" in table.stdout
    assert secret not in table.stdout + listed.stdout

    rotated = run(cfg, "webhooks", "rotate-secret", "--tenant", "acme", "1")
    assert rotated.returncode == 0, rotated.stderr
    new = rotated.stdout.strip()
    assert new.startswith("whsec_")
    assert new != secret
    stored = kube.call(_get(kube, SECRETS, endpoint["spec"]["secretRef"]["name"], "acme-sandbox"))
    data = {k: base64.b64decode(v).decode() for k, v in stored["data"].items()}
    assert signing.active_secrets(data, "secret", now=time.time()) == [new, secret]

    removed = run(cfg, "webhooks", "remove", "--tenant", "acme", "webhook-1")
    assert removed.returncode == 0, removed.stderr
    for resource, name in (
        (WEBHOOK_ENDPOINTS, "webhook-1"),
        (SECRETS, endpoint["spec"]["secretRef"]["name"]),
    ):
        try:
            kube.call(_get(kube, resource, name, "acme-sandbox"))
        except NotFound:
            continue
        raise AssertionError(f"{name} is still there")
    missing = run(cfg, "webhooks", "remove", "--tenant", "acme", "1")
    assert missing.returncode == 1
    assert "no webhook endpoint" in missing.stderr


def test_accounts_disconnect_records_the_event(kube: KubeHarness) -> None:
    kube.call(_tenant(kube))
    cfg = kube.kubeconfig
    added = run(
        cfg, "accounts", "add-sandbox", "--tenant", "acme", "--platform", "facebook", "--display-name", "A"
    )
    assert added.returncode == 0, added.stderr
    account_id = added.stdout.strip()
    done = run(cfg, "accounts", "disconnect", "--tenant", "acme", account_id)
    assert done.returncode == 0, done.stderr
    assert "disconnected" in done.stdout
    account = kube.call(_get(kube, ACCOUNTS, f"account-{account_id}", "acme-sandbox"))
    assert account["status"]["state"] == "disconnected"
    assert [e["type"] for e in account["status"]["lifecycleEvents"]] == [
        "social.account_connected",
        "social.account_disconnected",
    ]
    again = run(cfg, "accounts", "disconnect", "--tenant", "acme", account_id)
    assert again.returncode == 0
    account = kube.call(_get(kube, ACCOUNTS, f"account-{account_id}", "acme-sandbox"))
    assert len(account["status"]["lifecycleEvents"]) == 2, "no transition, no event"


async def _tenant(kube: KubeHarness) -> None:
    from socialpub.kube.client import KubeClient

    client = KubeClient.from_config(str(kube.kubeconfig))
    try:
        await ensure_tenant(client, "acme")
    finally:
        await client.aclose()


async def _get(kube: KubeHarness, resource: object, name: str, namespace: str) -> dict[str, object]:
    from socialpub.kube.client import KubeClient

    client = KubeClient.from_config(str(kube.kubeconfig))
    try:
        return await client.get(resource, name, namespace)  # type: ignore[arg-type]
    finally:
        await client.aclose()
