//! `usb-echo`: exercises the wasi-hw echo device (default 1209:0001) end to end.
//!
//! `init` finds the device (config `vid`, `pid`, optional `serial`), checks its device and
//! configuration descriptors and strings, selects configuration 1 if needed and claims the
//! vendor interface. Each `poll` runs one [`echo::Cycle`] — control OUT/IN, a STALL check,
//! bulk echo of 1, 64, 512 and 4096 bytes, an interrupt IN — and reports
//! `{cycles, round_trips, bytes, errors, counter, ok, product, serial}` as CBOR. A failed
//! check is reported (`ok: false`, `failure`) and makes `poll` return an error.
//! Config `timeout_ms` (default 1000) bounds each transfer.
#![cfg_attr(not(test), no_std)]

pub mod echo;

use wasi_hw_sdk::config::{self, ConfigError};
use wasi_hw_sdk::report::Report;
use wasi_hw_sdk::usb::{self, descriptors::class, request, DeviceHandle, Filter};
use wasi_hw_sdk::{info, DriverError, FmtBuf};

use echo::{Cycle, EchoPort, Endpoints, Failure, Totals};

/// Why `init` or `poll` failed.
#[derive(Debug)]
pub enum Error {
    Config(ConfigError),
    Usb(&'static str, usb::Error),
    /// No granted device matched the filter.
    NotFound { vid: u16, pid: u16 },
    /// The device is not the echo device it claims to be.
    UnexpectedDevice(&'static str),
    Check(Failure),
    Report(DriverError),
}

impl From<ConfigError> for Error {
    fn from(e: ConfigError) -> Self {
        Error::Config(e)
    }
}

fn step<T>(what: &'static str, r: usb::Result<T>) -> Result<T, Error> {
    r.map_err(|e| Error::Usb(what, e))
}

/// The opened echo device.
pub struct Port {
    handle: DeviceHandle,
    endpoints: Endpoints,
    timeout_ms: u32,
}

impl EchoPort for Port {
    fn vendor_out(&mut self, req: u8, data: &[u8]) -> usb::Result<usize> {
        let rt = request::request_type(false, request::TYPE_VENDOR, request::RECIPIENT_DEVICE);
        self.handle.write_control(rt, req, 0, 0, data, self.timeout_ms)
    }
    fn vendor_in(&mut self, req: u8, buf: &mut [u8]) -> usb::Result<usize> {
        let rt = request::request_type(true, request::TYPE_VENDOR, request::RECIPIENT_DEVICE);
        self.handle.read_control(rt, req, 0, 0, buf, self.timeout_ms)
    }
    fn bulk_out(&mut self, data: &[u8]) -> usb::Result<usize> {
        self.handle.write_bulk(self.endpoints.bulk_out, data, self.timeout_ms)
    }
    fn bulk_in(&mut self, buf: &mut [u8]) -> usb::Result<usize> {
        self.handle.read_bulk(self.endpoints.bulk_in, buf, self.timeout_ms)
    }
    fn interrupt_in(&mut self, buf: &mut [u8]) -> usb::Result<usize> {
        self.handle.read_interrupt(self.endpoints.interrupt_in, buf, self.timeout_ms)
    }
}

pub struct UsbEcho {
    port: Port,
    totals: Totals,
    product: FmtBuf<32>,
    serial: FmtBuf<32>,
}

impl wasi_hw_sdk::Driver for UsbEcho {
    type Error = Error;

    fn init() -> Result<Self, Error> {
        let vid = config::u16_or("vid", 0x1209)?;
        let pid = config::u16_or("pid", 0x0001)?;
        let timeout_ms = config::u32_or("timeout_ms", 1000)?;
        let mut serial_buf = [0u8; 64];
        let want_serial = config::get("serial", &mut serial_buf)?;

        let mut filter = Filter::new().vendor_id(vid).product_id(pid);
        if let Some(s) = want_serial {
            filter = filter.serial(s);
        }
        let list = step("list_devices", usb::DeviceList::<4>::new(&filter))?;
        let device = list.get(0).ok_or(Error::NotFound { vid, pid })?;

        let dd = step("device_descriptor", device.device_descriptor())?;
        if (dd.vendor_id, dd.product_id) != (vid, pid) {
            return Err(Error::UnexpectedDevice("device descriptor ids differ from the listing"));
        }
        if dd.num_configurations == 0 {
            return Err(Error::UnexpectedDevice("no configurations"));
        }
        let mut cfg_buf = [0u8; 256];
        let cfg = step("config_descriptor", device.config_descriptor(0, &mut cfg_buf))?;
        let iface = cfg
            .interfaces()
            .find(|i| i.class() == class::VENDOR_SPECIFIC)
            .ok_or(Error::UnexpectedDevice("no vendor-specific interface"))?;
        let endpoints = Endpoints::find(&iface).ok_or(Error::UnexpectedDevice("missing bulk/interrupt endpoint"))?;
        let (iface_number, cfg_value) = (iface.number(), cfg.value());

        let handle = step("open", device.open())?;
        let mut text = [0u8; 64];
        let product = FmtBuf::format(format_args!(
            "{}",
            step("product string", handle.read_string(dd.product_index, &mut text))?
        ));
        let serial = FmtBuf::format(format_args!(
            "{}",
            step("serial string", handle.read_string(dd.serial_number_index, &mut text))?
        ));
        if let Some(s) = want_serial {
            if serial.as_str() != s {
                return Err(Error::UnexpectedDevice("serial string differs from the filter"));
            }
        }
        if step("get_configuration", handle.active_configuration())? != cfg_value {
            step("set_configuration", handle.set_active_configuration(cfg_value))?;
        }
        step("claim_interface", handle.claim_interface(iface_number))?;
        info!("echo device {:04x}:{:04x} {} serial {} ready", vid, pid, product.as_str(), serial.as_str());
        Ok(Self { port: Port { handle, endpoints, timeout_ms }, totals: Totals::default(), product, serial })
    }

    fn poll(&mut self) -> Result<(), Error> {
        let outcome = Cycle { port: &mut self.port, totals: &mut self.totals }.run();
        let t = &self.totals;
        let mut report = Report::new()
            .u32("cycles", t.cycles)
            .u32("round_trips", t.round_trips)
            .u64("bytes", t.bytes)
            .u32("errors", t.errors)
            .bool("ok", outcome.is_ok())
            .str("product", self.product.as_str())
            .str("serial", self.serial.as_str());
        if let Some(c) = t.counter {
            report = report.u32("counter", c);
        }
        if let Err(f) = &outcome {
            report = report.str("failure", FmtBuf::<96>::format(format_args!("{f:?}")).as_str());
        }
        report.send().map_err(Error::Report)?;
        outcome.map_err(Error::Check)
    }
}

wasi_hw_sdk::export_driver!(UsbEcho);
