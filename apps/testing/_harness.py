"""`DriverTest`: one driver under the real kernel, on simulated, scripted or replayed buses.

Contract (what the ``wasi_hw`` fixture hands a test):

- ``driver(target, config=…)``: a driver crate directory (built with `build_path`, its
  ``manifest.toml`` used when it has one), a ``manifest.toml``, or a ``.wasm`` (then an ad-hoc
  manifest grants the I2C addresses of the attached devices plus ``allow``; a USB driver
  needs its manifest, which names the devices it may open).
- ``sim_i2c(spec_or_model, address=None, bus=None)`` attaches a simulated chip — a device spec
  (``"bme280(temperature_c=30)@0x76"``, ``"pkg.mod:Class@0x18"``) or a model object —
  and returns the model; ``sim_usb(...)`` plugs in a USB model the same way.
- ``expect_i2c([...])`` / ``expect_usb([...])``: the bus answers from a script of expected
  transactions instead (`i2c.write_read`, `i2c.write`, `i2c.read`, `usb.call`). Each request
  must equal the next expected one; after the run every expected one must have happened.
  A mismatch or a leftover fails the test naming both sides. Delays are not scripted.
- ``replay(trace)``: the buses answer from a recorded trace (file, bytes or `Trace`), under
  the same rule.
- ``run(polls=N, interval_ms=10)`` runs the polls under a fresh `Kernel` (polls
  ``interval_ms`` apart in real time: scheduling only, grants stay the manifest's) and
  returns a `DriverRun`: the readings, log lines, audit records, events, final state and the
  bus ``trace`` (every backend operation, as the trace format's records).
"""

from __future__ import annotations

import dataclasses
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from wasi_hw import UserError
from wasi_hw.host import (RecordingI2cBackend, RecordingUsbBackend, ReplayI2cBackend,
                          ReplayUsbBackend, SimI2cBackend, SimUsbBackend, Trace, TraceWriter,
                          VirtualClock, device_models, parse_device_spec, read_trace)
from wasi_hw.kernel import AuditLog, Backends, adhoc_manifest, load_manifest, run_driver

from . import _script

__all__ = ["DriverTest", "DriverRun", "ScriptMismatch"]


class ScriptMismatch(AssertionError):
    """The driver's bus traffic differed from the script or trace it was given."""


@dataclass
class DriverRun:
    """What one `DriverTest.run` produced."""

    state: str
    readings: list[Any]
    logs: list[tuple[str, str]]
    audit: list[dict]
    events: list[Any]
    trace: list[dict]
    polls: int
    faults: int
    errors: int
    trace_bytes: bytes = b""

    def save_trace(self, path: str | Path) -> Path:
        """Write the run's bus trace as a trace file (``wasi-hw trace show`` reads it)."""
        Path(path).write_bytes(self.trace_bytes)
        return Path(path)

    def i2c(self) -> list[dict]:
        """The I2C transactions of the trace (``bus``, ``address``, ``ops``, ``result``)."""
        return [r for r in self.trace if r["op"] == "i2c.transaction"]


@dataclass
class _Target:
    wasm: Path
    manifest: Any = None


