"""The run path as a Python API: one driver, or a kernel file, against given backends.

Contract:
- `adhoc_manifest(wasm, bus=..., allow=..., config=...)` builds the frozen `Manifest` that
  ``wasi-hw run`` uses when no manifest file is given: the named I2C bus with exactly the
  allowed addresses; ``config`` gets ``bus`` and ``address`` (the first allowed) unless given.
- `run_driver(manifest, backends, polls=N)` starts the driver under a fresh `Kernel`, polls it
  N times (or until it is quarantined) and returns a `RunResult` (readings, events, audit
  entries, final state, the configuration keys the driver asked for). Callers choose the backends — e.g. a recorder wrapping a sim backend
  for traces, or a benchmark's own — the kernel never names a backend class.
- `load_kernel_file(path)` validates a kernel file (drivers, routes, simulated devices, a
  USB/IP server) into a `KernelPlan`, errors located ``file:line`` like manifests.
- `parse_usbip("HOST[:PORT]")` → ``(host, port)`` (port 3240, usbipd's, when left out; an
  IPv6 host in brackets: ``[::1]:3240``).
A `KernelPlan` only describes simulated devices and a USB/IP server (`SimDevice`, ``usbip``):
the application layer builds the backends (`wasi_hw.apps.plan_backends`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, Callable, Iterable, Mapping

from wasi_hw import UserError

from ._audit import AuditLog
from ._engine import KernelEngine
from ._hosts import Backends
from ._manifest import I2cGrant, Limits, Manifest, RestartPolicy, TomlDoc, _V, parse_manifest
from ._supervisor import Event, Kernel

__all__ = [
    "adhoc_manifest", "run_driver", "RunResult", "KernelPlan", "SimDevice", "load_kernel_file",
    "parse_usbip", "USBIP_PORT",
]


@dataclass(frozen=True)
class SimDevice:
    """A simulated device a kernel file asks for: a model name or alias (``bme280``,
    ``echo``), for I2C the bus and address it answers on, and its constructor parameters."""

    model: str
    bus: str = "i2c-1"
    address: int = 0
    params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


USBIP_PORT = 3240   # usbipd's TCP port
_USBIP = re.compile(r"^(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9_.-]+))(?::(\d{1,5}))?$")


def parse_usbip(text: str) -> tuple[str, int]:
    """``"HOST[:PORT]"`` → ``(host, port)``; `UserError` (one line) when malformed."""
    m = _USBIP.match(text.strip())
    port = int(m.group(3)) if m and m.group(3) else USBIP_PORT
    if not m or not 1 <= port <= 65535:
        raise UserError(f"usbip {text!r}: expected HOST[:PORT] (e.g. 192.168.1.20:3240, "
                        "[::1]:3240), port 1..65535")
    return (m.group(1) or m.group(2)), port


def adhoc_manifest(wasm: Path | str, *, bus: str, allow: Iterable[int],
                   config: Mapping[str, str] | None = None, name: str | None = None,
                   poll_interval_ms: int = 1000, limits: Limits | None = None,
                   restart: RestartPolicy | None = None) -> Manifest:
    wasm = Path(wasm)
    addrs = list(allow)
    for a in addrs:
        if not 0 <= a <= 0x7F:
            raise UserError(f"--allow {a:#x}: not a 7-bit I2C address")
    cfg = {"bus": bus}
    if addrs:
        cfg["address"] = f"{addrs[0]:#04x}"
    cfg.update(config or {})
    stem = re.sub(r"[^a-z0-9_-]", "-", (name or wasm.stem).lower()).strip("-") or "driver"
    return Manifest(
        name=stem, wasm=wasm.resolve(), config=MappingProxyType(cfg),
        i2c=(I2cGrant(bus, frozenset(addrs)),) if addrs else (),
        limits=limits or Limits(), poll_interval_ms=poll_interval_ms,
        restart=restart or RestartPolicy(),
    )


@dataclass
class RunResult:
    state: str
    readings: list[Any]
    events: list[Event]
    audit: list[dict]
    polls: int
    faults: int
    errors: int
    config_read: dict[str, bool] = field(default_factory=dict)   # keys asked → were they set


def run_driver(manifest: Manifest, backends: Backends, *, polls: int = 1,
               on_event: Callable[[Event], None] | None = None, audit: AuditLog | None = None,
               cache_dir: Path | str | None = None, wasm: bytes | None = None,
               duration: float | None = None, engine: KernelEngine | None = None) -> RunResult:
    """Run one driver for `polls` polls against `backends` (see the module docstring).
    Pass `engine` to share one `KernelEngine` (and its ticker) across many runs."""
    events: list[Event] = []

    def sink(event: Event) -> None:
        events.append(event)
        if on_event is not None:
            on_event(event)

    audit = audit or AuditLog()
    with Kernel(backends, on_event=sink, audit=audit, cache_dir=cache_dir, engine=engine) as kernel:
        slot = kernel.add(manifest, wasm)
        kernel.run(rounds=polls, duration=duration)
        return RunResult(
            state=slot.state,
            readings=[e.data for e in events if e.kind == "report"],
            events=events,
            audit=audit.for_driver(manifest.name),
            polls=slot.polls,
            faults=slot.faults,
            errors=sum(1 for e in events if e.kind == "error"),
            config_read={**slot.config_read,
                         **getattr(slot.hosts.get("wasi_driver"), "config_read", {})},
        )


# -- kernel files ---------------------------------------------------------------------------

@dataclass(frozen=True)
class KernelPlan:
    path: Path
    manifests: tuple[Manifest, ...]
    routes: tuple[tuple[str, str], ...]
    i2c_sim: tuple[SimDevice, ...]
    usb_sim: tuple[SimDevice, ...]
    tick_ms: float = 5.0
    rounds: int | None = 5
    watch: bool = False
    usbip: tuple[str, int] | None = None   # USB devices from this USB/IP server
    node: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))  # fleet: nats, name, lattice


def load_kernel_file(path: Path | str) -> KernelPlan:
    """Validate a kernel file::

        [kernel]
        tick_ms = 5          # epoch tick
        rounds = 5           # default run length (0: until stopped)
        usbip = "pi.local:3240"   # optional: USB devices from this USB/IP server (not with sim.usb)
        nats = "nats://hub:4222"  # optional, for `wasi-hw node run`: the lattice's NATS,
        name = "pi-kitchen"       #   this node's name and its lattice
        lattice = "house"
        [[driver]]
        manifest = "bme280/manifest.toml"   # relative to this file
        poll_interval_ms = 500              # optional: override the manifest's schedule
        [[driver]]                          # or a manifest inline (name, wasm, [[driver.i2c]] …)
        [[route]]
        from = "bme280"
        to = "lcd"
        [[sim.i2c]]          # simulated devices; without any, real buses are used
        model = "bme280"
        bus = "i2c-1"
        address = 0x76
        params = { temperature_c = 21.0 }
        [[sim.usb]]
        model = "echo"
    """
    doc = TomlDoc(Path(path))
    v = _V(doc, doc.data, (), "kernel file")
    tick_ms, rounds = 5.0, 5
    usbip: tuple[str, int] | None = None
    node: dict[str, str] = {}
    v.seen.update(("kernel", "sim"))  # optional tables: known even when absent
    if "kernel" in v.table:
        kv = _V(doc, v.get("kernel", dict, desc="a table"), ("kernel",), "kernel")
        tick_ms = kv.get("tick_ms", (int, float), 5.0, desc="milliseconds")
        if not 0.1 <= tick_ms <= 1000:
            raise kv.err("tick_ms", f"kernel.tick_ms = {tick_ms} is out of range (0.1..1000)")
        rounds = kv.int("rounds", 5, lo=0, hi=1 << 31, desc="a count")
        usbip_text = kv.get("usbip", str, None, desc='"HOST:PORT"')
        if usbip_text is not None:
            try:
                usbip = parse_usbip(usbip_text)
            except UserError as err:
                raise kv.err("usbip", f"kernel.{err}") from None
        for key in ("nats", "name", "lattice"):       # fleet node settings
            value = kv.get(key, str, None, desc="a string")
            if value is not None:
                node[key] = value
        kv.done()
    manifests: list[Manifest] = []
    # a node's kernel file (`wasi-hw node run`) may list no drivers: the registry assigns them
    drivers = v.get("driver", list, [], desc="an array of tables [[driver]]")
    for n, d in enumerate(drivers):
        dv = _V(doc, d, ("driver", n), "driver")
        if "manifest" in dv.table:
            rel = dv.get("manifest", str, desc="a manifest path")
            interval = dv.int("poll_interval_ms", None, lo=1, hi=86_400_000, desc="milliseconds")
            dv.done()
            target = doc.path.parent / rel
            if not target.is_file():
                raise dv.err("manifest", f"driver.manifest: {target}: no such file")
            m = parse_manifest(TomlDoc(target))
            if interval is not None:      # scheduling only: grants stay the manifest's
                m = replace(m, poll_interval_ms=interval)
            manifests.append(m)
        else:  # an inline manifest
            manifests.append(parse_manifest(doc, d, ("driver", n)))
    names = [m.name for m in manifests]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise doc.error(("driver", i), f"driver name {name!r} appears twice")
    routes: list[tuple[str, str]] = []
    for n, r in enumerate(v.get("route", list, [], desc="an array of tables [[route]]")):
        rv = _V(doc, r, ("route", n), "route")
        src = rv.get("from", str, desc="a driver name")
        dst = rv.get("to", str, desc="a driver name")
        for key, name in (("from", src), ("to", dst)):
            if name not in names:
                raise rv.err(key, f"route.{key}: no driver named {name!r} "
                                  f"(drivers: {', '.join(names)})")
        rv.done()
        routes.append((src, dst))
    i2c_sim: list[SimDevice] = []
    usb_sim: list[SimDevice] = []
    if "sim" in v.table:
        sv = _V(doc, v.get("sim", dict, desc="a table"), ("sim",), "sim")
        for n, s in enumerate(sv.get("i2c", list, [], desc="an array of tables [[sim.i2c]]")):
            dv = _V(doc, s, ("sim", "i2c", n), "sim.i2c")
            model = dv.get("model", str, desc="a device model name")
            bus = dv.get("bus", str, "i2c-1", desc="a bus name")
            address = dv.int("address", lo=0, hi=0x7F, desc="a 7-bit address")
            params = dv.get("params", dict, {}, desc="a table of model parameters")
            dv.done()
            params = _check_model(dv, model, params, "i2c")
            i2c_sim.append(SimDevice(model, bus, address, MappingProxyType(params)))
        for n, s in enumerate(sv.get("usb", list, [], desc="an array of tables [[sim.usb]]")):
            dv = _V(doc, s, ("sim", "usb", n), "sim.usb")
            model = dv.get("model", str, desc="a device model name")
            params = dv.get("params", dict, {}, desc="a table of model parameters")
            dv.done()
            params = _check_model(dv, model, params, "usb")
            usb_sim.append(SimDevice(model, params=MappingProxyType(params)))
        sv.done()
    v.done()
    if usbip is not None and usb_sim:
        raise doc.error(("sim", "usb"), "kernel.usbip and [[sim.usb]] both choose the USB "
                                        "devices: keep one")
    return KernelPlan(doc.path, tuple(manifests), tuple(routes), tuple(i2c_sim), tuple(usb_sim),
                      float(tick_ms), rounds or None, usbip=usbip,
                      node=MappingProxyType(node))


def _check_model(dv: Any, model: str, params: dict, kind: str) -> dict:
    """The model and its parameters checked at load time, errors at their ``file:line``."""
    from wasi_hw.host import device_models

    try:
        return device_models().check(model, params, kind=kind)[1]
    except UserError as err:
        key = "params" if "parameter" in str(err) and "params" in dv.table else "model"
        raise dv.err(key, f"sim.{kind}: {err}") from None
