"""The supervisor: runs many drivers side by side, restarts the faulty, hot-updates the running.

Contract:
- `Kernel(backends)` owns one `KernelEngine` (epoch ticker), one `AotCache` and one
  `AuditLog`. The backends pass once through the trace hook (`traced_backends`: recorded or
  replaced while ``wasi-hw trace record/replay`` runs, untouched otherwise). `add(manifest)`
  reads the driver's wasm, gets its module from the cache (compiling on a miss) and links it
  (`Sandbox`) — nothing runs yet; load errors raise.
- Lifecycle per driver: ``starting`` → (fresh Store + host modules, ``init()``) →
  ``running`` (``poll()`` every ``poll_interval_ms``) → on a fault ``backoff`` → restarted →
  … → ``quarantined`` after more than ``restart.max_faults`` consecutive faults. A fault is a
  trap, a blown per-call deadline (the epoch stops an infinite loop within the deadline plus
  one tick), a Python error escaping the shims, an instantiation failure or a non-zero
  ``init()``; a module that cannot be instantiated under its limits at all is quarantined at
  once, and so is an ``init()`` that fails right after a host call answered with an error no
  restart can change (`DETERMINISTIC`: no such bus, no ACK at the address, a denied grant):
  the reason names the call, the error and its message (bus, address) once. A non-zero
  ``poll()`` is a driver-reported error (event ``error``), not a fault. A successful poll
  resets the consecutive-fault count. Backoff doubles per consecutive fault
  (`RestartPolicy.backoff`).
- On a simulated `VirtualClock` (the backends' clock), virtual time is advanced by the real
  time that passed before every guest call, so device timing between polls is as on hardware.
- Scheduling is one loop on the calling thread: the driver whose poll is due first runs next;
  a driver that overruns only delays the others by at most its own deadline; drivers that
  fall behind skip missed slots rather than bursting.
- Events (`Event`) go to ``on_event``: ``state`` (data: the new state, detail: why),
  ``report`` (data: the decoded CBOR item), ``log`` (data: (level, message)), ``error``.
- Routes (`route(src, dst)`) deliver every report of ``src`` to ``dst``'s inbox.
- Hot update (`update(name, wasm)`, or `request_update` from any thread, applied between
  polls): the new module is compiled and linked *before* the old instance stops; if that, its
  instantiation or its ``init()`` fails, the old module is started again and keeps running,
  and `update` returns False with the reason in a ``state`` event. Other drivers never stop.
- Grants between drivers (`_sharing`): one `GrantTable` (``grants``) for all drivers; each
  instance's `DriverEnv` gets its view, closed with the instance's hosts, so a driver that
  faults, restarts, is updated or stops loses every grant it gave or received.
- Inter-module communication (`_imc`): one `ImcHub` (``imc``) for all drivers, each instance
  gets its `ImcEnv` (``hosts["wasi_imc"]``, attached to the instance before ``init()``); a
  provider that faults while serving a call is faulted by the supervisor at its next step (the
  same restart policy as a faulting poll). ``imc_remote`` (a `RemoteLink`, e.g. the fleet
  layer's NATS bridge) carries calls and publications to other kernels; without it IMC is
  local only.
- `close()` drops every instance and its handles and stops the ticker.
- Fleet hooks (`_snapshot`): `add(manifest, wasm, restore=snapshot)` starts the driver from a
  snapshot instead of calling ``init()`` (only its first start; a restart after a fault runs
  ``init()``) and re-offers the IMC services the snapshot records (the offer rule checked
  again); `snapshot(name)` takes a running driver's state between calls; `remove(name)` stops
  a driver and forgets it (its routes too). All three run on the kernel's thread.
"""

from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from wasi_hw import HwError, UserError

from ._audit import AuditLog
from ._cache import AotCache
from ._engine import KernelEngine
from ._hosts import Backends, close_hosts, make_hosts, traced_backends
from ._imc import ImcHub
from ._manifest import Manifest
from ._sandbox import DriverFault, DriverInstance, LoadError, Sandbox, module_interface
from ._sharing import GrantTable
from ._snapshot import Snapshot
from ._snapshot import restore as _restore
from ._snapshot import take as _take

__all__ = ["Kernel", "DriverSlot", "Event", "STATES"]

STATES = ("loaded", "starting", "running", "backoff", "quarantined", "stopped")


class Event(NamedTuple):
    """One kernel event (immutable; a named tuple: a report's event is made per poll)."""

    time: float          # seconds since the kernel was created
    driver: str
    kind: str            # state | report | log | error
    data: Any
    detail: str = ""


