"""A fault-injecting HTTP proxy in front of the embedded Kubernetes API, for the api's tests.

Real faults at the HTTP level, not mocks: the api under test talks to this proxy exactly as it
would talk to a cluster, and the proxy forwards every request to the real embedded API. Rules
make chosen requests fail the way a network or an API server does:

* ``drop`` — forward the request, let the API server commit it, then close the client's
  connection without an answer (the write happened; the caller sees a transport error);
* ``refuse`` — answer 503 without forwarding (the API server is unavailable);
* ``hold`` — keep the request until an event is set (a slow API server), then forward it;

and :meth:`FaultProxy.pause_watches` holds back the events of watch streams, so an api's cache
can be made to lag behind the server on purpose. Every request is recorded (method and target)
so a test can assert what the api asked the API server for.

One request per connection (it forwards with ``Connection: close`` and says so to the client),
which keeps the framing trivial: the upstream closes after its answer, and so does the proxy.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
import urllib.parse
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any, Literal

Action = Literal["drop", "refuse", "hold"]


@dataclass(frozen=True)
class Seen:
    """One request the proxy received."""

    method: str
    target: str
    body: bytes = b""

    @property
    def path(self) -> str:
        return urllib.parse.urlsplit(self.target).path

    @property
    def query(self) -> dict[str, list[str]]:
        return urllib.parse.parse_qs(urllib.parse.urlsplit(self.target).query)


@dataclass
class Rule:
    """Apply ``action`` to the next ``times`` requests that ``match``."""

    match: Callable[[Seen], bool]
    action: Action
    times: int = 1
    release: threading.Event = field(default_factory=threading.Event)
    hits: int = 0


class FaultProxy:
    """Listens on 127.0.0.1 (a free port) in its own thread and event loop."""

    def __init__(self, upstream: str, *, tls: ssl.SSLContext | None = None) -> None:
        """Forward to ``upstream``, over TLS with ``tls`` when it is ``https``; serve plain HTTP."""
        parts = urllib.parse.urlsplit(upstream)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._tls = (tls or ssl.create_default_context()) if parts.scheme == "https" else None
        self._host_header = parts.netloc
        self.seen: list[Seen] = []
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self._watches_open = threading.Event()
        self._watches_open.set()
        self._watch_filter: Callable[[Seen], bool] = lambda _: True
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="kube-proxy", daemon=True)
        self._server: asyncio.Server | None = None
        self.url = ""

    # Lifecycle.

    def start(self) -> FaultProxy:
        self._thread.start()
        self._server = self._call(asyncio.start_server(self._serve, "127.0.0.1", 0))
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def close(self) -> None:
        self._watches_open.set()
        with self._lock:
            for rule in self._rules:
                rule.release.set()
        if self._server is not None:
            self._call(self._shutdown(self._server))
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    @staticmethod
    async def _shutdown(server: asyncio.Server) -> None:
        server.close()
        tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _call(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(30)

    # What tests use.

    def add(self, match: Callable[[Seen], bool], action: Action, *, times: int = 1) -> Rule:
        rule = Rule(match, action, times)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            for rule in self._rules:
                rule.release.set()
            self._rules.clear()

    def requests(self) -> list[Seen]:
        with self._lock:
            return list(self.seen)

    def pause_watches(self, which: Callable[[Seen], bool] = lambda _: True) -> None:
        """Hold back the events of the watches ``which`` selects until :meth:`resume_watches`."""
        self._watch_filter = which
        self._watches_open.clear()

    def resume_watches(self) -> None:
        self._watches_open.set()

    # Serving.

    def _rule_for(self, seen: Seen) -> Rule | None:
        with self._lock:
            self.seen.append(seen)
            for rule in self._rules:
                if rule.hits < rule.times and rule.match(seen):
                    rule.hits += 1
                    return rule
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            writer.close()
            return
        lines = head.decode("latin-1").split("\r\n")
        method, target, version = lines[0].split(" ", 2)
        headers = [line.split(":", 1) for line in lines[1:] if line]
        length = next((int(v) for k, v in headers if k.strip().lower() == "content-length"), 0)
        body = await reader.readexactly(length) if length else b""
        seen = Seen(method, target, body)
        rule = self._rule_for(seen)
        try:
            if rule is not None and rule.action == "refuse":
                await self._answer_503(writer)
                return
            if rule is not None and rule.action == "hold":
                await asyncio.get_running_loop().run_in_executor(None, rule.release.wait)
            kept = [(k, v) for k, v in headers if k.strip().lower() not in ("host", "connection")]
            request = f"{method} {target} {version}\r\nHost: {self._host_header}\r\nConnection: close\r\n"
            request += "".join(f"{k}:{v}\r\n" for k, v in kept) + "\r\n"
            up_reader, up_writer = await asyncio.open_connection(self._host, self._port, ssl=self._tls)
            try:
                up_writer.write(request.encode("latin-1") + body)
                await up_writer.drain()
                if rule is not None and rule.action == "drop":
                    await up_reader.read()  # the API server has answered: the change is committed
                    return  # ... and the caller never hears of it
                await self._relay(seen, up_reader, writer)
            finally:
                up_writer.close()
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            pass  # a client gone, or the proxy closing
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _relay(self, seen: Seen, up_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await up_reader.readuntil(b"\r\n\r\n")
        lines = [
            line
            for line in head.decode("latin-1").split("\r\n")
            if line and not line.lower().startswith("connection:")
        ]
        writer.write(("\r\n".join([*lines, "Connection: close"]) + "\r\n\r\n").encode("latin-1"))
        watching = seen.method == "GET" and "watch" in seen.query and seen.query["watch"][0] in ("1", "true")
        while chunk := await up_reader.read(65536):
            if watching and self._watch_filter(seen) and not self._watches_open.is_set():
                await asyncio.get_running_loop().run_in_executor(None, self._watches_open.wait)
            writer.write(chunk)
            await writer.drain()

    @staticmethod
    async def _answer_503(writer: asyncio.StreamWriter) -> None:
        body = (
            b'{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"ServiceUnavailable",'
            b'"message":"injected by the test proxy","code":503}'
        )
        writer.write(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )
        await writer.drain()
