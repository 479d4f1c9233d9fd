"""The kernel's commands: ``run``, ``compile``, ``inspect``, ``kernel run``.

- ``wasi-hw run DRIVER.wasm --i2c i2c-1 --allow 0x76 [--sim bme280@0x76] [--config k=v]
  [--polls N] [--json]`` runs one driver and prints each reading (``--json``: the reading as
  one JSON object per line on stdout); logs, state changes and denials go to stderr. Without
  ``--sim`` the real ``/dev/i2c-N`` is used (smbus2). ``DRIVER`` may also be a manifest
  ``.toml`` (its grants, config and limits are used). Exit 0 when every poll succeeded,
  1 when the driver faulted or reported errors. ``--usb-sim MODEL`` plugs in a simulated USB
  device; ``--usbip HOST[:PORT]`` takes the USB devices a USB/IP server exports instead (a
  Linux ``usbipd`` on another machine, or ``wasi-hw usbip serve``) — the manifest's USB
  grants still decide what the driver may touch.
- ``wasi-hw compile DRIVER.wasm [--target TRIPLE]`` fills the AoT cache (prints the entry
  and the time); with ``--target``, entries for that machine (its own fingerprint), for
  copying there — refused in one line when this wasmtime build has no compiler for it
  (wasmtime-py's wheels carry only their own architecture's).
- ``wasi-hw inspect DRIVER.wasm``: imports/exports, reachable capabilities, timings.
- ``wasi-hw kernel run kernel.toml [--rounds N | --duration S | --forever] [--audit FILE]``:
  every driver of the kernel file at once, readings (a repeat of a driver's previous reading
  is not printed again, except with ``--json``) and state changes as they happen;
  Ctrl-C stops cleanly (exit 130); ``--watch`` hot-updates a driver whose .wasm changes. Ends after the file's ``rounds`` (default 5) unless told otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import signal
import sys
import time
from pathlib import Path
from typing import Any

from wasi_hw import UserError
from wasi_hw.kernel import (AotCache, AuditLog, Backends, Kernel, KernelEngine, SimDevice,
                            adhoc_manifest, inspect_wasm, load_kernel_file, load_manifest,
                            parse_usbip, run_driver, stop_on_signals)

from .._backends import (parse_sim_spec, plan_backends, real_backends, sim_i2c, sim_usb,
                         usbip_usb)
from .._build import build, find_root
from .._journal import LogStyle
from ._argtypes import address as _addr, key_value as _kv, positive as _positive

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="run one driver and print its readings",
                       description="Run one driver (a .wasm, or a manifest .toml) and print its readings.")
    p.add_argument("driver", type=Path, help="DRIVER.wasm or a driver manifest .toml")
    p.add_argument("--i2c", default="i2c-1", metavar="BUS", help="I2C bus to grant (default i2c-1)")
    p.add_argument("--allow", type=_addr, action="append", default=[], metavar="ADDR",
                   help="grant this I2C address (repeatable)")
    p.add_argument("--sim", action="append", default=[], metavar="MODEL@ADDR",
                   help="simulate a chip: bme280@0x76, 'bme280(temperature_c=30)@0x76', "
                        "pkg.module:Class@0x18 (repeatable); without it the real bus is used")
    p.add_argument("--usb-sim", action="append", default=[], metavar="MODEL",
                   help="plug in a simulated USB device: echo, hid:TEXT, msc:IMAGE, "
                        "pkg.module:Class (repeatable)")
    p.add_argument("--usbip", metavar="HOST[:PORT]",
                   help="USB devices from this USB/IP server (usbipd on another machine, "
                        "or wasi-hw usbip serve; default port 3240)")
    p.add_argument("--config", type=_kv, action="append", default=[], metavar="KEY=VALUE",
                   help="configuration for the driver (repeatable)")
    p.add_argument("--polls", type=_positive, default=1, metavar="N", help="readings to take (default 1)")
    p.add_argument("--interval-ms", type=_positive, default=None, metavar="MS",
                   help="poll interval (default 1000, 50 with --sim)")
    p.add_argument("--json", action="store_true", help="one JSON object per reading on stdout")
    p.add_argument("--plot", type=Path, metavar="FILE",
                   help="draw the readings over time into FILE (.png, .svg, .pdf)")
    p.add_argument("--audit", type=Path, metavar="FILE", help="append audit entries (JSON lines)")
    p.add_argument("--cache-dir", type=Path, metavar="DIR", help="AoT cache directory")
    p.set_defaults(func=_cmd_run)

    p = sub.add_parser("compile", help="compile a driver into the AoT cache")
    p.add_argument("wasm", type=Path, nargs="+", metavar="DRIVER.wasm")
    p.add_argument("--cache-dir", type=Path, metavar="DIR", help="AoT cache directory")
    p.add_argument("--target", metavar="TRIPLE",
                   help="compile for this machine, e.g. aarch64-unknown-linux-gnu (default: "
                        "this one); copy the cache directory there")
    p.set_defaults(func=_cmd_compile)

    p = sub.add_parser("inspect", help="imports, exports, capabilities and load times of a driver")
    p.add_argument("wasm", type=Path, metavar="DRIVER.wasm")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--cache-dir", type=Path, metavar="DIR", help="AoT cache directory")
    p.set_defaults(func=_cmd_inspect)

    k = sub.add_parser("kernel", help="run many drivers under the supervisor")
    ksub = k.add_subparsers(dest="kernel_command", metavar="COMMAND")
    k.set_defaults(func=lambda a: _usage(k, "kernel: which command? (kernel run KERNEL.toml)"))
    p = ksub.add_parser("run", help="run every driver of a kernel file")
    p.add_argument("file", type=Path, metavar="KERNEL.toml")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--rounds", type=_positive, metavar="N", help="stop after N polls of every driver")
    g.add_argument("--duration", type=float, metavar="S", help="stop after S seconds")
    g.add_argument("--forever", action="store_true", help="run until Ctrl-C")
    p.add_argument("--audit", type=Path, metavar="FILE", help="append audit entries (JSON lines)")
    p.add_argument("--watch", action="store_true",
                   help="hot-update a driver when its .wasm changes (others keep running)")
    p.add_argument("--json", action="store_true", help="events as JSON lines on stdout")
    p.add_argument("--plot", type=Path, metavar="FILE",
                   help="draw every driver's readings over time into FILE (.png, .svg, .pdf)")
    p.add_argument("--cache-dir", type=Path, metavar="DIR", help="AoT cache directory")
    from ._imc import add_nats_options
    add_nats_options(p)
    p.set_defaults(func=_cmd_kernel_run)


def _usage(parser: argparse.ArgumentParser, why: str) -> int:
    parser.print_help(sys.stderr)
    raise UserError(why)


# -- output ----------------------------------------------------------------------------------

def _jsonable(item: Any) -> Any:
    if isinstance(item, dict):
        return {str(k): _jsonable(v) for k, v in item.items()}
    if isinstance(item, (list, tuple)):
        return [_jsonable(v) for v in item]
    if isinstance(item, (bytes, bytearray)):
        return item.hex()
    if isinstance(item, float) and item != item:
        return None
    if item is None or isinstance(item, (str, int, float, bool)):
        return item
    return str(item)


def _value_text(v: Any) -> str:
    """One value as a person reads it: bytes in hex, text quoted only when it has spaces,
    lists and maps spelled out (never a Python repr)."""
    if isinstance(v, float):
        return str(round(v, 3))
    if isinstance(v, (bytes, bytearray)):
        return bytes(v).hex(" ") if v else "(no bytes)"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False) if (" " in v or not v) else v
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}={_value_text(x)}" for k, x in v.items()) + "}"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(_value_text(x) for x in v) + "]"
    return str(v)


def _human(item: Any, limit: int = 120) -> str:
    """A reading as ``key=value ...``; a value longer than ``limit`` characters is cut with
    how much was left out (``--json`` prints it whole)."""
    if not isinstance(item, dict):
        item = {"value": item}
    parts = []
    for k, v in item.items():
        text = _value_text(v)
        if len(text) > limit:
            text = f"{text[:limit]}… ({len(text) - limit} more characters; --json shows all)"
        parts.append(f"{k}={text}")
    return " ".join(parts)


def _printer(*, json_out: bool, readings_only: bool, width: int = 8, dedupe: bool = False):
    """Event printer; with `dedupe`, a human-format reading equal to the driver's previous one
    is not printed again but counted, and the count is shown (``= same reading, N more
    time(s)``) when the reading changes or `on_event.flush()` is called at the end
    (``--json`` always prints every reading)."""
    last: dict[str, Any] = {}
    out_style, err_style = LogStyle.detect(sys.stdout), LogStyle.detect(sys.stderr)
    repeats: dict[str, int] = {}

    def flush(driver: str | None = None) -> None:
        for name in [driver] if driver is not None else list(repeats):
            n = repeats.pop(name, 0)
            if n:
                print(f"{name:<{width}}  = same reading, {n} more time(s)", flush=True)

    def on_event(ev: Any) -> None:
        if ev.kind == "report":
            if dedupe and not json_out:
                if ev.driver in last and last[ev.driver] == ev.data:
                    repeats[ev.driver] = repeats.get(ev.driver, 0) + 1
                    return
                flush(ev.driver)
                last[ev.driver] = ev.data
            if json_out:
                obj = _jsonable(ev.data) if readings_only else {
                    "time": ev.time, "driver": ev.driver, "event": "report", "data": _jsonable(ev.data)}
                if readings_only and not isinstance(obj, dict):
                    obj = {"value": obj}
                print(json.dumps(obj), flush=True)
            else:
                print(out_style.line("info", f"{ev.driver:<{width}}  {_human(ev.data)}"),
                      flush=True)
            return
        if ev.kind == "log":
            level, message = ev.data
            line = f"{ev.driver:<{width}}  [{level}] {message}"
        elif ev.kind == "state":
            level = {"quarantined": "error", "backoff": "warn"}.get(ev.data, "info")
            line = f"{ev.driver:<{width}}  state {ev.data}" + (f" — {ev.detail}" if ev.detail else "")
        else:
            level = "error" if ev.kind == "error" else "info"
            line = f"{ev.driver:<{width}}  {ev.kind}: {ev.detail or _value_text(ev.data)}"
        if json_out and not readings_only:
            print(json.dumps({"time": ev.time, "driver": ev.driver, "event": ev.kind,
                              "data": _jsonable(ev.data), "detail": ev.detail}), flush=True)
        else:
            print(err_style.line(level, line), file=sys.stderr, flush=True)

    on_event.flush = flush  # type: ignore[attr-defined]
    return on_event


def _asked_text(key: str, value: Any) -> str:
    """An audited request's field: addresses, registers and ids in hex, the rest as text."""
    if isinstance(value, int) and not isinstance(value, bool) and any(
            w in key for w in ("address", "register", "endpoint", "vid", "pid", "reg")):
        return f"{value:#04x}"
    return _value_text(value)


