"""``wasi-hw new driver NAME [--i2c | --usb] [--dir DIR]``: create a driver crate that builds and
passes its tests as created (see `wasi_hw.apps.new_driver`), then say how to build and test it."""

from __future__ import annotations

import argparse
from pathlib import Path

from .. import _scaffold

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    new = subparsers.add_parser("new", help="create a new driver crate",
                                description="Create a new driver crate.")
    sub = new.add_subparsers(dest="new_command", metavar="KIND", required=True)
    p = sub.add_parser("driver", help="a driver crate with tests",
                       description=__doc__.splitlines()[0].replace("``", ""))
    p.add_argument("name", metavar="NAME", help="crate directory and driver name, e.g. mcp9808")
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--i2c", dest="bus", action="store_const", const="i2c", default="i2c",
                      help="an I2C sensor driver (the default)")
    kind.add_argument("--usb", dest="bus", action="store_const", const="usb",
                      help="a USB device driver (bulk IN transfers)")
    p.add_argument("--dir", type=Path, default=Path("."), metavar="DIR",
                   help="where to create NAME/ (default: the current directory)")
    p.set_defaults(func=_new_driver)


def _new_driver(args: argparse.Namespace) -> int:
    crate = _scaffold.new_driver(args.dir, args.name, bus=args.bus)
    shown = crate if not crate.is_relative_to(Path.cwd()) else crate.relative_to(Path.cwd())
    print(f"created {shown}/ (Cargo.toml, manifest.toml, src/lib.rs, tests/)")
    print("next:")
    print(f"  wasi-hw build {shown}                 # → {shown}/build/wasm/{args.name}.wasm")
    print(f"  (cd {shown} && cargo test)           # native unit tests")
    print(f"  python -m pytest {shown}/tests        # under the kernel, simulated chip")
    return 0
