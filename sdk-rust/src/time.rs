//! Monotonic time from `wasi_driver.now_ns` (virtual time on simulated backends).

use crate::driver::DriverError;
use crate::raw::wasi_driver as raw;

/// Nanoseconds on the host's monotonic clock.
pub fn now_ns() -> Result<u64, DriverError> {
    let mut now: u64 = 0;
    DriverError::check(import_call!(raw::DRIVER_ERRNO_OTHER, raw::now_ns(&mut now as *mut u64 as i32)))?;
    Ok(now)
}
