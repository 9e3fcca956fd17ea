"""The operator's scenarios again, with every post created, published, rescheduled, edited and
deleted through the REST api (an ``sk_test_`` key on the tenant's sandbox), the real operator
publishing it, and outcomes read both from the resources and from the api's own answers.

Scenarios that only kubectl can express (a spec edit after release, a manifest without an id)
stay in ``test_operator_e2e.py``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from socialpub.api.app import BASE_PATH
from socialpub.api.settings import ApiSettings
from socialpub.kube.keys import create_key
from socialpub.kube.resources import ANNOTATION_UPDATED_AT, POSTS
from socialpub.models.keys import Mode, Scope
from tests.api.conftest import ApiServer
from tests.kube_harness import KubeHarness
from tests.operator import test_operator_e2e as scenarios
from tests.operator.scenarios import World, iso, wait_for


def _rfc3339(moment: float) -> str:
    return datetime.fromtimestamp(moment, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class ApiDriver:
    """Drives posts through the REST api, as an integrator would."""

    def __init__(self, world: World, http: httpx.Client) -> None:
        self.world = world
        self.http = http
        self._ids: dict[str, int] = {}

    def _ok(self, response: httpx.Response, status: int) -> dict[str, Any]:
        assert response.status_code == status, (
            f"{response.request.method} {response.request.url}: {response.text}"
        )
        return response.json() if response.content else {}

    def create_post(
        self,
        *,
        body: str,
        account_ids: Sequence[int],
        overrides: dict[int, str] | None = None,
        media: Sequence[dict[str, str]] = (),
        scheduled_for: float | None = None,
        draft: bool = False,
    ) -> str:
        overrides = overrides or {}
        if not media:
            media = [{"url": "https://cdn.example/image.png", "alt": "an image"}]  # Instagram requires one
        targets = [
            {"account_id": a, **({"override_body": overrides[a]} if a in overrides else {})}
            for a in account_ids
        ]
        created = self._ok(
            self.http.post("/posts", json={"body": body, "media": list(media), "targets": targets}), 201
        )
        post_id = created["data"]["post"]["id"]
        assert created["data"]["post"]["status"] == "draft"
        if not draft:
            payload = {} if scheduled_for is None else {"scheduled_for": _rfc3339(scheduled_for)}
            answer = self._ok(self.http.post(f"/posts/{post_id}/publish", json=payload), 202)
            assert answer["data"]["post"]["status"] == (
                "publishing" if scheduled_for is None else "scheduled"
            )
        name = f"post-{post_id}"
        self._ids[name] = post_id
        return name

    def reschedule(self, name: str, when: float) -> None:
        self._ok(
            self.http.post(f"/posts/{self._ids[name]}/publish", json={"scheduled_for": _rfc3339(when)}), 202
        )

    def edit_body(self, name: str, body: str) -> None:
        self._ok(self.http.patch(f"/posts/{self._ids[name]}", json={"body": body}), 200)

    def set_accounts(self, name: str, account_ids: Sequence[int]) -> None:
        targets = [{"account_id": a} for a in account_ids]
        self._ok(self.http.patch(f"/posts/{self._ids[name]}", json={"targets": targets}), 200)

    def delete(self, name: str) -> None:
        self._ok(self.http.delete(f"/posts/{self._ids[name]}"), 204)

    def api_post(self, name: str) -> dict[str, Any]:
        return self._ok(self.http.get(f"/posts/{self._ids[name]}"), 200)["data"]["post"]

    def api_targets(self, name: str) -> list[dict[str, Any]]:
        return self._ok(self.http.get(f"/posts/{self._ids[name]}/targets"), 200)["data"]["targets"]


@pytest.fixture(scope="module")
def api_server(shared_kube: KubeHarness) -> Iterator[ApiServer]:
    server = ApiServer(ApiSettings(kubeconfig=str(shared_kube.kubeconfig))).start()
    with httpx.Client(base_url=server.url) as client:
        wait_for(lambda: client.get("/readyz").status_code == 200, timeout=30, what="/readyz")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def driver(world: World, api_server: ApiServer) -> Iterator[ApiDriver]:
    key, _ = world.kube.call(
        create_key(world.client, tenant=world.tenant.name, mode=Mode.TEST, scopes=list(Scope))
    )
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=api_server.url + BASE_PATH, headers=headers, timeout=30) as http:
        # The api learns of a new key through its watch; wait until it accepts this one.
        wait_for(lambda: http.get("/accounts").status_code == 200, timeout=10, what="the key to be accepted")
        yield ApiDriver(world, http)


test_publish_now = scenarios.test_publish_now
test_scheduled_post_publishes_at_its_time_never_before = (
    scenarios.test_scheduled_post_publishes_at_its_time_never_before
)
test_flaky_target_is_published_on_the_third_attempt = (
    scenarios.test_flaky_target_is_published_on_the_third_attempt
)
test_transient_failures_dead_letter_after_five_attempts = (
    scenarios.test_transient_failures_dead_letter_after_five_attempts
)
test_permanent_failure_dead_letters_at_once = scenarios.test_permanent_failure_dead_letters_at_once
test_mixed_targets_partially_publish = scenarios.test_mixed_targets_partially_publish
test_reschedule_moves_the_publish_time_both_ways = scenarios.test_reschedule_moves_the_publish_time_both_ways
test_deleting_a_scheduled_post_cancels_it = scenarios.test_deleting_a_scheduled_post_cancels_it
test_draft_stays_draft = scenarios.test_draft_stays_draft
test_targets_removed_before_release_are_deleted = scenarios.test_targets_removed_before_release_are_deleted


def test_the_api_reports_what_the_operator_did(world: World, driver: ApiDriver) -> None:
    """After publishing, the api's post and targets say what the resources say."""
    accounts = world.account_ids[:2]
    name = driver.create_post(body="Status through the api #sandbox-flaky", account_ids=accounts)
    world.wait_phase(name, "published", timeout=30)
    # The api reads through its watch cache: it catches up with the resources within moments.
    post = wait_for(
        lambda: (p := driver.api_post(name))["status"] == "published" and p, what="the api to show it"
    )
    assert post["published_at"] is not None
    rows = {row["account_id"]: row for row in driver.api_targets(name)}
    assert set(rows) == set(accounts)
    for account_id, target in world.targets(name).items():
        row = rows[account_id]
        assert row["status"] == "published"
        assert row["attempts"] == 3
        assert row["external_post_id"] == target["status"]["externalPostId"]
        assert row["published_at"] is not None


