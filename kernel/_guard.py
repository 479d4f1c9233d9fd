"""The kernel guard: grants and quotas checked between the generated shims and the host modules.

Each guard implements the same Protocol as the host module it wraps (`WasiI2c`, `WasiUsb`,
`WasiDriver`) and delegates after checking the driver's frozen `Manifest`. A denial raises
`HwError("access")` and is written to the `AuditLog` (driver, call, what was asked, why).
A quota overrun raises `HwError("no_mem")` and is audited too.

Default-deny: a guard class defines a method for every spec function it checks and lists
in ``NO_GRANT`` the ones that need no grant; any other spec function is refused (``access``
+ audit) — `classification` tells which is which (tests/kernel/test_default_deny.py fails on
any function no guard classified).

I2C rules (each bus's grant compiled once into an `I2cRule`, kernel/_rules.py, which holds
the rules themselves):
- `open(name)`: the bus must be granted; at most `limits.open_handles` buses open at once.
- every transfer: the handle must be one this driver opened (else ``bad_handle``); the address
  must be admitted by the bus's rule (10-bit mode only if the grant says ``ten_bit``); the
  transaction's bytes in total at most `limits.max_transfer`.
- register ranges (only if the grant lists any): the operations are merged as the host puts
  them on the wire (adjacent operations of one direction are one message) and judged by the
  rule with the register-pointer behaviour the grant declares (`I2cRule.judge`). The pointer
  is unknown at the start of every call: a read depends on a pointer set in the same call.
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

USB descriptor reads (`device_info`, `port_path`, `device_descriptor`, `config_descriptor`)
need the device granted, `string_descriptor` / `get_configuration` an open handle of this
driver; `list_devices` / `hotplug_poll` need no grant (the host shows only granted devices).

Driver rules: `report` data at most `limits.report_bytes`; an item the host refuses
(`invalid_argument`: malformed, value-shared or cyclic, unprintable) is audited once. Memory
grants between drivers (`grant`, `revoke`, `granted_*`) pass through to `DriverEnv`, whose
`Sharing` is the kernel's grant table (`_sharing`): it checks the `[sharing]` policy and
every access and audits its denials the same way (raising `Denied`). `log`, `config_get`,
`inbox`, `now_ns` need no grant.
"""

from __future__ import annotations

import functools
from typing import Any, Iterable

from wasi_hw import HwError

from ._audit import AuditLog
from ._manifest import Manifest
from ._rules import I2cRule, UsbRule, wire_messages

__all__ = ["I2cGuard", "DriverGuard", "UsbGuard", "Denied", "classification"]


class Denied(HwError):
    """A grant or quota denial that has already been audited."""


class _Guard:
    """Base of the guards: default-deny for every spec function (module docstring)."""

    _call_prefix = ""
    #: spec functions that need no grant, each passed straight to the host; every other spec
    #: function must be a method of the guard class (checked) or it is refused
    NO_GRANT: frozenset[str] = frozenset()

    def __init__(self, host: Any, manifest: Manifest, audit: AuditLog) -> None:
        self._host = host
        self._m = manifest
        self._audit = audit

    def begin_call(self) -> None:
        """Called by the sandbox before every call into the guest."""

    def _deny(self, call: str, asked: dict, why: str, kind: str = "access") -> Denied:
        self._audit.record(self._m.name, f"{self._call_prefix}.{call}", asked, why, kind)
        return Denied(kind, why)

    def __getattr__(self, name: str) -> Any:
        # only for names the class does not define: a function that needs no grant passes
        # through; any other public name is refused (a spec function nobody classified)
        if name in type(self).NO_GRANT:
            return getattr(self._host, name)
        if name.startswith("_"):
            raise AttributeError(name)
        return functools.partial(self._unclassified, name)

    def _unclassified(self, name: str, *args: Any) -> Any:
        raise self._deny(name, {}, f"{self._call_prefix}.{name} is not classified by the "
                                   "kernel guard: refused (default-deny)")


def classification(guard: type, functions: Iterable[str]) -> dict[str, str]:
    """``{function: "checked" | "no_grant" | "unclassified"}`` for a spec module's functions
    under ``guard`` (a guard class): checked = a method of the class, no_grant = listed in
    its ``NO_GRANT``."""
    out = {}
    for name in functions:
        if name in guard.NO_GRANT:
            out[name] = "no_grant"
        elif callable(getattr(guard, name, None)) and not name.startswith("_"):
            out[name] = "checked"
        else:
            out[name] = "unclassified"
    return out


