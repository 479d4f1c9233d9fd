//! The echo device's protocol and one test cycle, independent of how bytes reach it.
//!
//! Device (host/usbdevices/_echo.py): vendor requests to the device — `0x40/0x01`
//! SET_BUFFER (OUT, ≤ 256 bytes), `0xC0/0x02` GET_BUFFER (IN), `0xC0/0x03` always STALLs,
//! `0xC0/0x04` GET_QUEUED (IN, u16 LE: bytes waiting in the bulk queue). Bytes written to
//! the bulk OUT endpoint come back in order from bulk IN; each interrupt IN report is a
//! 4-byte LE counter that increments per report.
//!
//! One [`Cycle`] (one `poll`) puts on the wire: SET_BUFFER with a 32-byte pattern,
//! GET_BUFFER (checked equal), the STALL request (must fail with `pipe`), for each size in
//! [`SIZES`] one bulk OUT of that many pattern bytes then bulk INs until they are all back
//! (checked equal), GET_QUEUED (must be 0), and one interrupt IN (counter must increase).

use wasi_hw_sdk::usb::{self, Direction, InterfaceDescriptor, TransferType};

/// Bulk round-trip sizes, in bytes.
pub const SIZES: [usize; 4] = [1, 64, 512, 4096];
/// Length of the control-buffer pattern.
pub const CONTROL_LEN: usize = 32;

pub const SET_BUFFER: u8 = 0x01;
pub const GET_BUFFER: u8 = 0x02;
pub const STALL_REQUEST: u8 = 0x03;
pub const GET_QUEUED: u8 = 0x04;

/// The three endpoints the driver uses, found in the interface descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Endpoints {
    pub bulk_out: u8,
    pub bulk_in: u8,
    pub interrupt_in: u8,
}

impl Endpoints {
    /// The bulk OUT, bulk IN and interrupt IN endpoints of `iface`, or `None` if one is missing.
    pub fn find(iface: &InterfaceDescriptor<'_>) -> Option<Self> {
        Some(Self {
            bulk_out: iface.find_endpoint(Direction::Out, TransferType::Bulk)?.address,
            bulk_in: iface.find_endpoint(Direction::In, TransferType::Bulk)?.address,
            interrupt_in: iface.find_endpoint(Direction::In, TransferType::Interrupt)?.address,
        })
    }
}

/// What a cycle needs from the device: one method per kind of transfer, each one call.
pub trait EchoPort {
    /// Vendor control OUT to the device (`0x40`, `request`, value 0, index 0, `data`).
    fn vendor_out(&mut self, request: u8, data: &[u8]) -> usb::Result<usize>;
    /// Vendor control IN from the device (`0xC0`, `request`, value 0, index 0, `buf.len()`).
    fn vendor_in(&mut self, request: u8, buf: &mut [u8]) -> usb::Result<usize>;
    fn bulk_out(&mut self, data: &[u8]) -> usb::Result<usize>;
    fn bulk_in(&mut self, buf: &mut [u8]) -> usb::Result<usize>;
    fn interrupt_in(&mut self, buf: &mut [u8]) -> usb::Result<usize>;
}

/// The deterministic test pattern: byte `i` of round `seed` is a mix of both, so shifted,
/// dropped or stale data never compares equal.
pub fn fill_pattern(buf: &mut [u8], seed: u32) {
    for (i, b) in buf.iter_mut().enumerate() {
        let x = (i as u32).wrapping_mul(31).wrapping_add(seed.wrapping_mul(0x9E37_79B9));
        *b = (x ^ (x >> 8) ^ (x >> 16)) as u8;
    }
}

