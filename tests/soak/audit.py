"""The end of a soak run: what the platforms hold (the fakes' own records) against what the
SocialTargets say, and the per-seed summary.

The platform is the truth. For every (post, account) the audit counts the copies the fake
stores, and checks that a ``published`` target names the one copy there is, that nothing was
stored that no target claims, and that no target gave up (``dead``) on a post that is live.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Any

from socialpub.kube.resources import LABEL_POST
from tests.fakes.fixtures import Fakes
from tests.soak.plan import FaultPlan, PlannedPost, SoakAccount

TERMINAL = ("published", "dead", "unknown")
"""Target states no operator changes on its own (``unknown``: a person must look)."""

RESULTS: list[Summary] = []
"""Every summary of this pytest session, printed at its end (tests/soak/conftest.py)."""


def stored_content(fakes: Fakes) -> dict[tuple[str, str], list[str]]:
    """(account as the fake names it, text) -> the ids of every copy the platforms hold."""
    stored: dict[tuple[str, str], list[str]] = defaultdict(list)
    for post in list(fakes.linkedin.posts):
        stored[(post["author"], post["visible"])].append(post["id"])
    for post in list(fakes.facebook.posts):
        stored[(post["page"], post.get("message") or "")].append(post["id"])
    for media in list(fakes.instagram.media):
        stored[(media["user"], media["caption"])].append(media["id"])
    return stored


def lookups(fakes: Fakes) -> dict[str, int]:
    """The "did it land?" listing calls each platform received."""
    return {
        "linkedin": len(fakes.linkedin.seen("GET", r"^/rest/posts$")),
        "facebook": len(fakes.facebook.seen("GET", r"/\d+/(posts|published_posts|feed)$")),
        "instagram": len(fakes.instagram.seen("GET", r"/\d+/media$")),
    }


@dataclass
class Summary:
    """One seed's run, as the note and docs/soak.md report it."""

    seed: int
    posts: int = 0
    scheduled: int = 0
    late: int = 0
    """Scheduled posts written after their due time (creating them outlasted the lead): the burst
    was then less sharp than planned. Raise ``SOCIALPUB_SOAK_LEAD_SECONDS`` if this is not 0."""
    targets: int = 0
    member_targets: int = 0
    kills: int = 0
    dropped_answers: int = 0
    server_errors: int = 0
    late_commits: int = 0
    """Creates whose answer was lost at once and that landed up to a few seconds later."""
    create_calls: int = 0
    lookups: dict[str, int] = field(default_factory=dict)
    published: int = 0
    unknown_member: int = 0
    duplicates: int = 0
    """Extra copies on the platforms: a post stored n times adds n - 1."""
    refused: int = 0
    """Targets whose first create was refused for good on purpose: ``dead`` is right for them."""
    dead: int = 0
    dead_while_live: int = 0
    wrong_ids: int = 0
    not_terminal: int = 0
    unexpected_unknown: int = 0
    orphans: int = 0
    max_attempts: int = 0
    operator_problems: int = 0
    """Traceback/ERROR lines in the operator's log (reported, not failed on: SIGKILLs are rude)."""
    seconds: float = 0.0
    evidence: str = ""
    """Where the seed's evidence was kept (a failing seed, or ``SOCIALPUB_SOAK_KEEP_EVIDENCE=1``)."""
    breakdown: dict[str, int] = field(default_factory=dict)
    """Problems by kind, platform (``linkedin-member`` apart) and, for dead targets, error code."""
    problems: list[str] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.problems

    def line(self) -> str:
        looked = "/".join(str(self.lookups.get(p, 0)) for p in ("linkedin", "facebook", "instagram"))
        return (
            f"seed {self.seed}: {self.posts} posts ({self.scheduled} in the burst, {self.late} late), "
            f"{self.targets} targets "
            f"({self.member_targets} member), {self.kills} kills, {self.dropped_answers} dropped answers, "
            f"{self.late_commits} late commits, {self.server_errors} 503s, {self.create_calls} creates, "
            f"lookups li/fb/ig {looked}; "
            f"published {self.published}, unknown(member) {self.unknown_member}, "
            f"duplicates {self.duplicates}, "
            f"refused on purpose {self.refused}, dead {self.dead} ({self.dead_while_live} while live), "
            f"wrong ids {self.wrong_ids}, "
            f"not terminal {self.not_terminal}, orphans {self.orphans}, max attempts {self.max_attempts}, "
            f"operator log problems {self.operator_problems}; "
            f"{self.seconds:.0f}s — {'OK' if self.clean else 'FAILED'}"
            + "".join(f"\n    {n} x {kind}" for kind, n in sorted(self.breakdown.items()))
            + (f"\n    evidence: {self.evidence}" if self.evidence else "")
        )

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)


