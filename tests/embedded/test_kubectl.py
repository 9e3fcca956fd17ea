"""Conformance of the embedded Kubernetes API with the real kubectl.

Every test drives ``/usr/bin/kubectl`` against the embedded server and asserts what a user sees:
exit codes, printed lines, JSON, and the state the server keeps afterwards. The tests share one
server per module (``shared_kube``) and each works in a namespace of its own.

Long-running commands (``get -w``, ``wait``, a waiting ``delete``) run in the background with
:class:`Background`; a test knows they are waiting on the server when their watch shows up in the
server's watch hub, so no test sleeps for a fixed time.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
import yaml

from socialpub.kube.client import KubeClient
from socialpub.kube.events import record_event
from tests.kube_harness import EXAMPLES, KUBECTL, REPO, KubeHarness

pytestmark = [pytest.mark.kubectl, pytest.mark.usefixtures("needs_kubectl")]

GROUP = "social.softsolz.uk"
API_VERSION = f"{GROUP}/v1alpha1"
DEADLINE = 15.0
"""Seconds any single background expectation may take before the test fails."""

T = TypeVar("T")
_namespaces = itertools.count(1)


# Helpers.


def eventually(probe: Callable[[], T | None], *, timeout: float = DEADLINE, what: str = "") -> T:
    """Poll ``probe`` every few milliseconds until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = probe()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what or probe}")
        time.sleep(0.02)


def open_watches(kube: KubeHarness, namespace: str) -> int:
    """How many watches are open on the server for ``namespace`` (counted on the server's loop)."""

    async def count() -> int:
        assert kube.server is not None
        assert kube.server.watches is not None
        hub = kube.server.watches
        return sum(1 for ws in hub._watchers.values() for w in ws if w.namespace == namespace)

    result: int = kube.call(count())
    return result


