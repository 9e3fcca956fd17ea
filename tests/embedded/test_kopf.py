"""The real kopf against the embedded Kubernetes API.

A small operator is built inside each test on its own ``kopf.OperatorRegistry`` and run with
``kopf.testing.KopfRunner`` (``kopf run --standalone -A`` in a thread with its own loop), logging
in through the kubeconfig the harness writes. It keeps its state in annotations under
``social.softsolz.uk``, as the real operator does, and writes only declared status fields, so any
"patching ... with inconsistencies" warning would be the server's fault: every kopf run must end
cleanly with no warning or error in its log. The tests drive it with kubectl and plain HTTP,
exactly as a user and the REST API would, and poll with deadlines (the module takes ~20 s).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import kopf
import pytest
from kopf.testing import KopfRunner

from socialpub.embedded.server import ServerSettings, apply_manifest
from tests.kube_harness import KubeHarness

pytestmark = [pytest.mark.kubectl, pytest.mark.usefixtures("needs_kubectl")]

GROUP = "social.softsolz.uk"
VERSION = "v1alpha1"
PLURAL = "socialposts"
NAMESPACE = "kopf-test"
FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"
DIFFBASE = f"{GROUP}/last-handled-configuration"
POSTS = f"/apis/{GROUP}/{VERSION}/namespaces/{NAMESPACE}/{PLURAL}"
WATCH_START = f"Starting the watch-stream for {PLURAL}.{VERSION}.{GROUP} cluster-wide"
WATCH_RESTART = f"Restarting the watch-stream for {PLURAL}.{VERSION}.{GROUP} cluster-wide"

# What must never show up in kopf's log when it talks to a conforming server; besides these, any
# record at WARNING or above fails the test unless it is in LOG_EXPECTED_WARNINGS.
LOG_RED_FLAGS = (
    "Traceback",
    "inconsistencies",  # "Patching failed with ..." (older kopf), "Merge-patching finished with ..."
    "Unprocessable",
    "WatchingError",
    "Error in the watch-stream",
    "Ignoring an unsupported event type",
    "internal error serving",
    "APIClientError",
    "APIServerError",
    "[ERROR",
    "[CRITICAL",
)
LOG_EXPECTED_WARNINGS = ("OS signals are ignored: running not in the main thread.",)


def post_manifest(name: str, *, body: str = "Hello from kopf", draft: bool = True) -> str:
    return json.dumps(
        {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": "SocialPost",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"body": body, "draft": draft, "targets": [{"accountId": 12}]},
        }
    )


@dataclass
class Journal:
    """What the operator's handlers saw, appended from kopf's thread, read from the test's."""

    entries: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **entry: Any) -> None:
        with self.lock:
            self.entries.append({**entry, "at": time.monotonic()})

    def find(self, handler: str, name: str) -> list[dict[str, Any]]:
        with self.lock:
            return [e for e in self.entries if e["handler"] == handler and e["name"] == name]


