"""Virtual USB devices: one model each, served in-process (`SimUsbBackend`), over USB/IP
and through umockdev's emulated usbfs. `UsbDeviceModel` is the interface every transport
drives (see `_model`)."""

from ._echo import EchoDevice
from ._keyboard import BOOT_KEYBOARD_REPORT_DESCRIPTOR, HidKeyboard, text_to_reports
from ._mass_storage import MassStorage
from ._model import (
                     BULK,
                     INTERRUPT,
                     ISOCHRONOUS,
                     Configuration,
                     DeviceDescriptor,
                     Endpoint,
                     Interface,
                     Setup,
                     Stall,
                     UsbDeviceModel,
)

__all__ = [
    "UsbDeviceModel", "Setup", "Stall", "DeviceDescriptor", "Configuration", "Interface",
    "Endpoint", "BULK", "INTERRUPT", "ISOCHRONOUS",
    "EchoDevice", "HidKeyboard", "BOOT_KEYBOARD_REPORT_DESCRIPTOR", "text_to_reports",
    "MassStorage",
]
