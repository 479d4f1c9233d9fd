"""Grants between drivers: one kernel-owned grant table, checked on every access.

A driver (the *grantor*) shares a region of its own linear memory with another driver of the
same kernel (the *grantee*) through ``wasi_driver.grant``; the grantee copies out of / into
it with ``granted_read`` / ``granted_write``. Wasm instances have separate memories, so the
sharing is "zero-copy" in the sense of tock's grants: nothing is copied when granting, and
every access is one ``memmove`` between the two instances' memories
(`wasi_hw._memory.copy_between`), of the grantor's bytes as they are at that moment. No
guest ever sees another guest's memory except through a live grant.

Contract:
- `GrantTable(audit, manifest_of)` is shared by all drivers of one `Kernel`; ``manifest_of(name)``
  is the manifest of the kernel's driver ``name`` (None if there is none).
  `GrantTable.view(manifest)` is the `wasi_hw.host.Sharing` of one driver *instance*: the
  kernel hands it to that instance's `DriverEnv`; `close()` (called when the instance's host
  modules are closed: stop, fault, restart, hot update) ends every grant the instance gave
  and every grant its driver received.
- Policy, frozen in the manifests (``[sharing]``): driver A may grant to B only if A's
  ``grant_to`` lists B *and* B's ``receive_from`` lists A, and B is a driver of this kernel.
  No entry → denied.
- ``grant(region, grantee, read, write)``: `region` was checked against the grantor's memory
  and copy quota by the shim (``fault`` / ``no_mem``). ``invalid_argument``: the grantee is the
  grantor itself, or already holds a live grant from it (one per pair: revoke first).
  ``no_mem`` + audit: the grantor instance already holds ``limits.open_handles`` grant
  handles (live or lapsed — revoking frees one).
  ``access`` + audit: the policy above. Returns a fresh handle (a kernel-wide counter: not reused).
- ``revoke(handle)``: removes the grant at once — the grantee's next access is ``access``.
  A handle this instance did not make (forged, already revoked, another driver's, a previous
  instance's) is ``bad_handle`` (audited by the kernel's `fail` policy). A grant that lapsed
  because its grantee stopped can still be revoked (freeing the handle).
- Every access (``granted_len``, ``read``, ``write``) is checked: a live grant from
  ``grantor`` to this driver, the right (read / write), and ``offset + n <= region length``
  in exact integer arithmetic (offsets are u32 from the shim, so nothing wraps). Any failure
  is ``access`` + an audit entry (what was asked, why) and copies nothing.
- A driver instance that stops loses every grant it gave (they vanish: its memory is gone,
  and a stale grant can never reach the next instance's memory — a grant holds the
  `GuestMemory` of the instance that made it and is deleted when that instance stops) and
  every grant it received (they lapse: a restarted grantee must be granted again).
- Thread-safe (one lock; copies run under it so a revoke from another thread is atomic with
  respect to accesses).
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from wasi_hw import HwError, copy_between

from ._audit import AuditLog
from ._guard import Denied
from ._manifest import Manifest

__all__ = ["GrantTable", "DriverSharing", "GrantInfo"]


@dataclass(frozen=True)
class GrantInfo:
    """A snapshot of one grant (for the CLI and tests)."""

    handle: int
    grantor: str
    grantee: str
    ptr: int
    length: int
    read: bool
    write: bool
    live: bool


@dataclass
class _Grant:
    handle: int
    owner: DriverSharing      # the grantor instance's view
    grantee: str
    mem: Any                    # the grantor instance's GuestMemory
    ptr: int
    length: int
    read: bool
    write: bool
    live: bool = True

    def info(self) -> GrantInfo:
        return GrantInfo(self.handle, self.owner.name, self.grantee, self.ptr, self.length,
                         self.read, self.write, self.live)


def _rights(read: bool, write: bool) -> str:
    return ("r" if read else "") + ("w" if write else "")


class GrantTable:
    """The kernel's table of grants between its drivers (see the module docstring)."""

    def __init__(self, audit: AuditLog, manifest_of: Callable[[str], Manifest | None]) -> None:
        self.audit = audit
        self._manifest_of = manifest_of
        self._lock = threading.Lock()
        self._handles = itertools.count(1)
        self._by_handle: dict[int, _Grant] = {}
        self._live: dict[tuple[str, str], _Grant] = {}   # (grantor, grantee) → live grant

    def view(self, manifest: Manifest) -> DriverSharing:
        """The `Sharing` of one new instance of `manifest`'s driver."""
        return DriverSharing(self, manifest)

    def grants(self) -> list[GrantInfo]:
        """Every grant handle currently held (live or lapsed)."""
        with self._lock:
            return [g.info() for g in self._by_handle.values()]

    def _close(self, view: DriverSharing) -> None:
        with self._lock:
            for handle, g in list(self._by_handle.items()):
                if g.owner is view:                           # given: gone with the memory
                    del self._by_handle[handle]
                    if self._live.get((view.name, g.grantee)) is g:
                        del self._live[(view.name, g.grantee)]
                elif g.grantee == view.name and g.live:        # received: lapses
                    g.live = False
                    if self._live.get((g.owner.name, view.name)) is g:
                        del self._live[(g.owner.name, view.name)]


