//! [`Delay`]: embedded-hal's `DelayNs` over `wasi_i2c.delay_ns` (one host call per wait).
//!
//! On simulated backends the wait advances virtual time (device models see the conversion
//! time pass); on real ones the host sleeps. The host bounds each wait by the driver's
//! per-call deadline; `DelayNs` is infallible, so use [`sleep_ns`] to see such errors.

use embedded_hal::delay::DelayNs;

use crate::i2c::Error;
use crate::raw::wasi_i2c as raw;

/// Waits at least `ns` nanoseconds.
pub fn sleep_ns(ns: u64) -> Result<(), Error> {
    Error::check(import_call!(raw::I2C_ERRNO_NOT_SUPPORTED, raw::delay_ns(ns as i64)))
}

/// The host's delay, as an embedded-hal `DelayNs`.
#[derive(Clone, Copy, Debug, Default)]
pub struct Delay;

impl DelayNs for Delay {
    fn delay_ns(&mut self, ns: u32) {
        let _ = sleep_ns(u64::from(ns));
    }

    fn delay_us(&mut self, us: u32) {
        let _ = sleep_ns(u64::from(us) * 1_000);
    }

    fn delay_ms(&mut self, ms: u32) {
        let _ = sleep_ns(u64::from(ms) * 1_000_000);
    }
}
