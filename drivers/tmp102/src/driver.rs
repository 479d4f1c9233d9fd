//! The wasi-hw driver: config `bus` (default "i2c-1"), `address` (0x48..=0x4B, default
//! 0x48), `extended` (bool, default false: 13-bit mode up to 150 °C). `init` waits out the
//! first conversion; each `poll` reads the temperature register and reports
//! `{"temperature_c"}`.

use tmp1x2::{marker::mode::Continuous, Tmp1x2};
use embedded_hal::delay::DelayNs;
use wasi_hw_sdk::config::{self, ConfigError, ConfigErrorKind};
use wasi_hw_sdk::delay::Delay;
use wasi_hw_sdk::i2c::{self, I2cBus};
use wasi_hw_sdk::report::Report;
use wasi_hw_sdk::Driver;

use crate::configuration::{slave_addr, DEFAULT_ADDRESS};

/// Longest conversion time, waited once in `init`.
pub const FIRST_CONVERSION_MS: u32 = 35;

/// Why `init`/`poll` failed.
#[derive(Debug)]
pub enum AppError {
    Sdk(wasi_hw_sdk::Error),
    Chip(tmp1x2::Error<i2c::Error>),
}

impl<E: Into<wasi_hw_sdk::Error>> From<E> for AppError {
    fn from(e: E) -> Self {
        AppError::Sdk(e.into())
    }
}

/// The driver instance.
pub struct App {
    dev: Tmp1x2<I2cBus, Continuous>,
}

impl Driver for App {
    type Error = AppError;

    fn init() -> Result<Self, AppError> {
        let address = i2c::configured_address(DEFAULT_ADDRESS)?;
        let pins = slave_addr(address)
            .ok_or(ConfigError { key: "address", kind: ConfigErrorKind::OutOfRange })?;
        let extended = config::bool_or("extended", false)?;
        let mut dev = Tmp1x2::new(i2c::open_configured("i2c-1")?, pins);
        if extended {
            dev.enable_extended_mode().map_err(AppError::Chip)?;
        }
        // The temperature register reads 0 until the first conversion after power-up or a
        // mode change completes: 26 ms typical, 35 ms max (datasheet 6.5).
        Delay.delay_ms(FIRST_CONVERSION_MS);
        Ok(App { dev })
    }

    fn poll(&mut self) -> Result<(), AppError> {
        let t = self.dev.read_temperature().map_err(AppError::Chip)?;
        Report::new().f32("temperature_c", t).send()?;
        Ok(())
    }
}

wasi_hw_sdk::export_driver!(App);
