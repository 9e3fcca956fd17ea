"""Standard Webhooks signing (symmetric, ``v1``): secrets, signatures and secret rotation — pure.

Spec: https://github.com/standard-webhooks/standard-webhooks/blob/main/spec/standard-webhooks.md

* A secret is ``whsec_`` + base64 of 24 to 64 random bytes; the HMAC key is the decoded bytes.
* The signed content is ``{webhook-id}.{webhook-timestamp}.{raw body}``; the signature is
  ``v1,<base64 HMAC-SHA256>``. ``webhook-signature`` is a space-separated list of them: during a
  secret rotation every delivery is signed with each live secret, so a receiver holding either
  the old or the new secret verifies it (zero-downtime rotation).
* In a Kubernetes Secret the current secret is stored under the endpoint's key (``secret`` by
  default) and the rotated-out ones, with their expiry, as JSON under ``<key>.previous``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets as _random
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime

__all__ = [
    "PREFIX",
    "ROTATION_OVERLAP_SECONDS",
    "SecretError",
    "active_secrets",
    "decode_secret",
    "generate_secret",
    "headers",
    "previous_key",
    "rotate",
    "sign",
    "verify",
]

PREFIX = "whsec_"
MIN_BYTES, MAX_BYTES = 24, 64
ROTATION_OVERLAP_SECONDS = 24 * 3600
"""How long a rotated-out secret keeps signing deliveries (receivers switch over meanwhile)."""
_ID = re.compile(r"^[A-Za-z0-9_]{1,128}$")


class SecretError(ValueError):
    """Not a usable ``whsec_`` secret."""


def generate_secret(nbytes: int = 32) -> str:
    """A new ``whsec_`` secret of ``nbytes`` random bytes (24 to 64, per the specification)."""
    if not MIN_BYTES <= nbytes <= MAX_BYTES:
        raise ValueError(f"a secret has {MIN_BYTES} to {MAX_BYTES} random bytes, not {nbytes}")
    return PREFIX + base64.b64encode(_random.token_bytes(nbytes)).decode()


def decode_secret(secret: str) -> bytes:
    """The HMAC key of a secret (``whsec_`` optional, base64 padding optional)."""
    text = secret.strip()
    text = text.removeprefix(PREFIX)
    try:
        key = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise SecretError("the webhook secret is not whsec_ followed by base64") from None
    if not key:
        raise SecretError("the webhook secret is empty")
    return key


def _signature(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    content = f"{msg_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, content, hashlib.sha256).digest()).decode()


def sign(msg_id: str, timestamp: int, body: bytes | str, secrets: Sequence[str]) -> str:
    """The ``webhook-signature`` value: ``v1,<b64>`` per secret, space-separated, in order."""
    if not _ID.match(msg_id):
        raise ValueError(f"webhook-id {msg_id!r} must be 1-128 of [A-Za-z0-9_] (no '.')")
    if not secrets:
        raise SecretError("at least one secret is needed to sign")
    raw = body.encode() if isinstance(body, str) else body
    return " ".join(_signature(decode_secret(s), msg_id, int(timestamp), raw) for s in secrets)


def headers(msg_id: str, timestamp: int, body: bytes | str, secrets: Sequence[str]) -> dict[str, str]:
    """The three Standard Webhooks headers of one delivery attempt."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(timestamp)),
        "webhook-signature": sign(msg_id, timestamp, body, secrets),
    }


def verify(
    msg_id: str,
    timestamp: str,
    signature: str,
    body: bytes,
    secret: str,
    *,
    now: float,
    tolerance: float = 300.0,
) -> bool:
    """Whether one of the ``v1`` signatures is ``secret``'s and the timestamp is within tolerance.

    What a receiver does (the ``standardwebhooks`` package does the same); constant-time compare.
    """
    try:
        ts = int(timestamp)
    except ValueError:
        return False
    if abs(now - ts) > tolerance:
        return False
    expected = _signature(decode_secret(secret), msg_id, ts, body)
    return any(
        hmac.compare_digest(candidate.encode(), expected.encode())
        for candidate in signature.split()
        if candidate.startswith("v1,")
    )


# Secrets stored in a Kubernetes Secret, with rotation.


def previous_key(key: str) -> str:
    """The Secret data key holding the rotated-out secrets of ``key``."""
    return f"{key}.previous"


def _parse_time(value: object) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).timestamp()


def _previous(data: Mapping[str, str], key: str) -> list[dict[str, str]]:
    raw = data.get(previous_key(key))
    if not raw:
        return []
    try:
        entries = json.loads(raw)
    except ValueError:
        return []
    return [
        {"secret": str(e["secret"]), "expiresAt": str(e.get("expiresAt", ""))}
        for e in entries
        if isinstance(e, dict) and isinstance(e.get("secret"), str)
    ]


def active_secrets(data: Mapping[str, str], key: str, *, now: float) -> list[str]:
    """The secrets to sign with now: the current one, then rotated-out ones not yet expired.

    ``data`` is the Secret's decoded data. Raises :class:`SecretError` without a valid current one.
    """
    current = (data.get(key) or "").strip()
    if not current:
        raise SecretError(f"the Secret has no key {key!r}")
    decode_secret(current)
    result = [current]
    for entry in _previous(data, key):
        expires = _parse_time(entry["expiresAt"])
        if expires is not None and expires > now and entry["secret"] not in result:
            try:
                decode_secret(entry["secret"])
            except SecretError:
                continue
            result.append(entry["secret"])
    return result


def rotate(
    data: Mapping[str, str],
    key: str,
    new_secret: str,
    *,
    now: float,
    overlap_seconds: float = ROTATION_OVERLAP_SECONDS,
) -> dict[str, str]:
    """The Secret's data after rotating ``key`` to ``new_secret``.

    The old current secret keeps signing for ``overlap_seconds``, older ones at most as long;
    expired entries are dropped. An overlap of 0 stops every older secret at once (a leak).
    """
    decode_secret(new_secret)
    until = now + overlap_seconds
    expires = datetime.fromtimestamp(until, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
    kept = []
    for entry in _previous(data, key):
        when = _parse_time(entry["expiresAt"]) or 0
        if when > now:  # an older secret never outlives the new overlap (0 h revokes them all now)
            kept.append(entry if when <= until else {**entry, "expiresAt": expires})
    old = (data.get(key) or "").strip()
    if old and old != new_secret:
        kept = [e for e in kept if e["secret"] != old]
        kept.insert(0, {"secret": old, "expiresAt": expires})
    result = {k: v for k, v in data.items() if k not in (key, previous_key(key))}
    result[key] = new_secret
    if kept:
        result[previous_key(key)] = json.dumps(kept)
    return result
