"""Encryption of OAuth tokens at rest: AES-256-GCM with key ids and associated data.

Kubernetes Secrets are only base64 in etcd unless the cluster encrypts them, so socialpub
encrypts tokens itself before they reach a Secret. Each ciphertext names the key that sealed it
(``v2:<key id>:<base64(nonce + ciphertext)>``), so keys rotate without a flag day: add a key,
make it active, re-encrypt, drop the old one.

Each ciphertext is bound (as associated data) to its account's namespace, uid and mode, so a
ciphertext copied into another account's Secret — in another namespace, in the paired sandbox
namespace under the same name, or into an account recreated under the same name — does not
decrypt. ``v1`` ciphertexts (sealed before that binding, with only the tenant and account name)
are *legacy*: the operator refuses them (the account must be re-sealed or reconnected) and
``socialpub encryption rotate`` re-seals them under the new binding.

Where the key ring comes from (:func:`keyring_source`), first match wins:

1. ``SOCIALPUB_ENCRYPTION_KEYRING_FILE``: a file mounted into the pod (from an external secret
   store, a CSI driver or a Secret volume); re-read whenever it changes (:class:`KeyRingFile`).
   The production setup: the key ring then is not in the etcd that holds the ciphertexts.
2. ``SOCIALPUB_ENCRYPTION_KEY``: the JSON itself in the environment; fixed for the process.
3. otherwise the Secret ``socialpub-system/socialpub-encryption`` (the development default).

Key ids are unique (``k-<UTC date>-<8 random hex>``, :func:`new_key_id`), never ``k1``, ``k2``:
two key rings made apart (the dev Secret, a production file) then never share an id, so a token
sealed with the wrong ring is refused at once as "sealed with unknown key" instead of looking
decryptable by its id and failing later on its tag. Older rings keep their ids.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "KEYRING_ENV",
    "KEYRING_FILE_ENV",
    "DecryptionError",
    "KeyRing",
    "KeyRingError",
    "KeyRingFile",
    "KeyRingSourceSpec",
    "associated_data",
    "is_legacy",
    "key_id",
    "keyring_source",
    "legacy_associated_data",
    "new_key_id",
]

_VERSION = "v2"
_LEGACY = "v1"
KEYRING_FILE_ENV = "SOCIALPUB_ENCRYPTION_KEYRING_FILE"
KEYRING_ENV = "SOCIALPUB_ENCRYPTION_KEY"


class DecryptionError(ValueError):
    """The ciphertext is malformed, names an unknown key, or was sealed for other associated data."""


class KeyRingError(ValueError):
    """The configured key ring cannot be read or is not a valid key ring."""


def new_key_id(now: datetime | None = None) -> str:
    """A fresh key id, ``k-<UTC date>-<8 hex>`` (e.g. ``k-20261202-3f9a0c1e``): the date says
    how old a key is at a glance, the 32 random bits make ids of separately made rings differ."""
    day = (now or datetime.now(UTC)).strftime("%Y%m%d")
    return f"k-{day}-{secrets.token_hex(4)}"


def associated_data(*, namespace: str, uid: str, mode: str, field: str = "access_token") -> bytes:
    """What a token is bound to: its account's namespace, uid (so a recreated account with the
    same name does not inherit it) and mode (``live``/``test``), and the field."""
    return f"{_VERSION}|{namespace}|{uid}|{mode}|{field}".encode()


def legacy_associated_data(tenant: str, account: str, field: str = "access_token") -> bytes:
    """The binding of ``v1`` ciphertexts (tenant and account name only): for re-sealing them."""
    return f"{_LEGACY}|{tenant}|{account}|{field}".encode()


def is_legacy(token: str) -> bool:
    """Whether ``token`` was sealed under the old tenant-and-name binding (``v1``)."""
    return token.startswith(f"{_LEGACY}:")


def key_id(token: str) -> str:
    """The id of the key that sealed ``token`` (``""`` if it is malformed)."""
    parts = token.split(":", 2)
    return parts[1] if len(parts) == 3 else ""


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
    def generate(cls, key_id: str | None = None) -> KeyRing:
        """A ring of one new key, active; its id is :func:`new_key_id` unless given."""
        kid = key_id or new_key_id()
        return cls({kid: AESGCM.generate_key(bit_length=256)}, kid)

    def with_new_key(self) -> KeyRing:
        """This ring plus a new key (a fresh id), made active; the old keys still decrypt."""
        kid = new_key_id()
        while kid in self.keys:  # 32 random bits: a repeat is astronomically unlikely, still
            kid = new_key_id()
        return KeyRing({**self.keys, kid: AESGCM.generate_key(bit_length=256)}, kid)

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
    def from_env(cls, variable: str = KEYRING_ENV) -> KeyRing | None:
        text = os.environ.get(variable)
        return cls.from_json(text) if text else None

    @classmethod
    def parse(cls, text: str, *, where: str) -> KeyRing:
        """:meth:`from_json`, with any defect reported as :class:`KeyRingError` naming ``where``."""
        try:
            return cls.from_json(text)
        except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
            raise KeyRingError(f"{where} is not a valid key ring: {exc}") from None

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
        if version not in (_VERSION, _LEGACY):
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
        """Whether ``token`` was sealed with a key other than the active one, or is legacy."""
        return not token.startswith(f"{_VERSION}:{self.active}:")

    def rotate(self, token: str, aad: bytes, *, legacy_aad: bytes | None = None) -> str:
        """Re-encrypt ``token`` under the active key and ``aad`` (unchanged if it already is).

        A legacy ``v1`` token is opened with ``legacy_aad`` (its old binding) and sealed under
        ``aad``; without ``legacy_aad`` it cannot be re-sealed (:class:`DecryptionError`).
        """
        if not self.needs_rotation(token):
            return token
        if is_legacy(token):
            if legacy_aad is None:
                raise DecryptionError("a legacy (v1) ciphertext needs its old binding to be re-sealed")
            return self.encrypt(self.decrypt(token, legacy_aad), aad)
        return self.encrypt(self.decrypt(token, aad), aad)


class KeyRingFile:
    """A key ring kept in a file, re-read whenever the file changes.

    Mounted Secrets and CSI secret-store volumes update a file by swapping a symlink, so the file
    is checked with ``os.stat`` (which follows the link) at every :meth:`get`: a new inode,
    modification time or size means a new key ring. A stat is a few microseconds, far below one
    platform call, so a key removed from the file stops decrypting at the next use.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._seen: tuple[int, int, int, int] | None = None
        self._ring: KeyRing | None = None

    def get(self) -> KeyRing:
        """The key ring as the file holds it now; :class:`KeyRingError` if it cannot be used."""
        try:
            st = os.stat(self.path)
        except OSError as exc:
            raise KeyRingError(f"cannot read the key ring file {self.path}: {exc.strerror}") from None
        seen = (st.st_dev, st.st_ino, st.st_mtime_ns, st.st_size)
        if self._ring is None or seen != self._seen:
            try:
                with open(self.path, encoding="utf-8") as f:
                    text = f.read()
            except (OSError, UnicodeDecodeError) as exc:
                raise KeyRingError(f"cannot read the key ring file {self.path}: {exc}") from None
            self._ring = KeyRing.parse(text, where=f"the key ring file {self.path}")
            self._seen = seen
        return self._ring


@dataclass(frozen=True)
class KeyRingSourceSpec:
    """Where this process takes its key ring from (see the module docstring for the order)."""

    kind: str
    """``file``, ``env`` or ``secret``."""
    path: str | None = None
    ring: KeyRing | None = None

    def describe(self) -> str:
        if self.kind == "file":
            return f"the file {self.path} ({KEYRING_FILE_ENV})"
        if self.kind == "env":
            return KEYRING_ENV
        return "the Secret socialpub-system/socialpub-encryption"


def keyring_source(environ: Mapping[str, str] | None = None) -> KeyRingSourceSpec:
    """The configured key ring source: file, then environment, then the Secret (dev default)."""
    env = os.environ if environ is None else environ
    path = env.get(KEYRING_FILE_ENV)
    if path:
        return KeyRingSourceSpec("file", path=path)
    text = env.get(KEYRING_ENV)
    if text:
        return KeyRingSourceSpec("env", ring=KeyRing.parse(text, where=KEYRING_ENV))
    return KeyRingSourceSpec("secret")
