"""``wasi-hw usbip serve``: export virtual USB devices over USB/IP until Ctrl-C;
``wasi-hw usbip list``: what a USB/IP server exports (bus id, VID:PID, speed, interfaces).

``--device`` specs (repeatable, served as bus ids 1-1, 1-2, … in order), any USB model of
the registry (`wasi_hw.host.device_models`, aliases and plugins included): ``echo``,
``hid`` or ``hid:TEXT`` (a keyboard typing TEXT), ``msc:PATH`` (mass storage over the image
PATH, created zero-filled with ``--msc-size`` bytes if missing), ``MODEL(KEY=VALUE, …)``.
A bad spec, image, port or address is a `UserError` (one line, exit 2).
"""

from __future__ import annotations

import argparse
import os
import re
import threading

from wasi_hw import HwError, UserError
from wasi_hw.host import (UsbipServer, UsbipUsbBackend, device_models, parse_device_spec,
                          speed_name)
from wasi_hw.host.usbdevices import MassStorage

from ._argtypes import port

__all__ = ["register", "parse_device", "parse_size"]

_SIZE = re.compile(r"(\d+)\s*([KMG]i?B?|B)?", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def parse_size(text: str) -> int:
    """``"16M"``, ``"512K"``, ``"1048576"`` → bytes (binary units)."""
    m = _SIZE.fullmatch(text.strip())
    if not m:
        raise UserError(f"bad size {text!r} (use e.g. 16M, 512K or a byte count)")
    return int(m.group(1)) * _UNITS[(m.group(2) or "")[:1].lower()]


def parse_device(spec: str, *, msc_size: int = 16 << 20):
    """One ``--device`` spec → a new device model, through the model registry
    (`wasi_hw.host.device_models`: ``echo``, ``hid:TEXT``, ``msc:PATH``, aliases, plugins,
    ``MODEL(KEY=VALUE)``). A missing ``msc`` image is created zero-filled first."""
    parsed = parse_device_spec(spec, address=False, where="--device")
    models = device_models()
    info = models.resolve(parsed.model, "usb", where=f"--device {spec!r}")
    if info.factory is MassStorage:
        image = parsed.params.get("image")
        if not image:
            raise UserError(f"--device {spec!r}: msc needs its disk image, e.g. msc:disk.img")
        if not os.path.exists(image):
            block = MassStorage.BLOCK
            if msc_size <= 0 or msc_size % block:
                raise UserError(f"--msc-size {msc_size} is not a positive multiple of {block}")
            MassStorage.create_image(image, msc_size // block)
    return models.create(parsed, kind="usb", where=f"--device {spec!r}")


def _serve(args: argparse.Namespace) -> int:
    size = parse_size(args.msc_size)
    models = [parse_device(s, msc_size=size) for s in args.device or ["echo"]]
    server = UsbipServer(models, host=args.host, port=args.port)
    try:
        server.start()
    except OSError as err:
        why = err.strerror or err
        raise UserError(f"cannot listen on {args.host}:{args.port}: {why}") from None
    host, port = server.address
    try:
        print(f"serving USB/IP on {host}:{port} (Ctrl-C to stop)")
        for busid, spec in zip(server.busids, args.device or ["echo"]):
            m = server.model(busid)
            print(f"  {busid}  {m.device.vendor_id:04x}:{m.device.product_id:04x}  {spec}",
                  flush=True)
        threading.Event().wait()  # until Ctrl-C (KeyboardInterrupt → exit 130)
    finally:
        server.stop()
        for m in models:
            close = getattr(m, "close", None)
            if close:
                close()
    return 0


def _list(args: argparse.Namespace) -> int:
    try:
        exports = UsbipUsbBackend(args.host, args.port, io_timeout=args.timeout).exports()
    except HwError as err:
        raise UserError(f"cannot list {args.host}:{args.port}: {err.message}") from None
    for d in exports:
        ifaces = " ".join(f"{c:02x}/{s:02x}/{p:02x}" for c, s, p in d.interfaces)
        print(f"{d.busid}  {d.vendor_id:04x}:{d.product_id:04x}  {speed_name(d.speed)}  "
              f"interfaces {ifaces or '-'}")
    if not exports:
        print(f"{args.host}:{args.port} exports no devices")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    usbip = subparsers.add_parser("usbip", help="USB/IP: export virtual USB devices")
    sub = usbip.add_subparsers(dest="usbip_command", metavar="COMMAND", required=True)
    serve = sub.add_parser(
        "serve", help="serve virtual devices over USB/IP until Ctrl-C",
        description="Serve simulated USB devices over USB/IP until Ctrl-C, as bus ids 1-1, "
                    "1-2, … in the order given. A device is any USB model wasi-hw knows "
                    "(aliases and installed plugins included): echo, hid or hid:TEXT (a "
                    "keyboard typing TEXT), msc:PATH (mass storage over the disk image PATH, "
                    "created zero-filled with --msc-size bytes if missing), or "
                    "MODEL(KEY=VALUE, …).")
    serve.add_argument("--device", action="append", metavar="SPEC",
                       help="echo | hid[:TEXT] | msc:PATH | a plugin MODEL or module:Class, "
                            "parameters as MODEL(KEY=VALUE) (repeatable; default: echo)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on")
    serve.add_argument("--port", type=port, default=3240, help="TCP port (0: any free port)")
    serve.add_argument("--msc-size", default="16M",
                       help="size of a missing msc image to create (default 16M)")
    serve.set_defaults(func=_serve)
    lister = sub.add_parser("list", help="list the devices a USB/IP server exports")
    lister.add_argument("--host", default="127.0.0.1", help="server address")
    lister.add_argument("--port", type=port, default=3240, help="server TCP port")
    lister.add_argument("--timeout", type=float, default=3.0, help="seconds to wait")
    lister.set_defaults(func=_list)
