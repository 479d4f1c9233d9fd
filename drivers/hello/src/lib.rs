//! `hello`: the smallest driver, proving the build route and the driver ABI.
//!
//! Config: `bus` (default "i2c-1"), `address` (default 0x50).
//! `init` opens the bus. Each `poll` reads one byte from the target — on the wire:
//! START, address+R, one data byte (NACKed by the controller), STOP — and reports
//! `{"address": <addr>, "byte": <value>}`.
#![cfg_attr(target_arch = "wasm32", no_std)]

use wasi_hw_sdk::i2c::{self, I2cBus};
use wasi_hw_sdk::report::Report;
use wasi_hw_sdk::Driver;

/// Target address when `address` is not configured.
pub const DEFAULT_ADDRESS: u8 = 0x50;

/// The driver instance: the open bus and the target's address.
pub struct Hello {
    bus: I2cBus,
    address: u8,
}

impl Driver for Hello {
    type Error = wasi_hw_sdk::Error;

    fn init() -> Result<Self, Self::Error> {
        let address = i2c::configured_address(DEFAULT_ADDRESS)?;
        let bus = i2c::open_configured("i2c-1")?;
        wasi_hw_sdk::info!("hello: reading address {address:#04x}");
        Ok(Hello { bus, address })
    }

    fn poll(&mut self) -> Result<(), Self::Error> {
        let mut byte = [0u8; 1];
        self.bus.read(self.address, &mut byte)?;
        Report::new()
            .u32("address", u32::from(self.address))
            .u32("byte", u32::from(byte[0]))
            .send()?;
        Ok(())
    }
}

wasi_hw_sdk::export_driver!(Hello);
