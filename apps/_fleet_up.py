"""`wasi-hw fleet up`: a whole lattice on this machine, for trying the fleet out.

Contract: `fleet_up(n)` starts a `nats-server` (JetStream, loopback, ``--port``) and ``n``
node processes (``wasi-hw node run``), each with a kernel file of simulated devices: node1
has the BME280 and SHT3x on i2c-1, node2 the LCD (and an SHT3x, so the sensors can move
there), the others none (compute only). It prints how to point `wasi-hw fleet` at it, then
waits; Ctrl-C (or SIGTERM) stops the nodes and the server, by PID. Each node's PID is in
``<dir>/node<i>.pid`` and its output in ``<dir>/node<i>.log``. `node_kernel_file(i)`
gives a node's kernel file text (tests use the same).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from wasi_hw.fleet import NatsServer

__all__ = ["fleet_up", "node_kernel_file", "spawn_node", "stop_groups"]

_DEVICES = {
    1: [("bme280", 0x76, "{ temperature_c = 21.5, pressure_pa = 100800.0, humidity_pct = 48.0 }"),
        ("sht3x", 0x44, "{ temperature_c = 21.8, humidity_pct = 47.0 }")],
    2: [("lcd", 0x27, "{}"), ("sht3x", 0x44, "{ temperature_c = 19.0, humidity_pct = 55.0 }")],
}


def node_kernel_file(index: int, url: str, lattice: str) -> str:
    lines = ["# a node of `wasi-hw fleet up`", "[kernel]", "tick_ms = 5",
             f'nats = "{url}"', f'name = "node{index}"', f'lattice = "{lattice}"']
    for model, address, params in _DEVICES.get(index, []):
        lines += ["", "[[sim.i2c]]", f'model = "{model}"', 'bus = "i2c-1"',
                  f"address = {address:#04x}", f"params = {params}"]
    return "\n".join(lines) + "\n"


def spawn_node(kernel_file: Path, *extra: str, log: Path | None = None) -> subprocess.Popen:
    """A ``wasi-hw node run --kernel FILE`` process (its output to ``log``)."""
    out = open(log, "ab") if log is not None else subprocess.DEVNULL
    return subprocess.Popen([sys.executable, "-m", "wasi_hw", "node", "run", "--kernel",
                             str(kernel_file), *extra], stdout=out, stderr=subprocess.STDOUT,
                            start_new_session=True)


def fleet_up(nodes: int, *, port: int = 4222, lattice: str = "default",
             workdir: Path | None = None) -> int:
    work = Path(workdir or tempfile.mkdtemp(prefix="wasihw-fleet-"))
    work.mkdir(parents=True, exist_ok=True)
    server = NatsServer(port=port, jetstream=True, workdir=work / "nats").start()
    procs: list[subprocess.Popen] = []
    stop = False

    def on_term(*_: object) -> None:
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, on_term)
    try:
        for i in range(1, nodes + 1):
            kf = work / f"node{i}.kernel.toml"
            kf.write_text(node_kernel_file(i, server.url, lattice))
            procs.append(spawn_node(kf, "--cache-dir", str(work / f"cache{i}"),
                                    log=work / f"node{i}.log"))
            (work / f"node{i}.pid").write_text(f"{procs[-1].pid}\n")
        print(f"lattice {lattice!r}: nats-server at {server.url} (pid {server.pid}), "
              f"{nodes} nodes (pids {' '.join(str(p.pid) for p in procs)}); logs in {work}",
              flush=True)
        print(f"  export WASI_HW_NATS={server.url} WASI_HW_LATTICE={lattice}", flush=True)
        print("  wasi-hw fleet ls        (Ctrl-C here stops everything)", flush=True)
        while not stop:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        stop_groups(procs, grace=5)
        server.close()
    return 0


def stop_groups(procs: list[subprocess.Popen], *, grace: float) -> None:
    """SIGTERM each child's process group (started with ``start_new_session``), then SIGKILL
    what is still there after ``grace`` seconds; returns when every child has been reaped."""
    for p in procs:
        if p.poll() is None:
            os.killpg(p.pid, signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
