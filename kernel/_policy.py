"""The contract-violation policy: the one `fail(exc, name)` trampoline of every host call.

Every generated shim hands any exception to ``fail(exc, name)`` and returns what it returns.
The kernel builds one `fail` per driver and import module (`make_fail`), and this is the whole
policy, decided once:

=====================================  =====================================================
exception raised below the shim        outcome for the guest / the kernel
=====================================  =====================================================
`HwError(kind)`, kind in the module's  errno ``kind``; no audit (hardware and host outcomes
errno enum                             are the driver's business). ``access`` / ``no_mem``
                                       denials were audited by the guard (or the grant
                                       table, `_sharing`) that raised them.
`HwError(kind)`, kind unknown to the   errno ``other``
module
`GuestFault` (pointer/length outside   errno ``fault`` + audit entry (outcome ``fault``).
the driver's memory)                   The call has no effect: regions are checked before
                                       the host module runs.
`HwError("bad_handle")` (forged,       errno ``bad_handle`` + audit entry (outcome
stale or another driver's handle)      ``bad_handle``)
any other `Exception` (a bug in host   errno ``other`` + audit entry (outcome
code)                                  ``host_error``) + the traceback logged to the
                                       ``wasi_hw.kernel`` logger. The host keeps running.
`BaseException` (Ctrl-C, SystemExit)   re-raised: the guest traps and the kernel stops.
=====================================  =====================================================

So contract violations are *errno + audit*, never a host crash; the driver keeps running and
sees the errno its SDK maps to an error. What *does* stop a driver is the sandbox: a wasm trap
(unreachable, out-of-bounds access in its own memory, stack overflow) or a blown epoch
deadline marks it faulted, and the supervisor restarts it per its restart policy and gives up
(quarantines it) after ``max_faults`` consecutive faults. Every violation is also counted in
`Violations` so the supervisor can show it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from wasi_hw import GuestFault, HwError

from ._audit import AuditLog
from ._guard import Denied

__all__ = ["make_fail", "Violations"]

_log = logging.getLogger("wasi_hw.kernel")


@dataclass
class Violations:
    """Per-driver counters of contract violations and host errors."""

    faults: int = 0
    bad_handles: int = 0
    host_errors: int = 0
    last: list[str] = field(default_factory=list)

    def note(self, what: str) -> None:
        self.last.append(what)
        del self.last[:-10]


def make_fail(driver: str, module: str, errno: Mapping[str, int], audit: AuditLog,
              counters: Violations) -> Callable[[BaseException, str], int]:
    """The trampoline for `driver`'s imports from `module` (whose errno table is `errno`)."""
    other = errno["other"]
    fault = errno.get("fault", other)

    def fail(exc: BaseException, name: str) -> int:
        call = f"{module}.{name}"
        if isinstance(exc, GuestFault):
            counters.faults += 1
            counters.note(f"{call}: {exc.message}")
            audit.record(driver, call, {}, exc.message or "pointer outside linear memory", "fault")
            return fault
        if isinstance(exc, HwError):
            if isinstance(exc, Denied):
                return errno.get(exc.kind, other)
            if exc.kind == "bad_handle":
                counters.bad_handles += 1
                counters.note(f"{call}: {exc.message}")
                audit.record(driver, call, {}, exc.message or "not a handle of this driver",
                             "bad_handle")
            return errno.get(exc.kind, other)
        if isinstance(exc, Exception):
            counters.host_errors += 1
            counters.note(f"{call}: {type(exc).__name__}: {exc}")
            audit.record(driver, call, {}, f"host error {type(exc).__name__}: {exc}", "host_error")
            _log.error("host error in %s for driver %s", call, driver, exc_info=exc)
            return other
        raise exc

    return fail
