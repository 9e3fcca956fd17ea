"""End to end: the real operator process, the embedded Kubernetes API, posts written as the api does.

Each test gets its own tenant on one API server and one operator for the module; the tests that
stop, kill and restart the operator get their own server and operator. Outcomes are read from the
resources and their Events. Every wait polls with a deadline.

Posts are written by the ``driver`` fixture (:class:`KubeDriver`: the resources, as the api writes
them). To run these scenarios through the REST api, a module can import the tests and override
``driver`` with an object offering the same methods (:class:`~tests.operator.scenarios.Driver`).
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from socialpub.kube.client import KubeClient
from socialpub.models.platforms import Platform
from socialpub.operator.decisions import event_id
from tests.kube_harness import KubeHarness
from tests.operator.harness import OperatorProcess
from tests.operator.scenarios import KubeDriver, World, parse, wait_for

LATENESS_LIMIT = 1.0
"""A scheduled post publishes within this many seconds of scheduledFor."""


def condition(post: dict, type_: str) -> dict:
    return next(c for c in post["status"].get("conditions", []) if c["type"] == type_)


def lifecycle(obj: dict, type_: str) -> list[dict]:
    return [e for e in (obj.get("status") or {}).get("lifecycleEvents", []) if e["type"] == type_]


def assert_published_once(world: World, name: str, account_id: int) -> dict:
    target = world.targets(name)[account_id]
    status = target["status"]
    assert status["state"] == "published"
    assert status["attempts"] == 1
    assert status["externalPostId"].startswith("sandbox-")
    assert status["externalUrl"].startswith("https://")
    assert [e["id"] for e in lifecycle(target, "social.post_published")] == [
        event_id(target["metadata"]["uid"], "social.post_published")
    ]
    return target


# Publishing now.


def test_publish_now(world: World, driver: KubeDriver) -> None:
    linkedin, facebook = world.accounts[Platform.LINKEDIN], world.accounts[Platform.FACEBOOK]
    name = driver.create_post(
        body="We just shipped a big update.",
        account_ids=[linkedin, facebook],
        overrides={facebook: "Launch day!"},
        media=[{"url": "https://cdn.example/launch.png", "alt": "Launch"}],
    )

    post = world.wait_settled(name)

    status = post["status"]
    assert status["phase"] == "published"
    assert status["targetCounts"] == {
        "total": 2, "pending": 0, "publishing": 0, "published": 2, "failed": 0, "dead": 0, "unknown": 0,
    }  # fmt: skip
    assert condition(post, "Published")["status"] == "True"
    assert condition(post, "Ready")["status"] == "True"
    assert condition(post, "Published")["observedGeneration"] == post["metadata"]["generation"]
    targets = {a: assert_published_once(world, name, a) for a in (linkedin, facebook)}
    assert targets[linkedin]["status"]["content"] == {
        "text": "We just shipped a big update.",
        "media": [{"url": "https://cdn.example/launch.png", "alt": "Launch"}],
    }
    assert targets[facebook]["status"]["content"]["text"] == "Launch day!"
    assert targets[linkedin]["status"]["platform"] == "linkedin"
    assert "sandbox-linkedin-" in targets[linkedin]["status"]["externalPostId"]
    published_at = [parse(t["status"]["publishedAt"]) for t in targets.values()]
    assert parse(status["publishedAt"]) == max(published_at)
    assert parse(status["publishStartedAt"]) <= min(published_at)
    reasons = world.reasons(name)
    assert reasons.count("Publishing") == 1
    assert reasons.count("PublishedTarget") == 2
    assert reasons.count("Published") == 1
    assert "Retrying" not in reasons


def test_scheduled_post_publishes_at_its_time_never_before(world: World, driver: KubeDriver) -> None:
    accounts = world.account_ids
    name = driver.create_post(body="Scheduled hello", account_ids=accounts, scheduled_for=time.time() + 2.5)
    scheduled = world.wait_phase(name, "scheduled")
    due = parse(scheduled["spec"]["scheduledFor"])
    assert scheduled["status"]["scheduledFor"] == scheduled["spec"]["scheduledFor"]
    assert condition(scheduled, "Scheduled")["status"] == "True"
    assert condition(scheduled, "Published")["status"] == "False"
    assert [e["type"] for e in scheduled["status"]["lifecycleEvents"]] == ["social.post_scheduled"]

    observations = 0
    while time.time() < due - 0.1:  # watch it right up to its time: nothing moves early
        status = world.status(name)
        assert status["phase"] == "scheduled", status
        assert "publishStartedAt" not in status
        assert set(world.target_states(name).values()) == {None}
        observations += 1
        time.sleep(0.1)
    assert observations >= 5

    post = world.wait_settled(name)
    assert post["status"]["phase"] == "published"
    started = parse(post["status"]["publishStartedAt"])
    assert due <= started < due + LATENESS_LIMIT
    for account_id in accounts:
        target = assert_published_once(world, name, account_id)
        published_at = parse(target["status"]["publishedAt"])
        assert due <= published_at < due + LATENESS_LIMIT, published_at - due
    assert world.reasons(name)[0] == "Scheduled"


# Retries and dead-lettering.


def test_flaky_target_is_published_on_the_third_attempt(world: World, driver: KubeDriver) -> None:
    account = world.accounts[Platform.INSTAGRAM]
    name = driver.create_post(body="Testing retries #sandbox-flaky", account_ids=[account])

    post = world.wait_settled(name)

    assert post["status"]["phase"] == "published"
    status = world.targets(name)[account]["status"]
    assert status["state"] == "published"
    assert status["attempts"] == 3
    assert "lastError" not in status
    assert "nextAttemptAt" not in status
    reasons = world.reasons(name)
    assert reasons.count("Retrying") == 2
    assert reasons.count("PublishedTarget") == 1
    retrying = [e for e in world.events(name) if e["reason"] == "Retrying"]
    assert all(e["type"] == "Warning" for e in retrying)


def test_transient_failures_dead_letter_after_five_attempts(world: World, driver: KubeDriver) -> None:
    account = world.accounts[Platform.LINKEDIN]
    name = driver.create_post(body="Always down #sandbox-fail-transient", account_ids=[account])

    post = world.wait_settled(name)

    assert post["status"]["phase"] == "failed"
    assert "publishedAt" not in post["status"]
    assert condition(post, "Published")["status"] == "False"
    assert condition(post, "Published")["reason"] == "AllTargetsDead"
    target = world.targets(name)[account]
    status = target["status"]
    assert status["state"] == "dead"
    assert status["attempts"] == 5
    assert status["lastError"]["class"] == "transient"
    assert status["lastError"]["code"] == "sandbox_transient_failure"
    assert [e["id"] for e in lifecycle(target, "social.post_failed")] == [
        event_id(target["metadata"]["uid"], "social.post_failed")
    ]
    events = world.events(name)
    assert [e["reason"] for e in events].count("Retrying") == 4
    dead = [e for e in events if e["reason"] == "DeadLettered"]
    assert len(dead) == 1
    assert dead[0]["type"] == "Warning"
    assert "after 5 attempt(s)" in dead[0]["message"]


def test_permanent_failure_dead_letters_at_once(world: World, driver: KubeDriver) -> None:
    account = world.accounts[Platform.FACEBOOK]
    name = driver.create_post(body="Rejected #sandbox-fail-permanent", account_ids=[account])

    post = world.wait_settled(name)

    assert post["status"]["phase"] == "failed"
    status = world.targets(name)[account]["status"]
    assert status["state"] == "dead"
    assert status["attempts"] == 1
    assert status["lastError"]["class"] == "permanent"
    reasons = world.reasons(name)
    assert "Retrying" not in reasons
    assert reasons.count("DeadLettered") == 1


def test_mixed_targets_partially_publish(world: World, driver: KubeDriver) -> None:
    linkedin, facebook, instagram = (world.accounts[p] for p in Platform)
    name = driver.create_post(
        body="Mixed results",
        account_ids=[linkedin, facebook, instagram],
        overrides={facebook: "No luck here #sandbox-fail-permanent", instagram: "Eventually #sandbox-flaky"},
    )

    post = world.wait_settled(name)

    assert post["status"]["phase"] == "partially_published"
    assert world.target_states(name) == {linkedin: "published", facebook: "dead", instagram: "published"}
    counts = post["status"]["targetCounts"]
    assert (counts["published"], counts["dead"], counts["total"]) == (2, 1, 3)
    published = condition(post, "Published")
    assert (published["status"], published["reason"]) == ("True", "PartiallyPublished")
    partial = [e for e in world.events(name) if e["reason"] == "PartiallyPublished"]
    assert len(partial) == 1
    assert partial[0]["type"] == "Warning"
    assert post["status"]["publishedAt"]


def test_a_target_without_an_account_is_dead_lettered(world: World, driver: KubeDriver) -> None:
    linkedin = world.accounts[Platform.LINKEDIN]
    name = driver.create_post(body="Half of this goes nowhere", account_ids=[linkedin, 999])

    post = world.wait_settled(name)

    assert post["status"]["phase"] == "partially_published"
    status = world.targets(name)[999]["status"]
    assert (status["state"], status["attempts"]) == ("dead", 1)
    assert status["lastError"]["code"] == "account_not_found"


# Editing, deleting, drafts.


def test_reschedule_moves_the_publish_time_both_ways(world: World, driver: KubeDriver) -> None:
    account = world.accounts[Platform.LINKEDIN]
    now = time.time()
    earlier = driver.create_post(body="Moved earlier", account_ids=[account], scheduled_for=now + 600)
    later = driver.create_post(body="Moved later", account_ids=[account], scheduled_for=now + 2)
    world.wait_phase(earlier, "scheduled")
    world.wait_phase(later, "scheduled")

    driver.reschedule(earlier, now + 2.5)
    driver.reschedule(later, now + 4)
    wait_for(
        lambda: world.status(later).get("scheduledFor") == world.post(later)["spec"]["scheduledFor"],  # type: ignore[index]
        what="the operator to see the later time",
    )

    moved_earlier = world.wait_settled(earlier, timeout=10)
    assert moved_earlier["status"]["phase"] == "published"
    due = parse(moved_earlier["spec"]["scheduledFor"])
    assert due <= parse(moved_earlier["status"]["publishStartedAt"]) < due + LATENESS_LIMIT
    # By now the first time of the post moved later (now + 2) has passed: it must still wait.
    assert time.time() > now + 2.5
    assert world.status(later)["phase"] == "scheduled"
    moved_later = world.wait_settled(later, timeout=10)
    due = parse(moved_later["spec"]["scheduledFor"])
    assert due <= parse(moved_later["status"]["publishStartedAt"]) < due + LATENESS_LIMIT
    # Each scheduling was recorded as its own lifecycle event.
    assert len(lifecycle(moved_later, "social.post_scheduled")) == 2


def test_deleting_a_scheduled_post_cancels_it(world: World, driver: KubeDriver) -> None:
    account = world.accounts[Platform.FACEBOOK]
    due = time.time() + 1.5
    doomed = driver.create_post(body="Never published", account_ids=[account], scheduled_for=due)
    control = driver.create_post(body="Published meanwhile", account_ids=[account], scheduled_for=due)
    world.wait_phase(doomed, "scheduled")
    assert world.targets(doomed)

    driver.delete(doomed)

    world.wait_settled(control, timeout=10)  # the moment passed and the timer fired
    assert world.post(doomed) is None
    wait_for(lambda: not world.targets(doomed), what="the deleted post's targets to be collected")
    time.sleep(0.3)
    assert world.reasons(doomed) == ["Scheduled"]


def test_draft_stays_draft(world: World, driver: KubeDriver) -> None:
    account = world.accounts[Platform.LINKEDIN]
    name = driver.create_post(body="Just a draft", account_ids=[account], draft=True)

    post = world.wait_phase(name, "draft")
    time.sleep(0.5)

    assert world.status(name)["phase"] == "draft"
    assert condition(post, "Scheduled")["reason"] == "Draft"
    assert condition(post, "Ready")["status"] == "False"
    target = world.targets(name)[account]
    assert "status" not in target or not target["status"].get("content")
    assert world.reasons(name) == []


def test_targets_removed_before_release_are_deleted(world: World, driver: KubeDriver) -> None:
    linkedin, facebook, instagram = (world.accounts[p] for p in Platform)
    name = driver.create_post(
        body="Fewer accounts", account_ids=[linkedin, facebook, instagram], scheduled_for=time.time() + 1.5
    )
    world.wait_phase(name, "scheduled")
    assert set(world.targets(name)) == {linkedin, facebook, instagram}

    driver.set_accounts(name, [facebook])

    wait_for(lambda: set(world.targets(name)) == {facebook}, what="the removed targets to be deleted")
    post = world.wait_settled(name, timeout=10)
    assert post["status"]["targetCounts"]["total"] == 1
    assert world.reasons(name).count("PublishedTarget") == 1


def test_spec_edit_after_release_keeps_the_released_content(world: World, driver: KubeDriver) -> None:
    account = world.accounts[Platform.INSTAGRAM]
    name = driver.create_post(body="Original text", account_ids=[account])
    world.wait_settled(name)

    driver.edit_body(name, "Edited after publishing")

    def drifted() -> dict | None:
        post = world.post(name)
        spec_applied = condition(post, "SpecApplied") if post else None
        return post if spec_applied and spec_applied["status"] == "False" else None

    post = wait_for(drifted, what="SpecApplied=False")
    spec_applied = condition(post, "SpecApplied")
    assert spec_applied["reason"] == "PublishingStarted"
    assert spec_applied["observedGeneration"] == post["metadata"]["generation"] == 3
    assert post["status"]["observedGeneration"] == post["metadata"]["generation"]
    assert post["status"]["releasedGeneration"] == 2
    assert post["status"]["phase"] == "published"
    target = assert_published_once(world, name, account)
    assert target["status"]["content"]["text"] == "Original text"
    assert world.reasons(name).count("PublishedTarget") == 1


# kubectl.


MANIFEST = """
apiVersion: social.softsolz.uk/v1alpha1
kind: SocialPost
metadata: {{name: launch, namespace: {namespace}}}
spec:
  body: We just shipped a big update.
  media: [{{url: "https://cdn.example/launch.png", alt: Launch}}]
  targets: [{{accountId: {a}}}, {{accountId: {b}, overrideBody: "Launch day!"}}]
{extra}"""


@pytest.mark.usefixtures("needs_kubectl")
def test_kubectl_applied_manifest_gets_an_id_and_publishes(world: World, driver: KubeDriver) -> None:
    a, b = world.accounts[Platform.LINKEDIN], world.accounts[Platform.FACEBOOK]
    first = driver.create_post(body="Made by the api", account_ids=[a], draft=True)
    manifest = MANIFEST.format(namespace=world.namespace, a=a, b=b, extra="")

    world.kube.kubectl("apply", "-f", "-", input=manifest)
    world.kube.kubectl(
        "wait", "--for=condition=Published", "socialpost/launch", "-n", world.namespace, "--timeout=20s"
    )

    post = world.wait_settled("launch")
    assert post["status"]["phase"] == "published"
    labels, annotations = post["metadata"]["labels"], post["metadata"]["annotations"]
    first_id = int(world.post(first)["metadata"]["labels"]["social.softsolz.uk/id"])  # type: ignore[index]
    assert int(labels["social.softsolz.uk/id"]) == first_id + 1
    assert parse(annotations["social.softsolz.uk/created-at"]) > 0
    targets = world.targets("launch")
    assert {t["metadata"]["name"] for t in targets.values()} == {f"launch-{a}", f"launch-{b}"}
    assert targets[b]["status"]["content"]["text"] == "Launch day!"
    assert all(
        t["metadata"]["ownerReferences"][0]["uid"] == post["metadata"]["uid"] for t in targets.values()
    )
    table = world.kube.kubectl("get", "socialposts", "-n", world.namespace).stdout
    assert "published" in table


@pytest.mark.usefixtures("needs_kubectl")
def test_kubectl_wait_for_published(world: World, driver: KubeDriver) -> None:
    name = driver.create_post(
        body="Wait for me", account_ids=world.account_ids, scheduled_for=time.time() + 1
    )

    done = world.kube.kubectl(
        "wait", "--for=condition=Published", f"socialpost/{name}", "-n", world.namespace, "--timeout=20s"
    )

    assert "condition met" in done.stdout
    assert world.status(name)["phase"] == "published"


# Stopping, restarting and killing the operator.


def test_restart_keeps_schedules_and_catches_up(
    kube: KubeHarness, own_client: KubeClient, own_operator: Callable[..., OperatorProcess]
) -> None:
    operator = own_operator().start()
    world = World.create(kube, own_client, "restart")
    driver = KubeDriver(world)
    account = world.accounts[Platform.LINKEDIN]
    t0 = time.time()
    missed = driver.create_post(
        body="Due while the operator is down", account_ids=[account], scheduled_for=t0 + 2
    )
    on_time = driver.create_post(body="Due after the restart", account_ids=[account], scheduled_for=t0 + 8)
    world.wait_phase(missed, "scheduled")
    world.wait_phase(on_time, "scheduled")

    operator.stop()
    wait_for(lambda: time.time() > t0 + 2.5, timeout=5, what="the first post's time to pass")
    assert world.status(missed)["phase"] == "scheduled"
    restarted = time.time()
    operator.start()
    ready = time.time()
    assert ready < t0 + 7, "the operator took too long to start for this test to mean anything"

    caught_up = world.wait_settled(missed, timeout=10)
    assert caught_up["status"]["phase"] == "published"
    assert restarted <= parse(caught_up["status"]["publishStartedAt"]) < ready + LATENESS_LIMIT
    assert world.status(on_time)["phase"] == "scheduled"
    post = world.wait_settled(on_time, timeout=15)
    due = parse(post["spec"]["scheduledFor"])
    assert due <= parse(post["status"]["publishStartedAt"]) < due + LATENESS_LIMIT
    assert_published_once(world, on_time, account)
    assert world.reasons(on_time).count("Scheduled") == 1


def test_kill_while_publishing_resolves_without_publishing_twice(
    kube: KubeHarness, own_client: KubeClient, own_operator: Callable[..., OperatorProcess]
) -> None:
    operator = own_operator(SOCIALPUB_SANDBOX_DELAY_SECONDS="2").start()
    world = World.create(kube, own_client, "crash")
    account = world.accounts[Platform.FACEBOOK]
    name = KubeDriver(world).create_post(body="Interrupted", account_ids=[account])
    wait_for(
        lambda: world.target_states(name).get(account) == "publishing", what="the target to be publishing"
    )

    operator.kill()
    assert world.target_states(name)[account] == "publishing"
    operator.start()

    post = world.wait_settled(name)
    assert post["status"]["phase"] == "published"
    target = assert_published_once(world, name, account)
    assert target["status"]["publishedAt"]
    published = [e for e in world.events(name) if e["reason"] == "PublishedTarget"]
    assert len(published) == 1
    assert "resolved after an interruption" in published[0]["message"]
    assert "Retrying" not in world.reasons(name)


def test_sigterm_lets_a_publish_in_flight_finish(
    kube: KubeHarness, own_client: KubeClient, own_operator: Callable[..., OperatorProcess]
) -> None:
    operator = own_operator(SOCIALPUB_SANDBOX_DELAY_SECONDS="1").start()
    world = World.create(kube, own_client, "drain")
    account = world.accounts[Platform.LINKEDIN]
    name = KubeDriver(world).create_post(body="Finish me", account_ids=[account])
    wait_for(
        lambda: world.target_states(name).get(account) == "publishing", what="the target to be publishing"
    )

    operator.stop()

    assert world.target_states(name)[account] == "published"
    target = assert_published_once(world, name, account)
    assert "resolved" not in str(target)
