//! Bosch BME280 combined humidity, pressure and temperature sensor (datasheet
//! BST-BME280-DS002), split embedded-hal style:
//!
//! - [`interface`]: register map and chip constants;
//! - [`configuration`]: oversampling settings, control bytes, measurement time;
//! - [`conversion`]: calibration parsing and Bosch's integer compensation (pure);
//! - [`Bme280`] (in `reading`): the device over any `embedded_hal::i2c::I2c` + `DelayNs`;
//! - `driver` (wasm): the wasi-hw driver reporting `temperature_c`, `pressure_pa`,
//!   `humidity_pct`.
//!
//! On the wire, per reading (forced mode): write `[0xF2, ctrl_hum]`, write `[0xF4, ctrl_meas]`
//! (mode = forced), wait the datasheet's maximum measurement time, write_read `[0xF3]` → status
//! until `measuring` clears, then one burst write_read `[0xF7]` → 8 bytes (press, temp, hum).
#![cfg_attr(target_arch = "wasm32", no_std)]

pub mod configuration;
pub mod conversion;
pub mod interface;
mod reading;

pub mod driver;

pub use configuration::{Config, Oversampling};
pub use conversion::{Calibration, Measurement, RawSample};
pub use reading::{Bme280, Error};