class Records(logging.Handler):
    """Every log record of the process while the operator runs (kopf's, the server's, aiohttp's)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []
        self.alarming: list[str] = []
        self.setFormatter(logging.Formatter("[%(levelname)s] %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        line = self.format(record)
        self.lines.append(line)
        if record.levelno >= logging.WARNING and record.getMessage() not in LOG_EXPECTED_WARNINGS:
            self.alarming.append(line)

    def text(self) -> str:
        return "\n".join(list(self.lines))


def build_operator(journal: Journal) -> tuple[kopf.OperatorRegistry, kopf.OperatorSettings]:
    registry = kopf.OperatorRegistry()
    settings = kopf.OperatorSettings()
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.persistence.finalizer = FINALIZER
    # Short server-side watch timeouts: kopf reconnects from its last resourceVersion every
    # couple of seconds, which is also how the 410 Expired path is reached.
    settings.watching.server_timeout = 2
    settings.watching.client_timeout = 10
    settings.watching.connect_timeout = 2
    settings.watching.inactivity_timeout = 10
    settings.networking.request_timeout = 10
    settings.networking.connect_timeout = 2
    settings.networking.error_backoffs = (0.1, 0.2, 0.5)
    settings.posting.enabled = True
    settings.posting.loggers = True  # handler log lines (and outcomes) become Kubernetes Events
    settings.posting.level = logging.INFO
    settings.queueing.idle_timeout = 0.5
    settings.queueing.exit_timeout = 2
    settings.queueing.error_delays = (0.1, 0.2, 0.5, 1)
    settings.process.ultimate_exiting_timeout = 5

    @kopf.on.login(id="login", registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.create(GROUP, VERSION, PLURAL, id="on_create", registry=registry)
    async def on_create(
        name: str, spec: kopf.Spec, patch: kopf.Patch, body: kopf.Body, logger: Any, **_: Any
    ) -> None:
        journal.add(handler="create", name=name, spec=dict(spec))
        patch.status["phase"] = "draft" if spec.get("draft") else "scheduled"
        kopf.info(body, reason="Accepted", message=f"post {name} accepted")
        logger.info("created %s", name)

    @kopf.on.update(GROUP, VERSION, PLURAL, id="on_update", registry=registry)
    async def on_update(
        name: str, spec: kopf.Spec, diff: kopf.Diff, patch: kopf.Patch, meta: kopf.Meta, **_: Any
    ) -> None:
        journal.add(
            handler="update",
            name=name,
            diff=[(op, tuple(path), old, new) for op, path, old, new in diff],
            generation=meta.get("generation"),
        )
        patch.status["phase"] = "draft" if spec.get("draft") else "scheduled"
        patch.status["observedGeneration"] = meta.get("generation")

    @kopf.on.delete(GROUP, VERSION, PLURAL, id="on_delete", registry=registry)
    async def on_delete(name: str, meta: kopf.Meta, **_: Any) -> None:
        await asyncio.sleep(0.3)  # a window in which `kubectl delete` must still be waiting
        journal.add(
            handler="delete",
            name=name,
            deletion_timestamp=meta.get("deletionTimestamp"),
            finalizers=list(meta.get("finalizers") or []),
        )

    return registry, settings


@contextlib.contextmanager
def running_operator(
    kube: KubeHarness, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[KopfRunner, Journal, Records]]:
    """Run the operator until the block ends; then check kopf stopped and logged nothing alarming."""
    monkeypatch.setenv("KUBECONFIG", str(kube.kubeconfig))
    journal = Journal()
    registry, settings = build_operator(journal)
    records = Records()
    root = logging.getLogger()
    saved_level, saved_handlers = root.level, list(root.handlers)
    asyncio_logger = logging.getLogger("asyncio")
    saved_asyncio = asyncio_logger.propagate, list(asyncio_logger.handlers)
    root.addHandler(records)
    runner = KopfRunner(
        ["run", "--standalone", "--all-namespaces", "--verbose"],
        registry=registry,
        settings=settings,
        timeout=30,
    )
    try:
        with runner:
            wait_for(lambda: WATCH_START in records.text(), what="kopf to watch SocialPosts")
            yield runner, journal, records
    finally:
        # kopf configured the root logger for its CLI run: undo it, so no later test logs into
        # the closed stream of the finished click runner.
        root.handlers[:] = saved_handlers
        root.setLevel(saved_level)
        asyncio_logger.propagate, asyncio_logger.handlers[:] = saved_asyncio[0], saved_asyncio[1]
    assert not runner._thread.is_alive()
    assert runner.exit_code == 0, runner.output
    assert runner.exception is None
    log = runner.output + "\n" + records.text()
    flagged = [line for line in log.splitlines() if any(flag in line for flag in LOG_RED_FLAGS)]
    flagged += records.alarming
    assert not flagged, "kopf logged errors:\n" + "\n".join(flagged)


def wait_for(check: Callable[[], Any], *, timeout: float = 15.0, what: str = "the condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


def get_json(kube: KubeHarness, path: str) -> Any:
    """GET ``path`` as a plain HTTP client would; ``None`` on 404."""
    try:
        request = urllib.request.Request(kube.url + path, headers=kube.auth)
        with urllib.request.urlopen(request, timeout=10, context=kube.tls) as response:
            return json.load(response)
    except urllib.error.HTTPError as error:
        if error.code == 404:
            return None
        raise


def get_post(kube: KubeHarness, name: str) -> dict[str, Any] | None:
    result: dict[str, Any] | None = get_json(kube, f"{POSTS}/{name}")
    return result


def wait_handled(kube: KubeHarness, name: str, *, body: str = "Hello from kopf", generation: int = 1) -> Any:
    """Wait until kopf is done with the post's current spec: diff-base and status patch written."""

    def check() -> dict[str, Any] | None:
        post = get_post(kube, name)
        if post is None or post["metadata"]["generation"] != generation:
            return None
        base = post["metadata"].get("annotations", {}).get(DIFFBASE)
        if base is None or json.loads(base)["spec"]["body"] != body:
            return None
        status = post.get("status", {})
        if "phase" not in status or (generation > 1 and status.get("observedGeneration") != generation):
            return None
        return post

    return wait_for(check, what=f"kopf to finish handling {name} (generation {generation})")


def existing_post(kube: KubeHarness, name: str) -> dict[str, Any]:
    post = get_post(kube, name)
    assert post is not None, f"SocialPost {name} is gone"
    return post


