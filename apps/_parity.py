"""The parity runner: one driver `.wasm`, several backends, the same behaviour on every one.

``wasi-hw parity DRIVER.wasm --backends sim,smbus2,usbip,pyusb,replay [--reference NAME]``

Contract:
- `ParitySetup` fixes what every leg runs: the driver's manifest (``--manifest``, else the
  workspace's ``drivers/<name>/manifest.toml`` for ``<name>.wasm``, else an ad-hoc I2C grant
  from ``--i2c``/``--allow``), its wasm bytes (the file given, even when the manifest names
  another), the number of polls, and the simulated devices (``--sim MODEL@ADDR``,
  ``--usb-sim MODEL``; by default the model named like the driver at each granted I2C
  address, and the USB model whose VID:PID each USB grant names).
- A *leg* runs the driver under the kernel (`wasi_hw.kernel.run_driver`) against one
  backend, wrapped in the trace recorder (`wasi_hw.host.RecordingI2cBackend` /
  `RecordingUsbBackend`), and yields a `Leg`: its readings, its outcome (state, faults,
  driver errors) and its recorded trace. Backends: ``sim`` (the simulated devices),
  ``smbus2`` (the host's ``/dev/i2c-N``), ``pyusb`` (the host's USB through libusb),
  ``usbip`` (the simulated USB devices exported by an in-process `UsbipServer` on a free
  port and reached through `UsbipUsbBackend`), ``replay`` (the first leg's trace served back
  by `ReplayI2cBackend` / `ReplayUsbBackend`; a divergence is the difference reported).
  ``--reference NAME`` adds a leg running the native Python reference driver
  (`wasi_hw.apps.reference`) on the simulated devices.
- A leg may run in a child process under a command prefix (``--wrap smbus2=umockdev-wrapper``,
  or ``--wrap pyusb='ssh pi'`` style): the child is ``python -m wasi_hw parity … --backends
  <that one> --trace-dir DIR --json`` and its trace file is read back, so environment set-up
  (an emulated or remote ``/dev/i2c-N``) stays outside this module.
- Traces are normalised (`normalise`) before comparison: timestamps, durations, backend
  names and error messages are dropped; teardown (``i2c.close``, ``usb.close``,
  ``usb.shutdown``) and USB enumeration snapshots (``usb.devices``) are left out and device
  ids are numbered by first use; what remains — the operation sequence, every argument and
  data byte, every result and error kind — must be equal. Each leg is compared with the
  first (the baseline): outcome, readings, then the trace; the first difference is reported
  with both sides.
- A leg that faulted, was quarantined, had driver errors, did no bus I/O or produced no
  reading proves nothing (`leg_problem`): the report is not OK even when every leg agrees.
- `run_parity` returns a `ParityReport`; `format_table` prints it (per leg: readings,
  operation count, first difference or problem). The command exits 1 unless it is OK.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from wasi_hw import HwError, UserError

__all__ = ["BACKENDS", "REFERENCES", "ParitySetup", "Leg", "Difference", "ParityReport",
           "setup_for", "run_leg", "run_parity", "normalise", "compare", "format_table",
           "jsonable", "parse_wrap"]

BACKENDS = ("sim", "smbus2", "usbip", "pyusb", "replay")
I2C_BACKENDS = ("sim", "smbus2", "replay")
USB_BACKENDS = ("sim", "usbip", "pyusb", "replay")
#: reference driver name → (class path in wasi_hw.apps.reference, sim model name)
REFERENCES = {"bme280": "Bme280Driver", "sht3x": "Sht3xDriver"}
_TEARDOWN = ("i2c.close", "usb.close", "usb.shutdown", "usb.devices")


# -- set-up ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class ParitySetup:
    """What every leg runs (see the module docstring)."""

    driver: Path
    wasm: bytes
    manifest: Any                      # wasi_hw.kernel.Manifest
    i2c_devices: tuple = ()            # SimDevice
    usb_devices: tuple = ()            # SimDevice
    polls: int = 2
    manifest_path: Path | None = None
    sim_specs: tuple[str, ...] = ()    # as given on the command line (passed to children)
    usb_specs: tuple[str, ...] = ()

    @property
    def uses_i2c(self) -> bool:
        return bool(self.manifest.i2c)

    @property
    def uses_usb(self) -> bool:
        return bool(self.manifest.usb)


def _default_manifest(driver: Path) -> Path | None:
    try:
        from ._build import find_root
        root = find_root(driver.parent)
    except (UserError, ImportError):
        return None
    cand = root / "drivers" / driver.stem / "manifest.toml"
    return cand if cand.is_file() else None


def setup_for(driver: Path | str, *, manifest: Path | str | None = None, polls: int = 2,
              sim: Sequence[str] = (), usb_sim: Sequence[str] = (), i2c: str = "i2c-1",
              allow: Sequence[int] = (), interval_ms: int = 10) -> ParitySetup:
    """The `ParitySetup` for ``driver`` (a .wasm) — see the module docstring."""
    from wasi_hw.host import device_models
    from wasi_hw.kernel import SimDevice, adhoc_manifest, load_manifest

    from ._backends import parse_sim_spec

    driver = Path(driver)
    try:
        wasm = driver.read_bytes()
    except OSError as err:
        raise UserError(f"{driver}: {err.strerror or err}") from None
    mpath = Path(manifest) if manifest else (None if allow else _default_manifest(driver))
    if mpath is not None:
        m = load_manifest(mpath)
    else:
        m = adhoc_manifest(driver, bus=i2c, allow=list(allow) or [], name=driver.stem)
    m = dataclasses.replace(m, wasm=driver.resolve(), poll_interval_ms=interval_ms)
    if sim:
        default_bus = m.i2c[0].bus if m.i2c else i2c
        i2c_devs = tuple(parse_sim_spec(s, default_bus) for s in sim)
    else:
        models = device_models()
        known = models.is_name(m.name) and models.resolve(m.name).kind == "i2c"
        i2c_devs = tuple(SimDevice(m.name, g.bus, a) for g in m.i2c for a in sorted(g.addresses)
                         if known)
    if usb_sim:
        usb_devs = tuple(parse_sim_spec(name, "", usb=True) for name in usb_sim)
    else:
        found = []
        for g in m.usb:
            for name in device_models().names("usb"):
                cls = device_models().resolve(name).factory
                if (getattr(cls, "VENDOR_ID", None), getattr(cls, "PRODUCT_ID", None)) == (g.vid, g.pid):
                    found.append(SimDevice(name))
                    break
        usb_devs = tuple(found)
    if m.i2c and not i2c_devs:
        raise UserError(f"no simulated device for driver {m.name!r}: name one with "
                        "--sim MODEL@ADDR")
    if m.usb and not usb_devs:
        raise UserError(f"no simulated USB device matches driver {m.name!r}'s grants: name "
                        "one with --usb-sim MODEL")
    return ParitySetup(driver, wasm, m, i2c_devs, usb_devs, polls, mpath, tuple(sim),
                       tuple(usb_sim))


# -- legs -----------------------------------------------------------------------------------

@dataclass
class Leg:
    """One run of the driver (or the reference driver) on one backend."""

    backend: str
    readings: list[Any] = field(default_factory=list)
    outcome: dict[str, Any] = field(default_factory=dict)   # state, faults, errors
    records: list[dict[str, Any]] = field(default_factory=list)   # the raw trace records
    trace_path: Path | None = None
    failure: str = ""                                        # the leg could not run

    @property
    def normalised(self) -> list[dict[str, Any]]:
        return normalise(self.records)

    @property
    def operations(self) -> int:
        return len(self.normalised)


def jsonable(item: Any) -> Any:
    """A reading as plain JSON values (bytes → hex, tuples → lists, NaN → None)."""
    if isinstance(item, dict):
        return {str(k): jsonable(v) for k, v in item.items()}
    if isinstance(item, (list, tuple)):
        return [jsonable(v) for v in item]
    if isinstance(item, (bytes, bytearray)):
        return bytes(item).hex()
    if isinstance(item, float) and item != item:
        return None
    if item is None or isinstance(item, (str, int, float, bool)):
        return item
    return str(item)


def _trace_dest(trace_dir: Path | None, backend: str) -> tuple[Any, Path | None]:
    if trace_dir is None:
        return io.BytesIO(), None
    trace_dir.mkdir(parents=True, exist_ok=True)
    path = trace_dir / f"{backend}.cbor"
    return path, path


def _finish_trace(dest: Any, path: Path | None) -> list[dict[str, Any]]:
    from wasi_hw.host import read_trace
    trace = read_trace(path if path is not None else dest.getvalue())
    return trace.records


def _sim_backends(setup: ParitySetup, clock: Any = None) -> tuple[Any, Any]:
    from ._backends import sim_i2c, sim_usb

    i2c = sim_i2c(setup.i2c_devices, [g.bus for g in setup.manifest.i2c]) if setup.uses_i2c else None
    usb = sim_usb(setup.usb_devices) if setup.uses_usb else None
    return i2c, usb


def _run_kernel(setup: ParitySetup, backend: str, i2c: Any, usb: Any, clock: Any,
                trace_dir: Path | None) -> Leg:
    from wasi_hw.host import RecordingI2cBackend, RecordingUsbBackend, TraceWriter
    from wasi_hw.kernel import Backends, run_driver

    dest, path = _trace_dest(trace_dir, backend)
    writer = TraceWriter(dest, meta={"command": "wasi-hw parity", "leg": backend,
                                     "driver": setup.manifest.name})
    leg = Leg(backend, trace_path=path)
    with tempfile.TemporaryDirectory(prefix="wasi-hw-parity-") as cache:
        try:
            rec_i2c = RecordingI2cBackend(i2c, writer) if i2c is not None else None
            rec_usb = RecordingUsbBackend(usb, writer) if usb is not None else None
            result = run_driver(setup.manifest, Backends(i2c=rec_i2c, usb=rec_usb, clock=clock),
                                polls=setup.polls, wasm=setup.wasm,
                                cache_dir=os.environ.get("WASI_HW_CACHE") or cache)
        finally:
            for b in (i2c, usb):
                if b is not None:
                    try:
                        (b.shutdown if hasattr(b, "shutdown") and usb is b else b.close)()
                    except Exception:  # noqa: BLE001 — teardown of a leg must not hide its result
                        pass
            writer.close()
    leg.readings = [jsonable(r) for r in result.readings]
    leg.outcome = {"state": result.state, "faults": result.faults, "errors": result.errors}
    leg.records = _finish_trace(dest, path)
    return leg


def run_leg(setup: ParitySetup, backend: str, *, trace_dir: Path | None = None,
            baseline: Leg | None = None, recorded: Path | None = None) -> Leg:
    """Run the driver on ``backend`` in this process (see the module docstring)."""
    if backend == "sim":
        i2c, usb = _sim_backends(setup)
        return _run_kernel(setup, backend, i2c, usb, getattr(i2c, "clock", None), trace_dir)
    if backend == "smbus2":
        from wasi_hw.host import Smbus2I2cBackend
        if not setup.uses_i2c:
            raise UserError(f"driver {setup.manifest.name} uses no I2C: no smbus2 leg")
        i2c = Smbus2I2cBackend(sorted({g.bus for g in setup.manifest.i2c}))
        return _run_kernel(setup, backend, i2c, None, None, trace_dir)
    if backend == "pyusb":
        from wasi_hw.host import PyusbUsbBackend
        if not setup.uses_usb:
            raise UserError(f"driver {setup.manifest.name} uses no USB: no pyusb leg")
        return _run_kernel(setup, backend, None, PyusbUsbBackend(), None, trace_dir)
    if backend == "usbip":
        from wasi_hw.host import UsbipServer, UsbipUsbBackend
        if not setup.uses_usb:
            raise UserError(f"driver {setup.manifest.name} uses no USB: no usbip leg")
        from wasi_hw.host import device_models
        models = [device_models().create(d.model, d.params, kind="usb")
                  for d in setup.usb_devices]
        server = UsbipServer(models, port=0).start()
        try:
            host, port = server.address
            return _run_kernel(setup, backend, None, UsbipUsbBackend(host, port), None, trace_dir)
        finally:
            server.stop()
    if backend == "replay":
        return _replay_leg(setup, baseline, trace_dir, recorded)
    raise UserError(f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})")


def _replay_leg(setup: ParitySetup, baseline: Leg | None, trace_dir: Path | None,
                recorded: Path | None = None) -> Leg:
    from wasi_hw.host import ReplayI2cBackend, ReplayUsbBackend, Trace, read_trace

    if recorded is not None:
        trace = read_trace(recorded)
    elif baseline is None or baseline.failure:
        raise UserError("replay needs a leg before it to replay (e.g. --backends sim,replay)")
    else:
        header = {"format": "wasi-hw-trace", "version": 1, "backends": {}}
        trace = read_trace(baseline.trace_path) if baseline.trace_path else \
            Trace(header, list(baseline.records))
    i2c = ReplayI2cBackend(trace) if setup.uses_i2c else None
    usb = ReplayUsbBackend(trace) if setup.uses_usb else None
    leg = _run_kernel(setup, "replay", i2c, usb, getattr(i2c, "clock", None), trace_dir)
    for r in (i2c, usb):
        if r is None:
            continue
        try:
            r.done()
        except HwError as err:          # a divergence, or recorded requests left over
            leg.failure = f"replay: {err.message}"
            break
    return leg


def run_reference(setup: ParitySetup, name: str, *, trace_dir: Path | None = None) -> Leg:
    """The native Python reference driver ``name`` on the simulated devices."""
    from . import reference
    from wasi_hw.host import RecordingI2cBackend, TraceWriter

    if name not in REFERENCES:
        raise UserError(f"no reference driver {name!r} (available: {', '.join(REFERENCES)})")
    if not setup.i2c_devices:
        raise UserError(f"reference {name}: the driver has no simulated I2C device")
    i2c, _ = _sim_backends(setup)
    dev = setup.i2c_devices[0]
    dest, path = _trace_dest(trace_dir, f"reference-{name}")
    writer = TraceWriter(dest, meta={"command": "wasi-hw parity", "leg": f"reference {name}"})
    leg = Leg(f"ref:{name}", trace_path=path)
    rec = RecordingI2cBackend(i2c, writer)
    driver = getattr(reference, REFERENCES[name])(rec, dev.bus, dev.address)
    errors = 0
    state = "running"
    try:
        driver.init()
        for _ in range(setup.polls):
            try:
                leg.readings.append(jsonable(driver.poll()))
            except (reference.DriverError, HwError):
                errors += 1
    except (reference.DriverError, HwError) as err:
        state, leg.failure = "quarantined", f"init: {err}"
    finally:
        rec.close()
        writer.close()
    leg.outcome = {"state": state, "faults": 0, "errors": errors}
    leg.records = _finish_trace(dest, path)
    return leg


def _child_leg(setup: ParitySetup, backend: str, prefix: Sequence[str],
               trace_dir: Path) -> Leg:
    """Run one leg in a child process under ``prefix`` and read its trace back."""
    child_dir = trace_dir / f"{backend}-child"
    argv = [*prefix, sys.executable, "-m", "wasi_hw", "parity", str(setup.driver),
            "--backends", backend, "--trace-dir", str(child_dir), "--json",
            "--polls", str(setup.polls), "--interval-ms", str(setup.manifest.poll_interval_ms)]
    if setup.manifest_path is not None:
        argv += ["--manifest", str(setup.manifest_path)]
    for s in setup.sim_specs:
        argv += ["--sim", s]
    for s in setup.usb_specs:
        argv += ["--usb-sim", s]
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as err:
        return Leg(backend, failure=f"child {shlex.join(argv[:len(prefix) + 1])}: {err}")
    try:
        doc = json.loads(proc.stdout)
        (item,) = [x for x in doc["legs"] if x["backend"] == backend]
    except (ValueError, KeyError, TypeError):
        tail = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        return Leg(backend, failure=f"child exited {proc.returncode}: {tail}")
    leg = Leg(backend, readings=item["readings"], outcome=item["outcome"],
              failure=item.get("failure", ""))
    if item.get("trace"):
        leg.trace_path = Path(item["trace"])
        leg.records = _finish_trace(None, leg.trace_path)
    return leg


# -- comparison -----------------------------------------------------------------------------

def normalise(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The records that define behaviour, in a backend-independent form (module docstring)."""
    out: list[dict[str, Any]] = []
    ids: dict[Any, str] = {}
    for rec in records:
        op = rec.get("op", "?")
        if op in _TEARDOWN or op == "backend":
            continue
        item: dict[str, Any] = {"op": op}
        for key in ("bus", "address", "ten_bit", "ops", "ns"):
            if key in rec:
                item[key] = rec[key]
        if "args" in rec:
            args = dict(rec["args"])
            if "device_id" in args:
                args["device_id"] = ids.setdefault(args["device_id"], f"device{len(ids) + 1}")
            item["args"] = args
        if "error" in rec:
            item["error"] = rec["error"].get("kind")
        elif "result" in rec:
            item["result"] = rec["result"]
        out.append(item)
    return out


