//! Inter-module communication over `wasi_imc`: call services by name, serve them, publish to
//! this module's topics and receive from subscribed ones. The kernel decides where a
//! service runs (this kernel: one copy each way between the two memories; another kernel:
//! NATS); the module never names a location. Payloads are bytes (CBOR by convention).
//!
//! ```ignore
//! // caller
//! let mut buf = [0u8; 128];
//! let reading = imc::call("bme280.reading", &[], &mut buf, 0)?;   // 0: the module's deadline
//! imc::publish("dewpoint", &cbor)?;                                // others see "<module>.dewpoint"
//!
//! // provider: offer in `init`, answer in `Serve::serve`, export with `export_driver!(App, serve)`
//! impl wasi_hw_sdk::imc::Serve for App {
//!     type Error = AppError;
//!     fn serve(&mut self, id: ServiceId, request: &[u8], reply: &mut [u8]) -> Result<usize, AppError> {
//!         reply[..n].copy_from_slice(...); Ok(n)
//!     }
//! }
//! ```
//!
//! A sensor that serves its newest reading keeps it in a [`LatestReading`] (`keep` in
//! `poll`, `copy_to` in `serve`) and offers the name its config `service` gives with
//! [`offer_configured`].
//!
//! Serving: [`offer`] registers the module's one serve buffer ([`SERVE_BUFFER`] bytes, in
//! this crate) for a service. Per request the kernel writes an 8-byte header (service id,
//! request length; u32 little-endian) and the request into it and calls the export
//! `imc_serve`; [`run_serve`] hands the request (copied to the stack, so the reply may be
//! written over it) and the reply area to [`Serve::serve`] and returns the reply length, or
//! a negative number on failure (the caller sees `provider_failed`). The buffer must fit in
//! the module's `limits.max_transfer`.

use core::cell::UnsafeCell;
use core::fmt;

use crate::config;
use crate::driver::{Driver, DriverError, Slot};
use crate::raw::wasi_imc as raw;
use crate::report::{Report, CAPACITY};

/// Bytes of the serve buffer: [`HEADER`] + the largest request and reply.
pub const SERVE_BUFFER: usize = 256;
/// Bytes of the serve header (service id, request length).
pub const HEADER: usize = 8;
/// `imc_serve` result: `Serve::serve` returned an error (logged).
pub const SERVE_FAILED: i32 = -1;
/// `imc_serve` result: no driver instance (`init` failed or was not called).
pub const SERVE_NOT_INITIALIZED: i32 = -2;

/// An error kind of a `wasi_imc` call (`$imc_errno` in `witx/wasi_imc.witx`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImcError {
    /// Bad UTF-8 or a malformed service / topic name.
    InvalidArgument,
    /// A pointer or length outside the module's memory.
    Fault,
    /// A buffer is too small; nothing was written.
    TooLarge,
    /// No provider is reachable.
    Unavailable,
    /// The deadline passed before the reply.
    Timeout,
    /// A manifest denies it (this module's `[imc]`, or the provider's `callers`).
    Access,
    /// The provider faulted or failed.
    ProviderFailed,
    /// A quota is exceeded.
    NoMem,
    /// Not a subscription of this module instance.
    BadHandle,
    /// Any other failure (also: no host, on non-wasm targets).
    Other,
    /// An errno value this SDK does not know.
    Unknown(u16),
}

impl ImcError {
    /// `Ok(())` for `success`, else the error of a raw `wasi_imc` errno.
    pub fn check(errno: i32) -> Result<(), ImcError> {
        let errno = errno as u16;
        Err(match errno {
            raw::IMC_ERRNO_SUCCESS => return Ok(()),
            raw::IMC_ERRNO_INVALID_ARGUMENT => Self::InvalidArgument,
            raw::IMC_ERRNO_FAULT => Self::Fault,
            raw::IMC_ERRNO_TOO_LARGE => Self::TooLarge,
            raw::IMC_ERRNO_UNAVAILABLE => Self::Unavailable,
            raw::IMC_ERRNO_TIMEOUT => Self::Timeout,
            raw::IMC_ERRNO_ACCESS => Self::Access,
            raw::IMC_ERRNO_PROVIDER_FAILED => Self::ProviderFailed,
            raw::IMC_ERRNO_NO_MEM => Self::NoMem,
            raw::IMC_ERRNO_BAD_HANDLE => Self::BadHandle,
            raw::IMC_ERRNO_OTHER => Self::Other,
            other => Self::Unknown(other),
        })
    }
}

