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
from pathlib import Path
from typing import Any

from socialpub._cli_common import CliError, connect
from socialpub.crypto import (
    KEYRING_FILE_ENV,
    DecryptionError,
    KeyRing,
    KeyRingError,
    KeyRingFile,
    KeyRingSourceSpec,
    associated_data,
    is_legacy,
    keyring_source,
    legacy_associated_data,
)
from socialpub.kube.accounts import (
    account_id,
    create_sandbox_account,
    disconnect_account,
    find_accounts,
)
from socialpub.kube.client import KubeClient, NotFound
from socialpub.kube.credentials import (
    KEYRING_SECRET,
    LEGACY_TOKEN_REASON,
    account_connected_status,
    create_live_account,
    live_accounts,
    read_keyring,
    read_token,
    write_keyring,
    write_token,
)
from socialpub.kube.keys import create_key, keys_namespace, list_keys, migrate_keys, revoke_key
from socialpub.kube.resources import ACCOUNTS, SYSTEM_NAMESPACE
from socialpub.kube.tenants import (
    NamespaceTaken,
    Tenant,
    check_tenant_name,
    create_tenant,
    delete_tenant,
    get_tenant,
    list_tenants,
)
from socialpub.models.keys import Mode, Scope
from socialpub.models.platforms import Platform

