//! The driver's configuration over `wasi_driver.config_get`: string values from the
//! manifest or the command line (keys such as `bus`, `address`).
//!
//! Numbers are written in decimal, `0x` hex or `0b` binary (`"0x76"`, `"118"`). A key that
//! is absent yields the default; a value that is present but malformed is an error
//! ([`ConfigError`] names the key), never silently replaced.

use core::fmt;

use crate::driver::DriverError;
use crate::raw::wasi_driver as raw;

/// Why a configuration value could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConfigError {
    /// The key asked for.
    pub key: &'static str,
    /// What was wrong.
    pub kind: ConfigErrorKind,
}

/// What was wrong with a configuration value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConfigErrorKind {
    /// The value is not valid UTF-8.
    NotUtf8,
    /// The value is not a number (decimal, `0x` hex, `0b` binary).
    NotANumber,
    /// The number does not fit the requested type.
    OutOfRange,
    /// The host call failed (`too_large`: the value does not fit the buffer).
    Host(DriverError),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config `{}`: ", self.key)?;
        match self.kind {
            ConfigErrorKind::NotUtf8 => f.write_str("value is not UTF-8"),
            ConfigErrorKind::NotANumber => f.write_str("not a number (decimal, 0x hex or 0b binary)"),
            ConfigErrorKind::OutOfRange => f.write_str("number out of range"),
            ConfigErrorKind::Host(e) => write!(f, "{e}"),
        }
    }
}

/// The value of `key` copied into `buf`, or `None` when the key is not set.
pub fn get<'a>(key: &'static str, buf: &'a mut [u8]) -> Result<Option<&'a str>, ConfigError> {
    let mut len: raw::Size = 0;
    let errno = import_call!(
        raw::DRIVER_ERRNO_NOT_FOUND,
        raw::config_get(
            key.as_ptr() as i32,
            key.len() as i32,
            buf.as_mut_ptr() as i32,
            buf.len() as i32,
            &mut len as *mut raw::Size as i32,
        )
    );
    match DriverError::check(errno) {
        Ok(()) => {}
        Err(DriverError::NotFound) => return Ok(None),
        Err(e) => return Err(ConfigError { key, kind: ConfigErrorKind::Host(e) }),
    }
    let value = buf.get(..len as usize).ok_or(ConfigError {
        key,
        kind: ConfigErrorKind::Host(DriverError::TooLarge),
    })?;
    core::str::from_utf8(value)
        .map(Some)
        .map_err(|_| ConfigError { key, kind: ConfigErrorKind::NotUtf8 })
}

/// The value of `key` (copied into `buf`), or `default` when not set.
pub fn str_or<'a>(key: &'static str, buf: &'a mut [u8], default: &'a str) -> Result<&'a str, ConfigError> {
    Ok(get(key, buf)?.unwrap_or(default))
}

/// `key` as a number, or `default` when not set.
pub fn u64_or(key: &'static str, default: u64) -> Result<u64, ConfigError> {
    let mut buf = [0u8; 32];
    match get(key, &mut buf)? {
        None => Ok(default),
        Some(text) => parse_u64(text).map_err(|kind| ConfigError { key, kind }),
    }
}

/// `key` as a `u32`, or `default` when not set.
pub fn u32_or(key: &'static str, default: u32) -> Result<u32, ConfigError> {
    narrow(key, u64_or(key, u64::from(default))?)
}

/// `key` as a `u16` (e.g. an I2C address), or `default` when not set.
pub fn u16_or(key: &'static str, default: u16) -> Result<u16, ConfigError> {
    narrow(key, u64_or(key, u64::from(default))?)
}

/// `key` as a `u8`, or `default` when not set.
pub fn u8_or(key: &'static str, default: u8) -> Result<u8, ConfigError> {
    narrow(key, u64_or(key, u64::from(default))?)
}

