"""The kernel guard: grants and quotas checked between the generated shims and the host modules.

Each guard implements the same Protocol as the host module it wraps (`WasiI2c`, `WasiUsb`,
`WasiDriver`) and delegates after checking the driver's frozen `Manifest`. A denial raises
`HwError("access")` and is written to the `AuditLog` (driver, call, what was asked, why).
A quota overrun raises `HwError("no_mem")` and is audited too.

I2C rules:
- `open(name)`: the bus must be granted; at most `limits.open_handles` buses open at once.
- every transfer: the handle must be one this driver opened (else ``bad_handle``); the address
  must be in the bus's grant (10-bit mode only if the grant says ``ten_bit``); the transaction's
  bytes in total at most `limits.max_transfer`.
- register ranges (only if the grant lists any): a Write's first byte is the register pointer,
  its remaining bytes go to pointer, pointer+1, ... — each needs a "w" range; a Read reads from
  the current pointer onwards (set by the preceding Write in the same transaction, else the last
  pointer this driver set on that device) — each byte needs an "r" range. A Read whose pointer
  is unknown is denied. A Write of the pointer alone needs the pointer inside some range.
  With ``write_pairs`` (chips such as the BME280, whose multi-byte writes are register/value
  pairs) every even-indexed byte of a Write is a register that needs a "w" range.
  The grant is resolved once per handle at `open` (grants are frozen) and its register ranges
  precomputed as sets and run lengths; every call is still checked in full.
- `delay_ns` is ``invalid_argument`` when the delays of one call into the guest would add up
  to more than the per-call deadline (a driver cannot park the kernel; counted in requested
  time, so simulated and real buses behave the same).

USB rules (checked before the host module runs): `open` only of devices whose vid:pid[:serial]
is granted (`list_devices` shows only those), `claim_interface`/`release_interface`/
`set_alt_setting`/`detach_kernel_driver` only of granted interfaces, transfers only on granted
endpoints (endpoint 0 is always allowed), `reset_device` / `detach_kernel_driver` /
`set_configuration` only with the matching operation grant, transfer lengths at most
`limits.max_transfer`, at most `limits.open_handles` devices open, transfer timeouts at most
the per-call deadline (an endpoint's grant is checked once per open handle — grants are
frozen and a handle names one device for its life — and remembered until the handle is
closed). Control transfers: SET_ADDRESS is always denied, a standard
SET_CONFIGURATION needs the set_configuration grant, interface- and endpoint-recipient
requests need that interface / endpoint granted.

Driver rules: `report` data at most `limits.report_bytes`. Memory grants between drivers
(`grant`, `revoke`, `granted_*`) pass through to `DriverEnv`, whose `Sharing` is the kernel's
grant table (`_sharing`): it checks the `[sharing]` policy and every access and audits its
denials the same way (raising `Denied`).
"""

from __future__ import annotations

from typing import Any

from wasi_hw import HwError

from ._audit import AuditLog
from ._manifest import Manifest

__all__ = ["I2cGuard", "DriverGuard", "UsbGuard", "Denied"]


class Denied(HwError):
    """A grant or quota denial that has already been audited."""


class _Guard:
    _call_prefix = ""

    def __init__(self, host: Any, manifest: Manifest, audit: AuditLog) -> None:
        self._host = host
        self._m = manifest
        self._audit = audit

    def begin_call(self) -> None:
        """Called by the sandbox before every call into the guest."""

    def _deny(self, call: str, asked: dict[str, Any], why: str, kind: str = "access") -> Denied:
        self._audit.record(self._m.name, f"{self._call_prefix}.{call}", asked, why, kind)
        return Denied(kind, why)

    def __getattr__(self, name: str) -> Any:
        # Methods without a grant check pass straight through (e.g. wasi_driver.now_ns).
        return getattr(self._host, name)


def _is_write(op: Any) -> bool:
    kind = op.kind
    return int(kind) == 1


def _op_len(op: Any) -> int:
    return len(op.buf)


