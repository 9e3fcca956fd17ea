"""A bounded schemathesis run over the served OpenAPI document, against the live server,
with every check schemathesis has (``--checks all``), the positive ones included.

Generated requests (valid and invalid) must never get a 5xx; every response must match the
documented status codes, headers, content type and schema; schema-violating requests must be
refused; and schema-valid requests must be accepted — the document declares every bound the
server enforces (int64 ids, the Idempotency-Key's 1 to 255 characters, non-blank texts, https
media URLs, no unknown query parameters).

What a schema cannot say is whether an account id exists, whether an Idempotency-Key was used
for another body, or whether a time is still in the future: the writes may answer a
schema-valid request 422 for such a rule (a documented code, never `validation_error`), and
:func:`schema_valid_requests_pass_validation` checks exactly that. The tenant has a few
accounts and posts so that small generated ids hit real objects too.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS, load_all_checks
from schemathesis.config import SchemathesisConfig

from socialpub.api.openapi import export_openapi
from tests.api.conftest import ApiServer
from tests.api.support import PNG, World

STRUCTURAL = frozenset({"validation_error", "invalid_idempotency_key", "bad_request", "invalid_json"})
"""Error codes meaning "this request is malformed": never the answer to a schema-valid request."""

WRITES = [("POST", "^/api/v1/services/social/posts$"), ("PATCH", "^/api/v1/services/social/posts/\\{id\\}$")]
WRITES.append(("POST", "^/api/v1/services/social/posts/\\{id\\}/publish$"))


@schemathesis.check
def schema_valid_requests_pass_validation(ctx: Any, response: Any, case: schemathesis.Case) -> bool | None:
    """A schema-valid request may break a business rule (422 with its own code), never a bound
    the document failed to declare (400, or 422 ``validation_error``)."""
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive or response.status_code not in (400, 422):
        return None
    try:
        code = json.loads(response.content)["error"]["code"]
    except (ValueError, KeyError, TypeError):
        code = None
    assert code not in STRUCTURAL, f"a schema-valid request was refused as malformed: {response.content!r}"
    return None


def _config() -> SchemathesisConfig:
    business_rules = {
        "checks": {
            "positive_data_acceptance": {"expected-statuses": ["2xx", "401", "403", "404", "409", "422"]}
        }
    }
    operations = [
        {"include-method": method, "include-path-regex": path, **business_rules} for method, path in WRITES
    ]
    return SchemathesisConfig.from_dict({"operations": operations})


load_all_checks()
ALL_CHECKS = list(CHECKS.get_all())


@pytest.fixture
def fuzz_key(world: World) -> str:
    client = world.client()
    accounts = [world.add_account(p) for p in ("linkedin", "facebook", "instagram")]
    for i in range(3):
        world.create_post(client, accounts, body=f"seed {i} #seed", media=[{"url": PNG, "alt": "seed"}])
    return world.key()


# The committed document (identical to the served one, a test checks it); requests go to the
# live server by ``base_url``. (``schemathesis.pytest.from_fixture`` is not usable with pytest 9.)
schema = schemathesis.openapi.from_dict(export_openapi(), config=_config())


@schema.parametrize()
@settings(max_examples=30, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_every_check_passes(case: schemathesis.Case, fuzz_key: str, api_server: ApiServer) -> None:
    case.call_and_validate(
        base_url=api_server.url,
        headers={"Authorization": f"Bearer {fuzz_key}"},
        checks=ALL_CHECKS,
        timeout=30,
    )
