"""One USB conversation, runnable on any `UsbBackend`, returning a JSON-able transcript.

`conversation(backend)` exercises enumeration, strings, control IN/OUT, stall → pipe, bulk
echo, IN with no data → timeout then a working transfer, interrupt IN, halt/clear halt,
reset, configuration changes, two handles on one device, the HID keyboard, mass storage
(read/write, failed command + sense, invalid CBW → stall → reset recovery), a babbling
device (→ overflow) and an unplugged one (→ no_device). Every step records its result or
its error kind, so two backends can be compared transcript for transcript.

`models(image_dir)` builds the device set; `under_sim(image_dir)` runs the conversation
on `SimUsbBackend`, `under_pyusb(image_dir)` over `PyusbUsbBackend` against the same models
in emulated usbfs (call it through
`umockdev_usb.run_under_umockdev`).

Whole drivers: `run_usb_driver(name, backend, polls)` runs ``drivers/<name>`` (its
manifest, ``build/wasm/<name>.wasm``) under the kernel and returns its readings;
`driver_under_pyusb(name, polls)` does so over pyusb in emulated usbfs.
"""

from __future__ import annotations

import struct
from pathlib import Path

from wasi_hw import HwError
from wasi_hw.host.usbdevices import (
    BULK,
    Configuration,
    DeviceDescriptor,
    EchoDevice,
    Endpoint,
    HidKeyboard,
    Interface,
    MassStorage,
    UsbDeviceModel,
)

__all__ = [
    "models",
    "conversation",
    "under_sim",
    "under_pyusb",
    "Babbler",
    "TIMEOUT_MS",
    "DRIVERS",
    "driver_models",
    "run_usb_driver",
    "driver_under_pyusb",
]

TIMEOUT_MS = 60  # short: libusb busy-polls pending INs under umockdev


class Babbler(UsbDeviceModel):
    """Sends one byte more than asked on bulk IN 0x81 (babble → ``overflow``)."""

    def __init__(self):
        super().__init__(DeviceDescriptor(0x1209, 0x00F1), [Configuration(1, (Interface(
            0, 0xFF, 0, 0, (Endpoint(0x81, BULK, 64),)),))])

    def in_(self, endpoint, max_len):
        return b"\xAA" * (max_len + 1)


def models(image_dir: str) -> list:
    img = Path(image_dir) / "disk.img"
    MassStorage.create_image(img, 32)
    img.write_bytes(b"".join(struct.pack(">I", i) * 128 for i in range(32)))
    return [EchoDevice(), HidKeyboard("Hi!"), MassStorage(img), Babbler()]


def _step(log: list, name: str, fn, *args):
    try:
        value = fn(*args)
    except HwError as err:
        log.append([name, "error", err.kind])
        return None
    log.append([name, "ok", value.hex() if isinstance(value, bytes) else value])
    return value


def _bot(b, h, log, name, cb, *, tag, data_in=0, data_out=b""):
    length = data_in or len(data_out)
    cbw = struct.pack("<IIIBBB", 0x43425355, tag, length, 0x80 if data_in else 0, 0, len(cb)) \
        + cb.ljust(16, b"\0")
    _step(log, f"{name}: CBW", b.bulk_out, h, 0x01, cbw, TIMEOUT_MS)
    if data_in:
        _step(log, f"{name}: data in", b.bulk_in, h, 0x82, data_in, TIMEOUT_MS)
    elif data_out:
        _step(log, f"{name}: data out", b.bulk_out, h, 0x01, data_out, TIMEOUT_MS)
    _step(log, f"{name}: CSW", b.bulk_in, h, 0x82, 13, TIMEOUT_MS)


