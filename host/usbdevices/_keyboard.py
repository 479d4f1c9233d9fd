"""`HidKeyboard`: a HID boot-protocol keyboard (1209:0002) typing a scripted sequence.

Full speed, configuration 1, interface 0 class 3/1/1 (HID, boot, keyboard) with a HID
1.11 descriptor and EP 0x81 interrupt IN (8 bytes, interval 10 ms).

Reports are the 8-byte boot format: modifiers, reserved 0, six key usages. The script
(`keys=`, text typed as press + release per character, or `reports=`, raw 8-byte
reports) is played one report per interrupt IN. When the script is exhausted the endpoint
NAKs while the idle rate is 0; with a non-zero idle rate (default 500 ms, per HID 1.11
§7.2.4) the last report repeats once each idle period has passed.

Class requests on interface 0: GET_REPORT (input: the last report; output: the LED
byte), SET_REPORT (output: LED byte), GET_IDLE / SET_IDLE (duration in 4 ms units,
wValue high byte), GET_PROTOCOL / SET_PROTOCOL (0 boot, 1 report; the report format is
the boot format either way). Idle periods are timed on the model's ``clock_ns``.
Standard GET_DESCRIPTOR to the interface returns the HID
descriptor (0x21) and the report descriptor (0x22). Anything else STALLs.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable

from ._model import (
    INTERRUPT,
    Configuration,
    DeviceDescriptor,
    Endpoint,
    Interface,
    Setup,
    Stall,
    UsbDeviceModel,
)

__all__ = ["HidKeyboard", "BOOT_KEYBOARD_REPORT_DESCRIPTOR", "text_to_reports"]

# HID 1.11 Appendix B.1: the boot keyboard report descriptor.
BOOT_KEYBOARD_REPORT_DESCRIPTOR = bytes.fromhex(
    "05010906a101"            # Usage Page (Generic Desktop), Usage (Keyboard), Collection
    "050719e029e71500250175019508"  # modifiers: 8 x 1 bit
    "8102"                    # Input (Data, Var, Abs)
    "950175088101"            # reserved byte (Constant)
    "9505750105081901290591029501750391 01"  # LEDs: 5 x 1 bit output + 3 bit padding
    "95067508150025650507190029658100"  # keys: 6 x 8 bit array
    "c0"
)

GET_REPORT, GET_IDLE, GET_PROTOCOL = 0x01, 0x02, 0x03
SET_REPORT, SET_IDLE, SET_PROTOCOL = 0x09, 0x0A, 0x0B
_LEFT_SHIFT = 0x02

_PLAIN = {"\n": 0x28, "\t": 0x2B, " ": 0x2C, "-": 0x2D, "=": 0x2E, "[": 0x2F, "]": 0x30,
          "\\": 0x31, ";": 0x33, "'": 0x34, "`": 0x35, ",": 0x36, ".": 0x37, "/": 0x38}
_SHIFTED = {"_": 0x2D, "+": 0x2E, "{": 0x2F, "}": 0x30, "|": 0x31, ":": 0x33, '"': 0x34,
            "~": 0x35, "<": 0x36, ">": 0x37, "?": 0x38}
for _i, _c in enumerate("1234567890"):
    _PLAIN[_c] = 0x1E + _i
for _i, _c in enumerate("!@#$%^&*()"):
    _SHIFTED[_c] = 0x1E + _i
for _i in range(26):
    _PLAIN[chr(ord("a") + _i)] = 0x04 + _i
    _SHIFTED[chr(ord("A") + _i)] = 0x04 + _i


def text_to_reports(text: str) -> list[bytes]:
    """Boot reports typing ``text`` (US layout): a press and a release per character."""
    reports = []
    for ch in text:
        if ch in _PLAIN:
            mod, usage = 0, _PLAIN[ch]
        elif ch in _SHIFTED:
            mod, usage = _LEFT_SHIFT, _SHIFTED[ch]
        else:
            raise ValueError(f"no US-layout key for {ch!r}")
        reports.append(bytes((mod, 0, usage, 0, 0, 0, 0, 0)))
        reports.append(bytes(8))
    return reports


class HidKeyboard(UsbDeviceModel):
    """The boot keyboard; see the module docstring for its behaviour."""

    VENDOR_ID, PRODUCT_ID = 0x1209, 0x0002

    def __init__(self, keys: str = "", *, reports: Iterable[bytes] | None = None,
                 serial: str = "KBD0001", clock_ns: Callable[[], int] | None = None) -> None:
        rd = BOOT_KEYBOARD_REPORT_DESCRIPTOR
        self.hid_descriptor = struct.pack("<BBHBBBH", 9, 0x21, 0x0111, 0, 1, 0x22, len(rd))
        iface = Interface(0, 3, 1, 1, (Endpoint(0x81, INTERRUPT, 8, interval=10),),
                          extra=self.hid_descriptor)
        super().__init__(
            DeviceDescriptor(self.VENDOR_ID, self.PRODUCT_ID, manufacturer=1, product=2,
                             serial_number=3),
            [Configuration(1, (iface,), attributes=0xA0)],
            {1: "wasi-hw", 2: "Boot Keyboard", 3: serial},
        )
        script = list(reports) if reports is not None else text_to_reports(keys)
        for r in script:
            if len(r) != 8:
                raise ValueError("boot keyboard reports are 8 bytes")
        self._script = [bytes(r) for r in script]
        if clock_ns is not None:
            self.clock_ns = clock_ns
        self._init_state()

    def _init_state(self) -> None:
        self._pos = 0
        self.idle = 125  # 4 ms units: 500 ms
        self.protocol = 1  # report protocol after reset (HID 1.11 §7.2.6)
        self.leds = 0
        self._last = bytes(8)
        self._last_ns: int | None = None

    @property
    def remaining(self) -> int:
        """Scripted reports not yet sent."""
        return len(self._script) - self._pos

    def control(self, setup: Setup, data_out: bytes) -> bytes:
        if setup.recipient != "interface" or setup.index != 0:
            raise Stall()
        if setup.kind == "standard" and setup.request == 6 and setup.is_in:
            if setup.value >> 8 == 0x22:
                return BOOT_KEYBOARD_REPORT_DESCRIPTOR
            if setup.value >> 8 == 0x21:
                return self.hid_descriptor
            raise Stall()
        if setup.kind != "class":
            raise Stall()
        rtype = setup.value >> 8
        if setup.is_in:
            if setup.request == GET_REPORT and rtype == 1:
                return self._last
            if setup.request == GET_REPORT and rtype == 2:
                return bytes((self.leds,))
            if setup.request == GET_IDLE:
                return bytes((self.idle,))
            if setup.request == GET_PROTOCOL:
                return bytes((self.protocol,))
            raise Stall()
        if setup.request == SET_REPORT and rtype == 2 and len(data_out) == 1:
            self.leds = data_out[0]
            return b""
        if setup.request == SET_IDLE:
            self.idle = setup.value >> 8
            return b""
        if setup.request == SET_PROTOCOL and setup.value in (0, 1):
            self.protocol = setup.value
            return b""
        raise Stall()

    def in_(self, endpoint: int, max_len: int) -> bytes | None:
        now = self.clock_ns()
        if self._pos < len(self._script):
            report = self._script[self._pos]
            self._pos += 1
        elif (
            self.idle and self._last_ns is not None and now - self._last_ns >= self.idle * 4_000_000
        ):
            report = self._last
        else:
            return None
        self._last, self._last_ns = report, now
        return report[:max_len]

    def reset(self) -> None:
        pos = self._pos
        self._init_state()
        self._pos = pos  # a reset does not un-type keys already sent
