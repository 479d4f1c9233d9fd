//! Reporting readings: [`Report`] builds one CBOR map (RFC 8949, definite length, text keys)
//! in a fixed stack buffer with `minicbor` and hands it to `wasi_driver.report`.
//!
//! ```ignore
//! Report::new().f32("temperature_c", 21.5).f32("humidity_pct", 40.0).send()?;
//! ```
//!
//! At most [`MAX_ENTRIES`] entries and [`CAPACITY`] bytes; beyond either, `send`/`encoded`
//! fail with [`DriverError::TooLarge`] and nothing is sent.

use minicbor::encode::write::Cursor;
use minicbor::{Encode, Encoder};

use crate::driver::DriverError;
use crate::raw::wasi_driver as raw;

/// Bytes of encoded CBOR one report may take.
pub const CAPACITY: usize = 256;
/// Entries one report may hold (a one-byte CBOR map header).
pub const MAX_ENTRIES: usize = 23;

/// A CBOR map under construction; see the module docs.
#[derive(Clone)]
pub struct Report {
    buf: [u8; CAPACITY],
    /// End of the encoded entries; byte 0 is reserved for the map header.
    end: usize,
    count: usize,
    overflow: bool,
}

impl Default for Report {
    fn default() -> Self {
        Self::new()
    }
}

impl Report {
    /// An empty map.
    pub const fn new() -> Self {
        Self { buf: [0; CAPACITY], end: 1, count: 0, overflow: false }
    }

    /// Adds `key: value` for any `minicbor`-encodable value.
    pub fn value<T: Encode<()> + ?Sized>(mut self, key: &str, value: &T) -> Self {
        self.push(key, value);
        self
    }

    /// Adds `key: value` in place (for loops); see [`value`](Self::value).
    pub fn push<T: Encode<()> + ?Sized>(&mut self, key: &str, value: &T) -> &mut Self {
        if self.overflow || self.count == MAX_ENTRIES {
            self.overflow = true;
            return self;
        }
        let mut enc = Encoder::new(Cursor::new(&mut self.buf[self.end..]));
        let ok = enc.str(key).and_then(|e| e.encode(value)).is_ok();
        let written = enc.into_writer().position();
        if ok {
            self.end += written;
            self.count += 1;
        } else {
            self.overflow = true;
        }
        self
    }

    /// Adds a single-precision float.
    pub fn f32(self, key: &str, value: f32) -> Self {
        self.value(key, &value)
    }
    /// Adds a double-precision float.
    pub fn f64(self, key: &str, value: f64) -> Self {
        self.value(key, &value)
    }
    /// Adds an unsigned integer.
    pub fn u64(self, key: &str, value: u64) -> Self {
        self.value(key, &value)
    }
    /// Adds an unsigned integer.
    pub fn u32(self, key: &str, value: u32) -> Self {
        self.value(key, &value)
    }
    /// Adds a signed integer.
    pub fn i64(self, key: &str, value: i64) -> Self {
        self.value(key, &value)
    }
    /// Adds a signed integer.
    pub fn i32(self, key: &str, value: i32) -> Self {
        self.value(key, &value)
    }
    /// Adds a boolean.
    pub fn bool(self, key: &str, value: bool) -> Self {
        self.value(key, &value)
    }
    /// Adds a text string.
    pub fn str(self, key: &str, value: &str) -> Self {
        self.value(key, value)
    }
    /// Adds a byte string.
    pub fn bytes(self, key: &str, value: &[u8]) -> Self {
        let value: &minicbor::bytes::ByteSlice = value.into();
        self.value(key, value)
    }

    /// Number of entries so far.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no entry was added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The encoded map, or `TooLarge` if an entry did not fit.
    pub fn encoded(&mut self) -> Result<&[u8], DriverError> {
        if self.overflow {
            return Err(DriverError::TooLarge);
        }
        // `count` <= 23, so the header is exactly one byte.
        Encoder::new(Cursor::new(&mut self.buf[..1]))
            .map(self.count as u64)
            .map_err(|_| DriverError::TooLarge)?;
        Ok(&self.buf[..self.end])
    }

    /// Encodes the map and reports it to the host.
    pub fn send(mut self) -> Result<(), DriverError> {
        let data = self.encoded()?;
        send_raw(data)
    }
}

/// Reports one already-encoded CBOR item (it must decode; the host checks).
pub fn send_raw(cbor: &[u8]) -> Result<(), DriverError> {
    DriverError::check(import_call!(
        raw::DRIVER_ERRNO_OTHER,
        raw::report(cbor.as_ptr() as i32, cbor.len() as i32)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_a_definite_map() {
        let mut r = Report::new().f32("t", 1.5).u32("n", 7).str("s", "ok").bool("b", true).i32("i", -2);
        assert_eq!(r.len(), 5);
        let expect: &[u8] = &[
            0xa5, // map(5)
            0x61, b't', 0xfa, 0x3f, 0xc0, 0x00, 0x00, // "t": 1.5f32
            0x61, b'n', 0x07, // "n": 7
            0x61, b's', 0x62, b'o', b'k', // "s": "ok"
            0x61, b'b', 0xf5, // "b": true
            0x61, b'i', 0x21, // "i": -2
        ];
        assert_eq!(r.encoded().unwrap(), expect);
    }

    #[test]
    fn empty_and_bytes() {
        let mut r = Report::new();
        assert!(r.is_empty());
        assert_eq!(r.encoded().unwrap(), &[0xa0]);
        let mut r = Report::new().bytes("raw", &[1, 2]);
        assert_eq!(r.encoded().unwrap(), &[0xa1, 0x63, b'r', b'a', b'w', 0x42, 1, 2]);
    }

    #[test]
    fn overflow_is_too_large_not_truncated() {
        let mut r = Report::new();
        for _ in 0..MAX_ENTRIES {
            r.push("k", &1u8);
        }
        assert!(r.encoded().is_ok());
        r.push("k", &1u8);
        assert_eq!(r.encoded(), Err(DriverError::TooLarge));

        let long = "x".repeat(CAPACITY);
        let mut r = Report::new().u32("a", 1).str("long", &long);
        assert_eq!(r.encoded(), Err(DriverError::TooLarge));
    }
}