class Background:
    """kubectl running in the background, its output collected line by line as it arrives."""

    def __init__(self, kube: KubeHarness, *args: str) -> None:
        assert KUBECTL is not None
        env = {**os.environ, "KUBECONFIG": str(kube.kubeconfig)}
        self.args = args
        self.proc = subprocess.Popen(
            [KUBECTL, f"--cache-dir={kube.cache_dir}", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        self.lines: list[str] = []
        self.errors: list[str] = []
        self._readers = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.errors), daemon=True),
        ]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: Any, into: list[str]) -> None:
        for line in stream:
            into.append(line.rstrip("\n"))

    @property
    def stdout(self) -> str:
        return "\n".join(self.lines)

    @property
    def stderr(self) -> str:
        return "\n".join(self.errors)

    def running(self) -> bool:
        return self.proc.poll() is None

    def line(self, predicate: Callable[[str], bool], *, what: str) -> str:
        """The first output line satisfying ``predicate``, waiting for it to be printed."""

        def probe() -> str | None:
            found = next((line for line in list(self.lines) if predicate(line)), None)
            if found is None and not self.running():
                raise AssertionError(
                    f"kubectl {' '.join(self.args)} exited ({self.proc.returncode}) without {what}:\n"
                    f"{self.stdout}\n{self.stderr}"
                )
            return found

        return eventually(probe, what=what)

    def finish(self, timeout: float = DEADLINE) -> int:
        """Wait for kubectl to exit by itself; its exit code."""
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            raise AssertionError(
                f"kubectl {' '.join(self.args)} still running:\n{self.stdout}\n{self.stderr}"
            ) from exc
        for reader in self._readers:
            reader.join(5)
        return code

    def stop(self) -> None:
        if self.running():
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        for reader in self._readers:
            reader.join(5)

    def __enter__(self) -> Background:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def post(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    spec.setdefault("body", f"The body of {name}.")
    spec.setdefault("targets", [{"accountId": 12}])
    return {
        "apiVersion": API_VERSION,
        "kind": "SocialPost",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def account(name: str, namespace: str, labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "SocialAccount",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": {"platform": "linkedin", "displayName": f"Account {name}", "sandbox": True},
    }


def target(name: str, namespace: str, post_name: str, **metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "SocialTarget",
        "metadata": {"name": name, "namespace": namespace, **metadata},
        "spec": {"postName": post_name, "accountId": 12},
    }


def apply(kube: KubeHarness, *objects: dict[str, Any], args: tuple[str, ...] = ()) -> str:
    """``kubectl apply -f -`` of ``objects`` (a YAML stream); stdout."""
    stream = yaml.safe_dump_all(objects)
    return kube.kubectl("apply", *args, "-f", "-", input=stream).stdout


def get(kube: KubeHarness, namespace: str, resource: str) -> dict[str, Any]:
    obj: dict[str, Any] = kube.kubectl_json("-n", namespace, "get", resource)
    return obj


def absent(kube: KubeHarness, namespace: str, resource: str) -> bool:
    proc = kube.kubectl("-n", namespace, "get", resource, "-o", "name", check=False)
    if proc.returncode == 0:
        return False
    assert "NotFound" in proc.stderr, proc.stderr
    assert "not found" in proc.stderr, proc.stderr
    return True


def names(output: str) -> set[str]:
    """The names in ``kubectl get -o name`` output, without their ``kind.group/`` prefix."""
    return {line.rpartition("/")[2] for line in output.split()}


def table(output: str) -> list[list[str]]:
    """``kubectl get`` table output as rows of cells, the header first; empty cells are ``""``.

    kubectl aligns every column at the offset of its header, with at least three spaces between
    columns, so the header's offsets cut every row.
    """
    lines = [line for line in output.splitlines() if line.strip()]
    starts = [m.start() for m in re.finditer(r"(?:^|(?<=\s{2}))\S", lines[0])]
    bounds = [*starts[1:], None]
    return [[line[a:b].strip() for a, b in zip(starts, bounds, strict=True)] for line in lines]


def assert_contains(actual: Any, expected: Any, where: str = "") -> None:
    """``actual`` holds everything in ``expected`` (it may have more keys, e.g. schema defaults)."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict), (where, actual)
        for key, value in expected.items():
            assert key in actual, (where, key)
            assert_contains(actual[key], value, f"{where}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list), (where, actual)
        assert len(actual) == len(expected), (where, actual)
        for i, (a, e) in enumerate(zip(actual, expected, strict=True)):
            assert_contains(a, e, f"{where}[{i}]")
    else:
        assert actual == expected, (where, actual, expected)


def words(text: str) -> str:
    return " ".join(text.split())


@pytest.fixture
def kube(shared_kube: KubeHarness) -> KubeHarness:
    """The module's server (overrides the per-test ``kube`` fixture for this module)."""
    return shared_kube


@pytest.fixture
def ns(shared_kube: KubeHarness) -> str:
    """A fresh namespace for one test, created with kubectl."""
    name = f"kubectl-{next(_namespaces)}"
    shared_kube.kubectl("create", "namespace", name)
    return name


# Apply.


def test_apply_examples_then_reapply_is_unchanged_and_edits_are_configured(
    kube: KubeHarness, tmp_path: Path
) -> None:
    created = kube.kubectl("create", "namespace", "acme-sandbox")
    assert created.stdout.strip() == "namespace/acme-sandbox created"

    files = sorted(EXAMPLES.glob("*.yaml"))
    assert len(files) >= 5
    docs = {f: yaml.safe_load(f.read_text()) for f in files}
    for file, doc in docs.items():
        out = kube.kubectl("apply", "-f", str(file)).stdout.strip()
        plural = doc["kind"].lower()
        assert out == f"{plural}.{GROUP}/{doc['metadata']['name']} created"

    def stored(doc: dict[str, Any]) -> dict[str, Any]:
        namespace = doc["metadata"].get("namespace")
        args = ("-n", namespace) if namespace else ()
        obj: dict[str, Any] = kube.kubectl_json(
            *args, "get", f"{doc['kind'].lower()}/{doc['metadata']['name']}"
        )
        return obj

    before = {f: stored(doc) for f, doc in docs.items()}
    for file, doc in docs.items():
        obj = before[file]
        assert_contains(obj["spec"], doc["spec"], file.name)
        assert obj["metadata"].get("labels") == doc["metadata"].get("labels")
        assert obj["metadata"]["generation"] == 1
        assert "kubectl.kubernetes.io/last-applied-configuration" in obj["metadata"]["annotations"]

    again = kube.kubectl("apply", "-f", str(EXAMPLES)).stdout.splitlines()
    assert len(again) == len(files)
    assert all(line.endswith(" unchanged") for line in again), again
    for file, doc in docs.items():
        after = stored(doc)
        assert after["metadata"]["resourceVersion"] == before[file]["metadata"]["resourceVersion"]
        assert after["metadata"]["generation"] == 1

    draft = docs[EXAMPLES / "draft-post.yaml"]
    edited = {**draft, "spec": {**draft["spec"], "draft": False}}
    copy = tmp_path / "draft-post.yaml"
    copy.write_text(yaml.safe_dump(edited))
    out = kube.kubectl("apply", "-f", str(copy)).stdout.strip()
    assert out == f"socialpost.{GROUP}/welcome-draft configured"
    obj = stored(draft)
    assert obj["spec"]["draft"] is False
    assert obj["metadata"]["generation"] == 2
    old_rv = int(before[EXAMPLES / "draft-post.yaml"]["metadata"]["resourceVersion"])
    assert int(obj["metadata"]["resourceVersion"]) > old_rv
    assert obj["metadata"]["uid"] == before[EXAMPLES / "draft-post.yaml"]["metadata"]["uid"]

    assert kube.kubectl("apply", "-f", str(copy)).stdout.strip().endswith(" unchanged")
    assert stored(draft)["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]


def test_apply_server_side_creates_then_updates(kube: KubeHarness, ns: str) -> None:
    out = apply(kube, post("ssa", ns, draft=True), args=("--server-side",))
    assert out.strip() == f"socialpost.{GROUP}/ssa serverside-applied"
    first = get(kube, ns, "sp/ssa")
    assert first["metadata"]["generation"] == 1
    assert "kubectl.kubernetes.io/last-applied-configuration" not in (
        first["metadata"].get("annotations") or {}
    )

    apply(kube, post("ssa", ns, draft=True), args=("--server-side",))
    assert get(kube, ns, "sp/ssa")["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]

    apply(kube, post("ssa", ns, draft=False), args=("--server-side",))
    second = get(kube, ns, "sp/ssa")
    assert second["spec"]["draft"] is False
    assert second["metadata"]["generation"] == 2


def test_replace_and_diff(kube: KubeHarness, ns: str, tmp_path: Path) -> None:
    apply(kube, post("p", ns, draft=True))
    manifest = tmp_path / "p.yaml"
    manifest.write_text(yaml.safe_dump(post("p", ns, draft=True)))
    same = kube.kubectl("diff", "-f", str(manifest), check=False)
    assert same.returncode == 0, same.stderr
    assert same.stdout == ""

    manifest.write_text(yaml.safe_dump(post("p", ns, draft=False)))
    diff = kube.kubectl("diff", "-f", str(manifest), check=False)
    assert diff.returncode == 1, diff.stderr  # 1 = differences found
    assert "-  draft: true" in diff.stdout
    assert "+  draft: false" in diff.stdout
    assert "+  generation: 2" in diff.stdout
    assert get(kube, ns, "sp/p")["spec"]["draft"] is True  # diff is a server dry run

    out = kube.kubectl("replace", "-f", str(manifest)).stdout.strip()
    assert out == f"socialpost.{GROUP}/p replaced"
    obj = get(kube, ns, "sp/p")
    assert obj["spec"]["draft"] is False
    assert obj["metadata"]["generation"] == 2


# Get.


def test_get_json_and_selectors(kube: KubeHarness, ns: str) -> None:
    apply(
        kube,
        account("account-12", ns, {f"{GROUP}/id": "12", "x": "a"}),
        account("account-13", ns, {f"{GROUP}/id": "13", "x": "b"}),
        account("account-14", ns, {f"{GROUP}/id": "14", "x": "c"}),
        account("account-15", ns, {f"{GROUP}/id": "15"}),
    )

    listed = kube.kubectl_json("-n", ns, "get", "socialaccounts")
    assert listed["kind"] == "List"
    assert [i["metadata"]["name"] for i in listed["items"]] == [
        "account-12",
        "account-13",
        "account-14",
        "account-15",
    ]
    assert all(i["kind"] == "SocialAccount" and i["apiVersion"] == API_VERSION for i in listed["items"])

    one = get(kube, ns, "socialaccount/account-12")
    assert one["kind"] == "SocialAccount"
    assert one["metadata"]["namespace"] == ns
    assert one["metadata"]["labels"] == {f"{GROUP}/id": "12", "x": "a"}
    assert re.fullmatch(r"[0-9a-f-]{36}", one["metadata"]["uid"])
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", one["metadata"]["creationTimestamp"])
    assert one["spec"]["platform"] == "linkedin"

    def selected(*args: str) -> set[str]:
        return names(kube.kubectl("-n", ns, "get", "sa", "-o", "name", *args).stdout)

    assert selected("-l", f"{GROUP}/id=12") == {"account-12"}
    assert selected("-l", f"{GROUP}/id==13") == {"account-13"}
    assert selected("-l", f"{GROUP}/id!=12") == {"account-13", "account-14", "account-15"}
    assert selected("-l", "x in (a,b)") == {"account-12", "account-13"}
    assert selected("-l", "x notin (a,b)") == {"account-14", "account-15"}
    assert selected("-l", "x") == {"account-12", "account-13", "account-14"}
    assert selected("-l", "!x") == {"account-15"}
    assert selected("-l", f"x in (a,b),{GROUP}/id=13") == {"account-13"}
    assert selected("-l", "x=zzz") == set()
    assert selected("--field-selector", "metadata.name=account-14") == {"account-14"}
    assert selected("--field-selector", "metadata.name!=account-14,metadata.name!=account-15") == {
        "account-12",
        "account-13",
    }
    everywhere = kube.kubectl("get", "sa", "-A", "-o", "name", "--field-selector", f"metadata.namespace={ns}")
    assert names(everywhere.stdout) == {"account-12", "account-13", "account-14", "account-15"}

    empty = kube.kubectl("-n", ns, "get", "sa", "-l", "x=zzz")
    assert empty.stdout == ""
    assert f"No resources found in {ns} namespace." in empty.stderr

    bad_label = kube.kubectl("-n", ns, "get", "sa", "-l", "x in (a", check=False)
    assert bad_label.returncode != 0
    assert "BadRequest" in bad_label.stderr
    bad_field = kube.kubectl("-n", ns, "get", "sa", "--field-selector", "spec.platform=linkedin", check=False)
    assert bad_field.returncode != 0
    assert "field label not supported: spec.platform" in bad_field.stderr

    chunked = kube.kubectl("-n", ns, "get", "sa", "--chunk-size=1", "-o", "name").stdout
    assert chunked.split() == [f"socialaccount.{GROUP}/account-{i}" for i in (12, 13, 14, 15)]


def test_short_names_and_the_social_category(kube: KubeHarness, ns: str) -> None:
    tenant = f"{ns}-tenant"
    apply(
        kube,
        {
            "apiVersion": API_VERSION,
            "kind": "SocialTenant",
            "metadata": {"name": tenant},
            "spec": {"displayName": "T", "liveNamespace": f"{ns}-live", "sandboxNamespace": ns},
        },
        account("account-12", ns, {f"{GROUP}/id": "12"}),
        post("p", ns),
        target("p-12", ns, "p"),
        {
            "apiVersion": API_VERSION,
            "kind": "SocialWebhookEndpoint",
            "metadata": {"name": "hooks", "namespace": ns},
            "spec": {"url": "https://hooks.example.com/x", "secretRef": {"name": "webhook"}},
        },
    )
    expected = {
        "sp": ("SocialPost", "p"),
        "st": ("SocialTarget", "p-12"),
        "sa": ("SocialAccount", "account-12"),
        "swe": ("SocialWebhookEndpoint", "hooks"),
    }
    for short, (kind, name) in expected.items():
        listed = kube.kubectl_json("-n", ns, "get", short)
        assert [(i["kind"], i["metadata"]["name"]) for i in listed["items"]] == [(kind, name)], short
    tenants = kube.kubectl_json("get", "stn", tenant)
    assert tenants["kind"] == "SocialTenant"

    everything = kube.kubectl("get", "social", "-A", "-o", "name").stdout.split()
    for line in [
        f"socialtenant.{GROUP}/{tenant}",
        f"socialaccount.{GROUP}/account-12",
        f"socialpost.{GROUP}/p",
        f"socialtarget.{GROUP}/p-12",
        f"socialwebhookendpoint.{GROUP}/hooks",
    ]:
        assert line in everything

    # Cluster-scoped kinds (tenants) ignore -n, as on any cluster.
    in_ns = [
        line
        for line in kube.kubectl("-n", ns, "get", "social", "-o", "name").stdout.split()
        if not line.startswith("socialtenant.")
    ]
    assert sorted(in_ns) == sorted(
        [
            f"socialaccount.{GROUP}/account-12",
            f"socialpost.{GROUP}/p",
            f"socialtarget.{GROUP}/p-12",
            f"socialwebhookendpoint.{GROUP}/hooks",
        ]
    )

    tabled = kube.kubectl("get", "social", "-A").stdout
    assert re.search(rf"^{re.escape(ns)}\s+socialpost\.{re.escape(GROUP)}/p\s", tabled, re.M), tabled

    resources = kube.kubectl("api-resources", f"--api-group={GROUP}").stdout
    rows = {r[0]: r for r in table(resources)[1:]}
    assert rows["socialposts"][1:] == ["sp", API_VERSION, "true", "SocialPost"]
    assert rows["socialtenants"][1:] == ["stn", API_VERSION, "false", "SocialTenant"]


def test_get_tables_show_printer_columns(kube: KubeHarness, ns: str) -> None:
    apply(
        kube,
        post("scheduled", ns, scheduledFor="2027-01-15T09:00:00Z"),
        post("now", ns),
        account("account-12", ns, {f"{GROUP}/id": "12"}),
        target("now-12", ns, "now"),
    )
    kube.kubectl(
        "-n",
        ns,
        "patch",
        "sp",
        "now",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"phase": "published", "targetCounts": {"total": 2, "published": 1}}}),
    )
    rows = table(kube.kubectl("-n", ns, "get", "sp").stdout)
    assert rows[0] == ["NAME", "PHASE", "SCHEDULED FOR", "PUBLISHED", "TARGETS", "AGE"]
    by_name = {r[0]: r for r in rows[1:]}
    assert by_name["now"][:5] == ["now", "published", "", "1", "2"]
    assert re.fullmatch(r"\d+s", by_name["now"][5])
    assert by_name["scheduled"][:5] == ["scheduled", "", "2027-01-15T09:00:00Z", "", ""]

    one = table(kube.kubectl("-n", ns, "get", "sp", "now").stdout)
    assert one[0][:2] == ["NAME", "PHASE"]
    assert one[1][:2] == ["now", "published"]

    targets = table(kube.kubectl("-n", ns, "get", "st").stdout)
    assert targets[0] == ["NAME", "POST", "ACCOUNT", "STATE", "ATTEMPTS", "AGE"]
    assert targets[1][:3] == ["now-12", "now", "12"]
    wide = table(kube.kubectl("-n", ns, "get", "st", "-o", "wide").stdout)
    assert "NEXT ATTEMPT" in wide[0]  # priority-1 column, only with -o wide

    kube.kubectl(
        "-n",
        ns,
        "patch",
        "sa",
        "account-12",
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"state":"active"}}',
    )
    accounts = kube.kubectl("-n", ns, "get", "sa", "-L", f"{GROUP}/id", "--show-labels").stdout
    header, row = table(accounts)
    assert header == ["NAME", "PLATFORM", "DISPLAY NAME", "STATE", "AGE", "ID", "LABELS"]
    assert row[:4] == ["account-12", "linkedin", "Account account-12", "active"]
    assert row[5:] == ["12", f"{GROUP}/id=12"]

    by_phase = kube.kubectl("-n", ns, "get", "sp", "-o", "custom-columns=N:.metadata.name,P:.status.phase")
    assert table(by_phase.stdout) == [["N", "P"], ["now", "published"], ["scheduled", "<none>"]]


