//! `usb-echo`: exercises the wasi-hw echo device (default 1209:0001) end to end.
//!
//! `init` finds the device (config `vid`, `pid`, optional `serial`) and opens it: checks its
//! device and configuration descriptors and strings, selects its configuration if needed and
//! claims the vendor interface. Each `poll` first drains hotplug events: when the device
//! leaves, the driver reports `connected: false` until a matching device arrives, which it
//! opens the same way. While connected, one [`echo::Cycle`] runs — control OUT/IN, a STALL
//! check, bulk echo of 1, 64, 512 and 4096 bytes, an interrupt IN. The report:
//! `{connected, cycles, round_trips, bytes, errors, ok, arrivals, departures, resets,
//! serial, port, counter, failure?}` as CBOR (product, bus, address and speed are logged
//! when the device is opened). A failed check is reported
//! (`ok: false`, `failure`) and makes `poll` return an error; the driver then recovers for
//! the next cycle: it resets the device (USB port reset: the echo queue and counter start
//! over), or, when the reset is not granted, drains bulk IN until it times out.
//! Config `timeout_ms` (default 1000) bounds each transfer.
#![cfg_attr(not(test), no_std)]

pub mod echo;

use wasi_hw_sdk::config::{self, ConfigError};
use wasi_hw_sdk::report::Report;
use wasi_hw_sdk::usb::{self, descriptors::class, request, step, Device, DeviceHandle, HotplugKind, Speed, Wanted};
use wasi_hw_sdk::{info, warn, DriverError, FmtBuf};

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

wasi_hw_sdk::impl_usb_open_errors!(Error);

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

/// An opened echo device and what was learnt about it.
struct Connection {
    device: Device,
    port: Port,
    serial: FmtBuf<32>,
    port_path: usb::PortPath,
}

fn speed_name(s: Speed) -> &'static str {
    match s {
        Speed::Low => "low",
        Speed::Full => "full",
        Speed::High => "high",
        Speed::Super => "super",
        Speed::SuperPlus => "super_plus",
        Speed::Unknown => "unknown",
    }
}

/// Check `device` is the echo device `wanted` names and open it ready for cycles (transfers
/// bounded by `timeout_ms`).
fn connect(wanted: &Wanted, timeout_ms: u32, device: Device) -> Result<Connection, Error> {
    let (vid, pid) = (wanted.vid, wanted.pid);
    let info = step("device_info", device.info())?;
    let port_path = step("port_path", device.port_path())?;
    let dd = step("device_descriptor", device.device_descriptor())?;
    if (dd.vendor_id, dd.product_id) != (vid, pid) || (info.vendor_id, info.product_id) != (vid, pid) {
        return Err(Error::UnexpectedDevice("device descriptor ids differ from the listing"));
    }
    if dd.num_configurations == 0 {
        return Err(Error::UnexpectedDevice("no configurations"));
    }
    let (selected, endpoints) = usb::select_interface(device, |cfg| -> Result<_, Error> {
        let iface = cfg
            .interfaces()
            .find(|i| i.class() == class::VENDOR_SPECIFIC)
            .ok_or(Error::UnexpectedDevice("no vendor-specific interface"))?;
        let endpoints = Endpoints::find(&iface).ok_or(Error::UnexpectedDevice("missing bulk/interrupt endpoint"))?;
        Ok((iface.number(), endpoints))
    })?;

    let handle = step("open", device.open())?;
    let mut text = [0u8; 64];
    let product = FmtBuf::<32>::format(format_args!("{}", step("product string", handle.read_string(dd.product_index, &mut text))?));
    let serial = FmtBuf::format(format_args!("{}", step("serial string", handle.read_string(dd.serial_number_index, &mut text))?));
    if let Some(s) = wanted.serial() {
        if serial.as_str() != s {
            return Err(Error::UnexpectedDevice("serial string differs from the filter"));
        }
    }
    handle.configure_and_claim(selected, false)?;
    info!(
        "echo device {:04x}:{:04x} {} serial {} at bus {} address {} ({} speed)",
        vid, pid, product.as_str(), serial.as_str(), info.bus_number, info.address, speed_name(info.speed)
    );
    Ok(Connection { device, port: Port { handle, endpoints, timeout_ms }, serial, port_path })
}

