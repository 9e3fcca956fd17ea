"""``socialpub …``: the command line of the whole system.

``socialpub dev`` is what ``make run`` starts: the embedded Kubernetes API with the CRDs applied,
a demo tenant with sandbox accounts and a test key, and the api beside it in the same process.
``socialpub api`` serves the REST facade on its own (the container command). The admin commands
(``tenants``, ``keys``, ``accounts``) talk to whatever cluster ``--kubeconfig``/``$KUBECONFIG``
names, like kubectl; their logic lives in :mod:`socialpub.kube`, this module only parses and prints.

Output discipline: what a script wants (a key, an id, a table) goes to stdout; everything else to
stderr. A failure is one line on stderr and exit code 1 (2 for bad input), never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import importlib
import inspect
import json
import logging
import os
import re
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import uvicorn

from socialpub.api.settings import ApiSettings
from socialpub.kube.accounts import account_id, create_sandbox_account, ensure_sandbox_account, find_accounts
from socialpub.kube.client import KubeClient, KubeError, NotFound
from socialpub.kube.keys import create_key, find_key, list_keys, revoke_key
from socialpub.kube.tenants import Tenant, TenantNameError, check_tenant_name, ensure_tenant, get_tenant
from socialpub.kube.tenants import list_tenants as kube_list_tenants
from socialpub.models.keys import Mode, Scope
from socialpub.models.platforms import Platform

if TYPE_CHECKING:
    from fastapi import FastAPI

__all__ = ["main", "run_dev"]

_REPO_CRDS = Path(__file__).resolve().parent.parent / "crds"
_API_APP = "socialpub.api.app"
_KEY_ID = re.compile(r"^[0-9a-f]{16}$")

DEMO_TENANT = "demo"
DEMO_ACCOUNTS = ((Platform.LINKEDIN, "Acme Co"), (Platform.FACEBOOK, "Acme Co"), (Platform.INSTAGRAM, "@acme"))


class CliError(Exception):
    """A failure to report in one line, with the exit code (1: it failed, 2: the input was wrong)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


def _default_state_dir() -> Path:
    return Path(os.environ.get("SOCIALPUB_STATE_DIR", ".socialpub"))


def _default_crds_dir() -> Path:
    return Path(os.environ.get("SOCIALPUB_CRDS_DIR", str(_REPO_CRDS)))


def _default_port() -> int:
    value = os.environ.get("SOCIALPUB_PORT", "8000")
    try:
        return int(value)
    except ValueError:
        raise CliError(f"SOCIALPUB_PORT={value!r} is not a port number", 2) from None


# Talking to the cluster.


@contextlib.asynccontextmanager
async def _connect(args: argparse.Namespace) -> AsyncIterator[KubeClient]:
    from kubernetes.config.config_exception import ConfigException

    try:
        client = KubeClient.from_config(args.kubeconfig)
    except (ConfigException, OSError, ValueError) as exc:
        raise CliError(f"cannot load the kubeconfig: {exc}") from None
    try:
        yield client
    except httpx.HTTPError as exc:
        raise CliError(f"cannot reach the Kubernetes API at {client.base_url}: {exc}") from None
    finally:
        await client.aclose()


