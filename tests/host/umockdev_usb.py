"""Emulated usbfs: `UsbDeviceModel`s served to the unmodified pyusb + libusb via umockdev.

`EmulatedUsb(models)` (only inside a process started under ``umockdev-wrapper``, i.e. with
umockdev's preload library in ``LD_PRELOAD``) creates a `UMockdev.Testbed` with one sysfs USB
device per model (``/sys/bus/usb/devices/1-<port>``: ``descriptors``, ``busnum``, ``devnum``,
``speed``, ``bConfigurationValue``) and attaches a `UsbfsHandler` to its device node
``/dev/bus/usb/001/<devnum>``. libusb then opens that node and its ioctls arrive at the
handler, which answers them from the model exactly as Linux usbfs would:

    GET_CAPABILITIES   → NO_PACKET_SIZE_LIM (libusb submits each transfer as one URB)
    SUBMITURB          → control URBs run at once (SETUP in the first 8 buffer bytes; STALL →
                         status -EPIPE); bulk/interrupt OUT are offered to the model, IN asks
                         the model; a NAK leaves the URB pending
    REAPURB(NDELAY)    → hands back a completed URB of this fd (pending INs are re-asked
                         first), else EAGAIN — libusb polls, and discards the URB when its
                         timeout expires
    DISCARDURB         → a pending URB completes with -ECONNRESET (libusb: timed out/cancelled)
    CLAIM/RELEASEINTERFACE (one fd per interface, else EBUSY), SETCONFIGURATION (EBUSY
    while claimed), SETINTERFACE, CLEAR_HALT,
    RESET (model reset + configuration/alt settings restored), GETDRIVER/DISCONNECT (no
    kernel driver: ENODATA); anything else ENOTTY. After `EmulatedUsb.unplug` every ioctl
    fails with ENODEV. (libusb learns of *new* devices from kernel netlink uevents, which
    umockdev does not emulate: hotplug arrival is not testable this way.)

`run_under_umockdev("module:function", *args)` runs ``function(*args)`` in a fresh Python
process under ``umockdev-wrapper`` (this directory on ``sys.path``) and returns its
JSON-serialisable result. The function sets up `EmulatedUsb` itself and uses
`PyusbUsbBackend` (or a whole kernel running `.wasm` drivers) against it. Keep transfer
timeouts short: libusb busy-polls REAPURBNDELAY while an IN is pending.

Skip decisions: `available()` (shared with the i2c-dev helper) gives the reason umockdev
cannot be used here, or None.
"""

from __future__ import annotations

import errno
import importlib
import json
import os
import struct
import subprocess
import sys
import threading
from collections import deque
from pathlib import Path

from wasi_hw.host.usbdevices import Setup, Stall, UsbDeviceModel

from umockdev_i2c import available  # one skip rule for every umockdev helper

__all__ = ["EmulatedUsb", "UsbfsHandler", "run_under_umockdev", "available", "in_umockdev"]

HERE = Path(__file__).resolve().parent
_RESULT = "UMOCKDEV-RESULT:"

# usbfs ioctl numbers (x86_64, linux/usbdevice_fs.h)
SETINTERFACE = 0x80085504
SETCONFIGURATION = 0x80045505
GETDRIVER = 0x41045508
SUBMITURB = 0x8038550A
DISCARDURB = 0x0000550B
REAPURB = 0x4008550C
REAPURBNDELAY = 0x4008550D
CLAIMINTERFACE = 0x8004550F
RELEASEINTERFACE = 0x80045510
IOCTL = 0xC0105512
RESET = 0x00005514
CLEAR_HALT = 0x80045515
GET_CAPABILITIES = 0x8004551A
CAP_NO_PACKET_SIZE_LIM = 0x04

# struct usbdevfs_urb: type, endpoint, status, flags, buffer, buffer_length, actual_length,
# start_frame, number_of_packets, error_count, signr, usercontext  (56 bytes)
_URB = struct.Struct("<BB2xiI4xQiiiiiIQ")
_URB_ISO, _URB_INTERRUPT, _URB_CONTROL, _URB_BULK = 0, 1, 2, 3

_SPEED_MBPS = {"low": "1.5", "full": "12", "high": "480", "super": "5000",
               "super_plus": "10000", "unknown": "12"}


def in_umockdev() -> bool:
    """True inside a process running under umockdev's preload library."""
    return "libumockdev-preload" in os.environ.get("LD_PRELOAD", "")