impl fmt::Display for ImcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(n) => write!(f, "wasi_imc errno {n}"),
            other => write!(f, "wasi_imc {other:?}"),
        }
    }
}

/// Calls `service` with `request`; the reply is written into `response` and returned.
/// `timeout_ms` 0 waits at most the module's own deadline (larger values are capped at it).
pub fn call<'a>(service: &str, request: &[u8], response: &'a mut [u8], timeout_ms: u32)
    -> Result<&'a [u8], ImcError> {
    let mut len: raw::Size = 0;
    ImcError::check(import_call!(
        raw::IMC_ERRNO_OTHER,
        raw::call(service.as_ptr() as i32, service.len() as i32, request.as_ptr() as i32,
                  request.len() as i32, response.as_mut_ptr() as i32, response.len() as i32,
                  timeout_ms as i32, &mut len as *mut raw::Size as i32)
    ))?;
    response.get(..len as usize).ok_or(ImcError::TooLarge)
}

/// Publishes `data` on this module's topic `topic` (subscribers name it `<module>.<topic>`).
pub fn publish(topic: &str, data: &[u8]) -> Result<(), ImcError> {
    ImcError::check(import_call!(
        raw::IMC_ERRNO_OTHER,
        raw::publish(topic.as_ptr() as i32, topic.len() as i32, data.as_ptr() as i32,
                     data.len() as i32)
    ))
}

/// A subscription to one topic (`<module>.<topic>`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subscription(raw::Subscription);

/// Subscribes to `topic`, which this module's `[imc] subscribe` must list.
pub fn subscribe(topic: &str) -> Result<Subscription, ImcError> {
    let mut handle: raw::Subscription = 0;
    ImcError::check(import_call!(
        raw::IMC_ERRNO_OTHER,
        raw::subscribe(topic.as_ptr() as i32, topic.len() as i32,
                       &mut handle as *mut raw::Subscription as i32)
    ))?;
    Ok(Subscription(handle))
}

impl Subscription {
    /// Takes the oldest queued publication into `buf` (`Ok(None)` when there is none;
    /// `Err(TooLarge)` leaves it queued).
    pub fn receive<'a>(&self, buf: &'a mut [u8]) -> Result<Option<&'a [u8]>, ImcError> {
        let mut len: raw::Size = 0;
        ImcError::check(import_call!(
            raw::IMC_ERRNO_OTHER,
            raw::receive(self.0 as i32, buf.as_mut_ptr() as i32, buf.len() as i32,
                         &mut len as *mut raw::Size as i32)
        ))?;
        match len as usize {
            0 => Ok(None),
            n => buf.get(..n).map(Some).ok_or(ImcError::TooLarge),
        }
    }
}

/// The id the kernel gave an offered service (passed to [`Serve::serve`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServiceId(pub u32);

struct ServeBuffer(UnsafeCell<[u8; SERVE_BUFFER]>);

// SAFETY: a wasm32-unknown-unknown instance is single-threaded; the kernel writes the buffer
// only while the module is not running, and `run_serve` is never re-entered.
unsafe impl Sync for ServeBuffer {}

static SERVE: ServeBuffer = ServeBuffer(UnsafeCell::new([0; SERVE_BUFFER]));

/// Serves `service` (listed in `[imc] offer`) from this module's serve buffer. The module
/// must export `imc_serve` (`export_driver!(App, serve)`).
pub fn offer(service: &str) -> Result<ServiceId, ImcError> {
    let mut id: raw::ServiceId = 0;
    ImcError::check(import_call!(
        raw::IMC_ERRNO_OTHER,
        raw::offer(service.as_ptr() as i32, service.len() as i32, SERVE.0.get() as i32,
                   SERVE_BUFFER as i32, &mut id as *mut raw::ServiceId as i32)
    ))?;
    Ok(ServiceId(id))
}

