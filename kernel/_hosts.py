"""Host modules for one driver instance, built from the backends the kernel was given.

Contract: `Backends` names what a kernel runs against (an I2C backend, a USB backend, a
clock). `make_hosts(manifest, backends, report_sink, log_sink)` returns fresh host modules —
``{"wasi_i2c": I2cHost, "wasi_usb": UsbHost, "wasi_driver": DriverEnv, "wasi_imc": ImcEnv}`` — with their own
handle tables, sized by the manifest's limits, for one instance; a restart gets new ones.
``sharing`` (the instance's view of the kernel's grant table, `_sharing`) goes to `DriverEnv`;
closing the hosts closes it, ending the instance's grants. ``imc`` (the instance's `ImcEnv`
from the kernel's `ImcHub`) is the ``wasi_imc`` host; without one the instance gets a hub of
its own (local only, nothing to call).
The kernel never names a backend class: whoever builds `Backends` chooses sim, smbus2,
pyusb, USB/IP or replay. `close_hosts` drops every handle the instance left open.
`traced_backends(backends)` passes the I2C and USB backends through the trace hook
(`wasi_hw.host.traced`): unchanged normally, recorded under ``wasi-hw trace record``,
replaced by a replay under ``wasi-hw trace replay`` (then a clock that was the replaced I2C
backend's becomes the replay's, so guest delays and the recorded timeline stay one clock).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

from ._manifest import Manifest

__all__ = ["Backends", "make_hosts", "close_hosts", "traced_backends"]


@dataclass
class Backends:
    i2c: Any = None      # an I2cBackend, or a mapping bus name → backend / (backend, bus)
    usb: Any = None      # a UsbBackend
    clock: Any = None    # a Clock; default: the I2C backend's clock, else real time


def traced_backends(backends: Backends) -> Backends:
    """`backends` with its I2C and USB backends passed through `wasi_hw.host.traced`
    (the same object when no ``wasi-hw trace`` session is active)."""
    from wasi_hw.host import traced

    i2c, usb = traced(backends.i2c), traced(backends.usb)
    if i2c is backends.i2c and usb is backends.usb:
        return backends
    clock = backends.clock
    old = getattr(backends.i2c, "clock", None)
    if clock is not None and clock is old:
        clock = getattr(i2c, "clock", None) or clock
    return replace(backends, i2c=i2c, usb=usb, clock=clock)


def make_hosts(manifest: Manifest, backends: Backends, *,
               report_sink: Callable[[Any], None], log_sink: Callable[[str, str], None],
               sharing: Any = None, imc: Any = None) -> dict[str, Any]:
    from wasi_hw.host import DriverEnv, I2cHost, RealClock

    from ._audit import AuditLog
    from ._imc import ImcHub

    limits = manifest.limits
    clock = backends.clock or getattr(backends.i2c, "clock", None) or RealClock()
    hosts: dict[str, Any] = {
        "wasi_driver": DriverEnv(config=dict(manifest.config), report_sink=report_sink,
                                 log_sink=log_sink, clock=clock, max_report=limits.report_bytes,
                                 sharing=sharing),
        # the kernel's IMC env of this instance; alone (no kernel): a hub of its own, local only
        "wasi_imc": imc if imc is not None else ImcHub(AuditLog()).env(manifest),
    }
    if backends.i2c is not None:
        hosts["wasi_i2c"] = I2cHost(backends.i2c, clock, max_handles=limits.open_handles,
                                    max_transfer=limits.max_transfer,
                                    max_delay_ns=limits.deadline_ms * 1_000_000)
    if backends.usb is not None:
        from wasi_hw.host import UsbHost
        hosts["wasi_usb"] = _usb_host(UsbHost, manifest, backends.usb, clock)
    return hosts


def _usb_host(cls: Any, manifest: Manifest, backend: Any, clock: Any) -> Any:
    grants = manifest.usb

    def visible(info: Any) -> bool:   # a driver sees only the devices it is granted
        return any(g.matches(info.vendor_id, info.product_id, info.serial) for g in grants)

    return cls(backend, visible=visible, clock=clock, max_handles=manifest.limits.open_handles,
               max_transfer=manifest.limits.max_transfer,
               default_timeout_ms=manifest.limits.deadline_ms)


def close_hosts(hosts: dict[str, Any]) -> None:
    for host in hosts.values():
        close_all = getattr(host, "close_all", None)
        if close_all is not None:
            try:
                close_all()
            except Exception:  # noqa: BLE001 — a host failing to clean up must not stop the kernel
                pass