class _I2cRule:
    """One granted bus, precomputed once from its frozen `I2cGrant` (sets, not range scans)."""

    __slots__ = ("grant", "addresses", "ten_bit", "registers", "write_pairs", "covered",
                 "readable", "writable", "read_run", "write_run")

    def __init__(self, grant: Any) -> None:
        self.grant = grant
        self.addresses = frozenset(grant.addresses)
        self.ten_bit = bool(grant.ten_bit)
        self.registers = bool(grant.registers)
        self.write_pairs = bool(grant.write_pairs)
        regs = range(0x100)   # register numbers are u8 (the manifest checks each range)
        self.covered = frozenset(r for r in regs if any(g.covers(r) for g in grant.registers))
        self.readable = frozenset(r for r in regs if grant.allows_register(r, write=False))
        self.writable = frozenset(r for r in regs if grant.allows_register(r, write=True))
        # run[p]: how many registers from p on are allowed in a row (0 past the u8 range)
        self.read_run = _runs(self.readable)
        self.write_run = _runs(self.writable)


def _runs(allowed: frozenset[int]) -> tuple[int, ...]:
    runs = [0] * 0x101
    for reg in range(0xFF, -1, -1):
        runs[reg] = runs[reg + 1] + 1 if reg in allowed else 0
    return tuple(runs)


