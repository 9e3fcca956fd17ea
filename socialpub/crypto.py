"""Encryption of OAuth tokens at rest: AES-256-GCM with key ids and associated data.

Kubernetes Secrets are only base64 in etcd unless the cluster encrypts them, so socialpub
encrypts tokens itself before they reach a Secret. Each ciphertext names the key that sealed it
(``v1:<key id>:<base64(nonce + ciphertext)>``), so keys rotate without a flag day: add a key,
make it active, re-encrypt, drop the old one. The tenant and account are bound in as associated
data, so a ciphertext copied to another account's Secret does not decrypt.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["DecryptionError", "KeyRing", "associated_data"]

_VERSION = "v1"


class DecryptionError(ValueError):
    """The ciphertext is malformed, names an unknown key, or was sealed for other associated data."""


def associated_data(tenant: str, account: str, field: str = "access_token") -> bytes:
    """What a token is bound to: decrypting it under any other tenant, account or field fails."""
    return f"{_VERSION}|{tenant}|{account}|{field}".encode()


@dataclass(frozen=True)
class KeyRing:
    """The encryption keys by id, and which one seals new ciphertexts."""

    keys: Mapping[str, bytes]
    active: str

    def __post_init__(self) -> None:
        if self.active not in self.keys:
            raise ValueError(f"the active key id {self.active!r} is not in the key ring")
        for kid, key in self.keys.items():
            if len(key) != 32:
                raise ValueError(f"key {kid!r} must be 32 bytes (AES-256), not {len(key)}")
            if ":" in kid or not kid:
                raise ValueError(f"invalid key id {kid!r}")

    @classmethod
    def generate(cls, key_id: str = "k1") -> KeyRing:
        return cls({key_id: AESGCM.generate_key(bit_length=256)}, key_id)

    @classmethod
    def from_json(cls, text: str) -> KeyRing:
        """Parse ``{"active": "k2", "keys": {"k2": "<base64>", "k1": "<base64>"}}`` (the Secret's format)."""
        data = json.loads(text)
        keys = {kid: base64.b64decode(value) for kid, value in data["keys"].items()}
        return cls(keys, data["active"])

    def to_json(self) -> str:
        keys = {kid: base64.b64encode(key).decode() for kid, key in self.keys.items()}
        return json.dumps({"active": self.active, "keys": keys}, sort_keys=True)

    @classmethod
    def from_env(cls, variable: str = "SOCIALPUB_ENCRYPTION_KEY") -> KeyRing | None:
        text = os.environ.get(variable)
        return cls.from_json(text) if text else None

    def encrypt(self, plaintext: bytes, aad: bytes) -> str:
        nonce = os.urandom(12)
        sealed = AESGCM(self.keys[self.active]).encrypt(nonce, plaintext, aad)
        return f"{_VERSION}:{self.active}:" + base64.urlsafe_b64encode(nonce + sealed).decode()

    def decrypt(self, token: str, aad: bytes) -> bytes:
        try:
            version, kid, payload = token.split(":", 2)
            raw = base64.urlsafe_b64decode(payload)
        except (ValueError, binascii.Error) as exc:
            raise DecryptionError("malformed ciphertext") from exc
        if version != _VERSION:
            raise DecryptionError(f"unsupported ciphertext version {version!r}")
        key = self.keys.get(kid)
        if key is None:
            raise DecryptionError(f"ciphertext sealed with unknown key {kid!r}")
        if len(raw) < 12 + 16:
            raise DecryptionError("ciphertext too short")
        try:
            return AESGCM(key).decrypt(raw[:12], raw[12:], aad)
        except InvalidTag as exc:
            raise DecryptionError("ciphertext does not match its key or associated data") from exc

    def needs_rotation(self, token: str) -> bool:
        """Whether ``token`` was sealed with a key other than the active one."""
        return not token.startswith(f"{_VERSION}:{self.active}:")

    def rotate(self, token: str, aad: bytes) -> str:
        """Re-encrypt ``token`` under the active key (unchanged if it already uses it)."""
        if not self.needs_rotation(token):
            return token
        return self.encrypt(self.decrypt(token, aad), aad)