def _umockdev():
    import gi

    gi.require_version("UMockdev", "1.0")
    from gi.repository import UMockdev

    return UMockdev


class _Urb:
    __slots__ = ("data", "buf", "type", "endpoint", "length", "out", "sent", "status", "actual",
                 "in_data")

    def __init__(self, data, buf, urb_type, endpoint, length):
        self.data, self.buf = data, buf  # IoctlData of the urb struct / of its buffer
        self.type, self.endpoint, self.length = urb_type, endpoint, length
        self.out = b""
        self.sent = 0
        self.status = 0
        self.actual = 0
        self.in_data = b""


class _Client:
    """usbfs state of one open file descriptor: its URBs."""

    __slots__ = ("client", "pending", "done")

    def __init__(self, client):
        self.client = client
        self.pending: list[_Urb] = []
        self.done: deque[_Urb] = deque()


def _make_handler_class():
    UMockdev = _umockdev()

    class UsbfsHandlerImpl(UMockdev.IoctlBase):
        """usbfs for one model (see the module docstring)."""

        def __init__(self, model: UsbDeviceModel, devnum: int, on_config=None):
            super().__init__()
            self.model = model
            self.devnum = devnum
            self.on_config = on_config or (lambda value: None)
            self.lock = threading.Lock()
            self.clients: dict[int, _Client] = {}  # one per open file descriptor
            self.claims: dict[int, _Client] = {}  # interface -> the fd that claimed it
            self.log: list[int] = []
            self.gone = False  # unplugged: every ioctl fails with ENODEV, as usbfs does

        def _client(self, client) -> _Client:
            state = self.clients.get(id(client))
            if state is None:  # keeping the wrapper alive keeps its id() stable
                state = self.clients[id(client)] = _Client(client)
            for iface, owner in list(self.claims.items()):  # an fd closed without releasing
                if not owner.client.get_connected():
                    del self.claims[iface]
            return state

        # -- helpers --------------------------------------------------------------------
        @staticmethod
        def _u32(client) -> int:
            return struct.unpack("<I", bytes(client.get_arg().resolve(0, 4).retrieve()))[0]

        def _control(self, setup: Setup, data: bytes = b"") -> bytes:
            return self.model.handle_control(setup, data)

        def _interfaces(self) -> set[int]:
            cfg = self.model.active_configuration()
            return set(cfg.interface_numbers) if cfg else set()

        def do_handle_ioctl(self, client) -> bool:
            req = client.get_request()
            with self.lock:
                try:
                    res, err = self._ioctl(req, client)
                except Exception as exc:  # never let the worker thread die: report EIO
                    print(f"umockdev usbfs handler: {type(exc).__name__}: {exc}", file=sys.stderr)
                    res, err = -1, errno.EIO
            client.complete(res, err)
            return True

        def _ioctl(self, req: int, client) -> tuple[int, int]:
            self.log.append(req)
            me = self._client(client)
            if self.gone:
                return -1, errno.ENODEV
            if req == GET_CAPABILITIES:
                client.get_arg().resolve(0, 4).update(
                    0, list(struct.pack("<I", CAP_NO_PACKET_SIZE_LIM))
                )
                return 0, 0
            if req == SUBMITURB:
                return self._submit(client, me)
            if req in (REAPURB, REAPURBNDELAY):
                return self._reap(client, me)
            if req == DISCARDURB:
                addr = struct.unpack("<Q", bytes(client.get_arg().retrieve()))[0]
                for urb in me.pending:
                    if urb.data.client_addr == addr:
                        me.pending.remove(urb)
                        urb.status = -errno.ECONNRESET
                        me.done.append(urb)
                        return 0, 0
                return -1, errno.EINVAL
            if req == CLAIMINTERFACE:
                i = self._u32(client)
                if i not in self._interfaces():
                    return -1, errno.ENOENT
                if self.claims.setdefault(i, me) is not me:
                    return -1, errno.EBUSY
                return 0, 0
            if req == RELEASEINTERFACE:
                i = self._u32(client)
                if self.claims.get(i) is not me:
                    return -1, errno.EINVAL
                del self.claims[i]
                return 0, 0
            if req == SETCONFIGURATION:
                value = struct.unpack("<i", bytes(client.get_arg().resolve(0, 4).retrieve()))[0]
                value = max(value, 0)
                if self.claims:
                    return -1, errno.EBUSY
                try:
                    self._control(Setup(0x00, 9, value, 0, 0))
                except Stall:
                    return -1, errno.EINVAL
                self.on_config(value)
                return 0, 0
            if req == SETINTERFACE:
                iface, alt = struct.unpack("<II", bytes(client.get_arg().resolve(0, 8).retrieve()))
                if iface not in self._interfaces():
                    return -1, errno.ENOENT
                if self.claims.setdefault(iface, me) is not me:  # usbfs claims on use
                    return -1, errno.EBUSY
                try:
                    self._control(Setup(0x01, 11, alt, iface, 0))
                except Stall:
                    return -1, errno.EINVAL
                return 0, 0
            if req == CLEAR_HALT:
                ep = self._u32(client)
                if ep not in self.model.endpoints():
                    return -1, errno.ENOENT
                try:
                    self._control(Setup(0x02, 1, 0, ep, 0))
                except Stall:
                    return -1, errno.EPIPE
                return 0, 0
            if req == RESET:
                m = self.model
                config = m.configuration
                alts = {i: m.alt_setting(i) for i in self._interfaces()}
                m.handle_reset()
                m.handle_control(Setup(0x00, 5, self.devnum, 0, 0))
                if config:
                    m.handle_control(Setup(0x00, 9, config, 0, 0))
                    for i, alt in alts.items():
                        if alt:
                            m.handle_control(Setup(0x01, 11, alt, i, 0))
                return 0, 0
            if req in (GETDRIVER, IOCTL):
                return -1, errno.ENODATA
            return -1, errno.ENOTTY

        def _submit(self, client, me: _Client) -> tuple[int, int]:
            data = client.get_arg().resolve(0, _URB.size)
            f = _URB.unpack(bytes(data.retrieve()))
            urb_type, endpoint, length = f[0], f[1], f[5]
            buf = data.resolve(16, length) if length > 0 else None
            urb = _Urb(data, buf, urb_type, endpoint, length)
            raw = bytes(buf.retrieve()) if buf is not None else b""
            if urb_type == _URB_CONTROL:
                if length < 8:
                    return -1, errno.EINVAL
                setup = Setup.from_bytes(raw[:8])
                try:
                    if setup.is_in:
                        urb.in_data = self._control(setup)[: setup.length]
                        urb.actual = len(urb.in_data)
                    else:
                        self._control(setup, raw[8:8 + setup.length])
                        urb.actual = setup.length
                except Stall:
                    urb.status = -errno.EPIPE
                me.done.append(urb)
                return 0, 0
            if urb_type not in (_URB_BULK, _URB_INTERRUPT):
                return -1, errno.EINVAL  # isochronous: not emulated
            if endpoint not in self.model.endpoints():
                return -1, errno.ENOENT
            if not endpoint & 0x80:
                urb.out = raw
            me.pending.append(urb)
            self._progress(me)
            return 0, 0

        def _progress(self, me: _Client) -> None:
            """Move this fd's pending URBs forward: OUT data offered, IN data asked for."""
            for urb in list(me.pending):
                try:
                    if urb.endpoint & 0x80:
                        got = self.model.handle_in(urb.endpoint, urb.length)
                        if got is None:
                            continue
                        urb.in_data, urb.actual = got, len(got)
                    else:
                        urb.sent += self.model.handle_out(urb.endpoint, urb.out[urb.sent:])
                        if urb.sent < len(urb.out):
                            continue
                        urb.actual = urb.sent
                except Stall:
                    urb.status = -errno.EPIPE
                except ValueError:
                    urb.status = -errno.EOVERFLOW
                me.pending.remove(urb)
                me.done.append(urb)

        def _reap(self, client, me: _Client) -> tuple[int, int]:
            if not me.done:
                self._progress(me)
            if not me.done:
                return -1, errno.EAGAIN
            urb = me.done.popleft()
            if urb.in_data:
                offset = 8 if urb.type == _URB_CONTROL else 0
                urb.buf.update(offset, list(urb.in_data))
            urb.data.update(4, list(struct.pack("<i", urb.status)))
            urb.data.update(28, list(struct.pack("<i", urb.actual)))
            client.get_arg().resolve(0, 8).set_ptr(0, urb.data)
            return 0, 0

    return UsbfsHandlerImpl


