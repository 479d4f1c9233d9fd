"""The node agent: a kernel joined to a lattice, running what the registry assigns to it.

Contract:
- `NodeAgent(config, backends, offers)` — ``offers`` is what the node advertises (its I2C
  buses and USB devices, `offers_of`). `run()` blocks: the kernel loop runs on the calling
  thread, NATS on a second thread (asyncio); `stop()` (any thread) ends both and removes
  nothing from the registry (a node that leaves is simply no longer heartbeating).
- The node writes its record ``node.<name>`` (arch, buses, USB devices, version, heartbeat
  counter, ttl) and renews it every ``heartbeat_s`` by compare-and-set. Another node that
  sees a record unchanged for ``ttl_s`` (by its own clock) marks it ``lost`` by
  compare-and-set — exactly one wins — and re-places that node's modules: each goes to an
  eligible node (placement rule + grants, `_placement`) with ``epoch + 1``, resuming from its
  last snapshot when it is stateful, or is left unplaced with a note.
- Fencing. A node runs module M only while ``mod.M`` names it, and only at the epoch it names.
  A node whose own heartbeat has not succeeded for ``ttl_s / 2`` holds its stateful
  modules (no calls into them) until it has renewed and re-read the registry, so a node that
  was paused, partitioned or presumed dead never runs a module another node now owns;
  modules with hardware grants keep running (no other node can take them over).
- Checkpoints (``checkpoint_s`` > 0): stateful modules are snapshotted periodically and the
  record points at the newest one, so re-placement after a loss resumes from it.
  A node whose record was marked lost re-registers, and runs only what the registry then
  assigns to it. An *edge* node (``edge=True``, e.g. behind a leaf server) trades this for
  availability: it keeps running everything while cut off from the registry, and when it
  is marked lost its modules stay assigned to it (no one else can take them over).
- IMC: the node's kernel joins the lattice's services and publications through one
  `NatsBridge` (its own connection, same servers, lattice and credentials), so a module here
  calls and offers services across nodes. A move withdraws the module's offers before its
  snapshot (no call changes it afterwards); the target re-offers them on restore, so callers
  see ``unavailable`` at most during the hand-over and are then served by the target.
- Running: artifacts are fetched from the Object Store, checked against the digests in the
  module's record (a mismatch is refused: status ``refused``), the manifest parsed and the
  module added to the node's `Kernel` (its AoT cache, manifests, grants, deadlines, audit as
  for ``kernel run``). A record with ``move.to`` naming another node: the module is removed
  between two calls, its snapshot (stateful modules) stored as ``<module>/<epoch+1>`` and the
  record switched to the target with ``epoch + 1`` by compare-and-set. ``update``: the new
  version is hot-swapped (`Kernel.update`: the old keeps running if the new fails) and the
  record's digests follow only on success.
- Events: every report, log and state change is published on
  ``wasihw.<lattice>.evt.<module>.<kind>`` as JSON ``{"node", "epoch", "data", "detail"}``;
  ``status.<module>`` carries state, restarts, faults, reports and the last report.
  ``wasihw.<lattice>.ctl.<node>.logs`` answers ``{"module": M}`` with its recent log lines;
  ``….ctl.<node>.view`` with the newest registry revision its cache has seen.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import json
import platform
import queue
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wasi_hw import HwError, UserError, __version__
from wasi_hw.kernel import (
    AuditLog,
    Backends,
    Event,
    Kernel,
    ManifestError,
    Snapshot,
    load_manifest,
    migratable,
)

from . import _placement
from ._artifacts import ArtifactError, Artifacts, Snapshots, sha256
from ._bridge import NatsBridge
from ._names import (
    check_lattice,
    check_name,
    ctl_subject,
    evt_subject,
    module_key,
    node_key,
    status_key,
)
from ._registry import Conflict, Credentials, Entry, Registry, connect, credential_options

__all__ = ["NodeAgent", "NodeConfig", "offers_of"]


@dataclass
class NodeConfig:
    nats: str
    name: str
    lattice: str = "default"
    creds: Credentials | None = None
    cache_dir: Path | str | None = None
    heartbeat_s: float = 1.0
    ttl_s: float = 4.0
    tick_ms: float = 5.0
    arch: str = field(default_factory=platform.machine)
    replicas: int = 1
    js_domain: str | None = None   # the registry's JetStream domain (a leaf node: the hub's)
    edge: bool = False             # keeps running its modules while cut off (see docstring)
    checkpoint_s: float = 0.0      # > 0: snapshot stateful modules this often (failover state)

    def __post_init__(self) -> None:
        check_name(self.name, "node name")
        check_lattice(self.lattice)
        if not 0 < self.heartbeat_s * 2 <= self.ttl_s:
            raise UserError(f"heartbeat every {self.heartbeat_s} s needs a ttl of at least twice "
                            f"that (ttl_s = {self.ttl_s})")


def offers_of(backends: Backends) -> dict[str, list[str]]:
    """What a node with `backends` can grant: its I2C buses and USB devices (vid:pid)."""
    buses: list[str] = []
    i2c = backends.i2c
    if i2c is not None and hasattr(i2c, "buses"):
        buses = list(i2c.buses())
    elif isinstance(i2c, dict):
        buses = list(i2c)
    usb: list[str] = []
    if backends.usb is not None and hasattr(backends.usb, "devices"):
        try:
            usb = [f"{d.vendor_id:04x}:{d.product_id:04x}" for d in backends.usb.devices()]
        except Exception:   # an unreachable USB/IP server offers nothing now
            usb = []
    return {"buses": sorted(set(buses)), "usb": sorted(set(usb))}


@dataclass
class _Local:
    epoch: int
    wasm: str
    manifest: str
    stateful: bool
    reports: int = 0
    last_report: Any = None
    state: str = "starting"
    detail: str = ""
    status_due: float = 0.0


class NodeAgent:
    """One node of a lattice (see the module docstring)."""

    def __init__(self, config: NodeConfig, backends: Backends,
                 offers: dict[str, list[str]] | None = None, *,
                 on_event: Callable[[Event], None] | None = None,
                 kernel_options: dict[str, Any] | None = None) -> None:
        self.cfg = config
        self.offers = offers if offers is not None else offers_of(backends)
        self.audit = AuditLog()
        # kernel_options: more `Kernel` keywords; without an ``imc_remote`` of its own the
        # node's modules join the lattice's IMC through one `NatsBridge` (started by `run`)
        options = dict(kernel_options or {})
        self.bridge: NatsBridge | None = None
        if "imc_remote" not in options:
            self.bridge = NatsBridge([u.strip() for u in config.nats.split(",")],
                                     lattice=config.lattice, name=f"wasi-hw node {config.name} imc",
                                     **credential_options(config.creds))
            options["imc_remote"] = self.bridge
        self.kernel = Kernel(backends, on_event=self._on_kernel_event, audit=self.audit,
                             cache_dir=config.cache_dir, tick_ms=config.tick_ms, **options)
        self._user_on_event = on_event
        self._commands: queue.Queue[tuple[Callable[[Kernel], Any], concurrent.futures.Future]] = (
            queue.Queue()
        )
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self.local: dict[str, _Local] = {}
        self._view: dict[str, Entry] = {}
        self._seen: dict[str, tuple[int, float]] = {}
        self._lease_until = 0.0                 # monotonic: stateful modules run until then
        self._refused: dict[str, tuple[int | None, str | None]] = {}   # (epoch, wasm) as recorded
        self._held_snap: dict[str, tuple[int, Snapshot]] = {}
        self._logs: dict[str, collections.deque] = {}
        self._workdir = Path(tempfile.mkdtemp(prefix=f"wasihw-node-{config.name}-"))
        self._incarnation = uuid.uuid4().hex[:12]
        self._beats = 0
        self.view_revision = 0                  # the newest registry revision seen
        self._artifact_cache: dict[tuple[str, str], tuple[bytes, Any]] = {}
        # snapshot images pushed by a source node during a move: (module, epoch) → parts
        self._pushed: dict[tuple[str, int], dict[str, Any]] = {}
        self._pushed_ready: dict[tuple[str, int], asyncio.Event] = {}
        self.ready = threading.Event()          # registered and caught up with the registry
        self.error: BaseException | None = None

    # -- the kernel thread -----------------------------------------------------------------

    def in_kernel(self, fn: Callable[[Kernel], Any]) -> concurrent.futures.Future:
        """Run ``fn(kernel)`` on the kernel thread between two calls; its future."""
        fut: concurrent.futures.Future = concurrent.futures.Future()
        self._commands.put((fn, fut))
        self._wake.set()
        return fut

    def run(self) -> None:
        """Join the lattice and run until `stop()`."""
        if self.bridge is not None:
            self.bridge.start()       # `UserError` when no server answers in time
        self._thread = threading.Thread(target=self._nats_thread, name=f"node-{self.cfg.name}-nats",
                                        daemon=True)
        self._thread.start()
        kernel = self.kernel
        try:
            while not self._stop.is_set():
                self._drain()
                if time.monotonic() > self._lease_until and not self.cfg.edge:
                    self._hold()
                if kernel.step() is not None:
                    continue
                live = [s for s in kernel.slots.values() if s.state in ("running", "backoff")]
                wait = 0.05
                if live:
                    wait = min(wait, max(0.0, min(s.next_due for s in live) - time.monotonic()))
                if wait > 0 and self._commands.empty():
                    self._wake.wait(wait)
                self._wake.clear()
        finally:
            self._stop.set()
            self._drain()
            if self._thread is not None:
                self._thread.join(timeout=5)
            kernel.close()          # withdraws every offer (through the bridge)
            if self.bridge is not None:
                self.bridge.close()
        if self.error is not None:
            raise self.error

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()

    def _drain(self) -> None:
        while True:
            try:
                fn, fut = self._commands.get_nowait()
            except queue.Empty:
                return
            if not fut.set_running_or_notify_cancel():
                continue
            try:
                fut.set_result(fn(self.kernel))
            except BaseException as err:   # handed to the awaiting side
                fut.set_exception(err)

    def _hold(self) -> None:
        """Lease expired: push every stateful module's next call past now (no calls)."""
        hold = time.monotonic() + 0.05
        for name, loc in self.local.items():
            slot = self.kernel.slots.get(name)
            if loc.stateful and slot is not None and slot.next_due < hold:
                slot.next_due = hold

    def _on_kernel_event(self, ev: Event) -> None:
        if self._user_on_event is not None:
            self._user_on_event(ev)
        loop = self._loop
        if loop is not None and not self._stop.is_set():
            loop.call_soon_threadsafe(self._event_async, ev)

    # -- the NATS thread -------------------------------------------------------------------

    def _nats_thread(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        try:
            loop.run_until_complete(self._main())
        except BaseException as err:
            self.error = err
            self.stop()
        finally:
            loop.close()

    async def _main(self) -> None:
        cfg = self.cfg
        self._rewatch = asyncio.Event()

        async def reconnected() -> None:   # consumers may be gone with the old server
            self._rewatch.set()

        self.nc = await connect(cfg.nats, cfg.creds, name=f"wasi-hw node {cfg.name}",
                                on_reconnect=reconnected)
        replicas, domain = cfg.replicas, cfg.js_domain
        while True:     # JetStream may not be ready yet (a cluster electing, a hub away)
            try:
                self.registry = await Registry.open(self.nc, cfg.lattice, replicas=replicas,
                                                    domain=domain)
                self.artifacts = await Artifacts.open(self.nc, cfg.lattice, replicas=replicas,
                                                      domain=domain)
                self.snapshots = await Snapshots.open(self.nc, cfg.lattice, replicas=replicas,
                                                      domain=domain)
                break
            except Exception as err:
                if self._stop.is_set():
                    return
                print(f"node {cfg.name}: registry not reachable yet ({type(err).__name__}: "
                      f"{err}); retrying", file=sys.stderr, flush=True)
                await asyncio.sleep(1.0)
        self._dirty = asyncio.Event()
        await self._register()
        await self.nc.subscribe(ctl_subject(cfg.lattice, cfg.name, "logs"), cb=self._ctl_logs)
        await self.nc.subscribe(ctl_subject(cfg.lattice, cfg.name, "view"), cb=self._ctl_view)
        await self.nc.subscribe(ctl_subject(cfg.lattice, cfg.name, "snapshot"),
                                cb=self._ctl_snapshot)
        tasks = [asyncio.create_task(self._watch()), asyncio.create_task(self._heartbeat()),
                 asyncio.create_task(self._reconcile_loop())]
        if cfg.checkpoint_s > 0:
            tasks.append(asyncio.create_task(self._checkpoints()))
        try:
            while not self._stop.is_set():
                done = [t for t in tasks if t.done()]
                for t in done:
                    if t.exception() is not None:
                        raise t.exception()   # type: ignore[misc]
                await asyncio.sleep(0.05)     # the stop flag comes from another thread
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            try:
                await asyncio.wait_for(self.nc.close(), 2)
            except Exception:
                pass

    def _record(self) -> dict:
        cfg = self.cfg
        return {"name": cfg.name, "arch": cfg.arch, "buses": self.offers["buses"],
                "usb": self.offers["usb"], "version": __version__, "state": "up",
                "incarnation": self._incarnation, "beat": self._beats,
                "heartbeat_s": cfg.heartbeat_s, "ttl_s": cfg.ttl_s, "edge": cfg.edge,
                "time": time.time()}

    async def _register(self) -> None:
        key = node_key(self.cfg.name)
        while True:
            cur = await self.registry.get(key)
            try:
                if cur is None:
                    self._rev = await self.registry.create(key, self._record())
                else:
                    self._rev = await self.registry.update(key, self._record(), cur.revision)
                self._lease_until = time.monotonic() + self.cfg.ttl_s / 2
                return
            except Conflict:
                continue

    async def _heartbeat(self) -> None:
        key = node_key(self.cfg.name)
        while True:
            await asyncio.sleep(self.cfg.heartbeat_s)
            self._beats += 1
            try:
                prev = self._rev
                self._rev = await self.registry.update(key, self._record(), self._rev)
                self._lease_until = time.monotonic() + self.cfg.ttl_s / 2
                # our own previous heartbeat must have come back through the watch by now;
                # if not, the watch's consumer stalled (e.g. its server left a cluster)
                if self.ready.is_set() and self.view_revision < prev:
                    self._rewatch.set()
            except Conflict:
                # someone changed our record: we were presumed lost. Re-read everything
                # before running anything again, then come back as a fresh node.
                await self._resync()
                await self._register()
            except Exception:
                # server unreachable: our lease runs out (stateful modules hold), and we cannot
                # judge other nodes' silence while we are cut off ourselves
                self._seen.clear()
                continue
            await self._sweep()

    async def _resync(self) -> None:
        fresh = await self.registry.snapshot()
        self._view = dict(fresh)
        await self._reconcile()

    async def _watch(self) -> None:
        while True:
            self._rewatch.clear()
            task = asyncio.create_task(self._watch_once())
            stop = asyncio.create_task(self._rewatch.wait())
            try:
                await asyncio.wait([task, stop], return_when=asyncio.FIRST_COMPLETED)
            finally:
                for t in (task, stop):
                    t.cancel()
                await asyncio.gather(task, stop, return_exceptions=True)
            await asyncio.sleep(0.05)   # reconnected or failed: watch again from the contents

    async def _watch_once(self) -> None:
        fresh: dict[str, Entry] = {}
        caught_up = False
        async for e in self.registry.watch():
            if e is None:
                if not caught_up:     # the current contents replace the old view at once
                    caught_up = True
                    self._view = fresh
                    self.ready.set()
                self._dirty.set()
                continue
            view = self._view if caught_up else fresh
            self.view_revision = max(self.view_revision, e.revision)
            if e.value is None:
                view.pop(e.key, None)
            else:
                view[e.key] = e
            if caught_up and e.key.startswith(("mod.", "node.")):
                self._dirty.set()

    async def _reconcile_loop(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self._reconcile()
            except (asyncio.CancelledError, KeyboardInterrupt):
                raise
            except Exception as err:      # one bad record must not stop the node
                self._log_line("-", f"reconcile: {type(err).__name__}: {err}")

    # -- desired state → the kernel ----------------------------------------------------------

    def _mods(self) -> dict[str, Entry]:
        return {k[4:]: e for k, e in self._view.items() if k.startswith("mod.")}

    async def _reconcile(self) -> None:
        me = self.cfg.name
        mods = self._mods()
        for name, e in mods.items():
            rec = e.value or {}
            mine = rec.get("node") == me and rec.get("desired") == "running"
            loc = self.local.get(name)
            move = rec.get("move") or {}
            if mine and move.get("to") and move["to"] != me:
                if loc is not None and loc.epoch == rec.get("epoch"):
                    await self._hand_off(name, e)
            elif mine:
                if loc is None or loc.epoch != rec.get("epoch"):
                    if loc is not None:
                        await self._drop(name, "superseded by a newer epoch")
                    if self._refused.get(name) != (rec.get("epoch"), rec.get("wasm")):
                        await self._launch(name, e)
                elif rec.get("update"):
                    await self._update(name, e)
            elif loc is not None:
                why = "stopped" if rec.get("desired") != "running" else \
                    f"now placed on {rec.get('node')} (epoch {rec.get('epoch')})"
                await self._drop(name, why)
            elif move.get("to") == me:
                asyncio.create_task(self._prefetch(rec))
        for name in [n for n in self.local if n not in mods]:
            await self._drop(name, "deployment removed")

    async def _prefetch(self, rec: dict) -> None:
        """Warm the artifacts and the AoT cache for a module about to move here."""
        try:
            wasm, manifest = await self._fetch(rec)
            code = migratable(wasm) if _placement.stateful(rec.get("needs", {})) else wasm
            await asyncio.wrap_future(self.in_kernel(lambda k: k.cache.load(code)))
        except Exception:
            pass

    async def _fetch(self, rec: dict) -> tuple[bytes, Any]:
        """The module's wasm and parsed manifest, checked against the record's digests (kept
        in memory by digest: a node fetches each artifact once)."""
        key = (rec["wasm"], rec["manifest"])
        hit = self._artifact_cache.get(key)
        if hit is not None:
            return hit
        wasm, text_bytes = await asyncio.gather(self.artifacts.fetch("wasm", rec["wasm"]),
                                                self.artifacts.fetch("manifest", rec["manifest"]))
        text = text_bytes.decode("utf-8")
        path = self._workdir / f"{rec['name']}-{rec['manifest'][:16]}.toml"
        manifest = load_manifest(path, text)
        if manifest.name != rec["name"]:
            raise ArtifactError("digest", f"manifest names {manifest.name!r}, the deployment "
                                          f"{rec['name']!r}")
        if len(self._artifact_cache) >= 32:
            self._artifact_cache.pop(next(iter(self._artifact_cache)))
        self._artifact_cache[key] = (wasm, manifest)
        return wasm, manifest

    async def _launch(self, name: str, e: Entry) -> None:
        rec = e.value or {}
        epoch: int = rec.get("epoch")  # type: ignore[assignment]  # set with every module record
        stateful = _placement.stateful(rec.get("needs", {}))
        try:
            wasm, manifest = await self._fetch(rec)
            why = _placement.why_not({"state": "up", **self._record()},
                                     _placement.needs_of(manifest), {})
            if why:
                raise ArtifactError("grants", f"refused: {why}")
            snap = None
            held = self._held_snap.pop(name, None)
            if held is not None and held[0] == epoch:
                snap = held[1]
            elif stateful and rec.get("snapshot"):
                snap = Snapshot.decode(await self._snapshot_image(name, rec))
            code = migratable(wasm) if stateful else wasm

            def start(k: Kernel) -> tuple[str, str]:
                slot = k.add(manifest, code, restore=snap)
                k.start()
                return slot.state, slot.last_error

            loc = _Local(epoch, rec["wasm"], rec["manifest"], stateful)
            self.local[name] = loc
            state, err = await asyncio.wrap_future(self.in_kernel(start))
            loc.state, loc.detail = state, err or ("resumed from snapshot" if snap else "")
        except (ArtifactError, ManifestError, HwError, UserError) as err:
            self.local.pop(name, None)
            self._refused[name] = (epoch, rec.get("wasm"))
            await self._status(name, {"node": self.cfg.name, "epoch": epoch, "state": "refused",
                                      "detail": str(err)})
            self._log_line(name, f"refused: {err}")
            return
        self._refused.pop(name, None)
        await self._push_status(name, force=True)

    async def _drop(self, name: str, why: str) -> None:
        loc = self.local.get(name)

        def remove(k: Kernel) -> None:
            if name in k.slots:
                k.remove(name)

        await asyncio.wrap_future(self.in_kernel(remove))
        self.local.pop(name, None)
        self._log_line(name, f"stopped here: {why}")
        if loc is not None:
            await self._publish(name, "state", {"state": "stopped", "epoch": loc.epoch}, why)
            if self._view.get(module_key(name)) is None or \
                    (self._view[module_key(name)].value or {}).get("desired") != "running":
                await self._status(name, {"node": self.cfg.name, "epoch": loc.epoch,
                                          "state": "stopped", "detail": why})

    async def _hand_off(self, name: str, e: Entry) -> None:
        rec = dict(e.value or {})
        loc = self.local[name]     # kept until the kernel has stopped it: its last reports
        target = rec["move"]["to"]  # are published (they arrive before the command's result)

        def snap_and_remove(k: Kernel) -> Snapshot | None:
            snap = None
            if loc.stateful and name in k.slots and k.slots[name].state == "running":
                snap = k.snapshot(name, withdraw=True)   # no IMC call after it
            if name in k.slots:
                k.remove(name)
            return snap

        snap = await asyncio.wrap_future(self.in_kernel(snap_and_remove))
        self.local.pop(name, None)
        new_epoch = int(rec["epoch"]) + 1
        storing = None
        try:
            key = digest = None
            if snap is not None:
                image = snap.encode()
                digest = sha256(image)
                # The target gets the image straight away, and the record switches while the
                # image is being stored (the store's copy is what a restart or a later
                # re-placement resumes from; the target waits for it if the push is lost).
                storing = asyncio.ensure_future(self.snapshots.put(name, new_epoch, image))
                await self._push_snapshot(target, name, new_epoch, image, digest)
                key = f"{name}/{new_epoch}"
            rec.update(node=target, epoch=new_epoch, move=None,
                       snapshot=key if loc.stateful else None, snapshot_sha256=digest,
                       note=f"moved from {self.cfg.name}" + (" with its state" if snap else ""))
            if storing is not None and storing.done():
                storing.result()                      # a store failure calls the move off
            await self.registry.update(module_key(name), rec, e.revision)
        except Conflict:
            # the record changed meanwhile: keep the state; reconcile decides where it runs
            if snap is not None:
                self._held_snap[name] = (loc.epoch, snap)
            self._dirty.set()
            return
        except Exception as err:
            if storing is not None:
                storing.cancel()
            # the snapshot could not be stored: the module resumes here, the move is called off
            if snap is not None:
                self._held_snap[name] = (loc.epoch, snap)
            self._log_line(name, f"move to {target} failed: {type(err).__name__}: {err}")
            await self._launch(name, e)
            back = dict(
                e.value or {},
                move=None,
                note=f"move to {target} failed ({type(err).__name__}); still on {self.cfg.name}",
            )
            try:
                await self.registry.update(module_key(name), back, e.revision)
            except Exception:
                self._dirty.set()
            return
        if storing is not None:
            try:
                await storing
            except Exception as err:       # the target runs it; a later restart cannot resume
                self._log_line(name, f"storing the snapshot failed after the hand-over: "
                                     f"{type(err).__name__}: {err}")
        self._log_line(name, f"handed over to {target} at epoch {new_epoch}")
        await self._publish(name, "state", {"state": "moved", "epoch": loc.epoch, "to": target}, "")

    async def _update(self, name: str, e: Entry) -> None:
        rec = dict(e.value or {})
        upd = rec["update"]
        try:
            wasm = await self.artifacts.fetch("wasm", upd["wasm"])
            if upd["manifest"] != rec["manifest"]:
                raise ArtifactError("digest", "an update that changes the manifest needs "
                                              "`fleet stop` + `fleet deploy` (grants are frozen)")
            code = migratable(wasm) if self.local[name].stateful else wasm
            ok = await asyncio.wrap_future(self.in_kernel(lambda k: k.update(name, code)))
            why = "" if ok else "the new version failed to start; the old one keeps running"
        except (ArtifactError, HwError, UserError) as err:
            ok, why = False, str(err)
        if ok:
            rec.update(wasm=upd["wasm"], update=None, note="updated")
            self.local[name].wasm = upd["wasm"]
        else:
            rec.update(update=None, note=f"update failed: {why}")
        try:
            await self.registry.update(module_key(name), rec, e.revision)
        except Conflict:
            self._dirty.set()
        self._log_line(name, rec["note"])

    # -- snapshot transport ----------------------------------------------------------------------

    _PUSH_CHUNK = 512 * 1024

    async def _push_snapshot(self, target: str, name: str, epoch: int, image: bytes,
                             digest: str) -> None:
        """Publish ``image`` to the target node in chunks (core NATS, at most once)."""
        subject = ctl_subject(self.cfg.lattice, target, "snapshot")
        parts = max(1, -(-len(image) // self._PUSH_CHUNK))
        try:
            for i in range(parts):
                await self.nc.publish(
                    subject,
                    image[i * self._PUSH_CHUNK : (i + 1) * self._PUSH_CHUNK],
                    headers={
                        "module": name,
                        "epoch": str(epoch),
                        "part": f"{i}/{parts}",
                        "sha256": digest,
                    },
                )
        except Exception:
            pass        # the target reads the stored copy instead

    async def _ctl_snapshot(self, msg: Any) -> None:
        h = msg.headers or {}
        try:
            key = (h["module"], int(h["epoch"]))
            i, n = (int(x) for x in h["part"].split("/"))
        except (KeyError, ValueError):
            return
        if not 0 <= i < n <= 1024:
            return
        entry = self._pushed.setdefault(key, {"sha": h.get("sha256"), "parts": [None] * n})
        if len(entry["parts"]) != n or entry["sha"] != h.get("sha256"):
            return
        entry["parts"][i] = msg.data
        if all(p is not None for p in entry["parts"]):
            self._pushed_ready.setdefault(key, asyncio.Event()).set()
        while len(self._pushed) > 8:                       # bounded: old pushes are dropped
            old = next(iter(self._pushed))
            self._pushed.pop(old, None)
            self._pushed_ready.pop(old, None)

    async def _snapshot_image(self, name: str, rec: dict) -> bytes:
        """The image the record names: the one the source pushed here if it is complete (or
        completes within a moment) and has the record's SHA-256, else the stored copy —
        checked against the record's SHA-256 either way."""
        want = rec.get("snapshot_sha256")
        key = (name, int(rec["epoch"]))
        if want and key in self._pushed:
            ready = self._pushed_ready.setdefault(key, asyncio.Event())
            try:
                await asyncio.wait_for(ready.wait(), 0.25)
                image = b"".join(self._pushed[key]["parts"])
                if sha256(image) == want:
                    self._pushed.pop(key, None)
                    self._pushed_ready.pop(key, None)
                    return image
            except TimeoutError:
                pass
        deadline = time.monotonic() + 10
        while True:        # the source may still be storing it (it switched the record first)
            try:
                image = await self.snapshots.get(rec["snapshot"])
                break
            except ArtifactError as err:
                if err.kind != "missing" or time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.02)
        if want and sha256(image) != want:
            raise ArtifactError("digest", f"snapshot {rec['snapshot']}: its bytes hash to "
                                          f"{sha256(image)[:12]}…, the record says {want[:12]}…")
        return image

    # -- checkpoints ---------------------------------------------------------------------------

    async def _checkpoints(self) -> None:
        """Every ``checkpoint_s``: snapshot each running stateful module (between two calls),
        store it as ``<module>/<epoch>.<n>`` and point the record at it by compare-and-set
        (only while the record still names this node at this epoch); the previous checkpoint
        is deleted. A node that takes over after a loss resumes from it."""
        n = 0
        while True:
            await asyncio.sleep(self.cfg.checkpoint_s)
            if time.monotonic() > self._lease_until:
                continue
            for name, loc in list(self.local.items()):
                e = self._view.get(module_key(name))
                rec = dict(e.value or {}) if e is not None else {}
                if e is None or not loc.stateful or rec.get("node") != self.cfg.name or \
                        rec.get("epoch") != loc.epoch or rec.get("move"):
                    continue

                def take(k: Kernel, name: str = name) -> Snapshot | None:
                    slot = k.slots.get(name)
                    return (
                        k.snapshot(name) if slot is not None and slot.state == "running" else None
                    )

                try:
                    snap = await asyncio.wrap_future(self.in_kernel(take))
                    if snap is None:
                        continue
                    n += 1
                    key = f"{name}/{loc.epoch}.{n}"
                    image = snap.encode()
                    await self.snapshots.bucket.put(key, image)
                    old = rec.get("snapshot")
                    rec["snapshot"], rec["snapshot_sha256"] = key, sha256(image)
                    await self.registry.update(module_key(name), rec, e.revision)
                    if old and old != key:
                        await self.snapshots.delete(old)
                except Conflict:
                    await self.snapshots.delete(key)
                except Exception as err:
                    self._log_line(name, f"checkpoint failed: {type(err).__name__}: {err}")

    # -- lost nodes --------------------------------------------------------------------------

    async def _sweep(self) -> None:
        now = time.monotonic()
        nodes = {k[5:]: e for k, e in self._view.items() if k.startswith("node.")}
        for name, e in nodes.items():
            if name == self.cfg.name or (e.value or {}).get("state") != "up":
                continue
            seen = self._seen.get(name)
            if seen is None or seen[0] != e.revision:
                self._seen[name] = (e.revision, now)
                continue
            ttl = float((e.value or {}).get("ttl_s", self.cfg.ttl_s))
            if now - seen[1] <= ttl:
                continue
            lost = dict(e.value or {}, state="lost", lost_by=self.cfg.name, lost_at=time.time())
            try:
                await self.registry.update(node_key(name), lost, e.revision)
            except Conflict:
                continue            # it came back, or another node marked it first
            self._view[node_key(name)] = Entry(node_key(name), lost, -1)
            if not lost.get("edge"):       # an edge keeps its modules while cut off
                await self._replace_modules_of(name)

    async def _replace_modules_of(self, lost: str) -> None:
        nodes = {k[5:]: e.value or {} for k, e in self._view.items() if k.startswith("node.")}
        mods = self._mods()
        for name, e in mods.items():
            rec = dict(e.value or {})
            if rec.get("node") != lost or rec.get("desired") != "running":
                continue
            target = _placement.choose(nodes, [m.value or {} for m in mods.values()],
                                       rec.get("needs", {}), rec.get("rule", {}), exclude=[lost])
            stateful = _placement.stateful(rec.get("needs", {}))
            rec.update(
                node=target,
                epoch=int(rec["epoch"]) + 1,
                move=None,
                snapshot=rec.get("snapshot") if stateful else None,
                note=(
                    f"node {lost} lost; re-placed on {target}"
                    + (" from its last snapshot" if stateful and rec.get("snapshot") else "")
                )
                if target
                else f"node {lost} lost; no eligible node",
            )
            try:
                await self.registry.update(module_key(name), rec, e.revision)
            except Conflict:
                continue

    # -- events and status -------------------------------------------------------------------

    def _event_async(self, ev: Event) -> None:
        name = ev.driver
        loc = self.local.get(name)
        if loc is None:
            return
        if ev.kind == "report":
            loc.reports += 1
            loc.last_report = ev.data
            asyncio.ensure_future(self._publish(name, "report", ev.data, ""))
            if loc.reports == 1 or time.monotonic() >= loc.status_due:
                asyncio.ensure_future(self._push_status(name))
        elif ev.kind == "state":
            loc.state, loc.detail = ev.data, ev.detail
            self._log_line(name, f"state {ev.data} {ev.detail}".rstrip())
            asyncio.ensure_future(self._publish(name, "state", {"state": ev.data}, ev.detail))
            asyncio.ensure_future(self._push_status(name, force=True))
        elif ev.kind == "log":
            level, message = ev.data
            self._log_line(name, f"{level}: {message}")
            asyncio.ensure_future(
                self._publish(name, "log", {"level": level, "message": message}, "")
            )
        elif ev.kind == "error":
            self._log_line(name, f"error {ev.detail}")

    async def _publish(self, name: str, kind: str, data: Any, detail: str) -> None:
        loc = self.local.get(name)
        body = {"node": self.cfg.name, "epoch": loc.epoch if loc else None, "module": name,
                "data": data, "detail": detail, "time": time.time()}
        try:
            await self.nc.publish(evt_subject(self.cfg.lattice, name, kind),
                                  json.dumps(body, default=repr).encode())
        except Exception:
            pass        # disconnected: events are best effort, the status record catches up

    async def _push_status(self, name: str, force: bool = False) -> None:
        loc = self.local.get(name)
        if loc is None:
            return
        now = time.monotonic()
        if not force and now < loc.status_due:
            return
        loc.status_due = now + 0.5
        slot = self.kernel.slots.get(name)
        await self._status(name, {
            "node": self.cfg.name, "epoch": loc.epoch, "state": loc.state, "detail": loc.detail,
            "restarts": slot.restarts if slot else 0, "faults": slot.faults if slot else 0,
            "reports": loc.reports, "last_report": loc.last_report})

    async def _status(self, name: str, value: dict) -> None:
        value["time"] = time.time()
        try:
            await self.registry.put(status_key(name), json.loads(json.dumps(value, default=repr)))
        except Exception:
            pass

    def _log_line(self, name: str, line: str) -> None:
        buf = self._logs.setdefault(name, collections.deque(maxlen=200))
        buf.append(f"{time.strftime('%H:%M:%S')} {self.cfg.name} {name}: {line}")

    async def _ctl_logs(self, msg: Any) -> None:
        try:
            module = json.loads(msg.data or b"{}").get("module", "")
        except ValueError:
            module = ""
        await msg.respond(json.dumps({"node": self.cfg.name,
                                      "lines": list(self._logs.get(module, ()))}).encode())

    async def _ctl_view(self, msg: Any) -> None:
        await msg.respond(json.dumps({"node": self.cfg.name, "revision": self.view_revision,
                                      "keys": len(self._view)}).encode())
