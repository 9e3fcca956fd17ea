"""SIGKILLing the real operator at planned points of the burst, and starting it again each time."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from tests.operator.harness import OperatorProcess

READY_TIMEOUT = 90.0
"""A restarted operator primes its caches with every object of the burst; under load that is slow."""


class Killer:
    """A thread that SIGKILLs ``operator`` each time ``progress()`` (create calls the platforms have
    received) reaches the next of ``points``, and restarts it at once.

    Points of progress rather than moments in time: the kills land in the burst however fast or
    slow the machine runs it. A point not reached within ``patience`` seconds (the burst ended
    early, say) ends the kills; :attr:`kills` counts those done.
    """

    def __init__(
        self,
        operator: OperatorProcess,
        progress: Callable[[], int],
        points: list[int],
        *,
        patience: float = 120.0,
    ) -> None:
        self.operator = operator
        self.progress = progress
        self.points = points
        self.patience = patience
        self.kills = 0
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="soak-killer", daemon=True)

    def start(self) -> Killer:
        self._thread.start()
        return self

    def _run(self) -> None:
        try:
            for point in self.points:
                deadline = time.monotonic() + self.patience
                while self.progress() < point:
                    if time.monotonic() > deadline or self._stop.wait(0.01):
                        return
                with self.operator.log_path.open("a") as log:  # O_APPEND, beside the operator's writes
                    log.write(f"===== SIGKILL at {time.time():.3f} =====\n")
                self.operator.kill()
                self.kills += 1
                self.operator.start(timeout=READY_TIMEOUT)
        except BaseException as exc:  # reported by the test, which cannot see this thread's raise
            self.error = exc

    @property
    def done(self) -> bool:
        return not self._thread.is_alive()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(READY_TIMEOUT + 30)