_HANDLER_CLASS = None


def UsbfsHandler(model: UsbDeviceModel, devnum: int, on_config=None):  # noqa: N802 — a class factory
    """A `UMockdev.IoctlBase` answering usbfs ioctls for ``model`` (created lazily so this
    module imports without GObject)."""
    global _HANDLER_CLASS
    if _HANDLER_CLASS is None:
        _HANDLER_CLASS = _make_handler_class()
    return _HANDLER_CLASS(model, devnum, on_config)


def _sysfs(model: UsbDeviceModel, port: int, devnum: int) -> str:
    d = model.device_descriptor
    descriptors = d + b"".join(model.config_descriptors)
    lines = [
        f"P: /devices/pci0000:00/0000:00:14.0/usb1/1-{port}",
        f"N: bus/usb/001/{devnum:03d}",
        "E: SUBSYSTEM=usb",
        "E: DEVTYPE=usb_device",
        "E: DRIVER=usb",
        f"E: DEVNAME=/dev/bus/usb/001/{devnum:03d}",
        "E: BUSNUM=001",
        f"E: DEVNUM={devnum:03d}",
        f"E: PRODUCT={model.device.vendor_id:x}/{model.device.product_id:x}"
        f"/{model.device.bcd_device:x}",
        "A: busnum=1\\n",
        f"A: devnum={devnum}\\n",
        f"A: devpath={port}\\n",
        f"A: speed={_SPEED_MBPS[model.speed]}\\n",
        f"A: bConfigurationValue={model.configuration}\\n",
        f"A: bNumConfigurations={d[17]}\\n",
        f"A: idVendor={model.device.vendor_id:04x}\\n",
        f"A: idProduct={model.device.product_id:04x}\\n",
        f"H: descriptors={descriptors.hex().upper()}",
    ]
    if model.serial is not None:
        lines.append(f"A: serial={model.serial}\\n")
    return "\n".join(lines) + "\n"