def _audit_log(path: Path | None):
    style = LogStyle.detect(sys.stderr)

    class _Echo(AuditLog):
        def record(self, driver, call, asked, why, outcome="access"):  # type: ignore[override]
            entry = super().record(driver, call, asked, why, outcome)
            if entry is not None:   # not dropped by the audit log's rate bound
                what = " ".join(f"{k}={_asked_text(k, v)}" for k, v in asked.items())
                text = f"{driver:<8}  audit {outcome}: {call} {what} — {entry['why']}"
                print(style.line("warn", text.replace("  — ", " — ")), file=sys.stderr,
                      flush=True)
            return entry

    try:
        return _Echo(path)
    except OSError as err:
        raise UserError(f"cannot open audit log {path}: {err.strerror or err}") from None


# -- commands --------------------------------------------------------------------------------

def _cmd_run(args: argparse.Namespace) -> int:
    if args.driver.suffix == ".toml":
        manifest = load_manifest(args.driver)
        if args.allow or args.config:
            raise UserError("--allow/--config cannot widen a manifest; edit the manifest instead")
        bus = manifest.i2c[0].bus if manifest.i2c else args.i2c
        if args.interval_ms:                 # scheduling only; grants stay the manifest's
            manifest = dataclasses.replace(manifest, poll_interval_ms=args.interval_ms)
    else:
        if not args.driver.exists():
            raise UserError(f"{args.driver}: no such file")
        allow = list(args.allow)
        interval = args.interval_ms or (50 if args.sim else 1000)
        manifest = adhoc_manifest(args.driver, bus=args.i2c, allow=allow, config=dict(args.config),
                                  poll_interval_ms=interval)
        bus = args.i2c
    specs = [parse_sim_spec(s, bus) for s in args.sim]
    usb_specs = [parse_sim_spec(s, bus, usb=True) for s in args.usb_sim]
    _warn_ungranted(manifest, specs, args.sim)
    if args.usbip and args.usb_sim:
        raise UserError("--usbip and --usb-sim both choose the USB devices: give one")
    usbip = usbip_usb(parse_usbip(args.usbip)) if args.usbip else None
    if specs or args.usb_sim:
        i2c = sim_i2c(specs, [bus])
        usb = usbip or (sim_usb(usb_specs)
                        if (args.usb_sim or manifest.usb) else None)
        backends = Backends(i2c=i2c, usb=usb, clock=i2c.clock)
    elif usbip is not None:     # USB from the server; a real I2C bus only if one is granted
        real = real_backends([g.bus for g in manifest.i2c]) if manifest.i2c else None
        backends = Backends(i2c=real and real.i2c, usb=usbip)
    else:
        backends = real_backends([g.bus for g in manifest.i2c] or [bus], usb=bool(manifest.usb))
    try:
        result = run_driver(manifest, backends, polls=args.polls,
                            on_event=_printer(json_out=args.json, readings_only=True,
                                              width=len(manifest.name)),
                            audit=_audit_log(args.audit), cache_dir=args.cache_dir)
    finally:
        if usbip is not None:
            usbip.shutdown()     # close the imports' connections (the server's devices are freed)
    if args.plot is not None:
        from .._plot import plot_readings

        plot_readings(result.events, args.plot, title=manifest.name)
        print(f"wasi-hw: readings drawn in {args.plot}", file=sys.stderr)
    given = dict(args.config) if args.driver.suffix != ".toml" else dict(manifest.config)
    _warn_unread(given, result.config_read)
    why = ("quarantined" if result.state == "quarantined" else
           f"{result.faults} fault(s)" if result.faults else
           f"{result.errors} poll error(s)" if result.errors else
           "no reading" if not result.readings else "")
    if why:
        unset = sorted(k for k, found in result.config_read.items() if not found)
        hint = (f"; it asked for configuration that is not set: {', '.join(unset)} "
                f"(--config KEY=VALUE)" if unset and why == "no reading" else "")
        raise UserError(f"{manifest.name}: {why} in {result.polls} poll(s){hint}", exit_code=1)
    return 0


