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
                                       table, `_sharing`) that raised them; every other
                                       ``no_mem`` (a copy or host quota) is audited here
                                       (outcome ``no_mem``).
`HwError(kind)`, kind unknown to the   errno ``other``
module
`GuestFault` (pointer/length outside   errno ``fault`` + audit entry (outcome ``fault``).
the driver's memory)                   The call has no effect: regions are checked before
                                       the host module runs.
`HwError("bad_handle")` (forged,       errno ``bad_handle`` + audit entry (outcome
stale or another driver's handle)      ``bad_handle``)
any other `Exception` (a bug in host   errno ``other`` + audit entry (outcome
code)                                  ``host_error``) + the traceback logged to the
                                       ``wasi_hw.kernel`` logger once per cause (call,
                                       exception type, innermost frame); repeats are
                                       counted in `Violations.host_errors_by_cause`, never
                                       logged again. The host keeps running.
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
from dataclasses import dataclass, field
from typing import Callable, Mapping

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
    quota_denials: int = 0
    last: list[str] = field(default_factory=list)
    #: (call, exception type, file:line) → how often; at most `MAX_CAUSES` causes, then
    #: every new one is counted under ``("*", "*", "*")``
    host_errors_by_cause: dict[tuple[str, str, str], int] = field(default_factory=dict)
    #: the latest spec error a host call returned: (call, errno case, message)
    last_hw_error: tuple[str, str, str] | None = None

    def note(self, what: str) -> None:
        self.last.append(what)
        del self.last[:-10]


MAX_CAUSES = 64


def _cause(call: str, exc: BaseException) -> tuple[str, str, str]:
    tb = exc.__traceback__
    where = "?"
    while tb is not None:
        where = f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"
        tb = tb.tb_next
    return call, type(exc).__name__, where


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
            counters.last_hw_error = (call, exc.kind, exc.message)
            if isinstance(exc, Denied):
                return errno.get(exc.kind, other)
            if exc.kind == "bad_handle":
                counters.bad_handles += 1
                counters.note(f"{call}: {exc.message}")
                audit.record(driver, call, {}, exc.message or "not a handle of this driver",
                             "bad_handle")
            elif exc.kind == "no_mem":
                counters.quota_denials += 1
                audit.record(driver, call, {}, exc.message or "over a quota", "no_mem")
            return errno.get(exc.kind, other)
        if isinstance(exc, Exception):
            counters.host_errors += 1
            text = _short(f"{type(exc).__name__}: {_safe_str(exc)}")
            counters.note(f"{call}: {text}")
            audit.record(driver, call, {}, f"host error {text}", "host_error")
            causes = counters.host_errors_by_cause
            cause = _cause(call, exc)
            if cause not in causes and len(causes) >= MAX_CAUSES:
                cause = ("*", "*", "*")
            seen = causes.get(cause, 0)
            causes[cause] = seen + 1
            if not seen and cause[0] != "*":
                _log.error("host error in %s for driver %s (logged once per cause; repeats "
                           "are counted)", call, driver, exc_info=_trimmed(exc))
            return other
        raise exc

    return fail


def _safe_str(exc: BaseException) -> str:
    try:
        return str(exc)
    except Exception:  # noqa: BLE001 — an exception whose str() fails still gets a line
        return f"<unprintable {type(exc).__name__}>"


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + f"… [{len(text) - limit} more]"


def _trimmed(exc: BaseException) -> BaseException:
    """``exc`` with its traceback cut to the last 20 frames (a recursion error's 1000
    frames are one cause, not 130 KB of log)."""
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    if len(frames) > 20:
        try:
            return exc.with_traceback(frames[-20])
        except Exception:  # noqa: BLE001
            return exc
    return exc
