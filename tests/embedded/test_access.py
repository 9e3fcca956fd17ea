"""Only the holders of the kubeconfig reach the embedded Kubernetes API; web pages do not.

Issue 9 item 6: the server accepted any ``Host``, any ``Origin`` and bodies without a JSON
content type, so a page could ``fetch(..., {mode: "no-cors"})`` objects into it and a
DNS-rebinding page could read every Secret; its files were world-readable. These tests make the
requests a browser would make and check the answers a real kube-apiserver gives, then the file
modes a developer's state directory ends up with.
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.kube_harness import KubeHarness

SECRETS = "/api/v1/namespaces/default/secrets"
SECRET = {
    "apiVersion": "v1",
    "kind": "Secret",
    "metadata": {"name": "planted", "labels": {"socialpub.softsolz.uk/api-key": "true"}},
    "stringData": {"hash": "attacker-chosen"},
}


@pytest.fixture
def anonymous(kube: KubeHarness) -> Iterator[httpx.Client]:
    """A client that trusts the server's CA (as a page cannot) but holds no token."""
    with httpx.Client(base_url=kube.url, verify=kube.tls, timeout=10) as c:
        yield c


def status(response: httpx.Response) -> dict[str, Any]:
    body: dict[str, Any] = response.json()
    assert body["kind"] == "Status", body
    assert body["status"] == "Failure"
    assert body["code"] == response.status_code
    return body


def stored_secrets(kube: KubeHarness) -> list[str]:
    with kube.http(timeout=10) as c:
        response = c.get(SECRETS)
        assert response.status_code == 200, response.text
        return [item["metadata"]["name"] for item in response.json()["items"]]


# Authentication.


def test_requests_without_the_token_are_401(kube: KubeHarness, anonymous: httpx.Client) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Bearer {kube.token}x"},
        {"Authorization": f"Basic {base64.b64encode(kube.token.encode()).decode()}"},
        {"Authorization": kube.token},
    ):
        for method, path in (("GET", SECRETS), ("GET", "/api"), ("GET", "/version"), ("GET", "/apis")):
            response = anonymous.request(method, path, headers=headers)
            assert response.status_code == 401, (headers, path, response.text)
            assert status(response)["reason"] == "Unauthorized"
        response = anonymous.post(SECRETS, json=SECRET, headers=headers)
        assert response.status_code == 401
    assert stored_secrets(kube) == []

    ok = anonymous.get(SECRETS, headers={"Authorization": f"bearer {kube.token}"})
    assert ok.status_code == 200  # the scheme is case-insensitive, as kube-apiserver reads it


def test_health_endpoints_stay_open_and_say_nothing(anonymous: httpx.Client) -> None:
    for path in ("/healthz", "/livez", "/readyz"):
        response = anonymous.get(path)
        assert response.status_code == 200
        assert response.json() == "ok"


def test_the_token_survives_a_restart(kube: KubeHarness) -> None:
    token = kube.token
    kube.restart()
    assert kube.token == token
    config = yaml.safe_load(kube.kubeconfig.read_text())
    assert config["users"][0]["user"]["token"] == token
    assert kube.kubectl_json("get", "namespaces")["items"]


# Browsers: Origin, Sec-Fetch-*, Host (DNS rebinding), content types.


def test_requests_from_web_pages_are_403(kube: KubeHarness) -> None:
    with kube.http(timeout=10) as c:
        for headers in (
            {"Origin": "https://evil.example"},
            {"Origin": "null"},
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Mode": "no-cors"},
            {"Sec-Fetch-Dest": "empty"},
        ):
            read = c.get(SECRETS, headers=headers)
            assert read.status_code == 403, (headers, read.text)
            assert status(read)["reason"] == "Forbidden"
            write = c.post(SECRETS, json=SECRET, headers=headers)
            assert write.status_code == 403
            preflight = c.options(SECRETS, headers={**headers, "Access-Control-Request-Method": "PUT"})
            assert preflight.status_code == 403
            assert "access-control-allow-origin" not in preflight.headers
            health = c.get("/healthz", headers=headers)
            assert health.status_code == 403
    assert stored_secrets(kube) == []


