"""What a soak run does, decided by its seed: the posts and their targets, the faults each create
call meets, and the moments the operator is SIGKILLed.

Every random choice comes from the seed, so a failing seed can be run again. Faults are decided
per *content*, not per arrival: the n-th create call of one (platform, account, text) gets the same
fault in every run of a seed, whatever order the operator's concurrent calls reach the fake in.
Only the kills are tied to wall-clock time, so what they interrupt varies from run to run.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from socialpub.models.platforms import Platform
from tests.fakes.base import FakeServer, Fault
from tests.fakes.fixtures import Fakes
from tests.fakes.graph import as_bool, graph_error_body
from tests.fakes.linkedin import visible_text


def _env_float(name: str, default: float) -> float:
    return float(os.environ.get(name, default))


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


@dataclass(frozen=True)
class SoakConfig:
    """The size and the fault mix of a run (``SOCIALPUB_SOAK_*`` environment variables)."""

    posts: int = 200
    """Posts in the burst."""
    scheduled_share: float = 0.6
    """Share of the posts scheduled for one shared instant; the rest are published at once."""
    lead_seconds: float = 10.0
    """How far after the run's start the scheduled posts are due (creating them must fit)."""
    drop_rate: float = 0.3
    """Chance that a create call is stored by the platform and its answer then lost."""
    error_rate: float = 0.1
    """Chance that a create call answers 503 without storing anything."""
    late_rate: float = 0.05
    """Chance that a create call's answer is lost at once and the post lands up to
    ``late_seconds`` later (the platform was still working on it: ``commit_later``)."""
    late_seconds: float = 3.0
    """The longest a late create takes to land; within the operator's claim on the attempt (8 s
    call + settle margin), which is how long the operator must wait before concluding anything."""
    listing_lag: float = 1.0
    """Seconds a new post stays out of the platforms' listings (their feeds lag behind creates)."""
    permanent_rate: float = 0.02
    """Chance that the *first* create of a (post, account) is refused for good (a 400 the adapters
    classify as permanent): that target must end ``dead`` with nothing on the platform (or
    ``published`` once, if a kill hid the refusal and the retry went through)."""
    faults_per_content: int = 2
    """At most this many faulted create calls per (post, account): the operator gives up on a
    target after five failed attempts, and the soak tests exactly-once, not the dead letter."""
    kills: int = 4
    """SIGKILLs of the operator per run, each followed by a restart, at random points of the burst."""
    member: bool = True
    """Add a LinkedIn *member* account, whose posts cannot be listed: its targets may end
    ``unknown`` (never posted twice), counted apart."""
    settle_seconds: float = 120.0
    """How long after the last kill every target may take to reach a terminal state."""

    @classmethod
    def from_env(cls) -> SoakConfig:
        return cls(
            posts=_env_int("SOCIALPUB_SOAK_POSTS", cls.posts),
            scheduled_share=_env_float("SOCIALPUB_SOAK_SCHEDULED_SHARE", cls.scheduled_share),
            lead_seconds=_env_float("SOCIALPUB_SOAK_LEAD_SECONDS", cls.lead_seconds),
            drop_rate=_env_float("SOCIALPUB_SOAK_DROP_RATE", cls.drop_rate),
            error_rate=_env_float("SOCIALPUB_SOAK_ERROR_RATE", cls.error_rate),
            late_rate=_env_float("SOCIALPUB_SOAK_LATE_RATE", cls.late_rate),
            late_seconds=_env_float("SOCIALPUB_SOAK_LATE_SECONDS", cls.late_seconds),
            listing_lag=_env_float("SOCIALPUB_SOAK_LISTING_LAG_SECONDS", cls.listing_lag),
            permanent_rate=_env_float("SOCIALPUB_SOAK_PERMANENT_RATE", cls.permanent_rate),
            faults_per_content=_env_int("SOCIALPUB_SOAK_FAULTS_PER_CONTENT", cls.faults_per_content),
            kills=_env_int("SOCIALPUB_SOAK_KILLS", cls.kills),
            member=os.environ.get("SOCIALPUB_SOAK_MEMBER", "1").lower() not in ("0", "false", "no", ""),
            settle_seconds=_env_float("SOCIALPUB_SOAK_SETTLE_SECONDS", cls.settle_seconds),
        )


def seeds_from_env() -> list[int]:
    """``SOCIALPUB_SOAK_SEEDS=1,2,3`` (the default)."""
    raw = os.environ.get("SOCIALPUB_SOAK_SEEDS", "1,2,3")
    return [int(s) for s in raw.replace(" ", "").split(",") if s]


