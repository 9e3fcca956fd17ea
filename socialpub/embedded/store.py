"""Storage of the embedded Kubernetes API: objects in memory, made durable in SQLite.

Every object lives in memory (reads never touch the disk) and every change is written to SQLite
before the request that made it is answered. Writes are *group-committed*: a writer thread takes
whatever changes queued up while the previous transaction was being synced and commits them as
one transaction with ``synchronous=FULL``, so durability costs one fsync per batch rather than per
write. Watchers are told about a change only after it is durable, strictly in resourceVersion
order, and the most recent changes are kept (in memory and on disk) so that a watch can resume
from an older resourceVersion, even across a restart.
"""

from __future__ import annotations

import asyncio
import collections
import json
import queue
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Change", "Store", "encode_event"]

ObjectKey = tuple[str, str, str]
"""``(storage_key, namespace, name)``; namespace is ``""`` for cluster-scoped kinds."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    skey TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    rv INTEGER NOT NULL, body TEXT NOT NULL,
    PRIMARY KEY (skey, namespace, name)
);
CREATE TABLE IF NOT EXISTS changes (
    rv INTEGER PRIMARY KEY, skey TEXT NOT NULL, namespace TEXT NOT NULL, name TEXT NOT NULL,
    type TEXT NOT NULL, body TEXT NOT NULL, old TEXT
);
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass
class Change:
    """One committed change to one object, as a watch event sees it."""

    rv: int
    storage_key: str
    namespace: str
    name: str
    type: str
    """``ADDED``, ``MODIFIED`` or ``DELETED``."""
    obj: dict[str, Any]
    """The object after the change (for ``DELETED``: its last state, with the deletion's RV)."""
    old: dict[str, Any] | None = None
    """The object before the change, so that selector-filtered watches can see objects leave."""
    _encoded: bytes | None = field(default=None, repr=False)

    def event_line(self) -> bytes:
        """The newline-terminated watch event, encoded once however many watchers get it."""
        if self._encoded is None:
            self._encoded = encode_event(self.type, self.obj)
        return self._encoded


def encode_event(event_type: str, obj: dict[str, Any]) -> bytes:
    return json.dumps({"type": event_type, "object": obj}, separators=(",", ":")).encode() + b"\n"


class _Batch:
    """Work for the writer thread: rows to write, and the changes to announce once durable."""

    __slots__ = ("changes", "future")

    def __init__(self, changes: list[Change], future: asyncio.Future[None]) -> None:
        self.changes = changes
        self.future = future


class Store:
    """All objects of all kinds, the global resourceVersion counter and the recent history."""

    def __init__(self, path: Path | None, *, history: int = 10_000) -> None:
        self._path = path
        self._history_size = history
        self._objects: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
        self._uids: dict[str, ObjectKey] = {}
        self._dependents: dict[str, set[ObjectKey]] = {}
        self._history: collections.deque[Change] = collections.deque(maxlen=history)
        self._listeners: list[Callable[[Change], None]] = []
        self._rv = 0
        self._committed_rv = 0
        self._history_floor = 0
        self._queue: queue.SimpleQueue[_Batch | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._db: sqlite3.Connection | None = None

    # Lifecycle.

    def open(self) -> None:
        """Load everything from disk and start the writer thread."""
        self._loop = asyncio.get_running_loop()
        target = str(self._path) if self._path is not None else ":memory:"
        db = sqlite3.connect(target, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(_SCHEMA)
        for skey, namespace, name, body in db.execute("SELECT skey, namespace, name, body FROM objects"):
            self._index((skey, namespace, name), json.loads(body))
        row = db.execute("SELECT value FROM counters WHERE name = 'rv'").fetchone()
        self._rv = self._committed_rv = int(row[0]) if row else 0
        rows = db.execute(
            "SELECT rv, skey, namespace, name, type, body, old FROM changes ORDER BY rv DESC LIMIT ?",
            (self._history_size,),
        ).fetchall()
        for rv, skey, namespace, name, kind, body, old in reversed(rows):
            self._history.append(
                Change(rv, skey, namespace, name, kind, json.loads(body), json.loads(old) if old else None)
            )
        self._history_floor = self._history[0].rv - 1 if self._history else self._committed_rv
        self._db = db
        self._thread = threading.Thread(target=self._write_forever, name="embedded-kube-store", daemon=True)
        self._thread.start()

    async def close(self) -> None:
        """Flush what is queued and stop the writer thread."""
        if self._thread is not None:
            self._queue.put(None)
            await asyncio.to_thread(self._thread.join)
            self._thread = None
        if self._db is not None:
            self._db.close()
            self._db = None

    # Reads (memory only).

    @property
    def resource_version(self) -> int:
        """The newest resourceVersion handed out (the list RV of a fresh read)."""
        return self._rv

    @property
    def committed_resource_version(self) -> int:
        """The newest resourceVersion whose change (and every older one) watchers have been told of."""
        return self._committed_rv

    @property
    def history_floor(self) -> int:
        """Watches from a resourceVersion below this one are answered 410 Expired."""
        return self._history_floor

    def get(self, storage_key: str, namespace: str, name: str) -> dict[str, Any] | None:
        return self._objects.get(storage_key, {}).get(namespace, {}).get(name)

    def get_by_uid(self, uid: str) -> dict[str, Any] | None:
        key = self._uids.get(uid)
        return self.get(*key) if key else None

    def items(self, storage_key: str, namespace: str | None = None) -> Iterator[dict[str, Any]]:
        """Objects of one kind, optionally in one namespace, ordered by namespace then name."""
        by_namespace = self._objects.get(storage_key, {})
        namespaces = [namespace] if namespace is not None else sorted(by_namespace)
        for ns in namespaces:
            objects = by_namespace.get(ns, {})
            for name in sorted(objects):
                yield objects[name]

    def count(self, storage_key: str) -> int:
        return sum(len(objs) for objs in self._objects.get(storage_key, {}).values())

    def namespace_is_empty(self, namespace: str) -> bool:
        return not any(by_ns.get(namespace) for by_ns in self._objects.values())

    def namespaced_objects(self, namespace: str) -> list[tuple[str, dict[str, Any]]]:
        """``(storage_key, object)`` for every object in ``namespace``, of any kind."""
        return [
            (skey, obj)
            for skey, by_ns in self._objects.items()
            for obj in list(by_ns.get(namespace, {}).values())
        ]

    def dependents(self, owner_uid: str) -> list[tuple[str, dict[str, Any]]]:
        """Objects whose ``ownerReferences`` name ``owner_uid``."""
        found = []
        for key in sorted(self._dependents.get(owner_uid, ())):
            obj = self.get(*key)
            if obj is not None:
                found.append((key[0], obj))
        return found

    def history_since(self, rv: int) -> list[Change]:
        """Committed changes newer than ``rv`` (the caller has checked :attr:`history_floor`)."""
        return [change for change in self._history if change.rv > rv]

    # Writes.

    def next_resource_version(self) -> int:
        self._rv += 1
        return self._rv

    def subscribe(self, listener: Callable[[Change], None]) -> Callable[[], None]:
        """Call ``listener`` for every change once it is durable; returns the unsubscribe function."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener)

    async def commit(self, changes: Iterable[Change]) -> None:
        """Apply ``changes`` in memory now and return once they are durable on disk.

        The caller has stamped each change with :meth:`next_resource_version`. Memory is updated
        before the disk so that the next request in this event loop sees the result; watchers
        hear of it only after the transaction is synced.
        """
        batch = list(changes)
        for change in batch:
            key = (change.storage_key, change.namespace, change.name)
            if change.type == "DELETED":
                self._unindex(key)
            else:
                self._index(key, change.obj)
        assert self._loop is not None, "Store.open() was not called"
        future: asyncio.Future[None] = self._loop.create_future()
        self._queue.put(_Batch(batch, future))
        await asyncio.shield(future)

    # Internals.

    def _index(self, key: ObjectKey, obj: dict[str, Any]) -> None:
        skey, namespace, name = key
        previous = self._objects.setdefault(skey, {}).setdefault(namespace, {}).get(name)
        if previous is not None:
            self._unlink(key, previous)
        self._objects[skey][namespace][name] = obj
        meta = obj.get("metadata") or {}
        if uid := meta.get("uid"):
            self._uids[uid] = key
        for ref in meta.get("ownerReferences") or ():
            if isinstance(ref, dict) and isinstance(ref.get("uid"), str):
                self._dependents.setdefault(ref["uid"], set()).add(key)

    def _unindex(self, key: ObjectKey) -> None:
        skey, namespace, name = key
        by_ns = self._objects.get(skey, {})
        obj = by_ns.get(namespace, {}).pop(name, None)
        if obj is not None:
            self._unlink(key, obj)
            if not by_ns[namespace]:
                del by_ns[namespace]

    def _unlink(self, key: ObjectKey, obj: dict[str, Any]) -> None:
        meta = obj.get("metadata") or {}
        if (uid := meta.get("uid")) and self._uids.get(uid) == key:
            del self._uids[uid]
        for ref in meta.get("ownerReferences") or ():
            if isinstance(ref, dict) and isinstance(ref.get("uid"), str):
                keys = self._dependents.get(ref["uid"])
                if keys is not None:
                    keys.discard(key)
                    if not keys:
                        del self._dependents[ref["uid"]]

    def _write_forever(self) -> None:
        """The writer thread: commit queued batches together, then announce them on the loop."""
        db = self._db
        assert db is not None
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                break
            batches = [first]
            while True:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                batches.append(more)
            error: BaseException | None = None
            try:
                self._persist(db, batches)
            except BaseException as exc:  # report to every waiter rather than die silently
                error = exc
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._announce, batches, error)

    def _persist(self, db: sqlite3.Connection, batches: list[_Batch]) -> None:
        """Write ``batches`` in one synced transaction, in resourceVersion order."""
        top = 0
        db.execute("BEGIN")
        try:
            for batch in batches:
                for c in batch.changes:
                    body = json.dumps(c.obj, separators=(",", ":"))
                    old = json.dumps(c.old, separators=(",", ":")) if c.old is not None else None
                    if c.type == "DELETED":
                        db.execute(
                            "DELETE FROM objects WHERE skey = ? AND namespace = ? AND name = ?",
                            (c.storage_key, c.namespace, c.name),
                        )
                    else:
                        db.execute(
                            "INSERT OR REPLACE INTO objects VALUES (?, ?, ?, ?, ?)",
                            (c.storage_key, c.namespace, c.name, c.rv, body),
                        )
                    db.execute(
                        "INSERT OR REPLACE INTO changes VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (c.rv, c.storage_key, c.namespace, c.name, c.type, body, old),
                    )
                    top = max(top, c.rv)
            db.execute("INSERT OR REPLACE INTO counters (name, value) VALUES ('rv', ?)", (top,))
            db.execute("DELETE FROM changes WHERE rv <= ?", (top - self._history_size,))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def _announce(self, batches: list[_Batch], error: BaseException | None) -> None:
        for batch in batches:
            if error is not None:
                if not batch.future.done():
                    batch.future.set_exception(error)
                continue
            for change in batch.changes:
                if self._history.maxlen is not None and len(self._history) == self._history.maxlen:
                    self._history_floor = self._history[0].rv
                self._history.append(change)
                self._committed_rv = max(self._committed_rv, change.rv)
                for listener in list(self._listeners):
                    listener(change)
            if not batch.future.done():
                batch.future.set_result(None)
