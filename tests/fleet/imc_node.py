"""A kernel process for the IMC tests: ``python imc_node.py SPEC_JSON``.

SPEC: {"nats": url | [urls], "lattice": str, "modules": [{"name", "wat", "imc": {...}}]}.
Starts a `Kernel` with a `NatsBridge`, adds the .wat modules (tests/kernel/wat), prints
``ready`` and then serves. Commands arrive as JSON lines on stdin and are run on the kernel
thread against the `imc_client.wat` module named in each (``{"op": "call", "module": m,
"service": s, "data": hex, "cap": n, "timeout_ms": t}``, ``publish``, ``subscribe``,
``receive``, ``bench`` (N calls, prints µs per call), ``peek`` (module memory), ``audit``,
``connected``); each prints one JSON line. Between
commands the kernel polls its modules. EOF on stdin ends the process.
"""

from __future__ import annotations

import json
import select
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "kernel"), str(HERE.parent)]

from wasi_hw.fleet import NatsBridge  # noqa: E402
from wasi_hw.kernel import Backends, Kernel  # noqa: E402

from imc_testing import Client, imc_manifest  # noqa: E402
from kernel_testing import wat  # noqa: E402


def main() -> int:
    spec = json.loads(sys.argv[1])
    bridge = NatsBridge(spec["nats"], lattice=spec.get("lattice", "test"),
                        name=spec.get("node", "node")).start()
    kernel = Kernel(Backends(), tick_ms=2, imc_remote=bridge)
    for m in spec["modules"]:
        kernel.add(imc_manifest(m["name"], **m.get("imc", {})), wat(m["wat"]))
    kernel.start()
    print("ready", flush=True)
    out = sys.stdout
    while True:
        ready, _, _ = select.select([sys.stdin], [], [], 0.005)
        if not ready:
            kernel.step()
            continue
        line = sys.stdin.readline()
        if not line:
            break
        cmd = json.loads(line)
        op = cmd["op"]
        t0 = time.monotonic()
        if op == "audit":
            out.write(json.dumps({"entries": list(kernel.audit.for_driver(cmd["module"]))},
                                 default=str) + "\n")
            out.flush()
            continue
        if op == "connected":
            out.write(json.dumps({"connected": bridge.connected}) + "\n")
            out.flush()
            continue
        c = Client(kernel.slots[cmd["module"]])
        if op == "peek":
            res = {"data": c.mem.read(cmd["addr"], cmd["n"]).hex()}
        elif op == "call":
            kind, data = c.call(cmd["service"], bytes.fromhex(cmd.get("data", "")),
                                cmd.get("cap", 4096), cmd.get("timeout_ms", 0))
            res = {"kind": kind, "data": data.hex() if data is not None else None}
        elif op == "publish":
            res = {"kind": c.publish(cmd["topic"], bytes.fromhex(cmd["data"]))}
        elif op == "subscribe":
            kind, handle = c.subscribe(cmd["topic"])
            res = {"kind": kind, "handle": handle}
        elif op == "receive":
            kind, data = c.receive(cmd["handle"], cmd.get("cap", 4096))
            res = {"kind": kind, "data": data.hex() if data is not None else None}
        elif op == "bench":
            payload = bytes([1]) * cmd["size"]
            c.call(cmd["service"], payload)
            n = cmd["n"]
            inst = c.slot.instance
            start = time.perf_counter()
            mem = inst.mem
            for _ in range(n):
                mem.write(201, b"\x01")
                inst.call("poll")
            res = {"us": (time.perf_counter() - start) / n * 1e6, "kind": c.call(cmd["service"], payload)[0]}
        else:
            res = {"error": f"unknown op {op}"}
        res["seconds"] = time.monotonic() - t0
        out.write(json.dumps(res) + "\n")
        out.flush()
    kernel.close()
    bridge.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
