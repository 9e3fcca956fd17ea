"""End to end: live accounts added with ``socialpub accounts add`` (tokens encrypted in Secrets),
a post created and published through the REST api with an ``sk_live_`` key, the real operator
publishing it to the three fakes, and the fakes' stored posts matching the targets' ids. And a
burst to one account per platform, with every second create's answer lost, through the real
operator: each post on each platform exactly once.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from socialpub.api.app import BASE_PATH
from socialpub.api.settings import ApiSettings
from socialpub.cli import main
from socialpub.kube.client import KubeClient
from socialpub.kube.credentials import read_token
from socialpub.kube.keys import create_key
from socialpub.kube.resources import ACCOUNTS
from socialpub.kube.tenants import ensure_tenant
from socialpub.models.keys import Mode, Scope
from socialpub.models.platforms import Platform
from tests.api.conftest import ApiServer
from tests.fakes.base import Fault
from tests.fakes.fixtures import Fakes
from tests.kube_harness import KubeHarness
from tests.operator.harness import OperatorProcess
from tests.operator.scenarios import wait_for
from tests.platforms.live import EXTERNAL_IDS, KEY_RING, LiveWorld, driver, operator_env


@pytest.fixture
def api(kube: KubeHarness) -> Iterator[ApiServer]:
    server = ApiServer(ApiSettings(kubeconfig=str(kube.kubeconfig))).start()
    try:
        with httpx.Client(base_url=server.url) as client:
            wait_for(lambda: client.get("/readyz").status_code == 200, timeout=30, what="/readyz")
        yield server
    finally:
        server.stop()


def cli(capsys: pytest.CaptureFixture[str], *args: str) -> str:
    capsys.readouterr()
    try:
        main(list(args))
    except SystemExit as exc:
        captured = capsys.readouterr()
        raise AssertionError(f"socialpub {' '.join(args)} exited {exc.code}: {captured.err}") from None
    return capsys.readouterr().out


def test_a_post_through_the_api_is_published_on_all_three(
    kube: KubeHarness,
    api: ApiServer,
    fakes: Fakes,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SOCIALPUB_ENCRYPTION_KEY", KEY_RING.to_json())
    client = KubeClient.from_config(str(kube.kubeconfig))
    operator = OperatorProcess(kube.kubeconfig, tmp_path / "operator.log", **operator_env(fakes))
    try:
        kube.call(ensure_tenant(client, "acme"))
        accounts: dict[str, int] = {}
        for platform, external_id in EXTERNAL_IDS.items():
            token = getattr(fakes, platform.value).grant(f"secret-{platform.value}-token")
            token_file = tmp_path / f"{platform.value}.token"
            token_file.write_text(token + "\n")
            out = cli(
                capsys,
                "--kubeconfig", str(kube.kubeconfig),
                "accounts", "add",
                "--tenant", "acme",
                "--platform", platform.value,
                "--external-id", external_id,
                "--display-name", f"Acme on {platform.value}",
                "--token-file", str(token_file),
            )  # fmt: skip
            accounts[platform.value] = int(out.strip())
        # The Secrets hold ciphertext bound to the tenant and account, never the token.
        account = kube.call(client.get(ACCOUNTS, f"account-{accounts['facebook']}", "acme-live"))
        sealed = kube.call(read_token(client, account))
        assert sealed.split(":")[1] == "k1", "sealed under the active key"
        assert "secret-facebook-token" not in sealed

        operator.start()
        key, _ = kube.call(create_key(client, tenant="acme", mode=Mode.LIVE, scopes=frozenset(Scope)))
        api_client = httpx.Client(
            base_url=api.url + BASE_PATH, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )
        with api_client:
            wait_for(
                lambda: (
                    api_client.get("/accounts").status_code == 200
                    and len(api_client.get("/accounts").json()["data"]["accounts"]) == 3
                ),
                timeout=10,
                what="the api to see the key and the three live accounts",
            )
            body = "We are live (finally)! Read more: https://acme.example/launch #launch"
            media = [{"url": fakes.media.jpeg("team"), "alt": "The Acme team"}]
            created = api_client.post(
                "/posts",
                json={
                    "body": body,
                    "media": media,
                    "targets": [{"account_id": a} for a in accounts.values()],
                },
            )
            assert created.status_code == 201, created.text
            post_id = created.json()["data"]["post"]["id"]
            published = api_client.post(f"/posts/{post_id}/publish", json={})
            assert published.status_code == 202, published.text

            def settled() -> Any:
                post = api_client.get(f"/posts/{post_id}").json()["data"]["post"]
                return post if post["status"] in ("published", "partially_published", "failed") else None

            post = wait_for(settled, timeout=20, what="the post to settle")
            targets = api_client.get(f"/posts/{post_id}/targets").json()["data"]["targets"]
        assert post["status"] == "published", targets
        by_account = {t["account_id"]: t for t in targets}

        [li_post] = fakes.linkedin.posts
        [fb_post] = fakes.facebook.posts
        [ig_media] = fakes.instagram.media
        ids = {t["account_id"]: t["external_post_id"] for t in targets}
        assert ids[accounts["linkedin"]] == li_post["id"]
        assert ids[accounts["facebook"]] == fb_post["id"]
        assert ids[accounts["instagram"]] == ig_media["id"]
        assert li_post["visible"] == body
        assert li_post["author"] == "urn:li:organization:5515715"
        assert fb_post["message"] == body
        assert ig_media["caption"] == body
        assert ig_media["alt_text"] == "The Acme team"
        assert all(t["status"] == "published" and t["attempts"] == 1 for t in by_account.values())
        log = operator.log()
        for platform in EXTERNAL_IDS:
            assert f"secret-{platform.value}-token" not in log
    finally:
        operator.stop()
        kube.call(client.aclose())


BURST = 60
OTHERS = 25


@pytest.mark.parametrize(
    "refuses_duplicates", [True, False], ids=["li-refuses-duplicates", "li-accepts-them"]
)
def test_a_burst_with_every_second_answer_lost_publishes_each_post_once(
    kube: KubeHarness, fakes: Fakes, tmp_path: Path, refuses_duplicates: bool
) -> None:
    """Issue 9, item 1: 60 posts to one LinkedIn organization and one Facebook Page, the answer
    of every second create dropped after the platform stored the post, and 25 other posts landing
    on the account right after each. Each retry must find the post that landed — behind more
    newer posts than one page holds — and never send it again (nor dead-letter it on a LinkedIn
    that refuses duplicates)."""
    fakes.linkedin.refuse_duplicates = refuses_duplicates
    client = KubeClient.from_config(str(kube.kubeconfig))
    operator = OperatorProcess(kube.kubeconfig, tmp_path / "operator.log", **operator_env(fakes))
    try:
        operator.start()
        world = LiveWorld.create_live(kube, client, fakes)
        li_author = f"urn:li:organization:{EXTERNAL_IDS[Platform.LINKEDIN]}"
        fb_page = EXTERNAL_IDS[Platform.FACEBOOK]
        # A busy account: right after each lost answer, other posts land on it (more than one
        # page of the old lookups held), so every lookup must page back to its attempt's start.
        for fake, path, account in (
            (fakes.linkedin, "^/rest/posts$", li_author),
            (fakes.facebook, "/feed$", fb_page),
        ):
            fault = Fault(kind="commit_drop", every=2, times=BURST)
            fault.on_commit = lambda fake=fake, account=account: fake.seed(account, OTHERS, prefix="Other")
            fake.inject("POST", path, fault)
        accounts = [world.accounts[Platform.LINKEDIN], world.accounts[Platform.FACEBOOK]]
        bodies = {
            driver(world).create_post(body=f"Burst post {i}", account_ids=accounts): i for i in range(BURST)
        }

        for name in bodies:
            world.wait_settled(name, timeout=120)
        assert len(fakes.linkedin.seen("POST", "^/rest/posts$")) == BURST, "none sent twice"
        assert len(fakes.facebook.seen("POST", "/feed$")) == BURST, "none sent twice"

        retried = 0
        li_by_text = _by_text(fakes.linkedin.posts_by(li_author), "visible")
        fb_by_text = _by_text(fakes.facebook.posts_of(fb_page), "message")
        for name, i in bodies.items():
            text = f"Burst post {i}"
            assert len(li_by_text.get(text, [])) == 1, (
                f"{text} on LinkedIn {len(li_by_text.get(text, []))} times"
            )
            assert len(fb_by_text.get(text, [])) == 1, (
                f"{text} on Facebook {len(fb_by_text.get(text, []))} times"
            )
            li = world.target_status(name, Platform.LINKEDIN)
            fb = world.target_status(name, Platform.FACEBOOK)
            assert (li["state"], li["externalPostId"]) == ("published", li_by_text[text][0]["id"])
            assert (fb["state"], fb["externalPostId"]) == ("published", fb_by_text[text][0]["id"])
            retried += (li["attempts"] == 2) + (fb["attempts"] == 2)
        assert retried == BURST, "every second create on each platform lost its answer and was looked up"
    finally:
        operator.stop()
        kube.call(client.aclose())


def _by_text(posts: list[dict[str, Any]], field: str) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for post in posts:
        out.setdefault(str(post.get(field) or ""), []).append(post)
    return out


LATE = 4
COMMIT_DELAY = 3.0


def test_creates_that_land_seconds_after_their_answer_was_lost_are_published_once(
    kube: KubeHarness, fakes: Fakes, tmp_path: Path
) -> None:
    """Issue 9 review, P1: every create's (and media_publish's) answer is lost, and the platform
    commits it seconds *later*. A retry that looked right away would miss it and send again; the
    adapters call the failure ambiguous, so the operator waits out the claim's lease (8 s call
    budget + settle here) before it looks, finds each post, and never sends twice."""
    fakes.linkedin.refuse_duplicates = False  # a LinkedIn that would post the duplicate
    client = KubeClient.from_config(str(kube.kubeconfig))
    operator = OperatorProcess(kube.kubeconfig, tmp_path / "operator.log", **operator_env(fakes))
    try:
        operator.start()
        world = LiveWorld.create_live(kube, client, fakes)
        for fake, path in (
            (fakes.linkedin, "^/rest/posts$"),
            (fakes.facebook, "/feed$"),
            (fakes.instagram, "/media_publish$"),
        ):
            fake.inject("POST", path, Fault(kind="commit_later", delay=COMMIT_DELAY, times=LATE))
        accounts = [world.accounts[p] for p in Platform]
        names = {
            driver(world).create_post(
                body=f"Landed late {i}", account_ids=accounts, media=[jpeg_of(fakes, i)]
            ): i
            for i in range(LATE)
        }
        for name in names:
            world.wait_settled(name, timeout=90)
        for fake in (fakes.linkedin, fakes.facebook, fakes.instagram):
            fake.settle()  # every held-back create has landed: count them all

        li_author = f"urn:li:organization:{EXTERNAL_IDS[Platform.LINKEDIN]}"
        stored = {
            Platform.LINKEDIN: _by_text(fakes.linkedin.posts_by(li_author), "visible"),
            Platform.FACEBOOK: _by_text(fakes.facebook.posts_of(EXTERNAL_IDS[Platform.FACEBOOK]), "message"),
            Platform.INSTAGRAM: _by_text(
                fakes.instagram.media_of(EXTERNAL_IDS[Platform.INSTAGRAM]), "caption"
            ),
        }
        for name, i in names.items():
            text = f"Landed late {i}"
            for platform in Platform:
                landed = stored[platform].get(text, [])
                assert len(landed) == 1, f"{text} on {platform.value} {len(landed)} times"
                status = world.target_status(name, platform)
                assert (status["state"], status["externalPostId"]) == ("published", landed[0]["id"])
                assert status["attempts"] <= 2, status
        assert len(fakes.linkedin.seen("POST", "^/rest/posts$")) == LATE, "none sent twice"
        assert len(fakes.instagram.seen("POST", "/media_publish$")) == LATE, "none published twice"
    finally:
        operator.stop()
        kube.call(client.aclose())


def jpeg_of(fakes: Fakes, i: int) -> dict[str, str]:
    return {"url": fakes.media.jpeg(f"late{i}"), "alt": ""}
