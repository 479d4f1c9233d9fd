//! `msc`: a USB mass-storage device (default 1209:0003), SCSI over Bulk-Only Transport.
//!
//! `init` finds the device (config `vid`, `pid`, optional `serial`), its mass-storage
//! interface (class 8, subclass 6 SCSI transparent, protocol 0x50 BOT) and bulk endpoints;
//! selects the configuration, detaches a kernel driver where the host has one and claims the
//! interface ([`usb::open_configured`]); asks GET MAX LUN (`A1 FE 0000 iface 0001`; a STALL
//! means LUN 0 only), then INQUIRY, TEST UNIT READY (retried while the sense is UNIT
//! ATTENTION / NOT READY) and READ CAPACITY(10).
//! Each `poll` writes one pattern of `count` blocks (default 1) at `lba` (default 1) with
//! WRITE(10), reads it back with READ(10), compares, then READ(10)s one block past the end
//! and expects CHECK CONDITION with ILLEGAL REQUEST / LBA OUT OF RANGE from REQUEST SENSE.
//! It reports `{vendor, product, blocks, block_size, capacity_bytes, lba, writes,
//! verified_bytes, range_checks, recoveries, ok, failure?}` (within the SDK's 256-byte
//! report); a failed check is reported and fails `poll`. Config `timeout_ms` (default 2000) bounds each transfer.
#![cfg_attr(not(test), no_std)]

pub mod bot;
pub mod scsi;

use wasi_hw_sdk::config::{self, ConfigError};
use wasi_hw_sdk::report::Report;
use wasi_hw_sdk::usb::{self, descriptors::class, request, DeviceHandle, Direction, TransferType};
use wasi_hw_sdk::{info, DriverError, FmtBuf};

use bot::{Bot, Transport};
use scsi::{sense_key, Capacity, Scsi, ScsiError, Sense, ASC_LBA_OUT_OF_RANGE};

pub const GET_MAX_LUN: u8 = 0xFE;
pub const MASS_STORAGE_RESET: u8 = 0xFF;
/// Largest transfer the driver buffers (bytes).
pub const MAX_TRANSFER: usize = 4096;

