"""Live accounts for the soak, added the way an operator of the service adds them: the command line."""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

from socialpub.cli import main
from tests.fakes.fixtures import Fakes
from tests.kube_harness import KubeHarness
from tests.soak.plan import SoakAccount


def cli(kubeconfig: Path, *args: str) -> str:
    """``socialpub ARGS`` in this process, as an operator of the service would type it."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        try:
            main(["--kubeconfig", str(kubeconfig), *args])
        except SystemExit as exc:
            if exc.code:
                raise AssertionError(f"socialpub {' '.join(args)} exited {exc.code}") from None
    return out.getvalue()


def add_accounts(
    kube: KubeHarness, fakes: Fakes, tenant: str, accounts: list[SoakAccount], tmp_path: Path
) -> dict[int, SoakAccount]:
    """``socialpub accounts add`` for each account, with a token the fake grants."""
    by_id: dict[int, SoakAccount] = {}
    for i, account in enumerate(accounts):
        token = getattr(fakes, account.platform.value).grant(f"{tenant}-{i}-token")
        token_file = tmp_path / f"token-{i}"
        token_file.write_text(token + "\n")
        out = cli(
            kube.kubeconfig,
            "accounts", "add",
            "--tenant", tenant,
            "--platform", account.platform.value,
            "--external-id", account.external_id,
            "--display-name", f"Soak {account.platform.value} {i}",
            "--token-file", str(token_file),
        )  # fmt: skip
        by_id[int(out.strip().splitlines()[-1])] = account
    return by_id
