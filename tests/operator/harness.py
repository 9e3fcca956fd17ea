"""The real operator as a subprocess (so it can be SIGTERMed or SIGKILLed), and its log."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

OPERATOR_CODE = (
    "import asyncio,logging; logging.basicConfig(level=logging.INFO); "
    "from socialpub.operator.runner import run_operator; "
    "from socialpub.operator.settings import OperatorSettings; "
    "asyncio.run(run_operator(OperatorSettings.from_env()))"
)
READY_LINE = "Activity 'start_engine' succeeded"
"""Logged once the engine has loaded every object and armed its timer."""
PROBLEMS = ("Traceback", "CRITICAL:", "ERROR:")


class OperatorProcess:
    """``socialpub.operator`` in its own process against ``kubeconfig``; every run appends to one log."""

    def __init__(self, kubeconfig: Path, log_path: Path, **env: str) -> None:
        self.kubeconfig = kubeconfig
        self.log_path = log_path
        self.env = {
            "SOCIALPUB_RETRY_BASE_SECONDS": "0.05",
            "SOCIALPUB_SANDBOX_DELAY_SECONDS": "0.05",
            "SOCIALPUB_CLAIM_SETTLE_SECONDS": "0.2",
            "SOCIALPUB_OPERATOR_LEASE_SECONDS": "5",
            **env,
        }
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self, *, timeout: float = 30.0, **env: str) -> OperatorProcess:
        """Start it and wait until it is ready (it has primed its caches and armed its timer)."""
        offset = self.launch(**env)
        return self.wait_ready(offset, timeout=timeout)

    def launch(self, **env: str) -> int:
        """Start it without waiting (it may be waiting for the Lease); returns the log offset of this run."""
        assert self.proc is None or self.proc.poll() is not None, "already running"
        self.env.update(env)
        offset = self.log_size()
        with self.log_path.open("ab") as log:
            log.write(f"===== operator start #{self.starts + 1} =====\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                [sys.executable, "-u", "-c", OPERATOR_CODE],
                env={**os.environ, "KUBECONFIG": str(self.kubeconfig), **self.env},
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1
        return offset

    def wait_ready(self, offset: int, *, timeout: float = 30.0) -> OperatorProcess:
        """Wait until the run whose log starts at ``offset`` is ready."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while READY_LINE not in self.log(offset):
            if self.proc.poll() is not None:
                raise AssertionError(f"the operator exited with {self.proc.returncode}:\n{self.log(offset)}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the operator was not ready after {timeout}s:\n{self.log(offset)}")
            time.sleep(0.05)
        return self

    def stop(self, *, timeout: float = 20.0) -> int:
        """SIGTERM and wait: the graceful shutdown a Deployment rollout does."""
        return self._signal(signal.SIGTERM, timeout)

    def kill(self) -> int:
        """SIGKILL: the operator dies at whatever instruction it was on."""
        return self._signal(signal.SIGKILL, 10.0)

    def _signal(self, sig: int, timeout: float) -> int:
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else 0
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(10)
            raise AssertionError(
                f"the operator did not stop within {timeout}s of {sig}:\n{self.log()}"
            ) from None

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_size(self) -> int:
        return self.log_path.stat().st_size if self.log_path.exists() else 0

    def log(self, offset: int = 0) -> str:
        if not self.log_path.exists():
            return ""
        with self.log_path.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def problems(self, offset: int = 0) -> list[str]:
        """Log lines that show something went wrong (a traceback, an ERROR)."""
        return [line for line in self.log(offset).splitlines() if line.startswith(PROBLEMS)]


@contextmanager
def running_operator(kubeconfig: Path, log_path: Path, **env: str) -> Iterator[OperatorProcess]:
    """An operator started for the block (a module's shared operator), stopped when it ends."""
    operator = OperatorProcess(kubeconfig, log_path, **env).start()
    try:
        yield operator
    finally:
        operator.stop()


def fail_on_problems(operator: OperatorProcess, offset: int = 0) -> None:
    """Fail the test if the operator logged a problem (from ``offset`` of its log), showing the log."""
    problems = operator.problems(offset)
    if problems:
        pytest.fail(
            f"the operator logged {len(problems)} problem(s), first: {problems[0]}\n"
            f"----- operator log -----\n{operator.log(offset)[-20000:]}",
            pytrace=False,
        )


@contextmanager
def checked(operator: OperatorProcess) -> Iterator[OperatorProcess]:
    """A shared operator for one test: the test fails if the operator died or logged a problem
    while it ran."""
    offset = operator.log_size()
    yield operator
    assert operator.running, f"the operator died:\n{operator.log(offset)}"
    fail_on_problems(operator, offset)


@contextmanager
def own_operators(kubeconfig: Path, directory: Path, **env: str) -> Iterator[Callable[..., OperatorProcess]]:
    """For tests that stop, kill and restart the operator: ``make(**env)`` returns an
    :class:`OperatorProcess` (not started) with its own log in ``directory``; at the end every one
    is stopped and the test fails if any of its runs logged a problem."""
    made: list[OperatorProcess] = []

    def make(**more: str) -> OperatorProcess:
        operator = OperatorProcess(kubeconfig, directory / f"operator-{len(made)}.log", **{**env, **more})
        made.append(operator)
        return operator

    yield make
    for operator in made:
        operator.stop()
    for operator in made:
        fail_on_problems(operator)
