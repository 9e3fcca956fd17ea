"""``socialpub …``: the command line of the whole system.

``socialpub dev`` is what ``make run`` starts: the embedded Kubernetes API with the CRDs applied,
a demo tenant with sandbox accounts and a test key, and the api beside it in the same process.
``socialpub api`` serves the REST facade alone (the container command). The admin commands
(``tenants``, ``keys``, ``accounts``) talk to whatever cluster ``--kubeconfig``/``$KUBECONFIG``
names, like kubectl.

This module only declares the commands; they live in :mod:`socialpub._cli_admin`,
:mod:`socialpub._cli_dev` and :mod:`socialpub._cli_webhooks`, and their logic in
:mod:`socialpub.kube`. A failure is one line on stderr and exit code 1 (2 for bad input), never a
traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import inspect
import logging
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx

from socialpub import _cli_admin, _cli_dev, _cli_webhooks
from socialpub._cli_common import CliError
from socialpub.kube.client import KubeError
from socialpub.kube.tenants import TenantNameError
from socialpub.models.keys import Mode, Scope
from socialpub.models.platforms import Platform
from socialpub.webhooks.events import EVENT_TYPES

__all__ = ["main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="socialpub", description="socialpub: one post, every network.")
    parser.add_argument("--kubeconfig", default=None, help="kubeconfig of the cluster (default: $KUBECONFIG)")
    # Accepted after the command too (`socialpub keys list --kubeconfig …`), without overriding.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--kubeconfig", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    listing = argparse.ArgumentParser(add_help=False)
    listing.add_argument("-o", "--output", choices=("table", "json"), default="table")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(
        group: Any, name: str, run: Callable[[argparse.Namespace], Any], help: str, *parents: Any
    ) -> Any:
        sub = group.add_parser(name, help=help, description=help, parents=[common, *parents])
        sub.set_defaults(run=run)
        return sub

    d = command(commands, "dev", _cli_dev.dev, "run the whole system locally on the embedded Kubernetes API")
    d.add_argument(
        "--state-dir", type=Path, help="where state lives (env SOCIALPUB_STATE_DIR, default .socialpub)"
    )
    d.add_argument("--port", type=int, help="port of the api on 127.0.0.1 (env SOCIALPUB_PORT, default 8000)")
    d.add_argument(
        "--kube-port", type=int, default=0, help="port of the embedded Kubernetes API (default: free)"
    )
    d.add_argument("--crds", type=Path, help="directory of CRDs to apply (default: the repo's crds/)")

    a = command(commands, "api", _cli_dev.api, "serve the REST api (the container command)")
    a.add_argument("--host", default=os.environ.get("SOCIALPUB_HOST", "127.0.0.1"), help="default 127.0.0.1")
    a.add_argument("--port", type=int, help="default: env SOCIALPUB_PORT or 8000")

    o = command(commands, "operator", _cli_dev.operator, "run the operator (the container command)")
    o.add_argument(
        "--liveness", help="serve kopf's liveness probe at this URL, e.g. http://0.0.0.0:8080/healthz"
    )

    tenants = commands.add_parser("tenants", help="tenants and their namespaces").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    t = command(
        tenants, "create", _cli_admin.tenants_create, "create a tenant and its live and sandbox namespaces"
    )
    t.add_argument("name", help="a DNS label of at most 40 characters; it prefixes the namespaces")
    t.add_argument("--display-name", help="human-readable name (default: the name)")
    t.add_argument(
        "--adopt-namespaces",
        action="store_true",
        help="take over namespaces made for an earlier tenant (one deleted under this name), with "
        "the accounts, tokens and posts in them",
    )
    command(tenants, "list", _cli_admin.tenants_list, "list tenants", listing)
    t = command(
        tenants,
        "delete",
        _cli_admin.tenants_delete,
        "delete a tenant and revoke its keys (its namespaces are kept unless --delete-namespaces)",
    )
    t.add_argument("name")
    t.add_argument(
        "--delete-namespaces",
        action="store_true",
        help="also delete its live and sandbox namespaces and everything in them (accounts, posts, tokens)",
    )

    keys = commands.add_parser("keys", help="API keys (stored only as hashes)").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    k = command(
        keys, "create", _cli_admin.keys_create, "create a key and print it once (only the key, on stdout)"
    )
    k.add_argument("--tenant", required=True)
    k.add_argument("--mode", required=True, choices=[m.value for m in Mode], help="test: sandbox; live: real")
    k.add_argument("--scope", dest="scopes", action="append", required=True, choices=[s.value for s in Scope])
    k = command(
        keys, "list", _cli_admin.keys_list, "list a tenant's keys (never the keys themselves)", listing
    )
    k.add_argument("--tenant", required=True)
    k = command(keys, "revoke", _cli_admin.keys_revoke, "revoke a key (the api refuses it within a second)")
    k.add_argument("--tenant", required=True)
    k.add_argument("key_id", metavar="KEY_ID", help="the key's id, as `socialpub keys list` shows")
    command(
        keys,
        "migrate",
        _cli_admin.keys_migrate,
        "move key records into the keys namespace and bind them to their tenant (keys commands do it too)",
    )

    accounts = commands.add_parser("accounts", help="social accounts").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    s = command(
        accounts,
        "add-sandbox",
        _cli_admin.accounts_add_sandbox,
        "add an active sandbox account; prints its id",
    )
    s.add_argument("--tenant", required=True)
    s.add_argument("--platform", required=True, choices=[p.value for p in Platform])
    s.add_argument("--display-name", required=True)
    s = command(
        accounts, "list", _cli_admin.accounts_list, "list a tenant's accounts, live and sandbox", listing
    )
    s.add_argument("--tenant", required=True)
    s = command(
        accounts,
        "add",
        _cli_admin.accounts_add,
        "add a live account with its token (encrypted); prints its id",
    )
    s.add_argument("--tenant", required=True)
    s.add_argument("--platform", required=True, choices=[p.value for p in Platform])
    s.add_argument("--external-id", required=True, help="LinkedIn organization id/URN, Page id, IG user id")
    s.add_argument("--display-name", required=True)
    s.add_argument("--token-file", required=True, help="file holding the access token ('-': stdin)")
    s = command(
        accounts,
        "set-token",
        _cli_admin.accounts_set_token,
        "store a new token for a live account (reconnect)",
    )
    s.add_argument("--tenant", required=True)
    s.add_argument("--token-file", required=True, help="file holding the access token ('-': stdin)")
    s.add_argument("account_id", metavar="ACCOUNT_ID", type=int, help="the live account's id")
    s = command(
        accounts,
        "disconnect",
        _cli_admin.accounts_disconnect,
        "mark an account disconnected (records social.account_disconnected)",
    )
    s.add_argument("--tenant", required=True)
    s.add_argument("--mode", choices=[m.value for m in Mode], default=Mode.TEST.value, help="default: test")
    s.add_argument("account_id", metavar="ACCOUNT_ID", type=int)

    encryption = commands.add_parser("encryption", help="the key ring that encrypts tokens").add_subparsers(
        dest="action", required=True, metavar="ACTION"
    )
    command(encryption, "init", _cli_admin.encryption_init, "create the key ring Secret if there is none")
    e = command(
        encryption, "rotate", _cli_admin.encryption_rotate, "re-encrypt every token under the active key"
    )
    e.add_argument(
        "--new-key",
        action="store_true",
        help="first add a new key to the ring (the development Secret) and make it active",
    )
    e = command(
        encryption,
        "add-key",
        _cli_admin.encryption_add_key,
        "print a key ring with a new active key (for a key ring kept in a file or secret store)",
    )
    e.add_argument(
        "--from", dest="from_file", help="the current key ring file ('-': stdin); default: a new ring"
    )

    webhooks = commands.add_parser(
        "webhooks", help="webhook endpoints (Standard Webhooks, delivered by the operator)"
    ).add_subparsers(dest="action", required=True, metavar="ACTION")
    w = command(
        webhooks,
        "add",
        _cli_webhooks.webhooks_add,
        "add an endpoint; prints its signing secret once (only the secret, on stdout)",
    )
    w.add_argument("--tenant", required=True)
    w.add_argument("--mode", required=True, choices=[m.value for m in Mode], help="test: sandbox; live: real")
    w.add_argument("--url", required=True, help="https:// (http:// allowed in test mode)")
    w.add_argument(
        "--event", dest="events", action="append", choices=EVENT_TYPES, help="repeat; default: every event"
    )
    w.add_argument(
        "--allow-loopback",
        action="store_true",
        help="accept a loopback URL, for local receivers (env SOCIALPUB_WEBHOOK_ALLOW_LOOPBACK)",
    )
    w = command(
        webhooks, "list", _cli_webhooks.webhooks_list, "list a tenant's endpoints and their health", listing
    )
    w.add_argument("--tenant", required=True)
    for name, run, about in (
        ("remove", _cli_webhooks.webhooks_remove, "remove an endpoint (its secret and delivery records too)"),
        (
            "rotate-secret",
            _cli_webhooks.webhooks_rotate_secret,
            "new signing secret, printed once; the old one keeps signing for --overlap-hours (24)",
        ),
    ):
        w = command(webhooks, name, run, about)
        w.add_argument("--tenant", required=True)
        w.add_argument("--mode", choices=[m.value for m in Mode], help="needed if both modes have ENDPOINT")
        w.add_argument("endpoint", metavar="ENDPOINT", help="the endpoint's id or name")
        if name == "rotate-secret":
            w.add_argument("--overlap-hours", type=float, default=24.0)
    return parser


def _fail(message: str, code: int) -> None:
    print(f"socialpub: {' '.join(message.split())}", file=sys.stderr)
    sys.exit(code)


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    serving = args.command in ("dev", "api", "operator")
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