#: errno cases that a restart cannot change (no such bus, no device answering at the
#: address, a grant the manifest does not give): an ``init()`` failing right after one of
#: them is reported once and quarantined at once instead of restarted with backoff.
DETERMINISTIC = frozenset({"no_such_bus", "nack_address", "access"})


@dataclass
class DriverSlot:
    """One supervised driver."""

    manifest: Manifest
    sandbox: Sandbox
    source: str                       # "cache" or "compiled"
    state: str = "loaded"
    instance: DriverInstance | None = None
    hosts: dict[str, Any] = field(default_factory=dict)
    consecutive_faults: int = 0
    faults: int = 0
    restarts: int = 0
    polls: int = 0
    config_read: dict[str, bool] = field(default_factory=dict)   # key → was it set
    next_due: float = 0.0
    last_report: Any = None
    last_error: str = ""
    restore: Snapshot | None = None   # fleet: resume from this instead of init() (once)

    @property
    def name(self) -> str:
        return self.manifest.name


class Kernel:
    """Supervises drivers against one set of backends."""

    def __init__(self, backends: Backends, *, on_event: Callable[[Event], None] | None = None,
                 audit: AuditLog | None = None, cache_dir: Path | str | None = None,
                 tick_ms: float = 5.0, engine: KernelEngine | None = None,
                 imc_remote: Any = None) -> None:
        # the one trace hook: `wasi-hw trace record/replay` wrap or replace what was given
        backends = traced_backends(backends)
        self.backends = backends
        self._own_engine = engine is None
        self.engine = engine or KernelEngine(tick_ms=tick_ms)
        self.cache = AotCache(self.engine, cache_dir, describe=module_interface)
        self.audit = audit or AuditLog()
        self.grants = GrantTable(
            self.audit, lambda n: s.manifest if (s := self.slots.get(n)) else None
        )
        self.on_event = on_event or (lambda e: None)
        self.slots: dict[str, DriverSlot] = {}
        self.routes: dict[str, list[str]] = {}
        self._updates: queue.Queue[tuple[str, bytes]] = queue.Queue()
        self._imc_faults: queue.Queue[tuple[str, Any, str]] = queue.Queue()
        self.imc = ImcHub(self.audit, remote=imc_remote,
                          on_fault=lambda name, inst, why: self._imc_faults.put((name, inst, why)))
        self._t0 = time.monotonic()
        self._stop = threading.Event()
        # Simulated time follows real time between guest calls (so a sensor's conversion
        # finishes between polls as on hardware); guest delays still advance it instantly.
        clock = backends.clock or getattr(backends.i2c, "clock", None)
        self._virtual = clock if type(clock).__name__ == "VirtualClock" else None
        self._real_ns = time.monotonic_ns()

    # -- setup -----------------------------------------------------------------------------

    def add(self, manifest: Manifest, wasm: bytes | None = None, *,
            restore: Snapshot | None = None) -> DriverSlot:
        """Load and link `manifest`'s driver (``wasm`` overrides reading ``manifest.wasm``;
        ``restore``: its first start resumes from this snapshot instead of ``init()``)."""
        if manifest.name in self.slots:
            raise UserError(f"driver {manifest.name!r} is added twice")
        sandbox, source = self._link(manifest, wasm)
        slot = DriverSlot(manifest, sandbox, source, restore=restore)
        self.slots[manifest.name] = slot
        return slot

    # -- fleet hooks (snapshot, remove): see kernel/_snapshot.py --------------------------

    def snapshot(self, name: str, *, withdraw: bool = False) -> Snapshot:
        """Driver `name`'s state between calls (it must be running), with the IMC services it
        offers; taken while no IMC call is inside it. ``withdraw`` (a move: `remove` follows):
        its offers and subscriptions are taken away first, so no call changes it afterwards."""
        slot = self.slots.get(name)
        if slot is None or slot.instance is None or slot.state != "running":
            raise UserError(f"driver {name!r} is not running: no snapshot")
        imc = slot.hosts.get("wasi_imc")
        offers = imc.offers() if imc is not None else ()
        if withdraw and imc is not None:
            imc.close_all()
        with slot.instance.held(None, "snapshot"):   # an IMC call in progress ends first
            return dataclasses.replace(_take(slot.instance), offers=offers)

    def remove(self, name: str) -> None:
        """Stop driver `name` (its instance, handles and grants) and forget it."""
        slot = self.slots.pop(name, None)
        if slot is None:
            raise UserError(f"no driver named {name!r}")
        self._stop_instance(slot)
        slot.state = "stopped"
        self.routes.pop(name, None)
        for dsts in self.routes.values():
            while name in dsts:
                dsts.remove(name)

    def route(self, src: str, dst: str) -> None:
        for name in (src, dst):
            if name not in self.slots:
                raise UserError(f"route names unknown driver {name!r}")
        if src == dst:
            raise UserError(f"route from {src!r} to itself")
        self.routes.setdefault(src, []).append(dst)

    def _link(self, manifest: Manifest, wasm: bytes | None) -> tuple[Sandbox, str]:
        if wasm is None:
            try:
                wasm = manifest.wasm.read_bytes()
            except OSError as err:
                raise UserError(f"driver {manifest.name}: cannot read {manifest.wasm}: "
                                f"{err.strerror or err}") from None
        try:
            loaded = self.cache.load(wasm)
        except Exception as err:  # wasmtime.WasmtimeError: not a valid module
            raise LoadError(f"driver {manifest.name}: not a valid wasm module: "
                            f"{str(err).splitlines()[0]}") from None
        try:
            sandbox = Sandbox(self.engine, loaded.module, manifest, interface=loaded.interface)
            return sandbox, loaded.source
        except LoadError as err:
            raise LoadError(f"driver {manifest.name}: {err.message}") from None

    # -- events ----------------------------------------------------------------------------

    def _emit(self, slot: DriverSlot, kind: str, data: Any, detail: str = "") -> None:
        self.on_event(Event(round(time.monotonic() - self._t0, 6), slot.name, kind, data, detail))

    def _set_state(self, slot: DriverSlot, state: str, why: str = "") -> None:
        slot.state = state
        self._emit(slot, "state", state, why)

    # -- lifecycle -------------------------------------------------------------------------

    def _sinks(self, slot: DriverSlot) -> tuple[Callable[[Any], None], Callable[[str, str], None]]:
        name, routes, monotonic, t0 = slot.name, self.routes, time.monotonic, self._t0

        def report(item: Any) -> None:      # `_emit`, inlined: one per poll
            slot.last_report = item
            self.on_event(Event(round(monotonic() - t0, 6), name, "report", item, ""))
            for dst in routes.get(name, ()):
                target = self.slots[dst]
                env = target.hosts.get("wasi_driver")
                if env is not None:
                    env.deliver(item)

        def log(level: str, message: str) -> None:
            self._emit(slot, "log", (level, message))

        return report, log

    def _stop_instance(self, slot: DriverSlot) -> None:
        slot.instance = None
        slot.config_read.update(getattr(slot.hosts.get("wasi_driver"), "config_read", {}))
        close_hosts(slot.hosts)
        slot.hosts = {}

    def _launch(self, slot: DriverSlot) -> tuple[str | None, bool]:
        """Fresh hosts + instance + ``init()``: (why it failed or None, failure is permanent)."""
        self._stop_instance(slot)
        report, log = self._sinks(slot)
        try:
            imc = self.imc.env(slot.manifest)
            slot.hosts = make_hosts(slot.manifest, self.backends, report_sink=report, log_sink=log,
                                    sharing=self.grants.view(slot.manifest), imc=imc)
            slot.instance = slot.sandbox.start(slot.hosts, self.audit)
            imc.attach(slot.instance)
            if slot.restore is not None:    # fleet: resume from a snapshot, no init()
                image, slot.restore = slot.restore, None
                _restore(slot.instance, image)
                try:       # its offers were made by the init() a restore skips
                    imc.reoffer(image.offers)
                except HwError as err:
                    return f"re-offering its services: {err}", True
                return None, False
            self._pace()
            code = slot.instance.call("init")
        except DriverFault as err:
            return f"init: {err}", False
        except LoadError as err:   # e.g. memory above the limit: no restart can help
            return err.message, True
        if code != 0:
            last = slot.instance.violations.last_hw_error
            if last is not None and last[1] in DETERMINISTIC:
                call, kind, message = last
                return f"init returned {code} after {call}: {kind}: {message}", True
            return f"init returned {code}", False
        return None, False

    def _start(self, slot: DriverSlot) -> bool:
        """Start (or restart) `slot`; a failure is a fault. True when running."""
        self._set_state(slot, "starting")
        why, permanent = self._launch(slot)
        if why is not None:
            self._fault(slot, why, permanent=permanent)
            return False
        self._set_state(slot, "running")
        slot.next_due = time.monotonic()
        return True

    def _fault(self, slot: DriverSlot, why: str, *, permanent: bool = False) -> None:
        slot.faults += 1
        slot.consecutive_faults += 1
        slot.last_error = why
        self._stop_instance(slot)
        policy = slot.manifest.restart
        if permanent:
            self._set_state(slot, "quarantined", f"{why}; not restartable")
            return
        if slot.consecutive_faults > policy.max_faults:
            self._set_state(slot, "quarantined",
                            f"{why}; gave up after {slot.consecutive_faults} consecutive faults")
            return
        delay = policy.backoff(slot.consecutive_faults)
        slot.next_due = time.monotonic() + delay
        self._set_state(slot, "backoff", f"{why}; restart in {delay * 1000:.0f} ms")

    def _pace(self) -> None:
        now = time.monotonic_ns()
        if self._virtual is not None and now > self._real_ns:
            self._virtual.advance(now - self._real_ns)
        self._real_ns = now

    def _poll(self, slot: DriverSlot) -> None:
        assert slot.instance is not None
        self._pace()
        interval = slot.manifest.poll_interval_ms / 1000
        try:
            code = slot.instance.call("poll")
        except DriverFault as err:
            self._fault(slot, f"poll: {err}")
            return
        slot.polls += 1
        if code != 0:
            slot.last_error = f"poll returned {code}"
            self._emit(slot, "error", code, f"poll returned {code}")
        else:
            slot.consecutive_faults = 0
        now = time.monotonic()
        slot.next_due += interval
        if slot.next_due < now:          # fell behind: skip missed slots, do not burst
            slot.next_due = now + interval

    def start(self) -> None:
        """Start every driver that is not started yet."""
        for slot in self.slots.values():
            if slot.state == "loaded":
                self._start(slot)

    def step(self) -> DriverSlot | None:
        """Run the next due action (poll or restart) if one is due now; the slot acted on."""
        self._apply_updates()
        self._apply_imc_faults()
        active = [s for s in self.slots.values() if s.state in ("running", "backoff")]
        if not active:
            return None
        slot = min(active, key=lambda s: s.next_due)
        if slot.next_due > time.monotonic():
            return None
        if slot.state == "backoff":
            slot.restarts += 1
            self._start(slot)
        else:
            self._poll(slot)
        return slot

    def run(self, *, rounds: int | None = None, duration: float | None = None) -> None:
        """Run until every live driver polled `rounds` times, `duration` s passed, all drivers
        are quarantined, or `stop()` is called."""
        self._stop.clear()
        self.start()
        end = None if duration is None else time.monotonic() + duration
        while not self._stop.is_set():
            live = [s for s in self.slots.values() if s.state in ("running", "backoff")]
            if not live:
                break
            if rounds is not None and all(s.polls >= rounds for s in live):
                break
            if self.step() is not None:
                continue
            now = time.monotonic()
            due = min(s.next_due for s in live)
            if end is not None and now >= end:
                break
            wait = max(0.0, due - now)
            if end is not None:
                wait = min(wait, max(0.0, end - now))
            self._stop.wait(min(wait, 0.25) if wait > 0 else 0)

    def stop(self) -> None:
        """Ask `run` to return (thread-safe)."""
        self._stop.set()

    # -- hot update ------------------------------------------------------------------------

    def request_update(self, name: str, wasm: bytes) -> None:
        """Queue a hot update; `run` applies it between polls (thread-safe)."""
        self._updates.put((name, wasm))

    def _apply_imc_faults(self) -> None:
        while True:
            try:
                name, instance, why = self._imc_faults.get_nowait()
            except queue.Empty:
                return
            slot = self.slots.get(name)
            if slot is not None and slot.instance is instance and instance is not None:
                self._fault(slot, why)

    def _apply_updates(self) -> None:
        while True:
            try:
                name, wasm = self._updates.get_nowait()
            except queue.Empty:
                return
            self.update(name, wasm)

    def update(self, name: str, wasm: bytes) -> bool:
        """Replace driver `name`'s module with `wasm`; True if the new one runs."""
        slot = self.slots.get(name)
        if slot is None:
            raise UserError(f"no driver named {name!r}")
        try:
            sandbox, source = self._link(slot.manifest, wasm)
        except (LoadError, UserError) as err:
            self._emit(
                slot, "state", slot.state, f"update rejected, old version keeps running: {err}"
            )
            return False
        old, old_state = slot.sandbox, slot.state
        slot.sandbox = sandbox
        self._emit(slot, "state", "starting", f"hot update ({source})")
        why, _ = self._launch(slot)
        if why is None:
            slot.source, slot.consecutive_faults = source, 0
            slot.state = "running"
            slot.next_due = time.monotonic()
            self._emit(slot, "state", "running", f"updated ({source})")
            return True
        self._stop_instance(slot)       # the new version never counts as a fault of the old
        slot.sandbox = old
        self._emit(slot, "state", old_state, f"update failed ({why}); old version restored")
        if old_state in ("running", "starting", "loaded"):
            self._start(slot)
        return False

    # -- teardown --------------------------------------------------------------------------

    def close(self) -> None:
        for slot in self.slots.values():
            self._stop_instance(slot)
            if slot.state not in ("quarantined",):
                slot.state = "stopped"
        if self._own_engine:
            self.engine.close()

    def __enter__(self) -> Kernel:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
