//! The driver ABI (docs/design.md): a driver exports `memory`, `init() -> i32` and
//! `poll() -> i32`. Implement [`Driver`] and invoke [`export_driver!`](crate::export_driver):
//!
//! ```ignore
//! struct Thermo { /* bus, device state */ }
//! impl wasi_hw_sdk::Driver for Thermo {
//!     type Error = MyError;              // anything `Debug`: it is logged on failure
//!     fn init() -> Result<Self, MyError> { /* read config, open the bus, set the chip up */ }
//!     fn poll(&mut self) -> Result<(), MyError> { /* read, then Report::new()...send() */ }
//! }
//! wasi_hw_sdk::export_driver!(Thermo);
//! ```
//!
//! A driver that serves `wasi_imc` services also implements [`crate::imc::Serve`] and uses
//! `export_driver!(App, serve)`, which adds the `imc_serve` export.
//!
//! Return codes: 0 success; 1 `init`/`poll` returned an error (logged at error level with its
//! `Debug` form); 2 `poll` was called without a successful `init`.
//!
//! Also here: [`DriverError`], the error kinds of the `wasi_driver` calls.

use core::cell::UnsafeCell;
use core::fmt;

use crate::raw::wasi_driver as raw;

/// `init`/`poll` result: success.
pub const OK: i32 = 0;
/// `init`/`poll` result: the driver's code returned an error (it was logged).
pub const FAILED: i32 = 1;
/// `poll` result: there is no driver instance (`init` was not called or failed).
pub const NOT_INITIALIZED: i32 = 2;

/// A device driver run by the kernel: `init` once, then `poll` on the manifest's interval.
pub trait Driver: Sized {
    /// Why `init` or `poll` failed; logged with `{:?}`.
    type Error: fmt::Debug;
    /// Reads the configuration, opens buses/devices and configures the chip.
    fn init() -> Result<Self, Self::Error>;
    /// Takes one reading and reports it (or does one unit of work).
    fn poll(&mut self) -> Result<(), Self::Error>;
}

/// Exports `init` and `poll` (the driver ABI) for a type implementing [`Driver`].
///
/// Only on wasm32; on other targets it expands to nothing, so the crate's native unit tests
/// link normally.
#[macro_export]
macro_rules! export_driver {
    // The exports themselves: `init`, `poll` and any further `$extra` items, around one
    // instance slot.
    (@exports $driver:ty; $($extra:item)*) => {
        #[cfg(target_arch = "wasm32")]
        const _: () = {
            static INSTANCE: $crate::driver::Slot<$driver> = $crate::driver::Slot::new();

            #[unsafe(no_mangle)]
            pub extern "C" fn init() -> i32 {
                $crate::driver::run_init(&INSTANCE)
            }

            #[unsafe(no_mangle)]
            pub extern "C" fn poll() -> i32 {
                $crate::driver::run_poll(&INSTANCE)
            }

            $($extra)*
        };
    };
    ($driver:ty) => {
        $crate::export_driver!(@exports $driver;);
    };
    // `export_driver!(App, serve)`: also `imc_serve`, answering requests for the services the
    // driver offered (`App: imc::Serve`, see `wasi_hw_sdk::imc`).
    ($driver:ty, serve) => {
        $crate::export_driver!(@exports $driver;
            #[unsafe(no_mangle)]
            pub extern "C" fn imc_serve() -> i32 {
                $crate::imc::run_serve(&INSTANCE)
            }
        );
    };
}

/// Storage for the one driver instance of a wasm module (used by [`export_driver!`]).
#[doc(hidden)]
pub struct Slot<T>(UnsafeCell<Option<T>>);

// SAFETY: a wasm32-unknown-unknown module instance is single-threaded and the host never
// re-enters `init`/`poll` while one is running (host calls do not call back into the guest).
unsafe impl<T> Sync for Slot<T> {}

impl<T> Slot<T> {
    #[doc(hidden)]
    pub const fn new() -> Self {
        Self(UnsafeCell::new(None))
    }

    /// The instance, if `init` succeeded (for the other exports of `export_driver!`).
    #[doc(hidden)]
    #[allow(clippy::mut_from_ref)]
    pub fn get_mut(&self) -> Option<&mut T> {
        // SAFETY: see the Sync impl: exports are never re-entered, so no other reference lives.
        unsafe { &mut *self.0.get() }.as_mut()
    }
}

#[doc(hidden)]
pub fn run_init<D: Driver>(slot: &Slot<D>) -> i32 {
    // SAFETY: see `Slot`'s Sync impl: no other reference to the contents is alive.
    let cell = unsafe { &mut *slot.0.get() };
    *cell = None; // a second init starts over (and drops the old instance: buses close)
    match D::init() {
        Ok(driver) => {
            *cell = Some(driver);
            OK
        }
        Err(err) => {
            crate::log::log_fmt(crate::log::Level::Error, format_args!("init failed: {err:?}"));
            FAILED
        }
    }
}

