"""The kopf handlers: thin, they only feed watch events into the :class:`Engine`.

Every decision lives in the engine (and, purely, in :mod:`decisions`); kopf provides the
watching, logins, peering and liveness. ``on.event`` handlers take no finalizers and store no
progress on our objects: the engine is level-triggered and keeps its own state in ``status``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

import kopf

from socialpub.kube.client import KubeClient, load_connection
from socialpub.kube.resources import GROUP, VERSION
from socialpub.operator.engine import Engine
from socialpub.operator.leadership import LeaseKeeper
from socialpub.operator.live import LiveAdapters
from socialpub.operator.settings import OperatorSettings
from socialpub.operator.tenants import Tenancy
from socialpub.operator.webhooks import WebhookDispatcher

__all__ = ["plain"]


def plain(value: Any) -> Any:
    """A deep copy of a kopf body as plain dicts and lists (kopf hands out read-only views)."""
    if type(value) is dict:
        # The raw watch event's object is JSON already: copying it through C is ~10x faster.
        return json.loads(json.dumps(value))
    if isinstance(value, Mapping):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    return value


class _NoDiffBase(kopf.DiffBaseStorage):
    """No diff base: every handler here is ``on.event`` and the engine is level-triggered, so
    kopf's per-event essence (a deep copy of the object, then a diff) would only cost CPU — more
    than the engine's own work when thousands of posts fall due. Use a real storage again if a
    change-detecting handler (``on.create``/``update``/``field``) is ever added."""

    def build(self, *, body: Any, extra_fields: Any = None) -> Any:
        return {}

    def fetch(self, *, body: Any) -> Any:
        return None

    def store(self, *, body: Any, patch: Any, essence: Any) -> None:
        return None


def _settings(memo: kopf.Memo) -> OperatorSettings:
    settings = getattr(memo, "settings", None)
    return settings if isinstance(settings, OperatorSettings) else OperatorSettings.from_env()


_CHATTY_LOGGERS = ("httpx", "kopf.objects")
"""One INFO line per HTTP request and per watch event: noise at thousands of objects."""


@kopf.on.startup()
async def start_engine(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    ours = _settings(memo)
    for name in _CHATTY_LOGGERS:
        chatty = logging.getLogger(name)
        if chatty.level == logging.NOTSET:  # unless someone configured it on purpose
            chatty.setLevel(logging.WARNING)
    settings.posting.level = logging.WARNING
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = _NoDiffBase()
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.batching.batch_window = 0.02
    settings.batching.idle_timeout = 60
    client = KubeClient.from_config(ours.kubeconfig)
    tenancy = Tenancy(client)  # live or sandbox: which tenant namespace an account is in
    await tenancy.prime()
    memo.tenancy = tenancy
    live = LiveAdapters.from_env(client, mode_of=tenancy.mode_of)  # tokens decrypted per call
    memo.live = live
    lease = getattr(memo, "lease", None)
    engine = Engine(
        client,
        ours,
        live_adapter=live,
        namespace_mode=tenancy.mode_of,
        lease_valid=lease.holding if isinstance(lease, LeaseKeeper) else None,
    )
    webhooks = WebhookDispatcher(client, ours, mode_of=tenancy.mode_of)
    # In the memo before anything starts: if the Lease is lost while the engine primes or the
    # webhooks start, the runner's halt must find them (the engine claims as soon as it starts).
    memo.engine = engine
    memo.webhooks = webhooks
    memo.client = client
    await engine.start()
    await webhooks.start()


@kopf.on.cleanup()
async def stop_engine(memo: kopf.Memo, **_: Any) -> None:
    webhooks = getattr(memo, "webhooks", None)
    if isinstance(webhooks, WebhookDispatcher):
        await webhooks.stop()
    engine = getattr(memo, "engine", None)
    if isinstance(engine, Engine):
        await engine.stop()
        await engine.client.aclose()
    tenancy = getattr(memo, "tenancy", None)
    if isinstance(tenancy, Tenancy):
        tenancy.close()
    live = getattr(memo, "live", None)
    if isinstance(live, LiveAdapters):
        await live.aclose()


@kopf.on.login()
def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo:
    """Log in exactly where our own client connects (kubeconfig setting, ``$KUBECONFIG`` or in-cluster)."""

    conn = load_connection(_settings(memo).kubeconfig)
    return kopf.ConnectionInfo(
        server=conn.server,
        ca_path=conn.ca_path,
        insecure=not conn.verify,
        certificate_path=conn.cert_path,
        private_key_path=conn.key_path,
        token=conn.token,
        default_namespace="default",
    )


def _observe(plural: str, event: Mapping[str, Any], memo: kopf.Memo) -> None:
    body = plain(event.get("object") or {})
    engine = getattr(memo, "engine", None)
    if isinstance(engine, Engine):
        engine.observe(plural, event.get("type"), body)
    webhooks = getattr(memo, "webhooks", None)
    if isinstance(webhooks, WebhookDispatcher):
        webhooks.observe(plural, event.get("type"), body)


@kopf.on.event(GROUP, VERSION, "socialposts")
async def post_event(event: Mapping[str, Any], memo: kopf.Memo, **_: Any) -> None:
    _observe("socialposts", event, memo)


@kopf.on.event(GROUP, VERSION, "socialtargets")
async def target_event(event: Mapping[str, Any], memo: kopf.Memo, **_: Any) -> None:
    _observe("socialtargets", event, memo)


@kopf.on.event(GROUP, VERSION, "socialaccounts")
async def account_event(event: Mapping[str, Any], memo: kopf.Memo, **_: Any) -> None:
    _observe("socialaccounts", event, memo)


@kopf.on.event(GROUP, VERSION, "socialwebhookendpoints")
async def webhook_endpoint_event(event: Mapping[str, Any], memo: kopf.Memo, **_: Any) -> None:
    webhooks = getattr(memo, "webhooks", None)
    if isinstance(webhooks, WebhookDispatcher):
        webhooks.observe("socialwebhookendpoints", event.get("type"), plain(event.get("object") or {}))


@kopf.on.event(GROUP, VERSION, "socialtenants")
async def tenant_event(event: Mapping[str, Any], memo: kopf.Memo, **_: Any) -> None:
    """Keep the namespace → mode view current and write the tenant's status (operator.tenants)."""
    tenancy = getattr(memo, "tenancy", None)
    if isinstance(tenancy, Tenancy):
        for name in tenancy.observe(event.get("type"), plain(event.get("object") or {})):
            await tenancy.reconcile(name)
    _tenancy_changed(memo)


@kopf.on.event("v1", "namespaces")
async def namespace_event(event: Mapping[str, Any], memo: kopf.Memo, **_: Any) -> None:
    """A tenant's namespace appeared or went: its Ready condition changes."""
    tenancy = getattr(memo, "tenancy", None)
    if isinstance(tenancy, Tenancy):
        await tenancy.reconcile_namespace(
            str(((event.get("object") or {}).get("metadata") or {}).get("name"))
        )
    _tenancy_changed(memo)


def _tenancy_changed(memo: kopf.Memo) -> None:
    """Targets waiting for their namespace's tenant (``namespace_not_owned``) look again."""
    engine = getattr(memo, "engine", None)
    if isinstance(engine, Engine):
        engine.tenancy_changed()
