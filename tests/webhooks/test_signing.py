"""Standard Webhooks signing: the reference test vector, several secrets, rotation in a Secret."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from socialpub.webhooks import signing

# The test vector of the reference libraries (standard-webhooks, libraries/python/tests).
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TS = 1614265330
VECTOR_BODY = '{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def test_the_reference_test_vector() -> None:
    assert signing.sign(VECTOR_ID, VECTOR_TS, VECTOR_BODY, [VECTOR_SECRET]) == VECTOR_SIGNATURE
    assert signing.sign(VECTOR_ID, VECTOR_TS, VECTOR_BODY.encode(), [VECTOR_SECRET]) == VECTOR_SIGNATURE
    # The whsec_ prefix is optional, as in the reference libraries.
    assert signing.sign(VECTOR_ID, VECTOR_TS, VECTOR_BODY, [VECTOR_SECRET[6:]]) == VECTOR_SIGNATURE


def test_our_verify_accepts_the_vector_at_its_time_only() -> None:
    args = (VECTOR_ID, str(VECTOR_TS), VECTOR_SIGNATURE, VECTOR_BODY.encode(), VECTOR_SECRET)
    assert signing.verify(*args, now=VECTOR_TS + 10)
    assert not signing.verify(*args, now=VECTOR_TS + 301)
    assert not signing.verify(*args[:3], b'{"test": 1}', VECTOR_SECRET, now=VECTOR_TS)


def test_the_reference_library_verifies_what_we_sign() -> None:
    secret = signing.generate_secret()
    body = json.dumps({"type": "social.post_published", "data": {"post_id": 1}})
    now = int(datetime.now(UTC).timestamp())
    headers = signing.headers("evt_0123456789abcdef01234567", now, body, [secret])
    assert Webhook(secret).verify(body, headers) == json.loads(body)
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.generate_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + " ", headers)


def test_several_secrets_give_several_signatures_each_verifiable() -> None:
    old, new = signing.generate_secret(), signing.generate_secret()
    now = int(datetime.now(UTC).timestamp())
    body = '{"type":"social.post_failed"}'
    headers = signing.headers("evt_1", now, body, [new, old])
    parts = headers["webhook-signature"].split(" ")
    assert len(parts) == 2
    assert all(p.startswith("v1,") for p in parts)
    for secret in (old, new):
        Webhook(secret).verify(body, headers)
    assert parts[0] == signing.sign("evt_1", now, body, [new])


def test_generated_secrets_are_whsec_base64_of_enough_random_bytes() -> None:
    secret = signing.generate_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret[6:])) == 32
    assert signing.generate_secret() != secret
    assert len(signing.decode_secret(signing.generate_secret(24))) == 24
    for bad in (23, 65):
        with pytest.raises(ValueError, match="random bytes"):
            signing.generate_secret(bad)


@pytest.mark.parametrize("bad", ["", "whsec_", "whsec_not base64!", "whsec_@@@@"])
def test_malformed_secrets_are_refused(bad: str) -> None:
    with pytest.raises(signing.SecretError):
        signing.decode_secret(bad)


@pytest.mark.parametrize("msg_id", ["", "evt.1", "a b", "x" * 129])
def test_ids_that_would_break_the_signed_content_are_refused(msg_id: str) -> None:
    with pytest.raises(ValueError, match="webhook-id"):
        signing.sign(msg_id, 1, b"{}", [signing.generate_secret()])


def test_rotation_keeps_the_old_secret_for_the_overlap_then_drops_it() -> None:
    first, second, third = (signing.generate_secret() for _ in range(3))
    data = {"secret": first, "unrelated": "kept"}
    now = 1_700_000_000.0
    rotated = signing.rotate(data, "secret", second, now=now)
    assert rotated["secret"] == second
    assert rotated["unrelated"] == "kept"
    previous = json.loads(rotated["secret.previous"])
    assert previous == [{"secret": first, "expiresAt": "2023-11-15T22:13:20Z"}]
    assert signing.active_secrets(rotated, "secret", now=now) == [second, first]
    assert signing.active_secrets(rotated, "secret", now=now + 86399) == [second, first]
    assert signing.active_secrets(rotated, "secret", now=now + 86401) == [second]
    # Rotating again within the overlap keeps both older secrets until their own expiry.
    again = signing.rotate(rotated, "secret", third, now=now + 3600)
    assert signing.active_secrets(again, "secret", now=now + 3601) == [third, second, first]
    assert signing.active_secrets(again, "secret", now=now + 86401) == [third, second]
    # Expired entries are dropped at the next rotation.
    later = signing.rotate(again, "secret", first, now=now + 10 * 86400)
    assert [e["secret"] for e in json.loads(later["secret.previous"])] == [third]


def test_a_secret_without_its_key_is_refused() -> None:
    with pytest.raises(signing.SecretError, match="no key"):
        signing.active_secrets({"other": signing.generate_secret()}, "secret", now=0)
    with pytest.raises(signing.SecretError):
        signing.active_secrets({"secret": "not-a-secret!"}, "secret", now=0)