@dataclass(frozen=True)
class SoakAccount:
    """One live account of the soak tenant, as the platform knows it."""

    platform: Platform
    external_id: str
    member: bool = False

    @property
    def key(self) -> str:
        """How the fake names the account: LinkedIn's author URN, the Page or IG user id."""
        if self.platform is Platform.LINKEDIN and not self.external_id.startswith("urn:li:"):
            return f"urn:li:organization:{self.external_id}"
        return self.external_id


ORGANIZATIONS = (
    SoakAccount(Platform.LINKEDIN, "5515715"),
    SoakAccount(Platform.LINKEDIN, "5515716"),
    SoakAccount(Platform.FACEBOOK, "104857600123"),
    SoakAccount(Platform.FACEBOOK, "104857600456"),
    SoakAccount(Platform.INSTAGRAM, "17841400000000001"),
    SoakAccount(Platform.INSTAGRAM, "17841400000000002"),
)
MEMBER = SoakAccount(Platform.LINKEDIN, "urn:li:person:soakMember42", member=True)


def soak_accounts(config: SoakConfig) -> list[SoakAccount]:
    return [*ORGANIZATIONS, *([MEMBER] if config.member else [])]


@dataclass(frozen=True)
class PlannedPost:
    index: int
    text: str
    accounts: tuple[SoakAccount, ...]
    image: str | None
    """A media server image name, or ``None`` for text only (Instagram needs one)."""
    scheduled: bool


def plan_posts(seed: int, config: SoakConfig, accounts: list[SoakAccount]) -> list[PlannedPost]:
    """``config.posts`` posts, each to 2-5 of the accounts (so every account gets many targets)."""
    rng = random.Random(f"posts:{seed}")
    posts = []
    for i in range(config.posts):
        chosen = tuple(rng.sample(accounts, rng.randint(2, min(5, len(accounts)))))
        needs_image = any(a.platform is Platform.INSTAGRAM for a in chosen) or rng.random() < 0.2
        posts.append(
            PlannedPost(
                index=i,
                # Plain words only: no LinkedIn reserved characters, so the stored text is the text.
                text=f"Soak seed {seed}: update {i} of {config.posts}, sent in one burst.",
                accounts=chosen,
                image=f"soak{i % 4}" if needs_image else None,
                scheduled=rng.random() < config.scheduled_share,
            )
        )
    return posts


def kill_points(seed: int, config: SoakConfig, targets: int) -> list[int]:
    """After how many create calls (all platforms) the operator is SIGKILLed: one random point in
    each of ``kills`` equal slices of 5 %-90 % of the burst's first attempts, so every kill lands
    while posts are in flight and the kills are spread over the whole burst."""
    rng = random.Random(f"kills:{seed}")
    low, high = 0.05 * targets, 0.9 * targets
    width = (high - low) / max(1, config.kills)
    return [int(low + width * (i + rng.random())) for i in range(config.kills)]


CreateKey = tuple[str, str, str]
"""(platform, account as the fake names it, text)."""


def _linkedin_create(fake: FakeServer, method: str, path: str) -> CreateKey | None:
    if method != "POST" or path != "/rest/posts":
        return None
    body = fake.requests[-1].json
    if not isinstance(body, dict):
        return None
    return ("linkedin", str(body.get("author")), visible_text(str(body.get("commentary") or "")))


def _facebook_create(fake: FakeServer, method: str, path: str) -> CreateKey | None:
    parts = [p for p in path.split("/") if p]
    if method != "POST" or len(parts) != 3 or parts[2] not in ("feed", "photos"):
        return None
    record = fake.requests[-1]
    if parts[2] == "photos" and not as_bool(record.param("published"), True):
        return None  # an unpublished photo for a multi-image post: not the create
    text = (
        record.param("message") if parts[2] == "feed" else record.param("caption") or record.param("message")
    )
    return ("facebook", parts[1], text or "")


def _instagram_create(fake: FakeServer, method: str, path: str) -> CreateKey | None:
    parts = [p for p in path.split("/") if p]
    if method != "POST" or len(parts) != 3 or parts[2] != "media_publish":
        return None
    container = getattr(fake, "containers", {}).get(fake.requests[-1].param("creation_id") or "")
    return ("instagram", parts[1], str((container or {}).get("caption") or ""))