async def _tenant(client: KubeClient, name: str) -> Tenant:
    try:
        return await get_tenant(client, check_tenant_name(name))
    except NotFound:
        raise CliError(f"no tenant {name!r} (create it with: socialpub tenants create {name})") from None


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(str(c)) for c in column) for column in zip(headers, *rows, strict=False)]
    for row in (headers, *rows):
        print("   ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def _json(value: Any) -> None:
    print(json.dumps(value, indent=2))


# tenants


async def tenants_create(args: argparse.Namespace) -> None:
    async with _connect(args) as client:
        tenant = await ensure_tenant(client, args.name, display_name=args.display_name)
    print(f"tenant {tenant.name} ({tenant.display_name})")
    print(f"  live namespace:    {tenant.live_namespace}  (sk_live_ keys)")
    print(f"  sandbox namespace: {tenant.sandbox_namespace}  (sk_test_ keys)")


async def tenants_list(args: argparse.Namespace) -> None:
    async with _connect(args) as client:
        tenants = await kube_list_tenants(client)
    if args.output == "json":
        _json([dataclasses.asdict(t) for t in tenants])
        return
    rows = [(t.name, t.display_name, t.live_namespace, t.sandbox_namespace) for t in tenants]
    _table(("NAME", "DISPLAY NAME", "LIVE NAMESPACE", "SANDBOX NAMESPACE"), rows)


# keys


async def keys_create(args: argparse.Namespace) -> None:
    scopes = sorted({Scope(s) for s in args.scopes})
    async with _connect(args) as client:
        await _tenant(client, args.tenant)
        key, record = await create_key(client, tenant=args.tenant, mode=Mode(args.mode), scopes=scopes)
    print(key, flush=True)
    print(
        f"created key {record.id} for tenant {record.tenant} ({record.mode.value}; "
        f"{', '.join(scopes)}). It is shown only this once: store it now.",
        file=sys.stderr,
    )


async def keys_list(args: argparse.Namespace) -> None:
    async with _connect(args) as client:
        await _tenant(client, args.tenant)
        records = await list_keys(client, tenant=args.tenant)
    if args.output == "json":
        _json(
            [
                {
                    "id": r.id,
                    "mode": r.mode.value,
                    "scopes": sorted(r.scopes),
                    "created_at": r.created_at,
                    "revoked_at": r.revoked_at,
                }
                for r in records
            ]
        )
        return
    rows = [(r.id, r.mode.value, ",".join(sorted(r.scopes)), r.created_at, r.revoked_at or "-") for r in records]
    _table(("ID", "MODE", "SCOPES", "CREATED", "REVOKED"), rows)


async def keys_revoke(args: argparse.Namespace) -> None:
    if not _KEY_ID.match(args.key_id):
        raise CliError(f"{args.key_id!r} is not a key id (16 hex digits, as `socialpub keys list` shows)", 2)
    async with _connect(args) as client:
        await _tenant(client, args.tenant)
        try:
            record = await revoke_key(client, tenant=args.tenant, key_id_=args.key_id)
        except NotFound:
            raise CliError(f"tenant {args.tenant!r} has no key {args.key_id}") from None
    print(f"key {record.id} revoked at {record.revoked_at}")


# accounts


async def accounts_add_sandbox(args: argparse.Namespace) -> None:
    display_name = args.display_name.strip()
    if not 1 <= len(display_name) <= 200:
        raise CliError("--display-name must be 1 to 200 characters", 2)
    async with _connect(args) as client:
        tenant = await _tenant(client, args.tenant)
        account = await create_sandbox_account(
            client, tenant=tenant, platform=Platform(args.platform), display_name=display_name
        )
    print(account_id(account))


async def accounts_list(args: argparse.Namespace) -> None:
    async with _connect(args) as client:
        tenant = await _tenant(client, args.tenant)
        found = [(m, a) for m in Mode for a in await find_accounts(client, tenant.namespace(m))]
    rows = [
        {
            "id": account_id(a),
            "mode": m.value,
            "platform": (a.get("spec") or {}).get("platform", ""),
            "display_name": (a.get("spec") or {}).get("displayName", ""),
            "status": (a.get("status") or {}).get("state") or "pending",
        }
        for m, a in found
    ]
    if args.output == "json":
        _json(rows)
        return
    _table(("ID", "MODE", "PLATFORM", "STATUS", "DISPLAY NAME"), [
        (str(r["id"]), r["mode"], r["platform"], r["status"], r["display_name"]) for r in rows
    ])


# api


def _load_create_app() -> Callable[[ApiSettings], FastAPI] | None:
    """The api's app factory, or ``None`` while :mod:`socialpub.api.app` does not exist yet."""
    try:
        module = importlib.import_module(_API_APP)
    except ModuleNotFoundError as exc:
        if exc.name == _API_APP:
            return None
        raise
    factory: Callable[[ApiSettings], FastAPI] = module.create_app
    return factory


def api(args: argparse.Namespace) -> None:
    if _load_create_app() is None:
        raise CliError(f"the api is not installed ({_API_APP} is missing)")
    if args.kubeconfig:
        os.environ["KUBECONFIG"] = str(args.kubeconfig)  # ApiSettings.from_env() reads it
    port = args.port if args.port is not None else _default_port()
    uvicorn.run(f"{_API_APP}:create_app", factory=True, host=args.host, port=port, log_config=None)


# dev


class _ApiServer(uvicorn.Server):
    """uvicorn without its own signal handlers: ``socialpub dev`` owns SIGINT and SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    async def run_until_stopped(self, sock: socket.socket) -> None:
        try:
            await self.serve(sockets=[sock])
        except SystemExit as exc:  # uvicorn exits the process when its startup fails
            raise RuntimeError(f"the api failed to start (exit code {exc.code})") from None


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
        if (
            record is not None
            and record.active
            and record.tenant == DEMO_TENANT
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
    from socialpub.embedded.kubeconfig import write_kubeconfig
    from socialpub.embedded.server import EmbeddedKubeServer, ServerSettings, apply_manifest, load_manifests

    create_app = _load_create_app()
    sock = _listen(host, port) if create_app is not None else None
    server = EmbeddedKubeServer(state_dir, ServerSettings(port=kube_port))
    try:
        await server.start()
    except OSError as exc:
        if sock is not None:
            sock.close()
        raise CliError(f"cannot start the embedded Kubernetes API on port {kube_port}: {exc.strerror}") from None
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError):
            loop.add_signal_handler(sig, stop.set)
    api_server: _ApiServer | None = None
    api_task: asyncio.Task[None] | None = None
    try:
        for doc in load_manifests(crds_dir):
            await apply_manifest(server.cluster, server.registry, doc)
        kubeconfig = write_kubeconfig(state_dir / "kubeconfig", server.url)
        print(f"socialpub dev: embedded Kubernetes API on {server.url} (state in {state_dir})", flush=True)
        print(f"  export KUBECONFIG={kubeconfig.resolve()}", flush=True)
        print("  kubectl get crds; kubectl get social -A", flush=True)

        client = KubeClient.from_config(str(kubeconfig))
        try:
            tenant, accounts, key = await seed_demo(client, state_dir / "dev-key")
        finally:
            await client.aclose()
        print(f"socialpub dev: tenant {tenant.name!r}, sandbox accounts in {tenant.sandbox_namespace}:")
        for account in accounts:
            spec = account.get("spec") or {}
            print(f"  id {account_id(account)}: {spec.get('platform')} {spec.get('displayName')!r}")
        print(f"  test key (all scopes; kept in {state_dir / 'dev-key'}): {key}", flush=True)

        if create_app is not None and sock is not None:
            settings = dataclasses.replace(ApiSettings.from_env(), kubeconfig=str(kubeconfig))
            config = uvicorn.Config(
                create_app(settings), log_config=None, lifespan="on", timeout_graceful_shutdown=5
            )
            api_server = _ApiServer(config)
            api_task = asyncio.create_task(api_server.run_until_stopped(sock), name="api")
            while not api_server.started and not api_task.done() and not stop.is_set():
                await asyncio.sleep(0.02)
            if api_task.done():
                api_task.result()
            bound_host, bound_port = sock.getsockname()[:2]
            base = f"http://{bound_host}:{bound_port}"
            print(f"socialpub dev: api on {base} (OpenAPI docs: {base}/docs)", flush=True)
            print(f'  curl -H "Authorization: Bearer {key}" {base}/api/v1/services/social/accounts', flush=True)
        else:
            print(f"socialpub dev: api not started ({_API_APP} is not installed yet)", flush=True)

        # The operator joins here (a later issue): start it as a task beside the api, on the same
        # kubeconfig, and stop it in ``finally`` before the embedded API goes away.

        print(f"socialpub dev: ready. Ctrl-C stops it; state survives in {state_dir}", flush=True)
        if ready is not None:
            ready.set()
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(stop.wait())]
        if api_task is not None:
            waiters.append(api_task)
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
        waiters[0].cancel()
        if api_task is not None and api_task.done():
            api_task.result()
            raise CliError("the api stopped unexpectedly")
    finally:
        if api_server is not None and api_task is not None:
            api_server.should_exit = True
            with contextlib.suppress(Exception):
                await asyncio.wait_for(api_task, 15)
        if sock is not None:
            sock.close()
        await server.stop()
        print("socialpub dev: stopped", flush=True)


async def dev(args: argparse.Namespace) -> None:
    port = args.port if args.port is not None else _default_port()
    await run_dev(
        args.state_dir or _default_state_dir(), args.kube_port, args.crds or _default_crds_dir(), port=port
    )


# The command line.


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="socialpub", description="socialpub: one post, every network.")
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig of the cluster (default: $KUBECONFIG)")
    # Accepted after the command too (`socialpub keys list --kubeconfig …`), without overriding.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--kubeconfig", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    listing = argparse.ArgumentParser(add_help=False)
    listing.add_argument("-o", "--output", choices=("table", "json"), default="table")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(group: Any, name: str, run: Callable[[argparse.Namespace], Any], help: str, *parents: Any) -> Any:
        sub = group.add_parser(name, help=help, description=help, parents=[common, *parents])
        sub.set_defaults(run=run)
        return sub

    d = command(commands, "dev", dev, "run the whole system locally on the embedded Kubernetes API")
    d.add_argument("--state-dir", type=Path, help="where state lives (env SOCIALPUB_STATE_DIR, default .socialpub)")
    d.add_argument("--port", type=int, help="port of the api on 127.0.0.1 (env SOCIALPUB_PORT, default 8000)")
    d.add_argument("--kube-port", type=int, default=0, help="port of the embedded Kubernetes API (default: free)")
    d.add_argument("--crds", type=Path, help="directory of CRDs to apply (default: the repo's crds/)")

    a = command(commands, "api", api, "serve the REST api (the container command)")
    a.add_argument("--host", default=os.environ.get("SOCIALPUB_HOST", "127.0.0.1"), help="default 127.0.0.1")
    a.add_argument("--port", type=int, help="default: env SOCIALPUB_PORT or 8000")

    tenants = commands.add_parser("tenants", help="tenants and their namespaces").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    t = command(tenants, "create", tenants_create, "create a tenant and its live and sandbox namespaces")
    t.add_argument("name", help="a DNS label of at most 40 characters; it prefixes the namespaces")
    t.add_argument("--display-name", help="human-readable name (default: the name)")
    command(tenants, "list", tenants_list, "list tenants", listing)

    keys = commands.add_parser("keys", help="API keys (stored only as hashes)").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    k = command(keys, "create", keys_create, "create a key and print it once (only the key, on stdout)")
    k.add_argument("--tenant", required=True)
    k.add_argument("--mode", required=True, choices=[m.value for m in Mode], help="test: sandbox; live: real")
    k.add_argument("--scope", dest="scopes", action="append", required=True, choices=[s.value for s in Scope])
    k = command(keys, "list", keys_list, "list a tenant's keys (never the keys themselves)", listing)
    k.add_argument("--tenant", required=True)
    k = command(keys, "revoke", keys_revoke, "revoke a key (the api refuses it within a second)")
    k.add_argument("--tenant", required=True)
    k.add_argument("key_id", metavar="KEY_ID", help="the key's id, as `socialpub keys list` shows")

    accounts = commands.add_parser("accounts", help="social accounts").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    s = command(accounts, "add-sandbox", accounts_add_sandbox, "add an active sandbox account; prints its id")
    s.add_argument("--tenant", required=True)
    s.add_argument("--platform", required=True, choices=[p.value for p in Platform])
    s.add_argument("--display-name", required=True)
    s = command(accounts, "list", accounts_list, "list a tenant's accounts, live and sandbox", listing)
    s.add_argument("--tenant", required=True)
    return parser


def _fail(message: str, code: int) -> None:
    print(f"socialpub: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    serving = args.command in ("dev", "api")
    logging.basicConfig(
        level=logging.INFO if serving else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    logging.getLogger("httpx").setLevel(logging.WARNING)
    try:
        result = args.run(args)
        if inspect.iscoroutine(result):
            asyncio.run(result)
    except CliError as exc:
        _fail(str(exc), exc.code)
    except TenantNameError as exc:
        _fail(str(exc), 2)
    except KubeError as exc:
        _fail(f"the Kubernetes API answered {exc.status} {exc.reason}: {exc.message}", 1)
    except httpx.HTTPError as exc:
        _fail(f"cannot reach the Kubernetes API: {exc}", 1)
    except OSError as exc:
        _fail(str(exc), 1)
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
