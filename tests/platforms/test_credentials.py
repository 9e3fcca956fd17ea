"""Live accounts' tokens: encrypted by the CLI, decrypted by the operator per call, rotated;
bound to the account's namespace, uid and mode; the key ring from a file, the environment or the
Secret, followed by a running operator."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from socialpub.cli import main
from socialpub.crypto import KeyRing, associated_data, legacy_associated_data
from socialpub.kube.client import KubeClient
from socialpub.kube.credentials import read_keyring, read_token, write_keyring, write_token
from socialpub.kube.resources import ACCOUNTS, SECRETS
from socialpub.kube.tenants import ensure_tenant
from socialpub.operator.live import KeyRingSource, LiveAdapters
from socialpub.operator.tenants import Tenancy
from socialpub.platforms.base import ReconnectError, TransientError
from socialpub.platforms.registry import PlatformAdapters
from socialpub.platforms.settings import PlatformSettings
from tests.kube_harness import KubeHarness


@dataclass
class Acme:
    """Tenant ``acme`` on the test's own embedded API, driven the way a person does: the CLI for
    keys and accounts, the operator's live adapters to read a token back."""

    kube: KubeHarness
    client: KubeClient
    tmp_path: Path
    capsys: pytest.CaptureFixture[str]

    def call(self, coro: Any) -> Any:
        return self.kube.call(coro)

    def run(self, *args: str) -> tuple[int, str, str]:
        """``socialpub <args>`` against this API: exit code, stdout, stderr."""
        self.capsys.readouterr()
        code = 0
        try:
            main(["--kubeconfig", str(self.kube.kubeconfig), *args])
        except SystemExit as exc:
            code = int(exc.code or 0)
        out, err = self.capsys.readouterr()
        return code, out, err

    def add_account(self, token: str, platform: str = "facebook") -> int:
        """``socialpub accounts add`` with ``token`` in a file; the new account's id."""
        token_file = self.tmp_path / f"{token}.txt"
        token_file.write_text(token)
        code, out, err = self.run(
            "accounts", "add", "--tenant", "acme", "--platform", platform,
            "--external-id", "1234", "--display-name", "Acme", "--token-file", str(token_file),
        )  # fmt: skip
        assert code == 0, err
        return int(out.strip())

    def account(self, account_id: int) -> dict[str, Any]:
        obj: dict[str, Any] = self.call(self.client.get(ACCOUNTS, f"account-{account_id}", "acme-live"))
        return obj

    def new_account(self, token: str) -> dict[str, Any]:
        """A Facebook account added with ``token``, as stored."""
        return self.account(self.add_account(token))

    def live_adapters(self, keys: KeyRingSource | None = None) -> LiveAdapters:
        """The operator's live adapters, with its view of the tenants' namespaces."""
        return LiveAdapters(
            self.client,
            PlatformAdapters(PlatformSettings()),
            keys or KeyRingSource.from_env(self.client),
            mode_of=Tenancy(self.client).mode_of,
        )

    def token_of(self, obj: dict[str, Any], adapters: LiveAdapters | None = None) -> str:
        """The token the operator reads for ``obj``: with ``adapters`` (a running operator's), or
        a fresh operator's, closed after."""
        keep = adapters is not None
        live = adapters or self.live_adapters()

        async def go() -> str:
            try:
                return await live.token(obj)
            finally:
                if not keep:
                    await live.aclose()

        result: str = self.call(go())
        return result

    def same_name(self, obj: dict[str, Any], namespace: str, spec: dict[str, Any]) -> dict[str, Any]:
        """An account made by hand with ``obj``'s name and labels in ``namespace`` (a new uid)."""
        meta = obj["metadata"]
        manifest = {
            "apiVersion": ACCOUNTS.api_version,
            "kind": ACCOUNTS.kind,
            "metadata": {"name": meta["name"], "namespace": namespace, "labels": meta["labels"]},
            "spec": spec,
        }
        made: dict[str, Any] = self.call(self.client.create(ACCOUNTS, manifest, namespace))
        return made

    def stolen(self, obj: dict[str, Any]) -> str:
        """The sealed token in ``obj``'s credentials Secret (base64, as stored)."""
        secret = self.call(self.client.get(SECRETS, f"{obj['metadata']['name']}-credentials", "acme-live"))
        return str(secret["data"]["token"])