class I2cGuard(_Guard):
    _call_prefix = "wasi_i2c"

    def __init__(self, host: Any, manifest: Manifest, audit: AuditLog) -> None:
        super().__init__(host, manifest, audit)
        self._delayed = 0                            # ns of delay requested in this call
        self._buses: dict[int, str] = {}            # handle → bus name
        self._rules: dict[int, _I2cRule] = {}       # handle → its bus's grant, resolved at open
        self._pointer: dict[tuple[str, int], int] = {}  # (bus, address) → last register pointer
        self._max_transfer = manifest.limits.max_transfer
        self._deadline_ns = manifest.limits.deadline_ms * 1_000_000

    def open(self, name: str) -> int:
        grant = self._m.i2c_grant(name)
        if grant is None:
            granted = ", ".join(g.bus for g in self._m.i2c) or "none"
            raise self._deny(
                "open", {"bus": name}, f"bus {name!r} is not granted (granted: {granted})"
            )
        if len(self._buses) >= self._m.limits.open_handles:
            raise self._deny(
                "open",
                {"bus": name},
                f"open-handle quota of {self._m.limits.open_handles} reached",
                "no_mem",
            )
        handle = self._host.open(name)
        self._buses[int(handle)] = name
        self._rules[int(handle)] = _I2cRule(grant)
        return int(handle)

    def close(self, bus: int) -> None:
        self._host.close(bus)
        self._buses.pop(bus, None)
        self._rules.pop(bus, None)

    def _target(self, call: str, bus: int, address: int, mode: Any) -> tuple[str, _I2cRule, bool]:
        """The open bus ``bus`` (else ``bad_handle``) and its rule, address and mode checked."""
        rule = self._rules.get(bus)
        if rule is None:
            raise HwError("bad_handle", f"{bus} is not an open bus of this driver")
        name = self._buses[bus]
        ten = int(mode) == 1
        if ten and not rule.ten_bit:
            raise self._deny(call, _asked(name, address, ten),
                             f"10-bit addressing is not granted on {name}")
        if address not in rule.addresses:
            allowed = ", ".join(f"{a:#04x}" for a in sorted(rule.addresses))
            raise self._deny(
                call,
                _asked(name, address, ten),
                f"address {address:#04x} is not granted on {name} (granted: {allowed})",
            )
        return name, rule, ten

    def _over_quota(self, call: str, name: str, address: int, ten: bool, total: int) -> Denied:
        asked = _asked(name, address, ten)
        asked["bytes"] = total
        return self._deny(call, asked, f"transaction of {total} bytes exceeds the "
                                       f"{self._max_transfer}-byte transfer quota", "no_mem")

    def _check(self, call: str, bus: int, address: int, mode: Any,
               ops: list[tuple[bool, int, bytes | None]]) -> tuple[str, int]:
        """ops: (is_write, length, written bytes or None)."""
        name, rule, ten = self._target(call, bus, address, mode)
        total = sum(n for _, n, _ in ops)
        if total > self._max_transfer:
            raise self._over_quota(call, name, address, ten, total)
        if rule.registers:
            self._registers(call, name, rule, address, ten, ops)
        return name, address

    def _registers(self, call: str, name: str, rule: _I2cRule, address: int, ten: bool,
                   ops: list[tuple[bool, int, bytes | None]]) -> None:
        key = (name, address)
        ptr = self._pointer.get(key)
        writable = rule.writable
        for is_write, n, data in ops:
            if is_write and rule.write_pairs and n > 1:
                assert data is not None  # a write carries its bytes
                if not writable.issuperset(data[0:n - 1:2]):
                    bad = next(r for r in data[0:n - 1:2] if r not in writable)
                    raise self._deny(call, _asked(name, address, ten, bad),
                                     f"writing register {bad:#04x} is not granted")
                ptr = data[n - 1] if n % 2 else data[n - 2] + 1
                continue
            if is_write:
                if not data:
                    continue
                ptr = data[0]
                if n == 1:
                    if ptr not in rule.covered:
                        raise self._deny(call, _asked(name, address, ten, ptr),
                                         f"register {ptr:#04x} is outside the granted ranges")
                    continue
                if n - 1 > rule.write_run[ptr]:
                    bad = next(r for r in range(ptr, ptr + n - 1) if r not in writable)
                    raise self._deny(call, _asked(name, address, ten, bad),
                                     f"writing register {bad:#04x} is not granted")
                ptr = ptr + n - 1
            else:
                if ptr is None:
                    raise self._deny(call, _asked(name, address, ten),
                                     "read without a known register pointer under a "
                                     "register-restricted grant")
                if n > (rule.read_run[ptr] if ptr <= 0xFF else 0):
                    readable = rule.readable
                    bad = next(r for r in range(ptr, ptr + n) if r not in readable)
                    raise self._deny(call, _asked(name, address, ten, bad),
                                     f"reading register {bad:#04x} is not granted")
                ptr = ptr + n
        if ptr is not None:
            self._pointer[key] = ptr

    def transaction(self, bus: int, address: int, mode: Any, operations: list[Any]) -> None:
        # lengths first: the quota is checked before any write buffer is copied
        total = sum(_op_len(op) for op in operations)
        if total > self._max_transfer:
            self._check("transaction", bus, address, mode, [(False, total, None)])
        ops = [(w, _op_len(op), op.buf.read() if w else None)
               for op in operations for w in (_is_write(op),)]
        self._check("transaction", bus, address, mode, ops)
        self._host.transaction(bus, address, mode, operations)

    def read(self, bus: int, address: int, mode: Any, buf: Any) -> None:
        self._check("read", bus, address, mode, [(False, len(buf), None)])
        self._host.read(bus, address, mode, buf)

    def write(self, bus: int, address: int, mode: Any, data: bytes) -> None:
        name, rule, ten = self._target("write", bus, address, mode)
        n = len(data)
        if n > self._max_transfer:
            raise self._over_quota("write", name, address, ten, n)
        if rule.registers:
            if rule.write_pairs and n > 1 and not n % 2 and rule.writable.issuperset(data[0::2]):
                self._pointer[(name, address)] = data[n - 2] + 1   # register/value pairs
            else:                                               # the general rules (and denials)
                self._registers("write", name, rule, address, ten, [(True, n, data)])
        self._host.write(bus, address, mode, data)

    def write_read(self, bus: int, address: int, mode: Any, data: bytes, buf: Any) -> None:
        # the register-read pattern, checked without building the generic op list
        name, rule, ten = self._target("write_read", bus, address, mode)
        n = len(buf)
        total = len(data) + n
        if total > self._max_transfer:
            raise self._over_quota("write_read", name, address, ten, total)
        if rule.registers:
            ptr = data[0] if len(data) == 1 else None
            if ptr is not None and ptr in rule.covered and n <= rule.read_run[ptr]:
                self._pointer[(name, address)] = ptr + n   # pointer write + allowed read
            else:                                          # the general rules (and denials)
                self._registers("write_read", name, rule, address, ten,
                                [(True, len(data), data), (False, n, None)])
        self._host.write_read(bus, address, mode, data, buf)

    def begin_call(self) -> None:
        """A new call into the guest starts: its delay budget is the full deadline again."""
        self._delayed = 0

    def delay_ns(self, ns: int) -> None:
        limit = self._deadline_ns
        delayed = self._delayed
        if delayed + ns > limit:
            raise HwError("invalid_argument",
                          f"a delay of {ns} ns would take this call's delays past its "
                          f"{self._m.limits.deadline_ms} ms deadline ({delayed} ns used)")
        self._delayed = delayed + ns
        self._host.delay_ns(ns)