/// Which check of a cycle failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// A transfer failed with this error.
    Usb(&'static str, usb::Error),
    /// Data came back different (step, first differing offset).
    Mismatch(&'static str, usize),
    /// A transfer moved fewer bytes than asked (step, expected, actual).
    Short(&'static str, usize, usize),
    /// The STALL request did not stall.
    NoStall,
    /// Bytes were left in the echo queue after all round trips.
    Leftover(u16),
    /// The interrupt counter did not increase (previous, now).
    CounterNotIncreasing(u32, u32),
}

/// Running totals over all cycles, reported after each.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub cycles: u32,
    /// Verified bulk and control round trips.
    pub round_trips: u32,
    /// Bytes sent and verified back (bulk and control).
    pub bytes: u64,
    /// Checks that failed.
    pub errors: u32,
    /// The last interrupt counter seen.
    pub counter: Option<u32>,
}

/// Runs the checks of one cycle; returns the first failure (after updating `totals`).
pub struct Cycle<'a, P: EchoPort> {
    pub port: &'a mut P,
    pub totals: &'a mut Totals,
}

fn usb<T>(step: &'static str, r: usb::Result<T>) -> Result<T, Failure> {
    r.map_err(|e| Failure::Usb(step, e))
}

fn compare(step: &'static str, want: &[u8], got: &[u8]) -> Result<(), Failure> {
    if got.len() != want.len() {
        return Err(Failure::Short(step, want.len(), got.len()));
    }
    match want.iter().zip(got).position(|(a, b)| a != b) {
        Some(i) => Err(Failure::Mismatch(step, i)),
        None => Ok(()),
    }
}

