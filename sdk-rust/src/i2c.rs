//! I2C over `wasi_i2c` (`witx/wasi_i2c.witx`), with embedded-hal 1.0's `I2c` trait.
//!
//! [`I2cBus::open`] opens a bus by its granted name ("i2c-1"); dropping the bus closes it.
//! On the wire, `transaction(addr, ops)` is one bus transaction: START, address+R/W and data
//! for each run of same-kind operations (a repeated START between runs), one STOP; `read`,
//! `write` and `write_read` are its one- and two-operation forms (each a single host call).
//! Addresses: `u8` = 7-bit ([`SevenBitAddress`]), `u16` = 10-bit ([`TenBitAddress`]), as in
//! embedded-hal; out-of-range addresses fail with [`Error::InvalidArgument`] before any call.
//! A transaction holds at most [`MAX_OPERATIONS`] operations (lowered on the stack).
//! [`open_configured`] and [`configured_address`] read the driver's `bus`/`address` config.

use core::fmt;

pub use embedded_hal::i2c::{
    ErrorKind, ErrorType, I2c, NoAcknowledgeSource, Operation, SevenBitAddress, TenBitAddress,
};

use crate::config::{self, ConfigError, ConfigErrorKind};
use crate::raw::wasi_i2c as raw;

/// The most operations one [`I2cBus::transaction`] may carry.
pub const MAX_OPERATIONS: usize = 16;

/// A target address and how it goes on the wire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Address {
    /// 7-bit address, 0x00–0x7f.
    SevenBit(u8),
    /// 10-bit address, 0x000–0x3ff.
    TenBit(u16),
}

impl Address {
    /// `(address, mode)` as the imports take them; checks the range.
    fn lower(self) -> Result<(i32, i32), Error> {
        match self {
            Address::SevenBit(a) if a <= 0x7f => Ok((a as i32, raw::ADDRESS_MODE_SEVEN_BIT as i32)),
            Address::TenBit(a) if a <= 0x3ff => Ok((a as i32, raw::ADDRESS_MODE_TEN_BIT as i32)),
            _ => Err(Error::InvalidArgument),
        }
    }
}

impl From<SevenBitAddress> for Address {
    fn from(a: SevenBitAddress) -> Self {
        Address::SevenBit(a)
    }
}

impl From<TenBitAddress> for Address {
    fn from(a: TenBitAddress) -> Self {
        Address::TenBit(a)
    }
}

/// An error kind of a `wasi_i2c` call (`$i2c_errno`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    /// Misplaced START or STOP seen on the bus.
    Bus,
    /// Lost arbitration to another controller.
    ArbitrationLoss,
    /// The target did not acknowledge its address.
    NackAddress,
    /// The target did not acknowledge a data byte.
    NackData,
    /// Not acknowledged, unknown which byte.
    NackUnknown,
    /// The controller's receive buffer overran.
    Overrun,
    /// The transaction did not complete in time.
    Timeout,
    /// The controller cannot express this transaction (also: no host, on non-wasm targets).
    NotSupported,
    /// The driver's grant does not allow this bus or address.
    Access,
    /// No bus of that name.
    NoSuchBus,
    /// Argument out of range (address width, empty transaction).
    InvalidArgument,
    /// A pointer or length outside the driver's memory.
    Fault,
    /// Not an open bus of this driver.
    BadHandle,
    /// Over the driver's quota (transfer size, open handles, [`MAX_OPERATIONS`]).
    NoMem,
    /// Any other failure.
    Other,
    /// An errno value this SDK does not know.
    Unknown(u16),
}

impl Error {
    /// `Ok(())` for `success`, else the error of a raw `wasi_i2c` errno.
    pub fn check(errno: i32) -> Result<(), Error> {
        let errno = errno as u16;
        Err(match errno {
            raw::I2C_ERRNO_SUCCESS => return Ok(()),
            raw::I2C_ERRNO_BUS => Self::Bus,
            raw::I2C_ERRNO_ARBITRATION_LOSS => Self::ArbitrationLoss,
            raw::I2C_ERRNO_NACK_ADDRESS => Self::NackAddress,
            raw::I2C_ERRNO_NACK_DATA => Self::NackData,
            raw::I2C_ERRNO_NACK_UNKNOWN => Self::NackUnknown,
            raw::I2C_ERRNO_OVERRUN => Self::Overrun,
            raw::I2C_ERRNO_TIMEOUT => Self::Timeout,
            raw::I2C_ERRNO_NOT_SUPPORTED => Self::NotSupported,
            raw::I2C_ERRNO_ACCESS => Self::Access,
            raw::I2C_ERRNO_NO_SUCH_BUS => Self::NoSuchBus,
            raw::I2C_ERRNO_INVALID_ARGUMENT => Self::InvalidArgument,
            raw::I2C_ERRNO_FAULT => Self::Fault,
            raw::I2C_ERRNO_BAD_HANDLE => Self::BadHandle,
            raw::I2C_ERRNO_NO_MEM => Self::NoMem,
            raw::I2C_ERRNO_OTHER => Self::Other,
            other => Self::Unknown(other),
        })
    }

