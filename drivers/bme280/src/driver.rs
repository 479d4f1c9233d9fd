//! The wasi-hw driver (wasm32): config `bus` (default "i2c-1"), `address` (0x76),
//! `osrs_t`/`osrs_p`/`osrs_h` (oversampling 0/1/2/4/8/16, default 1; 0 skips). `init` checks
//! the chip and reads its calibration; each `poll` runs one forced measurement and reports
//! `{"temperature_c", "pressure_pa", "humidity_pct"}` (skipped quantities are left out).

use wasi_hw_sdk::config::{self, ConfigError, ConfigErrorKind};
use wasi_hw_sdk::delay::Delay;
use wasi_hw_sdk::i2c::{self, I2cBus};
use wasi_hw_sdk::imc::{self, LatestReading, ServiceId};
use wasi_hw_sdk::report::Report;
use wasi_hw_sdk::Driver;

use crate::configuration::{Config, Oversampling};
use crate::interface::DEFAULT_ADDRESS;
use crate::reading::{Bme280, Error};

/// Why `init`/`poll` failed.
#[derive(Debug)]
pub enum AppError {
    Sdk(wasi_hw_sdk::Error),
    Chip(Error<i2c::Error>),
}

impl From<wasi_hw_sdk::Error> for AppError {
    fn from(e: wasi_hw_sdk::Error) -> Self {
        AppError::Sdk(e)
    }
}

impl From<Error<i2c::Error>> for AppError {
    fn from(e: Error<i2c::Error>) -> Self {
        AppError::Chip(e)
    }
}

impl From<ConfigError> for AppError {
    fn from(e: ConfigError) -> Self {
        AppError::Sdk(e.into())
    }
}

fn oversampling(key: &'static str) -> Result<Oversampling, ConfigError> {
    let n = config::u64_or(key, 1)?;
    Oversampling::from_count(n).ok_or(ConfigError { key, kind: ConfigErrorKind::OutOfRange })
}

/// The driver instance: the chip on its bus, and its newest reading (CBOR) for the service.
pub struct App {
    dev: Bme280<I2cBus, Delay>,
    last: LatestReading,
}

impl Driver for App {
    type Error = AppError;

    fn init() -> Result<Self, AppError> {
        let config = Config {
            temperature: oversampling("osrs_t")?,
            pressure: oversampling("osrs_p")?,
            humidity: oversampling("osrs_h")?,
        };
        if config.temperature == Oversampling::Skipped {
            // t_fine is needed for pressure and humidity.
            return Err(ConfigError { key: "osrs_t", kind: ConfigErrorKind::OutOfRange }.into());
        }
        let address = i2c::configured_address(DEFAULT_ADDRESS)?;
        let bus = i2c::open_configured("i2c-1")?;
        let mut dev = Bme280::new(bus, Delay, address, config);
        dev.init()?;
        imc::offer_configured()?;
        Ok(App { dev, last: LatestReading::new() })
    }

    fn poll(&mut self) -> Result<(), AppError> {
        let m = self.dev.measure()?;
        let mut report = Report::new().f32("temperature_c", m.temperature_c());
        if let Some(p) = m.pressure_pa() {
            report = report.f32("pressure_pa", p);
        }
        if let Some(h) = m.humidity_pct() {
            report = report.f32("humidity_pct", h);
        }
        self.last.keep(&mut report).map_err(|e| AppError::Sdk(e.into()))?;
        report.send().map_err(|e| AppError::Sdk(e.into()))
    }
}

impl imc::Serve for App {
    type Error = AppError;

    /// The service answers any request with the newest reading (as reported).
    fn serve(&mut self, _id: ServiceId, _request: &[u8], reply: &mut [u8]) -> Result<usize, AppError> {
        self.last.copy_to(reply).map_err(|e| AppError::Sdk(e.into()))
    }
}

wasi_hw_sdk::export_driver!(App, serve);
