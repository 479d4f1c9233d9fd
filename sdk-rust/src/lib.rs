//! `wasi-hw-sdk`: the guest side of wasi-hw.
//!
//! A driver is a `no_std` `cdylib` for `wasm32-unknown-unknown` that reaches hardware only
//! through the imports the WITX specs define (`witx/*.witx`). This crate wraps those imports:
//!
//! - [`raw`]: the generated bindings (`wasi-hw gen`), one module per spec — do not call them
//!   directly unless the safe layer lacks something.
//! - [`i2c`]: [`i2c::I2cBus`], implementing `embedded_hal::i2c::I2c` for 7- and 10-bit addresses.
//! - [`delay`]: [`delay::Delay`], implementing `embedded_hal::delay::DelayNs`.
//! - [`usb`]: USB devices, interfaces and transfers.
//! - [`report`]: [`report::Report`], the one way to hand a reading to the host (a CBOR map).
//! - [`share`]: [`share::Grant`], sharing a region of this driver's memory with another
//!   driver, and [`share::granted_read`]/[`share::granted_write`] for the receiving side.
//! - [`imc`]: services by name (call, offer/serve), publications (publish, subscribe).
//! - [`log`], [`config`], [`inbox`], [`time`]: the rest of `wasi_driver`.
//! - [`Driver`] and [`export_driver!`]: turn a type into the driver ABI's `init`/`poll` exports;
//!   [`Error`] gathers the SDK's failures for `?`.
//!
//! On wasm32 every call goes to the host. On any other target (native `cargo test` of a
//! driver's pure code) the crate builds and links without the host: calls that would reach it
//! return the spec's "not supported"/"other" error instead.
#![no_std]
#![cfg_attr(
    not(target_arch = "wasm32"),
    allow(unused_variables, unused_mut, dead_code, unused_imports)
)]

#[cfg(test)]
extern crate std;

/// Runs one import call on wasm32; elsewhere yields `$host` (the errno for "no host here").
macro_rules! import_call {
    ($host:expr, $call:expr) => {{
        #[cfg(target_arch = "wasm32")]
        let errno: i32 = unsafe { $call };
        #[cfg(not(target_arch = "wasm32"))]
        let errno: i32 = $host as i32;
        errno
    }};
}

pub mod raw;

pub mod config;
pub mod delay;
pub mod driver;
mod error;
pub mod i2c;
pub mod imc;
pub mod inbox;
pub mod log;
pub mod report;
pub mod share;
pub mod time;
pub mod usb;

mod fmt;
mod panic;

pub use driver::{Driver, DriverError};
pub use error::Error;
pub use fmt::FmtBuf;

/// Re-exported so drivers use the same `embedded-hal` and `minicbor` as the SDK.
pub use embedded_hal;
pub use minicbor;
