//! The wasm module: config `sources` is not needed — it calls `bme280.reading` and
//! `sht3x.reading` (its manifest's `[imc] call`), skips a source that is unavailable, and
//! publishes and reports only when at least one answered with both quantities.

use wasi_hw_sdk::imc::{self, ImcError};
use wasi_hw_sdk::report::Report;
use wasi_hw_sdk::Driver;

use crate::conversion::{dew_point_c, fields, mean};

/// The services asked, in order.
pub const SOURCES: [&str; 2] = ["bme280.reading", "sht3x.reading"];

/// Why a poll failed.
#[derive(Debug)]
pub enum AppError {
    Sdk(wasi_hw_sdk::Error),
}

impl<E: Into<wasi_hw_sdk::Error>> From<E> for AppError {
    fn from(e: E) -> Self {
        AppError::Sdk(e.into())
    }
}

/// The module (no state between polls).
pub struct App;

impl Driver for App {
    type Error = AppError;

    fn init() -> Result<Self, AppError> {
        Ok(App)
    }

    fn poll(&mut self) -> Result<(), AppError> {
        let mut temps = [None; SOURCES.len()];
        let mut hums = [None; SOURCES.len()];
        for (i, service) in SOURCES.iter().enumerate() {
            let mut buf = [0u8; 128];
            match imc::call(service, &[], &mut buf, 0) {
                Ok(reading) => (temps[i], hums[i]) = fields(reading),
                // a source that is down or slow is left out; a denial is a configuration error
                Err(ImcError::Unavailable | ImcError::Timeout | ImcError::ProviderFailed) => {}
                Err(e) => return Err(e.into()),
            }
        }
        let (Some(t), Some(h)) = (mean(&temps), mean(&hums)) else { return Ok(()) };
        let mut report = Report::new()
            .f32("dewpoint_c", dew_point_c(t, h))
            .f32("temperature_c", t)
            .f32("humidity_pct", h);
        imc::publish("dewpoint", report.encoded()?)?;
        report.send()?;
        Ok(())
    }
}

wasi_hw_sdk::export_driver!(App);
