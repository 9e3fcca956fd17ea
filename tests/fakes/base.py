"""What the fake platform servers share: an aiohttp app on 127.0.0.1 in its own thread and event
loop, a record of every request, and faults injected on demand.

A fault matches the next request(s) by method and path (a regular expression) and then:

* ``status``: answers ``status`` / ``body`` / ``headers`` at once; nothing is committed;
* ``timeout``: waits ``delay`` seconds (longer than the client's timeout) before answering; with
  ``commit=True`` the handler runs (the post is stored) before the wait;
* ``drop``: closes the connection without an answer; nothing is committed;
* ``commit_drop``: stores the post, then closes the connection without an answer;
* ``commit_hang``: stores the post, calls ``on_commit`` (e.g. to SIGKILL the operator), then never
  answers until the client goes away;
* ``trickle``: runs the handler (a create is stored), then sends its answer one byte at a time
  spread over ``delay`` seconds — every read gets a byte in time, so only a whole-exchange
  deadline ends it;
* ``commit_later``: closes the connection without an answer at once, and runs the handler (the
  create lands) ``delay`` seconds *later* — or as soon as :meth:`FakeServer.release_later` is
  called — then calls ``on_commit``. A platform that is still processing a create whose answer
  was lost: a lookup made right after the failure cannot see it yet;
* ``then``: answers normally, then calls ``on_commit`` (to act at an exact point of a sequence:
  with ``release_later`` the held-back creates land after this request was answered and before
  its answer is sent, so the very next request sees them).

``listing_lag`` (seconds) hides what was created less than that long ago from the fakes'
listings (LinkedIn's finder, a Page's posts, an account's media), as the real listings lag behind
creates; reading the object itself, and duplicate detection, see it at once.

With ``every=n`` the fault skips matching requests and applies to every n-th one (``times`` counts
the requests it applied to): ``Fault(kind="commit_drop", every=2, times=30)`` drops the answer of
every second create, thirty times.

``latency`` delays every answer (for benchmarks).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class Fault:
    kind: str = "status"
    status: int = 500
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 5.0
    commit: bool = False
    times: int = 1
    on_commit: Callable[[], None] | None = None
    every: int = 1
    matched: int = 0
    """Matching requests seen so far (with ``every``, only every n-th is faulted)."""


@dataclass
class Recorded:
    """One request as the fake received it."""

    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes
    form: dict[str, str]
    json: Any
    at: float

    def param(self, name: str) -> str | None:
        """A parameter from the query, the form body or the JSON body (Graph accepts all three)."""
        if name in self.query:
            return self.query[name]
        if name in self.form:
            return self.form[name]
        if isinstance(self.json, dict) and name in self.json:
            value = self.json[name]
            return value if isinstance(value, str) else json.dumps(value)
        return None


class FakeServer:
    """Base of the fakes: subclasses add routes in :meth:`routes` and keep their own state."""

    name = "fake"

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name=f"fake-{self.name}", daemon=True)
        self._runner: web.AppRunner | None = None
        self.url = ""
        self.latency = 0.0
        self.listing_lag = 0.0
        """Seconds a created object stays out of the listings (0: listed at once)."""
        self.requests: list[Recorded] = []
        self._later: list[tuple[asyncio.Task[None], asyncio.Event]] = []
        self._faults: list[tuple[str, re.Pattern[str], Fault]] = []
        self._lock = threading.RLock()

    # Lifecycle.

    def routes(self, app: web.Application) -> None:
        raise NotImplementedError

    def start(self) -> FakeServer:
        self._thread.start()

        async def _start() -> str:
            app = web.Application(middlewares=[self._middleware], client_max_size=64 * 1024 * 1024)
            self.routes(app)
            self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
            await self._runner.setup()
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            server = site._server
            assert server is not None
            port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            return f"http://127.0.0.1:{port}"

        self.url = self.call(_start())
        return self

    def stop(self) -> None:
        if self._runner is not None:
            self.call(self._runner.cleanup())
            self._runner = None
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)

    def call(self, coro: Awaitable[Any], timeout: float = 30) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)  # type: ignore[arg-type]
        return future.result(timeout)

    def reset(self) -> None:
        """Forget requests, faults and stored objects (subclasses clear their own state too)."""
        with self._lock:
            self.requests.clear()
            self._faults.clear()
            self.latency = 0.0
            self.listing_lag = 0.0
            later, self._later = self._later, []
        for task, _ in later:
            self.loop.call_soon_threadsafe(task.cancel)

    def listed(self, created: float) -> bool:
        """Does an object created at ``created`` (unix seconds) show in listings yet?"""
        return self.listing_lag <= 0 or created <= time.time() - self.listing_lag

    def release_later(self) -> None:
        """Let every pending ``commit_later`` create land now (from any thread; returns at once)."""
        with self._lock:
            events = [event for _, event in self._later]
        for event in events:
            if threading.current_thread() is self._thread:
                event.set()  # from a fault's callback: released before that answer is sent
            else:
                self.loop.call_soon_threadsafe(event.set)

    def settle(self, timeout: float = 30) -> None:
        """Wait until every pending ``commit_later`` create has landed (its ``delay`` passed or
        :meth:`release_later` was called)."""
        with self._lock:
            tasks = [task for task, _ in self._later]

        async def _wait() -> None:
            await asyncio.gather(*tasks, return_exceptions=True)

        self.call(_wait(), timeout)

    # Faults and records.

    def inject(self, method: str, path: str, fault: Fault) -> Fault:
        """Apply ``fault`` to the next ``fault.times`` requests whose path matches ``path`` (regex)."""
        with self._lock:
            self._faults.append((method.upper(), re.compile(path), fault))
        return fault

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for i, (m, pattern, fault) in enumerate(self._faults):
                if m == method and pattern.search(path):
                    fault.matched += 1
                    if fault.matched % max(1, fault.every):
                        continue
                    fault.times -= 1
                    if fault.times <= 0:
                        del self._faults[i]
                    return fault
        return None

    def seen(self, method: str, path: str = "") -> list[Recorded]:
        pattern = re.compile(path)
        with self._lock:
            return [r for r in self.requests if r.method == method.upper() and pattern.search(r.path)]

    # The middleware: record, apply faults, run the handler.

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        body = await request.read()
        form: dict[str, str] = {}
        parsed_json: Any = None
        content_type = request.headers.get("Content-Type", "")
        if body and "application/x-www-form-urlencoded" in content_type:
            form = dict(parse_qsl(body.decode(), keep_blank_values=True))
        elif body and "json" in content_type:
            try:
                parsed_json = json.loads(body)
            except ValueError:
                parsed_json = None
        record = Recorded(
            method=request.method,
            path=request.path,
            query=dict(request.query),
            headers=dict(request.headers),
            body=body,
            form=form,
            json=parsed_json,
            at=time.time(),
        )
        with self._lock:
            self.requests.append(record)
        request[RECORD] = record
        if self.latency:
            await asyncio.sleep(self.latency)
        fault = self._take_fault(request.method, request.path)
        if fault is None:
            return await handler(request)
        if fault.kind == "status":
            return web.json_response(fault.body, status=fault.status, headers=fault.headers)
        if fault.kind == "drop":
            return self._drop(request)
        if fault.kind == "timeout":
            if fault.commit:
                response = await handler(request)
                await asyncio.sleep(fault.delay)
                return response
            await asyncio.sleep(fault.delay)
            return web.json_response({"message": "late"}, status=503)
        if fault.kind == "trickle":
            return await self._trickle(request, await handler(request), fault.delay)
        if fault.kind == "then":
            response = await handler(request)
            if fault.on_commit is not None:
                fault.on_commit()
            with self._lock:
                released = [task for task, event in self._later if event.is_set()]
            await asyncio.gather(*released, return_exceptions=True)
            return response
        if fault.kind == "commit_later":
            release = asyncio.Event()
            later = self._commit_later(handler, request, fault, release)
            task = asyncio.get_running_loop().create_task(later)
            with self._lock:
                self._later.append((task, release))
            return self._drop(request)
        if fault.kind in ("commit_drop", "commit_hang"):
            response = await handler(request)
            if response.status >= 300:
                return response
            if fault.on_commit is not None:
                fault.on_commit()
            if fault.kind == "commit_hang":
                deadline = time.monotonic() + fault.delay
                while time.monotonic() < deadline:
                    transport = request.transport
                    if transport is None or transport.is_closing():
                        break
                    await asyncio.sleep(0.05)
            return self._drop(request)
        raise AssertionError(f"unknown fault kind {fault.kind!r}")

    @staticmethod
    async def _commit_later(
        handler: Handler, request: web.Request, fault: Fault, release: asyncio.Event
    ) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(release.wait(), fault.delay)
        response = await handler(request)
        if response.status < 300 and fault.on_commit is not None:
            fault.on_commit()

    @staticmethod
    async def _trickle(
        request: web.Request, answer: web.StreamResponse, seconds: float
    ) -> web.StreamResponse:
        body = answer.body if isinstance(answer, web.Response) and isinstance(answer.body, bytes) else b""
        stream = web.StreamResponse(status=answer.status)
        for name, value in answer.headers.items():
            if name.lower() not in ("content-length", "transfer-encoding"):
                stream.headers[name] = value
        stream.content_length = len(body)
        await stream.prepare(request)
        interval = seconds / max(1, len(body))
        try:
            for byte in body:
                await stream.write(bytes([byte]))
                await asyncio.sleep(interval)
            await stream.write_eof()
        except (ConnectionError, RuntimeError):
            pass  # the client gave up
        return stream

    @staticmethod
    def _drop(request: web.Request) -> web.StreamResponse:
        transport = request.transport
        if transport is not None:
            transport.abort()
        raise asyncio.CancelledError


RECORD = web.RequestKey("record", Recorded)


def bearer(request: web.Request) -> str | None:
    value = request.headers.get("Authorization", "")
    return value[7:] if value.lower().startswith("bearer ") else None


def record_of(request: web.Request) -> Recorded:
    return request[RECORD]