def test_get_tenant_table_reads_the_ready_condition(kube: KubeHarness, ns: str) -> None:
    name = f"{ns}-tenant"
    apply(
        kube,
        {
            "apiVersion": API_VERSION,
            "kind": "SocialTenant",
            "metadata": {"name": name},
            "spec": {"displayName": "Tenant", "liveNamespace": "live", "sandboxNamespace": "sandbox"},
        },
    )
    condition = {
        "type": "Ready",
        "status": "True",
        "reason": "Provisioned",
        "message": "",
        "lastTransitionTime": "2026-01-01T00:00:00Z",
    }
    kube.kubectl(
        "patch",
        "stn",
        name,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": {"conditions": [condition]}}),
    )
    header, row = table(kube.kubectl("get", "stn", name).stdout)
    assert header == ["NAME", "DISPLAY NAME", "LIVE", "SANDBOX", "READY", "AGE"]
    assert row[:5] == [name, "Tenant", "live", "sandbox", "True"]


# Watch.


def test_get_watch_shows_changes_made_by_another_kubectl(kube: KubeHarness, ns: str) -> None:
    apply(kube, post("watched", ns))
    with Background(
        kube, "-n", ns, "get", "sp", "-w", "--output-watch-events", "--request-timeout=30s"
    ) as watch:
        watch.line(lambda line: line.startswith("EVENT"), what="the table header")
        added = watch.line(lambda line: "watched" in line, what="the existing post")
        assert added.split()[:2] == ["ADDED", "watched"]
        eventually(lambda: open_watches(kube, ns), what="the watch to open")

        kube.kubectl(
            "-n",
            ns,
            "patch",
            "sp",
            "watched",
            "--subresource=status",
            "--type=merge",
            "-p",
            '{"status":{"phase":"publishing"}}',
        )
        modified = watch.line(lambda line: "publishing" in line, what="the status change")
        assert modified.split()[:3] == ["MODIFIED", "watched", "publishing"]

        apply(kube, post("newcomer", ns))
        assert watch.line(lambda line: "newcomer" in line, what="the new post").split()[:2] == [
            "ADDED",
            "newcomer",
        ]

        kube.kubectl("-n", ns, "delete", "sp", "watched")
        deleted = watch.line(lambda line: line.startswith("DELETED"), what="the deletion")
        assert deleted.split()[1] == "watched"
        assert watch.running()


