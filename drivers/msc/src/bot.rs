//! USB Mass Storage Bulk-Only Transport 1.0: CBW/CSW and one command's three phases.
//!
//! On the wire, one [`Bot::command`] is: a 31-byte CBW to bulk OUT
//! (`"USBC"`, tag, dCBWDataTransferLength, flags bit 7 = data IN, LUN, CB length, CB padded
//! to 16); the data phase (bulk IN into the caller's buffer, or bulk OUT of the caller's
//! data; none for length 0); a 13-byte CSW from bulk IN (`"USBS"`, the same tag, residue,
//! status 0 passed / 1 failed / 2 phase error).
//!
//! Error handling per BOT §5.3 and §6.7: a STALL in the data phase is cleared (CLEAR_FEATURE
//! ENDPOINT_HALT) and the CSW is still read; a STALL on the CSW is cleared and the CSW read
//! once more. A CSW that is not valid and meaningful (length, signature, tag, residue larger
//! than the transfer) or a phase error triggers reset recovery: the class request
//! Bulk-Only Mass Storage Reset (`21 FF 0000 iface 0000`), then CLEAR_FEATURE on bulk IN and
//! bulk OUT. Tags start at 1 and increase per command.

use wasi_hw_sdk::usb;

pub const CBW_SIGNATURE: u32 = 0x4342_5355; // "USBC"
pub const CSW_SIGNATURE: u32 = 0x5342_5355; // "USBS"
pub const CBW_LEN: usize = 31;
pub const CSW_LEN: usize = 13;

/// A Command Block Wrapper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cbw {
    pub tag: u32,
    pub data_transfer_length: u32,
    pub data_in: bool,
    pub lun: u8,
    cb: [u8; 16],
    cb_len: u8,
}

impl Cbw {
    /// `None` when the command block is empty or longer than 16 bytes, or the LUN > 15.
    pub fn new(tag: u32, data_transfer_length: u32, data_in: bool, lun: u8, cb: &[u8]) -> Option<Self> {
        if cb.is_empty() || cb.len() > 16 || lun > 15 {
            return None;
        }
        let mut block = [0u8; 16];
        block[..cb.len()].copy_from_slice(cb);
        Some(Self { tag, data_transfer_length, data_in, lun, cb: block, cb_len: cb.len() as u8 })
    }

    pub fn command_block(&self) -> &[u8] {
        &self.cb[..self.cb_len as usize]
    }

    pub fn encode(&self) -> [u8; CBW_LEN] {
        let mut b = [0u8; CBW_LEN];
        b[0..4].copy_from_slice(&CBW_SIGNATURE.to_le_bytes());
        b[4..8].copy_from_slice(&self.tag.to_le_bytes());
        b[8..12].copy_from_slice(&self.data_transfer_length.to_le_bytes());
        b[12] = if self.data_in { 0x80 } else { 0x00 };
        b[13] = self.lun;
        b[14] = self.cb_len;
        b[15..31].copy_from_slice(&self.cb);
        b
    }
}

/// `bCSWStatus`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CswStatus {
    Passed,
    Failed,
    PhaseError,
}

/// A Command Status Wrapper.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Csw {
    pub tag: u32,
    pub residue: u32,
    pub status: CswStatus,
}

/// Why CSW bytes are not a valid, meaningful CSW for the command sent (BOT §6.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CswError {
    Length(usize),
    Signature(u32),
    Tag { expected: u32, got: u32 },
    /// The residue exceeds the transfer length.
    Residue { residue: u32, length: u32 },
    Status(u8),
}

impl Csw {
    /// Parse and check a CSW against the CBW it answers.
    pub fn parse(b: &[u8], cbw: &Cbw) -> Result<Self, CswError> {
        if b.len() != CSW_LEN {
            return Err(CswError::Length(b.len()));
        }
        let word = |at: usize| u32::from_le_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]]);
        if word(0) != CSW_SIGNATURE {
            return Err(CswError::Signature(word(0)));
        }
        let (tag, residue) = (word(4), word(8));
        if tag != cbw.tag {
            return Err(CswError::Tag { expected: cbw.tag, got: tag });
        }
        let status = match b[12] {
            0 => CswStatus::Passed,
            1 => CswStatus::Failed,
            2 => CswStatus::PhaseError,
            s => return Err(CswError::Status(s)),
        };
        if status != CswStatus::PhaseError && residue > cbw.data_transfer_length {
            return Err(CswError::Residue { residue, length: cbw.data_transfer_length });
        }
        Ok(Self { tag, residue, status })
    }
}