@pytest.fixture
def acme(kube: KubeHarness, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> Iterator[Acme]:
    client = KubeClient.from_config(str(kube.kubeconfig))
    kube.call(ensure_tenant(client, "acme"))
    yield Acme(kube, client, tmp_path, capsys)
    kube.call(client.aclose())


def binding(obj: dict[str, Any]) -> bytes:
    meta = obj["metadata"]
    return associated_data(namespace=meta["namespace"], uid=meta["uid"], mode="live")


def test_add_without_a_key_ring_fails_clearly(acme: Acme, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOCIALPUB_ENCRYPTION_KEY", raising=False)
    (acme.tmp_path / "t").write_text("tok")
    code, _, err = acme.run(
        "accounts", "add", "--tenant", "acme", "--platform", "linkedin",
        "--external-id", "1", "--display-name", "A", "--token-file", str(acme.tmp_path / "t"),
    )  # fmt: skip
    assert code == 1
    assert "socialpub encryption init" in err


def test_add_rotate_and_reconnect(acme: Acme, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SOCIALPUB_ENCRYPTION_KEY", raising=False)
    code, out, _ = acme.run("encryption", "init")
    assert code == 0
    text, _ = acme.call(read_keyring(acme.client))
    k1 = KeyRing.from_json(text).active
    assert k1.startswith("k-")
    assert k1 in out
    assert acme.run("encryption", "init")[0] == 0  # idempotent

    first = acme.add_account("token-one")
    second = acme.add_account("token-two", platform="instagram")
    obj = acme.account(first)
    assert obj["spec"]["credentialsSecretRef"] == {"name": f"account-{first}-credentials", "key": "token"}
    assert obj["status"]["state"] == "active"
    assert obj["status"]["lifecycleEvents"][0]["type"] == "social.account_connected"
    sealed = acme.call(read_token(acme.client, obj))
    assert sealed.startswith(f"v2:{k1}:")
    assert acme.token_of(obj) == "token-one"
    code, out, _ = acme.run("accounts", "list", "--tenant", "acme", "-o", "json")
    assert code == 0
    assert {"live"} == {row["mode"] for row in json.loads(out)}

    # An operator that loaded the ring before the rotation picks up the new key when it meets it.
    running = acme.live_adapters()
    assert acme.token_of(obj, running) == "token-one"
    code, out, err = acme.run("encryption", "rotate", "--new-key")
    assert code == 0, err
    text, _ = acme.call(read_keyring(acme.client))
    ring = KeyRing.from_json(text)
    k2 = ring.active
    assert f"re-encrypted 2 of 2 token(s) under key {k2}" in out
    assert k2 != k1
    assert sorted(ring.keys) == sorted([k1, k2])
    for account_id, token in ((first, "token-one"), (second, "token-two")):
        obj = acme.account(account_id)
        assert acme.call(read_token(acme.client, obj)).startswith(f"v2:{k2}:")
        assert acme.token_of(obj) == token
    assert acme.token_of(acme.account(first), running) == "token-one"
    acme.call(running.aclose())
    assert "re-encrypted 0 of 2" in acme.run("encryption", "rotate")[1]

    (acme.tmp_path / "new").write_text("token-three\n")
    code, _, err = acme.run(
        "accounts",
        "set-token",
        "--tenant",
        "acme",
        "--token-file",
        str(acme.tmp_path / "new"),
        str(first),
    )
    assert code == 0, err
    assert acme.token_of(acme.account(first)) == "token-three"


def test_a_token_copied_to_another_account_does_not_decrypt(
    acme: Acme, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOCIALPUB_ENCRYPTION_KEY", KeyRing.generate("k1").to_json())
    one = acme.new_account("token-one")
    two = acme.new_account("token-two")
    stolen = acme.stolen(one)
    acme.call(
        acme.client.patch(
            SECRETS, f"{two['metadata']['name']}-credentials", {"data": {"token": stolen}}, "acme-live"
        )
    )
    with pytest.raises(ReconnectError) as caught:
        acme.token_of(two)
    assert caught.value.code == "credentials_unreadable"
    acme.call(acme.client.delete(SECRETS, f"{two['metadata']['name']}-credentials", "acme-live"))
    with pytest.raises(ReconnectError) as caught:
        acme.token_of(two)
    assert caught.value.code == "credentials_missing"


def test_a_key_the_ring_does_not_hold_is_transient(acme: Acme, monkeypatch: pytest.MonkeyPatch) -> None:
    other = KeyRing.generate("k9")
    monkeypatch.setenv("SOCIALPUB_ENCRYPTION_KEY", other.to_json())
    obj = acme.new_account("token-one")
    monkeypatch.setenv("SOCIALPUB_ENCRYPTION_KEY", KeyRing.generate("k1").to_json())
    with pytest.raises(TransientError) as caught:
        acme.token_of(obj)
    assert caught.value.code == "encryption_key_unknown"
    sealed = acme.call(read_token(acme.client, obj))
    assert base64.urlsafe_b64decode(sealed.split(":", 2)[2])  # still the k9 ciphertext, untouched
    assert other.decrypt(sealed, binding(obj)) == b"token-one"


# Issue 9 item 9: a ciphertext is bound to its account's namespace, uid and mode.


def test_a_token_copied_to_the_same_name_in_the_sandbox_namespace_does_not_decrypt(
    acme: Acme, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOCIALPUB_ENCRYPTION_KEY", KeyRing.generate("k1").to_json())
    live = acme.new_account("token-one")
    name = live["metadata"]["name"]
    copy = acme.same_name(live, "acme-sandbox", {**live["spec"], "sandbox": False})
    acme.call(
        acme.client.create(
            SECRETS,
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": f"{name}-credentials", "namespace": "acme-sandbox"},
                "data": {"token": acme.stolen(live)},
            },
            "acme-sandbox",
        )
    )
    sealed = acme.call(read_token(acme.client, copy))
    ring = KeyRing.from_env()
    assert ring is not None
    with pytest.raises(Exception, match="does not match"):
        ring.decrypt(sealed, binding(copy))  # the binding alone refuses it
    with pytest.raises(ReconnectError) as caught:
        acme.token_of(copy)  # and the operator never uses a token outside a live namespace
    assert caught.value.code == "credentials_unusable"


def test_a_token_kept_from_a_deleted_account_does_not_decrypt_for_its_namesake(
    acme: Acme, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SOCIALPUB_ENCRYPTION_KEY", KeyRing.generate("k1").to_json())
    old = acme.new_account("token-one")
    kept = base64.b64decode(acme.stolen(old)).decode()
    name = old["metadata"]["name"]
    acme.call(acme.client.delete(ACCOUNTS, name, "acme-live"))
    recreated = acme.same_name(old, "acme-live", old["spec"])
    assert recreated["metadata"]["uid"] != old["metadata"]["uid"]
    acme.call(write_token(acme.client, recreated, kept))
    with pytest.raises(ReconnectError) as caught:
        acme.token_of(recreated)
    assert caught.value.code == "credentials_unreadable"
    assert "connect it again" in caught.value.message


def test_a_legacy_token_is_refused_until_rotate_reseals_it(
    acme: Acme, monkeypatch: pytest.MonkeyPatch
) -> None:
    ring = KeyRing.generate("k1")
    monkeypatch.setenv("SOCIALPUB_ENCRYPTION_KEY", ring.to_json())
    obj = acme.new_account("token-one")
    name = obj["metadata"]["name"]
    # What the CLI before issue 9 wrote: v1, bound to the tenant and the account's name only.
    legacy = ring.encrypt(b"token-one", legacy_associated_data("acme", name)).replace("v2:", "v1:", 1)
    acme.call(write_token(acme.client, obj, legacy))
    with pytest.raises(ReconnectError) as caught:
        acme.token_of(obj)
    assert caught.value.code == "credentials_legacy"
    assert "socialpub encryption rotate" in caught.value.message
    # The operator parks the account (Ready False, TokenNeedsResealing); rotate makes it usable.
    parked = {"state": "expired", "conditions": [{
        "type": "Ready", "status": "False", "reason": "TokenNeedsResealing", "message": "m",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }]}  # fmt: skip
    acme.call(acme.client.patch(ACCOUNTS, name, {"status": parked}, "acme-live", subresource="status"))
    code, out, err = acme.run("encryption", "rotate")
    assert code == 0, err
    assert "re-encrypted 1 of 1 token(s) under key k1" in out
    assert acme.call(read_token(acme.client, obj)).startswith("v2:k1:")
    assert acme.token_of(obj) == "token-one"
    assert (
        acme.account(int(obj["metadata"]["labels"]["social.softsolz.uk/id"]))["status"]["state"] == "active"
    )


# Issue 9 items 8 and 10d: the key ring from a file, and a running operator follows its source.


def test_a_key_removed_from_the_secret_stops_decrypting_without_a_restart(
    acme: Acme, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SOCIALPUB_ENCRYPTION_KEY", raising=False)
    monkeypatch.delenv("SOCIALPUB_ENCRYPTION_KEYRING_FILE", raising=False)
    assert acme.run("encryption", "init")[0] == 0
    obj = acme.new_account("token-one")
    now = [1000.0]
    running = acme.live_adapters(KeyRingSource(acme.client, max_age=10.0, clock=lambda: now[0]))
    assert acme.token_of(obj, running) == "token-one"

    text, version = acme.call(read_keyring(acme.client))
    ring = KeyRing.from_json(text)
    replacement = KeyRing.generate("k2")  # k1 removed (say, it leaked), k2 the only key
    acme.call(write_keyring(acme.client, replacement.to_json(), resource_version=version))
    now[0] += 11.0  # the next use after the copy's max age reads the Secret again
    with pytest.raises(TransientError) as caught:
        acme.token_of(obj, running)
    assert caught.value.code == "encryption_key_unknown"
    assert ring.decrypt(acme.call(read_token(acme.client, obj)), binding(obj)) == b"token-one"  # k1 sealed it
    acme.call(running.aclose())


def test_the_key_ring_from_a_file_seals_decrypts_rotates_and_follows_the_file(
    acme: Acme, monkeypatch: pytest.MonkeyPatch
) -> None:
    keyring_file = acme.tmp_path / "keyring.json"
    first = KeyRing.generate("k1")
    keyring_file.write_text(first.to_json())
    monkeypatch.setenv("SOCIALPUB_ENCRYPTION_KEYRING_FILE", str(keyring_file))
    monkeypatch.setenv("SOCIALPUB_ENCRYPTION_KEY", KeyRing.generate("k9").to_json())  # the file wins
    code, _, err = acme.run("encryption", "init")
    assert code == 0
    assert "keyring.json" in err
    assert acme.call(read_keyring(acme.client)) == (None, None)  # no Secret beside the ciphertexts

    obj = acme.new_account("token-one")
    assert first.decrypt(acme.call(read_token(acme.client, obj)), binding(obj)) == b"token-one"
    running = acme.live_adapters()
    assert acme.token_of(obj, running) == "token-one"

    # Rotation with a file: --new-key cannot write it, and says what to do instead.
    code, _, err = acme.run("encryption", "rotate", "--new-key")
    assert code == 1
    assert "add-key" in err
    code, out, _ = acme.run("encryption", "add-key", "--from", str(keyring_file))
    assert code == 0
    second = KeyRing.from_json(out)
    k2 = second.active
    assert k2.startswith("k-")
    assert sorted(second.keys) == sorted(["k1", k2])
    keyring_file.write_text(out)
    code, out, err = acme.run("encryption", "rotate")
    assert code == 0, err
    assert f"re-encrypted 1 of 1 token(s) under key {k2}" in out
    assert acme.token_of(obj, running) == "token-one"

    # Dropping k1 from the file is seen at the next use; a token still under k1 stops decrypting.
    legacy_k1 = first.encrypt(b"token-two", binding(obj))
    acme.call(write_token(acme.client, obj, legacy_k1))
    assert acme.token_of(obj, running) == "token-two"
    keyring_file.write_text(KeyRing({k2: second.keys[k2]}, k2).to_json())
    with pytest.raises(TransientError) as caught:
        acme.token_of(obj, running)
    assert caught.value.code == "encryption_key_unknown"
    assert "keyring.json" in caught.value.message
    acme.call(running.aclose())
