"""``socialpub tenants|keys|accounts``: administration of any cluster, as kubectl would reach it.

Each command checks its input, connects, calls :mod:`socialpub.kube` (where the logic lives) and
prints. What a script wants (a key, an id, a table) goes to stdout; anything else to stderr.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections.abc import Sequence
from typing import Any

from socialpub._cli_common import CliError, connect
from socialpub.kube.accounts import account_id, create_sandbox_account, find_accounts
from socialpub.kube.client import KubeClient, NotFound
from socialpub.kube.keys import create_key, list_keys, revoke_key
from socialpub.kube.tenants import Tenant, check_tenant_name, ensure_tenant, get_tenant, list_tenants
from socialpub.models.keys import Mode, Scope
from socialpub.models.platforms import Platform

__all__ = [
    "accounts_add_sandbox",
    "accounts_list",
    "keys_create",
    "keys_list",
    "keys_revoke",
    "tenants_create",
    "tenants_list",
]

_KEY_ID = re.compile(r"^[0-9a-f]{16}$")


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
    check_tenant_name(args.name)
    async with connect(args) as client:
        tenant = await ensure_tenant(client, args.name, display_name=args.display_name)
    print(f"tenant {tenant.name} ({tenant.display_name})")
    print(f"  live namespace:    {tenant.live_namespace}  (sk_live_ keys)")
    print(f"  sandbox namespace: {tenant.sandbox_namespace}  (sk_test_ keys)")


async def tenants_list(args: argparse.Namespace) -> None:
    async with connect(args) as client:
        tenants = await list_tenants(client)
    if args.output == "json":
        _json([dataclasses.asdict(t) for t in tenants])
        return
    rows = [(t.name, t.display_name, t.live_namespace, t.sandbox_namespace) for t in tenants]
    _table(("NAME", "DISPLAY NAME", "LIVE NAMESPACE", "SANDBOX NAMESPACE"), rows)


# keys


async def keys_create(args: argparse.Namespace) -> None:
    scopes = sorted({Scope(s) for s in args.scopes})
    async with connect(args) as client:
        await _tenant(client, args.tenant)
        key, record = await create_key(client, tenant=args.tenant, mode=Mode(args.mode), scopes=scopes)
    print(key, flush=True)
    print(
        f"created key {record.id} for tenant {record.tenant} ({record.mode.value}; "
        f"{', '.join(scopes)}). It is shown only this once: store it now.",
        file=sys.stderr,
    )


async def keys_list(args: argparse.Namespace) -> None:
    async with connect(args) as client:
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
    rows = [
        (r.id, r.mode.value, ",".join(sorted(r.scopes)), r.created_at, r.revoked_at or "-") for r in records
    ]
    _table(("ID", "MODE", "SCOPES", "CREATED", "REVOKED"), rows)


async def keys_revoke(args: argparse.Namespace) -> None:
    if not _KEY_ID.match(args.key_id):
        raise CliError(f"{args.key_id!r} is not a key id (16 hex digits, as `socialpub keys list` shows)", 2)
    async with connect(args) as client:
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
    async with connect(args) as client:
        tenant = await _tenant(client, args.tenant)
        account = await create_sandbox_account(
            client, tenant=tenant, platform=Platform(args.platform), display_name=display_name
        )
    print(account_id(account))


async def accounts_list(args: argparse.Namespace) -> None:
    async with connect(args) as client:
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
    _table(
        ("ID", "MODE", "PLATFORM", "STATUS", "DISPLAY NAME"),
        [(str(r["id"]), r["mode"], r["platform"], r["status"], r["display_name"]) for r in rows],
    )
