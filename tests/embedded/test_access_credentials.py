"""A bearer token that is not ASCII is a wrong token (401), not a server error (issue 9 review,
item 8): aiohttp hands over such header bytes as surrogate escapes, which ``str.encode()``
refused with a UnicodeEncodeError, so the embedded API answered 500 with a traceback."""

from __future__ import annotations

import httpx
import pytest

from tests.kube_harness import KubeHarness


@pytest.mark.parametrize(
    "authorization",
    [b"Bearer \xff\xfe", b"Bearer \xc3\xa9t\xc3\xa9", b"Bearer \x80", "Bearer caf\u00e9".encode("latin-1")],
)
def test_a_non_ascii_bearer_token_is_401(kube: KubeHarness, authorization: bytes) -> None:
    with httpx.Client(base_url=kube.url, verify=kube.tls, timeout=10) as client:
        response = client.get("/api/v1/namespaces", headers={"Authorization": authorization})
    assert response.status_code == 401, response.text
    body = response.json()
    assert (body["kind"], body["reason"], body["code"]) == ("Status", "Unauthorized", 401)


def test_the_real_token_still_works_beside_them(kube: KubeHarness) -> None:
    with kube.http(timeout=10) as client:
        assert client.get("/api/v1/namespaces").status_code == 200
