"""The admin CLI (``socialpub tenants|keys|accounts``) and ``socialpub api``, run as real processes.

Commands run ``python -m socialpub.cli`` in a subprocess with ``KUBECONFIG`` pointing at the
embedded Kubernetes API, and what they did is read back from that API. Setup goes straight
through :mod:`socialpub.kube`, and variations of input errors run ``main()`` in this process, so
that the suite pays for an interpreter start only where the process itself is under test.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from subprocess import PIPE
from typing import Any

import httpx
import pytest

from socialpub.cli import main
from socialpub.crypto import KeyRing
from socialpub.kube.client import KubeClient
from socialpub.kube.keys import KEYS_NAMESPACE, ApiKeyRecord, find_key
from socialpub.kube.keys import create_key as kube_create_key
from socialpub.kube.namespaces import ensure_namespace
from socialpub.kube.resources import (
    ACCOUNTS,
    LABEL_ID,
    LABEL_MODE,
    LABEL_TENANT,
    NAMESPACES,
    SECRETS,
    SYSTEM_NAMESPACE,
    TENANTS,
)
from socialpub.kube.tenants import LABEL_TENANT_UID, Tenant, ensure_tenant
from socialpub.models.keys import Mode, Scope, checksum_ok, hash_key, key_id
from tests.kube_harness import KubeHarness

CLI = (sys.executable, "-m", "socialpub.cli")
ALL_SCOPES = ["service.social.view", "service.social.manage", "service.social.publish"]


def _env(kubeconfig: Path | str) -> dict[str, str]:
    return {**os.environ, "KUBECONFIG": str(kubeconfig)}


def socialpub(kubeconfig: Path | str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``socialpub ARGS`` as a user would, against the cluster ``kubeconfig`` names."""
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, env=_env(kubeconfig), timeout=timeout
    )


def socialpub_all(
    kubeconfig: Path | str, *commands: Sequence[str], timeout: float = 60
) -> list[subprocess.CompletedProcess[str]]:
    """Run independent commands side by side (each process spends most of its time importing)."""
    procs = [
        subprocess.Popen([*CLI, *c], stdout=PIPE, stderr=PIPE, text=True, env=_env(kubeconfig))
        for c in commands
    ]
    results = []
    for command, proc in zip(commands, procs, strict=True):
        out, err = proc.communicate(timeout=timeout)
        results.append(subprocess.CompletedProcess([*CLI, *command], proc.returncode, out, err))
    return results


