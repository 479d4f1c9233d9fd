"""Backends built for the applications: the one place that picks sim, smbus2, pyusb or USB/IP.

The kernel runs against whatever `Backends` it is handed; this module builds them.
- `sim_i2c(devices, buses)` / `sim_usb(devices)`: simulated backends with the named models
  (`SimDevice` records; names, aliases, plugins and parameters through
  `wasi_hw.host.device_models`) attached; an unknown model or bad parameters raise
  `UserError` naming what is available.
- `parse_sim_spec("bme280(temperature_c=30)@i2c-1:0x76", default_bus, usb=False)` → a
  checked `SimDevice` (device-spec syntax: `wasi_hw.host.parse_device_spec`).
- `usbip_usb(address)`: a `UsbipUsbBackend` importing what the USB/IP server at ``address``
  exports (nothing connects until a driver looks for a device).
- `real_backends(buses, usb=...)`: ``/dev/i2c-N`` through smbus2, USB through pyusb.
- `plan_backends(plan)`: a kernel file's backends — its simulated devices if it lists any,
  else the real buses; USB from its USB/IP server when it names one.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from types import MappingProxyType
from typing import Any

from wasi_hw import UserError
from wasi_hw.host import (
    PyusbUsbBackend,
    SimI2cBackend,
    SimUsbBackend,
    Smbus2I2cBackend,
    UsbipUsbBackend,
    device_models,
    parse_device_spec,
)
from wasi_hw.kernel import Backends, KernelPlan, SimDevice, parse_usbip

__all__ = ["sim_i2c", "sim_usb", "parse_sim_spec", "usbip_usb", "real_backends",
           "plan_backends"]


def parse_sim_spec(spec: str, default_bus: str, *, usb: bool = False) -> SimDevice:
    """``"bme280(temperature_c=30)@0x76"`` → a `SimDevice` (bus: ``default_bus`` unless the
    spec names one); ``usb``: a USB spec (``"hid:hello"``), no address. The model and its
    parameters are checked now: mistakes are `UserError`s naming the spec."""
    flag = "--usb-sim" if usb else "--sim"
    parsed = parse_device_spec(spec, address=not usb, where=flag)
    _, params = device_models().check(parsed.model, parsed.params, kind="usb" if usb else "i2c",
                                      where=f"{flag} {spec!r}", raw=parsed.raw)
    return SimDevice(parsed.model, parsed.bus or default_bus, parsed.address or 0,
                     MappingProxyType(params))


def sim_i2c(devices: Iterable[SimDevice], buses: Iterable[str] = ()) -> SimI2cBackend:
    """A `SimI2cBackend` on ``buses`` (and every bus a device names; default ``i2c-1``)
    with the given device models attached."""
    devices = list(devices)
    names = sorted({*buses, *(d.bus for d in devices)}) or ["i2c-1"]
    backend = SimI2cBackend(names)
    for d in devices:
        model = device_models().create(d.model, d.params, kind="i2c",
                                       where=f"simulated {d.model}@{d.address:#04x}")
        try:
            backend.attach(d.bus, d.address, model)
        except ValueError as err:
            raise UserError(f"simulated {d.model}: {err}") from None
    return backend


def sim_usb(devices: Iterable[SimDevice]) -> SimUsbBackend:
    """A `SimUsbBackend` with the given device models plugged in."""
    return SimUsbBackend([device_models().create(d.model, d.params, kind="usb",
                                                 where=f"simulated {d.model}")
                          for d in devices])


def usbip_usb(address: tuple[str, int] | str) -> UsbipUsbBackend:
    """A `UsbipUsbBackend` for the USB/IP server at ``address`` (``(host, port)`` or
    ``"HOST[:PORT]"``). Nothing is connected until the driver looks for a device; an
    unreachable server then shows as no device present."""
    host, port = parse_usbip(address) if isinstance(address, str) else address
    return UsbipUsbBackend(host, port)


def real_backends(i2c_buses: Iterable[str], *, usb: bool = False) -> Backends:
    """The host's real buses: ``/dev/i2c-N`` through smbus2, USB through pyusb."""
    i2c = None
    buses = list(i2c_buses)
    if buses:
        for bus in buses:
            if not re.fullmatch(r"i2c-\d+", bus):
                raise UserError(f"bus {bus!r}: real I2C buses are named i2c-N (/dev/i2c-N)")
        i2c = Smbus2I2cBackend(buses)
    return Backends(i2c=i2c, usb=PyusbUsbBackend() if usb else None)


def plan_backends(plan: KernelPlan) -> Backends:
    """Backends for a kernel file: simulated devices if it lists any, else the real buses;
    USB from the file's USB/IP server (``kernel.usbip``) when it names one."""
    i2c_buses = sorted({g.bus for m in plan.manifests for g in m.i2c})
    wants_usb = any(m.usb for m in plan.manifests)
    usbip = usbip_usb(plan.usbip) if plan.usbip else None
    if plan.i2c_sim or plan.usb_sim:
        i2c = sim_i2c(plan.i2c_sim, i2c_buses) if (plan.i2c_sim or i2c_buses) else None
        usb = usbip or (sim_usb(plan.usb_sim) if (plan.usb_sim or wants_usb) else None)
        return Backends(i2c=i2c, usb=usb, clock=getattr(i2c, "clock", None))
    real = real_backends(i2c_buses, usb=wants_usb and usbip is None)
    return Backends(i2c=real.i2c, usb=usbip or real.usb)
