"""wasi-hw: a WASI hardware-interface host.

Rust drivers compiled to WebAssembly run sandboxed and reach I2C and USB hardware only
through the calls that ``witx/wasi_i2c.witx`` and ``witx/wasi_usb.witx`` define.
Subpackages: `wasi_hw.witx` (spec toolchain), `wasi_hw.host` (spec semantics and
backends), `wasi_hw.kernel` (runs drivers).
"""

from ._errors import GuestFault, HwError, UserError

__all__ = ["HwError", "GuestFault", "UserError", "__version__"]

__version__ = "0.1.0"
