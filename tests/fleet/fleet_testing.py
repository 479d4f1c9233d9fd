"""Helpers for the fleet tests: node processes, a manager, event collectors.

Imported by name (`from fleet_testing import ...`). Node processes are real ``wasi-hw node
run`` processes (own kernel, own AoT cache dir), stopped by PID at teardown. Waiting is on
registry watch events with deadlines (`wait_for`), never on sleeps.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from wasi_hw.fleet import Manager, connect, evt_subject, wait_for

HEARTBEAT, TTL = "0.2", "1.2"


class Nodes:
    """Starts ``wasi-hw node run`` processes; `close()` stops every one by PID."""

    def __init__(self, tmp: Path, url: str, lattice: str) -> None:
        self.tmp, self.url, self.lattice = tmp, url, lattice
        self.procs: dict[str, subprocess.Popen] = {}

    def start(self, name: str, *, kernel: str | None = None, extra: tuple[str, ...] = (),
              url: str | None = None) -> subprocess.Popen:
        args = [sys.executable, "-m", "wasi_hw", "node", "run", "--nats", url or self.url,
                "--name", name, "--lattice", self.lattice, "--heartbeat", HEARTBEAT,
                "--ttl", TTL, "--cache-dir", str(self.tmp / f"cache-{name}"), *extra]
        if kernel is not None:
            kf = self.tmp / f"{name}.kernel.toml"
            kf.write_text(kernel)
            args += ["--kernel", str(kf)]
        log = open(self.tmp / f"{name}.log", "ab")
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        self.procs[name] = p
        return p

    def log(self, name: str) -> str:
        return (self.tmp / f"{name}.log").read_text(errors="replace")

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        p = self.procs[name]
        os.kill(p.pid, sig)
        if sig in (signal.SIGKILL, signal.SIGTERM):
            p.wait(timeout=10)

    def close(self) -> None:
        for p in self.procs.values():
            if p.poll() is None:
                try:
                    os.kill(p.pid, signal.SIGCONT)
                    os.kill(p.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
                p.wait(timeout=10)


class Reports:
    """Collects a module's report events (``evt.<module>.report``) as (node, epoch, data)."""

    def __init__(self) -> None:
        self.items: list[tuple[str, int, Any]] = []
        self._changed = asyncio.Event()

    async def subscribe(self, nc: Any, lattice: str, module: str) -> "Reports":
        async def cb(msg: Any) -> None:
            body = json.loads(msg.data)
            self.items.append((body["node"], body["epoch"], body["data"]))
            self._changed.set()
        await nc.subscribe(evt_subject(lattice, module, "report"), cb=cb)
        return self

    async def until(self, predicate: Any, timeout: float = 15.0) -> None:
        async def run() -> None:
            while not predicate(self.items):
                self._changed.clear()
                await self._changed.wait()
        try:
            await asyncio.wait_for(run(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"reports did not reach the state in {timeout} s: "
                                 f"{self.items[-10:]}") from None


async def manager(url: str, lattice: str) -> tuple[Any, Manager]:
    nc = await connect(url)
    return nc, await Manager.open(nc, lattice)


def nodes_up(*names: str):
    """A `wait_for` predicate: every named node registered and up."""
    def pred(view: dict) -> bool:
        return all((view.get(f"node.{n}") or {}).get("state") == "up" for n in names)
    return pred


__all__ = ["Nodes", "Reports", "manager", "nodes_up", "wait_for", "HEARTBEAT", "TTL"]
