"""The rules a post's content must meet that need stored state: its accounts and their platforms.

Structural rules (types, lengths, https media) are in the schemas. These run at create and at
every edit, on the post as it would be after the edit, in stages: duplicate accounts, then
whether each account exists and is active, then each platform's limits (which need the
account's platform). A failing stage answers 422 with every problem it found, each naming its
field, and the later stages do not run.

An account of another tenant, or of the other mode, is reported exactly like an id that does not
exist (``account_not_found``): the answer must not reveal that it exists.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from socialpub.api.errors import UnprocessableEntity
from socialpub.api.services.mapping import account_platform, account_state, is_active_account
from socialpub.models.platforms import length_problems, media_problems

__all__ = ["Problem", "check_content"]


@dataclass(frozen=True)
class Problem:
    field: str
    code: str
    message: str


def _raise(problems: Sequence[Problem], message: str) -> None:
    if problems:
        raise UnprocessableEntity(
            message,
            code=problems[0].code,
            details=[{"field": p.field, "code": p.code, "message": p.message} for p in problems],
        )


def check_content(
    *,
    body: str,
    media_count: int,
    targets: Sequence[tuple[int, str | None]],
    account: Callable[[int], Mapping[str, Any] | None],
) -> None:
    """Raise 422 unless ``body``/media/``targets`` (``(account_id, override_body)``) can publish."""
    seen: set[int] = set()
    duplicates = []
    for i, (account_id, _) in enumerate(targets):
        if account_id in seen:
            duplicates.append(
                Problem(
                    f"targets[{i}].account_id",
                    "duplicate_account",
                    f"account {account_id} is listed more than once; one target per account",
                )
            )
        seen.add(account_id)
    _raise(duplicates, "each account may be targeted only once")

    found: list[Mapping[str, Any]] = []
    missing = []
    for i, (account_id, _) in enumerate(targets):
        obj = account(account_id)
        field = f"targets[{i}].account_id"
        if obj is None:
            missing.append(Problem(field, "account_not_found", f"no account {account_id}"))
        elif not is_active_account(obj):
            state = account_state(obj)
            missing.append(
                Problem(field, "account_not_active", f"account {account_id} is {state}; it must be active")
            )
        else:
            found.append(obj)
    _raise(missing, "every target must be an active account of yours; see details")

    problems: list[Problem] = []
    for i, ((account_id, override), obj) in enumerate(zip(targets, found, strict=True)):
        platform = account_platform(obj)
        if platform is None:
            continue
        text = override if override is not None else body
        field = f"targets[{i}].override_body" if override is not None else "body"
        for message in length_problems(platform, text):
            problems.append(Problem(field, "platform_limit", f"{message} (account {account_id})"))
        for message in media_problems(platform, media_count):
            problem = Problem("media", "platform_limit", message)
            if problem not in problems:
                problems.append(problem)
    _raise(problems, "the post breaks a platform's rules; see details")
