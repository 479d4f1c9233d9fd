"""``wasi-hw new driver NAME``: a new driver crate that builds and passes its tests as created.

`new_driver(parent, name)` writes ``parent/NAME/``:

- ``Cargo.toml`` — package ``wasi-hw-driver-NAME``, ``cdylib`` + ``rlib``, the SDK by path
  (``sdk-rust`` of this wasi-hw checkout; relative when the crate sits inside it), the
  release profile wasi-hw's drivers use; outside a Cargo workspace its own ``[workspace]``.
- ``.cargo/config.toml`` — `wasi_hw.apps.cargo_config`: the build settings for plain cargo.
- ``manifest.toml`` — the grants the driver needs (one I2C address, one read-only register).
- ``src/lib.rs`` — the chip code generic over embedded-hal's ``I2c`` with a native unit test
  on ``embedded_hal_mock`` (every expected transfer must happen), and the wasm glue.
- ``tests/sim_NAME.py`` — a simulated chip (`RegisterMapDevice`), and
  ``tests/test_NAME.py`` — pytest tests through the ``wasi_hw`` plugin: the driver under the
  real kernel on that chip, and against a script of expected transactions.

``--usb`` makes a USB driver instead: it opens the device by config ``vid``/``pid``, claims
interface 0 and reports each bulk IN transfer from endpoint 0x81 (its pure part unit-tested
natively; the simulated device is a `UsbDeviceModel`). An existing directory is never
overwritten.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from wasi_hw import UserError

__all__ = ["new_driver", "sdk_path"]

_NAME = re.compile(r"[a-z][a-z0-9-]{0,40}")


def sdk_path() -> Path | None:
    """This checkout's ``sdk-rust`` (None for an installation without the sources)."""
    sdk = Path(__file__).resolve().parents[1] / "sdk-rust"
    return sdk if (sdk / "Cargo.toml").is_file() else None


def _in_workspace(crate: Path) -> Path | None:
    """The Cargo workspace root above ``crate`` whose members glob covers it, if any."""
    import tomllib

    for d in crate.parents:
        manifest = d / "Cargo.toml"
        if manifest.is_file():
            try:
                ws = tomllib.loads(manifest.read_text()).get("workspace")
            except (tomllib.TOMLDecodeError, OSError):
                return None
            if ws is None:
                continue
            rel = crate.relative_to(d).as_posix()
            members = ws.get("members", [])
            if any(Path(rel).match(m) for m in members):
                return d
            return None
    return None


def new_driver(parent: Path | str, name: str, *, bus: str = "i2c") -> Path:
    """Create ``parent/name`` (see the module docstring); returns its path."""
    if bus not in ("i2c", "usb"):
        raise UserError(f"wasi-hw new driver: no template for {bus!r} (--i2c or --usb)")
    if not _NAME.fullmatch(name):
        raise UserError(f"driver name {name!r}: use lower-case letters, digits and '-', "
                        "starting with a letter (e.g. mcp9808)")
    crate = Path(parent).resolve() / name
    if crate.exists():
        raise UserError(f"{crate} already exists: choose another name or directory")
    sdk = sdk_path()
    ws_root = _in_workspace(crate)
    if sdk is None:
        sdk_dep = 'wasi-hw-sdk = "0.1"'
    elif ws_root is not None and sdk.is_relative_to(ws_root):
        sdk_dep = f'wasi-hw-sdk = {{ path = "{os.path.relpath(sdk, crate)}" }}'
    else:
        sdk_dep = f'wasi-hw-sdk = {{ path = "{sdk}" }}'
    ident = name.replace("-", "_")
    typename = "".join(p.capitalize() for p in name.split("-"))
    # inside a workspace its root builds into <root>/build/wasm; standalone into the crate
    wasm = (os.path.relpath(ws_root / "build" / "wasm" / f"{name}.wasm", crate)
            if ws_root is not None else f"build/wasm/{name}.wasm")
    subs = {"NAME": name, "IDENT": ident, "TYPE": typename, "SDK_DEP": sdk_dep, "WASM": wasm,
            "WORKSPACE": "" if ws_root is not None else _OWN_WORKSPACE}
    from ._build import cargo_config, select_toolchain

    usb = bus == "usb"
    files = {
        "Cargo.toml": _CARGO,
        "manifest.toml": _USB_MANIFEST if usb else _MANIFEST,
        "src/lib.rs": _USB_LIB if usb else _LIB,
        "tests/sim_IDENT.py": _USB_SIM if usb else _SIM,
        "tests/test_IDENT.py": _USB_TEST if usb else _TEST,
        ".gitignore": "/target\n/build\n__pycache__/\n",
    }
    try:
        config = cargo_config(select_toolchain())
    except UserError:
        config = None      # no toolchain here yet: `wasi-hw build` writes nothing either
    try:
        for rel, text in files.items():
            path = crate / rel.replace("IDENT", ident)
            path.parent.mkdir(parents=True, exist_ok=True)
            for key, value in subs.items():
                text = text.replace(f"@{key}@", value)
            path.write_text(text)
        if config is not None:
            (crate / ".cargo").mkdir()
            (crate / ".cargo" / "config.toml").write_text(config)
    except OSError as err:
        raise UserError(f"cannot create {crate}: {err.strerror or err}") from None
    return crate


