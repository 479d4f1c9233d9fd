//! Logging over `wasi_driver.log`: functions per level and `format!`-style macros
//! ([`error!`](crate::error), [`warn!`](crate::warn), [`info!`](crate::info),
//! [`debug!`](crate::debug), [`trace!`](crate::trace)).
//!
//! Formatted messages are built in a stack buffer of [`MAX_MESSAGE`] bytes; longer ones are
//! cut at a character boundary and end in `…`. The host may rate-limit (`no_mem`).

use core::fmt;

use crate::driver::DriverError;
use crate::fmt::FmtBuf;
use crate::raw::wasi_driver as raw;

/// The longest formatted message, in bytes; longer ones are truncated.
pub const MAX_MESSAGE: usize = 240;

/// Severity of a message (`$log_level`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl Level {
    fn raw(self) -> raw::LogLevel {
        match self {
            Level::Error => raw::LOG_LEVEL_ERROR,
            Level::Warn => raw::LOG_LEVEL_WARN,
            Level::Info => raw::LOG_LEVEL_INFO,
            Level::Debug => raw::LOG_LEVEL_DEBUG,
            Level::Trace => raw::LOG_LEVEL_TRACE,
        }
    }
}

/// Logs `message` at `level`.
pub fn log(level: Level, message: &str) -> Result<(), DriverError> {
    DriverError::check(import_call!(
        raw::DRIVER_ERRNO_OTHER,
        raw::log(level.raw() as i32, message.as_ptr() as i32, message.len() as i32)
    ))
}

/// Formats and logs; errors (e.g. rate limiting) are dropped: logging must not fail a driver.
pub fn log_fmt(level: Level, args: fmt::Arguments<'_>) {
    let message = format_message(args);
    let _ = log(level, message.as_str());
}

fn format_message(args: fmt::Arguments<'_>) -> FmtBuf<{ MAX_MESSAGE }> {
    // Leave room for the 3-byte truncation marker.
    let body = FmtBuf::<{ MAX_MESSAGE - 3 }>::format(args);
    let mut message = FmtBuf::<{ MAX_MESSAGE }>::new();
    let _ = fmt::Write::write_str(&mut message, body.as_str());
    if body.truncated() {
        let _ = fmt::Write::write_str(&mut message, "…");
    }
    message
}

/// Logs at error level.
pub fn error(message: &str) {
    let _ = log(Level::Error, message);
}
/// Logs at warn level.
pub fn warn(message: &str) {
    let _ = log(Level::Warn, message);
}
/// Logs at info level.
pub fn info(message: &str) {
    let _ = log(Level::Info, message);
}
/// Logs at debug level.
pub fn debug(message: &str) {
    let _ = log(Level::Debug, message);
}
/// Logs at trace level.
pub fn trace(message: &str) {
    let _ = log(Level::Trace, message);
}

/// `error!("fmt", args…)`: formats and logs at error level.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::log::log_fmt($crate::log::Level::Error, format_args!($($arg)+)) };
}
/// `warn!("fmt", args…)`: formats and logs at warn level.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::log::log_fmt($crate::log::Level::Warn, format_args!($($arg)+)) };
}
/// `info!("fmt", args…)`: formats and logs at info level.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::log::log_fmt($crate::log::Level::Info, format_args!($($arg)+)) };
}
/// `debug!("fmt", args…)`: formats and logs at debug level.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::log::log_fmt($crate::log::Level::Debug, format_args!($($arg)+)) };
}
/// `trace!("fmt", args…)`: formats and logs at trace level.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::log::log_fmt($crate::log::Level::Trace, format_args!($($arg)+)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_messages_are_cut_and_marked() {
        let short = format_message(format_args!("bus {} ok", "i2c-1"));
        assert_eq!(short.as_str(), "bus i2c-1 ok");
        let long = format_message(format_args!("{:x<300}", "x"));
        assert!(long.as_str().ends_with("…"));
        assert!(long.as_str().len() <= MAX_MESSAGE);
        assert!(long.as_str().starts_with("xxxx"));
    }

    #[test]
    fn levels_map_to_the_spec() {
        assert_eq!(Level::Error.raw(), raw::LOG_LEVEL_ERROR);
        assert_eq!(Level::Trace.raw(), raw::LOG_LEVEL_TRACE);
    }
}
