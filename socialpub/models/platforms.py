"""What each network accepts: text limits and media rules, shared by the api's validation and
the operator's adapters so that a post accepted at create time is one the platform will take.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass

__all__ = [
    "PLATFORM_RULES",
    "Platform",
    "PlatformRules",
    "count_hashtags",
    "count_mentions",
    "length_problems",
    "media_problems",
    "text_problems",
]

_HASHTAG = re.compile(r"#(?=\w*[^\W\d_])\w+", re.UNICODE)
"""Every ``#`` followed by a word that is not only digits starts a hashtag, also when glued to
the one before (``#a#b#c`` is three, as Instagram counts them)."""
_MENTION = re.compile(r"@[A-Za-z0-9_.]*[A-Za-z0-9_]")
"""``@`` and an Instagram username (letters, digits, ``_`` and ``.``, not ending in a dot).
Which of these are mentions is :func:`count_mentions`'s business (the one before decides)."""


class Platform(enum.StrEnum):
    LINKEDIN = "linkedin"
    FACEBOOK = "facebook"
    INSTAGRAM = "instagram"


@dataclass(frozen=True)
class PlatformRules:
    max_chars: int
    max_hashtags: int | None = None
    max_mentions: int | None = None
    requires_media: bool = False
    max_media: int = 10


PLATFORM_RULES: dict[Platform, PlatformRules] = {
    Platform.LINKEDIN: PlatformRules(max_chars=3000, max_media=9),
    Platform.FACEBOOK: PlatformRules(max_chars=63206, max_media=10),
    Platform.INSTAGRAM: PlatformRules(
        max_chars=2200, max_hashtags=30, max_mentions=20, requires_media=True, max_media=10
    ),
}


def count_hashtags(text: str) -> int:
    return len(_HASHTAG.findall(text))


def count_mentions(text: str) -> int:
    """How many @mentions Instagram sees in ``text``.

    An ``@username`` is a mention when it starts the text or follows a character that cannot
    be part of a word (``@a @b`` is two, ``me@example.com`` none, ``@@f`` none), and also when
    it is glued to the end of a mention or hashtag before it, as Instagram links them:
    ``@u0@u1@u2`` is three mentions and ``#x@a`` one. A lookbehind alone counted a glued chain
    as one mention, so ``@u0@u1…@u24`` passed the limit of 20.
    """
    ends = {match.end() for match in _HASHTAG.finditer(text)}
    count = 0
    for match in _MENTION.finditer(text):
        start = match.start()
        before = text[start - 1] if start else " "
        if start in ends or not (before.isalnum() or before in "_@"):
            count += 1
            ends.add(match.end())
    return count


def length_problems(platform: Platform, text: str) -> list[str]:
    """Why ``text`` is too long (or has too many hashtags or @mentions) for ``platform``; empty if
    it fits. The api checks this at create time and the adapter again before sending."""
    rules = PLATFORM_RULES[platform]
    problems = []
    if len(text) > rules.max_chars:
        problems.append(
            f"{platform.value} allows at most {rules.max_chars} characters; this text has {len(text)}"
        )
    if rules.max_hashtags is not None and count_hashtags(text) > rules.max_hashtags:
        problems.append(
            f"{platform.value} allows at most {rules.max_hashtags} hashtags; this text has "
            f"{count_hashtags(text)}"
        )
    if rules.max_mentions is not None and count_mentions(text) > rules.max_mentions:
        problems.append(
            f"{platform.value} allows at most {rules.max_mentions} @mentions; this text has "
            f"{count_mentions(text)}"
        )
    return problems


def media_problems(platform: Platform, media_count: int) -> list[str]:
    """Why ``media_count`` images cannot go to ``platform``; empty if they can.

    Kept apart from :func:`length_problems` so that a caller can say which field is at fault
    (the text of one target, or the post's media).
    """
    rules = PLATFORM_RULES[platform]
    problems = []
    if rules.requires_media and media_count == 0:
        problems.append(f"{platform.value} requires at least one image")
    if media_count > rules.max_media:
        problems.append(
            f"{platform.value} allows at most {rules.max_media} images; this post has {media_count}"
        )
    return problems


def text_problems(platform: Platform, text: str, *, media_count: int) -> list[str]:
    """Why ``text`` with ``media_count`` images cannot be published on ``platform`` (empty if it can)."""
    return length_problems(platform, text) + media_problems(platform, media_count)
