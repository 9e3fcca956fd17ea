"""A bounded schemathesis run over the served OpenAPI document, against the live server.

Generated requests (valid and invalid) must never get a 5xx, and every response must match
the documented status codes, content type and schema. The tenant has a few accounts and posts
so that small generated ids hit real objects too.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from socialpub.api.openapi import export_openapi
from tests.api.conftest import ApiServer
from tests.api.support import PNG, World

CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def fuzz_key(world: World) -> str:
    client = world.client()
    accounts = [world.add_account(p) for p in ("linkedin", "facebook", "instagram")]
    for i in range(3):
        world.create_post(client, accounts, body=f"seed {i} #seed", media=[{"url": PNG, "alt": "seed"}])
    return world.key()


# The committed document (identical to the served one, a test checks it); requests go to the
# live server by ``base_url``. (``schemathesis.pytest.from_fixture`` is not usable with pytest 9.)
schema = schemathesis.openapi.from_dict(export_openapi())


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors_and_responses_match_the_schema(
    case: schemathesis.Case, fuzz_key: str, api_server: ApiServer
) -> None:
    case.call_and_validate(
        base_url=api_server.url, headers={"Authorization": f"Bearer {fuzz_key}"}, checks=CHECKS, timeout=30
    )