def _is_write(op: Any) -> bool:
    return int(op.kind) == 1


class I2cGuard(_Guard):
    _call_prefix = "wasi_i2c"
    # every wasi_i2c function is checked here (a method of this class)
    NO_GRANT: frozenset[str] = frozenset()

    def __init__(self, host: Any, manifest: Manifest, audit: AuditLog) -> None:
        super().__init__(host, manifest, audit)
        self._delayed = 0                            # ns of delay requested in this call
        self._buses: dict[int, str] = {}            # handle → bus name
        self._rules: dict[int, I2cRule] = {}        # handle → its bus's compiled rule
        # the manifest's grants compiled once (frozen): bus name → rule
        self._compiled = {g.bus: I2cRule(g) for g in manifest.i2c}
        self._max_transfer = manifest.limits.max_transfer
        self._deadline_ns = manifest.limits.deadline_ms * 1_000_000

    def open(self, name: str) -> int:
        rule = self._compiled.get(name)
        if rule is None:
            granted = ", ".join(g.bus for g in self._m.i2c) or "none"
            raise self._deny("open", {"bus": name}, f"bus {name!r} is not granted (granted: {granted})")
        if len(self._buses) >= self._m.limits.open_handles:
            raise self._deny("open", {"bus": name},
                             f"open-handle quota of {self._m.limits.open_handles} reached", "no_mem")
        handle = self._host.open(name)
        self._buses[int(handle)] = name
        self._rules[int(handle)] = rule
        return handle

    def close(self, bus: int) -> None:
        self._host.close(bus)
        self._buses.pop(bus, None)
        self._rules.pop(bus, None)

    def _target(self, call: str, bus: int, address: int, mode: Any) -> tuple[str, I2cRule, bool]:
        """The open bus ``bus`` (else ``bad_handle``) and its rule, address and mode checked."""
        rule = self._rules.get(bus)
        if rule is None:
            raise HwError("bad_handle", f"{bus} is not an open bus of this driver")
        name = self._buses[bus]
        ten = int(mode) == 1
        if not rule.admits(address, ten):
            if ten and not rule.ten_bit:
                raise self._deny(call, _asked(name, address, ten),
                                 f"10-bit addressing is not granted on {name}")
            allowed = ", ".join(f"{a:#04x}" for a in sorted(rule.addresses))
            raise self._deny(call, _asked(name, address, ten),
                             f"address {address:#04x} is not granted on {name} (granted: {allowed})")
        return name, rule, ten

    def _over_quota(self, call: str, name: str, address: int, ten: bool, total: int) -> Denied:
        asked = _asked(name, address, ten)
        asked["bytes"] = total
        return self._deny(call, asked, f"transaction of {total} bytes exceeds the "
                                       f"{self._max_transfer}-byte transfer quota", "no_mem")

    def _check(self, call: str, bus: int, address: int, mode: Any,
               ops: list[tuple[bool, int, bytes | None]]) -> None:
        """ops: (is_write, length, written bytes or None), as the guest split them; judged
        as they go on the wire (merged) by the bus's rule."""
        name, rule, ten = self._target(call, bus, address, mode)
        total = sum(n for _, n, _ in ops)
        if total > self._max_transfer:
            raise self._over_quota(call, name, address, ten, total)
        if rule.registers:
            verdict = rule.judge(wire_messages(ops))
            if verdict is not None:
                register, why = verdict
                raise self._deny(call, _asked(name, address, ten, register), why)

    def transaction(self, bus: int, address: int, mode: Any, operations: list) -> None:
        # lengths first: the quota is checked before any write buffer is copied
        total = sum(len(op.buf) for op in operations)
        if total > self._max_transfer:
            self._check("transaction", bus, address, mode, [(False, total, None)])
        ops = [(w, len(op.buf), op.buf.read() if w else None)
               for op in operations for w in (_is_write(op),)]
        self._check("transaction", bus, address, mode, ops)
        return self._host.transaction(bus, address, mode, operations)

    def read(self, bus: int, address: int, mode: Any, buf: Any) -> None:
        self._check("read", bus, address, mode, [(False, len(buf), None)])
        return self._host.read(bus, address, mode, buf)

    def write(self, bus: int, address: int, mode: Any, data: bytes) -> None:
        self._check("write", bus, address, mode, [(True, len(data), bytes(data))])
        return self._host.write(bus, address, mode, data)

    def write_read(self, bus: int, address: int, mode: Any, data: bytes, buf: Any) -> None:
        self._check("write_read", bus, address, mode,
                    [(True, len(data), bytes(data)), (False, len(buf), None)])
        return self._host.write_read(bus, address, mode, data, buf)

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
        return self._host.delay_ns(ns)