/// The bulk pipes and class requests BOT needs; one method per wire operation.
pub trait Transport {
    fn bulk_out(&mut self, data: &[u8]) -> usb::Result<usize>;
    fn bulk_in(&mut self, buf: &mut [u8]) -> usb::Result<usize>;
    /// CLEAR_FEATURE(ENDPOINT_HALT) on bulk IN (`in_ = true`) or bulk OUT.
    fn clear_halt(&mut self, in_: bool) -> usb::Result<()>;
    /// The class request Bulk-Only Mass Storage Reset.
    fn mass_storage_reset(&mut self) -> usb::Result<()>;
}

/// The data phase of a command.
pub enum Data<'a> {
    None,
    In(&'a mut [u8]),
    Out(&'a [u8]),
}

/// Why a command did not complete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BotError {
    /// A transfer failed (phase, error); reset recovery was attempted where BOT asks for it.
    Usb(&'static str, usb::Error),
    /// The CBW could not be built (CB length, LUN, transfer over 4 GiB).
    BadCommand,
    /// The CBW was not taken whole (bytes accepted).
    CbwShort(usize),
    /// The CSW was not valid or not meaningful; reset recovery was done.
    BadCsw(CswError),
    /// The device reported a phase error; reset recovery was done.
    PhaseError,
    /// The command failed (CSW status 1); `residue` as reported. Ask REQUEST SENSE why.
    Failed { residue: u32 },
}

/// A command that passed: bytes moved in the data phase and the device's residue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Completion {
    pub transferred: usize,
    pub residue: u32,
}

/// A BOT endpoint pair with its tag counter.
pub struct Bot<T: Transport> {
    pub transport: T,
    pub lun: u8,
    next_tag: u32,
    /// Reset recoveries performed so far.
    pub recoveries: u32,
}

impl<T: Transport> Bot<T> {
    pub fn new(transport: T, lun: u8) -> Self {
        Self { transport, lun, next_tag: 1, recoveries: 0 }
    }

    /// Reset recovery (BOT §5.3.4): mass storage reset, then clear both halts.
    pub fn reset_recovery(&mut self) -> Result<(), BotError> {
        self.recoveries += 1;
        self.transport.mass_storage_reset().map_err(|e| BotError::Usb("mass_storage_reset", e))?;
        self.transport.clear_halt(true).map_err(|e| BotError::Usb("clear_halt_in", e))?;
        self.transport.clear_halt(false).map_err(|e| BotError::Usb("clear_halt_out", e))
    }

    fn fail_with_recovery(&mut self, err: BotError) -> BotError {
        match self.reset_recovery() {
            Ok(()) => err,
            Err(e) => e,
        }
    }

    /// Run one command: CBW, data phase, CSW (see the module docs).
    pub fn command(&mut self, cb: &[u8], data: Data<'_>) -> Result<Completion, BotError> {
        let (len, data_in) = match &data {
            Data::None => (0, false),
            Data::In(b) => (b.len(), true),
            Data::Out(b) => (b.len(), false),
        };
        let len = u32::try_from(len).map_err(|_| BotError::BadCommand)?;
        let tag = self.next_tag;
        self.next_tag = self.next_tag.wrapping_add(1).max(1);
        let cbw = Cbw::new(tag, len, data_in, self.lun, cb).ok_or(BotError::BadCommand)?;

        match self.transport.bulk_out(&cbw.encode()) {
            Ok(CBW_LEN) => {}
            Ok(n) => return Err(self.fail_with_recovery(BotError::CbwShort(n))),
            Err(e) => return Err(self.fail_with_recovery(BotError::Usb("cbw", e))),
        }

        let transferred = match data {
            Data::None => 0,
            Data::In(buf) => self.data_phase(true, |t| t.bulk_in(buf))?,
            Data::Out(buf) => self.data_phase(false, |t| t.bulk_out(buf))?,
        };

        let csw = self.read_csw(&cbw)?;
        match csw.status {
            CswStatus::Passed => Ok(Completion { transferred, residue: csw.residue }),
            CswStatus::Failed => Err(BotError::Failed { residue: csw.residue }),
            CswStatus::PhaseError => Err(self.fail_with_recovery(BotError::PhaseError)),
        }
    }