@dataclass(frozen=True)
class Difference:
    """The first way a leg differs from the baseline."""

    leg: str
    baseline: str
    what: str          # "outcome" | "readings" | "trace" | "failure"
    where: str         # e.g. "operation 7 of 41", "reading 2"
    ours: str          # the leg's side
    theirs: str        # the baseline's side

    def __str__(self) -> str:
        return (f"{self.leg} vs {self.baseline}: {self.what} differs at {self.where}: "
                f"{self.baseline} `{self.theirs}`; {self.leg} `{self.ours}`")


def _fmt_op(item: Mapping[str, Any] | None) -> str:
    from wasi_hw.host import format_record
    if item is None:
        return "(nothing: trace ended)"
    rec = dict(item)
    if isinstance(rec.get("error"), str):
        rec["error"] = {"kind": rec["error"]}
    return format_record(rec)


def compare(baseline: Leg, leg: Leg) -> Difference | None:
    """The first difference of ``leg`` from ``baseline``, or None."""
    b, n = baseline.backend, leg.backend
    if leg.failure:
        return Difference(n, b, "failure", "the leg", leg.failure, baseline.failure or "ran")
    ours, theirs = leg.normalised, baseline.normalised
    for i in range(max(len(ours), len(theirs))):
        x = ours[i] if i < len(ours) else None
        y = theirs[i] if i < len(theirs) else None
        if x != y:
            return Difference(n, b, "trace", f"operation {i + 1} of {len(theirs)}",
                              _fmt_op(x), _fmt_op(y))
    if leg.outcome != baseline.outcome:
        return Difference(n, b, "outcome", "the run", json.dumps(leg.outcome),
                          json.dumps(baseline.outcome))
    if leg.readings != baseline.readings:
        for i, (x, y) in enumerate(zip(leg.readings, baseline.readings)):
            if x != y:
                return Difference(n, b, "readings", f"reading {i + 1}", json.dumps(x),
                                  json.dumps(y))
        i = min(len(leg.readings), len(baseline.readings))
        return Difference(n, b, "readings", f"reading {i + 1}",
                          json.dumps(leg.readings[i]) if i < len(leg.readings) else "(none)",
                          json.dumps(baseline.readings[i]) if i < len(baseline.readings) else "(none)")
    return None


