"""``socialpub dev`` and ``socialpub api``: the processes that serve.

``socialpub dev`` runs the whole system in one process for a laptop: the embedded Kubernetes
API (CRDs applied, kubeconfig written), a demo tenant with sandbox accounts and a test key, and
the api as an asyncio task beside it, reaching the embedded API over HTTP like any client.
``socialpub api`` is the container command: uvicorn with the api's app factory.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import uvicorn

from socialpub._cli_common import CliError, connect, default_crds_dir, default_port, default_state_dir
from socialpub.api.settings import ApiSettings
from socialpub.kube.accounts import account_id, ensure_sandbox_account
from socialpub.kube.client import KubeClient
from socialpub.kube.devstack import mark_dev_stack
from socialpub.kube.keys import create_key, find_key, migrate_keys
from socialpub.kube.resources import TENANTS
from socialpub.kube.tenants import Tenant, ensure_tenant
from socialpub.models.keys import Mode, Scope
from socialpub.models.platforms import Platform
from socialpub.operator.runner import LeaseLost, run_operator
from socialpub.operator.settings import OperatorSettings

__all__ = ["DEMO_ACCOUNTS", "DEMO_TENANT", "api", "dev", "operator", "run_dev", "seed_demo"]

_API_APP = "socialpub.api.app"

DEMO_TENANT = "demo"
DEMO_ACCOUNTS = (
    (Platform.LINKEDIN, "Acme Co"),
    (Platform.FACEBOOK, "Acme Co"),
    (Platform.INSTAGRAM, "@acme"),
)


def api(args: argparse.Namespace) -> None:
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = str(args.kubeconfig)  # ApiSettings.from_env() reads it
    port = args.port if args.port is not None else default_port()
    asyncio.run(_check_kubeconfig(args))  # one clear line now, not a traceback from the lifespan
    uvicorn.run(f"{_API_APP}:create_app", factory=True, host=args.host, port=port, log_config=None)


def operator(args: argparse.Namespace) -> None:
    """The operator's container command: kopf over all namespaces, standalone."""
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = str(args.kubeconfig)
    asyncio.run(_check_kubeconfig(args))
    settings = dataclasses.replace(
        OperatorSettings.from_env(), kubeconfig=args.kubeconfig and str(args.kubeconfig)
    )
    try:
        asyncio.run(run_operator(settings, liveness=args.liveness))
    except LeaseLost as exc:
        # Every piece of work has stopped already; exit non-zero so the platform restarts us.
        raise CliError(f"{exc}: all work stopped before another operator could take over") from None


async def _check_kubeconfig(args: argparse.Namespace) -> None:
    async with connect(args):
        pass


# dev


class _ApiServer(uvicorn.Server):
    """uvicorn without its own signal handlers: ``socialpub dev`` owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def start_serving(self, sock: socket.socket, stop: asyncio.Event) -> asyncio.Task[None]:
        """Serve on ``sock`` in a task; return it once the app has started (or ``stop`` is set)."""
        task = asyncio.create_task(self._serve_on(sock), name="api")
        while not self.started and not task.done() and not stop.is_set():
            await asyncio.sleep(0.02)
        _check_api(task)
        return task

    async def _serve_on(self, sock: socket.socket) -> None:
        try:
            await self.serve(sockets=[sock])
        except SystemExit as exc:  # uvicorn exits the process when its startup fails
            raise RuntimeError(f"startup failed (uvicorn exit code {exc.code})") from None


def _listen(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise CliError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(2048)
    sock.setblocking(False)
    return sock


def _check_api(task: asyncio.Task[None]) -> None:
    """Raise the api task's failure as a one-line CliError (nothing if it is running or stopped)."""
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise CliError(f"the api failed: {task.exception()}")


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, readable by the owner only."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


async def _dev_key(client: KubeClient, path: Path) -> str:
    """The dev key kept in ``path`` if its record still exists and is usable, else a new one."""
    saved = path.read_text().strip() if path.exists() else ""
    if saved:
        record = await find_key(client, saved)
        demo = await client.get(TENANTS, DEMO_TENANT)
        if (
            record is not None
            and record.active
            and record.tenant == DEMO_TENANT
            and record.tenant_uid == demo["metadata"]["uid"]
            and record.mode is Mode.TEST
            and record.scopes == frozenset(Scope)
        ):
            os.chmod(path, 0o600)
            return saved
    key, _ = await create_key(client, tenant=DEMO_TENANT, mode=Mode.TEST, scopes=list(Scope))
    _write_private(path, key + "\n")
    return key


async def seed_demo(client: KubeClient, key_file: Path) -> tuple[Tenant, list[dict[str, Any]], str]:
    """Tenant ``demo``, its three sandbox accounts and an all-scopes test key; idempotent."""
    tenant = await ensure_tenant(client, DEMO_TENANT, display_name="Demo")
    await migrate_keys(client)  # records from before the keys namespace: the dev key keeps working
    accounts = [
        (await ensure_sandbox_account(client, tenant=tenant, platform=platform, display_name=name))[0]
        for platform, name in DEMO_ACCOUNTS
    ]
    return tenant, accounts, await _dev_key(client, key_file)


