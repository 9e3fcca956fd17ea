"""What the ``socialpub`` commands share: the one-line error, the cluster connection, the defaults."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import httpx

from socialpub.kube.client import KubeClient

__all__ = ["CliError", "connect", "default_crds_dir", "default_port", "default_state_dir"]

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


@contextlib.asynccontextmanager
async def connect(args: argparse.Namespace) -> AsyncIterator[KubeClient]:
    """A client of the cluster ``--kubeconfig``/``$KUBECONFIG`` names; connection failures become CliError."""
    from kubernetes.config.config_exception import ConfigException

    try:
        client = KubeClient.from_config(args.kubeconfig)
    except (ConfigException, OSError, ValueError) as exc:
        where = args.kubeconfig or os.environ.get("KUBECONFIG") or "~/.kube/config"
        raise CliError(f"cannot load the kubeconfig {where}: {exc}") from None
    try:
        yield client
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach the Kubernetes API at {client.base_url}: {exc}") from None
    finally:
        await client.aclose()
