"""kopf's watch generator closed at shutdown is not reported as an operator ERROR; other loop errors are."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import pytest

from socialpub.operator.runner import _quiet_kopf_watch_finalizer


async def infinite_watch() -> AsyncIterator[int]:  # named like kopf's generator
    yield 1


async def other_watch() -> AsyncIterator[int]:
    yield 1


def test_only_kopfs_watch_finalizer_error_is_quieted(caplog: pytest.LogCaptureFixture) -> None:
    loop = asyncio.new_event_loop()
    try:
        _quiet_kopf_watch_finalizer(loop)
        error = RuntimeError("generator didn't stop after athrow()")
        with caplog.at_level(logging.DEBUG):
            for generator in (infinite_watch(), other_watch()):
                loop.call_exception_handler(
                    {
                        "message": "an error occurred during closing of asynchronous generator",
                        "asyncgen": generator,
                        "exception": error,
                    }
                )
    finally:
        loop.close()
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1
    assert "other_watch" in errors[0].getMessage()
    assert any("closed at shutdown" in r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG)