def _asked(bus: str, address: int, ten: bool, register: int | None = None) -> dict[str, Any]:
    """What a denied I2C call asked for (the audit entry's ``asked``)."""
    asked: dict[str, Any] = {"bus": bus, "address": address, "ten_bit": ten}
    if register is not None:
        asked["register"] = register
    return asked


class DriverGuard(_Guard):
    _call_prefix = "wasi_driver"
    # nothing outside the driver's own: its configuration, its inbox, the clock, and its
    # log (rate- and size-bounded by the host)
    NO_GRANT = frozenset({"log", "config_get", "inbox", "now_ns"})

    def __init__(self, host: Any, manifest: Manifest, audit: AuditLog) -> None:
        super().__init__(host, manifest, audit)
        self._report_bytes = manifest.limits.report_bytes

    def report(self, data: bytes) -> None:
        if len(data) > self._report_bytes:
            raise self._deny("report", {"bytes": len(data)},
                             f"report of {len(data)} bytes exceeds the "
                             f"{self._m.limits.report_bytes}-byte quota", "no_mem")
        try:
            return self._host.report(data)
        except HwError as err:
            if err.kind != "invalid_argument" or isinstance(err, Denied):
                raise
            # a CBOR item the host cannot take (malformed, shared or cyclic, unprintable)
            raise self._deny("report", {"bytes": len(data)}, err.message or "invalid report",
                             "invalid_argument") from None

    # memory grants between drivers: decided (and denials audited) by the kernel's grant
    # table, `_sharing`, behind `DriverEnv`
    def grant(self, region: Any, grantee: str, rights: Any) -> int:
        return self._host.grant(region, grantee, rights)

    def revoke(self, grant: int) -> None:
        return self._host.revoke(grant)

    def granted_len(self, grantor: str) -> int:
        return self._host.granted_len(grantor)

    def granted_read(self, grantor: str, offset: int, buf: Any) -> None:
        return self._host.granted_read(grantor, offset, buf)

    def granted_write(self, grantor: str, offset: int, data: Any) -> None:
        return self._host.granted_write(grantor, offset, data)


_RECIPIENT_INTERFACE, _RECIPIENT_ENDPOINT = 1, 2
_SET_ADDRESS, _SET_CONFIGURATION, _SET_INTERFACE = 5, 9, 11


