"""The HTTP face of the embedded Kubernetes API (aiohttp).

Parses Kubernetes API URLs and query options, hands the decision to :class:`Cluster`, and
renders the result: JSON objects and lists, ``Table`` for kubectl, chunked watch streams, and a
``kind: Status`` body for every error. It binds to loopback only and answers only requests that
carry its bearer token, name it by its loopback address, and do not come from a web page (see
:mod:`socialpub.embedded.access`): it is the embedded default for a laptop and for tests, not a
production control plane.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from socialpub.embedded import discovery, openapi, protobuf
from socialpub.embedded.access import AccessPolicy, loopback_hosts
from socialpub.embedded.cluster import Cluster, WriteOptions, WriteResult
from socialpub.embedded.errors import ApiError, status_body
from socialpub.embedded.registry import Registry, ResourceType
from socialpub.embedded.selectors import FieldSelector, LabelSelector, SelectorError
from socialpub.embedded.statedir import ensure_private_dir, load_or_create_token, touch_private
from socialpub.embedded.store import Store, encode_event
from socialpub.embedded.tables import TableBuilder, wants_table
from socialpub.embedded.tls import TlsIdentity, load_or_create_identity
from socialpub.embedded.watching import Watcher, WatchHub

__all__ = ["EmbeddedKubeServer", "ServerSettings", "apply_manifest", "load_manifests"]

logger = logging.getLogger(__name__)

_MAX_BODY = 3 * 1024 * 1024
_JSON = "application/json"
_YAML_TYPES = ("application/yaml", "application/apply-patch+yaml", "application/x-yaml", "text/yaml")
_TRUE = ("true", "1", "yes")
_DISCONNECT_CHECK = 2.0
"""How often an idle watch checks whether its client is still connected (seconds)."""
_PATCH_TYPES = (
    "application/merge-patch+json",
    "application/json-patch+json",
    "application/strategic-merge-patch+json",
    "application/apply-patch+yaml",
)


class _YamlLoader(yaml.SafeLoader):
    """YAML as kube-apiserver reads it (sigs.k8s.io/yaml): timestamps stay the strings written."""


_YamlLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


@dataclass
class ServerSettings:
    """Knobs of the embedded server; the defaults suit ``socialpub dev``."""

    host: str = "127.0.0.1"
    port: int = 0
    history: int = 10_000
    """How many recent changes are kept for watches resuming from an older resourceVersion."""
    bookmark_interval: float = 60.0
    default_watch_timeout: float = 1800.0
    token: str | None = None
    """The bearer token clients must present; ``None``: the state directory's ``token`` file
    (created on first start), or a random one for an in-memory server."""


@dataclass
class _Target:
    """What a resource URL names."""

    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None


def _json_response(body: Any, *, status: int = 200, headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(),
        status=status,
        content_type=_JSON,
        headers=headers,
    )


def _error_response(error: ApiError) -> web.Response:
    return _json_response(status_body(error), status=error.code, headers=error.headers)


def _flag(query: Mapping[str, str], name: str) -> bool:
    return query.get(name, "").lower() in _TRUE


class EmbeddedKubeServer:
    """One process serving the Kubernetes API over SQLite-backed storage.

    Example::

        server = EmbeddedKubeServer(Path(".socialpub"))
        await server.start()
        print(server.url)      # https://127.0.0.1:<port>
        ...
        await server.stop()
    """

    def __init__(self, state_dir: Path | None, settings: ServerSettings | None = None) -> None:
        self.settings = settings or ServerSettings()
        self._state_dir = state_dir
        db = None
        if state_dir is not None:
            ensure_private_dir(state_dir)
            db = touch_private(state_dir / "kube.sqlite3")  # SQLite gives -wal/-shm its mode
        self.token = self.settings.token or (
            load_or_create_token(state_dir) if state_dir is not None else secrets.token_urlsafe(32)
        )
        """What clients send as ``Authorization: Bearer …`` (written into the kubeconfig)."""
        self.tls: TlsIdentity = load_or_create_identity(state_dir)
        """The server's certificate and its CA (whose certificate the kubeconfig carries)."""
        self._access: AccessPolicy | None = None
        self.store = Store(db, history=self.settings.history)
        self.registry = Registry()
        self.cluster = Cluster(self.store, self.registry)
        self.watches: WatchHub | None = None
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self.port = 0

    @property
    def url(self) -> str:
        host = self.settings.host
        return f"https://{f'[{host}]' if ':' in host else host}:{self.port}"

    async def start(self) -> None:
        self.store.open()
        self.watches = WatchHub(self.store)
        await self.cluster.bootstrap()
        app = web.Application(client_max_size=_MAX_BODY, middlewares=[self._errors])
        app.router.add_route("*", "/{tail:.*}", self._route)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(
            self._runner,
            self.settings.host,
            self.settings.port,
            reuse_address=True,
            ssl_context=self.tls.server_context(),
        )
        if self.settings.port:  # known already: serve clients that reconnect the moment it listens
            self._access = AccessPolicy(self.token, loopback_hosts(self.settings.host, self.settings.port))
        await site.start()
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.settings.port
        self._access = AccessPolicy(self.token, loopback_hosts(self.settings.host, self.port))
        logger.info("embedded Kubernetes API listening on %s", self.url)

    async def stop(self) -> None:
        self._stopping.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        if self.watches is not None:
            self.watches.stop()
        await self.store.close()

    # Middleware and routing.

    @web.middleware
    async def _errors(
        self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        try:
            if self._access is None:
                raise ApiError(503, "ServiceUnavailable", "the server is starting")
            self._access.check(request.path.rstrip("/") or "/", request.headers)
            return await handler(request)
        except ApiError as error:
            return _error_response(error)
        except web.HTTPRequestEntityTooLarge:
            return _error_response(ApiError(413, "RequestEntityTooLarge", "the request body is too large"))
        except web.HTTPException:
            raise
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception:
            logger.exception("internal error serving %s %s", request.method, request.path)
            return _error_response(ApiError(500, "InternalError", "an internal error occurred"))

    async def _route(self, request: web.Request) -> web.StreamResponse:
        path = request.path.rstrip("/") or "/"
        parts = [p for p in path.split("/") if p]
        method = request.method
        if method == "GET":
            fixed = self._fixed_document(path, parts)
            if fixed is not None:
                return _json_response(fixed)
        if len(parts) >= 3 and parts[0] == "api" and parts[1] == "v1":
            target = self._resolve("", "v1", parts[2:])
        elif len(parts) >= 4 and parts[0] == "apis":
            target = self._resolve(parts[1], parts[2], parts[3:])
        else:
            raise ApiError.no_route()
        return await self._serve(request, target)

    def _fixed_document(self, path: str, parts: list[str]) -> Any:
        """Discovery, version, health and OpenAPI documents (``None`` when ``path`` is not one)."""
        if path in ("/healthz", "/livez", "/readyz"):
            return "ok"
        if path == "/version":
            return discovery.SERVER_VERSION
        if path == "/api":
            return discovery.core_versions()
        if path == "/apis":
            return discovery.api_group_list(self.registry)
        if path == "/openapi/v3":
            return openapi.v3_index(self.registry)
        if path == "/openapi/v2":
            return openapi.v2_document(self.registry)
        if parts[:2] == ["openapi", "v3"] and len(parts) > 2:
            doc = openapi.v3_document(self.registry, "/".join(parts[2:]))
            if doc is None:
                raise ApiError.no_route()
            return doc
        if parts == ["api", "v1"]:
            return discovery.api_resource_list(self.registry, "", "v1")
        if len(parts) == 2 and parts[0] == "apis":
            doc = discovery.api_group(self.registry, parts[1])
            if doc is None:
                raise ApiError.no_route()
            return doc
        if len(parts) == 3 and parts[0] == "apis":
            doc = discovery.api_resource_list(self.registry, parts[1], parts[2])
            if doc is None:
                raise ApiError.no_route()
            return doc
        return None

    def _resolve(self, group: str, version: str, rest: list[str]) -> _Target:
        lookup = self.registry.lookup
        if rest[0] == "namespaces" and len(rest) >= 3:
            rt = lookup(group, version, rest[2])
            if rt is not None and rt.namespaced and len(rest) <= 5:
                return _Target(
                    rt, rest[1], rest[3] if len(rest) > 3 else None, rest[4] if len(rest) > 4 else None
                )
        rt = lookup(group, version, rest[0])
        if rt is None or len(rest) > 3:
            raise ApiError.no_route()
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if name is not None and rt.namespaced:
            raise ApiError.no_route()
        return _Target(rt, None if rt.namespaced else "", name, sub)

    # Resource verbs.

    async def _serve(self, request: web.Request, target: _Target) -> web.StreamResponse:
        rt, query, method = target.rt, request.query, request.method
        if target.subresource is not None and (target.subresource != "status" or not rt.has_status):
            raise ApiError.no_route()
        if target.name is None:
            if method == "GET":
                if _flag(query, "watch"):
                    return await self._watch(request, target)
                return self._list(request, target)
            if method == "POST":
                if target.namespace is None:
                    raise ApiError.method_not_allowed(method)
                result = await self.cluster.create(
                    rt, target.namespace, await self._body(request), self._write_options(query)
                )
                return self._written(result, status=201)
            if method == "DELETE":
                options = await self._delete_options(request)
                deleted = await self.cluster.delete_collection(
                    rt,
                    target.namespace,
                    labels=self._labels(query),
                    fields=self._fields(rt, query),
                    options=options,
                    dry_run=self._delete_dry_run(query, options),
                )
                return _json_response(
                    {
                        "apiVersion": rt.api_version,
                        "kind": rt.list_kind,
                        "metadata": {"resourceVersion": str(self.store.resource_version)},
                        "items": deleted,
                    }
                )
            raise ApiError.method_not_allowed(method)
        namespace = target.namespace if target.namespace is not None else ""
        if method == "GET":
            if _flag(query, "watch"):
                target_fields = f"metadata.name={target.name}"
                return await self._watch(request, target, extra_fields=target_fields)
            obj = self.cluster.get(rt, namespace, target.name)
            if wants_table(request.headers.get("Accept", "")):
                return _json_response(
                    TableBuilder(rt).table([obj], resource_version=obj["metadata"].get("resourceVersion", ""))
                )
            return _json_response(obj)
        if method == "PUT":
            result = await self.cluster.replace(
                rt,
                namespace,
                target.name,
                await self._body(request),
                self._write_options(query),
                subresource=target.subresource,
            )
            return self._written(result)
        if method == "PATCH":
            content_type = request.content_type
            result = await self.cluster.patch(
                rt,
                namespace,
                target.name,
                await self._body(request),
                content_type,
                self._write_options(query),
                subresource=target.subresource,
            )
            return self._written(result, status=201 if result.created else 200)
        if method == "DELETE":
            options = await self._delete_options(request)
            obj = await self.cluster.delete(
                rt, namespace, target.name, options, dry_run=self._delete_dry_run(query, options)
            )
            return _json_response(obj)
        raise ApiError.method_not_allowed(method)

    def _written(self, result: WriteResult, *, status: int = 200) -> web.Response:
        headers = {}
        if result.warnings:
            headers["Warning"] = ", ".join(
                f'299 - "{w.replace(chr(34), chr(92) + chr(34))}"' for w in result.warnings
            )
        return _json_response(result.obj, status=status, headers=headers)

    def _list(self, request: web.Request, target: _Target) -> web.Response:
        query = request.query
        if query.get("continue") and query.get("resourceVersion") not in (None, "", "0"):
            raise ApiError.bad_request("specifying resource version is not allowed when using continue")
        limit = self._int(query, "limit")
        result = self.cluster.list_objects(
            target.rt,
            target.namespace,
            labels=self._labels(query),
            fields=self._fields(target.rt, query),
            limit=limit if limit and limit > 0 else None,
            continue_token=query.get("continue") or None,
        )
        if wants_table(request.headers.get("Accept", "")):
            return _json_response(
                TableBuilder(target.rt).table(
                    result.items,
                    resource_version=result.resource_version,
                    continue_token=result.continue_token,
                    remaining=result.remaining,
                )
            )
        metadata: dict[str, Any] = {"resourceVersion": result.resource_version}
        if result.continue_token:
            metadata["continue"] = result.continue_token
            metadata["remainingItemCount"] = result.remaining
        return _json_response(
            {
                "apiVersion": target.rt.api_version,
                "kind": target.rt.list_kind,
                "metadata": metadata,
                "items": result.items,
            }
        )

    async def _watch(
        self, request: web.Request, target: _Target, *, extra_fields: str = ""
    ) -> web.StreamResponse:
        assert self.watches is not None
        query = request.query
        rt = target.rt
        field_text = ",".join(f for f in (query.get("fieldSelector", ""), extra_fields) if f)
        labels, fields = self._labels(query), self._fields(rt, query, text=field_text)
        rv_text = query.get("resourceVersion", "")
        timeout = self._int(query, "timeoutSeconds")
        bookmarks = _flag(query, "allowWatchBookmarks")
        table = TableBuilder(rt) if wants_table(request.headers.get("Accept", "")) else None
        try:
            since = int(rv_text) if rv_text not in ("", "0") else None
        except ValueError as exc:
            raise ApiError.bad_request(f"invalid resource version: {rv_text!r}") from exc

        response = web.StreamResponse(status=200, headers={"Content-Type": _JSON})
        response.enable_chunked_encoding()
        await response.prepare(request)

        if since is not None and since < self.store.history_floor:
            expired = ApiError.expired(f"too old resource version: {since} ({self.store.history_floor + 1})")
            await response.write(encode_event("ERROR", status_body(expired)))
            await response.write_eof()
            return response

        watcher = Watcher(
            rt.storage_key,
            target.namespace,
            labels,
            fields,
            since if since is not None else self.store.resource_version,
        )
        if since is None:
            for obj in self.cluster.list_objects(rt, target.namespace, labels=labels, fields=fields).items:
                watcher.queue.put_nowait(encode_event("ADDED", obj))
        self.watches.open(watcher, replay=since is not None)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (timeout if timeout and timeout > 0 else self.settings.default_watch_timeout)
        next_bookmark = loop.time() + self.settings.bookmark_interval
        try:
            while not self._stopping.is_set():
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                if request.transport is None or request.transport.is_closing():
                    break  # the client went away; don't keep its watch until the timeout
                wait = min(remaining, self.settings.bookmark_interval) if bookmarks else remaining
                try:
                    line = await asyncio.wait_for(watcher.queue.get(), timeout=min(wait, _DISCONNECT_CHECK))
                except TimeoutError:
                    if bookmarks and loop.time() >= next_bookmark and loop.time() < deadline:
                        await response.write(self._bookmark(rt, watcher))
                        next_bookmark = loop.time() + self.settings.bookmark_interval
                    continue
                lines = [line]
                while not watcher.queue.empty():
                    lines.append(watcher.queue.get_nowait())
                if table is not None:
                    lines = [self._table_event(table, item) for item in lines]
                await response.write(b"".join(lines))
            with contextlib.suppress(ConnectionResetError):
                await response.write_eof()
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        finally:
            self.watches.close(watcher)
        return response

    def _bookmark(self, rt: ResourceType, watcher: Watcher) -> bytes:
        # Only a version whose changes this stream has already been sent (or that the client's
        # list already showed): a client resuming from a bookmark must not skip a write that was
        # accepted but is not yet durable, and so not yet announced.
        rv = max(self.store.committed_resource_version, watcher.since)
        return encode_event(
            "BOOKMARK",
            {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": {"resourceVersion": str(rv)}},
        )

    def _table_event(self, table: TableBuilder, line: bytes) -> bytes:
        event = json.loads(line)
        if event.get("type") in ("ADDED", "MODIFIED", "DELETED"):
            obj = event["object"]
            event["object"] = table.table([obj], resource_version=obj["metadata"].get("resourceVersion", ""))
        return json.dumps(event, separators=(",", ":")).encode() + b"\n"

    # Request parsing.

    async def _body(self, request: web.Request) -> Any:
        content_type = request.content_type
        if "Content-Type" not in request.headers and request.method != "PATCH":
            # kube-apiserver decodes a create/update without Content-Type as JSON (its first
            # supported media type); the kubernetes client (v33+) sends no Content-Type there.
            # Only an authenticated client gets this far: a web page cannot send the token.
            content_type = _JSON
        if content_type == protobuf.PROTOBUF:
            try:
                return protobuf.decode_object(await request.read())
            except (protobuf.ProtobufError, UnicodeDecodeError) as exc:
                raise ApiError.bad_request(f"the protobuf request body could not be decoded: {exc}") from exc
        if content_type not in (_JSON, *_YAML_TYPES, *_PATCH_TYPES):
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types include: "
                f"application/json, application/yaml, {', '.join(_PATCH_TYPES)}",
            )
        raw = await request.read()
        if not raw.strip():
            raise ApiError.bad_request("the request body is empty")
        try:
            if content_type in _YAML_TYPES:
                # Only JSON values survive (no !!binary, !!set, .nan), as in kube's YAML-to-JSON step.
                return json.loads(json.dumps(yaml.load(raw, Loader=_YamlLoader), allow_nan=False))
            return json.loads(raw, parse_constant=_reject_constant)
        except (ValueError, TypeError, RecursionError, yaml.YAMLError) as exc:
            raise ApiError.bad_request(f"the request body could not be decoded: {exc}") from exc

    async def _delete_options(self, request: web.Request) -> dict[str, Any]:
        options: dict[str, Any] = {}
        raw = await request.read()
        if raw.strip():
            try:
                decoded = json.loads(raw)
            except (ValueError, RecursionError) as exc:
                raise ApiError.bad_request(f"the DeleteOptions body could not be decoded: {exc}") from exc
            if not isinstance(decoded, dict):
                raise ApiError.bad_request("DeleteOptions must be an object")
            options.update(decoded)
        if "propagationPolicy" in request.query:
            options["propagationPolicy"] = request.query["propagationPolicy"]
        if "dryRun" in options and options["dryRun"] not in (None, [], ["All"]):
            raise ApiError.bad_request(f"Unsupported value: dryRun {options['dryRun']!r}")
        return options

    def _write_options(self, query: Mapping[str, str]) -> WriteOptions:
        validation = query.get("fieldValidation", "Warn") or "Warn"
        if validation not in ("Ignore", "Warn", "Strict"):
            raise ApiError.bad_request(
                f'fieldValidation: Unsupported value: "{validation}": '
                'supported values: "Ignore", "Strict", "Warn"'
            )
        return WriteOptions(
            dry_run=self._dry_run(query),
            field_validation=validation,
            field_manager=query.get("fieldManager") or None,
            force=_flag(query, "force"),
        )

    def _delete_dry_run(self, query: Mapping[str, str], options: Mapping[str, Any]) -> bool:
        """``dryRun=All`` in the query or, as kubectl sends it, in the DeleteOptions body."""
        return self._dry_run(query) or options.get("dryRun") == ["All"]

    def _dry_run(self, query: Mapping[str, str]) -> bool:
        value = query.get("dryRun")
        if value in (None, ""):
            return False
        if value != "All":
            raise ApiError.bad_request(f'dryRun: Unsupported value: "{value}": supported values: "All"')
        return True

    def _labels(self, query: Mapping[str, str]) -> LabelSelector:
        try:
            return LabelSelector.parse(query.get("labelSelector", ""))
        except SelectorError as exc:
            raise ApiError.bad_request(str(exc)) from exc

    def _fields(
        self, rt: ResourceType, query: Mapping[str, str], *, text: str | None = None
    ) -> FieldSelector:
        try:
            return FieldSelector.parse(
                query.get("fieldSelector", "") if text is None else text, supported=rt.field_labels
            )
        except SelectorError as exc:
            raise ApiError.bad_request(str(exc)) from exc

    def _int(self, query: Mapping[str, str], name: str) -> int | None:
        value = query.get(name)
        if value in (None, ""):
            return None
        try:
            return int(value)
        except ValueError as exc:
            raise ApiError.bad_request(f"{name}: invalid integer {value!r}") from exc


def load_manifests(path: Path) -> list[dict[str, Any]]:
    """Every YAML document in ``path`` (a file, or a directory of ``*.yaml`` files)."""
    files = sorted(path.glob("*.yaml")) if path.is_dir() else [path]
    docs: list[dict[str, Any]] = []
    for file in files:
        docs.extend(d for d in yaml.safe_load_all(file.read_text()) if isinstance(d, dict))
    return docs


async def apply_manifest(cluster: Cluster, registry: Registry, doc: Mapping[str, Any]) -> WriteResult:
    """Create ``doc`` or, when it exists, update it to match (what ``kubectl apply`` amounts to)."""
    api_version = str(doc.get("apiVersion", ""))
    group, _, version = api_version.rpartition("/")
    kind = doc.get("kind")
    rt = next((r for r in registry if r.group == group and r.version == version and r.kind == kind), None)
    if rt is None:
        raise ApiError.bad_request(f"no kind {kind!r} is served for {api_version!r}")
    meta = doc.get("metadata") or {}
    namespace = str(meta.get("namespace") or "default") if rt.namespaced else ""
    name = str(meta.get("name", ""))
    current = cluster.store.get(rt.storage_key, namespace, name)
    if current is None:
        return await cluster.create(rt, namespace, dict(doc), WriteOptions())
    desired = dict(doc)
    desired["metadata"] = {**meta, "resourceVersion": current["metadata"]["resourceVersion"]}
    return await cluster.replace(rt, namespace, name, desired, WriteOptions())