def conversation(b, unplug) -> list:
    """``unplug(index)`` pulls device ``index`` (in port order) out of the bus."""
    log: list = []
    devs = sorted(b.devices(), key=lambda d: d.port_path)
    log.append(["devices", [[d.vendor_id, d.product_id, d.serial, d.bus_number, d.address,
                             list(d.port_path), d.speed, d.device_class, d.num_configurations,
                             d.device_descriptor.hex(), [c.hex() for c in d.config_descriptors]]
                            for d in devs]])
    echo, kbd, msc, babbler = (b.open(d.id) for d in devs)

    # echo: strings, configuration, interfaces
    for index, lang in ((1, 0), (2, 0x0409), (3, 0), (9, 0)):
        _step(log, f"string {index}", b.string_descriptor, echo, index, lang)
    _step(log, "get configuration", b.get_configuration, echo)
    _step(log, "claim 5", b.claim_interface, echo, 5)
    _step(log, "claim 0", b.claim_interface, echo, 0)
    _step(log, "alt 0/1", b.set_alt_setting, echo, 0, 1)
    _step(log, "alt 0/0", b.set_alt_setting, echo, 0, 0)
    _step(log, "detach kernel driver", b.detach_kernel_driver, echo, 0)
    # control
    _step(log, "SET_BUFFER", b.control_out, echo, 0x40, 0x01, 0, 0, b"wasi-usb", TIMEOUT_MS)
    _step(log, "GET_BUFFER", b.control_in, echo, 0xC0, 0x02, 0, 0, 64, TIMEOUT_MS)
    _step(log, "GET_BUFFER short", b.control_in, echo, 0xC0, 0x02, 0, 0, 4, TIMEOUT_MS)
    _step(log, "STALL in", b.control_in, echo, 0xC0, 0x03, 0, 0, 4, TIMEOUT_MS)
    _step(log, "STALL out", b.control_out, echo, 0x40, 0x03, 0, 0, b"", TIMEOUT_MS)
    _step(log, "after stall", b.control_in, echo, 0xC0, 0x02, 0, 0, 64, TIMEOUT_MS)
    _step(log, "GET_STATUS", b.control_in, echo, 0x80, 0, 0, 0, 2, TIMEOUT_MS)
    # bulk
    _step(log, "bulk in, nothing queued", b.bulk_in, echo, 0x81, 64, TIMEOUT_MS)
    _step(log, "bulk out", b.bulk_out, echo, 0x01, b"ping", TIMEOUT_MS)
    _step(log, "bulk in", b.bulk_in, echo, 0x81, 64, TIMEOUT_MS)
    _step(log, "bulk out 1000", b.bulk_out, echo, 0x01, bytes(range(250)) * 4, TIMEOUT_MS)
    _step(log, "bulk in 600", b.bulk_in, echo, 0x81, 600, TIMEOUT_MS)
    _step(log, "bulk in rest", b.bulk_in, echo, 0x81, 600, TIMEOUT_MS)
    _step(log, "bulk zero-length out", b.bulk_out, echo, 0x01, b"", TIMEOUT_MS)
    # interrupt
    for i in range(3):
        _step(log, f"interrupt {i}", b.interrupt_in, echo, 0x82, 8, TIMEOUT_MS)
    # halt
    _step(log, "SET_FEATURE(HALT)", b.control_out, echo, 0x02, 0x03, 0, 0x81, b"", TIMEOUT_MS)
    _step(log, "bulk in halted", b.bulk_in, echo, 0x81, 8, TIMEOUT_MS)
    _step(log, "clear halt", b.clear_halt, echo, 0x81)
    _step(log, "bulk out after clear", b.bulk_out, echo, 0x01, b"ok", TIMEOUT_MS)
    _step(log, "bulk in after clear", b.bulk_in, echo, 0x81, 8, TIMEOUT_MS)
    # reset and configuration
    _step(log, "reset", b.reset_device, echo)
    _step(log, "configuration after reset", b.get_configuration, echo)
    _step(log, "interrupt after reset", b.interrupt_in, echo, 0x82, 8, TIMEOUT_MS)
    _step(log, "set configuration while claimed", b.set_configuration, echo, 1)
    _step(log, "release 0", b.release_interface, echo, 0)
    _step(log, "set configuration 0", b.set_configuration, echo, 0)
    _step(log, "configuration", b.get_configuration, echo)
    _step(log, "set configuration 1", b.set_configuration, echo, 1)
    _step(log, "configuration", b.get_configuration, echo)
    # two handles on one device: one claimer per interface
    second = b.open(devs[0].id)
    _step(log, "claim 0", b.claim_interface, echo, 0)
    _step(log, "second handle claims 0", b.claim_interface, second, 0)
    _step(log, "second handle control", b.control_in, second, 0xC0, 0x02, 0, 0, 64, TIMEOUT_MS)
    _step(log, "release 0", b.release_interface, echo, 0)
    _step(log, "second handle claims 0", b.claim_interface, second, 0)
    _step(log, "second handle echo out", b.bulk_out, second, 0x01, b"two", TIMEOUT_MS)
    _step(log, "second handle echo in", b.bulk_in, second, 0x81, 8, TIMEOUT_MS)
    b.close(second)
    _step(log, "claim 0 after the other closed", b.claim_interface, echo, 0)

    # keyboard
    _step(log, "kbd claim", b.claim_interface, kbd, 0)
    _step(log, "report descriptor", b.control_in, kbd, 0x81, 6, 0x2200, 0, 255, TIMEOUT_MS)
    _step(log, "SET_IDLE 0", b.control_out, kbd, 0x21, 0x0A, 0, 0, b"", TIMEOUT_MS)
    _step(log, "GET_PROTOCOL", b.control_in, kbd, 0xA1, 0x03, 0, 0, 1, TIMEOUT_MS)
    _step(log, "SET_PROTOCOL boot", b.control_out, kbd, 0x21, 0x0B, 0, 0, b"", TIMEOUT_MS)
    for i in range(7):
        _step(log, f"report {i}", b.interrupt_in, kbd, 0x81, 8, TIMEOUT_MS)
    _step(log, "GET_REPORT", b.control_in, kbd, 0xA1, 0x01, 0x0100, 0, 8, TIMEOUT_MS)

    # mass storage
    _step(log, "msc claim", b.claim_interface, msc, 0)
    _step(log, "GET MAX LUN", b.control_in, msc, 0xA1, 0xFE, 0, 0, 1, TIMEOUT_MS)
    _bot(b, msc, log, "INQUIRY", bytes((0x12, 0, 0, 0, 36, 0)), tag=1, data_in=36)
    _bot(b, msc, log, "READ CAPACITY", bytes((0x25,) + (0,) * 9), tag=2, data_in=8)
    _bot(b, msc, log, "WRITE(10)", bytes((0x2A, 0, 0, 0, 0, 5, 0, 0, 2, 0)), tag=3,
         data_out=b"\xC3" * 1024)
    _bot(b, msc, log, "READ(10)", bytes((0x28, 0, 0, 0, 0, 4, 0, 0, 3, 0)), tag=4, data_in=1536)
    _bot(b, msc, log, "unsupported", bytes((0xA0,) + (0,) * 11), tag=5, data_in=8)
    _bot(b, msc, log, "REQUEST SENSE", bytes((0x03, 0, 0, 0, 18, 0)), tag=6, data_in=18)
    _step(log, "invalid CBW", b.bulk_out, msc, 0x01, b"USBC" + bytes(20), TIMEOUT_MS)
    _step(log, "CSW after invalid CBW", b.bulk_in, msc, 0x82, 13, TIMEOUT_MS)
    _step(log, "clear halt without reset", b.clear_halt, msc, 0x82)
    _step(log, "still halted", b.bulk_in, msc, 0x82, 13, TIMEOUT_MS)
    _step(log, "BOMS reset", b.control_out, msc, 0x21, 0xFF, 0, 0, b"", TIMEOUT_MS)
    _step(log, "clear halt in", b.clear_halt, msc, 0x82)
    _step(log, "clear halt out", b.clear_halt, msc, 0x01)
    _bot(b, msc, log, "TEST UNIT READY", bytes(6), tag=7)

    # babble, then a device that goes away
    _step(log, "babbler claim", b.claim_interface, babbler, 0)
    _step(log, "babble", b.bulk_in, babbler, 0x81, 8, TIMEOUT_MS)
    unplug(0)
    _step(log, "unplugged: bulk out", b.bulk_out, echo, 0x01, b"x", TIMEOUT_MS)
    _step(log, "unplugged: control", b.control_in, echo, 0xC0, 0x02, 0, 0, 8, TIMEOUT_MS)
    # (not compared: libusb learns of unplugs from kernel uevents umockdev does not send)

    for h in (echo, kbd, msc, babbler):
        b.close(h)
    return log