def test_get_watch_json_with_a_label_selector(kube: KubeHarness, ns: str) -> None:
    apply(kube, account("a1", ns, {"tier": "gold"}), account("a2", ns))
    with Background(kube, "-n", ns, "get", "sa", "-l", "tier=gold", "-w", "-o", "json") as watch:
        eventually(lambda: open_watches(kube, ns), what="the watch to open")
        kube.kubectl("-n", ns, "label", "sa", "a2", "tier=gold")
        eventually(
            lambda: watch.stdout.count('"kind": "SocialAccount"') >= 2, what="a2 entering the selection"
        )

    decoder = json.JSONDecoder()
    text, pos, seen = watch.stdout, 0, []
    while pos < len(text):
        obj, pos = decoder.raw_decode(text, pos)
        seen.append(obj)
        while pos < len(text) and text[pos].isspace():
            pos += 1
    assert [(o["metadata"]["name"], o["metadata"]["labels"].get("tier")) for o in seen] == [
        ("a1", "gold"),
        ("a2", "gold"),
    ]


# Patch.


def test_patch_merge_and_json(kube: KubeHarness, ns: str) -> None:
    apply(kube, post("p", ns, draft=True, scheduledFor="2027-01-15T09:00:00Z"))

    out = kube.kubectl("-n", ns, "patch", "sp", "p", "--type", "merge", "-p", '{"spec":{"draft":false}}')
    assert out.stdout.strip() == f"socialpost.{GROUP}/p patched"
    obj = get(kube, ns, "sp/p")
    assert obj["spec"]["draft"] is False
    assert obj["metadata"]["generation"] == 2

    same = kube.kubectl("-n", ns, "patch", "sp", "p", "--type", "merge", "-p", '{"spec":{"draft":false}}')
    assert same.stdout.strip() == f"socialpost.{GROUP}/p patched (no change)"
    assert get(kube, ns, "sp/p")["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]

    kube.kubectl("-n", ns, "patch", "sp", "p", "--type", "merge", "-p", '{"spec":{"scheduledFor":null}}')
    obj = get(kube, ns, "sp/p")
    assert "scheduledFor" not in obj["spec"]
    assert obj["metadata"]["generation"] == 3

    ops = [
        {"op": "test", "path": "/spec/draft", "value": False},
        {"op": "replace", "path": "/spec/body", "value": "Patched body"},
        {"op": "add", "path": "/spec/targets/-", "value": {"accountId": 13}},
    ]
    kube.kubectl("-n", ns, "patch", "sp", "p", "--type", "json", "-p", json.dumps(ops))
    obj = get(kube, ns, "sp/p")
    assert obj["spec"]["body"] == "Patched body"
    assert obj["spec"]["targets"] == [{"accountId": 12}, {"accountId": 13}]
    assert obj["metadata"]["generation"] == 4

    failing = [
        {"op": "test", "path": "/spec/draft", "value": True},
        {"op": "replace", "path": "/spec/body", "value": "Never written"},
    ]
    proc = kube.kubectl(
        "-n", ns, "patch", "sp", "p", "--type", "json", "-p", json.dumps(failing), check=False
    )
    assert proc.returncode != 0
    assert "test" in proc.stderr, proc.stderr
    assert "/spec/draft" in proc.stderr, proc.stderr
    assert get(kube, ns, "sp/p")["spec"]["body"] == "Patched body"
    assert get(kube, ns, "sp/p")["metadata"]["resourceVersion"] == obj["metadata"]["resourceVersion"]

    invalid = kube.kubectl(
        "-n", ns, "patch", "sp", "p", "--type", "merge", "-p", '{"spec":{"targets":[]}}', check=False
    )
    assert invalid.returncode != 0
    assert "spec.targets" in invalid.stderr
    assert len(get(kube, ns, "sp/p")["spec"]["targets"]) == 2

    missing = kube.kubectl("-n", ns, "patch", "sp", "nope", "--type", "merge", "-p", "{}", check=False)
    assert missing.returncode != 0
    assert f'socialposts.{GROUP} "nope" not found' in missing.stderr


def test_strategic_patch_is_refused_on_custom_kinds_and_works_on_core_kinds(
    kube: KubeHarness, ns: str
) -> None:
    apply(kube, post("p", ns, draft=True))
    before = get(kube, ns, "sp/p")
    proc = kube.kubectl("-n", ns, "patch", "sp", "p", "-p", '{"spec":{"draft":false}}', check=False)
    assert proc.returncode != 0
    assert "the body of the request was in an unknown format" in proc.stderr, proc.stderr
    assert "application/merge-patch+json" in proc.stderr
    assert get(kube, ns, "sp/p") == before

    kube.kubectl("-n", ns, "create", "configmap", "cm", "--from-literal=a=1")
    out = kube.kubectl("-n", ns, "patch", "configmap", "cm", "-p", '{"data":{"b":"2"}}').stdout
    assert out.strip() == "configmap/cm patched"
    assert get(kube, ns, "configmap/cm")["data"] == {"a": "1", "b": "2"}


def test_status_subresource_split(kube: KubeHarness, ns: str) -> None:
    apply(kube, post("p", ns, draft=True))
    before = get(kube, ns, "sp/p")

    out = kube.kubectl(
        "-n",
        ns,
        "patch",
        "sp",
        "p",
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"phase":"draft"},"spec":{"draft":false}}',
    )
    assert out.stdout.strip() == f"socialpost.{GROUP}/p patched"
    after = get(kube, ns, "sp/p")
    assert after["status"] == {"phase": "draft"}
    assert after["spec"] == before["spec"]  # /status ignores spec
    assert after["metadata"]["generation"] == 1  # a status write is not a new generation
    assert int(after["metadata"]["resourceVersion"]) > int(before["metadata"]["resourceVersion"])

    normal = kube.kubectl("-n", ns, "patch", "sp", "p", "--type=merge", "-p", '{"status":{"phase":"failed"}}')
    assert normal.stdout.strip() == f"socialpost.{GROUP}/p patched (no change)"
    unchanged = get(kube, ns, "sp/p")
    assert unchanged["status"] == {"phase": "draft"}
    assert unchanged["metadata"]["resourceVersion"] == after["metadata"]["resourceVersion"]

    bad = kube.kubectl(
        "-n",
        ns,
        "patch",
        "sp",
        "p",
        "--subresource=status",
        "--type=merge",
        "-p",
        '{"status":{"phase":"x"}}',
        check=False,
    )
    assert bad.returncode != 0
    assert "status.phase" in bad.stderr
    assert get(kube, ns, "sp/p")["status"] == {"phase": "draft"}

    # Applying a manifest that carries status does not set it either.
    with_status = {**post("p", ns, draft=True), "status": {"phase": "published"}}
    apply(kube, with_status)
    assert get(kube, ns, "sp/p")["status"] == {"phase": "draft"}


