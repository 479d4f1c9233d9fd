"""``wasi-hw trace`` subcommands: ``show`` lists a trace, ``record`` / ``replay`` a ``run``.

- ``wasi-hw trace show FILE [--limit N] [--plot IMAGE]`` — the header, then one numbered
  line per record: time since start, bus kind, the request, and ``-> result`` or
  ``!! error-kind``; ``--plot`` also draws the operations on a timeline.
- ``wasi-hw trace record OUT.cbor -- run ARGS...`` — runs ``wasi-hw run ARGS...`` with a
  `recording` active, so every backend the run builds through `traced` is recorded to
  ``OUT.cbor``; exits with the run's status.
- ``wasi-hw trace replay TRACE.cbor -- run ARGS...`` — runs ``wasi-hw run ARGS...`` with
  every backend it builds replaced by a replay of the trace. Prints whether the driver
  asked exactly what was recorded; a divergence (both sides shown) or recorded requests
  left over exit 1. The polls run back to back (``--interval-ms 1``: the trace holds the
  timing) unless the command gives ``--interval-ms``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from wasi_hw import UserError
from wasi_hw.host import (ReplayDivergence, TraceWriter, format_record, read_trace, recording,
                          replaying)

__all__ = ["register"]


def register(subparsers: argparse._SubParsersAction) -> None:
    trace = subparsers.add_parser("trace", help="record and inspect bus traces")
    sub = trace.add_subparsers(dest="trace_command", metavar="SUBCOMMAND", required=True)

    show = sub.add_parser("show", help="list a trace's records")
    show.add_argument("file", type=Path, help="a .cbor trace")
    show.add_argument("--plot", type=Path, metavar="FILE",
                      help="also draw the bus operations on a timeline into FILE (.png, .svg)")
    show.add_argument("--limit", type=int, default=None, metavar="N",
                      help="show only the first N records")
    show.set_defaults(func=_show)

    record = sub.add_parser("record", help="record the bus traffic of a run",
                            description="wasi-hw trace record OUT.cbor -- run ARGS...")
    record.add_argument("out", type=Path, help="the trace file to write")
    record.add_argument("command", nargs=argparse.REMAINDER, help="-- run ARGS...")
    record.set_defaults(func=_record)

    replay = sub.add_parser("replay", help="run a driver against a recorded trace",
                            description="wasi-hw trace replay TRACE.cbor -- run ARGS...")
    replay.add_argument("trace", type=Path, help="the trace to replay")
    replay.add_argument("command", nargs=argparse.REMAINDER, help="-- run ARGS...")
    replay.set_defaults(func=_replay)


def _show(args: argparse.Namespace) -> int:
    trace = read_trace(args.file)
    h = trace.header
    out = sys.stdout
    out.write(f"{args.file}: wasi-hw trace v{h['version']}, created {h.get('created', '?')}, "
              f"{len(trace.records)} records\n")
    for kind, info in sorted(h.get("backends", {}).items()):
        buses = info.get("buses")
        out.write(f"  {kind} backend: {info.get('name', '?')}"
                  + (f" (buses: {', '.join(buses)})" if buses else "") + "\n")
    for key, value in sorted(h.get("meta", {}).items()):
        out.write(f"  {key}: {value}\n")
    records = trace.records if args.limit is None else trace.records[: max(0, args.limit)]
    width = len(str(len(trace.records)))
    for n, rec in enumerate(records, 1):
        t = rec.get("t_ns", 0) / 1e6
        out.write(f"{n:>{width}}  {t:12.3f} ms  {format_record(rec)}\n")
    if len(records) < len(trace.records):
        out.write(f"… {len(trace.records) - len(records)} more\n")
    if trace.truncated:
        out.write("(the file ends inside a record: the trace was cut short)\n")
    if args.plot is not None:
        from .._plot import plot_trace

        lanes = plot_trace(trace.records, args.plot, title=str(args.file))
        out.write(f"timeline of {len(trace.records)} operations on {lanes} lane(s) drawn in "
                  f"{args.plot}\n")
    return 0


def _run_command(args: argparse.Namespace, usage: str) -> list[str]:
    command = args.command[1:] if args.command[:1] == ["--"] else list(args.command)
    if not command or command[0] != "run":
        raise UserError(f"trace {args.trace_command} takes a run: {usage}")
    return command


def _record(args: argparse.Namespace) -> int:
    command = _run_command(args, "wasi-hw trace record OUT.cbor -- run ARGS...")
    from ._main import main  # the dispatcher runs the command as usual, inside the recording

    try:
        writer = TraceWriter(args.out, meta={"command": ["wasi-hw", *command]})
    except OSError as err:
        raise UserError(f"{args.out}: cannot write trace: {err.strerror or err}") from None
    with writer, recording(writer) as wrapped:
        status = main(command)
    if not wrapped:
        args.out.unlink(missing_ok=True)
        raise UserError("nothing recorded: the run built no backend through "
                        "wasi_hw.host.traced() (no trace written)")
    print(f"wasi-hw: recorded {writer.records} operations to {args.out}", file=sys.stderr)
    return status


def _replay(args: argparse.Namespace) -> int:
    command = _run_command(args, "wasi-hw trace replay TRACE.cbor -- run ARGS...")
    if not any(a == "--interval-ms" or a.startswith("--interval-ms=") for a in command):
        command += ["--interval-ms", "1"]   # the trace holds the timing: polls back to back
    trace = read_trace(args.trace)
    from ._main import main

    with replaying(trace) as replays:
        status = main(command)
    if not replays:
        raise UserError("nothing replayed: the run built no backend through "
                        "wasi_hw.host.traced()")
    for replay in replays:
        try:
            replay.done()
        except ReplayDivergence as err:
            print(f"wasi-hw: {err.message}", file=sys.stderr)
            return 1
    used = sum(r.replayed for r in replays)
    print(f"wasi-hw: replay matched: {used} recorded operations, no divergence", file=sys.stderr)
    return status
