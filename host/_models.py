"""The device-model registry: simulated I2C and USB device models by name.

`i2c_models()` / `usb_models()` map each model's lower-case class name to its class (the
models of `wasi_hw.host.devices` / `wasi_hw.host.usbdevices`). `MODEL_ALIASES` holds the
other names people use for them (``lcd``, ``msc``, ``echo`` …) — the one alias table.
`find_model(kind, name)` resolves a name or alias to its class, or raises `UserError`
naming the models available. Pure: looking a model up builds nothing.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Literal

from wasi_hw import UserError

__all__ = ["MODEL_ALIASES", "i2c_models", "usb_models", "find_model", "model_key"]

MODEL_ALIASES = MappingProxyType({
    "lcd": "pcf8574hd44780", "hd44780": "pcf8574hd44780", "pcf8574": "pcf8574hd44780",
    "msc": "massstorage", "mass_storage": "massstorage", "keyboard": "hidkeyboard",
    "echo": "echodevice",
})


def _subclasses(module: object, names: list[str], base: type) -> dict[str, type]:
    out = {}
    for name in names:
        obj = getattr(module, name)
        if isinstance(obj, type) and issubclass(obj, base) and obj is not base:
            out[name.lower()] = obj
    return out


def i2c_models() -> dict[str, type]:
    """Simulated I2C device models by lower-case class name."""
    from . import devices

    models = _subclasses(devices, devices.__all__, devices.I2cDevice)
    models.pop("registerdevice", None)      # a base for models, not a model
    return models


def usb_models() -> dict[str, type]:
    """Simulated USB device models by lower-case class name."""
    from . import usbdevices

    return _subclasses(usbdevices, usbdevices.__all__, usbdevices.UsbDeviceModel)


def model_key(name: str) -> str:
    """The registry key a model name or alias stands for (lower-cased, alias resolved)."""
    key = name.lower()
    return MODEL_ALIASES.get(key, key)


def find_model(kind: Literal["i2c", "usb"], name: str) -> type:
    """The model class ``name`` (a class name in any case, or an alias) stands for."""
    models = i2c_models() if kind == "i2c" else usb_models()
    key = model_key(name)
    if key not in models:
        raise UserError(f"no simulated {kind.upper()} device {name!r} (available: "
                        f"{', '.join(sorted(models)) or 'none'})")
    return models[key]
