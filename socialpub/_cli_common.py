"""What every ``socialpub`` command shares: the one-line error and the environment defaults."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["CliError", "default_crds_dir", "default_port", "default_state_dir"]

_REPO_CRDS = Path(__file__).resolve().parent.parent / "crds"


class CliError(Exception):
    """A failure to report in one line, with the exit code (1: it failed, 2: the input was wrong)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def default_state_dir() -> Path:
    return Path(os.environ.get("SOCIALPUB_STATE_DIR", ".socialpub"))


def default_crds_dir() -> Path:
    return Path(os.environ.get("SOCIALPUB_CRDS_DIR", str(_REPO_CRDS)))


def default_port() -> int:
    """The api's port: ``$SOCIALPUB_PORT`` or 8000."""
    value = os.environ.get("SOCIALPUB_PORT", "8000")
    try:
        port = int(value)
    except ValueError:
        raise CliError(f"SOCIALPUB_PORT={value!r} is not a port number", 2) from None
    if not 0 <= port <= 65535:
        raise CliError(f"SOCIALPUB_PORT={value!r} is not a port number", 2)
    return port
