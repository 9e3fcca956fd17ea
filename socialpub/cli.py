"""``socialpub …``: the command line of the whole system.

``socialpub dev`` is what ``make run`` starts: the embedded Kubernetes API with the CRDs applied
and a kubeconfig written, so a laptop without a cluster has the full system. Later commands
(``api``, ``operator``, ``tenants``, ``keys``, ``accounts``, ``webhooks``) join here.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from socialpub.embedded.kubeconfig import write_kubeconfig
from socialpub.embedded.server import EmbeddedKubeServer, ServerSettings, apply_manifest, load_manifests

__all__ = ["main"]

_REPO_CRDS = Path(__file__).resolve().parent.parent / "crds"


def _default_state_dir() -> Path:
    return Path(os.environ.get("SOCIALPUB_STATE_DIR", ".socialpub"))


def _default_crds_dir() -> Path:
    return Path(os.environ.get("SOCIALPUB_CRDS_DIR", str(_REPO_CRDS)))


async def run_dev(
    state_dir: Path,
    kube_port: int,
    crds_dir: Path,
    *,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Start the embedded Kubernetes API, apply the CRDs, write the kubeconfig; run until ``stop``."""
    server = EmbeddedKubeServer(state_dir, ServerSettings(port=kube_port))
    await server.start()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    try:
        for doc in load_manifests(crds_dir):
            await apply_manifest(server.cluster, server.registry, doc)
        kubeconfig = write_kubeconfig(state_dir / "kubeconfig", server.url)
        print(f"socialpub dev: embedded Kubernetes API on {server.url} (state in {state_dir})", flush=True)
        print(f"  export KUBECONFIG={kubeconfig.resolve()}", flush=True)
        print("  kubectl get crds; kubectl get social -A", flush=True)
        print("  Ctrl-C stops it; state survives in the state directory.", flush=True)
        if ready is not None:
            ready.set()
        await stop.wait()
    finally:
        await server.stop()
        print("socialpub dev: stopped", flush=True)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="socialpub", description="socialpub: one post, every network.")
    commands = parser.add_subparsers(dest="command", required=True)
    dev = commands.add_parser("dev", help="run the whole system locally on the embedded Kubernetes API")
    dev.add_argument(
        "--state-dir",
        type=Path,
        default=None,
        help="where state lives (env SOCIALPUB_STATE_DIR, default .socialpub)",
    )
    dev.add_argument(
        "--kube-port", type=int, default=0, help="port of the embedded Kubernetes API (default: free)"
    )
    dev.add_argument(
        "--crds", type=Path, default=None, help="directory of CRDs to apply (default: the repo's crds/)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.command == "dev":
        state_dir = args.state_dir or _default_state_dir()
        asyncio.run(run_dev(state_dir, args.kube_port, args.crds or _default_crds_dir()))
    else:  # pragma: no cover - argparse rejects unknown commands
        sys.exit(2)
