"""Token encryption: round trips, binding to namespace/uid/mode, rotation, legacy ciphertexts,
tamper detection, and the key ring's sources (file, environment)."""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime
from pathlib import Path

import pytest

from socialpub.crypto import (
    DecryptionError,
    KeyRing,
    KeyRingError,
    KeyRingFile,
    associated_data,
    is_legacy,
    keyring_source,
    legacy_associated_data,
    new_key_id,
)

ACME = associated_data(namespace="acme-live", uid="4f1c-uid-1", mode="live")


def test_round_trip_names_the_key() -> None:
    ring = KeyRing.generate("k1")
    aad = ACME
    token = ring.encrypt(b"secret-token", aad)
    assert token.startswith("v2:k1:")
    assert b"secret-token" not in token.encode()
    assert ring.decrypt(token, aad) == b"secret-token"


def test_ciphertext_is_bound_to_namespace_uid_mode_and_field() -> None:
    ring = KeyRing.generate()
    token = ring.encrypt(b"t", ACME)
    for other in (
        associated_data(namespace="acme-sandbox", uid="4f1c-uid-1", mode="live"),
        associated_data(namespace="acme-live", uid="4f1c-uid-2", mode="live"),  # recreated account
        associated_data(namespace="acme-live", uid="4f1c-uid-1", mode="test"),
        associated_data(namespace="acme-live", uid="4f1c-uid-1", mode="live", field="refresh_token"),
        legacy_associated_data("acme", "account-12"),
    ):
        with pytest.raises(DecryptionError):
            ring.decrypt(token, other)


def test_a_legacy_ciphertext_is_recognised_and_resealed_under_the_new_binding() -> None:
    ring = KeyRing.generate("k1")
    old_aad = legacy_associated_data("acme", "account-12")
    legacy = ring.encrypt(b"t", old_aad).replace("v2:", "v1:", 1)  # how v1 sealed it
    assert is_legacy(legacy)
    assert ring.needs_rotation(legacy)
    with pytest.raises(DecryptionError):
        ring.rotate(legacy, ACME)  # without its old binding it cannot be opened
    fresh = ring.rotate(legacy, ACME, legacy_aad=old_aad)
    assert fresh.startswith("v2:k1:")
    assert not is_legacy(fresh)
    assert ring.decrypt(fresh, ACME) == b"t"


def test_rotation_reencrypts_under_the_active_key_and_old_key_still_reads() -> None:
    old = KeyRing.generate("k1")
    aad = ACME
    token = old.encrypt(b"t", aad)
    new = KeyRing({**old.keys, "k2": KeyRing.generate("k2").keys["k2"]}, "k2")
    assert new.decrypt(token, aad) == b"t"
    assert new.needs_rotation(token)
    rotated = new.rotate(token, aad)
    assert rotated.startswith("v2:k2:")
    assert new.rotate(rotated, aad) == rotated
    only_new = KeyRing({"k2": new.keys["k2"]}, "k2")
    assert only_new.decrypt(rotated, aad) == b"t"
    with pytest.raises(DecryptionError, match="unknown key"):
        only_new.decrypt(token, aad)


@pytest.mark.parametrize("bad", ["", "v1:k1", "v3:k1:AAAA", "v2:k1:not-base64!!", "v2:k1:AAAA"])
def test_malformed_ciphertexts_raise_decryption_error(bad: str) -> None:
    with pytest.raises(DecryptionError):
        KeyRing.generate("k1").decrypt(bad, b"x")


def test_tampering_is_detected() -> None:
    ring = KeyRing.generate("k1")
    token = ring.encrypt(b"t", b"aad")
    flipped = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(DecryptionError):
        ring.decrypt(flipped, b"aad")


def test_json_round_trip_and_key_checks() -> None:
    ring = KeyRing.generate("k1")
    assert KeyRing.from_json(ring.to_json()) == ring
    with pytest.raises(ValueError, match="32 bytes"):
        KeyRing({"k1": b"short"}, "k1")
    with pytest.raises(ValueError, match="not in the key ring"):
        KeyRing(ring.keys, "k9")


