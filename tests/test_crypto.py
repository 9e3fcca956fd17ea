"""Token encryption: round trips, binding to tenant/account, rotation and tamper detection."""

from __future__ import annotations

import pytest

from socialpub.crypto import DecryptionError, KeyRing, associated_data


def test_round_trip_names_the_key() -> None:
    ring = KeyRing.generate("k1")
    aad = associated_data("acme", "account-12")
    token = ring.encrypt(b"secret-token", aad)
    assert token.startswith("v1:k1:")
    assert b"secret-token" not in token.encode()
    assert ring.decrypt(token, aad) == b"secret-token"


def test_ciphertext_is_bound_to_tenant_account_and_field() -> None:
    ring = KeyRing.generate()
    token = ring.encrypt(b"t", associated_data("acme", "account-12"))
    for other in (
        associated_data("globex", "account-12"),
        associated_data("acme", "account-13"),
        associated_data("acme", "account-12", "refresh_token"),
    ):
        with pytest.raises(DecryptionError):
            ring.decrypt(token, other)


def test_rotation_reencrypts_under_the_active_key_and_old_key_still_reads() -> None:
    old = KeyRing.generate("k1")
    aad = associated_data("acme", "account-12")
    token = old.encrypt(b"t", aad)
    new = KeyRing({**old.keys, "k2": KeyRing.generate("k2").keys["k2"]}, "k2")
    assert new.decrypt(token, aad) == b"t"
    assert new.needs_rotation(token)
    rotated = new.rotate(token, aad)
    assert rotated.startswith("v1:k2:")
    assert new.rotate(rotated, aad) == rotated
    only_new = KeyRing({"k2": new.keys["k2"]}, "k2")
    assert only_new.decrypt(rotated, aad) == b"t"
    with pytest.raises(DecryptionError, match="unknown key"):
        only_new.decrypt(token, aad)


@pytest.mark.parametrize("bad", ["", "v1:k1", "v2:k1:AAAA", "v1:k1:not-base64!!", "v1:k1:AAAA"])
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