def _warn(text: str) -> None:
    print(f"wasi-hw: warning: {text}", file=sys.stderr, flush=True)


def _warn_ungranted(manifest: Any, specs: list, texts: list[str]) -> None:
    """A simulated chip the driver may not reach is almost always a typo: say so first."""
    for spec, text in zip(specs, texts):
        grants = [g for g in manifest.i2c if g.bus == spec.bus]
        if not any(spec.address in g.addresses for g in grants):
            have = ", ".join(f"{a:#04x}" for g in grants for a in sorted(g.addresses))
            _warn(f"--sim {text}: {spec.bus} address {spec.address:#04x} is not granted to "
                  f"{manifest.name} (granted: {have or 'none'}; add --allow "
                  f"{spec.address:#04x}): the driver cannot reach it")


def _warn_unread(given: dict, read: dict, *, who: str = "the driver") -> None:
    """Configuration the driver never asked for (a typo, or a key of another driver); only
    when it asked for any at all (a driver that never started reads nothing)."""
    import difflib

    if not read:
        return
    asked = sorted(read)
    for key in sorted(set(given) - set(read)):
        close = difflib.get_close_matches(key, asked, n=1, cutoff=0.6)
        hint = f" (did you mean {close[0]}?)" if close else ""
        _warn(f"configuration key {key!r} was never read by {who}{hint}; "
              f"it read: {', '.join(asked)}")