    /// The WITX case name (`"nack_address"`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Bus => "bus",
            Self::ArbitrationLoss => "arbitration_loss",
            Self::NackAddress => "nack_address",
            Self::NackData => "nack_data",
            Self::NackUnknown => "nack_unknown",
            Self::Overrun => "overrun",
            Self::Timeout => "timeout",
            Self::NotSupported => "not_supported",
            Self::Access => "access",
            Self::NoSuchBus => "no_such_bus",
            Self::InvalidArgument => "invalid_argument",
            Self::Fault => "fault",
            Self::BadHandle => "bad_handle",
            Self::NoMem => "no_mem",
            Self::Other => "other",
            Self::Unknown(_) => "unknown",
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unknown(n) => write!(f, "i2c errno {n}"),
            _ => write!(f, "i2c {}", self.name()),
        }
    }
}

impl embedded_hal::i2c::Error for Error {
    fn kind(&self) -> ErrorKind {
        match self {
            Self::Bus => ErrorKind::Bus,
            Self::ArbitrationLoss => ErrorKind::ArbitrationLoss,
            Self::NackAddress => ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address),
            Self::NackData => ErrorKind::NoAcknowledge(NoAcknowledgeSource::Data),
            Self::NackUnknown => ErrorKind::NoAcknowledge(NoAcknowledgeSource::Unknown),
            Self::Overrun => ErrorKind::Overrun,
            _ => ErrorKind::Other,
        }
    }
}