def test_a_released_post_set_back_to_draft_stays_released_and_cannot_be_edited(
    world: World, driver: ApiDriver
) -> None:
    """A GitOps revert writes ``draft: true`` on a published post: the api still shows it published
    and refuses to edit it (409), so its targets cannot be deleted and recreated from here."""
    accounts = world.account_ids[:2]
    name = driver.create_post(body="Published, then reverted", account_ids=accounts)
    world.wait_settled(name, timeout=30)
    stamp = iso(time.time() + 1)  # so we can tell when the api's cache has seen the patch
    patch = {"metadata": {"annotations": {ANNOTATION_UPDATED_AT: stamp}}, "spec": {"draft": True}}
    world.kube.call(world.client.patch(POSTS, name, patch, world.namespace))  # what kubectl patch sends

    post = wait_for(
        lambda: (p := driver.api_post(name))["updated_at"] == stamp and p, what="the api to see the patch"
    )
    assert post["status"] == "published"
    answer = driver.http.patch(f"/posts/{driver._ids[name]}", json={"targets": [{"account_id": accounts[0]}]})
    assert answer.status_code == 409, answer.text
    assert answer.json()["error"]["code"] == "post_not_editable"
    assert set(world.targets(name)) == set(accounts)
    assert world.reasons(name).count("PublishedTarget") == 2


def test_the_api_shows_an_unknown_outcome(world: World, driver: ApiDriver) -> None:
    account = world.account_ids[0]
    name = driver.create_post(body="Answer lost #sandbox-outcome-unknown", account_ids=[account])
    wait_for(lambda: world.target_states(name).get(account) == "unknown", timeout=30, what="unknown")
    [row] = driver.api_targets(name)
    assert row["status"] == "unknown"
    assert driver.api_post(name)["status"] == "publishing"
