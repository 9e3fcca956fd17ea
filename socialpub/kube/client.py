"""An asyncio client for the Kubernetes API.

The api and the operator are asyncio programs, and the official ``kubernetes`` package is
synchronous; this client does the handful of verbs we need (get, list, create, replace, patch,
delete, watch) over one pooled aiohttp session (see ``_transport`` for why not httpx). A failure to
reach the server raises an ``httpx.HTTPError`` (``ConnectError``, ``ReadTimeout``, ...); an error
answer raises a :class:`KubeError`. Connection settings come from the official package's
kubeconfig / in-cluster loaders, so it connects wherever ``kubectl`` does.
"""

from __future__ import annotations

import json
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

from socialpub.kube._transport import HttpCore, RawResponse, ssl_context
from socialpub.kube.resources import Resource

__all__ = [
    "AlreadyExists",
    "Conflict",
    "Connection",
    "Expired",
    "Invalid",
    "KubeClient",
    "KubeError",
    "NotFound",
    "load_connection",
]

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


@dataclass(frozen=True)
class Connection:
    """Where and how to reach the Kubernetes API (what kubectl would use)."""

    server: str
    token: str | None = None
    ca_path: str | None = None
    cert_path: str | None = None
    key_path: str | None = None
    verify: bool = True


def load_connection(kubeconfig: str | None = None, *, context: str | None = None) -> Connection:
    """Read ``kubeconfig`` (or ``$KUBECONFIG``), else the in-cluster service account, with the
    official client's loaders — so every exec/token/certificate form kubectl accepts works here."""
    from kubernetes import client as k8s_client
    from kubernetes import config as k8s_config

    cfg = k8s_client.Configuration()
    path = kubeconfig or os.environ.get("KUBECONFIG")
    if path or not os.environ.get("KUBERNETES_SERVICE_HOST"):
        load = k8s_config.load_kube_config
        load(config_file=path, context=context, client_configuration=cfg, persist_config=False)
    else:
        k8s_config.load_incluster_config(client_configuration=cfg)
    token = (cfg.api_key or {}).get("authorization") or (cfg.api_key or {}).get("BearerToken")
    if token and token.lower().startswith("bearer "):
        token = token[7:]
    return Connection(
        server=str(cfg.host),
        token=token or None,
        ca_path=cfg.ssl_ca_cert or None,
        cert_path=cfg.cert_file or None,
        key_path=cfg.key_file or None,
        verify=bool(cfg.verify_ssl),
    )