def _swap(directory: Path, ring: KeyRing, generation: int) -> None:
    """Update a mounted file the way the kubelet does: new data dir, then swap the ``..data`` link."""
    data = directory / f"..{generation}"
    data.mkdir()
    (data / "keyring").write_text(ring.to_json())
    link = directory / "..data_tmp"
    link.symlink_to(data.name)
    os.replace(link, directory / "..data")
    if not (directory / "keyring").is_symlink():
        (directory / "keyring").symlink_to("..data/keyring")


def test_a_key_ring_file_follows_a_symlink_swap(tmp_path: Path) -> None:
    first = KeyRing.generate("k1")
    _swap(tmp_path, first, 1)
    source = KeyRingFile(tmp_path / "keyring")
    assert source.get() == first
    assert source.get() is source.get()  # unchanged file: not read again
    second = KeyRing({**first.keys, "k2": KeyRing.generate("k2").keys["k2"]}, "k2")
    _swap(tmp_path, second, 2)
    assert source.get() == second
    only_k2 = KeyRing({"k2": second.keys["k2"]}, "k2")
    _swap(tmp_path, only_k2, 3)
    assert source.get() == only_k2
    token = first.encrypt(b"t", ACME)
    with pytest.raises(DecryptionError, match="unknown key"):
        source.get().decrypt(token, ACME)


def test_a_broken_or_missing_key_ring_file_is_an_error_not_a_stale_ring(tmp_path: Path) -> None:
    path = tmp_path / "keyring"
    path.write_text(KeyRing.generate("k1").to_json())
    source = KeyRingFile(path)
    source.get()
    path.write_text("{not json")
    with pytest.raises(KeyRingError, match="not a valid key ring"):
        source.get()
    path.unlink()
    with pytest.raises(KeyRingError, match="cannot read"):
        source.get()


def test_the_source_is_the_file_then_the_environment_then_the_secret(tmp_path: Path) -> None:
    ring = KeyRing.generate("k1")
    both = {
        "SOCIALPUB_ENCRYPTION_KEYRING_FILE": str(tmp_path / "k"),
        "SOCIALPUB_ENCRYPTION_KEY": ring.to_json(),
    }
    assert keyring_source(both).kind == "file"
    assert keyring_source({"SOCIALPUB_ENCRYPTION_KEY": ring.to_json()}).ring == ring
    assert keyring_source({}).kind == "secret"
    with pytest.raises(KeyRingError):
        keyring_source({"SOCIALPUB_ENCRYPTION_KEY": '{"active": "k1"}'})


def test_generated_key_ids_are_unique_so_another_ring_refuses_by_id() -> None:
    """Issue 9 review, item 4: the dev Secret's ring and a ring made for a file both named their
    first key ``k1``, so a token sealed with the wrong one looked decryptable by its key id and
    failed only on its tag. Ids are now ``k-<date>-<8 hex>``: the wrong ring says at once that
    it does not have the key."""
    ids = {KeyRing.generate().active for _ in range(200)}
    assert len(ids) == 200
    assert all(re.fullmatch(r"k-\d{8}-[0-9a-f]{8}", kid) for kid in ids)
    dev, production = KeyRing.generate(), KeyRing.generate()
    token = dev.encrypt(b"t", ACME)
    with pytest.raises(DecryptionError, match="unknown key"):
        production.decrypt(token, ACME)


def test_a_new_key_gets_a_fresh_id_and_keeps_the_old_ones() -> None:
    ring = KeyRing({"k1": os.urandom(32)}, "k1")
    grown = ring.with_new_key()
    assert grown.active != "k1"
    assert re.fullmatch(r"k-\d{8}-[0-9a-f]{8}", grown.active)
    assert sorted(grown.keys) == sorted(["k1", grown.active])
    assert grown.keys["k1"] == ring.keys["k1"]
    old = ring.encrypt(b"t", ACME)
    assert grown.decrypt(old, ACME) == b"t"
    assert new_key_id(datetime(2030, 1, 2, tzinfo=UTC)).startswith("k-20300102-")