def test_a_no_cors_post_stores_nothing(kube: KubeHarness, anonymous: httpx.Client) -> None:
    """What ``fetch(url, {method: "POST", mode: "no-cors", body})`` sends, with and without the
    browser headers (a page gets no further than the TLS handshake: see the next tests)."""
    body = yaml.safe_dump(SECRET)
    page = {
        "Origin": "https://evil.example",
        "Sec-Fetch-Mode": "no-cors",
        "Sec-Fetch-Site": "cross-site",
        "Content-Type": "text/plain;charset=UTF-8",
    }
    assert anonymous.post(SECRETS, content=body, headers=page).status_code == 403
    # A body with no content type at all (a Blob without a type): no token, no entry.
    assert anonymous.post(SECRETS, content=body.encode()).status_code == 401
    with kube.http(timeout=10) as c:
        for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
            refused = c.post(SECRETS, content=body, headers={"Content-Type": content_type})
            assert refused.status_code == 415, (content_type, refused.text)
            assert status(refused)["reason"] == "UnsupportedMediaType"
    assert stored_secrets(kube) == []


def test_dns_rebinding_cannot_read_secrets(kube: KubeHarness) -> None:
    with kube.http(timeout=10) as c:
        assert c.post(SECRETS, json=SECRET).status_code == 201
        port = kube.url.rsplit(":", 1)[1]
        for host in (f"attacker.example:{port}", "attacker.example", f"127.0.0.1:{int(port) + 1}", ""):
            response = c.get(SECRETS, headers={"Host": host})
            assert response.status_code == 403, (host, response.text)
            assert status(response)["reason"] == "Forbidden"
            assert "attacker-chosen" not in response.text
            assert base64.b64encode(b"attacker-chosen").decode() not in response.text
        for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
            assert c.get(SECRETS, headers={"Host": host}).status_code == 200


def test_plain_http_gets_nothing(kube: KubeHarness) -> None:
    """A page's ``http://127.0.0.1:<port>`` request never reaches the API: the server speaks TLS
    only, with a CA no browser trusts."""
    url = kube.url.replace("https://", "http://")
    try:
        response = httpx.get(url + SECRETS, headers=kube.auth, timeout=5)
    except httpx.HTTPError:
        return
    assert response.status_code >= 400
    assert "items" not in response.text


def test_an_untrusted_client_cannot_complete_the_handshake(kube: KubeHarness) -> None:
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(kube.url + "/healthz", timeout=5)


# The state directory.


def _modes(state: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in state.iterdir() if p.is_file()}


def test_the_state_directory_is_private(kube: KubeHarness) -> None:
    with kube.http(timeout=10) as c:
        assert c.post(SECRETS, json=SECRET).status_code == 201  # the WAL has content now
    state = kube.state_dir
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    modes = _modes(state)
    for name in (
        "kube.sqlite3",
        "kube.sqlite3-wal",
        "kube.sqlite3-shm",
        "kubeconfig",
        "token",
        "apiserver.key",
    ):
        assert modes.get(name) == 0o600, (name, modes)
    assert all(mode == 0o600 for mode in modes.values()), modes


def test_wide_modes_from_an_earlier_version_are_tightened(tmp_path: Path) -> None:
    state = tmp_path / "state"
    old = os.umask(0o022)
    try:
        first = KubeHarness(state).start()
        first.close()
        os.chmod(state, 0o755)
        for path in state.iterdir():
            if path.is_file():
                os.chmod(path, 0o644)
        (state / "dev-key").write_text("sk_test_x\n")
        os.chmod(state / "dev-key", 0o644)
        os.umask(0)  # the widest umask: nothing the server creates may depend on it
        again = KubeHarness(state).start()
        try:
            with again.http(timeout=10) as c:
                assert c.post(SECRETS, json=SECRET).status_code == 201
        finally:
            again.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    modes = _modes(state)
    assert modes["dev-key"] == 0o600
    assert modes["kube.sqlite3"] == 0o600
    assert all(mode == 0o600 for mode in modes.values()), modes


def test_a_fresh_state_directory_under_umask_0(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        harness = KubeHarness(tmp_path / "fresh").start()
        try:
            with harness.http(timeout=10) as c:
                assert c.post(SECRETS, json=SECRET).status_code == 201
            modes = _modes(harness.state_dir)
        finally:
            harness.close()
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "fresh").stat().st_mode) == 0o700
    assert {"kube.sqlite3-wal", "kube.sqlite3-shm"} <= set(modes)
    assert all(mode == 0o600 for mode in modes.values()), modes


def test_the_kubeconfig_carries_the_token_and_ca(kube: KubeHarness) -> None:
    config = yaml.safe_load(kube.kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    assert cluster["server"] == kube.url
    assert cluster["server"].startswith("https://127.0.0.1:")
    assert kube.server is not None
    assert base64.b64decode(cluster["certificate-authority-data"]).decode() == kube.server.tls.ca_pem
    assert config["users"][0]["user"] == {"token": kube.token}
