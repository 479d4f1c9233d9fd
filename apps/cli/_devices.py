"""``wasi-hw devices``: the I2C buses this machine has.

Lists every ``/dev/i2c-N`` with its adapter name from sysfs and what it can do (a full I2C
controller, or SMBus-only — from ``I2C_FUNCS``; "no access" when the node cannot be
opened), or says that there are none and how to get them. ``--json`` prints a list of
``{"bus", "path", "adapter", "kind"}`` objects instead. Exit status 0 either way.
"""

from __future__ import annotations

import argparse
import json

from wasi_hw import HwError
from wasi_hw.host import Smbus2I2cBackend, linux_i2c_buses

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser("devices", help="list the I2C buses of this machine",
                              description=__doc__.splitlines()[0])
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=_devices)


def _kind(backend: Smbus2I2cBackend, bus: str) -> str:
    try:
        funcs = backend.funcs(bus)
    except HwError as err:
        return "no access" if err.kind == "access" else f"unavailable ({err.kind})"
    return "i2c" if funcs & 0x1 else "smbus-only"


def _devices(args: argparse.Namespace) -> int:
    found = linux_i2c_buses()
    backend = Smbus2I2cBackend([name for name, _, _ in found])
    try:
        rows = [{"bus": name, "path": path, "adapter": adapter, "kind": _kind(backend, name)}
                for name, path, adapter in found]
    finally:
        backend.close()
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        print("no I2C buses found: no /dev/i2c-* device nodes "
              "(load the i2c-dev kernel module, e.g. `modprobe i2c-dev`, and enable the bus)")
        return 0
    width = max(len(r["path"]) for r in rows)
    print("I2C buses:")
    for r in rows:
        print(f"  {r['path']:<{width}}  {r['kind']:<10}  {r['adapter'] or '(unknown adapter)'}")
    return 0