_OWN_WORKSPACE = """
# A workspace of its own: not part of whatever Cargo workspace holds this directory.
[workspace]

# The profile wasi-hw builds its own drivers with: fast, small, no unwinding.
[profile.release]
opt-level = 3
lto = true
codegen-units = 1
panic = "abort"
debug = false
strip = true

[profile.dev]
panic = "abort"
"""

_CARGO = """[package]
name = "wasi-hw-driver-@NAME@"
description = "@NAME@: a wasi-hw driver"
version = "0.1.0"
edition = "2021"
publish = false

[lib]
crate-type = ["cdylib", "rlib"]   # cdylib: the .wasm module; rlib: native unit tests
doctest = false

[dependencies]
@SDK_DEP@
embedded-hal = "1.0"

[dev-dependencies]
embedded-hal-mock = { version = "0.11", default-features = false, features = ["eh1"] }
@WORKSPACE@"""

_MANIFEST = """# @NAME@: what the driver may touch, checked before it runs (`wasi-hw run manifest.toml`).
name = "@NAME@"
wasm = "@WASM@"
poll_interval_ms = 1000

[config]                 # what the driver reads with wasi_driver.config_get
bus = "i2c-1"
address = "0x48"

[[i2c]]
bus = "i2c-1"
addresses = [0x48]

[[i2c.registers]]        # the value register, read-only: a 2-byte read from 0x00
first = 0x00             # covers 0x00..0x01 (the guard assumes auto-increment)
last = 0x01
access = "r"

[limits]
memory_pages = 4         # `wasi-hw build` drivers need 2: a 64 KiB stack + data
open_handles = 1
max_transfer = 64
deadline_ms = 100
report_bytes = 256
"""

_LIB = """//! @NAME@: a wasi-hw driver for an I2C chip with a 16-bit value register at 0x00.
//!
//! [`Sensor`] is the chip code, generic over embedded-hal's `I2c` (tested natively against
//! `embedded_hal_mock` scripts); [`@TYPE@Driver`] wires it to the wasi-hw SDK: config
//! `bus` / `address`, one `{"raw": u16}` report per poll.
#![cfg_attr(target_arch = "wasm32", no_std)]

use embedded_hal::i2c::I2c;
use wasi_hw_sdk::i2c::{self, I2cBus};
use wasi_hw_sdk::report::Report;
use wasi_hw_sdk::Driver;

/// The register holding a measurement: 16 bits, MSB first.
pub const VALUE_REGISTER: u8 = 0x00;

/// The chip on any embedded-hal 1.0 I2C bus.
pub struct Sensor<I> {
    i2c: I,
    address: u8,
}

impl<I: I2c> Sensor<I> {
    pub fn new(i2c: I, address: u8) -> Self {
        Sensor { i2c, address }
    }

    /// One measurement: write the register pointer, read two bytes (one transaction).
    pub fn read_raw(&mut self) -> Result<u16, I::Error> {
        let mut buf = [0u8; 2];
        self.i2c.write_read(self.address, &[VALUE_REGISTER], &mut buf)?;
        Ok(u16::from_be_bytes(buf))
    }
}

/// The wasm driver: `init` once, `poll` every interval.
pub struct @TYPE@Driver {
    sensor: Sensor<I2cBus>,
}

impl Driver for @TYPE@Driver {
    // `wasi_hw_sdk::Error` gathers I2C, configuration and report failures, so `?` works
    // on all of them; it is logged when init/poll fail.
    type Error = wasi_hw_sdk::Error;

    fn init() -> Result<Self, Self::Error> {
        let address = i2c::configured_address(0x48)?;
        let bus = i2c::open_configured("i2c-1")?;
        Ok(@TYPE@Driver { sensor: Sensor::new(bus, address) })
    }

    fn poll(&mut self) -> Result<(), Self::Error> {
        let raw = self.sensor.read_raw()?;
        Report::new().u32("raw", u32::from(raw)).send()?;
        Ok(())
    }
}

wasi_hw_sdk::export_driver!(@TYPE@Driver);

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal_mock::eh1::i2c::{Mock, Transaction};

    #[test]
    fn reads_the_value_register_msb_first() {
        let expected = [Transaction::write_read(0x48, vec![VALUE_REGISTER], vec![0x12, 0x34])];
        let mut bus = Mock::new(&expected);
        let mut sensor = Sensor::new(bus.clone(), 0x48);
        assert_eq!(sensor.read_raw().unwrap(), 0x1234);
        bus.done(); // every expected transfer happened
    }
}
"""

