"""Instagram's 20-mention limit counts glued mentions one by one (issue 9 review, item 10):
``@u0@u1…@u24`` is 25 mentions, not one, and ``#x@a`` holds one mention, not none."""

from __future__ import annotations

import pytest

from socialpub.models.platforms import Platform, count_hashtags, count_mentions, length_problems


@pytest.mark.parametrize(
    ("text", "mentions"),
    [
        ("".join(f"@u{i}" for i in range(25)), 25),
        ("#x@a", 1),
        ("#x@a@b #y", 2),
        ("@a.b@c", 2),
        ("@a @b.c (@d) @e. me@example.com @@f", 4),
        ("write to team@example.com", 0),
        ("x_@a 1@b", 0),
    ],
)
def test_glued_mentions_count_one_by_one(text: str, mentions: int) -> None:
    assert count_mentions(text) == mentions


def test_a_glued_chain_over_the_limit_is_refused() -> None:
    text = "".join(f"@u{i}" for i in range(21))
    assert count_hashtags(text) == 0
    assert any("20 @mentions" in p and "has 21" in p for p in length_problems(Platform.INSTAGRAM, text))
    assert length_problems(Platform.INSTAGRAM, "".join(f"@u{i}" for i in range(20))) == []