    fn data_phase(&mut self, in_: bool, f: impl FnOnce(&mut T) -> usb::Result<usize>) -> Result<usize, BotError> {
        match f(&mut self.transport) {
            Ok(n) => Ok(n),
            // The device ended the data phase with STALL: clear it, then the CSW follows.
            Err(usb::Error::Pipe) => {
                self.transport.clear_halt(in_).map_err(|e| BotError::Usb("clear_halt", e))?;
                Ok(0)
            }
            Err(e) => Err(self.fail_with_recovery(BotError::Usb("data", e))),
        }
    }

    fn read_csw(&mut self, cbw: &Cbw) -> Result<Csw, BotError> {
        let mut buf = [0u8; CSW_LEN];
        let mut attempt = 0;
        let n = loop {
            match self.transport.bulk_in(&mut buf) {
                Ok(n) => break n,
                Err(usb::Error::Pipe) if attempt == 0 => {
                    attempt += 1;
                    self.transport.clear_halt(true).map_err(|e| BotError::Usb("clear_halt", e))?;
                }
                Err(e) => return Err(self.fail_with_recovery(BotError::Usb("csw", e))),
            }
        };
        Csw::parse(&buf[..n], cbw).map_err(|e| self.fail_with_recovery(BotError::BadCsw(e)))
    }
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use std::vec::Vec;

    #[test]
    fn cbw_layout() {
        let cbw = Cbw::new(0x1122_3344, 512, true, 0, &[0x28, 0, 0, 0, 0, 7, 0, 0, 1, 0]).unwrap();
        let b = cbw.encode();
        assert_eq!(&b[0..4], b"USBC");
        assert_eq!(&b[4..8], &[0x44, 0x33, 0x22, 0x11]);
        assert_eq!(&b[8..12], &[0x00, 0x02, 0, 0]);
        assert_eq!((b[12], b[13], b[14]), (0x80, 0, 10));
        assert_eq!(&b[15..25], cbw.command_block());
        assert!(b[25..].iter().all(|&x| x == 0));
        assert_eq!(Cbw::new(1, 0, false, 0, &[0; 4]).unwrap().encode()[12], 0);
        assert!(Cbw::new(1, 0, false, 0, &[]).is_none());
        assert!(Cbw::new(1, 0, false, 0, &[0; 17]).is_none());
        assert!(Cbw::new(1, 0, false, 16, &[0]).is_none());
    }

    fn csw(tag: u32, residue: u32, status: u8) -> [u8; 13] {
        let mut b = [0u8; 13];
        b[0..4].copy_from_slice(b"USBS");
        b[4..8].copy_from_slice(&tag.to_le_bytes());
        b[8..12].copy_from_slice(&residue.to_le_bytes());
        b[12] = status;
        b
    }

    #[test]
    fn csw_checks() {
        let cbw = Cbw::new(7, 36, true, 0, &[0x12]).unwrap();
        assert_eq!(Csw::parse(&csw(7, 4, 0), &cbw), Ok(Csw { tag: 7, residue: 4, status: CswStatus::Passed }));
        assert_eq!(Csw::parse(&csw(7, 0, 1), &cbw).unwrap().status, CswStatus::Failed);
        assert_eq!(Csw::parse(&csw(7, 99, 2), &cbw).unwrap().status, CswStatus::PhaseError);
        assert_eq!(Csw::parse(&csw(8, 0, 0), &cbw), Err(CswError::Tag { expected: 7, got: 8 }));
        assert_eq!(Csw::parse(&csw(7, 37, 0), &cbw), Err(CswError::Residue { residue: 37, length: 36 }));
        assert_eq!(Csw::parse(&csw(7, 0, 3), &cbw), Err(CswError::Status(3)));
        assert_eq!(Csw::parse(&csw(7, 0, 0)[..12], &cbw), Err(CswError::Length(12)));
        let mut bad = csw(7, 0, 0);
        bad[0] = b'X';
        assert!(matches!(Csw::parse(&bad, &cbw), Err(CswError::Signature(_))));
    }

