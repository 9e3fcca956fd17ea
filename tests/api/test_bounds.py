"""The OpenAPI document declares every bound the server enforces, exactly.

A request the document calls valid must not be refused as malformed (that is what schemathesis'
positive checks find at random; these are the cases it found, pinned): ids up to 2**63 - 1,
``12.0`` for an integer, Idempotency-Keys of 1 to 255 characters. Unknown query parameters are
refused like unknown body fields, and a schedule in the past is a rule of the moment with its own
code, not a malformed request.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from socialpub.api.openapi import export_openapi
from tests.api.support import World

POSTS = "/api/v1/services/social/posts"


def _numbers(node: Any) -> list[tuple[str, Any]]:
    found: list[tuple[str, Any]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
                found.append((key, value))
            else:
                found.extend(_numbers(value))
    elif isinstance(node, list):
        for item in node:
            found.extend(_numbers(item))
    return found


def test_bounds_are_published_exactly() -> None:
    doc = export_openapi()
    account_id = doc["components"]["schemas"]["TargetInput"]["properties"]["account_id"]
    assert account_id["exclusiveMaximum"] == 2**63
    assert type(account_id["exclusiveMaximum"]) is int
    assert not [(k, v) for k, v in _numbers(doc) if isinstance(v, float) and v.is_integer()]
    for path in (POSTS, POSTS + "/{id}/publish"):
        (header,) = [p for p in doc["paths"][path]["post"]["parameters"] if p["name"] == "Idempotency-Key"]
        assert header["schema"]["minLength"] == 1
        assert header["schema"]["maxLength"] == 255


def _error(response: httpx.Response) -> dict[str, Any]:
    error: dict[str, Any] = response.json()["error"]
    return error


def test_the_largest_id_is_a_missing_account_not_a_malformed_request(world: World) -> None:
    response = world.client().post("/posts", json={"body": "x", "targets": [{"account_id": 2**63 - 1}]})
    assert response.status_code == 422
    assert _error(response)["code"] == "account_not_found"


def test_an_integer_may_be_written_with_a_zero_fraction(world: World) -> None:
    account = world.add_account("linkedin")
    response = world.client().post("/posts", json={"body": "x", "targets": [{"account_id": float(account)}]})
    assert response.status_code == 201, response.text
    assert response.json()["data"]["post"]["targets"][0]["account_id"] == account


def test_unknown_query_parameters_are_refused(world: World) -> None:
    response = world.client().get("/posts", params={"limit": 5, "stauts": "draft"})
    assert response.status_code == 422
    assert _error(response)["code"] == "validation_error"
    assert [d["field"] for d in _error(response)["details"]] == ["stauts"]


def test_a_schedule_in_the_past_has_its_own_code(world: World) -> None:
    client = world.client()
    post = world.create_post(client, [world.add_account("linkedin")])
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    response = client.post(f"/posts/{post['id']}/publish", json={"scheduled_for": past})
    assert response.status_code == 422
    assert _error(response)["code"] == "scheduled_for_in_past"
    assert [d["field"] for d in _error(response)["details"]] == ["scheduled_for"]