#[doc(hidden)]
pub fn run_poll<D: Driver>(slot: &Slot<D>) -> i32 {
    // SAFETY: as in `run_init`.
    match unsafe { &mut *slot.0.get() } {
        None => {
            crate::log::error("poll called without a successful init");
            NOT_INITIALIZED
        }
        Some(driver) => match driver.poll() {
            Ok(()) => OK,
            Err(err) => {
                crate::log::log_fmt(crate::log::Level::Error, format_args!("poll failed: {err:?}"));
                FAILED
            }
        },
    }
}

/// An error kind of a `wasi_driver` call (`$driver_errno` in `witx/wasi_driver.witx`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DriverError {
    /// An argument is invalid (bad UTF-8, enum out of range, malformed CBOR).
    InvalidArgument,
    /// A pointer or length points outside the driver's memory.
    Fault,
    /// The buffer is too small (or a report does not fit the SDK's report buffer).
    TooLarge,
    /// No such configuration key.
    NotFound,
    /// The request exceeds the driver's quota.
    NoMem,
    /// Any other failure (also: no host, on non-wasm targets).
    Other,
    /// Denied: memory sharing not allowed between these drivers, no live grant, the grant
    /// lacks the right, or the access leaves the granted region.
    Access,
    /// Not a live grant this driver instance made.
    BadHandle,
    /// An errno value this SDK does not know.
    Unknown(u16),
}

impl DriverError {
    /// `Ok(())` for `success`, else the error of a raw `wasi_driver` errno.
    pub fn check(errno: i32) -> Result<(), DriverError> {
        let errno = errno as u16;
        Err(match errno {
            raw::DRIVER_ERRNO_SUCCESS => return Ok(()),
            raw::DRIVER_ERRNO_INVALID_ARGUMENT => Self::InvalidArgument,
            raw::DRIVER_ERRNO_FAULT => Self::Fault,
            raw::DRIVER_ERRNO_TOO_LARGE => Self::TooLarge,
            raw::DRIVER_ERRNO_NOT_FOUND => Self::NotFound,
            raw::DRIVER_ERRNO_NO_MEM => Self::NoMem,
            raw::DRIVER_ERRNO_OTHER => Self::Other,
            raw::DRIVER_ERRNO_ACCESS => Self::Access,
            raw::DRIVER_ERRNO_BAD_HANDLE => Self::BadHandle,
            other => Self::Unknown(other),
        })
    }

    /// The WITX case name (`"too_large"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::InvalidArgument => "invalid_argument",
            Self::Fault => "fault",
            Self::TooLarge => "too_large",
            Self::NotFound => "not_found",
            Self::NoMem => "no_mem",
            Self::Other => "other",
            Self::Access => "access",
            Self::BadHandle => "bad_handle",
            Self::Unknown(_) => "unknown",
        }
    }
}

impl fmt::Display for DriverError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(n) => write!(f, "wasi_driver errno {n}"),
            _ => f.write_str(self.name()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errno_mapping_covers_the_spec() {
        assert_eq!(DriverError::check(raw::DRIVER_ERRNO_SUCCESS as i32), Ok(()));
        let cases = [
            (raw::DRIVER_ERRNO_INVALID_ARGUMENT, DriverError::InvalidArgument),
            (raw::DRIVER_ERRNO_FAULT, DriverError::Fault),
            (raw::DRIVER_ERRNO_TOO_LARGE, DriverError::TooLarge),
            (raw::DRIVER_ERRNO_NOT_FOUND, DriverError::NotFound),
            (raw::DRIVER_ERRNO_NO_MEM, DriverError::NoMem),
            (raw::DRIVER_ERRNO_OTHER, DriverError::Other),
            (raw::DRIVER_ERRNO_ACCESS, DriverError::Access),
            (raw::DRIVER_ERRNO_BAD_HANDLE, DriverError::BadHandle),
        ];
        for (errno, err) in cases {
            assert_eq!(DriverError::check(errno as i32), Err(err));
        }
        assert_eq!(DriverError::check(99), Err(DriverError::Unknown(99)));
    }

    struct Counter(u32);
    impl Driver for Counter {
        type Error = &'static str;
        fn init() -> Result<Self, &'static str> {
            Ok(Counter(0))
        }
        fn poll(&mut self) -> Result<(), &'static str> {
            self.0 += 1;
            if self.0 > 2 { Err("third poll") } else { Ok(()) }
        }
    }

    #[test]
    fn slot_runs_init_then_poll() {
        let slot: Slot<Counter> = Slot::new();
        assert_eq!(run_poll(&slot), NOT_INITIALIZED);
        assert_eq!(run_init(&slot), OK);
        assert_eq!(run_poll(&slot), OK);
        assert_eq!(run_poll(&slot), OK);
        assert_eq!(run_poll(&slot), FAILED);
    }
}
