//! The wasi-hw driver: config `bus` (default "i2c-1"), `address` (0x44), `repeatability`
//! (`high`/`medium`/`low`, default high). `init` opens the bus (the sensor needs no set-up
//! for single shots); each `poll` measures once and reports `{"temperature_c",
//! "humidity_pct"}`. A CRC mismatch fails the poll.

use wasi_hw_sdk::config::{self, ConfigError, ConfigErrorKind};
use wasi_hw_sdk::delay::Delay;
use wasi_hw_sdk::i2c::{self, I2cBus};
use wasi_hw_sdk::imc::{self, ServiceId};
use wasi_hw_sdk::report::{Report, CAPACITY};
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
    last: Last,
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
        offer_configured()?;
        Ok(App { dev: Sht3x::new(bus, Delay, address, repeatability), last: Last::new() })
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

/// Offers the service named by config `service` (e.g. "sht3x.reading"; the manifest's
/// `[imc] offer` must list it); without the key the driver offers nothing.
fn offer_configured() -> Result<(), wasi_hw_sdk::Error> {
    let mut buf = [0u8; 64];
    if let Some(name) = config::get("service", &mut buf)? {
        imc::offer(name)?;
    }
    Ok(())
}

/// The newest reading, encoded as reported.
struct Last {
    buf: [u8; CAPACITY],
    len: usize,
}

impl Last {
    const fn new() -> Self {
        Self { buf: [0; CAPACITY], len: 0 }
    }

    fn keep(&mut self, report: &mut Report) -> Result<(), wasi_hw_sdk::driver::DriverError> {
        let data = report.encoded()?;
        self.buf[..data.len()].copy_from_slice(data);
        self.len = data.len();
        Ok(())
    }

    /// Copies the reading into `reply`; `imc::ImcError::Unavailable` before the first one.
    fn copy_to(&self, reply: &mut [u8]) -> Result<usize, imc::ImcError> {
        if self.len == 0 {
            return Err(imc::ImcError::Unavailable);
        }
        let out = reply.get_mut(..self.len).ok_or(imc::ImcError::TooLarge)?;
        out.copy_from_slice(&self.buf[..self.len]);
        Ok(self.len)
    }
}
