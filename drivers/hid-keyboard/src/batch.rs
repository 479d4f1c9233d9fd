//! A batch of key events and its CBOR report.
//!
//! One report is a map `{"reports": n, "events": [...], "text": "..."}`: `reports` is the
//! number of boot reports read since the previous report, each event is
//! `{"event": "press"|"release", "usage": u8, "modifiers": u8}` plus `"key": "<char>"` for
//! a press that types a character, and `text` is those characters in order.

use minicbor::encode::write::Cursor;
use minicbor::Encoder;
use wasi_hw_sdk::minicbor;

use crate::boot::{Action, KeyEvent};

/// Events one CBOR report carries (at least the [`MAX_EVENTS_PER_REPORT`] of one boot report).
pub const CAPACITY: usize = 32;
/// 8 modifier bits released + 6 keys released + 8 pressed + 6 pressed.
pub const MAX_EVENTS_PER_REPORT: usize = 28;
/// Upper bound of one encoded batch (32 events of ≤ 42 bytes, text, headers).
pub const MAX_ENCODED: usize = 1536;

#[derive(Clone, Debug)]
pub struct Batch {
    events: [Option<KeyEvent>; CAPACITY],
    len: usize,
    /// Boot reports read into this batch.
    pub reports: u32,
}

impl Default for Batch {
    fn default() -> Self {
        Self { events: [None; CAPACITY], len: 0, reports: 0 }
    }
}

impl Batch {
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// How many more events fit.
    pub fn room(&self) -> usize {
        CAPACITY - self.len
    }
    /// Adds an event; `false` (and nothing added) when full.
    pub fn push(&mut self, e: KeyEvent) -> bool {
        if self.len == CAPACITY {
            return false;
        }
        self.events[self.len] = Some(e);
        self.len += 1;
        true
    }
    pub fn events(&self) -> impl Iterator<Item = &KeyEvent> {
        self.events[..self.len].iter().flatten()
    }
    pub fn clear(&mut self) {
        *self = Self::default();
    }

    /// The CBOR report of this batch, encoded into `buf` (see the module docs).
    pub fn encode<'b>(&self, buf: &'b mut [u8]) -> Result<&'b [u8], minicbor::encode::Error<minicbor::encode::write::EndOfSlice>> {
        let mut e = Encoder::new(Cursor::new(&mut *buf));
        e.map(3)?.str("reports")?.u32(self.reports)?;
        e.str("events")?.array(self.len as u64)?;
        for ev in self.events() {
            let mut utf8 = [0u8; 4];
            let key = ev.ascii.map(|c| &*c.encode_utf8(&mut utf8));
            e.map(if key.is_some() { 4 } else { 3 })?;
            e.str("event")?.str(ev.action.name())?;
            e.str("usage")?.u8(ev.usage)?;
            e.str("modifiers")?.u8(ev.modifiers)?;
            if let Some(k) = key {
                e.str("key")?.str(k)?;
            }
        }
        // the typed text: at most one character per event
        let mut text = [0u8; CAPACITY];
        let mut n = 0;
        for ev in self.events() {
            if let (Action::Press, Some(c)) = (ev.action, ev.ascii) {
                text[n] = c as u8; // to_ascii only yields ASCII
                n += 1;
            }
        }
        e.str("text")?.str(core::str::from_utf8(&text[..n]).unwrap_or(""))?;
        let len = e.into_writer().position();
        Ok(&buf[..len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use minicbor::Decoder;

    fn ev(action: Action, usage: u8, modifiers: u8, ascii: Option<char>) -> KeyEvent {
        KeyEvent { action, usage, modifiers, ascii }
    }

    #[test]
    fn encodes_events_and_text() {
        let mut b = Batch { reports: 2, ..Default::default() };
        assert!(b.push(ev(Action::Press, 0xE1, 2, None)));
        assert!(b.push(ev(Action::Press, 0x0B, 2, Some('H'))));
        assert!(b.push(ev(Action::Release, 0x0B, 0, None)));
        let mut buf = [0u8; MAX_ENCODED];
        let bytes = b.encode(&mut buf).unwrap();

        let mut d = Decoder::new(bytes);
        assert_eq!(d.map().unwrap(), Some(3));
        assert_eq!(d.str().unwrap(), "reports");
        assert_eq!(d.u32().unwrap(), 2);
        assert_eq!(d.str().unwrap(), "events");
        assert_eq!(d.array().unwrap(), Some(3));
        // modifier press: 3 entries, no key
        assert_eq!(d.map().unwrap(), Some(3));
        assert_eq!((d.str().unwrap(), d.str().unwrap()), ("event", "press"));
        assert_eq!((d.str().unwrap(), d.u8().unwrap()), ("usage", 0xE1));
        assert_eq!((d.str().unwrap(), d.u8().unwrap()), ("modifiers", 2));
        // letter press with its key
        assert_eq!(d.map().unwrap(), Some(4));
        d.skip().unwrap();
        d.skip().unwrap();
        d.skip().unwrap();
        d.skip().unwrap();
        d.skip().unwrap();
        d.skip().unwrap();
        assert_eq!((d.str().unwrap(), d.str().unwrap()), ("key", "H"));
        assert_eq!(d.map().unwrap(), Some(3));
        assert_eq!((d.str().unwrap(), d.str().unwrap()), ("event", "release"));
        d.skip().unwrap();
        d.skip().unwrap();
        d.skip().unwrap();
        d.skip().unwrap();
        assert_eq!((d.str().unwrap(), d.str().unwrap()), ("text", "H"));
        assert_eq!(d.position(), bytes.len());
        assert!(d.datatype().is_err()); // nothing after the map
    }

    #[test]
    fn full_batch_of_worst_case_events_fits_the_bound() {
        let mut b = Batch { reports: u32::MAX, ..Default::default() };
        while b.push(ev(Action::Release, 0xFF, 0xFF, None)) {}
        assert_eq!(b.len(), CAPACITY);
        assert_eq!(b.room(), 0);
        let mut buf = [0u8; MAX_ENCODED];
        assert!(b.encode(&mut buf).is_ok());
        let mut b = Batch::default();
        while b.push(ev(Action::Press, 0x38, 0xFF, Some('?'))) {}
        assert!(b.encode(&mut buf).unwrap().len() < MAX_ENCODED);
    }

    #[test]
    fn empty_batch_is_still_a_report() {
        let b = Batch::default();
        assert_eq!(b.room(), CAPACITY);
        let mut buf = [0u8; 64];
        let bytes = b.encode(&mut buf).unwrap();
        let mut d = Decoder::new(bytes);
        assert_eq!(d.map().unwrap(), Some(3));
        d.skip().unwrap();
        assert_eq!(d.u32().unwrap(), 0);
        d.skip().unwrap();
        assert_eq!(d.array().unwrap(), Some(0));
        assert_eq!((d.str().unwrap(), d.str().unwrap()), ("text", ""));
    }

    #[test]
    fn too_small_buffer_is_an_error_not_a_truncation() {
        let mut b = Batch::default();
        b.push(ev(Action::Press, 4, 0, Some('a')));
        let mut buf = [0u8; 20];
        assert!(b.encode(&mut buf).is_err());
    }
}
