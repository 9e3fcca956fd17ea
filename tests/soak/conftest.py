"""The soak's fixtures (the platform fakes) and its per-seed summaries at the end of the run."""

from __future__ import annotations

import pytest

from tests.fakes.fixtures import fakes, fakes_session
from tests.soak.audit import RESULTS

__all__ = ["fakes", "fakes_session"]


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """One line per seed, whether the soak passed or not: the numbers the issue asks for."""
    if not RESULTS:
        return
    terminalreporter.section("soak: every post on every platform exactly once")
    for summary in RESULTS:
        terminalreporter.write_line(summary.line())
