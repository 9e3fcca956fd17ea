"""Live accounts' tokens: encrypted by the CLI, decrypted by the operator per call, rotated."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from socialpub.cli import main
from socialpub.crypto import KeyRing, associated_data
from socialpub.kube.client import KubeClient
from socialpub.kube.credentials import read_keyring, read_token
from socialpub.kube.resources import ACCOUNTS, SECRETS
from socialpub.kube.tenants import ensure_tenant
from socialpub.operator.live import KeyRingSource, LiveAdapters
from socialpub.platforms.base import ReconnectError, TransientError
from socialpub.platforms.registry import PlatformAdapters
from socialpub.platforms.settings import PlatformSettings
from tests.kube_harness import KubeHarness


@pytest.fixture
def client(kube: KubeHarness) -> Iterator[KubeClient]:
    client = KubeClient.from_config(str(kube.kubeconfig))
    yield client
    kube.call(client.aclose())


def run(capsys: pytest.CaptureFixture[str], kube: KubeHarness, *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = 0
    try:
        main(["--kubeconfig", str(kube.kubeconfig), *args])
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def add_account(
    capsys: pytest.CaptureFixture[str],
    kube: KubeHarness,
    tmp_path: Path,
    token: str,
    platform: str = "facebook",
) -> int:
    token_file = tmp_path / f"{token}.txt"
    token_file.write_text(token)
    code, out, err = run(
        capsys, kube, "accounts", "add", "--tenant", "acme", "--platform", platform,
        "--external-id", "1234", "--display-name", "Acme", "--token-file", str(token_file),
    )  # fmt: skip
    assert code == 0, err
    return int(out.strip())


def account(kube: KubeHarness, client: KubeClient, account_id: int) -> dict[str, Any]:
    obj: dict[str, Any] = kube.call(client.get(ACCOUNTS, f"account-{account_id}", "acme-live"))
    return obj


def token_of(
    kube: KubeHarness, client: KubeClient, obj: dict[str, Any], adapters: LiveAdapters | None = None
) -> str:
    keep = adapters is not None
    live = adapters or LiveAdapters(
        client, PlatformAdapters(PlatformSettings()), KeyRingSource.from_env(client)
    )

    async def go() -> str:
        try:
            return await live.token(obj)
        finally:
            if not keep:
                await live.aclose()

    result: str = kube.call(go())
    return result


def test_add_without_a_key_ring_fails_clearly(
    kube: KubeHarness,
    client: KubeClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SOCIALPUB_ENCRYPTION_KEY", raising=False)
    kube.call(ensure_tenant(client, "acme"))
    (tmp_path / "t").write_text("tok")
    code, _, err = run(
        capsys, kube, "accounts", "add", "--tenant", "acme", "--platform", "linkedin",
        "--external-id", "1", "--display-name", "A", "--token-file", str(tmp_path / "t"),
    )  # fmt: skip
    assert code == 1
    assert "socialpub encryption init" in err


def test_add_rotate_and_reconnect(
    kube: KubeHarness,
    client: KubeClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SOCIALPUB_ENCRYPTION_KEY", raising=False)
    kube.call(ensure_tenant(client, "acme"))
    code, out, _ = run(capsys, kube, "encryption", "init")
    assert code == 0
    assert "k1" in out
    assert run(capsys, kube, "encryption", "init")[0] == 0  # idempotent

    first = add_account(capsys, kube, tmp_path, "token-one")
    second = add_account(capsys, kube, tmp_path, "token-two", platform="instagram")
    obj = account(kube, client, first)
    assert obj["spec"]["credentialsSecretRef"] == {"name": f"account-{first}-credentials", "key": "token"}
    assert obj["status"]["state"] == "active"
    assert obj["status"]["lifecycleEvents"][0]["type"] == "social.account_connected"
    sealed = kube.call(read_token(client, obj))
    assert sealed.startswith("v1:k1:")
    assert token_of(kube, client, obj) == "token-one"
    code, out, _ = run(capsys, kube, "accounts", "list", "--tenant", "acme", "-o", "json")
    assert code == 0
    assert {"live"} == {row["mode"] for row in __import__("json").loads(out)}

    # An operator that loaded the ring before the rotation picks up the new key when it meets it.
    running = LiveAdapters(client, PlatformAdapters(PlatformSettings()), KeyRingSource.from_env(client))
    assert token_of(kube, client, obj, running) == "token-one"
    code, out, err = run(capsys, kube, "encryption", "rotate", "--new-key")
    assert code == 0, err
    assert "re-encrypted 2 of 2 token(s) under key k2" in out
    text, _ = kube.call(read_keyring(client))
    ring = KeyRing.from_json(text)
    assert (ring.active, sorted(ring.keys)) == ("k2", ["k1", "k2"])
    for account_id, token in ((first, "token-one"), (second, "token-two")):
        obj = account(kube, client, account_id)
        assert kube.call(read_token(client, obj)).startswith("v1:k2:")
        assert token_of(kube, client, obj) == token
    assert token_of(kube, client, account(kube, client, first), running) == "token-one"
    kube.call(running.aclose())
    assert "re-encrypted 0 of 2" in run(capsys, kube, "encryption", "rotate")[1]

    (tmp_path / "new").write_text("token-three\n")
    code, _, err = run(
        capsys,
        kube,
        "accounts",
        "set-token",
        "--tenant",
        "acme",
        "--token-file",
        str(tmp_path / "new"),
        str(first),
    )
    assert code == 0, err
    assert token_of(kube, client, account(kube, client, first)) == "token-three"


def test_a_token_copied_to_another_account_does_not_decrypt(
    kube: KubeHarness,
    client: KubeClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOCIALPUB_ENCRYPTION_KEY", KeyRing.generate("k1").to_json())
    kube.call(ensure_tenant(client, "acme"))
    one = account(kube, client, add_account(capsys, kube, tmp_path, "token-one"))
    two = account(kube, client, add_account(capsys, kube, tmp_path, "token-two"))
    stolen = kube.call(client.get(SECRETS, f"{one['metadata']['name']}-credentials", "acme-live"))["data"][
        "token"
    ]
    kube.call(
        client.patch(
            SECRETS, f"{two['metadata']['name']}-credentials", {"data": {"token": stolen}}, "acme-live"
        )
    )
    with pytest.raises(ReconnectError) as caught:
        token_of(kube, client, two)
    assert caught.value.code == "credentials_unreadable"
    kube.call(client.delete(SECRETS, f"{two['metadata']['name']}-credentials", "acme-live"))
    with pytest.raises(ReconnectError) as caught:
        token_of(kube, client, two)
    assert caught.value.code == "credentials_missing"


def test_a_key_the_ring_does_not_hold_is_transient(
    kube: KubeHarness,
    client: KubeClient,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    other = KeyRing.generate("k9")
    monkeypatch.setenv("SOCIALPUB_ENCRYPTION_KEY", other.to_json())
    kube.call(ensure_tenant(client, "acme"))
    obj = account(kube, client, add_account(capsys, kube, tmp_path, "token-one"))
    monkeypatch.setenv("SOCIALPUB_ENCRYPTION_KEY", KeyRing.generate("k1").to_json())
    with pytest.raises(TransientError) as caught:
        token_of(kube, client, obj)
    assert caught.value.code == "encryption_key_unknown"
    sealed = kube.call(read_token(client, obj))
    assert base64.urlsafe_b64decode(sealed.split(":", 2)[2])  # still the k9 ciphertext, untouched
    assert other.decrypt(sealed, associated_data("acme", obj["metadata"]["name"])) == b"token-one"