/// `key` as a boolean (`true`/`false`/`1`/`0`/`yes`/`no`/`on`/`off`), or `default`.
pub fn bool_or(key: &'static str, default: bool) -> Result<bool, ConfigError> {
    let mut buf = [0u8; 8];
    match get(key, &mut buf)? {
        None => Ok(default),
        Some(text) => parse_bool(text).ok_or(ConfigError { key, kind: ConfigErrorKind::NotANumber }),
    }
}

fn narrow<T: TryFrom<u64>>(key: &'static str, v: u64) -> Result<T, ConfigError> {
    T::try_from(v).map_err(|_| ConfigError { key, kind: ConfigErrorKind::OutOfRange })
}

/// Parses decimal, `0x` hex or `0b` binary (surrounding spaces and `_` separators allowed).
pub fn parse_u64(text: &str) -> Result<u64, ConfigErrorKind> {
    let t = text.trim();
    let (digits, radix) = if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        (h, 16)
    } else if let Some(b) = t.strip_prefix("0b").or_else(|| t.strip_prefix("0B")) {
        (b, 2)
    } else {
        (t, 10)
    };
    if digits.is_empty() || digits.starts_with('_') {
        return Err(ConfigErrorKind::NotANumber);
    }
    let mut value: u64 = 0;
    for c in digits.chars().filter(|&c| c != '_') {
        let d = c.to_digit(radix).ok_or(ConfigErrorKind::NotANumber)?;
        value = value
            .checked_mul(u64::from(radix))
            .and_then(|v| v.checked_add(u64::from(d)))
            .ok_or(ConfigErrorKind::OutOfRange)?;
    }
    Ok(value)
}

fn parse_bool(text: &str) -> Option<bool> {
    let t = text.trim();
    let is = |w: &str| t.eq_ignore_ascii_case(w);
    if is("true") || is("1") || is("yes") || is("on") {
        Some(true)
    } else if is("false") || is("0") || is("no") || is("off") {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_in_three_radixes() {
        assert_eq!(parse_u64("0x76"), Ok(0x76));
        assert_eq!(parse_u64(" 0X3FF "), Ok(0x3ff));
        assert_eq!(parse_u64("118"), Ok(118));
        assert_eq!(parse_u64("0b1110110"), Ok(0x76));
        assert_eq!(parse_u64("1_000"), Ok(1000));
        assert_eq!(parse_u64("18446744073709551615"), Ok(u64::MAX));
    }

    #[test]
    fn malformed_numbers_are_errors() {
        assert_eq!(parse_u64(""), Err(ConfigErrorKind::NotANumber));
        assert_eq!(parse_u64("0x"), Err(ConfigErrorKind::NotANumber));
        assert_eq!(parse_u64("0x7g"), Err(ConfigErrorKind::NotANumber));
        assert_eq!(parse_u64("-1"), Err(ConfigErrorKind::NotANumber));
        assert_eq!(parse_u64("0b102"), Err(ConfigErrorKind::NotANumber));
        assert_eq!(parse_u64("18446744073709551616"), Err(ConfigErrorKind::OutOfRange));
        assert_eq!(
            narrow::<u16>("address", 0x1_0000),
            Err(ConfigError { key: "address", kind: ConfigErrorKind::OutOfRange })
        );
    }

    #[test]
    fn booleans() {
        assert_eq!(parse_bool("ON"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("maybe"), None);
    }

    #[test]
    fn without_a_host_keys_are_absent_and_defaults_apply() {
        assert_eq!(u16_or("address", 0x76), Ok(0x76));
        let mut buf = [0u8; 16];
        assert_eq!(str_or("bus", &mut buf, "i2c-1"), Ok("i2c-1"));
    }

    #[test]
    fn errors_name_the_key() {
        let e = ConfigError { key: "address", kind: ConfigErrorKind::NotANumber };
        let text = crate::FmtBuf::<80>::format(format_args!("{e}"));
        assert_eq!(text.as_str(), "config `address`: not a number (decimal, 0x hex or 0b binary)");
    }
}
