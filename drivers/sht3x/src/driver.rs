//! The wasi-hw driver: config `bus` (default "i2c-1"), `address` (0x44), `repeatability`
//! (`high`/`medium`/`low`, default high). `init` opens the bus (the sensor needs no set-up
//! for single shots); each `poll` measures once and reports `{"temperature_c",
//! "humidity_pct"}`. A CRC mismatch fails the poll.

use wasi_hw_sdk::config::{self, ConfigError, ConfigErrorKind};
use wasi_hw_sdk::delay::Delay;
use wasi_hw_sdk::i2c::{self, I2cBus};
use wasi_hw_sdk::imc::{self, LatestReading, ServiceId};
use wasi_hw_sdk::report::Report;
use wasi_hw_sdk::Driver;

use crate::configuration::Repeatability;
use crate::interface::DEFAULT_ADDRESS;
use crate::reading::{Error, Sht3x};

/// Why `init`/`poll` failed.
#[derive(Debug)]
pub enum AppError {
    Sdk(wasi_hw_sdk::Error),
    Chip(Error<i2c::Error>),
}

impl<E: Into<wasi_hw_sdk::Error>> From<E> for AppError {
    fn from(e: E) -> Self {
        AppError::Sdk(e.into())
    }
}

/// The driver instance, and its newest reading (CBOR) for the service.
pub struct App {
    dev: Sht3x<I2cBus, Delay>,
    last: LatestReading,
}

impl Driver for App {
    type Error = AppError;

    fn init() -> Result<Self, AppError> {
        let mut buf = [0u8; 16];
        let text = config::str_or("repeatability", &mut buf, "high")?;
        let repeatability = Repeatability::parse(text)
            .ok_or(ConfigError { key: "repeatability", kind: ConfigErrorKind::OutOfRange })?;
        let address = i2c::configured_address(DEFAULT_ADDRESS)?;
        let bus = i2c::open_configured("i2c-1")?;
        imc::offer_configured()?;
        Ok(App { dev: Sht3x::new(bus, Delay, address, repeatability), last: LatestReading::new() })
    }

    fn poll(&mut self) -> Result<(), AppError> {
        let m = self.dev.measure().map_err(AppError::Chip)?;
        let mut report = Report::new()
            .f32("temperature_c", m.temperature_c())
            .f32("humidity_pct", m.humidity_pct());
        self.last.keep(&mut report)?;
        report.send()?;
        Ok(())
    }
}

impl imc::Serve for App {
    type Error = AppError;

    /// The service answers any request with the newest reading (as reported).
    fn serve(&mut self, _id: ServiceId, _request: &[u8], reply: &mut [u8]) -> Result<usize, AppError> {
        Ok(self.last.copy_to(reply)?)
    }
}

wasi_hw_sdk::export_driver!(App, serve);
