//! TI TMP102 digital temperature sensor, driven by the **unchanged** `tmp1x2` crate from
//! crates.io over wasi-hw's [`I2cBus`](wasi_hw_sdk::i2c::I2cBus) — proof that embedded-hal 1.0
//! driver crates run on wasi-hw as published.
//!
//! - [`configuration`]: address pins and the config keys (normal 12-bit / extended 13-bit);
//! - [`driver`] (wasm): reports `{"temperature_c"}` each poll.
//!
//! On the wire (continuous conversion, the power-on mode): `init` writes the configuration
//! register when extended mode is asked for — `[0x01, 0x60, 0xB0]` (pointer 0x01, EM bit
//! set) — and each reading is one write_read: pointer `[0x00]`, then 2 bytes of the
//! temperature register (12-bit, or 13-bit with EM = bit 0 of the second byte; two's
//! complement, 0.0625 °C per LSB). The tests replay datasheet table 8-2/8-3 values through
//! the crate to check its conversion.
#![cfg_attr(target_arch = "wasm32", no_std)]

pub mod configuration;
pub mod driver;

pub use tmp1x2;