def _cmd_compile(args: argparse.Namespace) -> int:
    with KernelEngine(target=args.target) as engine:
        cache = AotCache(engine, args.cache_dir)
        for path in args.wasm:
            wasm = _read(path)
            loaded = _wasm_error(path, lambda: cache.compile(wasm))
            where = loaded.cwasm if loaded.cwasm else "(cache not writable)"
            print(f"{path}: compiled in {loaded.seconds * 1000:.1f} ms for {engine.target} "
                  f"→ {where}")
    return 0


def _read(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise UserError(f"{path}: {err.strerror or err}") from None


def _wasm_error(path: Path, fn):
    import wasmtime

    try:
        return fn()
    except wasmtime.WasmtimeError as err:
        raise UserError(f"{path}: not a valid wasm module: {str(err).splitlines()[0]}") from None


def _cmd_inspect(args: argparse.Namespace) -> int:
    wasm = _read(args.wasm)
    with KernelEngine() as engine:
        info = _wasm_error(args.wasm, lambda: inspect_wasm(wasm, AotCache(engine, args.cache_dir)))
    if args.json:
        print(json.dumps({
            "imports": [{"module": m, "name": n, "signature": s, "known": k} for m, n, s, k in info.imports],
            "exports": [{"name": n, "signature": s} for n, s in info.exports],
            "capabilities": info.capabilities,
            "compile_ms": info.compile_s * 1000, "cache_load_ms": info.cache_load_s * 1000,
            "instantiate_ms": None if info.instantiate_s is None else info.instantiate_s * 1000,
            "problems": info.problems,
        }))
        return _problems(args.wasm, info.problems)
    print(f"{args.wasm} ({len(wasm)} bytes)")
    print("imports:")
    for m, n, s, k in info.imports:
        print(f"  {m + '.' + n:<31} {s}{'' if k else '   ← not in the specs'}")
    print("exports:")
    for n, s in info.exports:
        print(f"  {n:<31} {s}")
    print("capabilities (grant kind ← functions):")
    for cap, fns in sorted(info.capabilities.items()):
        print(f"  {cap}: {', '.join(fns)}")
    inst = "n/a" if info.instantiate_s is None else f"{info.instantiate_s * 1e6:.0f} µs"
    print(f"times: compile {info.compile_s * 1000:.2f} ms, cache load "
          f"{info.cache_load_s * 1e6:.0f} µs, instantiate {inst}")
    for problem in info.problems:
        print(f"problem: {problem}")
    return _problems(args.wasm, info.problems)


def _problems(path: Path, problems: list[str]) -> int:
    if problems:
        raise UserError(f"{path}: {len(problems)} problem(s), first: {problems[0]}", exit_code=1)
    return 0


def _cmd_kernel_run(args: argparse.Namespace) -> int:
    style = LogStyle.detect(sys.stderr)
    stop = None
    plan = load_kernel_file(args.file)
    backends = plan_backends(plan)
    width = max(len(m.name) for m in plan.manifests)
    printer = _printer(json_out=args.json, readings_only=False, width=width, dedupe=True)
    seen: list[Any] = []

    def on_event(ev: Any) -> None:
        if args.plot is not None and ev.kind == "report":
            seen.append(ev)
        printer(ev)

    audit = _audit_log(args.audit)
    from ._imc import nats_link
    link = nats_link(args)           # None without --nats: IMC stays inside this kernel
    kernel = Kernel(backends, on_event=on_event, audit=audit, cache_dir=args.cache_dir,
                    tick_ms=plan.tick_ms, imc_remote=link)
    try:
        _build_missing(plan, width)
        for m in plan.manifests:
            t0 = time.perf_counter()
            print(style.line("info", f"{m.name:<{width}}  loading {m.wasm.name} …"),
                  file=sys.stderr, flush=True)
            slot = kernel.add(m)
            how = "loaded from the AoT cache" if slot.source == "cache" else "compiled"
            print(style.line("info", f"{m.name:<{width}}  {how} in "
                                     f"{(time.perf_counter() - t0) * 1000:.1f} ms"),
                  file=sys.stderr, flush=True)
        for src, dst in plan.routes:
            kernel.route(src, dst)
        rounds = None if args.forever or args.duration else (args.rounds or plan.rounds)
        watcher = _Watcher(kernel) if args.watch else None
        try:
            with stop_on_signals(kernel, signal.SIGTERM) as stop:   # a service's stop
                kernel.run(rounds=rounds, duration=args.duration)
            if stop.signum is not None:
                print(style.line("notice", f"wasi-hw: {stop.name}, stopping drivers"),
                      file=sys.stderr, flush=True)
        except KeyboardInterrupt:
            print(style.line("notice", "wasi-hw: interrupted, stopping drivers"),
                  file=sys.stderr, flush=True)
            interrupted = True
        else:
            interrupted = False
        finally:
            if watcher is not None:
                watcher.stop()
    finally:
        kernel.close()
        if link is not None:
            link.close()
        audit.close()
        _show_sim_state(backends, plan)
    printer.flush()
    for s in kernel.slots.values():
        _warn_unread(dict(s.manifest.config), s.config_read, who=s.name)
    bad = [s.name for s in kernel.slots.values() if s.state == "quarantined"]
    if style.journal:       # one line per event for journald
        summary = ", ".join(f"{s.name}: {s.polls} polls, {s.faults} faults, {s.state}"
                            for s in kernel.slots.values())
        print(style.line("warn" if bad else "info", f"kernel: {summary}"), file=sys.stderr,
              flush=True)
    else:
        print(summary_table(kernel.slots.values()), file=sys.stderr)
    if args.plot is not None:
        from .._plot import plot_readings

        plot_readings(seen, args.plot, title=plan.path.name)
        print(f"wasi-hw: readings drawn in {args.plot}", file=sys.stderr)
    if interrupted:
        return 130
    if stop is not None and stop.signum is not None:
        return stop.exit_code
    if bad:
        raise UserError(f"quarantined: {', '.join(bad)}", exit_code=1)
    return 0


def summary_table(slots: Any) -> str:
    """The kernel's end-of-run summary: one row per driver (state, polls, faults, restarts)."""
    rows = [(s.name, s.state, str(s.polls), str(s.faults), str(s.restarts)) for s in slots]
    head = ("driver", "state", "polls", "faults", "restarts")
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]

    def line(r: tuple) -> str:
        return "  " + "  ".join(c.ljust(w) if i < 2 else c.rjust(w)
                                for i, (c, w) in enumerate(zip(r, widths))).rstrip()

    return "\n".join(["kernel summary:", line(head), *(line(r) for r in rows)])


