"""Pure parts: the status rules, the post index's order, the key index, field paths."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from socialpub.api.errors import field_path
from socialpub.api.schemas import PostStatus, format_time
from socialpub.api.services.indexes import KeyIndex, PostIndex
from socialpub.api.services.mapping import next_updated_at, parse_time, post_status
from socialpub.kube.keys import KEYS_NAMESPACE
from socialpub.kube.resources import ANNOTATION_CREATED_AT, ANNOTATION_UPDATED_AT, LABEL_ID, SYSTEM_NAMESPACE
from socialpub.models.keys import hash_key

NOW = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)


def post(
    post_id: int = 1,
    *,
    namespace: str = "ns",
    draft: bool | None = True,
    scheduled: datetime | None = None,
    phase: str | None = None,
    observed: int | None = None,
    generation: int = 2,
    created: datetime = NOW,
    body: str = "hello",
) -> dict[str, Any]:
    spec: dict[str, Any] = {"body": body, "targets": [{"accountId": 1}]}
    if draft is not None:
        spec["draft"] = draft
    if scheduled is not None:
        spec["scheduledFor"] = format_time(scheduled)
    status: dict[str, Any] = {}
    if phase is not None:
        status["phase"] = phase
    if observed is not None:
        status["observedGeneration"] = observed
    return {
        "metadata": {
            "name": f"post-{post_id}",
            "namespace": namespace,
            "generation": generation,
            "resourceVersion": "1",
            "labels": {LABEL_ID: str(post_id)},
            "annotations": {
                ANNOTATION_CREATED_AT: format_time(created),
                ANNOTATION_UPDATED_AT: format_time(created),
            },
        },
        "spec": spec,
        "status": status,
    }


class TestPostStatus:
    @pytest.mark.parametrize(
        ("obj", "expected"),
        [
            (post(draft=True), PostStatus.DRAFT),
            (post(draft=True, phase="published", observed=2), PostStatus.DRAFT),
            (post(draft=False), PostStatus.PUBLISHING),
            (post(draft=None), PostStatus.PUBLISHING),  # a manifest without draft publishes
            (post(draft=False, scheduled=NOW + timedelta(seconds=1)), PostStatus.SCHEDULED),
            (post(draft=False, scheduled=NOW - timedelta(seconds=1)), PostStatus.PUBLISHING),
            (post(draft=False, phase="published", observed=2), PostStatus.PUBLISHED),
            (post(draft=False, phase="failed"), PostStatus.FAILED),  # no observedGeneration: trusted
            (post(draft=False, phase="published", observed=1), PostStatus.PUBLISHING),  # stale phase
            (post(draft=False, phase="scheduled", observed=1), PostStatus.PUBLISHING),
            (post(draft=False, phase="bogus", observed=2), PostStatus.PUBLISHING),
        ],
    )
    def test_rules(self, obj: dict[str, Any], expected: PostStatus) -> None:
        assert post_status(obj, NOW) is expected


class TestTimes:
    def test_format_is_utc_with_microseconds(self) -> None:
        assert (
            format_time(datetime(2030, 1, 1, 7, 0, tzinfo=UTC) + timedelta(hours=0))
            == "2030-01-01T07:00:00.000000Z"
        )
        assert format_time(datetime(5, 1, 1, tzinfo=UTC)) == "0005-01-01T00:00:00.000000Z"

    def test_parse(self) -> None:
        assert parse_time("2030-01-01T07:00:00Z") == datetime(2030, 1, 1, 7, tzinfo=UTC)
        assert parse_time("2030-01-01T09:00:00.5+02:00") == datetime(2030, 1, 1, 7, 0, 0, 500000, tzinfo=UTC)
        assert parse_time("nope") is None
        assert parse_time(None) is None

    def test_updated_at_always_moves_forward(self) -> None:
        obj = post(created=NOW)
        assert next_updated_at(obj, NOW) == NOW + timedelta(microseconds=1)
        assert next_updated_at(obj, NOW + timedelta(seconds=1)) == NOW + timedelta(seconds=1)


class TestPostIndex:
    def test_newest_first_then_id(self) -> None:
        index = PostIndex()
        index.apply("ADDED", post(1, created=NOW))
        index.apply("ADDED", post(3, created=NOW - timedelta(hours=1)))
        index.apply("ADDED", post(2, created=NOW))
        index.apply("ADDED", post(9, namespace="other"))
        assert [r.sort_key[1] for r in index.newest_first("ns")] == [2, 1, 3]
        index.apply("ADDED", post(4, created=NOW + timedelta(microseconds=1)))
        assert [r.sort_key[1] for r in index.newest_first("ns")] == [4, 2, 1, 3]

    def test_edits_and_deletes_keep_the_order(self) -> None:
        index = PostIndex()
        for i in range(1, 6):
            index.apply("ADDED", post(i, created=NOW + timedelta(seconds=i)))
        assert [r.sort_key[1] for r in index.newest_first("ns")] == [5, 4, 3, 2, 1]
        index.apply("MODIFIED", post(3, created=NOW + timedelta(seconds=3), body="EDITED"))
        rows = index.newest_first("ns")
        assert [r.sort_key[1] for r in rows] == [5, 4, 3, 2, 1]
        assert rows[2].text == "edited"
        index.apply("DELETED", post(4))
        deleting = post(2, created=NOW + timedelta(seconds=2))
        deleting["metadata"]["deletionTimestamp"] = "2030-01-01T00:00:00Z"
        index.apply("MODIFIED", deleting)
        assert [r.sort_key[1] for r in index.newest_first("ns")] == [5, 3, 1]
        assert index.get("ns", 4) is None

    def test_lookup_by_id(self) -> None:
        index = PostIndex()
        obj = post(7)
        index.apply("ADDED", obj)
        assert index.get("ns", 7) is obj
        assert index.get("other", 7) is None
        unlabelled = post(8)
        del unlabelled["metadata"]["labels"][LABEL_ID]
        index.apply("ADDED", unlabelled)
        assert index.get("ns", 8) is None
        assert len(index.newest_first("ns")) == 1


def _secret(namespace: str, key: str, revoked: bool = False) -> dict[str, Any]:
    def b64(value: str) -> str:
        return base64.b64encode(value.encode()).decode()

    data = {"hash": b64(hash_key(key)), "tenant": b64("acme"), "mode": b64("test"), "scopes": b64("")}
    if revoked:
        data["revokedAt"] = b64("2030-01-01T00:00:00Z")
    return {"metadata": {"name": "apikey-x", "namespace": namespace}, "data": data}


class TestKeyIndex:
    def test_only_the_keys_namespace_counts(self) -> None:
        index = KeyIndex(KEYS_NAMESPACE)
        index.apply("ADDED", _secret("acme-sandbox", "k1"))
        assert index.get(hash_key("k1")) is None
        index.apply("ADDED", _secret(SYSTEM_NAMESPACE, "k1"))  # beside the key ring: not a key
        assert index.get(hash_key("k1")) is None
        index.apply("ADDED", _secret(KEYS_NAMESPACE, "k1"))
        record = index.get(hash_key("k1"))
        assert record is not None
        assert record.active
        index.apply("MODIFIED", _secret(KEYS_NAMESPACE, "k1", revoked=True))
        record = index.get(hash_key("k1"))
        assert record is not None
        assert not record.active
        index.apply("DELETED", _secret(KEYS_NAMESPACE, "k1"))
        assert index.get(hash_key("k1")) is None


@pytest.mark.parametrize(
    ("loc", "expected"),
    [
        (("body", "targets", 0, "account_id"), "targets[0].account_id"),
        (("body", "media", 3), "media[3]"),
        (("body",), None),
        (("query", "limit"), "limit"),
        (("path", "id"), "id"),
        (("header", "idempotency-key"), "Idempotency-Key"),
    ],
)
def test_field_path(loc: tuple[Any, ...], expected: str | None) -> None:
    assert field_path(loc) == expected