/// Offers the service named by config `service` (e.g. "bme280.reading"; the manifest's
/// `[imc] offer` must list it); without the key nothing is offered (`Ok(None)`).
pub fn offer_configured() -> Result<Option<ServiceId>, crate::Error> {
    let mut buf = [0u8; 64];
    match config::get("service", &mut buf)? {
        Some(name) => Ok(Some(offer(name)?)),
        None => Ok(None),
    }
}

/// The newest reading a sensor driver reported, kept (CBOR, as reported) to answer its
/// service: [`keep`](Self::keep) it in `poll` before `send`, [`copy_to`](Self::copy_to)
/// the reply in [`Serve::serve`].
pub struct LatestReading {
    buf: [u8; CAPACITY],
    len: usize,
}

impl Default for LatestReading {
    fn default() -> Self {
        Self::new()
    }
}

impl LatestReading {
    /// No reading yet.
    pub const fn new() -> Self {
        Self { buf: [0; CAPACITY], len: 0 }
    }

    /// Keeps `report`'s encoding as the newest reading.
    pub fn keep(&mut self, report: &mut Report) -> Result<(), DriverError> {
        let data = report.encoded()?;
        self.buf[..data.len()].copy_from_slice(data);
        self.len = data.len();
        Ok(())
    }

    /// Copies the newest reading into `reply` and returns its length; `Unavailable` before
    /// the first one, `TooLarge` if `reply` is too small.
    pub fn copy_to(&self, reply: &mut [u8]) -> Result<usize, ImcError> {
        if self.len == 0 {
            return Err(ImcError::Unavailable);
        }
        let out = reply.get_mut(..self.len).ok_or(ImcError::TooLarge)?;
        out.copy_from_slice(&self.buf[..self.len]);
        Ok(self.len)
    }
}

/// A driver that answers requests for the services it offered.
pub trait Serve {
    /// Why a request failed; logged with `{:?}`.
    type Error: fmt::Debug;
    /// Answers one request for `service`: writes the reply into `reply` and returns its length.
    fn serve(&mut self, service: ServiceId, request: &[u8], reply: &mut [u8])
        -> Result<usize, Self::Error>;
}

#[doc(hidden)]
pub fn run_serve<D: Driver + Serve>(slot: &Slot<D>) -> i32 {
    // SAFETY: see `ServeBuffer`; no other reference to the buffer is alive during the call.
    let buf = unsafe { &mut *SERVE.0.get() };
    let id = u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]);
    let n = u32::from_le_bytes([buf[4], buf[5], buf[6], buf[7]]) as usize;
    if n > SERVE_BUFFER - HEADER {
        return SERVE_FAILED;
    }
    let mut request = [0u8; SERVE_BUFFER - HEADER];
    request[..n].copy_from_slice(&buf[HEADER..HEADER + n]);
    let Some(driver) = slot.get_mut() else {
        return SERVE_NOT_INITIALIZED;
    };
    match driver.serve(ServiceId(id), &request[..n], &mut buf[HEADER..]) {
        Ok(len) if len <= SERVE_BUFFER - HEADER => len as i32,
        Ok(_) => SERVE_FAILED,
        Err(err) => {
            crate::log::log_fmt(crate::log::Level::Error, format_args!("serve failed: {err:?}"));
            SERVE_FAILED
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latest_reading_serves_the_newest_report() {
        let mut last = LatestReading::new();
        let mut reply = [0u8; 32];
        assert_eq!(last.copy_to(&mut reply), Err(ImcError::Unavailable));

        last.keep(&mut Report::new().u32("n", 1)).unwrap();
        last.keep(&mut Report::new().u32("n", 2)).unwrap();
        let expect: &[u8] = &[0xa1, 0x61, b'n', 0x02];
        assert_eq!(last.copy_to(&mut reply), Ok(expect.len()));
        assert_eq!(&reply[..expect.len()], expect);

        let mut small = [0xeeu8; 3];
        assert_eq!(last.copy_to(&mut small), Err(ImcError::TooLarge));
        assert_eq!(small, [0xee; 3], "nothing is written into a buffer that is too small");
    }
}