class EmulatedUsb:
    """A umockdev testbed serving ``models`` as USB devices on bus 1 (ports 1.., devnums 2..).
    Use as a context manager inside a process under ``umockdev-wrapper``."""

    def __init__(self, models: list[UsbDeviceModel]) -> None:
        if not in_umockdev():
            raise RuntimeError("EmulatedUsb needs a process started under umockdev-wrapper")
        self.models = list(models)
        self.testbed = None
        self.handlers = []

    def __enter__(self) -> EmulatedUsb:
        UMockdev = _umockdev()
        self.testbed = tb = UMockdev.Testbed.new()
        for n, model in enumerate(self.models):
            port, devnum = n + 1, n + 2
            # enumerate as Linux does before anyone opens the node: address, configuration 1
            model.handle_reset()
            model.handle_control(Setup(0x00, 5, devnum, 0, 0))
            model.handle_control(Setup(0x00, 9, model.configurations[0].value, 0, 0))
            tb.add_from_string(_sysfs(model, port, devnum))
            syspath = f"/sys/devices/pci0000:00/0000:00:14.0/usb1/1-{port}"

            def on_config(value, _syspath=syspath):
                tb.set_attribute(_syspath, "bConfigurationValue", f"{value}\n")

            handler = UsbfsHandler(model, devnum, on_config)
            tb.attach_ioctl(f"/dev/bus/usb/001/{devnum:03d}", handler)
            self.handlers.append(handler)
        return self

    def unplug(self, index: int) -> None:
        """Unplug device ``index``: its sysfs entry goes, its open fds fail with ENODEV."""
        self.handlers[index].gone = True
        self.testbed.remove_device(f"/sys/devices/pci0000:00/0000:00:14.0/usb1/1-{index + 1}")

    def __exit__(self, *exc) -> None:
        self.handlers.clear()
        self.testbed = None


def run_under_umockdev(target: str, *args, timeout: float = 120):
    """Run ``module:function(*args)`` under umockdev-wrapper; return its JSON result."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        ["umockdev-wrapper", sys.executable, "-m", "umockdev_usb", target, json.dumps(args)],
        env=env, cwd=str(HERE), capture_output=True, text=True, timeout=timeout, check=False)
    for line in proc.stdout.splitlines():
        if line.startswith(_RESULT):
            return json.loads(line[len(_RESULT):])
    raise RuntimeError(f"{target} under umockdev failed (exit {proc.returncode}):\n"
                       f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")


def _main(argv: list[str]) -> int:
    module, _, func = argv[0].partition(":")
    args = json.loads(argv[1]) if len(argv) > 1 else []
    result = getattr(importlib.import_module(module), func)(*args)
    print(_RESULT + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