class _Watcher:
    """Polls every driver's .wasm; a changed file is queued as a hot update."""

    def __init__(self, kernel: Any, period: float = 0.5) -> None:
        import threading

        self._kernel = kernel
        self._period = period
        self._seen = {name: self._stamp(slot.manifest.wasm) for name, slot in kernel.slots.items()}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="wasi-hw-watch", daemon=True)
        self._thread.start()

    @staticmethod
    def _stamp(path: Path) -> tuple[int, int] | None:
        try:
            st = path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def _loop(self) -> None:
        while not self._done.wait(self._period):
            for name, slot in self._kernel.slots.items():
                stamp = self._stamp(slot.manifest.wasm)
                if stamp is not None and stamp != self._seen.get(name):
                    self._seen[name] = stamp
                    try:
                        wasm = slot.manifest.wasm.read_bytes()
                    except OSError:
                        continue
                    print(f"{name}: {slot.manifest.wasm.name} changed, hot-updating",
                          file=sys.stderr, flush=True)
                    self._kernel.request_update(name, wasm)

    def stop(self) -> None:
        self._done.set()
        self._thread.join(timeout=2)


def _build_missing(plan: Any, width: int) -> None:
    """Build the drivers whose .wasm is missing (`wasi-hw build`), showing progress."""
    missing = [m for m in plan.manifests if not m.wasm.exists()]
    if not missing:
        return
    names = [m.wasm.stem for m in missing]
    for m in missing:
        print(f"{m.name:<{width}}  {m.wasm.name} missing: building …", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    try:
        build(find_root(plan.path.parent), names)
    except UserError as err:
        print(f"wasi-hw: build failed: {err}", file=sys.stderr, flush=True)
        return
    print(f"built {', '.join(names)} in {time.perf_counter() - t0:.1f} s", file=sys.stderr, flush=True)


def _show_sim_state(backends: Any, plan: Any) -> None:
    """Print what simulated output devices show (e.g. the LCD's text)."""
    for d in plan.i2c_sim:
        try:
            dev = backends.i2c.device(d.bus, d.address)
        except Exception:  # noqa: BLE001 — nothing to show
            continue
        lines = getattr(dev, "lines", None)      # display models (the LCD) show their text
        text = lines() if callable(lines) else None
        if isinstance(text, (list, tuple)):
            text = "\n".join(text)
        if isinstance(text, str):
            print(f"[{d.model} on {d.bus} @ {d.address:#04x} shows]", file=sys.stderr)
            for line in text.splitlines():
                print(f"  |{line}|", file=sys.stderr)
