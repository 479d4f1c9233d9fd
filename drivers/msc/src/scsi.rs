//! The SCSI commands the driver sends (SPC-4 / SBC-3 CDBs) and their responses, over BOT.
//!
//! CDBs (big-endian fields): TEST UNIT READY `00 00 00 00 00 00`; REQUEST SENSE
//! `03 00 00 00 len 00`; INQUIRY `12 00 00 len(2) 00`; READ CAPACITY(10) `25` + 9 zeros
//! (answer: last LBA, block length, 4 bytes each); READ(10) `28 00 lba(4) 00 count(2) 00`
//! and WRITE(10) `2A ...` alike. A command whose CSW says "failed" is followed by REQUEST
//! SENSE and reported as [`ScsiError::Check`] with the fixed-format sense data.

use crate::bot::{Bot, BotError, Completion, Data, Transport};

pub const TEST_UNIT_READY: u8 = 0x00;
pub const REQUEST_SENSE: u8 = 0x03;
pub const INQUIRY: u8 = 0x12;
pub const READ_CAPACITY_10: u8 = 0x25;
pub const READ_10: u8 = 0x28;
pub const WRITE_10: u8 = 0x2A;

/// Sense keys used by the driver.
pub mod sense_key {
    pub const NO_SENSE: u8 = 0x0;
    pub const NOT_READY: u8 = 0x2;
    pub const MEDIUM_ERROR: u8 = 0x3;
    pub const ILLEGAL_REQUEST: u8 = 0x5;
    pub const UNIT_ATTENTION: u8 = 0x6;
}
/// ASC for ILLEGAL REQUEST / LOGICAL BLOCK ADDRESS OUT OF RANGE.
pub const ASC_LBA_OUT_OF_RANGE: u8 = 0x21;

/// Fixed-format sense data (key, additional sense code and qualifier).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sense {
    pub key: u8,
    pub asc: u8,
    pub ascq: u8,
}

impl Sense {
    /// Parse fixed-format (response code 0x70/0x71) sense data of at least 14 bytes.
    pub fn parse(b: &[u8]) -> Option<Self> {
        if b.len() < 14 || !matches!(b[0] & 0x7F, 0x70 | 0x71) {
            return None;
        }
        Some(Self { key: b[2] & 0x0F, asc: b[12], ascq: b[13] })
    }
}

/// The identification part of standard INQUIRY data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Inquiry {
    pub peripheral_device_type: u8,
    pub removable: bool,
    vendor: [u8; 8],
    product: [u8; 16],
    revision: [u8; 4],
}

fn ascii_field(b: &[u8]) -> &str {
    let s = core::str::from_utf8(b).unwrap_or("");
    s.trim_end_matches([' ', '\0'])
}

impl Inquiry {
    pub const LEN: usize = 36;

    pub fn parse(b: &[u8]) -> Option<Self> {
        if b.len() < Self::LEN {
            return None;
        }
        let mut i = Self {
            peripheral_device_type: b[0] & 0x1F,
            removable: b[1] & 0x80 != 0,
            vendor: [0; 8],
            product: [0; 16],
            revision: [0; 4],
        };
        i.vendor.copy_from_slice(&b[8..16]);
        i.product.copy_from_slice(&b[16..32]);
        i.revision.copy_from_slice(&b[32..36]);
        // the identification fields are ASCII by the standard: reject anything else
        if ![&i.vendor[..], &i.product[..], &i.revision[..]].iter().all(|f| f.iter().all(|c| (0x20..0x7F).contains(c) || *c == 0)) {
            return None;
        }
        Some(i)
    }
    pub fn vendor(&self) -> &str {
        ascii_field(&self.vendor)
    }
    pub fn product(&self) -> &str {
        ascii_field(&self.product)
    }
    pub fn revision(&self) -> &str {
        ascii_field(&self.revision)
    }
}

/// READ CAPACITY(10) data.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Capacity {
    pub last_lba: u32,
    pub block_length: u32,
}

impl Capacity {
    pub fn parse(b: &[u8]) -> Option<Self> {
        if b.len() < 8 {
            return None;
        }
        Some(Self {
            last_lba: u32::from_be_bytes([b[0], b[1], b[2], b[3]]),
            block_length: u32::from_be_bytes([b[4], b[5], b[6], b[7]]),
        })
    }
    pub fn blocks(&self) -> u64 {
        self.last_lba as u64 + 1
    }
    pub fn bytes(&self) -> u64 {
        self.blocks() * self.block_length as u64
    }
}

