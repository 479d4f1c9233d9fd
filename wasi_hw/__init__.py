"""wasi-hw: a WASI hardware-interface host.

Rust drivers compiled to WebAssembly run sandboxed and reach I2C and USB hardware only
through the calls that ``witx/wasi_i2c.witx`` and ``witx/wasi_usb.witx`` define.
Subpackages: `wasi_hw.witx` (spec toolchain), `wasi_hw.host` (spec semantics and
backends), `wasi_hw.kernel` (runs drivers).
"""

from pathlib import Path

from ._errors import GuestFault, HwError, UserError
from ._memory import GuestMemory, GuestRegion, copy_between

__all__ = ["HwError", "GuestFault", "UserError", "GuestMemory", "GuestRegion", "copy_between",
           "generate_bindings", "stale_bindings", "__version__"]

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
