"""The error envelope everywhere: unknown routes, body limits, media types, bad JSON, and every
validation rule at create and edit time (422 naming the field)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from socialpub.api.app import BASE_PATH
from tests.api.support import PNG, World


def _error(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) <= {"code", "message", "details"}
    error: dict[str, Any] = body["error"]
    return error


def _fields(response: httpx.Response) -> list[str | None]:
    return [d.get("field") for d in _error(response)["details"]]


class TestEnvelope:
    def test_unknown_route_is_404_in_the_envelope(self, world: World) -> None:
        client = world.client()
        response = client.get("/nothing-here")
        assert response.status_code == 404
        assert _error(response) == {
            "code": "not_found",
            "message": f"no route GET {BASE_PATH}/nothing-here",
        }
        root = world.raw().get("/")
        assert root.status_code == 404
        assert _error(root)["code"] == "not_found"

    def test_unknown_method_is_405_in_the_envelope(self, world: World) -> None:
        response = world.client().put("/posts", json={})
        assert response.status_code == 405
        assert _error(response)["code"] == "method_not_allowed"
        assert response.headers["allow"] == "GET, POST"

    def test_malformed_json_is_400(self, world: World) -> None:
        response = world.client().post(
            "/posts", content=b'{"body": "x",', headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 400
        error = _error(response)
        assert error["code"] == "invalid_json"
        assert error["message"].startswith("the request body is not valid JSON")

    def test_invalid_utf8_is_400(self, world: World) -> None:
        response = world.client().post(
            "/posts", content=b'{"body": "\xff\xfe"}', headers={"Content-Type": "application/json"}
        )
        assert response.status_code in (400, 422)
        _error(response)

    def test_body_over_one_mebibyte_is_413(self, world: World) -> None:
        big = b'{"body": "' + b"x" * (1024 * 1024) + b'"}'
        response = world.client().post("/posts", content=big, headers={"Content-Type": "application/json"})
        assert response.status_code == 413
        assert _error(response) == {
            "code": "payload_too_large",
            "message": "request bodies are limited to 1048576 bytes",
            "details": {"max_bytes": 1048576},
        }

    def test_streamed_body_over_the_limit_is_413(self, world: World) -> None:
        def chunks() -> Iterator[bytes]:
            yield b'{"body": "'
            for _ in range(20):
                yield b"x" * 65536
            yield b'"}'

        response = world.client().post(
            "/posts", content=chunks(), headers={"Content-Type": "application/json"}
        )
        assert "content-length" not in response.request.headers  # really chunked
        assert response.status_code == 413
        assert _error(response)["code"] == "payload_too_large"

    @pytest.mark.parametrize(
        "content_type",
        ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None],
    )
    def test_non_json_body_is_415(self, world: World, content_type: str | None) -> None:
        headers = {"Content-Type": content_type} if content_type else {}
        response = world.client().post("/posts", content=b'{"body": "x"}', headers=headers)
        assert response.status_code == 415
        assert _error(response)["code"] == "unsupported_media_type"

    def test_json_with_charset_is_accepted(self, world: World) -> None:
        response = world.client().post(
            "/posts", content=b"{}", headers={"Content-Type": "application/json; charset=utf-8"}
        )
        assert response.status_code == 422  # parsed, then validated

    def test_missing_body_is_422(self, world: World) -> None:
        response = world.client().post("/posts")
        assert response.status_code == 422
        assert _error(response)["details"] == [{"message": "a JSON request body is required"}]

    def test_body_that_is_not_an_object_is_422(self, world: World) -> None:
        response = world.client().post("/posts", json=["body"])
        assert response.status_code == 422
        assert _error(response)["code"] == "validation_error"


@pytest.fixture
def accounts(world: World) -> dict[str, int]:
    return {
        "linkedin": world.add_account("linkedin"),
        "facebook": world.add_account("facebook"),
        "instagram": world.add_account("instagram"),
    }


def _post(account: int, **fields: Any) -> dict[str, Any]:
    return {"body": "Hello", "targets": [{"account_id": account}], **fields}


# (name, payload builder given the accounts, expected code, expected fields)
CASES: list[tuple[str, Callable[[dict[str, int]], dict[str, Any]], str, list[str | None]]] = [
    ("body missing", lambda a: {"targets": [{"account_id": a["linkedin"]}]}, "validation_error", ["body"]),
    ("body empty", lambda a: _post(a["linkedin"], body=""), "validation_error", ["body"]),
    ("body blank", lambda a: _post(a["linkedin"], body="  \n\t "), "validation_error", ["body"]),
    ("body null", lambda a: _post(a["linkedin"], body=None), "validation_error", ["body"]),
    ("body not text", lambda a: _post(a["linkedin"], body=12), "validation_error", ["body"]),
    ("targets missing", lambda a: {"body": "x"}, "validation_error", ["targets"]),
    ("targets empty", lambda a: {"body": "x", "targets": []}, "validation_error", ["targets"]),
    (
        "account id missing",
        lambda a: {"body": "x", "targets": [{"override_body": "y"}]},
        "validation_error",
        ["targets[0].account_id"],
    ),
    (
        "account id not a number",
        lambda a: {"body": "x", "targets": [{"account_id": "twelve"}]},
        "validation_error",
        ["targets[0].account_id"],
    ),
    (
        "account id zero",
        lambda a: {"body": "x", "targets": [{"account_id": 0}]},
        "validation_error",
        ["targets[0].account_id"],
    ),
    (
        "duplicate account",
        lambda a: {"body": "x", "targets": [{"account_id": a["facebook"]}, {"account_id": a["facebook"]}]},
        "duplicate_account",
        ["targets[1].account_id"],
    ),
    (
        "unknown account",
        lambda a: {"body": "x", "targets": [{"account_id": a["linkedin"]}, {"account_id": 999}]},
        "account_not_found",
        ["targets[1].account_id"],
    ),
    (
        "empty override",
        lambda a: {"body": "x", "targets": [{"account_id": a["linkedin"], "override_body": ""}]},
        "validation_error",
        ["targets[0].override_body"],
    ),
    (
        "unknown field",
        lambda a: _post(a["linkedin"], scheduled_at="2030-01-01T00:00:00Z"),
        "validation_error",
        ["scheduled_at"],
    ),
    (
        "unknown target field",
        lambda a: {"body": "x", "targets": [{"account_id": a["linkedin"], "accountId": 1}]},
        "validation_error",
        ["targets[0].accountId"],
    ),
    (
        "http media",
        lambda a: _post(a["facebook"], media=[{"url": "http://cdn.example.com/a.png"}]),
        "validation_error",
        ["media[0].url"],
    ),
    (
        "not a url",
        lambda a: _post(a["facebook"], media=[{"url": "https:/nohost"}]),
        "validation_error",
        ["media[0].url"],
    ),
    (
        "eleven media",
        lambda a: _post(a["facebook"], media=[{"url": PNG}] * 11),
        "validation_error",
        ["media"],
    ),
    (
        "alt too long",
        lambda a: _post(a["facebook"], media=[{"url": PNG, "alt": "a" * 1001}]),
        "validation_error",
        ["media[0].alt"],
    ),
    (
        "linkedin over 3000",
        lambda a: _post(a["linkedin"], body="x" * 3001),
        "platform_limit",
        ["body"],
    ),
    (
        "linkedin override over 3000",
        lambda a: {"body": "x", "targets": [{"account_id": a["linkedin"], "override_body": "y" * 3001}]},
        "platform_limit",
        ["targets[0].override_body"],
    ),
    (
        "facebook over 63206",
        lambda a: _post(a["facebook"], body="x" * 63207),
        "validation_error",
        ["body"],
    ),
    (
        "instagram over 2200",
        lambda a: _post(a["instagram"], body="x" * 2201, media=[{"url": PNG}]),
        "platform_limit",
        ["body"],
    ),
    (
        "instagram 31 hashtags",
        lambda a: _post(a["instagram"], body=" ".join(f"#tag{i}" for i in range(31)), media=[{"url": PNG}]),
        "platform_limit",
        ["body"],
    ),
    (
        "instagram 31 glued hashtags",
        lambda a: _post(a["instagram"], body="".join(f"#t{i}" for i in range(31)), media=[{"url": PNG}]),
        "platform_limit",
        ["body"],
    ),
    (
        "instagram 21 mentions",
        lambda a: _post(a["instagram"], body=" ".join(f"@u{i}" for i in range(21)), media=[{"url": PNG}]),
        "platform_limit",
        ["body"],
    ),
    (
        "instagram 25 glued mentions",
        lambda a: _post(a["instagram"], body="".join(f"@u{i}" for i in range(25)), media=[{"url": PNG}]),
        "platform_limit",
        ["body"],
    ),
    (
        "instagram 21 mentions glued to hashtags",
        lambda a: _post(
            a["instagram"], body=" ".join(f"#x{i}@u{i}" for i in range(21)), media=[{"url": PNG}]
        ),
        "platform_limit",
        ["body"],
    ),
    (
        "instagram without image",
        lambda a: _post(a["instagram"]),
        "platform_limit",
        ["media"],
    ),
    (
        "linkedin takes at most 9 images",
        lambda a: _post(a["linkedin"], media=[{"url": PNG}] * 10),
        "platform_limit",
        ["media"],
    ),
]


class TestCreateValidation:
    @pytest.mark.parametrize(("name", "build", "code", "fields"), CASES, ids=[c[0] for c in CASES])
    def test_rule(
        self,
        world: World,
        accounts: dict[str, int],
        name: str,
        build: Callable[[dict[str, int]], dict[str, Any]],
        code: str,
        fields: list[str | None],
    ) -> None:
        client = world.client()
        response = client.post("/posts", json=build(accounts))
        assert response.status_code == 422, response.text
        error = _error(response)
        assert error["code"] == code
        assert _fields(response) == fields
        assert all(d["message"] for d in error["details"])
        assert client.get("/posts").json()["meta"]["total"] == 0  # nothing was created

    def test_limits_are_inclusive(self, world: World, accounts: dict[str, int]) -> None:
        client = world.client()
        ok = [
            _post(accounts["linkedin"], body="x" * 3000, media=[{"url": PNG, "alt": "a" * 1000}] * 9),
            _post(accounts["facebook"], body="x" * 63206, media=[{"url": PNG}] * 10),
            _post(accounts["instagram"], body=" ".join(f"#t{i}" for i in range(30)), media=[{"url": PNG}]),
            _post(accounts["instagram"], body="x" * 2200, media=[{"url": PNG}]),
        ]
        for payload in ok:
            assert client.post("/posts", json=payload).status_code == 201

    def test_inactive_account_is_422(self, world: World, accounts: dict[str, int]) -> None:
        world.set_account_state(accounts["facebook"], "expired")
        response = world.client().post("/posts", json=_post(accounts["facebook"]))
        assert response.status_code == 422
        assert _error(response)["details"] == [
            {
                "field": "targets[0].account_id",
                "code": "account_not_active",
                "message": f"account {accounts['facebook']} is expired; it must be active",
            }
        ]

    def test_several_problems_are_all_named(self, world: World, accounts: dict[str, int]) -> None:
        response = world.client().post(
            "/posts",
            json={"body": "", "media": [{"url": "ftp://x.example/a"}], "targets": [{"account_id": -1}]},
        )
        assert response.status_code == 422
        assert sorted(str(f) for f in _fields(response)) == ["body", "media[0].url", "targets[0].account_id"]


class TestUpdateValidation:
    def test_rules_apply_to_the_edited_post(self, world: World, accounts: dict[str, int]) -> None:
        client = world.client()
        post = world.create_post(client, [accounts["instagram"]], media=[{"url": PNG}])
        path = f"/posts/{post['id']}"
        for changes, code, fields in [
            ({"body": ""}, "validation_error", ["body"]),
            ({"body": None}, "validation_error", ["body"]),
            ({"media": []}, "platform_limit", ["media"]),  # instagram needs an image
            ({"body": "x" * 2201}, "platform_limit", ["body"]),
            ({"targets": []}, "validation_error", ["targets"]),
            ({"targets": [{"account_id": 4242}]}, "account_not_found", ["targets[0].account_id"]),
            ({"title": "x"}, "validation_error", ["title"]),
            ({"expected_updated_at": "2025-01-01T00:00:00"}, "validation_error", ["expected_updated_at"]),
            ({"expected_updated_at": "yesterday"}, "validation_error", ["expected_updated_at"]),
        ]:
            response = client.patch(path, json=changes)
            assert response.status_code == 422, (changes, response.text)
            assert _error(response)["code"] == code, changes
            assert _fields(response) == fields, changes
        assert client.get(path).json()["data"]["post"] == post  # untouched


class TestQueryValidation:
    @pytest.mark.parametrize(
        ("query", "field"),
        [
            ("limit=0", "limit"),
            ("limit=101", "limit"),
            ("limit=ten", "limit"),
            ("offset=-1", "offset"),
            ("status=sent", "status"),
            ("status=DRAFT", "status"),
        ],
    )
    def test_bad_list_query_is_422(self, world: World, query: str, field: str) -> None:
        response = world.client().get(f"/posts?{query}")
        assert response.status_code == 422
        assert _fields(response) == [field]

    @pytest.mark.parametrize("post_id", ["abc", "0", "-3", "1.5", "99999999999999999999999"])
    def test_bad_post_id_is_422(self, world: World, post_id: str) -> None:
        response = world.client().get(f"/posts/{post_id}")
        assert response.status_code == 422
        assert _fields(response) == ["id"]


class TestOddInputs:
    """Inputs found by fuzzing or by thinking like a fuzzer: each gets a 4xx or works, never a 5xx."""

    def test_unusual_text_round_trips(self, world: World, accounts: dict[str, int]) -> None:
        client = world.client()
        body = "nul\u0000 emoji 🎉 astral \U0010ffff rtl \u202e"
        response = client.post(
            "/posts",
            json={
                "body": body,
                "targets": [{"account_id": accounts["facebook"], "override_body": "x\u0000"}],
            },
        )
        assert response.status_code == 201
        post = response.json()["data"]["post"]
        assert post["body"] == body
        assert post["targets"][0]["override_body"] == "x\u0000"
        assert client.get(f"/posts/{post['id']}").json()["data"]["post"] == post
        assert client.get("/posts", params={"search": "\u0000 EMOJI"}).json()["meta"]["total"] == 1

    @pytest.mark.parametrize(
        ("payload", "field"),
        [
            ({"body": "x", "targets": [{"account_id": True}]}, "targets[0].account_id"),
            ({"body": "x", "targets": [{"account_id": 1.0}]}, "targets[0].account_id"),
            ({"body": "x", "targets": [{"account_id": "1"}]}, "targets[0].account_id"),
            ({"body": "x", "targets": [{"account_id": 2**63}]}, "targets[0].account_id"),
            (
                {"body": "x", "targets": [{"account_id": 1}], "media": [{"url": "https://[::1]:99999/a"}]},
                "media[0].url",
            ),
            (
                {"body": "x", "targets": [{"account_id": 1}], "media": [{"url": "https://a.example/ b"}]},
                "media[0].url",
            ),
            ({"body": "x", "targets": [{"account_id": 1}], "media": [{"url": "https://"}]}, "media[0].url"),
            ({"body": "x", "targets": [{"account_id": 1}], "media": [{"alt": "no url"}]}, "media[0].url"),
        ],
    )
    def test_odd_values_are_422(self, world: World, payload: dict[str, Any], field: str) -> None:
        response = world.client().post("/posts", json=payload)
        assert response.status_code == 422
        assert _fields(response) == [field]

    @pytest.mark.parametrize(
        ("raw", "status"),
        [
            (b'{"body": "\\ud800", "targets": [{"account_id": 1}]}', 422),  # a lone surrogate
            (b"[" * 100_000 + b"]" * 100_000, 400),  # too deep for the parser
            (b'{"body": NaN, "targets": [{"account_id": 1}]}', 422),
            (b'{"body": "x", "targets": [{"account_id": 1e400}]}', 422),
            (b"\xef\xbb\xbf{}", 422),  # a byte order mark is tolerated: then {} is invalid
        ],
    )
    def test_odd_json_is_4xx(self, world: World, raw: bytes, status: int) -> None:
        response = world.client().post("/posts", content=raw, headers={"Content-Type": "application/json"})
        assert response.status_code == status
        _error(response)

    def test_times_that_overflow_utc_are_422(self, world: World, accounts: dict[str, int]) -> None:
        client = world.client()
        post = world.create_post(client, [accounts["linkedin"]])
        response = client.post(
            f"/posts/{post['id']}/publish", json={"scheduled_for": "9999-12-31T23:59:59-05:00"}
        )
        assert response.status_code == 422
        assert _fields(response) == ["scheduled_for"]
        response = client.patch(
            f"/posts/{post['id']}", json={"expected_updated_at": "0001-01-01T00:00:00+05:00"}
        )
        assert response.status_code == 422
        assert _fields(response) == ["expected_updated_at"]

    def test_non_ascii_idempotency_key(self, world: World, accounts: dict[str, int]) -> None:
        client = world.client()
        headers = [(b"Idempotency-Key", "clé-€".encode())]
        payload = {"body": "x", "targets": [{"account_id": accounts["linkedin"]}]}
        first = client.post("/posts", json=payload, headers=headers)
        again = client.post("/posts", json=payload, headers=headers)
        assert (first.status_code, again.status_code) == (201, 201)
        assert again.headers["idempotent-replayed"] == "true"
