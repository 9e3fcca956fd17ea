"""The real api over real HTTP against the real embedded Kubernetes API.

One embedded Kubernetes API and one uvicorn serving ``create_app()`` run for the whole session,
each in its own thread and event loop; every test gets a fresh tenant (its own namespaces, keys
and accounts), which is exactly the isolation the product promises between tenants.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import uvicorn
import yaml

from socialpub.api.app import create_app
from socialpub.api.settings import ApiSettings
from tests.api.kube_proxy import FaultProxy
from tests.api.support import World, wait_for
from tests.kube_harness import KubeHarness


class ApiServer:
    """uvicorn serving the app on 127.0.0.1 (a free port) in a background thread."""

    def __init__(self, settings: ApiSettings) -> None:
        self.app = create_app(settings)
        # Port 0 and read back the port: handing uvicorn a pre-bound socket instead loses
        # TCP_NODELAY on accepted connections, and every response then waits 40 ms for a
        # delayed ACK.
        config = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=0,
            log_level="warning",
            lifespan="on",
            timeout_graceful_shutdown=2,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = ""

    def start(self) -> ApiServer:
        self.thread.start()
        wait_for(lambda: self.server.started, timeout=30, what="uvicorn to start")
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)


@pytest.fixture(scope="session")
def api_kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeHarness]:
    harness = KubeHarness(Path(tmp_path_factory.mktemp("api-kube")) / "state").start()
    try:
        yield harness
    finally:
        harness.close()


@pytest.fixture(scope="session")
def api_server(api_kube: KubeHarness) -> Iterator[ApiServer]:
    server = ApiServer(ApiSettings(kubeconfig=str(api_kube.kubeconfig))).start()
    try:
        with httpx.Client(base_url=server.url) as client:
            wait_for(lambda: client.get("/readyz").status_code == 200, timeout=30, what="/readyz")
        yield server
    finally:
        server.stop()


_tenants = itertools.count(1)


@pytest.fixture
def world(api_kube: KubeHarness, api_server: ApiServer) -> Iterator[World]:
    """A fresh tenant with helpers to make keys and accounts and to call the api."""
    name = f"t{os.getpid() % 10000}-{next(_tenants)}-{int(time.time() * 1000) % 100000}"
    world = World(api_kube, api_server.url, name)
    try:
        yield world
    finally:
        world.close()


@pytest.fixture
def other_world(api_kube: KubeHarness, api_server: ApiServer) -> Iterator[World]:
    """A second tenant, for isolation tests."""
    name = f"o{os.getpid() % 10000}-{next(_tenants)}-{int(time.time() * 1000) % 100000}"
    world = World(api_kube, api_server.url, name)
    try:
        yield world
    finally:
        world.close()


@pytest.fixture(scope="session")
def second_api_server(api_kube: KubeHarness, api_server: ApiServer) -> Iterator[ApiServer]:
    """Another replica of the api on the same Kubernetes API (the api is stateless)."""
    server = ApiServer(ApiSettings(kubeconfig=str(api_kube.kubeconfig))).start()
    try:
        with httpx.Client(base_url=server.url) as client:
            wait_for(lambda: client.get("/readyz").status_code == 200, timeout=30, what="/readyz")
        yield server
    finally:
        server.stop()


PROXIED_LEASE_SECONDS = 2.0
"""The idempotency lease of the api behind the fault proxy: short, so lease tests run quickly."""


@pytest.fixture(scope="session")
def kube_proxy(api_kube: KubeHarness, tmp_path_factory: pytest.TempPathFactory) -> Iterator[FaultProxy]:
    """A fault-injecting proxy in front of the embedded Kubernetes API (see kube_proxy.py)."""
    proxy = FaultProxy(api_kube.url, tls=api_kube.tls).start()
    try:
        yield proxy
    finally:
        proxy.close()


@pytest.fixture(scope="session")
def proxied_api(
    api_kube: KubeHarness, kube_proxy: FaultProxy, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ApiServer]:
    """An api replica that reaches the Kubernetes API only through ``kube_proxy``."""
    config = yaml.safe_load(api_kube.kubeconfig.read_text())
    for cluster in config["clusters"]:  # the same token, through the proxy (which does the TLS)
        cluster["cluster"] = {"server": kube_proxy.url}
    kubeconfig = Path(tmp_path_factory.mktemp("proxied-api")) / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump(config))
    kubeconfig.chmod(0o600)
    settings = ApiSettings(kubeconfig=str(kubeconfig), idempotency_lease_seconds=PROXIED_LEASE_SECONDS)
    server = ApiServer(settings).start()
    try:
        with httpx.Client(base_url=server.url) as client:
            wait_for(lambda: client.get("/readyz").status_code == 200, timeout=30, what="/readyz")
        yield server
    finally:
        kube_proxy.clear()
        kube_proxy.resume_watches()
        server.stop()


@pytest.fixture
def proxied_world(api_kube: KubeHarness, proxied_api: ApiServer, kube_proxy: FaultProxy) -> Iterator[World]:
    """A fresh tenant, served by the api behind the fault proxy (faults cleared afterwards)."""
    name = f"f{os.getpid() % 10000}-{next(_tenants)}-{int(time.time() * 1000) % 100000}"
    world = World(api_kube, proxied_api.url, name)
    try:
        yield world
    finally:
        kube_proxy.clear()
        kube_proxy.resume_watches()
        world.close()
