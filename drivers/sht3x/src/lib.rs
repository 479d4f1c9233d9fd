//! Sensirion SHT3x-DIS humidity and temperature sensor (datasheet v6), split embedded-hal
//! style:
//!
//! - [`interface`]: addresses and commands;
//! - [`configuration`]: repeatability → single-shot command and measurement time;
//! - [`conversion`]: CRC-8 and the signal conversion formulas (pure);
//! - [`Sht3x`] (in `reading`): the device over any `embedded_hal::i2c::I2c` + `DelayNs`;
//! - [`driver`] (wasm): the wasi-hw driver reporting `temperature_c`, `humidity_pct`.
//!
//! On the wire, per reading: write `[0x24, 0x00]` (single shot, clock stretching disabled,
//! high repeatability), wait the maximum measurement time, then read 6 bytes
//! `T_msb T_lsb CRC RH_msb RH_lsb CRC`. While the sensor is still measuring it does not
//! acknowledge its address; the read is retried [`reading::READ_RETRIES`] times 1 ms apart.
//! Every word's CRC (poly 0x31, init 0xFF) is verified; a mismatch is [`Error::Crc`].
#![cfg_attr(target_arch = "wasm32", no_std)]

pub mod configuration;
pub mod conversion;
pub mod interface;
mod reading;

pub mod driver;

pub use configuration::Repeatability;
pub use conversion::Measurement;
pub use reading::{Error, Sht3x, READ_RETRIES};