_SIM = '''"""A simulated @NAME@ for the tests: a register-map chip (wasi_hw.host.devices)."""

from wasi_hw.host.devices import Register, RegisterMapDevice


class Sim@TYPE@(RegisterMapDevice):
    """@NAME@: register 0x00 holds ``value`` (16 bits, MSB first, read-only)."""

    registers = {0x00: Register("value", width=2, access="r")}

    def __init__(self, value: int = 0x1234) -> None:
        super().__init__()
        self.value_now = value

    def read_value(self) -> int:
        return self.value_now
'''

_TEST = '''"""@NAME@ under the wasi-hw kernel (the `wasi_hw` pytest fixture, installed with wasi-hw)."""

from pathlib import Path

from wasi_hw.apps.testing import i2c

from sim_@IDENT@ import Sim@TYPE@

CRATE = Path(__file__).resolve().parents[1]


def test_reports_the_value_register(wasi_hw):
    wasi_hw.driver(CRATE)                          # builds the crate, uses manifest.toml
    chip = wasi_hw.sim_i2c(Sim@TYPE@(value=0x0ABC), 0x48)
    run = wasi_hw.run(polls=3)
    assert [r["raw"] for r in run.readings] == [0x0ABC] * 3
    chip.value_now = 0x0123
    assert wasi_hw.run(polls=1).readings == [{"raw": 0x0123}]
    assert run.audit == []                         # nothing was denied
    assert run.i2c()[0]["ops"] == [{"write": bytes([0x00])}, {"read": 2}]


def test_one_write_read_per_poll(wasi_hw):
    wasi_hw.driver(CRATE)
    wasi_hw.expect_i2c([i2c.write_read(0x48, [0x00], [0x01, 0x02]),
                        i2c.write_read(0x48, [0x00], [0x03, 0x04])])
    run = wasi_hw.run(polls=2)                     # fails if the traffic differs
    assert [r["raw"] for r in run.readings] == [0x0102, 0x0304]
'''

_USB_MANIFEST = """# @NAME@: what the driver may touch, checked before it runs (`wasi-hw run manifest.toml`).
name = "@NAME@"
wasm = "@WASM@"
poll_interval_ms = 1000

[config]                 # what the driver reads with wasi_driver.config_get
vid = "0x1209"
pid = "0x0010"

[[usb]]
vid = 0x1209
pid = 0x0010
interfaces = [0]
endpoints = [0x81]
operations = ["set_configuration"]

[limits]
memory_pages = 4         # `wasi-hw build` drivers need 2: a 64 KiB stack + data
open_handles = 2
max_transfer = 64
deadline_ms = 500
report_bytes = 256
"""

