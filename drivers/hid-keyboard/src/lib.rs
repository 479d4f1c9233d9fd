//! `hid-keyboard`: a HID boot-protocol keyboard (default 1209:0002) read over interrupt IN.
//!
//! `init` finds the device (config `vid`, `pid`, optional `serial`) and its boot keyboard
//! interface (class 3, subclass 1, protocol 1) with its HID descriptor and interrupt IN
//! endpoint, selects the configuration, detaches a kernel driver where the host has one and
//! claims the interface ([`usb::open_configured`]), then sends, on the wire: SET_PROTOCOL(boot) `21 0B 0000 iface 0000`,
//! SET_IDLE(0: report only on change) `21 0A 0000 iface 0000`, then GET_PROTOCOL
//! `A1 03 0000 iface 0001` and checks the answer is 0 (boot).
//! Each `poll` reads up to `max_reports` (default 64) 8-byte interrupt IN reports, each with
//! `timeout_ms` (default 50; a timeout means no key changed and ends the poll), turns them
//! into press/release events ([`boot::diff`]) and reports them as CBOR ([`batch`]): one
//! report per poll, more when the events overflow one batch.
#![cfg_attr(not(test), no_std)]

pub mod batch;
pub mod boot;

use wasi_hw_sdk::config::{self, ConfigError};
use wasi_hw_sdk::usb::{self, descriptors::{class, descriptor_type}, request, step, DeviceHandle, Direction, TransferType};
use wasi_hw_sdk::{debug, info, report, DriverError};

use batch::{Batch, MAX_ENCODED, MAX_EVENTS_PER_REPORT};
use boot::{BootReport, ReportError};

pub const SET_IDLE: u8 = 0x0A;
pub const SET_PROTOCOL: u8 = 0x0B;
pub const GET_PROTOCOL: u8 = 0x03;
pub const BOOT_PROTOCOL: u16 = 0;

/// Why `init` or `poll` failed.
#[derive(Debug)]
pub enum Error {
    Config(ConfigError),
    Usb(&'static str, usb::Error),
    NotFound { vid: u16, pid: u16 },
    /// The device has no usable boot keyboard interface.
    NotAKeyboard(&'static str),
    /// The device did not switch to the boot protocol (it answered this protocol).
    ProtocolNotBoot(u8),
    Report(DriverError),
    /// A batch did not encode (cannot happen within `MAX_ENCODED`; kept as an error).
    Encode,
}

wasi_hw_sdk::impl_usb_open_errors!(Error);

pub struct HidKeyboard {
    handle: DeviceHandle,
    endpoint: u8,
    packet: usize,
    timeout_ms: u32,
    max_reports: u32,
    last: BootReport,
}

impl HidKeyboard {
    fn send(batch: &Batch) -> Result<(), Error> {
        let mut buf = [0u8; MAX_ENCODED];
        let bytes = batch.encode(&mut buf).map_err(|_| Error::Encode)?;
        report::send_raw(bytes).map_err(Error::Report)
    }
}

impl wasi_hw_sdk::Driver for HidKeyboard {
    type Error = Error;

    fn init() -> Result<Self, Error> {
        let timeout_ms = config::u32_or("timeout_ms", 50)?;
        let max_reports = config::u32_or("max_reports", 64)?;

        let opened = usb::open_configured(0x1209, 0x0002, |cfg| -> Result<_, Error> {
            let iface = cfg
                .interfaces()
                .find(|i| (i.class(), i.subclass(), i.protocol()) == (class::HID, 1, 1))
                .ok_or(Error::NotAKeyboard("no HID boot keyboard interface (3/1/1)"))?;
            if !iface.descriptors().any(|d| d.descriptor_type == descriptor_type::HID) {
                return Err(Error::NotAKeyboard("interface has no HID descriptor"));
            }
            let ep = iface
                .find_endpoint(Direction::In, TransferType::Interrupt)
                .ok_or(Error::NotAKeyboard("no interrupt IN endpoint"))?;
            Ok((iface.number(), ep))
        })?;
        let usb::Opened { wanted: usb::Wanted { vid, pid, .. }, handle, interface: number, kept: ep } = opened;

        let out = request::request_type(false, request::TYPE_CLASS, request::RECIPIENT_INTERFACE);
        let inn = request::request_type(true, request::TYPE_CLASS, request::RECIPIENT_INTERFACE);
        step("SET_PROTOCOL", handle.write_control(out, SET_PROTOCOL, BOOT_PROTOCOL, number as u16, &[], timeout_ms))?;
        step("SET_IDLE", handle.write_control(out, SET_IDLE, 0, number as u16, &[], timeout_ms))?;
        let mut proto = [0xFFu8; 1];
        let n = step("GET_PROTOCOL", handle.read_control(inn, GET_PROTOCOL, 0, number as u16, &mut proto, timeout_ms))?;
        if n != 1 || proto[0] != BOOT_PROTOCOL as u8 {
            return Err(Error::ProtocolNotBoot(proto[0]));
        }
        info!("boot keyboard {:04x}:{:04x} interface {} endpoint {:#04x}", vid, pid, number, ep.address);
        Ok(Self {
            handle,
            endpoint: ep.address,
            packet: (ep.max_packet_size() as usize).clamp(BootReport::LEN, 64),
            timeout_ms,
            max_reports,
            last: BootReport::default(),
        })
    }

    fn poll(&mut self) -> Result<(), Error> {
        let mut batch = Batch::default();
        let mut raw = [0u8; 64];
        for _ in 0..self.max_reports {
            let n = match self.handle.read_interrupt(self.endpoint, &mut raw[..self.packet], self.timeout_ms) {
                Ok(n) => n,
                Err(usb::Error::Timeout) => break, // nothing changed
                Err(e) => return Err(Error::Usb("interrupt_in", e)),
            };
            let cur = match BootReport::parse(&raw[..n]) {
                Ok(r) => r,
                Err(ReportError::RollOver) => continue, // phantom state: keep the last
                Err(ReportError::Short(len)) => {
                    debug!("ignoring a {}-byte report", len);
                    continue;
                }
            };
            let mut events = [None; MAX_EVENTS_PER_REPORT];
            let mut n = 0;
            boot::diff(&self.last, &cur, |e| {
                events[n] = Some(e); // diff makes at most MAX_EVENTS_PER_REPORT events
                n += 1;
            });
            if n > batch.room() {
                Self::send(&batch)?;
                batch.clear();
            }
            batch.reports += 1;
            for e in events[..n].iter().flatten() {
                batch.push(*e);
            }
            self.last = cur;
        }
        Self::send(&batch)
    }
}

wasi_hw_sdk::export_driver!(HidKeyboard);
