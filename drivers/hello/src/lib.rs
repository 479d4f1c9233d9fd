//! `hello`: the smallest driver, proving the build route, the driver ABI and the SDK's
//! transaction path.
//!
//! Config: `bus` (default "i2c-1"), `address` (default 0x50), `ten_bit` (bool, default
//! false: `address` is then a 10-bit address, up to 0x3ff).
//! `init` opens the bus. Each `poll` runs one `transaction` of a single 1-byte read — on the
//! wire: START, address+R (10-bit: the two-byte address form), one data byte NACKed by the
//! controller, STOP — and reports `{"address": <addr>, "byte": <value>}`.
#![cfg_attr(target_arch = "wasm32", no_std)]

use wasi_hw_sdk::config::{self, ConfigError, ConfigErrorKind};
use wasi_hw_sdk::i2c::{self, Address, I2cBus, Operation};
use wasi_hw_sdk::report::Report;
use wasi_hw_sdk::Driver;

/// Target address when `address` is not configured.
pub const DEFAULT_ADDRESS: u8 = 0x50;

/// The target address from config `address` and `ten_bit`.
fn configured_target() -> Result<Address, ConfigError> {
    if !config::bool_or("ten_bit", false)? {
        return Ok(Address::SevenBit(i2c::configured_address(DEFAULT_ADDRESS)?));
    }
    match config::u16_or("address", u16::from(DEFAULT_ADDRESS))? {
        a @ 0..=0x3ff => Ok(Address::TenBit(a)),
        _ => Err(ConfigError { key: "address", kind: ConfigErrorKind::OutOfRange }),
    }
}

/// The driver instance: the open bus and the target.
pub struct Hello {
    bus: I2cBus,
    target: Address,
}

impl Driver for Hello {
    type Error = wasi_hw_sdk::Error;

    fn init() -> Result<Self, Self::Error> {
        let target = configured_target()?;
        let bus = i2c::open_configured("i2c-1")?;
        wasi_hw_sdk::info!("hello: reading {target:?}");
        Ok(Hello { bus, target })
    }

    fn poll(&mut self) -> Result<(), Self::Error> {
        let mut byte = [0u8; 1];
        self.bus.transaction_at(self.target, &mut [Operation::Read(&mut byte)])?;
        let address = match self.target {
            Address::SevenBit(a) => u32::from(a),
            Address::TenBit(a) => u32::from(a),
        };
        Report::new().u32("address", address).u32("byte", u32::from(byte[0])).send()?;
        Ok(())
    }
}

wasi_hw_sdk::export_driver!(Hello);
