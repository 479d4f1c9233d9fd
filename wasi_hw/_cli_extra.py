"""Subcommands ``parity`` and ``bench``.

- ``wasi-hw parity DRIVER.wasm --backends sim,smbus2,usbip,pyusb,replay [--reference NAME]
  [--trace-dir DIR] [--manifest M] [--sim MODEL@ADDR] [--usb-sim MODEL] [--polls N]
  [--wrap BACKEND=COMMAND] [--json]`` — the same driver on every backend, traces compared
  (`wasi_hw._parity`); exit 1 on any difference.
- ``wasi-hw bench [--json] [--quick] [--out FILE] [--plot PNG] [--from JSON]`` — the
  benchmark suite (`wasi_hw._bench`):
  every figure a ratio against a baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ._argtypes import address as _addr
from ._argtypes import positive as _positive
from ._errors import UserError

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

    p = sub.add_parser("bench", help="benchmark the wasm path against native baselines",
                       description="Every figure is a ratio against a baseline measured in "
                                   "the same run (medians of many rounds after warm-up).")
    p.add_argument("--json", action="store_true", help="print the results as JSON")
    p.add_argument("--quick", action="store_true", help="few rounds (checks that it runs)")
    p.add_argument("--out", type=Path, metavar="FILE", help="also write the JSON here")
    p.add_argument("--plot", type=Path, metavar="PNG", help="also plot the ratios (matplotlib)")
    p.add_argument("--from", dest="from_json", type=Path, metavar="JSON",
                   help="do not measure: print / plot the results saved with --out")
    p.add_argument("--only", action="append", default=[], metavar="FIGURE",
                   help="run only this figure (repeatable)")
    p.set_defaults(func=_cmd_bench)


def _cmd_parity(args: argparse.Namespace) -> int:
    from ._parity import _parse_wrap, format_table, run_parity, setup_for

    if not args.driver.exists():
        raise UserError(f"{args.driver}: no such file")
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    setup = setup_for(args.driver, manifest=args.manifest, polls=args.polls, sim=args.sim,
                      usb_sim=args.usb_sim, i2c=args.i2c, allow=args.allow,
                      interval_ms=args.interval_ms)
    report = run_parity(setup, backends, reference=args.reference, trace_dir=args.trace_dir,
                        wrap=_parse_wrap(args.wrap), recorded=args.trace)
    if args.json:
        print(json.dumps(report.to_json()))
    else:
        print(format_table(report))
    return 0 if report.ok else 1


def _cmd_bench(args: argparse.Namespace) -> int:
    from ._bench import format_table, plot_ratios, run_bench

    if args.from_json:
        try:
            results = json.loads(args.from_json.read_text())
        except (OSError, ValueError) as err:
            raise UserError(f"{args.from_json}: cannot read bench results: {err}") from None
    else:
        results = run_bench(quick=args.quick, only=args.only or None,
                            progress=None if args.json else sys.stderr)
    if args.plot:
        plot_ratios(results, args.plot)
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")
    if args.json:
        print(json.dumps(results))
    else:
        print(format_table(results))
    return 0
