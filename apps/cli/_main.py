"""The `wasi-hw` command line: one parser, one error boundary.

Every command group is a module of this package exposing ``register(subparsers)``;
`COMMANDS` lists them explicitly, in help order. This module is the one place where errors
become output: a `UserError` prints as one line on stderr and exits with its ``exit_code``;
the failures the layers below report to a person (`HwError`, `WitxError`, a reference
driver's `DriverError`, `OSError`) become a `UserError` here (exit 2). Anything else is a bug
and keeps its traceback. Ctrl-C exits 130; a closed output pipe (`| head`) ends quietly.
Every non-zero exit prints why on stderr.
"""

from __future__ import annotations

import argparse
import os
import sys

from wasi_hw import HwError, UserError
from wasi_hw.witx import WitxError

from ..reference import DriverError
from . import _bench, _build, _devices, _fleet, _gen, _imc, _parity, _run, _trace, _usbip, _witx

__all__ = ["main", "COMMANDS"]

#: the command groups, in help order (each has ``register(subparsers)``)
COMMANDS = (
    _witx,      # witx check / abi
    _gen,       # gen (binding generator)
    _build,     # build (Rust → wasm)
    _devices,   # devices
    _usbip,     # usbip serve / list
    _trace,     # trace show / record / replay
    _run,       # run, compile, inspect, kernel run
    _parity,    # parity
    _bench,     # bench
    _imc,       # gateway (module services over HTTP)
    _fleet,     # node run; fleet deploy/ls/move/stop/update/logs/up/bench
)

#: failures of the layers below that are reported to the person as one line (exit 2)
_REPORTED = (HwError, WitxError, DriverError, OSError)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wasi-hw", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


def _fail(err: UserError) -> int:
    print(f"wasi-hw: {err}", file=sys.stderr, flush=True)
    return err.exit_code


def main(argv: list[str] | None = None) -> int:
    """Run one ``wasi-hw`` command line; returns the exit status."""
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return _fail(UserError("no command given"))
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("wasi-hw: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `wasi-hw trace show F | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except UserError as err:
        return _fail(err)
    except _REPORTED as err:
        return _fail(UserError(str(err)))