def _asked(bus: str, address: int, ten: bool, register: int | None = None) -> dict[str, Any]:
    """What a denied I2C call asked for (the audit entry's ``asked``)."""
    asked: dict[str, Any] = {"bus": bus, "address": address, "ten_bit": ten}
    if register is not None:
        asked["register"] = register
    return asked


class DriverGuard(_Guard):
    _call_prefix = "wasi_driver"

    def report(self, data: bytes) -> None:
        if len(data) > self._m.limits.report_bytes:
            raise self._deny("report", {"bytes": len(data)},
                             f"report of {len(data)} bytes exceeds the "
                             f"{self._m.limits.report_bytes}-byte quota", "no_mem")
        self._host.report(data)


_RECIPIENT_INTERFACE, _RECIPIENT_ENDPOINT = 1, 2
_SET_ADDRESS, _SET_CONFIGURATION, _SET_INTERFACE = 5, 9, 11


class UsbGuard(_Guard):
    _call_prefix = "wasi_usb"

    def __init__(self, host: Any, manifest: Manifest, audit: AuditLog) -> None:
        super().__init__(host, manifest, audit)
        self._open: set[int] = set()
        # (handle, endpoint) pairs whose grant check passed: grants are frozen and a handle
        # names one device for its life, so each pair is checked once (dropped at close)
        self._ep_ok: set[tuple[int, int]] = set()
        self._max_transfer = manifest.limits.max_transfer
        self._deadline_ms = manifest.limits.deadline_ms

    def _grant(self, call: str, info: Any) -> Any:
        for g in self._m.usb:
            if g.matches(info.vendor_id, info.product_id, info.serial):
                return g
        raise self._deny(call, _ident(info), f"device {info.vendor_id:04x}:{info.product_id:04x} "
                                             "is not granted")

    def _handle_grant(self, call: str, handle: int) -> tuple[Any, dict[str, Any]]:
        info = self._host.handle_identity(handle)      # bad_handle for forged / stale handles
        return self._grant(call, info), _ident(info)

    def open(self, device: int) -> int:
        info = self._host.device_identity(device)
        self._grant("open", info)
        if len(self._open) >= self._m.limits.open_handles:
            raise self._deny("open", _ident(info), f"open-handle quota of "
                             f"{self._m.limits.open_handles} reached", "no_mem")
        handle = self._host.open(device)
        self._open.add(int(handle))
        return int(handle)

    def close(self, handle: int) -> None:
        self._host.close(handle)
        self._open.discard(handle)
        if self._ep_ok:
            self._ep_ok = {k for k in self._ep_ok if k[0] != handle}

    def _operation(self, call: str, handle: int, op: str,
                   asked: dict[str, Any] | None = None) -> Any:
        grant, ident = self._handle_grant(call, handle)
        if op not in grant.operations:
            raise self._deny(call, {**ident, **(asked or {})}, f"operation {op} is not granted")
        return grant

    def _interface(self, call: str, handle: int, interface: int, grant: Any = None) -> None:
        g, ident = self._handle_grant(call, handle)
        if interface not in g.interfaces:
            raise self._deny(call, {**ident, "interface": interface},
                             f"interface {interface} is not granted")

    def _endpoint(self, call: str, handle: int, endpoint: int) -> None:
        if (handle, endpoint) in self._ep_ok:
            return
        g, ident = self._handle_grant(call, handle)
        if endpoint & 0x0F and endpoint not in g.endpoints:
            raise self._deny(call, {**ident, "endpoint": endpoint},
                             f"endpoint {endpoint:#04x} is not granted")
        self._ep_ok.add((handle, endpoint))

    def _quota(self, call: str, n: int) -> None:
        if n > self._m.limits.max_transfer:
            raise self._deny(call, {"bytes": n}, f"transfer of {n} bytes exceeds the "
                             f"{self._m.limits.max_transfer}-byte quota", "no_mem")

    def _timeout(self, timeout: int) -> int:
        """A transfer may wait at most the per-call deadline (0 = the deadline)."""
        return min(timeout, self._m.limits.deadline_ms) if timeout else 0

    def set_configuration(self, handle: int, value: int) -> None:
        self._operation("set_configuration", handle, "set_configuration", {"value": value})
        self._host.set_configuration(handle, value)

    def claim_interface(self, handle: int, interface: int) -> None:
        self._interface("claim_interface", handle, interface)
        self._host.claim_interface(handle, interface)

    def release_interface(self, handle: int, interface: int) -> None:
        self._interface("release_interface", handle, interface)
        self._host.release_interface(handle, interface)

    def set_alt_setting(self, handle: int, interface: int, alt_setting: int) -> None:
        self._interface("set_alt_setting", handle, interface)
        self._host.set_alt_setting(handle, interface, alt_setting)

    def detach_kernel_driver(self, handle: int, interface: int) -> None:
        self._operation("detach_kernel_driver", handle, "detach_kernel_driver",
                        {"interface": interface})
        self._interface("detach_kernel_driver", handle, interface)
        self._host.detach_kernel_driver(handle, interface)

    def reset_device(self, handle: int) -> None:
        self._operation("reset_device", handle, "reset")
        self._host.reset_device(handle)

    def control_transfer(self, handle: int, request_type: int, request: int, value: int,
                         index: int, data: Any, timeout: int) -> int:
        call = "control_transfer"
        g, ident = self._handle_grant(call, handle)
        self._quota(call, len(data))
        standard = (request_type >> 5) & 3 == 0
        recipient = request_type & 0x1F
        asked = {**ident, "request_type": request_type, "request": request, "index": index}
        if standard and recipient == 0 and request == _SET_ADDRESS:
            raise self._deny(call, asked, "SET_ADDRESS belongs to the host controller")
        if standard and recipient == 0 and request == _SET_CONFIGURATION \
                and "set_configuration" not in g.operations:
            raise self._deny(call, asked, "SET_CONFIGURATION needs the set_configuration grant")
        if recipient == _RECIPIENT_INTERFACE and (index & 0xFF) not in g.interfaces:
            raise self._deny(call, asked, f"interface {index & 0xFF} is not granted")
        if (
            recipient == _RECIPIENT_ENDPOINT
            and (index & 0x0F)
            and (index & 0xFF) not in g.endpoints
        ):
            raise self._deny(call, asked, f"endpoint {index & 0xFF:#04x} is not granted")
        n: int = self._host.control_transfer(handle, request_type, request, value, index, data,
                                             self._timeout(timeout))
        return n

    def bulk_transfer(self, handle: int, endpoint: int, data: Any, timeout: int) -> int:
        # the hot path: `_endpoint`, `_quota` and `_timeout` inlined
        if (handle, endpoint) not in self._ep_ok:
            self._endpoint("bulk_transfer", handle, endpoint)
        if len(data) > self._max_transfer:
            self._quota("bulk_transfer", len(data))
        if timeout:
            timeout = min(timeout, self._deadline_ms)
        n: int = self._host.bulk_transfer(handle, endpoint, data, timeout)
        return n

    def interrupt_transfer(self, handle: int, endpoint: int, data: Any, timeout: int) -> int:
        self._endpoint("interrupt_transfer", handle, endpoint)
        self._quota("interrupt_transfer", len(data))
        n: int = self._host.interrupt_transfer(handle, endpoint, data, self._timeout(timeout))
        return n

    def iso_transfer(
        self, handle: int, endpoint: int, data: Any, packets: Any, timeout: int
    ) -> int:
        self._endpoint("iso_transfer", handle, endpoint)
        self._quota("iso_transfer", len(data))
        n: int = self._host.iso_transfer(handle, endpoint, data, packets, self._timeout(timeout))
        return n

    def clear_halt(self, handle: int, endpoint: int) -> None:
        self._endpoint("clear_halt", handle, endpoint)
        self._host.clear_halt(handle, endpoint)


def _ident(info: Any) -> dict[str, Any]:
    out = {"vid": info.vendor_id, "pid": info.product_id}
    if info.serial is not None:
        out["serial"] = info.serial
    return out