class DriverTest:
    """See the module docstring; made by the ``wasi_hw`` fixture."""

    def __init__(self, workdir: Path, *, cache_dir: Path | None = None,
                 builder: Any = None) -> None:
        self.workdir = Path(workdir)
        self.cache_dir = cache_dir
        self._builder = builder
        self._target: _Target | None = None
        self._config: dict[str, str] = {}
        self._allow: list[int] = []
        self._bus = "i2c-1"
        self._i2c: list[tuple[str, int, Any]] = []
        self._usb: list[Any] = []
        self._i2c_script: Trace | None = None
        self._usb_script: Trace | None = None
        self._replay: Trace | None = None

    # -- what runs --------------------------------------------------------------------------
    def driver(self, target: str | Path, *, config: dict[str, Any] | None = None,
               allow: Iterable[int] = (), bus: str = "i2c-1") -> Path:
        """Choose the driver (crate dir, manifest or .wasm); returns its .wasm path."""
        path = Path(target)
        manifest = None
        if path.is_dir():
            wasm = self._build(path)
            if (path / "manifest.toml").is_file():
                manifest = load_manifest(path / "manifest.toml")
                manifest = dataclasses.replace(manifest, wasm=wasm)
        elif path.suffix == ".toml":
            manifest = load_manifest(path)
            wasm = manifest.wasm
        else:
            wasm = path
        if not wasm.is_file():
            raise UserError(f"{wasm}: no such driver module")
        self._target = _Target(wasm, manifest)
        self._config = {k: str(v) for k, v in (config or {}).items()}
        self._allow = list(allow)
        self._bus = bus
        return wasm

    def _build(self, crate: Path) -> Path:
        if self._builder is not None:
            return self._builder(crate)
        from .._build import build_path

        artifacts = build_path(crate)
        if len(artifacts) != 1:
            raise UserError(f"{crate}: expected one driver module, built "
                            f"{', '.join(a.name for a in artifacts) or 'none'}")
        return artifacts[0].path

    # -- the buses ----------------------------------------------------------------------------
    def sim_i2c(self, device: Any, address: int | None = None, *, bus: str | None = None,
                **params: Any) -> Any:
        """Attach a simulated I2C chip (spec or model object); returns the model."""
        if isinstance(device, str):
            spec = parse_device_spec(device if address is None else f"{device}@{address:#x}",
                                     where="sim_i2c")
            model = device_models().create(spec, params, kind="i2c", where=f"sim_i2c {device!r}")
            address, bus = spec.address, bus or spec.bus
        else:
            model = device
            if address is None:
                raise UserError("sim_i2c(model, address): the address is missing")
        self._i2c.append((bus or self._bus, int(address), model))
        return model

    def sim_usb(self, device: Any, **params: Any) -> Any:
        """Plug in a simulated USB device (spec such as ``"echo"`` or a model object)."""
        if isinstance(device, str):
            spec = parse_device_spec(device, address=False, where="sim_usb")
            device = device_models().create(spec, params, kind="usb", where=f"sim_usb {device!r}")
        self._usb.append(device)
        return device

    def expect_i2c(self, transactions: Sequence[Any], *, bus: str = "i2c-1") -> None:
        """Serve I2C from this script (see `wasi_hw.apps.testing.i2c`)."""
        self._i2c_script = _script.i2c_trace(transactions, bus)

    def expect_usb(self, calls: Sequence[Any]) -> None:
        """Serve USB from this script of backend calls (see `wasi_hw.apps.testing.usb`)."""
        self._usb_script = _script.usb_trace(calls)

    def replay(self, trace: Trace | str | Path | bytes) -> Trace:
        """Serve every bus from a recorded trace."""
        self._replay = trace if isinstance(trace, Trace) else read_trace(trace)
        return self._replay

    # -- running ------------------------------------------------------------------------------
    def _manifest(self) -> Any:
        if self._target is None:
            raise UserError("call driver(...) before run()")
        m = self._target.manifest
        if m is None:
            allow = sorted({*self._allow, *(a for _, a, _ in self._i2c),
                            *_script.addresses(self._i2c_script or self._replay)})
            return adhoc_manifest(self._target.wasm, bus=self._bus, allow=allow,
                                  config=self._config, poll_interval_ms=50)
        if self._config:
            m = dataclasses.replace(m, config={**m.config, **self._config})
        return m

    def run(self, polls: int = 1, *, interval_ms: int = 10,
            deadline_ms: int | None = None) -> DriverRun:
        """Run ``polls`` polls under the kernel; see the module docstring. ``deadline_ms``
        replaces the manifest's per-call deadline (e.g. generous on a loaded CI machine)."""
        manifest = dataclasses.replace(self._manifest(), poll_interval_ms=interval_ms)
        if deadline_ms is not None:
            manifest = dataclasses.replace(
                manifest, limits=dataclasses.replace(manifest.limits, deadline_ms=deadline_ms))
        clock = VirtualClock()
        checks: list[Any] = []
        if self._replay is not None or self._i2c_script is not None:
            i2c: Any = _ScriptedI2c(self._i2c_script or self._replay,
                                    delays=self._i2c_script is None)
            checks.append(i2c)
            clock = i2c.clock
        else:
            buses = {g.bus for g in manifest.i2c} | {b for b, _, _ in self._i2c} | {self._bus}
            i2c = SimI2cBackend(sorted(buses), clock=clock)
            for b, a, model in self._i2c:
                i2c.attach(b, a, model)
        usb: Any = None
        if self._replay is not None or self._usb_script is not None:
            usb = ReplayUsbBackend(self._usb_script or self._replay)
            checks.append(usb)
        elif self._usb or manifest.usb:
            usb = SimUsbBackend(list(self._usb), clock=clock)
        sink = io.BytesIO()
        writer = TraceWriter(sink, clock=clock.now_ns)
        rec_i2c = RecordingI2cBackend(i2c, writer)
        rec_usb = RecordingUsbBackend(usb, writer) if usb is not None else None
        audit = AuditLog()
        result = run_driver(manifest, Backends(i2c=rec_i2c, usb=rec_usb, clock=clock),
                            polls=polls, audit=audit, cache_dir=self.cache_dir)
        writer.close()
        trace = read_trace(sink.getvalue()).records
        for backend in checks:
            if backend.divergence is not None:
                raise ScriptMismatch(backend.divergence.message)
            try:
                backend.done()
            except Exception as err:  # ReplayDivergence: expected traffic never came
                raise ScriptMismatch(str(getattr(err, "message", err))) from None
        return DriverRun(
            state=result.state, readings=result.readings,
            logs=[e.data for e in result.events if e.kind == "log"],
            audit=result.audit, events=result.events, trace=trace, polls=result.polls,
            faults=result.faults, errors=result.errors, trace_bytes=sink.getvalue())


class _ScriptedI2c(ReplayI2cBackend):
    """A replay of a script: delays (not in scripts) only advance the virtual clock."""

    def __init__(self, trace: Trace, *, delays: bool) -> None:
        super().__init__(trace)
        self._delays = delays

    def delay_ns(self, ns: int) -> None:
        if self._delays:
            super().delay_ns(ns)
        else:
            self.clock.sleep_ns(int(ns))