def leg_problem(leg: Leg) -> str:
    """Why a leg proves nothing even when every leg agrees: it faulted or was quarantined,
    its driver reported errors, it did no bus I/O, or it produced no reading ("" if none)."""
    if leg.failure:
        return leg.failure
    why = []
    out = leg.outcome
    if out.get("state") == "quarantined":
        why.append("quarantined")
    if out.get("faults"):
        why.append(f"{out['faults']} fault(s)")
    if out.get("errors"):
        why.append(f"{out['errors']} poll error(s)")
    if leg.operations == 0:
        why.append("no bus I/O")
    if not leg.readings:
        why.append("no readings")
    return ", ".join(why)


@dataclass
class ParityReport:
    legs: list[Leg]
    differences: list[Difference]

    @property
    def problems(self) -> dict[str, str]:
        """Leg → why it proves nothing (`leg_problem`), for the legs that have a reason."""
        return {leg.backend: p for leg in self.legs if (p := leg_problem(leg))}

    @property
    def ok(self) -> bool:
        return not self.differences and not self.problems

    def to_json(self) -> dict[str, Any]:
        diffs = {d.leg: d for d in self.differences}
        problems = self.problems
        return {"ok": self.ok, "legs": [
            {"backend": leg.backend, "readings": leg.readings, "outcome": leg.outcome,
             "operations": leg.operations, "trace": str(leg.trace_path) if leg.trace_path else None,
             "failure": leg.failure, "problem": problems.get(leg.backend, ""),
             "difference": dataclasses.asdict(diffs[leg.backend]) if leg.backend in diffs else None}
            for leg in self.legs]}