__all__ = [
    "accounts_add",
    "accounts_add_sandbox",
    "accounts_disconnect",
    "accounts_list",
    "accounts_set_token",
    "encryption_add_key",
    "encryption_init",
    "encryption_rotate",
    "keys_create",
    "keys_list",
    "keys_migrate",
    "keys_revoke",
    "tenants_create",
    "tenants_delete",
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
        try:
            tenant, inherited = await create_tenant(
                client,
                args.name,
                display_name=args.display_name,
                adopt_namespaces=bool(getattr(args, "adopt_namespaces", False)),
            )
        except NamespaceTaken as exc:
            raise CliError(str(exc)) from None
    for inheritance in inherited:
        print(f"warning: adopted {inheritance.describe()}; they now belong to {tenant.name}", file=sys.stderr)
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


async def tenants_delete(args: argparse.Namespace) -> None:
    async with connect(args) as client:
        await _tenant(client, args.name)
        await migrate_keys(client)
        tenant, revoked = await delete_tenant(client, args.name, delete_namespaces=args.delete_namespaces)
    print(f"deleted tenant {tenant.name}; revoked {len(revoked)} key(s)")
    namespaces = f"{tenant.live_namespace} and {tenant.sandbox_namespace}"
    if args.delete_namespaces:
        print(f"  deleting namespaces {namespaces} and everything in them")
    else:
        print(
            f"  kept namespaces {namespaces}: nothing there is served or published any more (scheduled "
            f"posts wait); a tenant created again as {tenant.name!r} takes them over only with "
            "`socialpub tenants create --adopt-namespaces` (--delete-namespaces removes them)",
            file=sys.stderr,
        )


# keys


async def keys_create(args: argparse.Namespace) -> None:
    scopes = sorted({Scope(s) for s in args.scopes})
    async with connect(args) as client:
        await _tenant(client, args.tenant)
        await migrate_keys(client)
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
        await migrate_keys(client)
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


async def keys_migrate(args: argparse.Namespace) -> None:
    async with connect(args) as client:
        changed = await migrate_keys(client)
    print(f"{changed} key record(s) moved or bound to their tenant (keys namespace {keys_namespace()})")


async def keys_revoke(args: argparse.Namespace) -> None:
    if not _KEY_ID.match(args.key_id):
        raise CliError(f"{args.key_id!r} is not a key id (16 hex digits, as `socialpub keys list` shows)", 2)
    async with connect(args) as client:
        await _tenant(client, args.tenant)
        await migrate_keys(client)
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


# live accounts and the encryption key ring


async def _key_ring(client: KubeClient) -> tuple[KeyRing, str | None, KeyRingSourceSpec]:
    """The key ring from its configured source (the file, the environment, else the Secret), the
    Secret's resourceVersion (``None`` unless it came from the Secret), and the source."""
    try:
        source = keyring_source()
        if source.kind == "file":
            assert source.path is not None
            return KeyRingFile(source.path).get(), None, source
    except KeyRingError as exc:
        raise CliError(str(exc)) from None
    if source.ring is not None:
        return source.ring, None, source
    text, version = await read_keyring(client)
    if text is None:
        raise CliError(
            "no encryption key: set SOCIALPUB_ENCRYPTION_KEYRING_FILE or SOCIALPUB_ENCRYPTION_KEY, or "
            "create the development key ring with `socialpub encryption init`"
        )
    try:
        return KeyRing.parse(text, where="the socialpub-encryption Secret"), version, source
    except KeyRingError as exc:
        raise CliError(str(exc)) from None


def _say_source(ring: KeyRing, source: KeyRingSourceSpec) -> None:
    """Say on stderr which key ring (and key) sealed, so sealing with the wrong ring is noticed.

    The CLI takes the ring from where *this machine* is configured; an admin who forgot to set
    ``SOCIALPUB_ENCRYPTION_KEYRING_FILE`` would otherwise seal with the dev Secret silently.
    """
    print(f"sealed with key {ring.active} from {source.describe()}", file=sys.stderr)
    if source.kind == "secret":
        print(
            f"  note: that is the development default; if the operator reads its key ring from a "
            f"file, set {KEYRING_FILE_ENV} here too (and delete the Secret once you have moved)",
            file=sys.stderr,
        )


def _binding(account: dict[str, Any]) -> bytes:
    """A live account's token binding: its namespace, uid and mode (see :mod:`socialpub.crypto`)."""
    meta = account["metadata"]
    return associated_data(namespace=str(meta["namespace"]), uid=str(meta["uid"]), mode=Mode.LIVE.value)


def _read_token(path: str) -> bytes:
    try:
        raw = sys.stdin.buffer.read() if path == "-" else Path(path).read_bytes()
    except OSError as exc:
        raise CliError(f"cannot read the token file {path}: {exc.strerror}", 2) from None
    token = raw.strip()
    if not token or b"\n" in token:
        raise CliError(f"the token file {path} must hold exactly one token", 2)
    return token


async def accounts_add(args: argparse.Namespace) -> None:
    display_name = args.display_name.strip()
    if not 1 <= len(display_name) <= 200:
        raise CliError("--display-name must be 1 to 200 characters", 2)
    external_id = args.external_id.strip()
    if not 1 <= len(external_id) <= 200:
        raise CliError("--external-id must be 1 to 200 characters", 2)
    token = _read_token(args.token_file)
    async with connect(args) as client:
        tenant = await _tenant(client, args.tenant)
        ring, _, source = await _key_ring(client)
        account = await create_live_account(
            client,
            tenant=tenant,
            platform=Platform(args.platform),
            external_id=external_id,
            display_name=display_name,
            seal=lambda account: ring.encrypt(token, _binding(account)),
        )
    _say_source(ring, source)
    print(account_id(account))


async def accounts_set_token(args: argparse.Namespace) -> None:
    token = _read_token(args.token_file)
    async with connect(args) as client:
        tenant = await _tenant(client, args.tenant)
        name = f"account-{args.account_id}"
        try:
            account = await client.get(ACCOUNTS, name, tenant.live_namespace)
        except NotFound:
            raise CliError(f"tenant {tenant.name} has no live account {args.account_id}") from None
        ring, _, source = await _key_ring(client)
        await write_token(client, account, ring.encrypt(token, _binding(account)))
        _say_source(ring, source)
        status = account_connected_status(account, message="Reconnected; the new token is stored encrypted.")
        await client.patch(ACCOUNTS, name, {"status": status}, tenant.live_namespace, subresource="status")
    print(f"account {args.account_id} is active again; its waiting posts publish now", file=sys.stderr)


async def encryption_init(args: argparse.Namespace) -> None:
    try:
        source = keyring_source()
    except KeyRingError as exc:
        raise CliError(str(exc)) from None
    if source.kind != "secret":
        print(
            f"the key ring comes from {source.describe()}; `encryption init` creates only the "
            "development Secret: nothing changed",
            file=sys.stderr,
        )
        return
    async with connect(args) as client:
        text, _ = await read_keyring(client)
        if text is not None:
            ring = KeyRing.from_json(text)
            print(f"the key ring exists (active key {ring.active}); nothing changed", file=sys.stderr)
            return
        ring = KeyRing.generate()
        await write_keyring(client, ring.to_json(), resource_version=None)
    print(f"created the key ring with key {ring.active} (Secret {SYSTEM_NAMESPACE}/{KEYRING_SECRET})")


def encryption_add_key(args: argparse.Namespace) -> None:
    """Print the key ring read from ``--from`` (or a new one) with a new key, made active.

    For key rings kept outside the cluster: store the output in the secret store that feeds the
    operator's mounted file, wait until the operator sees it, then run ``encryption rotate``.
    """
    if args.from_file:
        ring = KeyRingFile(args.from_file).get() if args.from_file != "-" else None
        if ring is None:
            ring = KeyRing.parse(sys.stdin.read(), where="the key ring on stdin")
        ring = ring.with_new_key()
    else:
        ring = KeyRing.generate()
    print(ring.to_json())
    print(f"active key: {ring.active} (of {', '.join(sorted(ring.keys))})", file=sys.stderr)


async def encryption_rotate(args: argparse.Namespace) -> None:
    async with connect(args) as client:
        ring, version, source = await _key_ring(client)
        if args.new_key:
            if source.kind != "secret":
                raise CliError(
                    f"the key ring comes from {source.describe()}: add the new key there and make it "
                    "active (`socialpub encryption add-key --from <current file>` prints such a ring), "
                    "let the operator's file follow, then run `socialpub encryption rotate` without --new-key"
                )
            ring = ring.with_new_key()
            await write_keyring(client, ring.to_json(), resource_version=version)
            print(f"added key {ring.active} and made it active", file=sys.stderr)
        rotated = total = 0
        for tenant in await list_tenants(client):
            for account in await live_accounts(client, tenant.live_namespace):
                name = account["metadata"]["name"]
                try:
                    sealed = await read_token(client, account)
                except NotFound:
                    continue
                total += 1
                if not ring.needs_rotation(sealed):
                    continue
                legacy = is_legacy(sealed)
                try:
                    fresh = ring.rotate(
                        sealed, _binding(account), legacy_aad=legacy_associated_data(tenant.name, name)
                    )
                except DecryptionError as exc:
                    print(f"skipped {tenant.live_namespace}/{name}: {exc}", file=sys.stderr)
                    continue
                await write_token(client, account, fresh)
                rotated += 1
                if legacy:
                    await _reactivate_if_waiting(client, account)
    print(f"re-encrypted {rotated} of {total} token(s) under key {ring.active}")
    _say_source(ring, source)


async def _reactivate_if_waiting(client: KubeClient, account: dict[str, Any]) -> None:
    """An account the operator parked because its token was legacy (v1) is usable again."""
    status = account.get("status") or {}
    ready: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), {})
    if ready.get("reason") != LEGACY_TOKEN_REASON:
        return
    fresh = account_connected_status(account, message="Token re-sealed for this account; usable again.")
    meta = account["metadata"]
    await client.patch(ACCOUNTS, meta["name"], {"status": fresh}, meta["namespace"], subresource="status")


async def accounts_disconnect(args: argparse.Namespace) -> None:
    async with connect(args) as client:
        tenant = await _tenant(client, args.tenant)
        namespace = tenant.namespace(Mode(args.mode))
        try:
            account = await client.get(ACCOUNTS, f"account-{args.account_id}", namespace)
        except NotFound:
            raise CliError(f"tenant {args.tenant!r} has no {args.mode} account {args.account_id}") from None
        updated = await disconnect_account(client, account)
    print(f"account {account_id(updated)} is {(updated.get('status') or {}).get('state')}")
