"""wasi_hw.host — what implements the specs.

One host module per spec (`I2cHost`, `UsbHost`, `DriverEnv`) holds the semantics once;
backends do the I/O behind one documented contract per bus (`I2cBackend` in
`_i2c_backend.py`, `UsbBackend` in `_usb_backend.py`). Backends are the only code that
imports smbus2 or pyusb or speaks USB/IP. Recording and replaying wrap any backend at that
same boundary (`_trace.py` documents the trace format). Simulated device models are found
by name through one registry, `device_models()` (`_models.py`), which plugins extend.
"""

from __future__ import annotations

from ._clock import Clock, RealClock, VirtualClock
from ._driver_env import DriverEnv, Sharing
from ._i2c import I2cHost
from ._i2c_backend import I2cBackend, Read, Write
from ._models import (BUILTIN_MODELS, ENTRY_POINT_GROUP, DeviceModels, DeviceSpec,
                      DeviceSpecError, ModelInfo, device_models, parse_device_spec)
from ._pyusb_usb import PyusbUsbBackend
from ._replay import ReplayDivergence, ReplayI2cBackend, ReplayUsbBackend, replaying
from ._sim_i2c import SimI2cBackend
from ._sim_usb import SimUsbBackend
from ._smbus2_i2c import Smbus2I2cBackend, linux_i2c_buses
from ._trace import (RecordingI2cBackend, RecordingUsbBackend, Trace, TraceWriter, format_record,
                     read_trace, recording, traced)
from ._usb import UsbHost
from ._usb_backend import UsbBackend, UsbDeviceInfo
from ._usbip_proto import speed_name
from ._usbip_server import UsbipServer
from ._usbip_usb import UsbipUsbBackend

__all__ = [
    # clocks
    "Clock", "VirtualClock", "RealClock",
    # I2C: contract, host module, backends
    "I2cBackend", "Read", "Write", "I2cHost", "SimI2cBackend", "Smbus2I2cBackend",
    "linux_i2c_buses",
    # wasi_driver host module
    "DriverEnv", "Sharing",
    # USB: contract, host module, backends, USB/IP server
    "UsbBackend", "UsbDeviceInfo", "UsbHost", "SimUsbBackend", "PyusbUsbBackend",
    "UsbipUsbBackend", "UsbipServer", "speed_name",
    # simulated device models by name (plugins: entry points "wasi_hw.devices")
    "DeviceModels", "DeviceSpec", "DeviceSpecError", "ModelInfo", "device_models",
    "parse_device_spec", "BUILTIN_MODELS", "ENTRY_POINT_GROUP",
    # traces and replay
    "Trace", "TraceWriter", "read_trace", "format_record", "RecordingI2cBackend",
    "RecordingUsbBackend",
    "recording", "traced", "ReplayI2cBackend", "ReplayUsbBackend", "ReplayDivergence", "replaying",
]