def in_process(kubeconfig: Path | str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``main(ARGS)`` here: the same code without the interpreter start, for checks of input
    that never reach the cluster (the subprocess runs above cover the entry point itself)."""
    out, err = io.StringIO(), io.StringIO()
    code: int = 0
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(["--kubeconfig", str(kubeconfig), *args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    return subprocess.CompletedProcess(["socialpub", *args], code, out.getvalue(), err.getvalue())


def ok(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    return proc.stdout


def failed(proc: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    """Assert a clean failure: exit ``code``, one line on stderr naming ``words``, no traceback."""
    assert proc.returncode == code, f"exit {proc.returncode}\nstdout: {proc.stdout}\nstderr: {proc.stderr}"
    assert "Traceback" not in proc.stderr
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    if not lines[-1].startswith("usage:") and " error: " not in lines[-1]:  # ours, not argparse's
        assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[-1], proc.stderr
    return lines[-1]


def in_cluster(kube: KubeHarness, work: Callable[[KubeClient], Awaitable[Any]]) -> Any:
    """Run ``work`` with a client of the embedded API (to set up, or to check what the CLI did)."""

    async def go() -> Any:
        client = KubeClient.from_config(str(kube.kubeconfig))
        try:
            return await work(client)
        finally:
            await client.aclose()

    return asyncio.run(go())


def tenant(kube: KubeHarness, name: str) -> Tenant:
    result: Tenant = in_cluster(kube, lambda c: ensure_tenant(c, name))
    return result


def new_key(kube: KubeHarness, tenant_name: str, *scopes: Scope) -> str:
    key, _ = in_cluster(kube, lambda c: kube_create_key(c, tenant=tenant_name, mode=Mode.TEST, scopes=scopes))
    assert isinstance(key, str)
    return key


def listed_keys(kube: KubeHarness, tenant_name: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = json.loads(
        ok(socialpub(kube.kubeconfig, "keys", "list", "--tenant", tenant_name, "-o", "json"))
    )
    return rows


async def _to_legacy(
    client: KubeClient,
    key: str,
    *,
    created_at: str | None = None,
    keep_copy: bool = False,
    revoked_at: str | None = None,
) -> None:
    """Put ``key``'s record where an older CLI kept it (socialpub-system, no tenant uid),
    optionally with another ``createdAt`` or a revocation, and keeping the new copy or not."""
    name = f"apikey-{key_id(hash_key(key))}"
    secret = await client.get(SECRETS, name, KEYS_NAMESPACE)
    if not keep_copy:
        await client.delete(SECRETS, name, KEYS_NAMESPACE)
    data = {k: v for k, v in secret["data"].items() if k != "tenantUid"}
    if created_at is not None:
        data["createdAt"] = base64.b64encode(created_at.encode()).decode()
    if revoked_at is not None:
        data["revokedAt"] = base64.b64encode(revoked_at.encode()).decode()
    legacy = {k: secret[k] for k in ("apiVersion", "kind", "type")}
    legacy["metadata"] = {"name": name, "labels": secret["metadata"]["labels"]}
    await ensure_namespace(client, SYSTEM_NAMESPACE)
    await client.create(SECRETS, {**legacy, "data": data}, SYSTEM_NAMESPACE)


class TestTenants:
    def test_create_is_idempotent_and_makes_labelled_namespaces(self, shared_kube: KubeHarness) -> None:
        cfg = shared_kube.kubeconfig
        first = ok(socialpub(cfg, "tenants", "create", "acme", "--display-name", "Acme"))
        again = ok(socialpub(cfg, "tenants", "create", "acme"))
        assert first == again
        assert "acme-live" in first
        assert "acme-sandbox" in first

        obj = in_cluster(shared_kube, lambda c: c.get(TENANTS, "acme"))
        assert obj["spec"] == {
            "displayName": "Acme",
            "liveNamespace": "acme-live",
            "sandboxNamespace": "acme-sandbox",
        }
        live = in_cluster(shared_kube, lambda c: c.get(NAMESPACES, "acme-live"))
        sandbox = in_cluster(shared_kube, lambda c: c.get(NAMESPACES, "acme-sandbox"))
        uid = obj["metadata"]["uid"]  # the stamp: whose namespaces these are (issue 9 review, 3)
        assert live["metadata"]["labels"] == {LABEL_TENANT: "acme", LABEL_MODE: "live", LABEL_TENANT_UID: uid}
        assert sandbox["metadata"]["labels"] == {
            LABEL_TENANT: "acme",
            LABEL_MODE: "test",
            LABEL_TENANT_UID: uid,
        }

        table, as_json = socialpub_all(cfg, ("tenants", "list"), ("tenants", "list", "-o", "json"))
        assert ok(table).splitlines()[0].split() == [
            "NAME",
            "DISPLAY",
            "NAME",
            "LIVE",
            "NAMESPACE",
            "SANDBOX",
            "NAMESPACE",
        ]
        assert ["acme", "Acme", "acme-live", "acme-sandbox"] in [
            line.split() for line in table.stdout.splitlines()
        ]
        assert {
            "name": "acme",
            "display_name": "Acme",
            "live_namespace": "acme-live",
            "sandbox_namespace": "acme-sandbox",
        } in json.loads(ok(as_json))

    def test_bad_names_are_refused(self, shared_kube: KubeHarness) -> None:
        failed(socialpub(shared_kube.kubeconfig, "tenants", "create", "Bad_Name"), 2, "invalid tenant name")
        for name in ("trailing-", "x" * 41, "a.b"):
            failed(in_process(shared_kube.kubeconfig, "tenants", "create", name), 2, "invalid tenant name")

    def test_delete_revokes_its_keys_and_keeps_its_namespaces(self, shared_kube: KubeHarness) -> None:
        tenant(shared_kube, "leaving")
        key = new_key(shared_kube, "leaving", Scope.VIEW)
        out = socialpub(shared_kube.kubeconfig, "tenants", "delete", "leaving")
        assert "revoked 1 key" in ok(out)
        assert "kept namespaces leaving-live and leaving-sandbox" in out.stderr
        assert "--adopt-namespaces" in out.stderr
        record = in_cluster(shared_kube, lambda c: find_key(c, key))
        assert isinstance(record, ApiKeyRecord)
        assert record.revoked_at
        names = {n["metadata"]["name"] for n in in_cluster(shared_kube, lambda c: c.list(NAMESPACES))[0]}
        assert {"leaving-live", "leaving-sandbox"} <= names
        tenants = in_cluster(shared_kube, lambda c: c.list(TENANTS))[0]
        assert "leaving" not in [t["metadata"]["name"] for t in tenants]
        failed(in_process(shared_kube.kubeconfig, "tenants", "delete", "leaving"), 1, "no tenant 'leaving'")

    def test_a_tenant_made_again_adopts_the_old_namespaces_only_when_asked(
        self, shared_kube: KubeHarness
    ) -> None:
        cfg = shared_kube.kubeconfig
        ok(socialpub(cfg, "tenants", "create", "phoenix"))
        ok(socialpub(cfg, "accounts", "add-sandbox", "--tenant", "phoenix", "--platform", "linkedin",
                     "--display-name", "Old"))  # fmt: skip
        ok(socialpub(cfg, "tenants", "delete", "phoenix"))
        refused = failed(in_process(cfg, "tenants", "create", "phoenix"), 1, "--adopt-namespaces")
        assert "phoenix-sandbox" in refused
        assert "1 account(s)" in refused
        assert "phoenix" not in [
            t["metadata"]["name"] for t in in_cluster(shared_kube, lambda c: c.list(TENANTS))[0]
        ]
        adopted = in_process(cfg, "tenants", "create", "phoenix", "--adopt-namespaces")
        assert "tenant phoenix" in ok(adopted)
        assert "warning: adopted phoenix-sandbox" in adopted.stderr
        assert "1 account(s)" in adopted.stderr
        uid = in_cluster(shared_kube, lambda c: c.get(TENANTS, "phoenix"))["metadata"]["uid"]
        for namespace in ("phoenix-live", "phoenix-sandbox"):
            ns = in_cluster(shared_kube, lambda c, namespace=namespace: c.get(NAMESPACES, namespace))
            assert ns["metadata"]["labels"][LABEL_TENANT_UID] == uid

    def test_delete_with_its_namespaces(self, shared_kube: KubeHarness) -> None:
        tenant(shared_kube, "erased")
        out = ok(in_process(shared_kube.kubeconfig, "tenants", "delete", "erased", "--delete-namespaces"))
        assert "deleting namespaces erased-live and erased-sandbox" in out

        def phases(items: list[dict[str, Any]]) -> dict[str, Any]:
            return {n["metadata"]["name"]: (n.get("status") or {}).get("phase") for n in items}

        left = phases(in_cluster(shared_kube, lambda c: c.list(NAMESPACES))[0])
        assert left.get("erased-live") in (None, "Terminating")
        assert left.get("erased-sandbox") in (None, "Terminating")


class TestKeys:
    def test_create_prints_only_the_key_and_stores_only_its_hash(self, shared_kube: KubeHarness) -> None:
        tenant(shared_kube, "keyed")
        create = ("keys", "create", "--tenant", "keyed")
        test, live = socialpub_all(
            shared_kube.kubeconfig,
            (
                *create,
                "--mode",
                "test",
                "--scope",
                "service.social.view",
                "--scope",
                "service.social.publish",
            ),
            (*create, "--mode", "live", "--scope", "service.social.manage"),
        )
        key = ok(test).strip()
        assert test.stdout == key + "\n"
        assert key.startswith("sk_test_")
        assert checksum_ok(key)
        assert key not in test.stderr
        assert key_id(hash_key(key)) in test.stderr  # the id, to find it in `keys list`
        assert ok(live).strip().startswith("sk_live_")
        assert checksum_ok(live.stdout.strip())

        digest = hash_key(key)
        secret = in_cluster(shared_kube, lambda c: c.get(SECRETS, f"apikey-{key_id(digest)}", KEYS_NAMESPACE))
        stored = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
        assert stored["hash"] == digest
        assert stored["tenant"] == "keyed"
        keyed = in_cluster(shared_kube, lambda c: c.get(TENANTS, "keyed"))
        assert stored["tenantUid"] == keyed["metadata"]["uid"]
        assert stored["mode"] == "test"
        assert stored["scopes"].split() == ["service.social.publish", "service.social.view"]
        assert stored["createdAt"]
        everything = json.dumps(secret) + json.dumps(stored)
        assert key not in everything
        assert key[len("sk_test_") :] not in everything

    def test_list_then_revoke(self, shared_kube: KubeHarness) -> None:
        tenant(shared_kube, "revoker")
        key = new_key(shared_kube, "revoker", *Scope)
        id_ = key_id(hash_key(key))

        table = ok(socialpub(shared_kube.kubeconfig, "keys", "list", "--tenant", "revoker"))
        header, row = (line.split() for line in table.splitlines())
        assert header == ["ID", "MODE", "SCOPES", "CREATED", "REVOKED"]
        assert row[:3] == [id_, "test", ",".join(sorted(ALL_SCOPES))]
        assert row[4] == "-"
        assert key not in table
        assert hash_key(key) not in table

        out = ok(socialpub(shared_kube.kubeconfig, "keys", "revoke", "--tenant", "revoker", id_))
        assert id_ in out
        assert "revoked" in out
        as_json, again = socialpub_all(
            shared_kube.kubeconfig,
            ("keys", "list", "--tenant", "revoker", "-o", "json"),
            ("keys", "revoke", "--tenant", "revoker", id_),
        )
        (listed,) = json.loads(ok(as_json))
        assert set(listed) == {"id", "mode", "scopes", "created_at", "revoked_at"}
        assert listed["id"] == id_
        assert listed["scopes"] == sorted(ALL_SCOPES)
        assert listed["revoked_at"]
        # Revoking twice is harmless, and the first revocation time stays.
        assert listed["revoked_at"] in ok(again)

    def test_another_tenants_key_cannot_be_revoked(self, shared_kube: KubeHarness) -> None:
        tenant(shared_kube, "owner")
        tenant(shared_kube, "intruder")
        id_ = key_id(hash_key(new_key(shared_kube, "owner", Scope.VIEW)))
        failed(
            socialpub(shared_kube.kubeconfig, "keys", "revoke", "--tenant", "intruder", id_), 1, "has no key"
        )
        (listed,) = listed_keys(shared_kube, "owner")
        assert listed["revoked_at"] is None

    def test_records_in_the_old_place_are_moved_and_bound(self, shared_kube: KubeHarness) -> None:
        """Records an older CLI left in socialpub-system (no tenant uid) move to the keys
        namespace: bound to their tenant if it is the one they were made for, else revoked.

        Which is decided by the API server's creationTimestamps alone, never by the record's
        ``createdAt`` (the CLI machine's clock, issue 9 review item 13): a record written by a CLI
        whose clock was behind (2001) or ahead (2099) is still bound to the tenant it was made for.
        """
        tenant(shared_kube, "upgraded")
        tenant(shared_kube, "ghost")
        keys = [new_key(shared_kube, "upgraded", Scope.VIEW) for _ in range(2)]
        ghost_key = new_key(shared_kube, "ghost", Scope.VIEW)

        in_cluster(shared_kube, lambda c: _to_legacy(c, keys[0], created_at="2099-01-01T00:00:00Z"))
        in_cluster(shared_kube, lambda c: _to_legacy(c, keys[1], created_at="2001-01-01T00:00:00Z"))
        in_cluster(shared_kube, lambda c: _to_legacy(c, ghost_key))
        in_cluster(shared_kube, lambda c: c.delete(TENANTS, "ghost"))  # its tenant is gone
        out = ok(socialpub(shared_kube.kubeconfig, "keys", "migrate"))
        assert "moved or bound" in out
        ahead, behind, ghost = (
            in_cluster(shared_kube, lambda c, k=k: find_key(c, k)) for k in (*keys, ghost_key)
        )
        uid = in_cluster(shared_kube, lambda c: c.get(TENANTS, "upgraded"))["metadata"]["uid"]
        for record in (ahead, behind):
            assert record.tenant_uid == uid
            assert record.active
        assert ghost.tenant_uid is None
        assert ghost.revoked_at
        legacy = in_cluster(shared_kube, lambda c: c.list(SECRETS, SYSTEM_NAMESPACE))[0]
        assert not [s for s in legacy if s["metadata"]["name"].startswith("apikey-")]
        assert "0 key record(s)" in ok(socialpub(shared_kube.kubeconfig, "keys", "migrate"))

    def test_a_revocation_made_between_a_crashed_moves_copy_and_delete_is_kept(
        self, shared_kube: KubeHarness
    ) -> None:
        """A migrate that crashed after copying a record left both copies; the key was then
        revoked on the legacy copy (an older CLI). The next migrate must keep the revocation
        (issue 9 review, item 13), not skip the existing copy and delete the revoked one."""
        tenant(shared_kube, "crashy")
        key = new_key(shared_kube, "crashy", Scope.VIEW)
        in_cluster(
            shared_kube, lambda c: _to_legacy(c, key, keep_copy=True, revoked_at="2026-01-01T00:00:00Z")
        )
        ok(socialpub(shared_kube.kubeconfig, "keys", "migrate"))
        record = in_cluster(shared_kube, lambda c: find_key(c, key))
        assert record.revoked_at == "2026-01-01T00:00:00Z"
        legacy = in_cluster(shared_kube, lambda c: c.list(SECRETS, SYSTEM_NAMESPACE))[0]
        assert f"apikey-{key_id(hash_key(key))}" not in [s["metadata"]["name"] for s in legacy]

    def test_bad_input_is_refused(self, shared_kube: KubeHarness) -> None:
        tenant(shared_kube, "strict")
        create = ("keys", "create", "--tenant", "strict")
        cfg = shared_kube.kubeconfig
        failed(socialpub(cfg, *create, "--mode", "test"), 2, "the following arguments are required: --scope")
        failed(in_process(cfg, *create, "--mode", "test", "--scope", "everything"), 2, "invalid choice")
        failed(in_process(cfg, *create, "--mode", "prod", "--scope", ALL_SCOPES[0]), 2, "invalid choice")
        failed(in_process(cfg, "keys", "revoke", "--tenant", "strict", "not-an-id"), 2, "not a key id")
        failed(in_process(cfg, "keys", "revoke", "--tenant", "strict", "0123456789abcdef"), 1, "has no key")
        assert listed_keys(shared_kube, "strict") == []


class TestAccounts:
    def test_add_sandbox_prints_the_id_of_an_active_account(self, shared_kube: KubeHarness) -> None:
        tenant(shared_kube, "social")
        add = ("accounts", "add-sandbox", "--tenant", "social")
        ids = []
        for platform, name in (("linkedin", "Social Co"), ("instagram", "@social")):
            out = ok(socialpub(shared_kube.kubeconfig, *add, "--platform", platform, "--display-name", name))
            assert out.strip().isdigit(), out
            ids.append(int(out))
        assert ids == [1, 2]

        obj = in_cluster(shared_kube, lambda c: c.get(ACCOUNTS, "account-2", "social-sandbox"))
        assert obj["metadata"]["labels"][LABEL_ID] == "2"
        assert obj["spec"] == {
            "platform": "instagram",
            "displayName": "@social",
            "externalId": "sandbox-2",
            "sandbox": True,
        }
        assert obj["status"]["state"] == "active"
        (ready,) = obj["status"]["conditions"]
        assert ready["type"] == "Ready"
        assert ready["status"] == "True"
        assert ready["reason"] == "SandboxAccount"
        assert ready["lastTransitionTime"]

        listing = ok(
            socialpub(shared_kube.kubeconfig, "accounts", "list", "--tenant", "social", "-o", "json")
        )
        assert [(r["id"], r["mode"], r["platform"], r["status"]) for r in json.loads(listing)] == [
            (1, "test", "linkedin", "active"),
            (2, "test", "instagram", "active"),
        ]

    def test_bad_input_is_refused(self, shared_kube: KubeHarness) -> None:
        tenant(shared_kube, "picky")
        add = ("accounts", "add-sandbox", "--tenant", "picky")
        cfg = shared_kube.kubeconfig
        failed(socialpub(cfg, *add, "--platform", "myspace", "--display-name", "x"), 2, "invalid choice")
        failed(in_process(cfg, *add, "--platform", "facebook", "--display-name", "  "), 2, "--display-name")
        failed(
            in_process(cfg, *add, "--platform", "facebook", "--display-name", "x" * 201), 2, "--display-name"
        )
        items, _ = in_cluster(shared_kube, lambda c: c.list(ACCOUNTS, "picky-sandbox"))
        assert items == []


class TestErrors:
    @pytest.mark.parametrize(
        "command",
        [
            ("keys", "list", "--tenant", "nobody"),
            ("keys", "revoke", "--tenant", "nobody", "0123456789abcdef"),
            (
                "accounts",
                "add-sandbox",
                "--tenant",
                "nobody",
                "--platform",
                "linkedin",
                "--display-name",
                "X",
            ),
            ("accounts", "list", "--tenant", "nobody"),
        ],
    )
    def test_unknown_tenant(self, shared_kube: KubeHarness, command: tuple[str, ...]) -> None:
        failed(in_process(shared_kube.kubeconfig, *command), 1, "no tenant 'nobody'")

    def test_unknown_tenant_as_a_process(self, shared_kube: KubeHarness) -> None:
        create = ("keys", "create", "--tenant", "nobody", "--mode", "test", "--scope", "service.social.view")
        failed(
            socialpub(shared_kube.kubeconfig, *create),
            1,
            "no tenant 'nobody'",
            "socialpub tenants create nobody",
        )

    def test_unreachable_cluster_and_missing_kubeconfig(self, tmp_path: Path) -> None:
        port = _free_port()  # nobody listens there
        kubeconfig = tmp_path / "kubeconfig"
        kubeconfig.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "c", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
                    "users": [{"name": "u", "user": {}}],
                    "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}],
                    "current-context": "c",
                }
            )
        )
        missing = tmp_path / "nope"
        listing, creating, no_config = socialpub_all(
            kubeconfig,
            ("tenants", "list"),
            ("tenants", "create", "acme"),
            ("--kubeconfig", str(missing), "tenants", "list"),
        )
        failed(listing, 1, "cannot reach the Kubernetes API", str(port))
        failed(creating, 1, "cannot reach the Kubernetes API", str(port))
        failed(no_config, 1, "cannot load the kubeconfig", str(missing))

    def test_kubeconfig_option_before_or_after_the_command(
        self, shared_kube: KubeHarness, tmp_path: Path
    ) -> None:
        tenant(shared_kube, "optioned")
        cfg = str(shared_kube.kubeconfig)
        before, after = socialpub_all(
            tmp_path / "nope",
            ("--kubeconfig", cfg, "tenants", "list"),
            ("tenants", "list", "--kubeconfig", cfg),
        )
        assert "optioned" in ok(before)
        assert "optioned" in ok(after)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_api_command_refuses_a_missing_kubeconfig(tmp_path: Path) -> None:
    failed(socialpub(tmp_path / "nope", "api", "--port", "0"), 1, "cannot load the kubeconfig")


def test_api_command_serves_the_api(shared_kube: KubeHarness, tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "KUBECONFIG": str(shared_kube.kubeconfig), "SOCIALPUB_PORT": str(port)}
    log = (tmp_path / "api.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "socialpub.cli", "api"], stdout=log, stderr=subprocess.STDOUT, env=env
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, (tmp_path / "api.log").read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, (tmp_path / "api.log").read_text()
            time.sleep(0.1)
        response = httpx.get(f"http://127.0.0.1:{port}/api/v1/services/social/accounts", timeout=5)
        assert response.status_code == 401
    finally:
        proc.terminate()
        proc.wait(15)
        log.close()


class TestKeyRingSource:
    """Issue 9 review, item 4: the CLI takes the key ring from where *its* machine is configured,
    so an admin who forgot ``SOCIALPUB_ENCRYPTION_KEYRING_FILE`` sealed with the dev Secret; both
    rings named their first key ``k1``, so such a token looked decryptable by its key id and
    failed later. Key ids are now unique, and the CLI says which ring sealed."""

    def test_accounts_add_says_which_ring_sealed_and_rings_never_share_an_id(
        self, shared_kube: KubeHarness, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        cfg = shared_kube.kubeconfig
        monkeypatch.delenv("SOCIALPUB_ENCRYPTION_KEY", raising=False)
        monkeypatch.delenv("SOCIALPUB_ENCRYPTION_KEYRING_FILE", raising=False)
        tenant(shared_kube, "sealer")
        token = tmp_path / "token"
        token.write_text("tok\n")
        add = ("accounts", "add", "--tenant", "sealer", "--platform", "linkedin", "--display-name", "S",
               "--token-file", str(token))  # fmt: skip
        ok(in_process(cfg, "encryption", "init"))
        from_secret = in_process(cfg, *add, "--external-id", "1")
        ok(from_secret)
        assert "from the Secret socialpub-system/socialpub-encryption" in from_secret.stderr
        assert "development default" in from_secret.stderr

        made = in_process(cfg, "encryption", "add-key")
        file_ring = KeyRing.from_json(ok(made))
        keyring_file = tmp_path / "ring.json"
        keyring_file.write_text(file_ring.to_json())
        monkeypatch.setenv("SOCIALPUB_ENCRYPTION_KEYRING_FILE", str(keyring_file))
        from_file = in_process(cfg, *add, "--external-id", "2")
        ok(from_file)
        assert f"sealed with key {file_ring.active} from the file {keyring_file}" in from_file.stderr
        assert "development default" not in from_file.stderr
        secret_key = from_secret.stderr.split("sealed with key ")[1].split()[0]
        assert secret_key.startswith("k-")
        assert file_ring.active.startswith("k-")
        assert secret_key != file_ring.active