class UsbGuard(_Guard):
    _call_prefix = "wasi_usb"
    # the host lists (and reports arrivals of) only devices a grant matches: the `visible`
    # filter the kernel builds from the same `UsbGrant.matches` (kernel/_hosts.py)
    NO_GRANT = frozenset({"list_devices", "hotplug_poll"})

    def __init__(self, host: Any, manifest: Manifest, audit: AuditLog) -> None:
        super().__init__(host, manifest, audit)
        self._open: set[int] = set()
        # (handle, endpoint) pairs whose grant check passed: grants are frozen and a handle
        # names one device for its life, so each pair is checked once (dropped at close)
        self._ep_ok: set[tuple[int, int]] = set()
        self._max_transfer = manifest.limits.max_transfer
        self._deadline_ms = manifest.limits.deadline_ms
        self._compiled = tuple((g, UsbRule(g)) for g in manifest.usb)   # compiled once

    def _grant(self, call: str, info: Any) -> UsbRule:
        for g, rule in self._compiled:
            if g.matches(info.vendor_id, info.product_id, info.serial):
                return rule
        raise self._deny(call, _ident(info), f"device {info.vendor_id:04x}:{info.product_id:04x} "
                                             "is not granted")

    def _handle_grant(self, call: str, handle: int) -> tuple[Any, dict]:
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
        return handle

    def close(self, handle: int) -> None:
        self._host.close(handle)
        self._open.discard(handle)
        if self._ep_ok:
            self._ep_ok = {k for k in self._ep_ok if k[0] != handle}

    def _operation(self, call: str, handle: int, op: str, asked: dict | None = None) -> Any:
        grant, ident = self._handle_grant(call, handle)
        if not grant.operation(op):
            raise self._deny(call, {**ident, **(asked or {})}, f"operation {op} is not granted")
        return grant

    def _interface(self, call: str, handle: int, interface: int, grant: Any = None) -> None:
        g, ident = self._handle_grant(call, handle)
        if not g.interface(interface):
            raise self._deny(call, {**ident, "interface": interface},
                             f"interface {interface} is not granted")

    def _endpoint(self, call: str, handle: int, endpoint: int) -> None:
        if (handle, endpoint) in self._ep_ok:
            return
        g, ident = self._handle_grant(call, handle)
        if not g.endpoint(endpoint):
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
        return self._host.set_configuration(handle, value)

    def claim_interface(self, handle: int, interface: int) -> None:
        self._interface("claim_interface", handle, interface)
        return self._host.claim_interface(handle, interface)

    def release_interface(self, handle: int, interface: int) -> None:
        self._interface("release_interface", handle, interface)
        return self._host.release_interface(handle, interface)

    def set_alt_setting(self, handle: int, interface: int, alt_setting: int) -> None:
        self._interface("set_alt_setting", handle, interface)
        return self._host.set_alt_setting(handle, interface, alt_setting)

    def detach_kernel_driver(self, handle: int, interface: int) -> None:
        self._operation("detach_kernel_driver", handle, "detach_kernel_driver",
                        {"interface": interface})
        self._interface("detach_kernel_driver", handle, interface)
        return self._host.detach_kernel_driver(handle, interface)

    def reset_device(self, handle: int) -> None:
        self._operation("reset_device", handle, "reset")
        return self._host.reset_device(handle)

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
                and not g.operation("set_configuration"):
            raise self._deny(call, asked, "SET_CONFIGURATION needs the set_configuration grant")
        if recipient == _RECIPIENT_INTERFACE and not g.interface(index & 0xFF):
            raise self._deny(call, asked, f"interface {index & 0xFF} is not granted")
        if recipient == _RECIPIENT_ENDPOINT and not g.endpoint(index & 0xFF):
            raise self._deny(call, asked, f"endpoint {index & 0xFF:#04x} is not granted")
        return self._host.control_transfer(handle, request_type, request, value, index, data,
                                           self._timeout(timeout))

    def bulk_transfer(self, handle: int, endpoint: int, data: Any, timeout: int) -> int:
        # the hot path: `_endpoint`, `_quota` and `_timeout` inlined
        if (handle, endpoint) not in self._ep_ok:
            self._endpoint("bulk_transfer", handle, endpoint)
        if len(data) > self._max_transfer:
            self._quota("bulk_transfer", len(data))
        if timeout:
            timeout = min(timeout, self._deadline_ms)
        return self._host.bulk_transfer(handle, endpoint, data, timeout)

    def interrupt_transfer(self, handle: int, endpoint: int, data: Any, timeout: int) -> int:
        self._endpoint("interrupt_transfer", handle, endpoint)
        self._quota("interrupt_transfer", len(data))
        return self._host.interrupt_transfer(handle, endpoint, data, self._timeout(timeout))

    def iso_transfer(self, handle: int, endpoint: int, data: Any, packets: Any, timeout: int) -> int:
        self._endpoint("iso_transfer", handle, endpoint)
        self._quota("iso_transfer", len(data))
        return self._host.iso_transfer(handle, endpoint, data, packets, self._timeout(timeout))

    def clear_halt(self, handle: int, endpoint: int) -> None:
        self._endpoint("clear_halt", handle, endpoint)
        return self._host.clear_halt(handle, endpoint)

    # reading a granted device's descriptors (listed devices) / an open handle's state
    def _device(self, call: str, device: int) -> None:
        self._grant(call, self._host.device_identity(device))

    def device_info(self, device: int) -> Any:
        self._device("device_info", device)
        return self._host.device_info(device)

    def port_path(self, device: int, buf: Any) -> int:
        self._device("port_path", device)
        return self._host.port_path(device, buf)

    def device_descriptor(self, device: int, buf: Any) -> int:
        self._device("device_descriptor", device)
        return self._host.device_descriptor(device, buf)

    def config_descriptor(self, device: int, index: int, buf: Any) -> int:
        self._device("config_descriptor", device)
        return self._host.config_descriptor(device, index, buf)

    def string_descriptor(self, handle: int, index: int, langid: int, buf: Any) -> int:
        self._handle_grant("string_descriptor", handle)
        return self._host.string_descriptor(handle, index, langid, buf)

    def get_configuration(self, handle: int) -> int:
        self._handle_grant("get_configuration", handle)
        return self._host.get_configuration(handle)


def _ident(info: Any) -> dict:
    out = {"vid": info.vendor_id, "pid": info.product_id}
    if info.serial is not None:
        out["serial"] = info.serial
    return out