/// Why `init` or `poll` failed.
#[derive(Debug)]
pub enum Error {
    Config(ConfigError),
    /// A configuration value is out of range for this medium.
    BadConfig(&'static str),
    Usb(&'static str, usb::Error),
    NotFound { vid: u16, pid: u16 },
    NotMassStorage(&'static str),
    Scsi(&'static str, ScsiError),
    /// Data read back differed from what was written (first differing offset).
    Mismatch(usize),
    /// Reading past the end did not fail as SCSI requires (what came back instead).
    RangeCheck(Option<Sense>),
    Report(DriverError),
}

wasi_hw_sdk::impl_usb_open_errors!(Error);

/// The claimed BOT interface of an open device.
pub struct Pipes {
    handle: DeviceHandle,
    interface: u8,
    ep_in: u8,
    ep_out: u8,
    timeout_ms: u32,
}

impl Transport for Pipes {
    fn bulk_out(&mut self, data: &[u8]) -> usb::Result<usize> {
        self.handle.write_bulk(self.ep_out, data, self.timeout_ms)
    }
    fn bulk_in(&mut self, buf: &mut [u8]) -> usb::Result<usize> {
        self.handle.read_bulk(self.ep_in, buf, self.timeout_ms)
    }
    fn clear_halt(&mut self, in_: bool) -> usb::Result<()> {
        self.handle.clear_halt(if in_ { self.ep_in } else { self.ep_out })
    }
    fn mass_storage_reset(&mut self) -> usb::Result<()> {
        let rt = request::request_type(false, request::TYPE_CLASS, request::RECIPIENT_INTERFACE);
        self.handle.write_control(rt, MASS_STORAGE_RESET, 0, self.interface as u16, &[], self.timeout_ms).map(|_| ())
    }
}

/// The block pattern of write number `seq` at `lba`: a header naming both, then bytes that
/// depend on position, `seq` and `lba` (a stale or misplaced block never compares equal).
pub fn fill_block_pattern(buf: &mut [u8], lba: u32, seq: u32) {
    for (i, b) in buf.iter_mut().enumerate() {
        let x = (i as u32).wrapping_mul(0x0100_0193) ^ seq.wrapping_mul(0x9E37_79B9) ^ lba.rotate_left(13);
        *b = (x ^ (x >> 11) ^ (x >> 23)) as u8;
    }
    if buf.len() >= 12 {
        buf[0..4].copy_from_slice(b"WHW1");
        buf[4..8].copy_from_slice(&lba.to_le_bytes());
        buf[8..12].copy_from_slice(&seq.to_le_bytes());
    }
}

pub struct Msc {
    scsi: Scsi<Pipes>,
    vendor: FmtBuf<8>,
    product: FmtBuf<16>,
    capacity: Capacity,
    lba: u32,
    count: u16,
    writes: u32,
    verified_bytes: u64,
    /// Reads past the end that failed as they must.
    range_checks: u32,
}

fn scsi<T>(what: &'static str, r: Result<T, ScsiError>) -> Result<T, Error> {
    r.map_err(|e| Error::Scsi(what, e))
}

impl Msc {
    fn cycle(&mut self) -> Result<(), Error> {
        let bl = self.capacity.block_length;
        let len = bl as usize * self.count as usize;
        let mut out = [0u8; MAX_TRANSFER];
        let mut back = [0u8; MAX_TRANSFER];
        let (out, back) = (&mut out[..len], &mut back[..len]);
        let seq = self.writes.wrapping_add(1);
        for (i, block) in out.chunks_mut(bl as usize).enumerate() {
            fill_block_pattern(block, self.lba + i as u32, seq);
        }
        scsi("WRITE(10)", self.scsi.write10(self.lba, bl, out))?;
        self.writes = seq;
        scsi("READ(10)", self.scsi.read10(self.lba, bl, back))?;
        if let Some(i) = out.iter().zip(back.iter()).position(|(a, b)| a != b) {
            return Err(Error::Mismatch(i));
        }
        self.verified_bytes += len as u64;

        // One block past the end must fail with ILLEGAL REQUEST / LBA OUT OF RANGE.
        let past_end = self.capacity.last_lba.wrapping_add(1);
        match self.scsi.read10(past_end, bl, &mut back[..bl as usize]) {
            Err(ScsiError::Check(s)) if s.key == sense_key::ILLEGAL_REQUEST && s.asc == ASC_LBA_OUT_OF_RANGE => {
                self.range_checks += 1;
                Ok(())
            }
            Err(ScsiError::Check(s)) => Err(Error::RangeCheck(Some(s))),
            Err(e) => Err(Error::Scsi("READ(10) past end", e)),
            Ok(()) => Err(Error::RangeCheck(None)),
        }
    }
}

impl wasi_hw_sdk::Driver for Msc {
    type Error = Error;

    fn init() -> Result<Self, Error> {
        let timeout_ms = config::u32_or("timeout_ms", 2000)?;
        let lba = config::u32_or("lba", 1)?;
        let count = config::u16_or("count", 1)?;

        let opened = usb::open_configured(0x1209, 0x0003, |cfg| -> Result<_, Error> {
            let iface = cfg
                .interfaces()
                .find(|i| (i.class(), i.subclass(), i.protocol()) == (class::MASS_STORAGE, 0x06, 0x50))
                .ok_or(Error::NotMassStorage("no SCSI/Bulk-Only interface (8/6/0x50)"))?;
            let ep_in = iface.find_endpoint(Direction::In, TransferType::Bulk).ok_or(Error::NotMassStorage("no bulk IN"))?;
            let ep_out = iface.find_endpoint(Direction::Out, TransferType::Bulk).ok_or(Error::NotMassStorage("no bulk OUT"))?;
            Ok((iface.number(), (ep_in, ep_out)))
        })?;
        let usb::Opened { wanted: usb::Wanted { vid, pid, .. }, handle, interface: number, kept: (ep_in, ep_out) } = opened;

        let rt = request::request_type(true, request::TYPE_CLASS, request::RECIPIENT_INTERFACE);
        let mut max_lun = [0u8; 1];
        let max_lun = match handle.read_control(rt, GET_MAX_LUN, 0, number as u16, &mut max_lun, timeout_ms) {
            Ok(1) => max_lun[0],
            Ok(_) | Err(usb::Error::Pipe) => 0, // BOT §3.2: a device with one LUN may STALL
            Err(e) => return Err(Error::Usb("GET_MAX_LUN", e)),
        };

        let pipes = Pipes { handle, interface: number, ep_in: ep_in.address, ep_out: ep_out.address, timeout_ms };
        let mut scsi_if = Scsi::new(Bot::new(pipes, 0));
        let inquiry = scsi("INQUIRY", scsi_if.inquiry())?;
        let mut ready = scsi_if.test_unit_ready();
        for _ in 0..3 {
            match ready {
                Err(ScsiError::Check(s)) if matches!(s.key, sense_key::UNIT_ATTENTION | sense_key::NOT_READY) => {
                    ready = scsi_if.test_unit_ready()
                }
                _ => break,
            }
        }
        scsi("TEST UNIT READY", ready)?;
        let capacity = scsi("READ CAPACITY(10)", scsi_if.read_capacity())?;

        let bl = capacity.block_length as usize;
        if bl == 0 || bl > MAX_TRANSFER {
            return Err(Error::NotMassStorage("block length not in 1..=4096"));
        }
        if count == 0 || bl * count as usize > MAX_TRANSFER {
            return Err(Error::BadConfig("count: blocks per write must be 1..=4096/block size"));
        }
        if lba as u64 + count as u64 > capacity.blocks() {
            return Err(Error::BadConfig("lba: the pattern would run past the medium"));
        }
        info!(
            "mass storage {:04x}:{:04x} {} {} rev {}, {} LUN(s), {} blocks of {} bytes",
            vid, pid, inquiry.vendor(), inquiry.product(), inquiry.revision(),
            max_lun as u16 + 1, capacity.blocks(), capacity.block_length
        );
        Ok(Self {
            vendor: FmtBuf::format(format_args!("{}", inquiry.vendor())),
            product: FmtBuf::format(format_args!("{}", inquiry.product())),
            scsi: scsi_if,
            capacity,
            lba,
            count,
            writes: 0,
            verified_bytes: 0,
            range_checks: 0,
        })
    }

    fn poll(&mut self) -> Result<(), Error> {
        let outcome = self.cycle();
        let mut report = Report::new()
            .str("vendor", self.vendor.as_str())
            .str("product", self.product.as_str())
            .u64("blocks", self.capacity.blocks())
            .u32("block_size", self.capacity.block_length)
            .u64("capacity_bytes", self.capacity.bytes())
            .u32("lba", self.lba)
            .u32("writes", self.writes)
            .u64("verified_bytes", self.verified_bytes)
            .u32("range_checks", self.range_checks)
            .u32("recoveries", self.scsi.bot.recoveries)
            .bool("ok", outcome.is_ok());
        if let Err(e) = &outcome {
            report = report.str("failure", FmtBuf::<64>::format(format_args!("{e:?}")).as_str());
        }
        report.send().map_err(Error::Report)?;
        outcome
    }
}

wasi_hw_sdk::export_driver!(Msc);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_pattern_names_lba_and_sequence() {
        let (mut a, mut b, mut c) = ([0u8; 512], [0u8; 512], [0u8; 512]);
        fill_block_pattern(&mut a, 1, 1);
        fill_block_pattern(&mut b, 2, 1);
        fill_block_pattern(&mut c, 1, 2);
        assert_eq!(&a[..4], b"WHW1");
        assert_eq!(&a[4..8], &1u32.to_le_bytes());
        assert_ne!(a[12..], b[12..]);
        assert_ne!(a[12..], c[12..]);
        let mut again = [0u8; 512];
        fill_block_pattern(&mut again, 1, 1);
        assert_eq!(a, again);
    }
}
