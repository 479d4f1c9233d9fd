"""wasi-hw: a WASI hardware-interface host. This package is the core, the bottom layer.

Rust drivers compiled to WebAssembly run sandboxed and reach I2C and USB hardware only
through the calls that ``witx/wasi_i2c.witx`` and ``witx/wasi_usb.witx`` define.
The core: the error model (`HwError`, `GuestFault`, `UserError`), guest memory
(`GuestMemory`, `GuestRegion`, `copy_between`), the WITX toolchain (`wasi_hw.witx`) and the
bindings generated from the specs (`wasi_i2c_bindings`, `wasi_usb_bindings`,
`wasi_driver_bindings`; `generate_bindings` / `stale_bindings` render and check them).
The layers above, each using only the public names of those below: `wasi_hw.host` (spec
semantics, backends, device models) → `wasi_hw.kernel` (runs drivers) → `wasi_hw.fleet`
→ `wasi_hw.apps` (the command line and other applications). See docs/architecture.md.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ._errors import GuestFault, HwError, UserError

if TYPE_CHECKING:
    from ._bindings import _wasi_driver as wasi_driver_bindings
    from ._bindings import _wasi_i2c as wasi_i2c_bindings
    from ._bindings import _wasi_usb as wasi_usb_bindings
    from ._memory import GuestMemory, GuestRegion, copy_between

__all__ = [
    "HwError", "GuestFault", "UserError",
    "GuestMemory", "GuestRegion", "copy_between",
    "wasi_i2c_bindings", "wasi_usb_bindings", "wasi_driver_bindings",
    "generate_bindings", "stale_bindings",
    "__version__",
]

__version__ = "0.1.0"


def generate_bindings(root: Path) -> dict[Path, str]:
    """Every file ``wasi-hw gen`` generates from ``root/witx/``: path (relative to ``root``)
    → text (`wasi_hw._gen.generate`)."""
    from ._gen import generate

    return generate(root)


def stale_bindings(root: Path, files: dict[Path, str]) -> list[Path]:
    """The paths of ``files`` whose committed content under ``root`` differs."""
    from ._gen import stale

    return stale(root, files)


# Guest memory and the bindings load on first use: they import wasmtime, which the WITX
# toolchain (`wasi_hw.witx`) and the error model do not need.
_LAZY = {
    "GuestMemory": ("._memory", "GuestMemory"),
    "GuestRegion": ("._memory", "GuestRegion"),
    "copy_between": ("._memory", "copy_between"),
    "wasi_i2c_bindings": ("._bindings._wasi_i2c", None),
    "wasi_usb_bindings": ("._bindings._wasi_usb", None),
    "wasi_driver_bindings": ("._bindings._wasi_driver", None),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    module, attr = _LAZY[name]
    mod = importlib.import_module(module, __name__)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value
    return value