def parse_wrap(items: Iterable[str]) -> dict[str, list[str]]:
    wrap: dict[str, list[str]] = {}
    for item in items:
        name, sep, cmd = item.partition("=")
        if not sep or name not in BACKENDS or not cmd.strip():
            raise UserError(f"--wrap {item!r}: expected BACKEND=COMMAND, e.g. "
                            "smbus2=umockdev-wrapper")
        wrap[name] = shlex.split(cmd)
    return wrap


def run_parity(setup: ParitySetup, backends: Sequence[str], *, reference: str | None = None,
               trace_dir: Path | None = None,
               wrap: Mapping[str, Sequence[str]] | None = None,
               recorded: Path | None = None) -> ParityReport:
    """Run every leg and compare each with the first (module docstring)."""
    wrap = dict(wrap or {})
    unknown = [b for b in backends if b not in BACKENDS]
    if unknown:
        raise UserError(f"unknown backend(s) {', '.join(unknown)} (known: {', '.join(BACKENDS)})")
    if not backends:
        raise UserError("--backends names no backend")
    kinds = I2C_BACKENDS if setup.uses_i2c and not setup.uses_usb else \
        USB_BACKENDS if setup.uses_usb and not setup.uses_i2c else BACKENDS
    wrong = [b for b in backends if b not in kinds]
    if wrong:
        raise UserError(f"driver {setup.manifest.name} cannot run on {', '.join(wrong)} "
                        f"(its buses: {', '.join(b for b in kinds)})")
    tmp = None
    if trace_dir is None and (wrap or "replay" in backends):
        tmp = tempfile.TemporaryDirectory(prefix="wasi-hw-parity-")
        trace_dir = Path(tmp.name)
    try:
        legs: list[Leg] = []
        for name in backends:
            try:
                if name in wrap:
                    leg = _child_leg(setup, name, wrap[name], trace_dir)
                else:
                    leg = run_leg(setup, name, trace_dir=trace_dir,
                                  baseline=legs[0] if legs else None, recorded=recorded)
            except HwError as err:
                leg = Leg(name, failure=f"{err.kind}: {err.message}")
            legs.append(leg)
        if reference:
            legs.append(run_reference(setup, reference, trace_dir=trace_dir))
        for leg in legs:          # read everything before a temporary directory goes
            leg.records = list(leg.records)
        diffs = [d for leg in legs[1:] if (d := compare(legs[0], leg)) is not None]
        if legs and legs[0].failure:
            diffs.insert(0, Difference(legs[0].backend, legs[0].backend, "failure", "the leg",
                                       legs[0].failure, ""))
        if tmp is not None:
            for leg in legs:
                leg.trace_path = None
        return ParityReport(legs, diffs)
    finally:
        if tmp is not None:
            tmp.cleanup()


