"""The claim lease's call bound: real (the engine cancels at it) and short by default."""

from __future__ import annotations

import pytest

from socialpub.operator.settings import OperatorSettings
from socialpub.platforms.settings import PlatformSettings


def test_a_live_call_is_bounded_at_two_minutes_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SOCIALPUB_LIVE_CALL_MAX_SECONDS", "SOCIALPUB_PLATFORM_TIMEOUT_SECONDS"):
        monkeypatch.delenv(name, raising=False)
    settings = OperatorSettings.from_env()
    assert PlatformSettings.from_env().max_publish_seconds_for("linkedin") > 1000
    assert {settings.live_call_seconds(p) for p in ("linkedin", "facebook", "instagram")} == {120.0}


def test_the_adapters_own_bound_wins_when_it_is_lower(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIALPUB_PLATFORM_TIMEOUT_SECONDS", "0.5")
    monkeypatch.setenv("SOCIALPUB_LOOKUP_MAX_PAGES", "1")
    monkeypatch.setenv("SOCIALPUB_MEDIA_TIMEOUT_SECONDS", "1")
    computed = PlatformSettings.from_env().max_publish_seconds_for("linkedin")
    assert computed < 120
    assert OperatorSettings.from_env().live_call_seconds("linkedin") == computed


def test_the_bound_is_a_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SOCIALPUB_LIVE_CALL_MAX_SECONDS", "8")
    assert OperatorSettings.from_env().live_call_seconds("instagram") == 8.0