class KubeError(Exception):
    """A failed Kubernetes API call, with the ``Status`` the server sent."""

    def __init__(self, status: int, reason: str, message: str, body: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body = dict(body or {})


class NotFound(KubeError):
    """404: the object (or its namespace) does not exist."""


class AlreadyExists(KubeError):
    """409 AlreadyExists: a create found the name taken."""


class Conflict(KubeError):
    """409 Conflict: a write carried a stale resourceVersion or failed a precondition."""


class Invalid(KubeError):
    """422: the object failed validation."""


class Expired(KubeError):
    """410: a watch or continue token is older than the server keeps."""


def _error(response: RawResponse) -> KubeError:
    try:
        body = json.loads(response.body)
    except ValueError:
        body = {}
    if not isinstance(body, dict):
        body = {}
    reason = str(body.get("reason") or response.reason)
    message = str(body.get("message") or response.body[:500].decode(errors="replace"))
    status = response.status
    if status == 404:
        return NotFound(status, reason, message, body)
    if status == 409:
        cls: type[KubeError] = AlreadyExists if reason == "AlreadyExists" else Conflict
        return cls(status, reason, message, body)
    if status == 422:
        return Invalid(status, reason, message, body)
    if status == 410:
        return Expired(status, reason, message, body)
    return KubeError(status, reason, message, body)


class KubeClient:
    """The verbs socialpub uses, against one Kubernetes API server."""

    def __init__(
        self,
        base_url: str,
        *,
        headers: Mapping[str, str] | None = None,
        verify: bool | str = True,
        cert: tuple[str, str] | None = None,
        timeout: float = 30.0,
        max_connections: int = 64,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        # aiohttp underneath (see _transport for why), httpx's errors on top.
        self._http = HttpCore(
            self.base_url,
            headers=dict(headers or {}),
            timeout=timeout,
            max_connections=max_connections,
            tls=ssl_context(verify, cert) if self.base_url.startswith("https:") else None,
        )

    @classmethod
    def from_config(cls, kubeconfig: str | None = None, *, context: str | None = None) -> KubeClient:
        """Connect as kubectl would: ``kubeconfig`` or ``$KUBECONFIG``, else the in-cluster account."""
        conn = load_connection(kubeconfig, context=context)
        headers = {"Authorization": f"Bearer {conn.token}"} if conn.token else {}
        verify: bool | str = conn.ca_path or conn.verify
        cert = (conn.cert_path, conn.key_path) if conn.cert_path and conn.key_path else None
        return cls(conn.server, headers=headers, verify=verify, cert=cert)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _request(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        content = json.dumps(body).encode() if body is not None else None
        response = await self._http.request(
            method, url, params=params, content=content, content_type=content_type if content else None
        )
        if response.status >= 400:
            raise _error(response)
        result: dict[str, Any] = json.loads(response.body)
        return result

    async def get(self, resource: Resource, name: str, namespace: str | None = None) -> dict[str, Any]:
        return await self._request("GET", resource.path(namespace, name))

    async def list(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
    ) -> tuple[list[dict[str, Any]], str]:
        """All matching objects (following ``continue`` pages) and the list's resourceVersion."""
        params: dict[str, Any] = {}
        if label_selector:
            params["labelSelector"] = label_selector
        if field_selector:
            params["fieldSelector"] = field_selector
        if limit:
            params["limit"] = limit
        items: list[dict[str, Any]] = []
        while True:
            page = await self._request("GET", resource.path(namespace), params=params)
            for item in page.get("items") or []:
                item.setdefault("apiVersion", resource.api_version)
                item.setdefault("kind", resource.kind)
                items.append(item)
            meta = page.get("metadata") or {}
            token = meta.get("continue")
            if not token:
                return items, str(meta.get("resourceVersion", ""))
            params = {**params, "continue": token}

    async def create(
        self,
        resource: Resource,
        body: Mapping[str, Any],
        namespace: str | None = None,
        *,
        dry_run: bool = False,
    ) -> dict[str, Any]:
        params = {"dryRun": "All"} if dry_run else None
        return await self._request("POST", resource.path(namespace), params=params, body=body)

    async def replace(
        self, resource: Resource, body: Mapping[str, Any], *, subresource: str | None = None
    ) -> dict[str, Any]:
        meta = body["metadata"]
        return await self._request(
            "PUT", resource.path(meta.get("namespace"), meta["name"], subresource), body=body
        )

    async def patch(
        self,
        resource: Resource,
        name: str,
        patch: Any,
        namespace: str | None = None,
        *,
        subresource: str | None = None,
        content_type: str = MERGE_PATCH,
    ) -> dict[str, Any]:
        """Patch ``name``; include ``metadata.resourceVersion`` in a merge patch to make it conditional."""
        return await self._request(
            "PATCH", resource.path(namespace, name, subresource), body=patch, content_type=content_type
        )

    async def delete(
        self,
        resource: Resource,
        name: str,
        namespace: str | None = None,
        *,
        propagation: str | None = None,
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        options: dict[str, Any] = {"kind": "DeleteOptions", "apiVersion": "v1"}
        if propagation:
            options["propagationPolicy"] = propagation
        if resource_version:
            options["preconditions"] = {"resourceVersion": resource_version}
        return await self._request("DELETE", resource.path(namespace, name), body=options)

    async def watch(
        self,
        resource: Resource,
        namespace: str | None = None,
        *,
        resource_version: str,
        label_selector: str | None = None,
        timeout_seconds: int = 300,
    ) -> AsyncIterator[tuple[str, dict[str, Any]]]:
        """``(type, object)`` events after ``resource_version`` until the server ends the stream.

        An ``ERROR`` event with code 410 raises :class:`Expired`: the caller must list again.
        """
        params: dict[str, Any] = {
            "watch": "true",
            "resourceVersion": resource_version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": timeout_seconds,
        }
        if label_selector:
            params["labelSelector"] = label_selector
        stream = self._http.stream_lines(
            resource.path(namespace), params=params, read_timeout=timeout_seconds + 30.0
        )
        async for item in stream:
            if isinstance(item, RawResponse):
                if item.status >= 400:
                    raise _error(item)
                continue
            if not item.strip():
                continue
            event = json.loads(item)
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                code = int(obj.get("code") or 500)
                err_cls: type[KubeError] = Expired if code == 410 else KubeError
                raise err_cls(code, str(obj.get("reason", "")), str(obj.get("message", "")), obj)
            yield str(kind), obj