async def run_dev(
    state_dir: Path,
    kube_port: int,
    crds_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    """Run the whole system in this process until ``stop`` (or SIGINT/SIGTERM).

    The embedded Kubernetes API comes up first (CRDs applied, kubeconfig written), then the demo
    data, then the api, which reaches the embedded API over HTTP like any client would.
    """
    sock = _listen(host, port)  # first: a busy port should fail before anything starts

    from socialpub.api.app import create_app
    from socialpub.embedded.kubeconfig import write_kubeconfig
    from socialpub.embedded.server import EmbeddedKubeServer, ServerSettings, apply_manifest, load_manifests

    server = EmbeddedKubeServer(state_dir, ServerSettings(port=kube_port))
    try:
        await server.start()
    except OSError as exc:
        sock.close()
        raise CliError(
            f"cannot start the embedded Kubernetes API on port {kube_port}: {exc.strerror}"
        ) from None
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    api_server: _ApiServer | None = None
    api_task: asyncio.Task[None] | None = None
    operator_task: asyncio.Task[None] | None = None
    operator_stop = asyncio.Event()
    try:
        for doc in load_manifests(crds_dir):
            await apply_manifest(server.cluster, server.registry, doc)
        kubeconfig = write_kubeconfig(
            state_dir / "kubeconfig", server.url, token=server.token, ca_pem=server.tls.ca_pem
        )
        print(f"socialpub dev: embedded Kubernetes API on {server.url} (state in {state_dir})", flush=True)
        print(f"  export KUBECONFIG={kubeconfig.resolve()}", flush=True)
        print("  kubectl get crds; kubectl get social -A", flush=True)

        client = KubeClient.from_config(str(kubeconfig))
        try:
            tenant, accounts, key = await seed_demo(client, state_dir / "dev-key")
            # The operator below delivers to local receivers; the CLI learns it from this mark.
            await mark_dev_stack(client, webhook_allow_loopback=True)
        finally:
            await client.aclose()
        print(f"socialpub dev: tenant {tenant.name!r}, sandbox accounts in {tenant.sandbox_namespace}:")
        for account in accounts:
            spec = account.get("spec") or {}
            print(f"  id {account_id(account)}: {spec.get('platform')} {spec.get('displayName')!r}")
        print(f"  test key (all scopes; kept in {state_dir / 'dev-key'}): {key}", flush=True)

        settings = dataclasses.replace(ApiSettings.from_env(), kubeconfig=str(kubeconfig.resolve()))
        api_server = _ApiServer(
            uvicorn.Config(create_app(settings), log_config=None, lifespan="on", timeout_graceful_shutdown=5)
        )
        api_task = await api_server.start_serving(sock, stop)
        if stop.is_set():
            return
        bound_host, bound_port = sock.getsockname()[:2]
        base = f"http://{bound_host}:{bound_port}"
        print(f"socialpub dev: api on {base} (OpenAPI docs: {base}/docs)", flush=True)
        print(f'  curl -H "Authorization: Bearer {key}" {base}/api/v1/services/social/accounts', flush=True)

        # Local receivers (http://127.0.0.1:…) are how webhooks are tried on a laptop.
        operator_settings = dataclasses.replace(
            OperatorSettings.from_env(), kubeconfig=str(kubeconfig.resolve()), webhook_allow_loopback=True
        )
        operator_stop = asyncio.Event()
        operator_ready = asyncio.Event()
        operator_task = asyncio.create_task(
            run_operator(operator_settings, stop=operator_stop, ready=operator_ready),
            name="socialpub-operator",
        )
        await asyncio.wait(
            [asyncio.ensure_future(operator_ready.wait()), operator_task], return_when=asyncio.FIRST_COMPLETED
        )
        if operator_task.done():
            operator_task.result()
            raise CliError("the operator stopped unexpectedly")
        print(
            "socialpub dev: operator running (publishes sandbox posts; see `kubectl get sp,st -A`)",
            flush=True,
        )

        print(f"socialpub dev: ready. Ctrl-C stops it; state survives in {state_dir}", flush=True)
        if ready is not None:
            ready.set()
        stopping = asyncio.ensure_future(stop.wait())
        await asyncio.wait([stopping, api_task, operator_task], return_when=asyncio.FIRST_COMPLETED)
        stopping.cancel()
        if api_task.done():
            _check_api(api_task)
            raise CliError("the api stopped unexpectedly")
        if operator_task.done():
            operator_task.result()
            raise CliError("the operator stopped unexpectedly")
    finally:
        if operator_task is not None:
            operator_stop.set()
            with contextlib.suppress(Exception):
                await asyncio.wait_for(operator_task, 15)
        if api_server is not None and api_task is not None:
            api_server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(api_task, 15)
        sock.close()
        await server.stop()
        print("socialpub dev: stopped", flush=True)


async def dev(args: argparse.Namespace) -> None:
    port = args.port if args.port is not None else default_port()
    await run_dev(
        args.state_dir or default_state_dir(), args.kube_port, args.crds or default_crds_dir(), port=port
    )