def under_sim(image_dir: str) -> list:
    from wasi_hw.host import SimUsbBackend

    backend = SimUsbBackend(models(image_dir))
    ids = [d.id for d in sorted(backend.devices(), key=lambda d: d.port_path)]
    return conversation(backend, lambda i: backend.detach(ids[i]))


def under_pyusb(image_dir: str) -> list:
    from wasi_hw.host import PyusbUsbBackend

    from umockdev_usb import EmulatedUsb

    devices = models(image_dir)
    with EmulatedUsb(devices) as emu:
        return conversation(PyusbUsbBackend(), emu.unplug)


REPO = Path(__file__).resolve().parents[2]
DRIVERS = ("usb-echo", "hid-keyboard", "msc")


def driver_models(name: str) -> list:
    """The device a USB driver under ``drivers/`` is written for."""
    return {"usb-echo": lambda: [EchoDevice()],
            "hid-keyboard": lambda: [HidKeyboard("Hi!")],
            "msc": lambda: [MassStorage(blocks=16)]}[name]()


def run_usb_driver(name: str, backend, polls: int) -> dict:
    from wasi_hw.kernel import Backends, load_manifest, run_driver

    manifest = load_manifest(REPO / "drivers" / name / "manifest.toml")
    result = run_driver(manifest, Backends(usb=backend), polls=polls)
    return {"state": result.state, "readings": _jsonable(result.readings),
            "errors": result.errors, "faults": result.faults}


def _jsonable(value):
    """Readings as JSON values (CBOR byte strings become ``{"hex": ...}``)."""
    if isinstance(value, bytes | bytearray):
        return {"hex": bytes(value).hex()}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def driver_under_pyusb(name: str, polls: int) -> dict:
    from wasi_hw.host import PyusbUsbBackend

    from umockdev_usb import EmulatedUsb

    with EmulatedUsb(driver_models(name)):
        return run_usb_driver(name, PyusbUsbBackend(), polls)
