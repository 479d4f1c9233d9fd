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
import re
import sys

from wasi_hw import HwError, UserError
from wasi_hw.witx import WitxError

from ..reference import DriverError
from . import (_bench, _build, _devices, _fleet, _gen, _imc, _new, _parity, _run, _system,
               _trace, _usbip, _witx)

__all__ = ["main", "COMMANDS"]

#: the command groups, in help order (each has ``register(subparsers)``)
COMMANDS = (
    _witx,      # witx check / abi
    _gen,       # gen (binding generator)
    _build,     # build (Rust → wasm)
    _new,       # new driver (a crate that builds and passes its tests as created)
    _devices,   # devices
    _usbip,     # usbip serve / list
    _trace,     # trace show / record / replay
    _run,       # run, compile, inspect, kernel run
    _parity,    # parity
    _bench,     # bench
    _imc,       # gateway (module services over HTTP)
    _fleet,     # node run; fleet deploy/ls/move/stop/update/logs/up/bench
    _system,    # doctor, demo, service install
)

#: failures of the layers below that are reported to the person as one line (exit 2)
_REPORTED = (HwError, WitxError, DriverError, OSError)


class _PlainHelp(argparse.HelpFormatter):
    """Help for a person: descriptions written as docstrings lose their reStructuredText
    (``literal``, `name`) markup."""

    def _format_text(self, text: str) -> str:
        text = re.sub(r"``([^`]+)``", r"\1", text)
        text = re.sub(r"`([^`]+)`", r"\1", text)
        return super()._format_text(text)

    def _expand_help(self, action: argparse.Action) -> str:
        return self._format_text(super()._expand_help(action)).strip()


class _Parser(argparse.ArgumentParser):
    """Every parser and subparser of the command line formats its help plainly."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("formatter_class", _PlainHelp)
        super().__init__(*args, **kwargs)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="wasi-hw", description=__doc__.splitlines()[0])
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
