"""``wasi-hw parity DRIVER.wasm --backends sim,smbus2,usbip,pyusb,replay [--reference NAME]
[--trace-dir DIR] [--manifest M] [--sim MODEL@ADDR] [--usb-sim MODEL] [--polls N]
[--wrap BACKEND=COMMAND] [--json]``: the same driver on every backend, traces compared
(`wasi_hw.apps.run_parity`); exit 1, naming the first difference, when any leg differs —
or when a leg faulted, was quarantined, did no bus I/O or produced no reading, so that
agreeing proves nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from wasi_hw import UserError

from .._parity import format_table, parse_wrap, run_parity, setup_for
from ._argtypes import address as _addr
from ._argtypes import positive as _positive

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("parity", help="run one driver on several backends and compare",
                       description="Run the same driver .wasm on each backend (and a native "
                                   "reference driver), compare the normalised bus traces.")
    p.add_argument("driver", type=Path, metavar="DRIVER.wasm")
    p.add_argument("--backends", default="sim,replay",
                   help="comma-separated, in order; the first is the baseline "
                        "(sim, smbus2, usbip, pyusb, replay; default sim,replay)")
    p.add_argument("--reference", metavar="NAME", help="also run the native Python reference "
                   "driver NAME (bme280, sht3x) on the simulated devices")
    p.add_argument("--trace-dir", type=Path, metavar="DIR", help="keep each leg's trace here")
    p.add_argument("--trace", type=Path, metavar="FILE",
                   help="a recorded trace for the replay leg (default: the first leg's)")
    p.add_argument("--manifest", type=Path, metavar="TOML",
                   help="the driver's manifest (default: drivers/<name>/manifest.toml)")
    p.add_argument("--sim", action="append", default=[], metavar="MODEL@ADDR",
                   help="simulated I2C device (default: the model named like the driver)")
    p.add_argument("--usb-sim", action="append", default=[], metavar="MODEL",
                   help="simulated USB device (default: the model matching the grant)")
    p.add_argument("--i2c", default="i2c-1", metavar="BUS", help="bus for --allow (no manifest)")
    p.add_argument("--allow", type=_addr, action="append", default=[], metavar="ADDR",
                   help="ad-hoc grant instead of a manifest")
    p.add_argument("--polls", type=_positive, default=2, metavar="N", help="polls per leg (2)")
    p.add_argument("--interval-ms", type=_positive, default=10, metavar="MS",
                   help="poll interval in every leg (10)")
    p.add_argument("--wrap", action="append", default=[], metavar="BACKEND=COMMAND",
                   help="run BACKEND's leg in a child process under COMMAND "
                        "(e.g. smbus2=umockdev-wrapper)")
    p.add_argument("--json", action="store_true", help="print the report as one JSON object")
    p.set_defaults(func=_cmd_parity)


def _cmd_parity(args: argparse.Namespace) -> int:
    if not args.driver.exists():
        raise UserError(f"{args.driver}: no such file")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    setup = setup_for(args.driver, manifest=args.manifest, polls=args.polls, sim=args.sim,
                      usb_sim=args.usb_sim, i2c=args.i2c, allow=args.allow,
                      interval_ms=args.interval_ms)
    report = run_parity(setup, backends, reference=args.reference, trace_dir=args.trace_dir,
                        wrap=parse_wrap(args.wrap), recorded=args.trace)
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        print(format_table(report))
    if not report.ok:
        raise UserError(f"parity: {_why(report)}", exit_code=1)
    return 0


def _why(report) -> str:
    """The first reason the legs do not match, one line."""
    for leg in report.legs:
        if leg.failure:
            return f"{leg.backend} leg failed: {leg.failure.splitlines()[0]}"
    if not report.differences:
        return "; ".join(f"{leg} leg proves nothing: {why}"
                         for leg, why in report.problems.items())
    first = report.differences[0]
    more = len(report.differences) - 1
    return f"{first}" + (f" (and {more} more difference(s))" if more else "")
