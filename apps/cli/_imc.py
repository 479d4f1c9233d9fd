"""``wasi-hw gateway`` and the NATS options of ``wasi-hw kernel run``.

`add_nats_options(parser)` adds ``--nats URL`` (repeatable: a cluster's servers) and
``--lattice NAME``; `nats_link(args)` connects a `wasi_hw.fleet.NatsBridge` for them (None
without ``--nats``: IMC stays local to the kernel). ``wasi-hw gateway`` serves module
services over HTTP (`wasi_hw.apps._gateway`) from a kernel file run in the same process
(``--kernel``) and/or other kernels over NATS (``--nats``), on loopback by default.
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
from pathlib import Path
from typing import Any

from wasi_hw import UserError

__all__ = ["register", "add_nats_options", "nats_link"]


def add_nats_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nats", action="append", default=[], metavar="URL",
                   help="join the lattice on this NATS server (repeatable: cluster members); "
                        "services and publications then cross kernels")
    p.add_argument("--lattice", default="default", metavar="NAME",
                   help="lattice name: the NATS subject prefix wasihw.NAME (default 'default')")


def nats_link(args: argparse.Namespace, role: str = "kernel") -> Any:
    if not getattr(args, "nats", None):
        return None
    from wasi_hw.fleet import NatsBridge

    return NatsBridge(args.nats, lattice=args.lattice,
                      name=f"wasi-hw-{role}-{os.getpid()}").start()


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("gateway", help="serve module services over HTTP (REST)",
                       description="Serve module services over HTTP: POST /services/NAME "
                                   "(body = request, reply = response body), GET /services.")
    p.add_argument("--kernel", type=Path, metavar="KERNEL.toml",
                   help="also run this kernel file here; its services are served directly")
    add_nats_options(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8080, help="TCP port (default 8080; 0 = any)")
    p.add_argument("--timeout-ms", type=int, default=1000, metavar="MS",
                   help="default wait for a reply (default 1000)")
    p.set_defaults(func=_cmd_gateway)


def _cmd_gateway(args: argparse.Namespace) -> int:
    from wasi_hw.kernel import AuditLog, ImcHub

    from .._gateway import Gateway

    if not args.kernel and not args.nats:
        raise UserError("gateway: give --kernel KERNEL.toml and/or --nats URL (nothing to serve)")
    link = nats_link(args, "gateway")
    kernel = None
    try:
        if args.kernel:
            kernel = _start_kernel(args.kernel, link)
            hub = kernel.imc
        else:
            hub = ImcHub(AuditLog(), remote=link)
        try:
            gw = Gateway(hub, host=args.host, port=args.port, timeout_ms=args.timeout_ms)
        except OSError as err:
            raise UserError(f"gateway: cannot listen on {args.host}:{args.port}: "
                            f"{err.strerror or err}") from None
        host, port = gw.address
        print(f"gateway: http://{host}:{port}/services", file=sys.stderr, flush=True)
        try:
            gw.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            gw.close()
    finally:
        if kernel is not None:
            kernel.stop()
            kernel.close()
        if link is not None:
            link.close()
    return 0


def _start_kernel(path: Path, link: Any) -> Any:
    """The kernel file's drivers started under a `Kernel` running on a daemon thread."""
    from wasi_hw.kernel import Kernel, load_kernel_file

    from .._backends import plan_backends

    plan = load_kernel_file(path)
    kernel = Kernel(plan_backends(plan), tick_ms=plan.tick_ms, imc_remote=link)
    for m in plan.manifests:
        kernel.add(m)
    for src, dst in plan.routes:
        kernel.route(src, dst)
    kernel.start()
    threading.Thread(target=kernel.run, name="kernel", daemon=True).start()
    return kernel
