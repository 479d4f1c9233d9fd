"""IMC across nodes: a module deployed to a node serves its service over the lattice, and
after `fleet move` the target serves it, its state continuing (real nats-server, real
`wasi-hw node run` processes; the caller is a kernel-side `ImcHub` over a `NatsBridge`, as
the REST gateway calls). Waits are on registry events and call results with deadlines."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest

from wasi_hw import HwError
from wasi_hw.fleet import NatsBridge, running_on, write_counter
from wasi_hw.kernel import AuditLog, ImcHub

from fleet_testing import Nodes, manager, nodes_up, wait_for

LATTICE = "imc"
TIMEOUT = 0.5          # each call's deadline (s)


@pytest.fixture
def nodes(tmp_path, nats_server):
    n = Nodes(tmp_path, nats_server.url, LATTICE)
    yield n
    n.close()


class Caller:
    """Calls ``tally`` by name and records (value or error kind, start, seconds it took)."""

    def __init__(self, url: str) -> None:
        self.bridge = NatsBridge(url, lattice=LATTICE, name="test-caller").start()
        self.hub = ImcHub(AuditLog(), remote=self.bridge)
        self.log: list[tuple[int | str, float, float]] = []

    def call(self) -> int | str:
        t0 = time.monotonic()
        try:
            got: int | str = int.from_bytes(
                self.hub.call_bytes("caller", "tally", b"", TIMEOUT), "little")
        except HwError as err:
            got = err.kind
        self.log.append((got, t0, time.monotonic() - t0))
        return got

    def values(self) -> list[int]:
        return [v for v, _, _ in self.log if isinstance(v, int)]

    def close(self) -> None:
        self.bridge.close()


def test_a_service_follows_its_module_across_a_move(tmp_path, nats_server, nodes):
    manifest = write_counter(tmp_path / "mod", interval_ms=20, service="tally")
    caller = Caller(nats_server.url)

    async def go():
        nc, m = await manager(nats_server.url, LATTICE)
        nodes.start("n1")
        nodes.start("n2")
        await wait_for(m.registry, nodes_up("n1", "n2"), 20)
        await m.deploy(manifest, {"node": "n1"})
        await m.wait_for_module("counter", running_on("n1"), 20)
        # served across nodes as soon as the node reports it running
        assert [await asyncio.to_thread(caller.call) for _ in range(5)] == [1, 2, 3, 4, 5]

        # calls keep coming (retrying at once on a failure) while the module moves
        stop, enough = threading.Event(), threading.Event()
        moved = threading.Event()
        after: list[int | str] = []

        def keep_calling() -> None:
            while not stop.is_set():
                got = caller.call()
                if moved.is_set():
                    after.append(got)
                    if sum(isinstance(v, int) for v in after) >= 10:
                        enough.set()
                if not isinstance(got, int):
                    stop.wait(0.005)          # the caller's retry pace, not a synchronisation

        worker = threading.Thread(target=keep_calling, daemon=True)
        worker.start()
        try:
            await m.move("counter", "n2")
            rec = await m.wait_for_module("counter", running_on("n2"), 20)
            moved.set()
            assert await asyncio.to_thread(enough.wait, 20), caller.log[-20:]
        finally:
            stop.set()
            await asyncio.to_thread(worker.join, 10)
        assert rec["epoch"] == 2 and "with its state" in rec["note"]

        # the source is gone for good: the target alone serves, still counting on
        nodes.kill("n1")
        for _ in range(3):
            assert isinstance(await asyncio.to_thread(caller.call), int), caller.log[-5:]

        # `fleet stop`: the node withdraws the offer with the module
        await m.stop("counter")
        await m.wait_for_module("counter", lambda rec, st: st.get("state") == "stopped", 20)
        assert await asyncio.to_thread(caller.call) == "unavailable"
        caller.log.pop()
        await nc.close()

    try:
        asyncio.run(go())
    finally:
        caller.close()

    values = caller.values()
    # the counter continues on n2 where it stopped on n1: no gap, no repeat
    assert values == list(range(1, len(values) + 1)), values
    assert len(values) >= 5 + 10 + 3
    # failures are the hand-over window only: no provider for a moment (or a request that
    # reached the source as it withdrew), one window, never past a call's deadline
    kinds = [v for v, _, _ in caller.log]
    failed = [i for i, v in enumerate(kinds) if not isinstance(v, int)]
    assert all(kinds[i] in ("unavailable", "timeout") for i in failed), set(kinds)
    if failed:
        assert failed == list(range(failed[0], failed[-1] + 1)), failed
        last = caller.log[failed[-1]]
        window = last[1] + last[2] - caller.log[failed[0]][1]
        assert window < 5.0, window
    assert max(t for _, _, t in caller.log) < TIMEOUT + 1.0   # never past the deadline
