"""Pytest fixtures that start real nats-server processes (loopback, temp store, stop by PID).

Registered for the whole tree by tests/conftest.py (``pytest_plugins``).
`nats_server`: one JetStream server. `nats_factory(**options)`: as many servers as a test
needs, all stopped at teardown. `nats_cluster`: three routed servers. `nats_hub_leaf`: a
hub accepting leaf nodes and one leaf connected to it. Without the binary the test is
skipped with the install hint (``./dev.sh`` installs it).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from wasi_hw.apps import end_child
from wasi_hw.fleet import NatsServer, start_cluster

__all__ = ["nats_server", "nats_factory", "nats_cluster", "nats_hub_leaf", "require_nats_server",
           "wait_leaf_connected"]


def require_nats_server() -> None:
    if shutil.which("nats-server") is None:
        pytest.skip("nats-server not found on PATH: apt-get install nats-server")


@pytest.fixture
def nats_factory(tmp_path) -> Iterator[Callable[..., NatsServer]]:
    require_nats_server()
    made: list[NatsServer] = []
    count = 0

    def make(start: bool = True, **options: Any) -> NatsServer:
        nonlocal count
        count += 1
        options.setdefault("workdir", tmp_path / f"nats{count}")
        server = NatsServer(**options)
        made.append(server)
        return server.start() if start else server

    yield make
    for server in made:
        server.close()


@pytest.fixture
def nats_server(nats_factory) -> NatsServer:
    return nats_factory(jetstream=True)


@pytest.fixture
def nats_cluster(tmp_path) -> Iterator[list[NatsServer]]:
    require_nats_server()
    servers = start_cluster(3)
    try:
        yield servers
    finally:
        for s in servers:
            s.close()


def wait_leaf_connected(server: NatsServer, count: int = 1, timeout: float = 10.0) -> None:
    """Block until `server`'s `/leafz` lists `count` leaf connections."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if len(server.monitor("leafz").get("leafs") or []) >= count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{server!r}: {count} leaf connection(s) not up in {timeout} s")


@pytest.fixture
def nats_hub_leaf(nats_factory) -> tuple[NatsServer, NatsServer]:
    hub = nats_factory(jetstream=True, js_domain="hub", leaf_listen=True)
    leaf = nats_factory(jetstream=True, js_domain="leaf", leaf_remotes=[hub.leaf_url])
    wait_leaf_connected(hub)
    return hub, leaf


class KernelNode:
    """A kernel in its own process (tests/fleet/imc_node.py), driven over stdin/stdout."""

    def __init__(self, spec: dict) -> None:
        import json
        import subprocess
        import sys
        from pathlib import Path

        self._json = json
        script = Path(__file__).parent / "fleet" / "imc_node.py"
        self.proc = subprocess.Popen([sys.executable, str(script), json.dumps(spec)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        line = self._readline(30)
        if line.strip() != "ready":
            self.close()
            raise AssertionError(f"kernel node did not start: {line!r} {self.proc.stderr.read()}")

    def _readline(self, timeout: float) -> str:
        import select
        ready, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not ready:
            raise AssertionError(f"kernel node silent for {timeout} s")
        return self.proc.stdout.readline()

    def __call__(self, timeout: float = 30, **cmd) -> dict:
        self.proc.stdin.write(self._json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        line = self._readline(timeout)
        if not line:
            raise AssertionError(f"kernel node died: {self.proc.stderr.read()}")
        return self._json.loads(line)

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()

    def close(self) -> None:
        end_child(self.proc)