# Delete.


def test_delete_with_a_finalizer(kube: KubeHarness, ns: str) -> None:
    finalizer = f"{GROUP}/test"
    for name in ("a", "b"):
        manifest = post(name, ns)
        manifest["metadata"]["finalizers"] = [finalizer]
        apply(kube, manifest)

    out = kube.kubectl("-n", ns, "delete", "sp", "a", "--wait=false").stdout
    assert out.strip() == f'socialpost.{GROUP} "a" deleted'
    held = get(kube, ns, "sp/a")
    assert held["metadata"]["deletionTimestamp"]
    assert held["metadata"]["finalizers"] == [finalizer]
    assert held["metadata"]["generation"] == 2
    assert names(kube.kubectl("-n", ns, "get", "sp", "-o", "name").stdout) == {"a", "b"}

    again = kube.kubectl("-n", ns, "delete", "sp", "a", "--wait=false")
    assert again.returncode == 0
    assert get(kube, ns, "sp/a")["metadata"]["resourceVersion"] == held["metadata"]["resourceVersion"]

    more = kube.kubectl(
        "-n",
        ns,
        "patch",
        "sp",
        "a",
        "--type=merge",
        "-p",
        json.dumps({"metadata": {"finalizers": [finalizer, "x/y"]}}),
        check=False,
    )
    assert more.returncode != 0
    assert "no new finalizers can be added if the object is being deleted" in more.stderr

    kube.kubectl(
        "-n", ns, "patch", "sp", "a", "--type=json", "-p", '[{"op":"remove","path":"/metadata/finalizers"}]'
    )
    assert absent(kube, ns, "sp/a")

    with Background(kube, "-n", ns, "delete", "sp", "b", "--timeout=30s") as deleting:
        eventually(lambda: open_watches(kube, ns), what="kubectl delete to wait with a watch")
        assert deleting.running()
        assert get(kube, ns, "sp/b")["metadata"]["deletionTimestamp"]
        kube.kubectl("-n", ns, "patch", "sp", "b", "--type=merge", "-p", '{"metadata":{"finalizers":null}}')
        assert deleting.finish() == 0, deleting.stderr
        assert deleting.stdout.strip() == f'socialpost.{GROUP} "b" deleted'
    assert absent(kube, ns, "sp/b")