/// READ(10) / WRITE(10) CDB.
pub fn rw10(opcode: u8, lba: u32, blocks: u16) -> [u8; 10] {
    let l = lba.to_be_bytes();
    let n = blocks.to_be_bytes();
    [opcode, 0, l[0], l[1], l[2], l[3], 0, n[0], n[1], 0]
}

/// Why a SCSI command failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScsiError {
    /// The transport failed.
    Bot(BotError),
    /// CHECK CONDITION, with the sense REQUEST SENSE returned.
    Check(Sense),
    /// The command failed and REQUEST SENSE did not return usable sense data.
    NoSense,
    /// The response was too short or malformed (command, bytes received).
    BadResponse(u8, usize),
}

/// SCSI over one BOT interface.
pub struct Scsi<T: Transport> {
    pub bot: Bot<T>,
}

impl<T: Transport> Scsi<T> {
    pub fn new(bot: Bot<T>) -> Self {
        Self { bot }
    }

    /// Run `cb`; on CSW "failed", fetch the sense data and return it as the error.
    pub fn execute(&mut self, cb: &[u8], data: Data<'_>) -> Result<Completion, ScsiError> {
        match self.bot.command(cb, data) {
            Ok(c) => Ok(c),
            Err(BotError::Failed { .. }) => Err(match self.request_sense() {
                Ok(s) => ScsiError::Check(s),
                Err(ScsiError::Bot(e)) => ScsiError::Bot(e),
                Err(_) => ScsiError::NoSense,
            }),
            Err(e) => Err(ScsiError::Bot(e)),
        }
    }

    pub fn request_sense(&mut self) -> Result<Sense, ScsiError> {
        let mut b = [0u8; 18];
        let c = self.bot.command(&[REQUEST_SENSE, 0, 0, 0, 18, 0], Data::In(&mut b)).map_err(ScsiError::Bot)?;
        Sense::parse(&b[..c.transferred]).ok_or(ScsiError::BadResponse(REQUEST_SENSE, c.transferred))
    }

    pub fn test_unit_ready(&mut self) -> Result<(), ScsiError> {
        self.execute(&[TEST_UNIT_READY, 0, 0, 0, 0, 0], Data::None).map(|_| ())
    }

    pub fn inquiry(&mut self) -> Result<Inquiry, ScsiError> {
        let mut b = [0u8; Inquiry::LEN];
        let c = self.execute(&[INQUIRY, 0, 0, 0, Inquiry::LEN as u8, 0], Data::In(&mut b))?;
        Inquiry::parse(&b[..c.transferred]).ok_or(ScsiError::BadResponse(INQUIRY, c.transferred))
    }

    pub fn read_capacity(&mut self) -> Result<Capacity, ScsiError> {
        let mut b = [0u8; 8];
        let c = self.execute(&[READ_CAPACITY_10, 0, 0, 0, 0, 0, 0, 0, 0, 0], Data::In(&mut b))?;
        Capacity::parse(&b[..c.transferred]).ok_or(ScsiError::BadResponse(READ_CAPACITY_10, c.transferred))
    }

    /// READ(10) of `buf.len() / block_length` blocks; all of `buf` must arrive.
    pub fn read10(&mut self, lba: u32, block_length: u32, buf: &mut [u8]) -> Result<(), ScsiError> {
        let blocks = Self::block_count(block_length, buf.len())?;
        let want = buf.len();
        let c = self.execute(&rw10(READ_10, lba, blocks), Data::In(buf))?;
        if c.transferred != want || c.residue != 0 {
            return Err(ScsiError::BadResponse(READ_10, c.transferred));
        }
        Ok(())
    }

    /// WRITE(10) of `data` (whole blocks); the device must take all of it.
    pub fn write10(&mut self, lba: u32, block_length: u32, data: &[u8]) -> Result<(), ScsiError> {
        let blocks = Self::block_count(block_length, data.len())?;
        let c = self.execute(&rw10(WRITE_10, lba, blocks), Data::Out(data))?;
        if c.transferred != data.len() || c.residue != 0 {
            return Err(ScsiError::BadResponse(WRITE_10, c.transferred));
        }
        Ok(())
    }

