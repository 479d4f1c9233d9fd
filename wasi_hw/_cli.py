"""The `wasi-hw` command line.

Each subsystem owns its subcommands in its own module, which exposes
``register(subparsers)``; this module only assembles them and is the one place
where errors become output: a `UserError`, `HwError`, `WitxError` or `OSError` is
printed as one line on stderr with exit status 2 (1 for failed checks), never a
traceback. Ctrl-C exits 130; a closed output pipe (`| head`) ends quietly.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from ._errors import HwError, UserError

__all__ = ["main"]

# Modules that contribute subcommands; each has `register(subparsers)`.
_COMMAND_MODULES = (
    "wasi_hw.witx._cli",        # witx check / abi
    "wasi_hw._cli_gen",         # gen (binding generator)
    "wasi_hw._cli_build",       # build (Rust → wasm)
    "wasi_hw._cli_new",         # new driver (scaffold)
    "wasi_hw.host._cli",        # devices
    "wasi_hw.host._cli_usb",    # usbip serve
    "wasi_hw.host._cli_trace",  # trace show / record
    "wasi_hw.kernel._cli",      # run, compile, inspect, kernel run
    "wasi_hw._cli_extra",       # parity, bench, trace record (later issues)
)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="wasi-hw", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in _COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:  # not written yet: its commands are simply absent
                continue
            raise
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        print("wasi-hw: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `wasi-hw trace show F | head`: the reader left, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (UserError, HwError, OSError) as err:
        print(f"wasi-hw: {err}", file=sys.stderr)
        return 2
    except Exception as err:  # WitxError and friends carry their own formatting
        if type(err).__name__.endswith("Error") and type(err).__module__.startswith("wasi_hw"):
            print(f"wasi-hw: {err}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