def audit(
    summary: Summary,
    fakes: Fakes,
    plan: FaultPlan,
    posts: dict[str, PlannedPost],
    accounts: dict[int, SoakAccount],
    targets: list[dict[str, Any]],
) -> Summary:
    """Fill ``summary`` from the fakes and the targets; every way the run missed exactly-once is a
    line in ``summary.problems``."""
    stored = stored_content(fakes)
    summary.dropped_answers = sum(plan.dropped.values())
    summary.server_errors = sum(plan.errors.values())
    summary.late_commits = sum(plan.late.values())
    summary.create_calls = sum(plan.creates.values())
    summary.lookups = lookups(fakes)
    summary.targets = len(targets)
    claimed: set[tuple[str, str]] = set()
    breakdown: Counter[str] = Counter()

    def problem(kind: str, text: str) -> None:
        summary.problems.append(f"{kind}: {text}")
        breakdown[kind] += 1

    for target in targets:
        post_name = target["metadata"]["labels"][LABEL_POST]
        account = accounts[int(target["spec"]["accountId"])]
        planned = posts[post_name]
        status = target.get("status") or {}
        state = status.get("state") or "none"
        error = status.get("lastError") or {}
        platform = account.platform.value + ("-member" if account.member else "")
        summary.max_attempts = max(summary.max_attempts, int(status.get("attempts") or 0))
        where = (
            f"{post_name} on {account.platform.value} {account.external_id} "
            f"(attempt {status.get('attempts', 0)})"
        )
        key = (account.key, planned.text)
        claimed.add(key)
        copies = stored.get(key, [])
        if account.member:
            summary.member_targets += 1
        key_of = (account.platform.value, account.key, planned.text)
        if key_of in plan.refused:
            summary.refused += 1
        if len(copies) > 1:
            summary.duplicates += len(copies) - 1
            problem(f"duplicate on {platform}", f"{where} is on the platform {len(copies)} times ({state})")
        if state not in TERMINAL:
            summary.not_terminal += 1
            problem(f"not terminal on {platform} ({state})", f"{where} is {state}: {status.get('lastError')}")
        elif state == "published":
            summary.published += 1
            if status.get("externalPostId") not in copies:
                summary.wrong_ids += 1
                problem(
                    f"wrong id on {platform}",
                    f"{where} says {status.get('externalPostId')}, the platform has {copies}",
                )
        elif state == "dead":
            summary.dead += 1
            if copies:
                summary.dead_while_live += 1
                problem(
                    f"dead while live on {platform} ({error.get('code')})",
                    f"{where} ({error.get('code')}) but the platform has {copies}",
                )
            elif key_of not in plan.refused:
                problem(
                    f"dead on {platform} ({error.get('code')})",
                    f"{where}: {error.get('code')}: {error.get('message')}",
                )
        elif state == "unknown":
            if account.member:
                summary.unknown_member += 1
            else:
                summary.unexpected_unknown += 1
                problem(f"unknown on {platform}", f"{where}: a listable account's outcome can be known")
    for key, copies in stored.items():
        if key not in claimed:
            summary.orphans += len(copies)
            problem("orphan", f"{key} is on the platform ({copies}) but no target claims it")
    summary.breakdown = dict(breakdown)
    return summary