class DriverSharing:
    """One driver instance's side of the grant table (implements `wasi_hw.host.Sharing`)."""

    def __init__(self, table: GrantTable, manifest: Manifest) -> None:
        self._t = table
        self._m = manifest
        self.name = manifest.name
        self.closed = False

    # -- helpers ---------------------------------------------------------------------------

    def _deny(self, call: str, asked: dict, why: str, kind: str = "access") -> Denied:
        self._t.audit.record(self.name, f"wasi_driver.{call}", asked, why, kind)
        return Denied(kind, why)

    def _open(self, call: str) -> None:
        if self.closed:
            raise HwError("access", f"{call}: this driver instance has stopped")

    def _received(self, call: str, grantor: str, asked: dict) -> _Grant:
        """The live grant from `grantor` to this driver (lock held), else a denial."""
        g = self._t._live.get((grantor, self.name))
        if g is None:
            raise self._deny(call, asked, f"no live grant from {grantor!r} to {self.name!r}")
        return g

    def _span(self, call: str, g: _Grant, offset: int, n: int, asked: dict, write: bool) -> None:
        if not (g.write if write else g.read):
            raise self._deny(call, asked, f"the grant from {g.owner.name!r} is "
                                          f"{'read' if g.read else 'write'}-only")
        if offset + n > g.length:                         # exact ints: cannot wrap
            raise self._deny(call, asked, f"bytes {offset}..{offset + n} leave the granted "
                                          f"region of {g.length} bytes")

    # -- Sharing ---------------------------------------------------------------------------

    def grant(self, region: Any, grantee: str, *, read: bool, write: bool) -> int:
        self._open("grant")
        n = len(region)
        asked = {"grantee": grantee, "rights": _rights(read, write), "ptr": region.ptr,
                 "bytes": n}
        if grantee == self.name:
            raise HwError("invalid_argument", "a driver cannot grant memory to itself")
        policy = self._m.sharing
        if grantee not in policy.grant_to:
            allowed = ", ".join(sorted(policy.grant_to)) or "none"
            raise self._deny("grant", asked, f"[sharing] grant_to of {self.name!r} does not "
                                             f"list {grantee!r} (allowed: {allowed})")
        other = self._t._manifest_of(grantee)
        if other is None:
            raise self._deny("grant", asked, f"no driver named {grantee!r} in this kernel")
        if self.name not in other.sharing.receive_from:
            raise self._deny("grant", asked, f"[sharing] receive_from of {grantee!r} does not "
                                             f"list {self.name!r}")
        quota = self._m.limits.open_handles
        with self._t._lock:
            if (self.name, grantee) in self._t._live:
                raise HwError("invalid_argument", f"{grantee!r} already holds a live grant "
                                                  "from this driver; revoke it first")
            held = sum(1 for g in self._t._by_handle.values() if g.owner is self)
            if held >= quota:
                raise self._deny("grant", asked, f"grant quota of {quota} handles "
                                                 "(limits.open_handles) reached", "no_mem")
            g = _Grant(next(self._t._handles) & 0xFFFFFFFF, self, grantee, region.memory,
                       region.ptr, n, read, write)
            self._t._by_handle[g.handle] = g
            self._t._live[(self.name, grantee)] = g
            return g.handle

    def revoke(self, handle: int) -> None:
        self._open("revoke")
        with self._t._lock:
            g = self._t._by_handle.get(handle)
            if g is None or g.owner is not self:
                raise HwError("bad_handle", f"{handle} is not a grant of this driver instance")
            del self._t._by_handle[handle]
            if self._t._live.get((self.name, g.grantee)) is g:
                del self._t._live[(self.name, g.grantee)]

    def granted_len(self, grantor: str) -> int:
        self._open("granted_len")
        with self._t._lock:
            return self._received("granted_len", grantor, {"grantor": grantor}).length

    def read(self, grantor: str, offset: int, buf: Any) -> None:
        self._open("granted_read")
        n = len(buf)
        asked = {"grantor": grantor, "offset": offset, "bytes": n}
        with self._t._lock:
            g = self._received("granted_read", grantor, asked)
            self._span("granted_read", g, offset, n, {**asked, "region_bytes": g.length}, False)
            copy_between(g.mem, g.ptr + offset, buf.memory, buf.ptr, n)

    def write(self, grantor: str, offset: int, data: Any) -> None:
        self._open("granted_write")
        n = len(data)
        asked = {"grantor": grantor, "offset": offset, "bytes": n}
        with self._t._lock:
            g = self._received("granted_write", grantor, asked)
            self._span("granted_write", g, offset, n, {**asked, "region_bytes": g.length}, True)
            copy_between(data.memory, data.ptr, g.mem, g.ptr + offset, n)

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self._t._close(self)