    fn block_count(block_length: u32, len: usize) -> Result<u16, ScsiError> {
        let bl = block_length as usize;
        if bl == 0 || len % bl != 0 {
            return Err(ScsiError::Bot(BotError::BadCommand));
        }
        u16::try_from(len / bl).map_err(|_| ScsiError::Bot(BotError::BadCommand))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bot::tests::Mock;
    use std::vec;
    use std::vec::Vec;

    #[test]
    fn cdb_layouts() {
        assert_eq!(rw10(READ_10, 0x0102_0304, 0x0506), [0x28, 0, 1, 2, 3, 4, 0, 5, 6, 0]);
        assert_eq!(rw10(WRITE_10, 7, 1)[0], 0x2A);
    }

    #[test]
    fn parse_responses() {
        let mut inq = [0x20u8; 36];
        inq[0] = 0;
        inq[1] = 0x80;
        inq[8..15].copy_from_slice(b"WASI-HW");
        inq[16..28].copy_from_slice(b"Virtual Disk");
        inq[32..36].copy_from_slice(b"0.1 ");
        let i = Inquiry::parse(&inq).unwrap();
        assert_eq!((i.vendor(), i.product(), i.revision()), ("WASI-HW", "Virtual Disk", "0.1"));
        assert!(i.removable);
        assert!(Inquiry::parse(&inq[..35]).is_none());
        inq[9] = 0xC3;
        assert!(Inquiry::parse(&inq).is_none());

        let c = Capacity::parse(&[0, 0, 0x07, 0xFF, 0, 0, 2, 0]).unwrap();
        assert_eq!((c.blocks(), c.block_length, c.bytes()), (2048, 512, 1 << 20));
        assert!(Capacity::parse(&[0; 7]).is_none());

        let mut s = [0u8; 18];
        s[0] = 0x70;
        s[2] = 0x05;
        s[12] = 0x21;
        assert_eq!(Sense::parse(&s), Some(Sense { key: 5, asc: 0x21, ascq: 0 }));
        s[0] = 0x72; // descriptor format: not handled
        assert_eq!(Sense::parse(&s), None);
    }

    /// A tiny disk of 8 blocks of 512 bytes, with the sense state a real device keeps.
    fn disk(cb: &[u8], _: &[u8]) -> (Vec<u8>, u8) {
        match cb[0] {
            READ_CAPACITY_10 => (vec![0, 0, 0, 7, 0, 0, 2, 0], 0),
            READ_10 => {
                let lba = u32::from_be_bytes([cb[2], cb[3], cb[4], cb[5]]);
                if lba >= 8 { (Vec::new(), 1) } else { (vec![lba as u8; 512], 0) }
            }
            REQUEST_SENSE => {
                let mut s = vec![0u8; 18];
                s[0] = 0x70;
                s[2] = sense_key::ILLEGAL_REQUEST;
                s[12] = ASC_LBA_OUT_OF_RANGE;
                (s, 0)
            }
            _ => (Vec::new(), 0),
        }
    }

    #[test]
    fn failed_command_fetches_sense() {
        let mut scsi = Scsi::new(Bot::new(Mock::new(disk), 0));
        let mut buf = [0u8; 512];
        scsi.read10(3, 512, &mut buf).unwrap();
        assert!(buf.iter().all(|&b| b == 3));
        let err = scsi.read10(8, 512, &mut buf).unwrap_err();
        assert_eq!(err, ScsiError::Check(Sense { key: 5, asc: 0x21, ascq: 0 }));
        assert_eq!(scsi.read_capacity().unwrap().blocks(), 8);
    }

    #[test]
    fn write_sends_whole_blocks_only() {
        let mut scsi = Scsi::new(Bot::new(Mock::new(disk), 0));
        scsi.write10(1, 512, &[0xAB; 1024]).unwrap();
        assert_eq!(scsi.bot.transport.written.len(), 1024);
        assert_eq!(scsi.write10(1, 512, &[0; 100]), Err(ScsiError::Bot(BotError::BadCommand)));
    }

    #[test]
    fn short_read_is_a_bad_response() {
        fn short(cb: &[u8], _: &[u8]) -> (Vec<u8>, u8) {
            if cb[0] == READ_10 { (vec![1; 100], 0) } else { (Vec::new(), 0) }
        }
        let mut scsi = Scsi::new(Bot::new(Mock::new(short), 0));
        let mut buf = [0u8; 512];
        assert_eq!(scsi.read10(0, 512, &mut buf), Err(ScsiError::BadResponse(READ_10, 100)));
    }
}
