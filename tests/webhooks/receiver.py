"""A real webhook receiver for the tests: aiohttp on 127.0.0.1 in its own thread.

Each path has a *script*: what to answer to its first, second, … request (a status, or
``(delay_seconds, status)``); once the script is used up every request gets ``default``.
Everything received is kept, so tests verify signatures with the ``standardwebhooks`` package.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from standardwebhooks import Webhook

Action = int | tuple[float, int]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float
    answered: int

    @property
    def id(self) -> str:
        return self.headers["webhook-id"]

    @property
    def payload(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed

    def verify(self, secret: str) -> dict[str, Any]:
        """Verified with the reference library (raises if the signature is not ``secret``'s)."""
        result: dict[str, Any] = Webhook(secret).verify(self.body, self.headers)
        return result


@dataclass
class Receiver:
    port: int = 0
    latency: float = 0.0
    default: int = 200
    scripts: dict[str, list[Action]] = field(default_factory=dict)
    requests: list[Received] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.port = self.port or free_port()
        self._lock = threading.Lock()
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="receiver", daemon=True)
        self._thread.start()
        self._runner: web.AppRunner | None = None

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}/{path}"

    def _call(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    async def _handle(self, request: web.Request) -> web.Response:
        path = request.match_info["path"]
        body = await request.read()
        with self._lock:
            script = self.scripts.get(path) or []
            action: Action = script.pop(0) if script else self.default
        delay, status = action if isinstance(action, tuple) else (self.latency, action)
        if delay:
            await asyncio.sleep(delay)
        with self._lock:
            headers = {k.lower(): v for k, v in request.headers.items()}
            self.requests.append(Received(path, headers, body, time.time(), status))
        return web.Response(status=status, text="ok" if status < 300 else f"answer {status}")

    def start(self) -> Receiver:
        async def start() -> None:
            app = web.Application()
            app.router.add_post("/{path:.*}", self._handle)
            self._runner = web.AppRunner(app, access_log=None)
            await self._runner.setup()
            await web.TCPSite(self._runner, "127.0.0.1", self.port, reuse_address=True).start()

        self._call(start())
        return self

    def stop(self) -> None:
        if self._runner is not None:
            self._call(self._runner.cleanup())
            self._runner = None

    def close(self) -> None:
        self.stop()
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)

    def received(self, path: str | None = None, *, ok: bool | None = None) -> list[Received]:
        with self._lock:
            found = [r for r in self.requests if path is None or r.path == path]
        if ok is not None:
            found = [r for r in found if (200 <= r.answered < 300) == ok]
        return found

    def wait(
        self,
        path: str,
        predicate: Callable[[list[Received]], bool],
        *,
        timeout: float = 20.0,
        what: str = "requests",
    ) -> list[Received]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.received(path)
            if predicate(found):
                return found
            time.sleep(0.02)
        seen = [(r.answered, r.payload.get("type"), r.id) for r in self.received(path)]
        raise AssertionError(f"timed out after {timeout}s waiting for {what} on /{path}; got {seen}")

    def wait_ok(self, path: str, count: int, *, timeout: float = 20.0) -> list[Received]:
        """Wait until ``count`` distinct events were delivered (2xx) on ``path``; returns them by id."""
        self.wait(
            path,
            lambda found: len({r.id for r in found if 200 <= r.answered < 300}) >= count,
            timeout=timeout,
            what=f"{count} delivered event(s)",
        )
        first: dict[str, Received] = {}
        for r in self.received(path, ok=True):
            first.setdefault(r.id, r)
        return list(first.values())


def by_type(received: list[Received]) -> Mapping[str, list[Received]]:
    result: dict[str, list[Received]] = {}
    for r in received:
        result.setdefault(r.payload["type"], []).append(r)
    return result
