"""Authentication, scopes, browser refusal, tenant and mode isolation, health probes."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import httpx
import pytest

from socialpub.api.app import BASE_PATH, create_app
from socialpub.api.settings import ApiSettings
from socialpub.embedded.kubeconfig import write_kubeconfig
from socialpub.embedded.tls import create_identity
from socialpub.models.keys import Mode, Scope, hash_key, key_id, new_key
from tests.api.support import World


def _error(response: httpx.Response) -> dict[str, object]:
    body = response.json()
    assert set(body) == {"error"}, body
    error: dict[str, object] = body["error"]
    return error


class TestAuthentication:
    def test_missing_key_is_401_with_challenge(self, world: World) -> None:
        response = world.raw().get(f"{BASE_PATH}/posts")
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert _error(response)["code"] == "missing_api_key"

    @pytest.mark.parametrize(
        "header",
        [
            "Basic dXNlcjpwYXNz",
            "Bearer",
            "Bearer not-a-key",
            "Bearer sk_test_short",
            "Token sk_test_" + "a" * 46,
        ],
    )
    def test_malformed_key_is_401(self, world: World, header: str) -> None:
        response = world.raw().get(f"{BASE_PATH}/posts", headers={"Authorization": header})
        assert response.status_code == 401
        assert 'error="invalid_token"' in response.headers["www-authenticate"]
        assert _error(response)["code"] == "invalid_api_key"

    def test_bad_checksum_is_401(self, world: World) -> None:
        key = world.key()
        last = key[-1]
        tampered = key[:-1] + ("0" if last != "0" else "1")
        response = world.raw().get(f"{BASE_PATH}/posts", headers={"Authorization": f"Bearer {tampered}"})
        assert response.status_code == 401
        assert _error(response) == {
            "code": "invalid_api_key",
            "message": "this is not a valid API key (wrong format or checksum)",
        }

    def test_unknown_key_is_401(self, world: World) -> None:
        response = world.raw().get(
            f"{BASE_PATH}/posts", headers={"Authorization": f"Bearer {new_key(Mode.TEST)}"}
        )
        assert response.status_code == 401
        assert _error(response) == {"code": "invalid_api_key", "message": "unknown API key"}

    def test_revoked_key_is_refused_within_one_second(self, world: World) -> None:
        key = world.new_key()
        client = httpx.Client(base_url=world.url + BASE_PATH, headers={"Authorization": f"Bearer {key}"})
        assert client.get("/posts").status_code == 200
        revoked_at = time.monotonic()
        world.revoke(key_id(hash_key(key)))
        while True:
            response = client.get("/posts")
            if response.status_code == 401:
                break
            assert time.monotonic() - revoked_at < 1.0, "revocation took longer than a second"
            time.sleep(0.01)
        assert _error(response)["code"] == "api_key_revoked"
        client.close()

    def test_authentication_comes_before_the_body(self, world: World) -> None:
        response = world.raw().post(
            f"{BASE_PATH}/posts", content=b"{not json", headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 401


class TestScopes:
    @pytest.mark.parametrize(
        ("method", "path", "scopes", "missing"),
        [
            ("GET", "/posts", {Scope.MANAGE, Scope.PUBLISH}, Scope.VIEW),
            ("GET", "/accounts", {Scope.MANAGE}, Scope.VIEW),
            ("GET", "/posts/1", {Scope.PUBLISH}, Scope.VIEW),
            ("GET", "/posts/1/targets", {Scope.MANAGE}, Scope.VIEW),
            ("POST", "/posts", {Scope.VIEW, Scope.PUBLISH}, Scope.MANAGE),
            ("PATCH", "/posts/1", {Scope.VIEW}, Scope.MANAGE),
            ("DELETE", "/posts/1", {Scope.VIEW, Scope.PUBLISH}, Scope.MANAGE),
            ("POST", "/posts/1/publish", {Scope.VIEW, Scope.MANAGE}, Scope.PUBLISH),
        ],
    )
    def test_missing_scope_is_403_naming_it(
        self, world: World, method: str, path: str, scopes: set[Scope], missing: Scope
    ) -> None:
        client = world.client(scopes=scopes)
        response = client.request(method, path, json={"body": "x", "targets": [{"account_id": 1}]})
        assert response.status_code == 403
        error = _error(response)
        assert error["code"] == "insufficient_scope"
        assert missing.value in str(error["message"])
        assert error["details"] == {"required_scope": missing.value}


class TestBrowserRefusal:
    @pytest.mark.parametrize(
        "headers",
        [
            {"Origin": "https://evil.example"},
            {"Origin": "null"},
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Mode": "cors"},
        ],
    )
    def test_browser_requests_are_403_without_cors(self, world: World, headers: dict[str, str]) -> None:
        client = world.client()
        response = client.get("/posts", headers=headers)
        assert response.status_code == 403
        assert _error(response)["code"] == "browser_requests_not_allowed"
        assert not [h for h in response.headers if h.lower().startswith("access-control-")]

    def test_preflight_is_403_without_cors(self, world: World) -> None:
        response = world.raw().options(
            f"{BASE_PATH}/posts",
            headers={
                "Origin": "https://app.example",
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization, content-type",
            },
        )
        assert response.status_code == 403
        assert _error(response)["code"] == "browser_requests_not_allowed"
        assert not [h for h in response.headers if h.lower().startswith("access-control-")]

    def test_bare_options_is_refused_too(self, world: World) -> None:
        response = world.raw().options(f"{BASE_PATH}/posts")
        assert response.status_code == 403
        assert not [h for h in response.headers if h.lower().startswith("access-control-")]

    def test_refused_before_authentication_and_everywhere(self, world: World) -> None:
        raw = world.raw()
        for path in (f"{BASE_PATH}/posts", "/healthz", "/nowhere"):
            response = raw.get(path, headers={"Origin": "https://app.example"})
            assert response.status_code == 403, path
            assert _error(response)["code"] == "browser_requests_not_allowed"


class TestIsolation:
    def test_another_tenants_post_is_404_everywhere(self, world: World, other_world: World) -> None:
        account = other_world.add_account()
        theirs = other_world.create_post(other_world.client(), [account])
        mine = world.client()
        for method, path, body in [
            ("GET", f"/posts/{theirs['id']}", None),
            ("GET", f"/posts/{theirs['id']}/targets", None),
            ("PATCH", f"/posts/{theirs['id']}", {"body": "hijacked"}),
            ("POST", f"/posts/{theirs['id']}/publish", {}),
            ("DELETE", f"/posts/{theirs['id']}", None),
        ]:
            response = mine.request(method, path, json=body)
            assert response.status_code == 404, (method, path, response.text)
            assert _error(response) == {"code": "post_not_found", "message": f"no post {theirs['id']}"}
        assert mine.get("/posts").json()["meta"]["total"] == 0
        still = other_world.client().get(f"/posts/{theirs['id']}").json()["data"]["post"]
        assert still["body"] == theirs["body"]
        assert still["status"] == "draft"

    def test_another_tenants_account_is_not_found(self, world: World, other_world: World) -> None:
        theirs = other_world.add_account()
        mine = world.add_account()
        assert theirs == mine  # ids are per namespace: the same number, another account
        response = world.client().post("/posts", json={"body": "x", "targets": [{"account_id": theirs + 1}]})
        assert response.status_code == 422
        assert _error(response)["code"] == "account_not_found"
        assert _error(response)["details"] == [
            {
                "field": "targets[0].account_id",
                "code": "account_not_found",
                "message": f"no account {theirs + 1}",
            }
        ]
        other_world.add_account()  # now theirs + 1 exists, but in the other tenant
        response = world.client().post("/posts", json={"body": "x", "targets": [{"account_id": theirs + 1}]})
        assert response.status_code == 422
        assert _error(response)["code"] == "account_not_found"

    def test_test_and_live_are_separate(self, world: World) -> None:
        sandbox_account = world.add_account("linkedin", mode=Mode.TEST, display_name="Sandbox Co")
        live_account = world.add_account("facebook", mode=Mode.LIVE, display_name="Live Co")
        test, live = world.client(Mode.TEST), world.client(Mode.LIVE)
        assert test.get("/accounts").json() == {
            "data": {
                "accounts": [
                    {
                        "id": sandbox_account,
                        "platform": "linkedin",
                        "display_name": "Sandbox Co",
                        "status": "active",
                    }
                ]
            }
        }
        assert live.get("/accounts").json() == {
            "data": {
                "accounts": [
                    {
                        "id": live_account,
                        "platform": "facebook",
                        "display_name": "Live Co",
                        "status": "active",
                    }
                ]
            }
        }
        post = world.create_post(test, [sandbox_account])
        assert live.get(f"/posts/{post['id']}").status_code == 404
        assert live.get("/posts").json()["meta"]["total"] == 0
        # A live account id that does not exist in the sandbox is not usable with a test key.
        world.add_account("instagram", mode=Mode.LIVE)
        response = test.post("/posts", json={"body": "x", "targets": [{"account_id": 2}]})
        assert response.status_code == 422
        assert _error(response)["code"] == "account_not_found"


class TestAccounts:
    def test_lists_only_active_accounts_by_id(self, world: World) -> None:
        first = world.add_account("linkedin", display_name="Acme Co")
        second = world.add_account("instagram", display_name="@acme")
        expired = world.add_account("facebook", display_name="Old Page", state="expired")
        accounts = world.client(scopes={Scope.VIEW}).get("/accounts").json()["data"]["accounts"]
        assert accounts == [
            {"id": first, "platform": "linkedin", "display_name": "Acme Co", "status": "active"},
            {"id": second, "platform": "instagram", "display_name": "@acme", "status": "active"},
        ]
        assert expired not in [a["id"] for a in accounts]


class TestHealth:
    def test_healthz_and_readyz(self, world: World) -> None:
        raw = world.raw()
        assert raw.get("/healthz").json() == {"data": {"status": "ok", "checks": {}}}
        ready = raw.get("/readyz")
        assert ready.status_code == 200
        data = ready.json()["data"]
        assert data["status"] == "ready"
        assert data["checks"] == {
            "cache:api_keys": True,
            "cache:tenants": True,
            "cache:namespaces": True,
            "cache:accounts": True,
            "cache:posts": True,
            "cache:targets": True,
            "kubernetes": True,
        }


class TestNotReady:
    async def test_unreachable_kubernetes_is_503_not_ready(self, tmp_path: Path) -> None:
        with socket.socket() as probe:  # a port nobody listens on
            probe.bind(("127.0.0.1", 0))
            dead = probe.getsockname()[1]
        kubeconfig = write_kubeconfig(
            tmp_path / "kubeconfig",
            f"https://127.0.0.1:{dead}",
            token="unused",
            ca_pem=create_identity().ca_pem,
        )
        app = create_app(ApiSettings(kubeconfig=str(kubeconfig), startup_sync_seconds=0.2))
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
                assert (await client.get("/healthz")).status_code == 200
                ready = await client.get("/readyz")
                assert ready.status_code == 503
                assert ready.json()["error"]["code"] == "not_ready"
                assert ready.json()["error"]["details"]["checks"]["kubernetes"] is False
                key = new_key(Mode.TEST)
                response = await client.get(f"{BASE_PATH}/posts", headers={"Authorization": f"Bearer {key}"})
                assert response.status_code == 503
                assert response.headers["retry-after"] == "1"
                assert response.json()["error"]["code"] == "not_ready"