def test_owner_reference_cascade(kube: KubeHarness, ns: str) -> None:
    apply(kube, post("owner", ns), post("keeper", ns))
    owner_uid = get(kube, ns, "sp/owner")["metadata"]["uid"]
    keeper_uid = get(kube, ns, "sp/keeper")["metadata"]["uid"]

    def owned_by(post_name: str, uid: str) -> dict[str, Any]:
        return {
            "ownerReferences": [
                {
                    "apiVersion": API_VERSION,
                    "kind": "SocialPost",
                    "name": post_name,
                    "uid": uid,
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ]
        }

    apply(
        kube,
        target("owner-12", ns, "owner", **owned_by("owner", owner_uid)),
        target("keeper-12", ns, "keeper", **owned_by("keeper", keeper_uid)),
        target("loose", ns, "owner"),
    )
    assert get(kube, ns, "st/owner-12")["metadata"]["ownerReferences"][0]["uid"] == owner_uid

    kube.kubectl("-n", ns, "delete", "sp", "owner")
    eventually(lambda: absent(kube, ns, "st/owner-12"), what="the owned target to be collected")
    assert names(kube.kubectl("-n", ns, "get", "st", "-o", "name").stdout) == {"keeper-12", "loose"}

    orphaned = kube.kubectl("-n", ns, "delete", "sp", "keeper", "--cascade=orphan")
    assert orphaned.returncode == 0
    kept = get(kube, ns, "st/keeper-12")
    assert not kept["metadata"].get("ownerReferences")


def test_deleting_a_namespace_deletes_its_contents(kube: KubeHarness, ns: str) -> None:
    held = post("held", ns)
    held["metadata"]["finalizers"] = [f"{GROUP}/test"]
    apply(kube, post("p", ns), held, account("account-12", ns))
    kube.kubectl("-n", ns, "create", "configmap", "cm", "--from-literal=a=b")

    out = kube.kubectl("delete", "namespace", ns, "--wait=false").stdout
    assert out.strip() == f'namespace "{ns}" deleted'
    namespace = kube.kubectl_json("get", "namespace", ns)
    assert namespace["status"]["phase"] == "Terminating"
    assert namespace["metadata"]["deletionTimestamp"]
    assert names(kube.kubectl("-n", ns, "get", "sp,sa", "-o", "name").stdout) == {"held"}
    assert absent(kube, ns, "configmap/cm")

    refused = kube.kubectl("-n", ns, "create", "configmap", "late", "--from-literal=a=b", check=False)
    assert refused.returncode != 0
    assert "because it is being terminated" in refused.stderr

    with Background(kube, "wait", "--for=delete", f"namespace/{ns}", "--timeout=30s") as waiting:
        kube.kubectl("-n", ns, "patch", "sp", "held", "--type=merge", "-p", '{"metadata":{"finalizers":[]}}')
        assert waiting.finish() == 0, waiting.stderr
    gone = kube.kubectl("get", "namespace", ns, check=False)
    assert gone.returncode != 0
    assert f'namespaces "{ns}" not found' in gone.stderr


def test_delete_namespace_waits_until_it_is_gone(kube: KubeHarness) -> None:
    name = f"kubectl-{next(_namespaces)}"
    kube.kubectl("create", "namespace", name)
    apply(kube, post("p", name), account("account-12", name))
    kube.kubectl("-n", name, "create", "secret", "generic", "s", "--from-literal=k=v")
    out = kube.kubectl("delete", "namespace", name)
    assert out.stdout.strip() == f'namespace "{name}" deleted'
    assert kube.kubectl("get", "namespace", name, check=False).returncode != 0
    assert (
        kube.kubectl(
            "get", "social,secrets", "-A", "-o", "name", "--field-selector", f"metadata.namespace={name}"
        ).stdout
        == ""
    )


# Wait.


def test_wait_for_a_condition_set_by_another_process(kube: KubeHarness, ns: str) -> None:
    apply(kube, post("p", ns))
    with Background(kube, "-n", ns, "wait", "sp/p", "--for=condition=Ready", "--timeout=30s") as waiting:
        eventually(lambda: open_watches(kube, ns), what="kubectl wait to watch")
        assert waiting.running()
        condition = {
            "type": "Ready",
            "status": "True",
            "observedGeneration": 1,
            "reason": "Published",
            "message": "every target is published",
            "lastTransitionTime": "2026-01-01T00:00:00Z",
        }
        kube.kubectl(
            "-n",
            ns,
            "patch",
            "sp",
            "p",
            "--subresource=status",
            "--type=merge",
            "-p",
            json.dumps({"status": {"conditions": [condition]}}),
        )
        assert waiting.finish() == 0, waiting.stderr
        assert waiting.stdout.strip() == f"socialpost.{GROUP}/p condition met"

    # Already true: returns at once. Ready=False is not met.
    assert kube.kubectl("-n", ns, "wait", "sp/p", "--for=condition=Ready", "--timeout=5s").returncode == 0
    not_false = kube.kubectl(
        "-n", ns, "wait", "sp/p", "--for=condition=Ready=False", "--timeout=1s", check=False
    )
    assert not_false.returncode != 0


def test_wait_for_a_jsonpath_value(kube: KubeHarness, ns: str) -> None:
    apply(kube, post("p", ns))
    with Background(
        kube, "-n", ns, "wait", "sp/p", "--for=jsonpath={.status.phase}=published", "--timeout=30s"
    ) as waiting:
        eventually(lambda: open_watches(kube, ns), what="kubectl wait to watch")
        for phase in ("publishing", "published"):
            kube.kubectl(
                "-n",
                ns,
                "patch",
                "sp",
                "p",
                "--subresource=status",
                "--type=merge",
                "-p",
                json.dumps({"status": {"phase": phase}}),
            )
        assert waiting.finish() == 0, waiting.stderr
        assert waiting.stdout.strip() == f"socialpost.{GROUP}/p condition met"
    assert get(kube, ns, "sp/p")["status"]["phase"] == "published"


def test_wait_that_times_out_exits_non_zero(kube: KubeHarness, ns: str) -> None:
    apply(kube, post("p", ns))
    started = time.monotonic()
    proc = kube.kubectl(
        "-n", ns, "wait", "sp/p", "--for=jsonpath={.status.phase}=failed", "--timeout=1s", check=False
    )
    assert proc.returncode != 0
    assert "timed out waiting for the condition" in proc.stderr
    assert time.monotonic() - started < 10

    missing = kube.kubectl("-n", ns, "wait", "sp/nope", "--for=condition=Ready", "--timeout=1s", check=False)
    assert missing.returncode != 0
    assert "not found" in missing.stderr


# Explain.


def _crd_schema(plural: str) -> dict[str, Any]:
    crd = yaml.safe_load((REPO / "crds" / f"{plural}.yaml").read_text())
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def test_explain_prints_the_crd_descriptions(kube: KubeHarness) -> None:
    targets = _crd_schema("socialposts")["properties"]["spec"]["properties"]["targets"]
    out = kube.kubectl("explain", "socialposts.spec.targets").stdout
    flat = words(out)
    assert "KIND: SocialPost" in flat
    assert f"GROUP: {GROUP}" in flat
    assert "FIELD: targets <[]Object>" in flat
    assert words(targets["description"]) in flat
    for field, schema in targets["items"]["properties"].items():
        assert field in out
        assert words(schema["description"]) in flat, field
    assert re.search(r"accountId\s+<integer> -required-", out), out

    body = _crd_schema("socialposts")["properties"]["spec"]["properties"]["body"]
    assert words(body["description"]) in words(kube.kubectl("explain", "sp.spec.body").stdout)

    top = words(kube.kubectl("explain", "socialtenants").stdout)
    assert words(_crd_schema("socialtenants")["description"]) in top


# Create (protobuf bodies for built-in kinds).


def test_create_namespace_secret_and_configmap(kube: KubeHarness, tmp_path: Path) -> None:
    name = f"kubectl-{next(_namespaces)}"
    assert kube.kubectl("create", "namespace", name).stdout.strip() == f"namespace/{name} created"
    namespace = kube.kubectl_json("get", "namespace", name)
    assert namespace["status"]["phase"] == "Active"
    assert namespace["metadata"]["name"] == name
    assert "generateName" not in namespace["metadata"]

    out = kube.kubectl(
        "-n", name, "create", "secret", "generic", "webhook-acme", "--from-literal=secret=whsec_abc"
    ).stdout
    assert out.strip() == "secret/webhook-acme created"
    secret = get(kube, name, "secret/webhook-acme")
    assert secret["type"] == "Opaque"
    assert base64.b64decode(secret["data"]["secret"]) == b"whsec_abc"
    assert "generateName" not in secret["metadata"]
    assert re.fullmatch(r"[0-9a-f-]{36}", secret["metadata"]["uid"])

    kube.kubectl(
        "-n", name, "create", "secret", "generic", "typed", "--type=example.com/token", "--from-literal=t=1"
    )
    assert get(kube, name, "secret/typed")["type"] == "example.com/token"

    blob = tmp_path / "blob.bin"
    blob.write_bytes(b"\x00\xffbinary")
    text = tmp_path / "settings.txt"
    text.write_text("line one\nline two\n")
    kube.kubectl(
        "-n",
        name,
        "create",
        "configmap",
        "settings",
        "--from-literal=mode=sandbox",
        f"--from-file={text}",
        f"--from-file={blob}",
    )
    configmap = get(kube, name, "configmap/settings")
    assert configmap["data"] == {"mode": "sandbox", "settings.txt": "line one\nline two\n"}
    assert base64.b64decode(configmap["binaryData"]["blob.bin"]) == b"\x00\xffbinary"
    assert names(kube.kubectl("-n", name, "get", "cm", "-o", "name").stdout) == {"settings"}

    duplicate = kube.kubectl("-n", name, "create", "configmap", "settings", check=False)
    assert duplicate.returncode != 0
    assert 'configmaps "settings" already exists' in duplicate.stderr

    elsewhere = kube.kubectl("-n", "no-such-namespace", "create", "configmap", "c", check=False)
    assert elsewhere.returncode != 0
    assert 'namespaces "no-such-namespace" not found' in elsewhere.stderr


# Validation.


INVALID_POSTS: dict[str, tuple[dict[str, Any], tuple[str, ...], list[str]]] = {
    "duplicate-accounts": (
        {"targets": [{"accountId": 12}, {"accountId": 12}]},
        (),
        ["spec.targets", "Duplicate value"],
    ),
    "no-targets": ({"targets": []}, (), ["spec.targets", "at least 1 items"]),
    "http-media": (
        {"media": [{"url": "http://images.example.com/a.png"}]},
        (),
        ["spec.media[0].url", "media url must start with https://"],
    ),
    "unknown-field": ({"bogus": 1}, ("--validate=strict",), ['unknown field "spec.bogus"']),
    "body-too-long": ({"body": "x" * 63207}, (), ["spec.body", "Too long", "63206"]),
    "account-zero": ({"targets": [{"accountId": 0}]}, (), ["spec.targets[0].accountId"]),
    "bad-schedule": ({"scheduledFor": "next tuesday"}, (), ["spec.scheduledFor"]),
}


@pytest.mark.parametrize("case", sorted(INVALID_POSTS))
def test_invalid_posts_are_refused_and_not_stored(kube: KubeHarness, case: str) -> None:
    spec, args, expected = INVALID_POSTS[case]
    namespace = "kubectl-validation"
    if kube.kubectl("get", "namespace", namespace, check=False).returncode != 0:
        kube.kubectl("create", "namespace", namespace)
    manifest = post(case, namespace, **spec)
    for verb in ("apply", "create"):
        proc = kube.kubectl(verb, *args, "-f", "-", input=yaml.safe_dump(manifest), check=False)
        assert proc.returncode != 0, (verb, proc.stdout)
        for text in expected:
            assert text in proc.stderr, (verb, proc.stderr[:2000])
        assert absent(kube, namespace, f"sp/{case}")


def test_unknown_fields_are_dropped_with_a_warning_when_not_strict(kube: KubeHarness, ns: str) -> None:
    manifest = post("p", ns, bogus=1)
    proc = kube.kubectl("apply", "--validate=warn", "-f", "-", input=yaml.safe_dump(manifest))
    assert 'unknown field "spec.bogus"' in proc.stderr
    assert "bogus" not in get(kube, ns, "sp/p")["spec"]

    ignored = post("q", ns, bogus=1)
    quiet = kube.kubectl("apply", "--validate=false", "-f", "-", input=yaml.safe_dump(ignored))
    assert "bogus" not in quiet.stderr
    assert "bogus" not in get(kube, ns, "sp/q")["spec"]


def test_invalid_metadata_is_refused(kube: KubeHarness, ns: str) -> None:
    bad_name = post("Not_A_Name", ns)
    proc = kube.kubectl("apply", "-f", "-", input=yaml.safe_dump(bad_name), check=False)
    assert proc.returncode != 0
    assert "metadata.name" in proc.stderr
    bad_label = post("p", ns)
    bad_label["metadata"]["labels"] = {"x": "not a label value!"}
    proc = kube.kubectl("apply", "-f", "-", input=yaml.safe_dump(bad_label), check=False)
    assert proc.returncode != 0
    assert "metadata.labels" in proc.stderr
    assert absent(kube, ns, "sp/p")


# Dry run.


def test_dry_run_server_does_not_persist(kube: KubeHarness, ns: str) -> None:
    manifest = yaml.safe_dump(post("p", ns, draft=True))
    out = kube.kubectl("create", "--dry-run=server", "-f", "-", "-o", "json", input=manifest).stdout
    answered = json.loads(out)
    assert answered["metadata"]["name"] == "p"
    assert answered["metadata"]["generation"] == 1
    assert absent(kube, ns, "sp/p")

    out = kube.kubectl("create", "--dry-run=server", "-f", "-", input=manifest).stdout
    assert out.strip() == f"socialpost.{GROUP}/p created (server dry run)"
    assert absent(kube, ns, "sp/p")

    apply(kube, post("p", ns, draft=True))
    stored = get(kube, ns, "sp/p")
    changed = yaml.safe_dump(post("p", ns, draft=False))
    out = kube.kubectl("apply", "--dry-run=server", "-f", "-", input=changed).stdout
    assert out.strip() == f"socialpost.{GROUP}/p configured (server dry run)"
    patched = kube.kubectl(
        "-n",
        ns,
        "patch",
        "sp",
        "p",
        "--type=merge",
        "-p",
        '{"spec":{"draft":false}}',
        "--dry-run=server",
        "-o",
        "json",
    )
    assert json.loads(patched.stdout)["spec"]["draft"] is False
    deleted = kube.kubectl("-n", ns, "delete", "sp", "p", "--dry-run=server").stdout
    assert deleted.strip() == f'socialpost.{GROUP} "p" deleted (server dry run)'
    everything = kube.kubectl("-n", ns, "delete", "sp", "--all", "--dry-run=server").stdout
    assert everything.strip() == f'socialpost.{GROUP} "p" deleted (server dry run)'
    assert get(kube, ns, "sp/p") == stored

    kube.kubectl("-n", ns, "create", "configmap", "c", "--from-literal=a=b", "--dry-run=server")
    assert absent(kube, ns, "configmap/c")
    other = f"{ns}-dry"
    kube.kubectl("create", "namespace", other, "--dry-run=server")
    assert kube.kubectl("get", "namespace", other, check=False).returncode != 0
    kube.kubectl("delete", "namespace", ns, "--dry-run=server")
    assert kube.kubectl_json("get", "namespace", ns)["status"]["phase"] == "Active"
    assert get(kube, ns, "sp/p") == stored


# Restart.


def test_objects_survive_a_restart(tmp_path: Path) -> None:
    harness = KubeHarness(tmp_path / "state").start()
    try:
        harness.kubectl("create", "namespace", "acme-sandbox")
        harness.kubectl("apply", "-f", str(EXAMPLES))
        before = harness.kubectl_json("get", "social", "-A")
        harness.restart()
        after = harness.kubectl_json("get", "social", "-A")
        assert after["items"] == before["items"]
        assert harness.kubectl("apply", "-f", str(EXAMPLES)).stdout.count("unchanged") == len(before["items"])
    finally:
        harness.close()


# Events of an object (issue 9 item 10e).


def _record_events(kube: KubeHarness, *events: tuple[dict[str, Any], str, str, bool]) -> None:
    """Post Events the way the operator does (``record_event``), through the kubeconfig."""

    async def go() -> None:
        client = KubeClient.from_config(str(kube.kubeconfig))
        try:
            for involved, reason, message, warning in events:
                await record_event(client, involved, reason=reason, message=message, warning=warning)
        finally:
            await client.aclose()

    asyncio.run(go())


def test_describe_shows_the_events_of_the_object(kube: KubeHarness, ns: str) -> None:
    apply(kube, post("launch", ns), post("other", ns), target("launch", ns, "launch"))
    launch = get(kube, ns, "socialpost/launch")
    other = get(kube, ns, "socialpost/other")
    launch_target = get(kube, ns, "socialtarget/launch")
    _record_events(
        kube,
        (launch, "Scheduled", "publishes at 2026-12-24T09:00:00Z", False),
        (launch, "TargetFailed", "linkedin refused the media", True),
        (other, "Published", "published everywhere", False),
        (launch_target, "Claimed", "claimed for publishing", False),
    )

    described = kube.kubectl("-n", ns, "describe", "socialpost", "launch").stdout
    events = described.split("Events:", 1)[1]
    assert "<none>" not in events
    rows = [words(line) for line in events.splitlines() if line.strip()]
    assert any(
        row.startswith("Normal Scheduled") and "publishes at 2026-12-24T09:00:00Z" in row for row in rows
    )
    assert any(row.startswith("Warning TargetFailed") and "linkedin refused the media" in row for row in rows)
    assert "Published" not in events  # another post's event
    assert "Claimed" not in events  # same name, another kind

    # The selectors kubectl and clients use, answered as kube-apiserver answers them.
    def selected(selector: str) -> list[str]:
        listed = kube.kubectl_json("-n", ns, "get", "events", f"--field-selector={selector}")
        return sorted(item["reason"] for item in listed["items"])

    assert selected("involvedObject.name=launch") == ["Claimed", "Scheduled", "TargetFailed"]
    assert selected("involvedObject.kind=SocialPost,involvedObject.name=launch") == [
        "Scheduled",
        "TargetFailed",
    ]
    assert selected(f"involvedObject.uid={launch['metadata']['uid']}") == ["Scheduled", "TargetFailed"]
    assert selected(f"involvedObject.apiVersion={API_VERSION},type=Warning") == ["TargetFailed"]
    assert selected(f"involvedObject.namespace={ns},reason=Published") == ["Published"]
    assert selected("involvedObject.fieldPath=,involvedObject.resourceVersion=") == [
        "Claimed",
        "Published",
        "Scheduled",
        "TargetFailed",
    ]
    assert selected("source=socialpub-operator,type!=Normal") == ["TargetFailed"]
    assert selected("reportingComponent=socialpub-operator,reason!=Scheduled") == [
        "Claimed",
        "Published",
        "TargetFailed",
    ]
    assert selected("source=kubelet") == []
    refused = kube.kubectl("-n", ns, "get", "events", "--field-selector=message=x", check=False)
    assert refused.returncode != 0
    assert "field label not supported: message" in refused.stderr
