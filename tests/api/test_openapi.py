"""The OpenAPI document is part of the contract: committed, current, complete."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from socialpub.api.app import BASE_PATH
from socialpub.api.openapi import export_openapi, render
from tests.api.conftest import ApiServer

COMMITTED = Path(__file__).resolve().parents[2] / "api" / "openapi.json"
ERROR_REF = "#/components/schemas/ErrorBody"


def test_committed_copy_is_current() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == render(export_openapi()), (
        "api/openapi.json is out of date: run `make openapi` and commit it"
    )


def test_served_document_and_docs(api_server: ApiServer) -> None:
    with httpx.Client(base_url=api_server.url) as client:
        served = client.get("/openapi.json")
        assert served.status_code == 200
        assert served.json() == json.loads(COMMITTED.read_text(encoding="utf-8"))
        docs = client.get("/docs")
        assert docs.status_code == 200
        assert "swagger-ui" in docs.text.lower()


def _operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(method, path, op) for path, ops in doc["paths"].items() for method, op in ops.items()]


def test_every_contract_row_is_documented() -> None:
    doc = export_openapi()
    rows = {(m.upper(), p.removeprefix(BASE_PATH)) for m, p, _ in _operations(doc) if p.startswith(BASE_PATH)}
    assert rows == {
        ("GET", "/accounts"),
        ("POST", "/posts"),
        ("GET", "/posts"),
        ("GET", "/posts/{id}"),
        ("PATCH", "/posts/{id}"),
        ("DELETE", "/posts/{id}"),
        ("POST", "/posts/{id}/publish"),
        ("GET", "/posts/{id}/targets"),
    }
    assert {"/healthz", "/readyz"} <= set(doc["paths"])


def test_errors_use_the_envelope_and_success_has_models() -> None:
    doc = export_openapi()
    for method, path, op in _operations(doc):
        responses = op["responses"]
        for status, response in responses.items():
            schema = response.get("content", {}).get("application/json", {}).get("schema", {})
            if status.startswith(("4", "5")):
                assert schema == {"$ref": ERROR_REF}, (method, path, status)
                assert response["content"]["application/json"]["example"]["error"]["code"]
            elif status != "204":
                assert schema.get("$ref", "").startswith("#/components/schemas/"), (method, path, status)
        if path.startswith(BASE_PATH):
            assert {"401", "403", "503"} <= set(responses), (method, path)
            assert op["security"] == [{"ApiKey": []}]
    assert "HTTPValidationError" not in doc["components"]["schemas"]


def test_models_carry_examples() -> None:
    schemas = export_openapi()["components"]["schemas"]
    for name in ("Post", "PostCreate", "PostUpdate", "PublishRequest", "Target", "Account", "ErrorBody"):
        assert schemas[name].get("examples"), name
    assert schemas["PostCreate"]["additionalProperties"] is False
    assert schemas["PostUpdate"]["properties"]["body"]["type"] == "string"  # omittable, never null
    assert doc_publish_is_optional()


def doc_publish_is_optional() -> bool:
    op = export_openapi()["paths"][f"{BASE_PATH}/posts/{{id}}/publish"]["post"]
    return op["requestBody"].get("required", False) is False