    /// The scripted answer to one CBW: `(command block, data out) -> (data in, status)`.
    pub type Reply = fn(&[u8], &[u8]) -> (Vec<u8>, u8);

    /// A scripted BOT device: answers each CBW with `reply(cb) -> (data, status)` and
    /// records what happened. Faults are injected per test.
    pub struct Mock {
        pub reply: Reply,
        pub log: Vec<&'static str>,
        pending: Option<(Cbw, Vec<u8>, u8)>,
        csw_ready: Option<[u8; 13]>,
        pub stall_data_in: bool,
        pub wrong_tag: bool,
        pub stall_csw_once: bool,
        pub written: Vec<u8>,
    }

    impl Mock {
        pub fn new(reply: Reply) -> Self {
            Self {
                reply,
                log: Vec::new(),
                pending: None,
                csw_ready: None,
                stall_data_in: false,
                wrong_tag: false,
                stall_csw_once: false,
                written: Vec::new(),
            }
        }
        fn finish(&mut self, cbw: Cbw, transferred: u32, status: u8) {
            let tag = if self.wrong_tag { cbw.tag + 1 } else { cbw.tag };
            self.csw_ready = Some(csw(tag, cbw.data_transfer_length - transferred, status));
        }
    }

    impl Transport for Mock {
        fn bulk_out(&mut self, data: &[u8]) -> usb::Result<usize> {
            if let Some((cbw, _, status)) = self.pending.take() {
                self.log.push("data_out");
                self.written.extend_from_slice(data);
                self.finish(cbw, data.len() as u32, status);
                return Ok(data.len());
            }
            self.log.push("cbw");
            assert_eq!(data.len(), CBW_LEN);
            assert_eq!(&data[..4], b"USBC");
            let tag = u32::from_le_bytes([data[4], data[5], data[6], data[7]]);
            let len = u32::from_le_bytes([data[8], data[9], data[10], data[11]]);
            let cbw = Cbw::new(tag, len, data[12] & 0x80 != 0, data[13], &data[15..15 + data[14] as usize]).unwrap();
            let (reply, status) = (self.reply)(cbw.command_block(), &[]);
            if len == 0 {
                self.finish(cbw, 0, status);
            } else {
                self.pending = Some((cbw, reply, status));
            }
            Ok(CBW_LEN)
        }
        fn bulk_in(&mut self, buf: &mut [u8]) -> usb::Result<usize> {
            if let Some((cbw, data, status)) = self.pending.take() {
                self.log.push("data_in");
                if self.stall_data_in {
                    self.finish(cbw, 0, status);
                    return Err(usb::Error::Pipe);
                }
                let n = data.len().min(buf.len());
                buf[..n].copy_from_slice(&data[..n]);
                self.finish(cbw, n as u32, status);
                return Ok(n);
            }
            if self.stall_csw_once {
                self.stall_csw_once = false;
                self.log.push("csw_stall");
                return Err(usb::Error::Pipe);
            }
            self.log.push("csw");
            let c = self.csw_ready.take().ok_or(usb::Error::Timeout)?;
            buf[..13].copy_from_slice(&c);
            Ok(13)
        }
        fn clear_halt(&mut self, in_: bool) -> usb::Result<()> {
            self.log.push(if in_ { "clear_in" } else { "clear_out" });
            Ok(())
        }
        fn mass_storage_reset(&mut self) -> usb::Result<()> {
            self.log.push("reset");
            self.pending = None;
            self.csw_ready = None;
            Ok(())
        }
    }

    fn inquiry_reply(cb: &[u8], _: &[u8]) -> (Vec<u8>, u8) {
        match cb[0] {
            0x12 => ((0..36).collect(), 0),
            0x2A => (Vec::new(), 0),
            _ => (Vec::new(), 1),
        }
    }

