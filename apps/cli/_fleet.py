"""`wasi-hw node run` and `wasi-hw fleet deploy|ls|move|stop|update|logs|up`.

Every command takes ``--nats URL`` (default ``$WASI_HW_NATS`` or nats://127.0.0.1:4222),
``--lattice`` (default ``$WASI_HW_LATTICE`` or "default") and the lattice credentials
(``--user``/``--password``, ``--nkeys-seed``, ``--creds``, ``--tls-ca``/``--tls-cert``/
``--tls-key``). ``node run`` may take them from a kernel file's ``[kernel]`` table
(``nats``, ``name``, ``lattice``), whose simulated devices or USB/IP server become the node's
backends. Failures are `UserError`s (one line, exit 2), never tracebacks.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from wasi_hw import UserError

__all__ = ["register"]

DEFAULT_NATS = "nats://127.0.0.1:4222"


def _common(p: argparse.ArgumentParser, *, nats_default: bool = True) -> None:
    p.add_argument("--nats", default=os.environ.get("WASI_HW_NATS") or (DEFAULT_NATS if nats_default else None),
                   help="NATS server URL(s), comma-separated (default $WASI_HW_NATS or %(default)s)")
    p.add_argument("--lattice", default=os.environ.get("WASI_HW_LATTICE"),
                   help="lattice name (default $WASI_HW_LATTICE or 'default')")
    p.add_argument("--user", default=os.environ.get("WASI_HW_NATS_USER"))
    p.add_argument("--password", default=os.environ.get("WASI_HW_NATS_PASSWORD"))
    p.add_argument("--nkeys-seed", help="nkeys seed file")
    p.add_argument("--creds", help="NATS .creds file (JWT + nkey)")
    p.add_argument("--tls-ca", help="CA bundle to verify the server's TLS certificate")
    p.add_argument("--tls-cert", help="client certificate (mutual TLS)")
    p.add_argument("--tls-key", help="client key (mutual TLS)")
    p.add_argument("--js-domain", help="JetStream domain of the lattice's registry (from a leaf "
                   "server: the hub's)")
    p.add_argument("--replicas", type=int, default=1, help="replicas of the lattice's buckets "
                   "when this command creates them (3 on a 3-server cluster)")


def _creds(args: argparse.Namespace) -> Any:
    from wasi_hw.fleet import Credentials

    return Credentials(user=args.user, password=args.password, nkeys_seed=args.nkeys_seed,
                       creds=args.creds, tls_ca=args.tls_ca, tls_cert=args.tls_cert,
                       tls_key=args.tls_key)


def register(sub: argparse._SubParsersAction) -> None:
    n = sub.add_parser("node", help="run this machine as a node of a lattice")
    nsub = n.add_subparsers(dest="node_command", metavar="ACTION")
    p = nsub.add_parser("run", help="join a lattice and run what its registry assigns here")
    _common(p, nats_default=False)
    p.add_argument("--name", help="this node's name (default: the kernel file's, else the host name)")
    p.add_argument("--kernel", type=Path, help="kernel file: [kernel] nats/name/lattice and "
                   "the node's devices ([[sim.*]], usbip)")
    p.add_argument("--cache-dir", type=Path, help="AoT cache directory")
    p.add_argument("--heartbeat", type=float, default=1.0, help="seconds between heartbeats")
    p.add_argument("--ttl", type=float, default=4.0, help="seconds of silence before the node is lost")
    p.add_argument("--arch", help="advertise this architecture (default: this machine's)")
    p.add_argument("--checkpoint", type=float, default=0.0, help="snapshot stateful modules "
                   "every this many seconds (resumed from after a node loss; 0: never)")
    p.add_argument("--edge", action="store_true", help="keep running modules while cut off from "
                   "the registry (they are then never re-placed elsewhere)")
    p.set_defaults(func=_node_run)

    f = sub.add_parser("fleet", help="deploy, list, move, stop and update modules on a lattice")
    fsub = f.add_subparsers(dest="fleet_command", metavar="ACTION")
    p = fsub.add_parser("deploy", help="deploy a module (manifest + its wasm) to a node")
    _common(p)
    p.add_argument("manifest", type=Path)
    p.add_argument("--node", help="on this node")
    p.add_argument("--bus", help="on a node with this I2C bus, e.g. i2c-1")
    p.add_argument("--usb", help="on a node with this USB device, VID:PID e.g. 1209:0001")
    p.add_argument("--arch", help="on a node of this architecture, e.g. aarch64")
    p.add_argument("--wait", type=float, default=10.0, help="seconds to wait for it to run (0: don't)")
    p.set_defaults(func=_deploy)
    p = fsub.add_parser("ls", help="nodes and modules")
    _common(p)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_ls)
    p = fsub.add_parser("move", help="move a module (with its state when it holds no hardware)")
    _common(p)
    p.add_argument("module")
    p.add_argument("--to", required=True, help="target node")
    p.add_argument("--wait", type=float, default=10.0)
    p.set_defaults(func=_move)
    p = fsub.add_parser("stop", help="stop a module")
    _common(p)
    p.add_argument("module")
    p.set_defaults(func=_stop)
    p = fsub.add_parser("update", help="roll out a new version (the old keeps running if it fails)")
    _common(p)
    p.add_argument("manifest", type=Path)
    p.add_argument("--wait", type=float, default=10.0)
    p.set_defaults(func=_update)
    p = fsub.add_parser("logs", help="a module's recent log lines, from the node running it")
    _common(p)
    p.add_argument("module")
    p.set_defaults(func=_logs)
    p = fsub.add_parser("up", help="a local nats-server and N node processes (loopback)")
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--port", type=int, default=4222, help="NATS client port on 127.0.0.1")
    p.add_argument("--lattice", default=os.environ.get("WASI_HW_LATTICE") or "default")
    p.add_argument("--dir", type=Path, help="work directory (store, node files); default a temp dir")
    p.set_defaults(func=_up)
    p = fsub.add_parser("bench", help="fleet benchmarks on a local nats-server and 3 nodes")
    p.add_argument("--quick", action="store_true", help="few rounds: proves it runs")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_bench)


def _lattice(args: argparse.Namespace) -> str:
    from wasi_hw.fleet import DEFAULT_LATTICE, check_lattice

    return check_lattice(args.lattice or DEFAULT_LATTICE)


def _node_run(args: argparse.Namespace) -> int:
    import platform
    import socket

    from wasi_hw.fleet import NodeAgent, NodeConfig
    from wasi_hw.kernel import Backends, load_kernel_file

    from .._backends import plan_backends

    settings: dict[str, str] = {}
    backends = Backends()
    tick = 5.0
    if args.kernel is not None:
        plan = load_kernel_file(args.kernel)
        settings = dict(plan.node)
        backends = plan_backends(plan)
        tick = plan.tick_ms
    url = args.nats or settings.get("nats")
    if not url:
        raise UserError("node run: no NATS URL (--nats, $WASI_HW_NATS or the kernel file's "
                        "[kernel] nats)")
    name = args.name or settings.get("name") or socket.gethostname().split(".")[0].lower()
    lattice = args.lattice or settings.get("lattice") or "default"
    cfg = NodeConfig(nats=url, name=name, lattice=lattice, creds=_creds(args),
                     cache_dir=args.cache_dir, heartbeat_s=args.heartbeat, ttl_s=args.ttl,
                     tick_ms=tick, arch=args.arch or platform.machine(), replicas=args.replicas,
                     js_domain=args.js_domain, edge=args.edge, checkpoint_s=args.checkpoint)
    agent = NodeAgent(cfg, backends)
    signal.signal(signal.SIGTERM, lambda *_: agent.stop())
    import faulthandler
    faulthandler.register(signal.SIGUSR1)     # `kill -USR1 PID`: where is each thread now
    print(f"node {name}: lattice {lattice} at {url}; offers buses {agent.offers['buses'] or '-'}, "
          f"USB {agent.offers['usb'] or '-'}", file=sys.stderr, flush=True)
    try:
        agent.run()
    except KeyboardInterrupt:
        agent.stop()
    except UserError:
        raise
    except Exception as err:      # anything else from the engine: one line, not a traceback
        raise UserError(f"node {name}: {type(err).__name__}: {err}") from None
    return 0


async def _with_manager(args: argparse.Namespace, fn: Any) -> Any:
    from wasi_hw.fleet import Manager, connect

    nc = await connect(args.nats, _creds(args), name="wasi-hw fleet")
    try:
        manager = await Manager.open(nc, _lattice(args), replicas=args.replicas,
                                     domain=args.js_domain)
        return await fn(manager)
    finally:
        await nc.close()


def _run(args: argparse.Namespace, fn: Any) -> Any:
    return asyncio.run(_with_manager(args, fn))


def _deploy(args: argparse.Namespace) -> int:
    from wasi_hw.fleet import running_on

    rule = {"node": args.node, "bus": args.bus, "usb": args.usb, "arch": args.arch}

    async def go(m: Any) -> None:
        rec = await m.deploy(args.manifest, rule)
        print(f"deployed {rec['name']} (wasm {rec['wasm'][:12]}…) to {rec['node']} at epoch {rec['epoch']}")
        if args.wait > 0:
            await _wait(m, rec["name"], running_on(rec["node"]), args.wait)
            print(f"{rec['name']} is running on {rec['node']}")

    _run(args, go)
    return 0


async def _wait(m: Any, name: str, pred: Any, timeout: float) -> dict:
    try:
        return await m.wait_for_module(name, pred, timeout)
    except TimeoutError:
        st = (await m.listing())["modules"]
        mine = next((x for x in st if x["name"] == name), {})
        raise UserError(f"{name} did not reach the state in {timeout} s: record "
                        f"{json.dumps({k: mine.get(k) for k in ('node', 'epoch', 'note', 'move')})}, "
                        f"status {json.dumps(mine.get('status'))}") from None


def _ls(args: argparse.Namespace) -> int:
    listing = _run(args, lambda m: m.listing())
    if args.json:
        print(json.dumps(listing, indent=2, sort_keys=True, default=repr))
        return 0
    print(f"{'NODE':<14}{'STATE':<8}{'ARCH':<9}{'BUSES':<16}USB")
    for n in listing["nodes"]:
        print(f"{n['name']:<14}{n.get('state', '?'):<8}{n.get('arch', '?'):<9}"
              f"{','.join(n.get('buses', [])) or '-':<16}{','.join(n.get('usb', [])) or '-'}")
    print()
    print(f"{'MODULE':<14}{'NODE':<14}{'STATE':<12}{'EPOCH':>5} {'RESTARTS':>8}  LAST REPORT / NOTE")
    for mod in listing["modules"]:
        st = mod.get("status") or {}
        state = st.get("state") or ("stopped" if mod.get("desired") != "running"
                                    else ("moving" if mod.get("move") else "pending"))
        last = st.get("last_report")
        text = json.dumps(last, default=repr) if last is not None else (mod.get("note") or "")
        if len(text) > 60:
            text = text[:57] + "..."
        print(f"{mod['name']:<14}{mod.get('node') or '-':<14}{state:<12}{mod.get('epoch', 0):>5} "
              f"{st.get('restarts', 0):>8}  {text}")
    return 0


def _move(args: argparse.Namespace) -> int:
    from wasi_hw.fleet import running_on

    async def go(m: Any) -> None:
        await m.move(args.module, args.to)
        print(f"moving {args.module} to {args.to}")
        if args.wait > 0:
            rec = await _wait(m, args.module, running_on(args.to), args.wait)
            print(f"{args.module} runs on {args.to} at epoch {rec['epoch']} ({rec.get('note')})")

    _run(args, go)
    return 0


def _stop(args: argparse.Namespace) -> int:
    rec = _run(args, lambda m: m.stop(args.module))
    print(f"stopped {rec['name']} (epoch {rec['epoch']})")
    return 0


def _update(args: argparse.Namespace) -> int:
    async def go(m: Any) -> int:
        rec = await m.update(args.manifest)
        print(f"updating {rec['name']} on {rec['node']} to wasm {rec['update']['wasm'][:12]}…")
        if args.wait <= 0:
            return 0
        done = await _wait(m, rec["name"], lambda r, s: not r.get("update"), args.wait)
        print(f"{rec['name']}: {done.get('note')}")
        return 0 if done["wasm"] == rec["update"]["wasm"] else 1

    return _run(args, go)


def _logs(args: argparse.Namespace) -> int:
    for line in _run(args, lambda m: m.logs(args.module)):
        print(line)
    return 0


def _up(args: argparse.Namespace) -> int:
    from .._fleet_up import fleet_up

    return fleet_up(args.nodes, port=args.port, lattice=args.lattice, workdir=args.dir)


def _bench(args: argparse.Namespace) -> int:
    from .._bench_fleet import format_fleet_table, run_fleet_bench

    results = run_fleet_bench(quick=args.quick,
                              progress=lambda s: print(f"... {s}", file=sys.stderr, flush=True))
    print(json.dumps(results, indent=2) if args.json else format_fleet_table(results))
    return 0