pub struct UsbEcho {
    wanted: Wanted,
    timeout_ms: u32,
    conn: Option<Connection>,
    totals: Totals,
    arrivals: u32,
    departures: u32,
    resets: u32,
}

impl UsbEcho {
    /// After a failed cycle: get the device back to an empty echo queue.
    fn recover(&mut self) {
        let Some(c) = &mut self.conn else { return };
        match c.port.handle.reset() {
            Ok(()) => {
                self.resets += 1;
                self.totals.counter = None; // the device's counter restarts at 0
            }
            Err(e) => {
                warn!("reset not possible ({}); draining bulk IN instead", e);
                let mut sink = [0u8; 512];
                let (ep, handle) = (c.port.endpoints.bulk_in, &c.port.handle);
                for _ in 0..64 {
                    if handle.read_bulk(ep, &mut sink, 10).is_err() {
                        break;
                    }
                }
            }
        }
    }

    /// Apply pending hotplug events: forget a device that left, open one that arrived.
    fn track_hotplug(&mut self) -> Result<(), Error> {
        let events = step("hotplug_poll", usb::hotplug_poll::<8>())?;
        for ev in events.iter() {
            match ev.kind {
                HotplugKind::Left if self.conn.as_ref().is_some_and(|c| c.device == ev.device) => {
                    self.conn = None; // closing a departed device's handle fails quietly
                    self.departures += 1;
                    warn!("echo device left");
                }
                HotplugKind::Arrived if self.conn.is_none() => {
                    // only granted devices are visible; check it is one we want
                    let list = step("list_devices", usb::DeviceList::<8>::new(&self.wanted.filter()))?;
                    if list.iter().any(|d| d == ev.device) {
                        self.conn = Some(connect(&self.wanted, self.timeout_ms, ev.device)?);
                        self.arrivals += 1;
                        self.totals.counter = None; // a new device counts from its own start
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }
}

impl wasi_hw_sdk::Driver for UsbEcho {
    type Error = Error;

    fn init() -> Result<Self, Error> {
        let wanted = Wanted::from_config(0x1209, 0x0001)?;
        let timeout_ms = config::u32_or("timeout_ms", 1000)?;
        let conn = connect(&wanted, timeout_ms, wanted.find()?)?;
        Ok(Self { wanted, timeout_ms, conn: Some(conn), totals: Totals::default(), arrivals: 0, departures: 0, resets: 0 })
    }

    fn poll(&mut self) -> Result<(), Error> {
        self.track_hotplug()?;
        let outcome = match &mut self.conn {
            Some(c) => Some(Cycle { port: &mut c.port, totals: &mut self.totals }.run()),
            None => None,
        };
        match outcome {
            Some(Err(Failure::Usb(_, usb::Error::NoDevice))) => self.conn = None, // just left
            Some(Err(_)) => self.recover(),
            _ => {}
        }
        let t = &self.totals;
        let mut report = Report::new()
            .bool("connected", self.conn.is_some())
            .u32("cycles", t.cycles)
            .u32("round_trips", t.round_trips)
            .u64("bytes", t.bytes)
            .u32("errors", t.errors)
            .bool("ok", matches!(outcome, Some(Ok(()))))
            .u32("arrivals", self.arrivals)
            .u32("departures", self.departures)
            .u32("resets", self.resets);
        if let Some(c) = &self.conn {
            // identity only: product, bus, address and speed are logged at connect (the
            // report must stay within the SDK's 256-byte report buffer)
            report = report.str("serial", c.serial.as_str()).bytes("port", c.port_path.as_slice());
        }
        if let Some(counter) = t.counter {
            report = report.u32("counter", counter);
        }
        if let Some(Err(f)) = &outcome {
            report = report.str("failure", FmtBuf::<64>::format(format_args!("{f:?}")).as_str());
        }
        report.send().map_err(Error::Report)?;
        match outcome {
            Some(Err(f)) => Err(Error::Check(f)),
            _ => Ok(()),
        }
    }
}

wasi_hw_sdk::export_driver!(UsbEcho);
