"""``wasi-hw bench [--json] [--quick] [--out FILE] [--plot PNG] [--from JSON] [--only FIGURE]``:
the benchmark suite (`wasi_hw.apps.run_bench`); every figure a ratio against a baseline
measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from wasi_hw import UserError

from .._bench import format_table, plot_ratios, run_bench

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
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


def _cmd_bench(args: argparse.Namespace) -> int:
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
