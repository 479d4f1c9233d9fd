//! [`Error`]: the SDK's failures in one type, for drivers' `?` (setup, reporting, I2C).

use core::fmt;

use crate::config::ConfigError;
use crate::driver::DriverError;
use crate::i2c;
use crate::imc::ImcError;

/// Any failure of an SDK call a driver makes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// An I2C call failed.
    I2c(i2c::Error),
    /// A configuration value was malformed (names the key).
    Config(ConfigError),
    /// A `wasi_driver` call (report, log, inbox, time) failed.
    Driver(DriverError),
    /// A `wasi_imc` call (call, publish, subscribe, receive, offer) failed.
    Imc(ImcError),
}

impl From<ImcError> for Error {
    fn from(e: ImcError) -> Self {
        Error::Imc(e)
    }
}

impl From<i2c::Error> for Error {
    fn from(e: i2c::Error) -> Self {
        Error::I2c(e)
    }
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}

impl From<DriverError> for Error {
    fn from(e: DriverError) -> Self {
        Error::Driver(e)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::I2c(e) => write!(f, "{e}"),
            Error::Config(e) => write!(f, "{e}"),
            Error::Driver(e) => write!(f, "wasi_driver {e}"),
            Error::Imc(e) => write!(f, "{e}"),
        }
    }
}