def post_events(kube: KubeHarness, name: str) -> list[dict[str, Any]]:
    events = get_json(kube, f"/api/v1/namespaces/{NAMESPACE}/events")["items"]
    return [e for e in events if e.get("involvedObject", {}).get("name") == name]


@pytest.fixture
def kube_ns(kube: KubeHarness) -> KubeHarness:
    kube.kubectl("create", "namespace", NAMESPACE)
    return kube


@pytest.fixture
def short_history_kube(tmp_path: Path) -> Iterator[KubeHarness]:
    """A server keeping only 3 changes, so a watch resuming after a few writes gets 410 Expired."""
    harness = KubeHarness(tmp_path / "state", ServerSettings(history=3)).start()
    try:
        harness.kubectl("create", "namespace", NAMESPACE)
        yield harness
    finally:
        harness.close()


def test_create_update_delete_with_finalizer_and_events(
    kube_ns: KubeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    kube = kube_ns
    with running_operator(kube, monkeypatch) as (_runner, journal, _records):
        kube.kubectl("apply", "-f", "-", input=post_manifest("p1"))

        # Create: the handler ran once, its status patch went through /status, and kopf left its
        # finalizer and diff-base (but no progress records: they are purged on success).
        post = wait_for(
            lambda: (p := get_post(kube, "p1")) and p.get("status", {}).get("phase") == "draft" and p,
            what="the create handler's status.phase",
        )
        assert [e["spec"]["body"] for e in journal.find("create", "p1")] == ["Hello from kopf"]
        meta = post["metadata"]
        assert FINALIZER in meta["finalizers"]
        post = wait_for(
            lambda: (p := get_post(kube, "p1")) and DIFFBASE in p["metadata"].get("annotations", {}) and p,
            what="kopf's diff-base annotation",
        )
        annotations = post["metadata"]["annotations"]
        assert json.loads(annotations[DIFFBASE])["spec"]["body"] == "Hello from kopf"
        assert not [k for k in annotations if k.startswith(f"{GROUP}/on_")], annotations
        assert post["metadata"]["generation"] == 1

        # Update: the handler sees exactly the spec diff.
        kube.kubectl(
            "-n",
            NAMESPACE,
            "patch",
            "socialpost",
            "p1",
            "--type=merge",
            "-p",
            json.dumps({"spec": {"body": "Edited", "draft": False}}),
        )
        update = wait_for(lambda: journal.find("update", "p1"), what="the update handler")[0]
        assert sorted(update["diff"]) == [
            ("change", ("spec", "body"), "Hello from kopf", "Edited"),
            ("change", ("spec", "draft"), True, False),
        ]
        assert update["generation"] == 2
        post = wait_for(
            lambda: (p := get_post(kube, "p1")) and p.get("status", {}).get("observedGeneration") == 2 and p,
            what="the update handler's status patch",
        )
        assert post["status"]["phase"] == "scheduled"
        assert post["metadata"]["generation"] == 2  # status writes do not bump the generation
        wait_for(
            lambda: (
                json.loads(existing_post(kube, "p1")["metadata"]["annotations"][DIFFBASE])["spec"]["body"]
                == "Edited"
            ),
            what="the diff-base to follow the update",
        )
        assert len(journal.find("create", "p1")) == 1

        # Delete: kubectl blocks until kopf ran the delete handler and removed its finalizer.
        kube.kubectl("-n", NAMESPACE, "delete", "socialpost", "p1", "--wait=true", "--timeout=20s")
        returned = time.monotonic()
        deleted = journal.find("delete", "p1")
        assert len(deleted) == 1
        assert deleted[0]["at"] < returned  # recorded at the end of the handler
        assert deleted[0]["deletion_timestamp"]
        assert FINALIZER in deleted[0]["finalizers"]
        assert get_post(kube, "p1") is None

        # Kubernetes Events for each handler, attached to the post.
        def handler_events() -> list[str] | None:
            messages = [e["message"] for e in post_events(kube, "p1")]
            wanted = ("on_create' succeeded", "on_update' succeeded", "on_delete' succeeded")
            return messages if all(any(w in m for m in messages) for w in wanted) else None

        wait_for(handler_events, what="kopf's Events for the create, update and delete handlers")
        events = post_events(kube, "p1")
        for event in events:
            assert event["involvedObject"]["kind"] == "SocialPost"
            assert event["involvedObject"]["apiVersion"] == f"{GROUP}/{VERSION}"
            assert event["involvedObject"]["namespace"] == NAMESPACE
            assert event["involvedObject"]["uid"] == meta["uid"]
            assert event["metadata"]["name"].startswith("kopf-event-")
            assert event["type"] == "Normal"
        by_reason = {(e["reason"], e["message"]) for e in events}
        assert ("Accepted", "post p1 accepted") in by_reason
        assert ("Logging", "created p1") in by_reason


def test_operator_resumes_existing_objects_without_rerunning_handlers(
    kube_ns: KubeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restarted operator finds its own state in the annotations and does not redo the work."""
    kube = kube_ns
    with running_operator(kube, monkeypatch) as (_runner, journal, _records):
        kube.kubectl("apply", "-f", "-", input=post_manifest("p2"))
        wait_handled(kube, "p2")
    with running_operator(kube, monkeypatch) as (_runner, journal, _records):
        kube.kubectl("apply", "-f", "-", input=post_manifest("p3"))
        wait_handled(kube, "p3")
        assert len(journal.find("create", "p3")) == 1
        assert journal.find("create", "p2") == []
        assert journal.find("update", "p2") == []


def test_watch_expiry_makes_kopf_relist_and_keep_working(
    short_history_kube: KubeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """410 Expired on a watch resumption: kopf relists and carries on.

    kopf resumes each watch from the last resourceVersion it saw for that resource. With a
    history of 3 changes, a handful of writes to other kinds while the SocialPost watch is open
    push that version out, so the reconnection after ``server_timeout`` gets an ``ERROR`` event
    with a 410 Status, which is the only watch error kopf survives (by relisting).
    """
    kube = short_history_kube
    server = kube.server
    assert server is not None
    with running_operator(kube, monkeypatch) as (_runner, journal, records):
        kube.kubectl("apply", "-f", "-", input=post_manifest("before"))
        wait_handled(kube, "before")
        restarts = records.text().count(WATCH_RESTART)

        for i in range(8):
            config_map = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": f"churn-{i}", "namespace": NAMESPACE},
                "data": {"i": str(i)},
            }
            kube.call(apply_manifest(server.cluster, server.registry, config_map))
        assert server.store.history_floor > int(existing_post(kube, "before")["metadata"]["resourceVersion"])

        wait_for(
            lambda: records.text().count(WATCH_RESTART) > restarts,
            what="kopf to get 410 Expired and restart the SocialPost watch",
        )
        kube.kubectl("apply", "-f", "-", input=post_manifest("after", draft=False))
        assert wait_handled(kube, "after")["status"]["phase"] == "scheduled"
        kube.kubectl("-n", NAMESPACE, "delete", "socialpost", "after", "--wait=true", "--timeout=20s")
        assert journal.find("delete", "after")
        assert len(journal.find("create", "before")) == 1


@pytest.fixture
def bookmarking_kube(tmp_path: Path) -> Iterator[KubeHarness]:
    """A server sending a BOOKMARK after 0.2 s without events (kopf asks for bookmarks)."""
    harness = KubeHarness(tmp_path / "state", ServerSettings(bookmark_interval=0.2)).start()
    try:
        harness.kubectl("create", "namespace", NAMESPACE)
        yield harness
    finally:
        harness.close()


def test_a_slow_disk_does_not_make_kopf_miss_an_update(
    bookmarking_kube: KubeHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kopf resumes its watch from the last BOOKMARK's resourceVersion: it must not skip writes
    that were accepted but not yet durable when the bookmark was sent.

    The disk is made slow for one write (4 s), longer than kopf's watch timeout (2 s), so a
    watch stream sends a bookmark and ends while the write is still pending; kopf reconnects
    from the bookmark's resourceVersion and must still get the write's event once it is durable.
    """
    kube = bookmarking_kube
    server = kube.server
    assert server is not None
    store = server.store
    persist = store._persist

    def slow_persist(db: Any, batches: list[Any]) -> None:
        if any(c.obj.get("spec", {}).get("body") == "slow edit" for b in batches for c in b.changes):
            time.sleep(4)
        persist(db, batches)

    with running_operator(kube, monkeypatch) as (_runner, journal, _records):
        kube.kubectl("apply", "-f", "-", input=post_manifest("slow"))
        wait_handled(kube, "slow")
        monkeypatch.setattr(store, "_persist", slow_persist)
        kube.kubectl(
            "-n",
            NAMESPACE,
            "patch",
            "socialpost",
            "slow",
            "--type=merge",
            "-p",
            '{"spec":{"body":"slow edit"}}',
        )
        monkeypatch.setattr(store, "_persist", persist)
        wait_handled(kube, "slow", body="slow edit", generation=2)
        [update] = journal.find("update", "slow")
        assert update["diff"] == [("change", ("spec", "body"), "Hello from kopf", "slow edit")]