def _short(reading: Any, limit: int = 60) -> str:
    if isinstance(reading, dict):
        text = " ".join(f"{k}={round(v, 3) if isinstance(v, float) else v}"
                        for k, v in reading.items())
    else:
        text = json.dumps(reading)
    return text if len(text) <= limit else text[:limit - 1] + "…"


def format_table(report: ParityReport) -> str:
    """The human table: per leg its readings, operation count and first difference."""
    lines = []
    width = max([len("backend")] + [len(leg.backend) for leg in report.legs])
    lines.append(f"{'backend':<{width}}  {'ops':>5}  {'state':<11}  readings")
    diffs = {d.leg: d for d in report.differences}
    for leg in report.legs:
        first = _short(leg.readings[-1]) if leg.readings else "(none)"
        count = f"{len(leg.readings)}× " if len(leg.readings) > 1 else ""
        lines.append(f"{leg.backend:<{width}}  {leg.operations:>5}  "
                     f"{leg.outcome.get('state', '-'):<11}  {count}{first}")
        d = diffs.get(leg.backend)
        if d is not None:
            lines.append(f"{'':<{width}}  ↳ {d.what} differs at {d.where}:")
            lines.append(f"{'':<{width}}      {d.baseline + ':':<{width + 1}} {d.theirs}")
            lines.append(f"{'':<{width}}      {d.leg + ':':<{width + 1}} {d.ours}")
        elif leg.backend in report.problems:
            lines.append(f"{'':<{width}}  ↳ {report.problems[leg.backend]}")
    base = report.legs[0].backend if report.legs else "-"
    if report.ok:
        lines.append("parity: OK — every leg matches " + base)
    elif report.differences:
        lines.append(f"parity: {len(report.differences)} leg(s) differ from {base}")
    else:
        lines.append("parity: FAILED — the legs agree but prove nothing: " + "; ".join(
            f"{leg} {why}" for leg, why in report.problems.items()))
    return "\n".join(lines)