impl<P: EchoPort> Cycle<'_, P> {
    /// All checks of one cycle, stopping at the first failure.
    pub fn run(mut self) -> Result<(), Failure> {
        self.totals.cycles += 1;
        let seed = self.totals.cycles;
        let r = self.steps(seed);
        if r.is_err() {
            self.totals.errors += 1;
        }
        r
    }

    fn steps(&mut self, seed: u32) -> Result<(), Failure> {
        self.control_round_trip(seed)?;
        self.stall()?;
        for (i, &size) in SIZES.iter().enumerate() {
            self.bulk_round_trip(size, seed.wrapping_add(i as u32 + 1))?;
        }
        let mut q = [0u8; 2];
        let n = usb("get_queued", self.port.vendor_in(GET_QUEUED, &mut q))?;
        if n != 2 {
            return Err(Failure::Short("get_queued", 2, n));
        }
        let left = u16::from_le_bytes(q);
        if left != 0 {
            return Err(Failure::Leftover(left));
        }
        self.interrupt()
    }

    fn control_round_trip(&mut self, seed: u32) -> Result<(), Failure> {
        let mut out = [0u8; CONTROL_LEN];
        fill_pattern(&mut out, seed);
        let n = usb("set_buffer", self.port.vendor_out(SET_BUFFER, &out))?;
        if n != out.len() {
            return Err(Failure::Short("set_buffer", out.len(), n));
        }
        let mut back = [0u8; CONTROL_LEN];
        let n = usb("get_buffer", self.port.vendor_in(GET_BUFFER, &mut back))?;
        compare("get_buffer", &out, &back[..n])?;
        self.totals.round_trips += 1;
        self.totals.bytes += out.len() as u64;
        Ok(())
    }

    fn stall(&mut self) -> Result<(), Failure> {
        let mut b = [0u8; 1];
        match self.port.vendor_in(STALL_REQUEST, &mut b) {
            Err(usb::Error::Pipe) => Ok(()),
            Err(e) => Err(Failure::Usb("stall_request", e)),
            Ok(_) => Err(Failure::NoStall),
        }
    }

    fn bulk_round_trip(&mut self, size: usize, seed: u32) -> Result<(), Failure> {
        let mut out = [0u8; 4096];
        let mut back = [0u8; 4096];
        let out = &mut out[..size];
        fill_pattern(out, seed);
        let n = usb("bulk_out", self.port.bulk_out(out))?;
        if n != size {
            return Err(Failure::Short("bulk_out", size, n));
        }
        // A short packet may end an IN transfer early: read until everything is back.
        let mut got = 0;
        while got < size {
            let n = usb("bulk_in", self.port.bulk_in(&mut back[got..size]))?;
            if n == 0 {
                break;
            }
            got += n;
        }
        compare("bulk_in", out, &back[..got])?;
        self.totals.round_trips += 1;
        self.totals.bytes += size as u64;
        Ok(())
    }

    fn interrupt(&mut self) -> Result<(), Failure> {
        let mut r = [0u8; 8];
        let n = usb("interrupt_in", self.port.interrupt_in(&mut r))?;
        if n < 4 {
            return Err(Failure::Short("interrupt_in", 4, n));
        }
        let now = u32::from_le_bytes([r[0], r[1], r[2], r[3]]);
        if let Some(prev) = self.totals.counter {
            if now <= prev {
                return Err(Failure::CounterNotIncreasing(prev, now));
            }
        }
        self.totals.counter = Some(now);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::vec::Vec;

    /// The echo device's behaviour, as documented in host/usbdevices/_echo.py.
    #[derive(Default)]
    struct Model {
        buffer: Vec<u8>,
        queue: Vec<u8>,
        counter: u32,
        packet: usize,
        corrupt_at: Option<usize>,
        stall_works: bool,
    }

    impl EchoPort for Model {
        fn vendor_out(&mut self, request: u8, data: &[u8]) -> usb::Result<usize> {
            match request {
                SET_BUFFER if data.len() <= 256 => {
                    self.buffer = data.to_vec();
                    Ok(data.len())
                }
                _ => Err(usb::Error::Pipe),
            }
        }
        fn vendor_in(&mut self, request: u8, buf: &mut [u8]) -> usb::Result<usize> {
            let data = match request {
                GET_BUFFER => self.buffer.clone(),
                GET_QUEUED => (self.queue.len() as u16).to_le_bytes().to_vec(),
                STALL_REQUEST if !self.stall_works => Vec::new(),
                _ => return Err(usb::Error::Pipe),
            };
            let n = data.len().min(buf.len());
            buf[..n].copy_from_slice(&data[..n]);
            Ok(n)
        }
        fn bulk_out(&mut self, data: &[u8]) -> usb::Result<usize> {
            self.queue.extend_from_slice(data);
            Ok(data.len())
        }
        fn bulk_in(&mut self, buf: &mut [u8]) -> usb::Result<usize> {
            if self.queue.is_empty() {
                return Err(usb::Error::Timeout);
            }
            // one short-ish chunk per call, to exercise the read loop
            let n = buf.len().min(self.queue.len()).min(self.packet);
            buf[..n].copy_from_slice(&self.queue[..n]);
            self.queue.drain(..n);
            if let Some(at) = self.corrupt_at.take() {
                if at < n {
                    buf[at] ^= 0xFF;
                }
            }
            Ok(n)
        }
        fn interrupt_in(&mut self, buf: &mut [u8]) -> usb::Result<usize> {
            let r = self.counter.to_le_bytes();
            self.counter += 1;
            let n = buf.len().min(4);
            buf[..n].copy_from_slice(&r[..n]);
            Ok(n)
        }
    }

    fn model() -> Model {
        Model { packet: 1000, stall_works: true, ..Default::default() }
    }

    #[test]
    fn good_device_passes_two_cycles() {
        let mut m = model();
        let mut t = Totals::default();
        Cycle { port: &mut m, totals: &mut t }.run().unwrap();
        Cycle { port: &mut m, totals: &mut t }.run().unwrap();
        assert_eq!(t.cycles, 2);
        assert_eq!(t.errors, 0);
        assert_eq!(t.round_trips, 2 * (1 + SIZES.len() as u32));
        assert_eq!(t.bytes, 2 * (CONTROL_LEN + 1 + 64 + 512 + 4096) as u64);
        assert_eq!(t.counter, Some(1));
    }

    #[test]
    fn corrupted_byte_is_a_mismatch_at_its_offset() {
        let mut m = Model { corrupt_at: Some(0), ..model() };
        let mut t = Totals::default();
        let err = Cycle { port: &mut m, totals: &mut t }.run().unwrap_err();
        assert_eq!(err, Failure::Mismatch("bulk_in", 0));
        assert_eq!(t.errors, 1);
    }

    #[test]
    fn short_packets_are_reassembled() {
        let mut m = Model { packet: 64, ..model() };
        let mut t = Totals::default();
        Cycle { port: &mut m, totals: &mut t }.run().unwrap();
    }

    #[test]
    fn missing_stall_is_reported() {
        let mut m = Model { stall_works: false, ..model() };
        let mut t = Totals::default();
        assert_eq!(Cycle { port: &mut m, totals: &mut t }.run(), Err(Failure::NoStall));
    }

    #[test]
    fn counter_must_increase_across_cycles() {
        let mut m = model();
        let mut t = Totals { counter: Some(10), ..Default::default() };
        assert_eq!(Cycle { port: &mut m, totals: &mut t }.run(), Err(Failure::CounterNotIncreasing(10, 0)));
    }

    #[test]
    fn lost_data_times_out_as_usb_error() {
        struct Lossy(Model);
        impl EchoPort for Lossy {
            fn vendor_out(&mut self, r: u8, d: &[u8]) -> usb::Result<usize> {
                self.0.vendor_out(r, d)
            }
            fn vendor_in(&mut self, r: u8, b: &mut [u8]) -> usb::Result<usize> {
                self.0.vendor_in(r, b)
            }
            fn bulk_out(&mut self, d: &[u8]) -> usb::Result<usize> {
                Ok(d.len()) // swallowed
            }
            fn bulk_in(&mut self, b: &mut [u8]) -> usb::Result<usize> {
                self.0.bulk_in(b)
            }
            fn interrupt_in(&mut self, b: &mut [u8]) -> usb::Result<usize> {
                self.0.interrupt_in(b)
            }
        }
        let mut m = Lossy(model());
        let mut t = Totals::default();
        let err = Cycle { port: &mut m, totals: &mut t }.run().unwrap_err();
        assert_eq!(err, Failure::Usb("bulk_in", usb::Error::Timeout));
    }

    #[test]
    fn pattern_depends_on_seed_and_position() {
        let (mut a, mut b) = ([0u8; 64], [0u8; 64]);
        fill_pattern(&mut a, 1);
        fill_pattern(&mut b, 2);
        assert_ne!(a, b);
        assert_ne!(a[..32], a[32..]);
        let mut c = [0u8; 64];
        fill_pattern(&mut c, 1);
        assert_eq!(a, c);
    }

    #[test]
    fn endpoints_found_in_the_echo_interface() {
        // configuration as host/usbdevices/_echo.py describes it
        let cfg: [u8; 9 + 9 + 7 * 3] = [
            9, 2, 39, 0, 1, 1, 0, 0x80, 50, //
            9, 4, 0, 0, 3, 0xFF, 0, 0, 0, //
            7, 5, 0x01, 2, 64, 0, 0, //
            7, 5, 0x81, 2, 64, 0, 0, //
            7, 5, 0x82, 3, 8, 0, 1,
        ];
        let c = usb::ConfigDescriptor::parse(&cfg).unwrap();
        let e = Endpoints::find(&c.interface(0, 0).unwrap()).unwrap();
        assert_eq!(e, Endpoints { bulk_out: 0x01, bulk_in: 0x81, interrupt_in: 0x82 });
        let mut no_int = cfg;
        no_int[35] = 2; // interrupt endpoint becomes bulk
        let c = usb::ConfigDescriptor::parse(&no_int).unwrap();
        assert_eq!(Endpoints::find(&c.interface(0, 0).unwrap()), None);
    }
}
