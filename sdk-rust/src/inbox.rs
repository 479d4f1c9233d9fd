//! The driver's inbox over `wasi_driver.inbox`: the newest CBOR item routed to this driver
//! (e.g. another driver's reading, or text sent from the command line).

use crate::driver::DriverError;
use crate::raw::wasi_driver as raw;

/// Takes the newest message into `buf`: `Ok(None)` when there is none, `Err(TooLarge)` when
/// it does not fit `buf`.
pub fn take(buf: &mut [u8]) -> Result<Option<&[u8]>, DriverError> {
    let mut len: raw::Size = 0;
    DriverError::check(import_call!(
        raw::DRIVER_ERRNO_OTHER,
        raw::inbox(buf.as_mut_ptr() as i32, buf.len() as i32, &mut len as *mut raw::Size as i32)
    ))?;
    match len as usize {
        0 => Ok(None),
        n => buf.get(..n).map(Some).ok_or(DriverError::TooLarge),
    }
}
