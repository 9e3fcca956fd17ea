"""The state directory of the embedded server: owner-only, because it holds every Secret.

The SQLite file stores every object in clear (the key ring, sealed tokens, API-key records), the
kubeconfig and ``token`` file hold the credential that opens the API, and ``dev-key`` is a live
API key. So the directory is 0700 and each file 0600, whatever the umask, and a directory left
by an earlier version with wider modes is tightened when the server starts on it.

SQLite creates ``-wal`` and ``-shm`` with the mode of the database file itself, so creating the
database file 0600 before SQLite opens it keeps them private too (no process-wide umask change,
which would race every other thread that creates files).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import stat
from pathlib import Path

__all__ = ["TOKEN_FILE", "ensure_private_dir", "load_or_create_token", "touch_private", "write_private"]

TOKEN_FILE = "token"
_DIR_MODE = 0o700
_FILE_MODE = 0o600


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (0700) or tighten it and every regular file directly in it (0600).

    Subdirectories (kubectl's cache, say) are left alone: nothing secret is written there.
    """
    path.mkdir(mode=_DIR_MODE, parents=True, exist_ok=True)
    os.chmod(path, _DIR_MODE)
    for entry in path.iterdir():
        with contextlib.suppress(FileNotFoundError):  # a -shm file may vanish meanwhile
            mode = entry.lstat().st_mode
            if stat.S_ISREG(mode) and stat.S_IMODE(mode) & ~_FILE_MODE:
                os.chmod(entry, _FILE_MODE)
    return path


def touch_private(path: Path) -> Path:
    """Make sure ``path`` exists as a 0600 file (created so, never readable by others)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, _FILE_MODE)
    os.close(fd)
    os.chmod(path, _FILE_MODE)
    return path


def write_private(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically; the file is 0600 from the moment it exists."""
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # a leftover from a crash may carry other modes
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, _FILE_MODE)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, _FILE_MODE)
    os.replace(tmp, path)
    return path


def load_or_create_token(state_dir: Path) -> str:
    """The bearer token of the server using ``state_dir``: read from ``token``, else made once.

    Kept across restarts so a kubeconfig written earlier (and a shell's ``$KUBECONFIG``) keeps
    working. 32 random bytes, URL-safe base64: nothing a page could guess.
    """
    path = state_dir / TOKEN_FILE
    with contextlib.suppress(FileNotFoundError):
        saved = path.read_text().strip()
        if saved:
            os.chmod(path, _FILE_MODE)
            return saved
    token = secrets.token_urlsafe(32)
    write_private(path, token + "\n")
    return token