    #[test]
    fn data_in_command_passes_with_tags_increasing() {
        let mut bot = Bot::new(Mock::new(inquiry_reply), 0);
        let mut buf = [0u8; 36];
        let c = bot.command(&[0x12, 0, 0, 0, 36, 0], Data::In(&mut buf)).unwrap();
        assert_eq!(c, Completion { transferred: 36, residue: 0 });
        assert_eq!(buf[35], 35);
        let mut buf = [0u8; 40]; // device has less: short packet, residue 4
        let c = bot.command(&[0x12, 0, 0, 0, 40, 0], Data::In(&mut buf)).unwrap();
        assert_eq!(c, Completion { transferred: 36, residue: 4 });
        assert_eq!(bot.transport.log, ["cbw", "data_in", "csw", "cbw", "data_in", "csw"]);
        assert_eq!(bot.next_tag, 3);
    }

    #[test]
    fn data_out_and_no_data_commands() {
        let mut bot = Bot::new(Mock::new(inquiry_reply), 0);
        let c = bot.command(&[0x2A, 0, 0, 0, 0, 1, 0, 0, 1, 0], Data::Out(&[9u8; 512])).unwrap();
        assert_eq!(c, Completion { transferred: 512, residue: 0 });
        assert_eq!(bot.transport.written.len(), 512);
        assert_eq!(bot.command(&[0x12, 0, 0, 0, 0, 0], Data::None).unwrap().transferred, 0);
    }

    #[test]
    fn failed_status_is_reported_without_recovery() {
        let mut bot = Bot::new(Mock::new(inquiry_reply), 0);
        assert_eq!(bot.command(&[0x00; 6], Data::None), Err(BotError::Failed { residue: 0 }));
        assert_eq!(bot.recoveries, 0);
    }

    #[test]
    fn stall_in_data_phase_is_cleared_and_csw_read() {
        let mut m = Mock::new(inquiry_reply);
        m.stall_data_in = true;
        let mut bot = Bot::new(m, 0);
        let mut buf = [0u8; 36];
        let c = bot.command(&[0x12, 0, 0, 0, 36, 0], Data::In(&mut buf)).unwrap();
        assert_eq!(c, Completion { transferred: 0, residue: 36 });
        assert_eq!(bot.transport.log, ["cbw", "data_in", "clear_in", "csw"]);
    }

    #[test]
    fn stalled_csw_is_retried_once() {
        let mut m = Mock::new(inquiry_reply);
        m.stall_csw_once = true;
        let mut bot = Bot::new(m, 0);
        assert!(bot.command(&[0x2A, 0, 0, 0, 0, 0, 0, 0, 0, 0], Data::None).is_ok());
        assert_eq!(bot.transport.log, ["cbw", "csw_stall", "clear_in", "csw"]);
    }

    #[test]
    fn wrong_tag_triggers_reset_recovery() {
        let mut m = Mock::new(inquiry_reply);
        m.wrong_tag = true;
        let mut bot = Bot::new(m, 0);
        let err = bot.command(&[0x2A, 0, 0, 0, 0, 0, 0, 0, 0, 0], Data::None).unwrap_err();
        assert_eq!(err, BotError::BadCsw(CswError::Tag { expected: 1, got: 2 }));
        assert_eq!(bot.recoveries, 1);
        assert_eq!(bot.transport.log, ["cbw", "csw", "reset", "clear_in", "clear_out"]);
    }

    #[test]
    fn phase_error_triggers_reset_recovery() {
        fn phase(_: &[u8], _: &[u8]) -> (Vec<u8>, u8) {
            (Vec::new(), 2)
        }
        let mut bot = Bot::new(Mock::new(phase), 0);
        assert_eq!(bot.command(&[0x00; 6], Data::None), Err(BotError::PhaseError));
        assert_eq!(bot.recoveries, 1);
    }

    #[test]
    fn oversized_command_block_is_rejected_before_the_wire() {
        let mut bot = Bot::new(Mock::new(inquiry_reply), 0);
        assert_eq!(bot.command(&[0u8; 17], Data::None), Err(BotError::BadCommand));
        assert!(bot.transport.log.is_empty());
    }
}