/// Lowers embedded-hal operations into the spec's `$operation` records.
fn lower_operations(
    ops: &mut [Operation<'_>],
    out: &mut [raw::Operation; MAX_OPERATIONS],
) -> Result<usize, Error> {
    if ops.len() > MAX_OPERATIONS {
        return Err(Error::NoMem);
    }
    for (slot, op) in out.iter_mut().zip(ops.iter_mut()) {
        *slot = match op {
            Operation::Read(buf) => raw::Operation {
                kind: raw::OP_KIND_READ,
                buf: buf.as_mut_ptr(),
                buf_len: buf.len() as raw::Size,
            },
            // The host only reads a write operation's buffer.
            Operation::Write(data) => raw::Operation {
                kind: raw::OP_KIND_WRITE,
                buf: data.as_ptr() as *mut u8,
                buf_len: data.len() as raw::Size,
            },
        };
    }
    Ok(ops.len())
}

/// Opens the bus named by the configuration key `bus` (`default_bus` when not set).
pub fn open_configured(default_bus: &str) -> Result<I2cBus, crate::Error> {
    let mut name = [0u8; 64];
    let bus = config::str_or("bus", &mut name, default_bus)?;
    Ok(I2cBus::open(bus)?)
}

/// The 7-bit target address from the configuration key `address` (`default` when not set);
/// values above 0x7f are an error naming the key.
pub fn configured_address(default: u8) -> Result<u8, ConfigError> {
    let address = config::u8_or("address", default)?;
    if address > 0x7f {
        return Err(ConfigError { key: "address", kind: ConfigErrorKind::OutOfRange });
    }
    Ok(address)
}

const EMPTY_OP: raw::Operation =
    raw::Operation { kind: raw::OP_KIND_WRITE, buf: core::ptr::null_mut(), buf_len: 0 };

/// An open I2C bus; closed on drop.
#[derive(Debug)]
pub struct I2cBus {
    handle: raw::Bus,
}

impl I2cBus {
    /// Opens the bus called `name` (e.g. "i2c-1"); the name must be granted to the driver.
    pub fn open(name: &str) -> Result<Self, Error> {
        let mut handle: raw::Bus = 0;
        Error::check(import_call!(
            raw::I2C_ERRNO_NOT_SUPPORTED,
            raw::open(name.as_ptr() as i32, name.len() as i32, &mut handle as *mut raw::Bus as i32)
        ))?;
        Ok(Self { handle })
    }

    /// The raw handle (for calls the safe layer lacks).
    pub fn handle(&self) -> raw::Bus {
        self.handle
    }

    /// Runs `ops` as one transaction with the 7-bit target `address`.
    pub fn transaction(&mut self, address: u8, ops: &mut [Operation<'_>]) -> Result<(), Error> {
        self.transaction_at(Address::SevenBit(address), ops)
    }

    /// Reads `buf.len()` bytes from the 7-bit target `address`.
    pub fn read(&mut self, address: u8, buf: &mut [u8]) -> Result<(), Error> {
        self.read_at(Address::SevenBit(address), buf)
    }

    /// Writes `data` to the 7-bit target `address`.
    pub fn write(&mut self, address: u8, data: &[u8]) -> Result<(), Error> {
        self.write_at(Address::SevenBit(address), data)
    }

    /// Writes `data`, then reads into `buf` after a repeated START (the register read).
    pub fn write_read(&mut self, address: u8, data: &[u8], buf: &mut [u8]) -> Result<(), Error> {
        self.write_read_at(Address::SevenBit(address), data, buf)
    }

    /// [`transaction`](Self::transaction) for a 7- or 10-bit address.
    pub fn transaction_at(&mut self, address: Address, ops: &mut [Operation<'_>]) -> Result<(), Error> {
        let (addr, mode) = address.lower()?;
        let mut lowered = [EMPTY_OP; MAX_OPERATIONS];
        let n = lower_operations(ops, &mut lowered)?;
        Error::check(import_call!(
            raw::I2C_ERRNO_NOT_SUPPORTED,
            raw::transaction(self.handle as i32, addr, mode, lowered.as_ptr() as i32, n as i32)
        ))
    }

    /// [`read`](Self::read) for a 7- or 10-bit address.
    pub fn read_at(&mut self, address: Address, buf: &mut [u8]) -> Result<(), Error> {
        let (addr, mode) = address.lower()?;
        Error::check(import_call!(
            raw::I2C_ERRNO_NOT_SUPPORTED,
            raw::read(self.handle as i32, addr, mode, buf.as_mut_ptr() as i32, buf.len() as i32)
        ))
    }

    /// [`write`](Self::write) for a 7- or 10-bit address.
    pub fn write_at(&mut self, address: Address, data: &[u8]) -> Result<(), Error> {
        let (addr, mode) = address.lower()?;
        Error::check(import_call!(
            raw::I2C_ERRNO_NOT_SUPPORTED,
            raw::write(self.handle as i32, addr, mode, data.as_ptr() as i32, data.len() as i32)
        ))
    }

    /// [`write_read`](Self::write_read) for a 7- or 10-bit address.
    pub fn write_read_at(&mut self, address: Address, data: &[u8], buf: &mut [u8]) -> Result<(), Error> {
        let (addr, mode) = address.lower()?;
        Error::check(import_call!(
            raw::I2C_ERRNO_NOT_SUPPORTED,
            raw::write_read(
                self.handle as i32,
                addr,
                mode,
                data.as_ptr() as i32,
                data.len() as i32,
                buf.as_mut_ptr() as i32,
                buf.len() as i32,
            )
        ))
    }
}

impl Drop for I2cBus {
    fn drop(&mut self) {
        // Nothing useful to do if the host already forgot the handle.
        let _ = import_call!(raw::I2C_ERRNO_NOT_SUPPORTED, raw::close(self.handle as i32));
    }
}

impl ErrorType for I2cBus {
    type Error = Error;
}

macro_rules! impl_i2c {
    ($addr:ty) => {
        impl I2c<$addr> for I2cBus {
            fn transaction(&mut self, address: $addr, ops: &mut [Operation<'_>]) -> Result<(), Error> {
                self.transaction_at(address.into(), ops)
            }
            fn read(&mut self, address: $addr, buf: &mut [u8]) -> Result<(), Error> {
                self.read_at(address.into(), buf)
            }
            fn write(&mut self, address: $addr, data: &[u8]) -> Result<(), Error> {
                self.write_at(address.into(), data)
            }
            fn write_read(&mut self, address: $addr, data: &[u8], buf: &mut [u8]) -> Result<(), Error> {
                self.write_read_at(address.into(), data, buf)
            }
        }
    };
}

impl_i2c!(SevenBitAddress);
impl_i2c!(TenBitAddress);

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal::i2c::Error as _;

    #[test]
    fn every_errno_maps_to_its_kind() {
        use ErrorKind::*;
        use NoAcknowledgeSource as Nack;
        let cases = [
            (raw::I2C_ERRNO_BUS, Error::Bus, Bus),
            (raw::I2C_ERRNO_ARBITRATION_LOSS, Error::ArbitrationLoss, ArbitrationLoss),
            (raw::I2C_ERRNO_NACK_ADDRESS, Error::NackAddress, NoAcknowledge(Nack::Address)),
            (raw::I2C_ERRNO_NACK_DATA, Error::NackData, NoAcknowledge(Nack::Data)),
            (raw::I2C_ERRNO_NACK_UNKNOWN, Error::NackUnknown, NoAcknowledge(Nack::Unknown)),
            (raw::I2C_ERRNO_OVERRUN, Error::Overrun, Overrun),
            (raw::I2C_ERRNO_TIMEOUT, Error::Timeout, Other),
            (raw::I2C_ERRNO_NOT_SUPPORTED, Error::NotSupported, Other),
            (raw::I2C_ERRNO_ACCESS, Error::Access, Other),
            (raw::I2C_ERRNO_NO_SUCH_BUS, Error::NoSuchBus, Other),
            (raw::I2C_ERRNO_INVALID_ARGUMENT, Error::InvalidArgument, Other),
            (raw::I2C_ERRNO_FAULT, Error::Fault, Other),
            (raw::I2C_ERRNO_BAD_HANDLE, Error::BadHandle, Other),
            (raw::I2C_ERRNO_NO_MEM, Error::NoMem, Other),
            (raw::I2C_ERRNO_OTHER, Error::Other, Other),
        ];
        assert_eq!(Error::check(raw::I2C_ERRNO_SUCCESS as i32), Ok(()));
        for (errno, err, kind) in cases {
            assert_eq!(Error::check(errno as i32), Err(err), "{}", err.name());
            assert_eq!(err.kind(), kind, "{}", err.name());
        }
        assert_eq!(Error::check(200), Err(Error::Unknown(200)));
        assert_eq!(Error::Unknown(200).kind(), Other);
    }

    #[test]
    fn addresses_are_range_checked() {
        assert_eq!(Address::SevenBit(0x76).lower(), Ok((0x76, raw::ADDRESS_MODE_SEVEN_BIT as i32)));
        assert_eq!(Address::SevenBit(0x80).lower(), Err(Error::InvalidArgument));
        assert_eq!(Address::TenBit(0x3ff).lower(), Ok((0x3ff, raw::ADDRESS_MODE_TEN_BIT as i32)));
        assert_eq!(Address::TenBit(0x400).lower(), Err(Error::InvalidArgument));
        assert_eq!(Address::from(0x50u8), Address::SevenBit(0x50));
        assert_eq!(Address::from(0x50u16), Address::TenBit(0x50));
    }

    #[test]
    fn operations_lower_in_order_with_their_buffers() {
        let reg = [0xf7u8];
        let mut data = [0u8; 8];
        let ptr = data.as_mut_ptr();
        let mut ops = [Operation::Write(&reg), Operation::Read(&mut data)];
        let mut out = [EMPTY_OP; MAX_OPERATIONS];
        assert_eq!(lower_operations(&mut ops, &mut out), Ok(2));
        assert_eq!(out[0].kind, raw::OP_KIND_WRITE);
        assert_eq!(out[0].buf as *const u8, reg.as_ptr());
        assert_eq!(out[0].buf_len, 1);
        assert_eq!(out[1].kind, raw::OP_KIND_READ);
        assert_eq!(out[1].buf, ptr);
        assert_eq!(out[1].buf_len, 8);
    }

    #[test]
    fn too_many_operations_is_no_mem() {
        let byte = [0u8];
        let mut ops: [Operation<'_>; MAX_OPERATIONS + 1] = core::array::from_fn(|_| Operation::Write(&byte));
        let mut out = [EMPTY_OP; MAX_OPERATIONS];
        assert_eq!(lower_operations(&mut ops, &mut out), Err(Error::NoMem));
    }

    #[test]
    fn without_a_host_calls_fail_cleanly() {
        assert_eq!(I2cBus::open("i2c-1").unwrap_err(), Error::NotSupported);
    }
}
