"""API keys: their format, checksum, hash and scopes — pure functions, no storage.

A key is ``sk_<mode>_<40 base62 characters><6-character base62 CRC32>``. The checksum lets the
api reject a mistyped or truncated key before any lookup, and lets secret scanners recognise
ours. Only the SHA-256 of a key is ever stored; the key itself is shown once, when created.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
import string
import zlib

__all__ = [
    "KEY_PATTERN",
    "Mode",
    "Scope",
    "checksum_ok",
    "hash_key",
    "key_id",
    "key_mode",
    "new_key",
]

_B62 = string.digits + string.ascii_letters
_BODY = 40
KEY_PATTERN = re.compile(r"^sk_(live|test)_([0-9A-Za-z]{46})$")


class Mode(enum.StrEnum):
    """Which half of a tenant a key reaches: real networks (``live``) or the sandbox (``test``)."""

    LIVE = "live"
    TEST = "test"


class Scope(enum.StrEnum):
    VIEW = "service.social.view"
    MANAGE = "service.social.manage"
    PUBLISH = "service.social.publish"


def _base62(number: int, width: int = 6) -> str:
    digits = ""
    while number:
        number, rest = divmod(number, 62)
        digits = _B62[rest] + digits
    return digits.rjust(width, "0")


def new_key(mode: Mode) -> str:
    """A fresh random key (238 bits of entropy) for ``mode``."""
    body = "".join(secrets.choice(_B62) for _ in range(_BODY))
    return f"sk_{mode.value}_{body}{_base62(zlib.crc32(body.encode()))}"


def checksum_ok(key: str) -> bool:
    """Whether ``key`` is well formed and its checksum matches (no lookup needed)."""
    match = KEY_PATTERN.match(key)
    if match is None:
        return False
    tail = match.group(2)
    expected = _base62(zlib.crc32(tail[:_BODY].encode()))
    return hmac.compare_digest(expected, tail[_BODY:])


def key_mode(key: str) -> Mode | None:
    match = KEY_PATTERN.match(key)
    return Mode(match.group(1)) if match else None


def hash_key(key: str) -> str:
    """The SHA-256 (hex) that is stored instead of the key."""
    return hashlib.sha256(key.encode()).hexdigest()


def key_id(key_hash: str) -> str:
    """The public id of a key: the first 16 hex digits of its hash (safe to show and log)."""
    return key_hash[:16]
