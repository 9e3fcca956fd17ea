"""The sandbox simulator: what publishing does for ``sk_test_`` tenants' sandbox accounts.

It runs the whole pipeline (claim, call, retry, dead-letter, events) without a network, and it
is deterministic so integrators can test their failure handling: the outcome of an attempt is a
function of the effective text and the attempt number alone.

Triggers (anywhere in the text):

* ``#sandbox-fail-transient`` — every attempt fails transiently (dead after five attempts);
* ``#sandbox-fail-permanent`` — the first attempt fails permanently (dead at once);
* ``#sandbox-flaky`` — attempts 1 and 2 fail transiently, attempt 3 succeeds;
* ``#sandbox-outcome-unknown`` — the attempt's answer is lost and the platform cannot tell
  whether it landed (:class:`OutcomeUnknown`): the target becomes ``unknown``, needing attention.

Because outcomes are deterministic, "did this land?" is answered exactly: an interrupted attempt
landed if and only if that attempt would have succeeded.
"""

from __future__ import annotations

import asyncio
import hashlib

from socialpub.platforms.base import (
    OutcomeUnknown,
    PermanentError,
    Published,
    PublishRequest,
    TransientError,
)

__all__ = ["FAIL_PERMANENT", "FAIL_TRANSIENT", "FLAKY", "OUTCOME_UNKNOWN", "SandboxAdapter"]

FAIL_TRANSIENT = "#sandbox-fail-transient"
FAIL_PERMANENT = "#sandbox-fail-permanent"
FLAKY = "#sandbox-flaky"
OUTCOME_UNKNOWN = "#sandbox-outcome-unknown"
_FLAKY_FAILURES = 2


class SandboxAdapter:
    """Simulated publishing with a small, configurable delay."""

    def __init__(self, *, delay_seconds: float = 0.3) -> None:
        self._delay = delay_seconds

    def _outcome(self, request: PublishRequest) -> Published:
        text = request.text
        if OUTCOME_UNKNOWN in text:
            raise OutcomeUnknown(
                f"sandbox: {OUTCOME_UNKNOWN} in the text: the answer was lost and the platform cannot "
                "tell whether the post landed",
                code="sandbox_outcome_unknown",
            )
        if FAIL_PERMANENT in text:
            raise PermanentError(f"sandbox: {FAIL_PERMANENT} in the text", code="sandbox_permanent_failure")
        if FAIL_TRANSIENT in text:
            raise TransientError(f"sandbox: {FAIL_TRANSIENT} in the text", code="sandbox_transient_failure")
        if FLAKY in text and request.attempt <= _FLAKY_FAILURES:
            raise TransientError(
                f"sandbox: {FLAKY} fails attempt {request.attempt} of the first {_FLAKY_FAILURES}",
                code="sandbox_flaky_failure",
            )
        digest = hashlib.sha256(request.nonce.encode()).hexdigest()[:16]
        external_id = f"sandbox-{request.platform}-{digest}"
        return Published(external_id, f"https://sandbox.socialpub.example/{request.platform}/{external_id}")

    async def publish(self, request: PublishRequest) -> Published:
        if self._delay > 0:
            await asyncio.sleep(self._delay)
        return self._outcome(request)

    async def find_published(self, request: PublishRequest) -> Published | None:
        try:
            return self._outcome(request)
        except (TransientError, PermanentError):
            return None