_SERVER_ERRORS = {
    "linkedin": Fault(status=503, body={"status": 503, "message": "Service Unavailable"}),
    "facebook": Fault(
        status=503, body=graph_error_body(2, "Service temporarily unavailable", transient=True)
    ),
    "instagram": Fault(
        status=503, body=graph_error_body(2, "Service temporarily unavailable", transient=True)
    ),
}
_GRAPH_400 = graph_error_body(100, "(#100) Invalid parameter", subcode=33)
_REFUSALS = {
    "linkedin": Fault(
        status=422,
        body={
            "status": 422,
            "message": "/commentary is invalid",
            "errorDetails": {"inputErrors": [{"description": "invalid", "code": "FIELD_VALUE_INVALID"}]},
        },
    ),
    "facebook": Fault(status=400, body=_GRAPH_400),
    "instagram": Fault(status=400, body=_GRAPH_400),
}


@dataclass
class FaultPlan:
    """Decides, for every create call the fakes receive, whether it is answered, commit-then-dropped
    or refused with a 503, from the seed and the call's content; counts what it did."""

    seed: int
    config: SoakConfig
    seen: Counter[CreateKey] = field(default_factory=Counter)
    faulted: Counter[CreateKey] = field(default_factory=Counter)
    dropped: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    late: Counter[str] = field(default_factory=Counter)
    refused: set[CreateKey] = field(default_factory=set)
    """Contents whose first create was refused for good."""
    creates: Counter[str] = field(default_factory=Counter)
    log: list[dict[str, object]] = field(default_factory=list)
    """Every create call decided: when, the content, which call of it, the fault (evidence)."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def create_count(self) -> int:
        """Create calls so far, all platforms (read by the killer's thread)."""
        with self._lock:
            return sum(self.creates.values())

    def decide(self, key: CreateKey) -> Fault | None:
        with self._lock:  # each fake answers on its own thread
            return self._decide(key)

    def _decide(self, key: CreateKey) -> Fault | None:
        fault = self._draw(key)
        kind = "none" if fault is None else fault.kind if fault.kind != "status" else str(fault.status)
        self.log.append({"at": time.time(), "key": list(key), "call": self.seen[key], "fault": kind})
        return fault

    def _draw(self, key: CreateKey) -> Fault | None:
        nth = self.seen[key]
        self.seen[key] += 1
        self.creates[key[0]] += 1
        if self.faulted[key] >= self.config.faults_per_content:
            return None
        rng = random.Random(f"fault:{self.seed}:{key}:{nth}")
        if nth == 0 and rng.random() < self.config.permanent_rate:
            self.refused.add(key)
            refusal = _REFUSALS[key[0]]
            return Fault(status=refusal.status, body=refusal.body)
        draw = rng.random()
        if draw < self.config.drop_rate:
            self.faulted[key] += 1
            self.dropped[key[0]] += 1
            return Fault(kind="commit_drop")
        draw -= self.config.drop_rate
        if draw < self.config.late_rate:
            self.faulted[key] += 1
            self.late[key[0]] += 1
            return Fault(kind="commit_later", delay=rng.uniform(0.2, self.config.late_seconds))
        draw -= self.config.late_rate
        if draw < self.config.error_rate:
            self.faulted[key] += 1
            self.errors[key[0]] += 1
            server_error = _SERVER_ERRORS[key[0]]
            return Fault(status=server_error.status, body=server_error.body)
        return None

    @contextmanager
    def installed(self, fakes: Fakes) -> Iterator[FaultPlan]:
        """Put the plan in front of the fakes' own fault list for the duration of the run.

        The fakes look a fault up (``_take_fault``) right after recording the request, on their
        event loop and without yielding, so ``requests[-1]`` is the call being decided.
        """
        hooks: list[tuple[FakeServer, Callable[[FakeServer, str, str], CreateKey | None]]] = [
            (fakes.linkedin, _linkedin_create),
            (fakes.facebook, _facebook_create),
            (fakes.instagram, _instagram_create),
        ]
        for fake, classify in hooks:
            queued = fake._take_fault

            def take(
                method: str,
                path: str,
                fake: FakeServer = fake,
                classify: Callable[[FakeServer, str, str], CreateKey | None] = classify,
                queued: Callable[[str, str], Fault | None] = queued,
            ) -> Fault | None:
                key = classify(fake, method, path)
                if key is None:
                    return queued(method, path)
                return self.decide(key) or queued(method, path)

            fake._take_fault = take  # type: ignore[method-assign]
            fake.listing_lag = self.config.listing_lag
        try:
            yield self
        finally:
            for fake, _ in hooks:
                del fake._take_fault
                fake.settle()  # every late create has landed before the audit looks
                fake.listing_lag = 0.0