_USB_LIB = """//! @NAME@: a wasi-hw driver for a USB device that answers on bulk IN endpoint 0x81.
//!
//! [`summarise`] is the pure part (tested natively); [`@TYPE@Driver`] opens the device named
//! by config `vid` / `pid`, selects configuration 1, claims interface 0 and reports each
//! transfer as `{"bytes": n, "first": byte}`.
#![cfg_attr(target_arch = "wasm32", no_std)]

use wasi_hw_sdk::config::{self, ConfigError};
use wasi_hw_sdk::report::Report;
use wasi_hw_sdk::usb::{self, DeviceHandle};
use wasi_hw_sdk::{Driver, DriverError};

/// The endpoint the device answers on.
pub const ENDPOINT_IN: u8 = 0x81;

/// One transfer's length and its first byte (0 when empty).
pub fn summarise(data: &[u8]) -> (u32, u32) {
    (data.len() as u32, u32::from(data.first().copied().unwrap_or(0)))
}

/// Why `init`/`poll` failed; logged with `{:?}`.
#[derive(Debug)]
pub enum AppError {
    Usb(usb::Error),
    Config(ConfigError),
    Report(DriverError),
    NoDevice { vid: u16, pid: u16 },
}

impl From<usb::Error> for AppError {
    fn from(e: usb::Error) -> Self {
        AppError::Usb(e)
    }
}

impl From<ConfigError> for AppError {
    fn from(e: ConfigError) -> Self {
        AppError::Config(e)
    }
}

impl From<DriverError> for AppError {
    fn from(e: DriverError) -> Self {
        AppError::Report(e)
    }
}

/// The wasm driver: `init` once, `poll` every interval.
pub struct @TYPE@Driver {
    handle: DeviceHandle,
}

impl Driver for @TYPE@Driver {
    type Error = AppError;

    fn init() -> Result<Self, AppError> {
        let vid = config::u16_or("vid", 0x1209)?;
        let pid = config::u16_or("pid", 0x0010)?;
        let device = usb::find(vid, pid)?.ok_or(AppError::NoDevice { vid, pid })?;
        let handle = device.open()?;
        handle.set_active_configuration(1)?;
        handle.claim_interface(0)?;
        Ok(@TYPE@Driver { handle })
    }

    fn poll(&mut self) -> Result<(), AppError> {
        let mut buf = [0u8; 64];
        let n = self.handle.read_bulk(ENDPOINT_IN, &mut buf, 100)?;
        let (bytes, first) = summarise(&buf[..n]);
        Report::new().u32("bytes", bytes).u32("first", first).send()?;
        Ok(())
    }
}

wasi_hw_sdk::export_driver!(@TYPE@Driver);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summarises_a_transfer() {
        assert_eq!(summarise(&[7, 1, 2]), (3, 7));
        assert_eq!(summarise(&[]), (0, 0));
    }
}
"""

_USB_SIM = '''"""A simulated @NAME@ for the tests: a USB device model (wasi_hw.host.usbdevices)."""

from wasi_hw.host.usbdevices import (BULK, Configuration, DeviceDescriptor, Endpoint,
                                     Interface, UsbDeviceModel)


class Sim@TYPE@(UsbDeviceModel):
    """1209:0010: bulk IN endpoint 0x81 answers one counter byte per transfer."""

    def __init__(self, start: int = 0) -> None:
        iface = Interface(0, 0xFF, 0, 0, (Endpoint(0x81, BULK, 64),))
        super().__init__(DeviceDescriptor(0x1209, 0x0010, product=1),
                         [Configuration(1, (iface,))], {1: "@NAME@"})
        self.count = start

    def in_(self, endpoint: int, max_len: int) -> bytes | None:
        self.count = (self.count + 1) & 0xFF
        return bytes([self.count])
'''

_USB_TEST = '''"""@NAME@ under the wasi-hw kernel (the `wasi_hw` pytest fixture, installed with wasi-hw)."""

from pathlib import Path

from sim_@IDENT@ import Sim@TYPE@

CRATE = Path(__file__).resolve().parents[1]


def test_reports_each_transfer(wasi_hw):
    wasi_hw.driver(CRATE)                          # builds the crate, uses manifest.toml
    device = wasi_hw.sim_usb(Sim@TYPE@(start=5))
    run = wasi_hw.run(polls=3)
    assert run.readings == [{"bytes": 1, "first": n} for n in (6, 7, 8)]
    assert run.audit == []                         # nothing was denied
    assert device.count == 8


def test_without_the_device_init_fails(wasi_hw):
    wasi_hw.driver(CRATE)
    run = wasi_hw.run(polls=1)
    assert run.readings == [] and any("NoDevice" in msg for _, msg in run.logs)
'''
