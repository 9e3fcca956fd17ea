"""Run the real embedded Kubernetes API in a background thread for tests.

Sync clients (kubectl in a subprocess, the ``kubernetes`` package) and async ones (kopf in its
own loop) all reach it over HTTP on 127.0.0.1, exactly as they would reach a cluster.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import ssl
import subprocess
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any

import httpx

from socialpub.embedded.kubeconfig import write_kubeconfig
from socialpub.embedded.server import EmbeddedKubeServer, ServerSettings, apply_manifest, load_manifests

REPO = Path(__file__).resolve().parent.parent
CRDS = REPO / "crds"
EXAMPLES = REPO / "examples"
KUBECTL = shutil.which("kubectl")


class KubeHarness:
    """An embedded Kubernetes API server running on its own event loop in a thread."""

    def __init__(self, state_dir: Path, settings: ServerSettings | None = None) -> None:
        self.state_dir = state_dir
        self.settings = settings or ServerSettings()
        self.kubeconfig = state_dir / "kubeconfig"
        self.cache_dir = state_dir / "kubectl-cache"
        self.loop = asyncio.new_event_loop()
        self.server: EmbeddedKubeServer | None = None
        self._thread = threading.Thread(target=self.loop.run_forever, name="embedded-kube", daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    @property
    def token(self) -> str:
        """The server's bearer token (what the kubeconfig carries)."""
        assert self.server is not None
        return self.server.token

    @property
    def auth(self) -> dict[str, str]:
        """The header every raw HTTP request to the server needs, as kubectl would send it."""
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def tls(self) -> ssl.SSLContext:
        """A client TLS context trusting the server's CA (what the kubeconfig's CA data says)."""
        assert self.server is not None
        return self.server.tls.client_context()

    def http(self, **kwargs: Any) -> httpx.Client:
        """A raw httpx client of the server, presenting its token and trusting its CA."""
        return httpx.Client(base_url=self.url, headers=self.auth, verify=self.tls, **kwargs)

    def async_http(self, **kwargs: Any) -> httpx.AsyncClient:
        """:meth:`http`, for async tests."""
        return httpx.AsyncClient(base_url=self.url, headers=self.auth, verify=self.tls, **kwargs)

    def call(self, coro: Any, timeout: float = 30) -> Any:
        """Run ``coro`` on the server's loop and wait for its result."""
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(timeout)

    def start(self, *, apply_crds: bool = True) -> KubeHarness:
        async def _start() -> EmbeddedKubeServer:
            server = EmbeddedKubeServer(self.state_dir, self.settings)
            await server.start()
            if apply_crds:
                for doc in load_manifests(CRDS):
                    await apply_manifest(server.cluster, server.registry, doc)
            return server

        self.server = self.call(_start())
        write_kubeconfig(self.kubeconfig, self.url, token=self.token, ca_pem=self.server.tls.ca_pem)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.call(self.server.stop())
            self.server = None

    def close(self) -> None:
        self.stop()
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()

    def restart(self) -> None:
        """Stop and start a new server on the same state directory (and port)."""
        assert self.server is not None
        port = self.server.port
        self.stop()
        self.settings.port = port
        self.start(apply_crds=False)

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        """Run the real kubectl against this server."""
        assert KUBECTL is not None, "kubectl is not installed"
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        proc = subprocess.run(
            [KUBECTL, f"--cache-dir={self.cache_dir}", *args],
            input=input,
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def kubectl_json(self, *args: str) -> Any:
        return json.loads(self.kubectl(*args, "-o", "json").stdout)


def kubectl_args(*parts: Sequence[str]) -> list[str]:
    return [p for part in parts for p in part]
