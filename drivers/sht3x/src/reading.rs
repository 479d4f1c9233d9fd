//! The SHT3x over any embedded-hal 1.0 `I2c` and `DelayNs`: single-shot measurement without
//! clock stretching (what goes on the wire: crate docs).

use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::{ErrorKind, I2c, NoAcknowledgeSource};

use crate::configuration::Repeatability;
use crate::conversion::Measurement;
use crate::interface::command_bytes;

/// How often the result read is retried (1 ms apart) while the sensor NACKs its address.
pub const READ_RETRIES: u32 = 5;

/// An SHT3x failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error<E> {
    /// The bus transfer failed.
    I2c(E),
    /// A response word's CRC did not match: the data is corrupt.
    Crc,
    /// The sensor kept NACKing the result read: no measurement was ready.
    NotReady,
}

/// An SHT3x at `address` on `i2c`.
#[derive(Debug)]
pub struct Sht3x<I2C, D> {
    i2c: I2C,
    delay: D,
    address: u8,
    repeatability: Repeatability,
}

impl<I2C: I2c, D: DelayNs> Sht3x<I2C, D> {
    /// Wraps the bus; no I/O.
    pub fn new(i2c: I2C, delay: D, address: u8, repeatability: Repeatability) -> Self {
        Self { i2c, delay, address, repeatability }
    }

    /// One single-shot measurement, CRC-verified.
    pub fn measure(&mut self) -> Result<Measurement, Error<I2C::Error>> {
        let command = command_bytes(self.repeatability.command());
        self.i2c.write(self.address, &command).map_err(Error::I2c)?;
        self.delay.delay_us(self.repeatability.max_duration_us());
        let mut response = [0u8; 6];
        let mut attempt = 0;
        loop {
            match self.i2c.read(self.address, &mut response) {
                Ok(()) => break,
                Err(e) if is_address_nack(&e) && attempt < READ_RETRIES => {
                    attempt += 1;
                    self.delay.delay_ms(1);
                }
                Err(e) if is_address_nack(&e) => return Err(Error::NotReady),
                Err(e) => return Err(Error::I2c(e)),
            }
        }
        Measurement::from_response(&response).ok_or(Error::Crc)
    }

    /// Gives the bus and delay back.
    pub fn release(self) -> (I2C, D) {
        (self.i2c, self.delay)
    }
}

fn is_address_nack<E: embedded_hal::i2c::Error>(e: &E) -> bool {
    matches!(
        e.kind(),
        ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address | NoAcknowledgeSource::Unknown)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::conversion::crc8;
    use embedded_hal_mock::eh1::delay::{CheckedDelay, NoopDelay, Transaction as D};
    use embedded_hal_mock::eh1::i2c::{Mock, Transaction as T};

    const A: u8 = 0x44;
    const NACK: ErrorKind = ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address);

    fn response(t: u16, h: u16) -> Vec<u8> {
        let (t, h) = (t.to_be_bytes(), h.to_be_bytes());
        vec![t[0], t[1], crc8(&t), h[0], h[1], crc8(&h)]
    }

    #[test]
    fn single_shot_on_the_wire() {
        let mut i2c = Mock::new(&[T::write(A, vec![0x24, 0x00]), T::read(A, response(0x6666, 0x8000))]);
        let mut delay = CheckedDelay::new(&[D::delay_us(15_000)]);
        let mut dev = Sht3x::new(i2c.clone(), delay.clone(), A, Repeatability::High);
        let m = dev.measure().unwrap();
        assert!((m.temperature_c() - 25.0).abs() < 1e-4);
        assert!((m.humidity_pct() - 50.0).abs() < 0.01);
        i2c.done();
        delay.done();
    }

    #[test]
    fn nack_while_measuring_is_retried() {
        let mut i2c = Mock::new(&[
            T::write(A, vec![0x24, 0x16]),
            T::read(A, vec![0; 6]).with_error(NACK),
            T::read(A, response(0x2f8b, 0x1000)),
        ]);
        let mut delay = CheckedDelay::new(&[D::delay_us(4_000), D::delay_ms(1)]);
        let mut dev = Sht3x::new(i2c.clone(), delay.clone(), A, Repeatability::Low);
        let m = dev.measure().unwrap();
        assert!((m.temperature_c() - -12.5).abs() < 0.01);
        i2c.done();
        delay.done();
    }

    #[test]
    fn endless_nack_is_not_ready() {
        let mut script = vec![T::write(A, vec![0x24, 0x00])];
        for _ in 0..=READ_RETRIES {
            script.push(T::read(A, vec![0; 6]).with_error(NACK));
        }
        let mut i2c = Mock::new(&script);
        let mut dev = Sht3x::new(i2c.clone(), NoopDelay, A, Repeatability::High);
        assert_eq!(dev.measure(), Err(Error::NotReady));
        i2c.done();
    }

    #[test]
    fn crc_failure_is_an_error() {
        let mut bad = response(0x6666, 0x8000);
        bad[2] ^= 0xff;
        let mut i2c = Mock::new(&[T::write(A, vec![0x24, 0x00]), T::read(A, bad)]);
        let mut dev = Sht3x::new(i2c.clone(), NoopDelay, A, Repeatability::High);
        assert_eq!(dev.measure(), Err(Error::Crc));
        i2c.done();
    }

    #[test]
    fn other_bus_errors_are_not_retried() {
        let mut i2c = Mock::new(&[T::write(A, vec![0x24, 0x00]).with_error(ErrorKind::Bus)]);
        let mut dev = Sht3x::new(i2c.clone(), NoopDelay, A, Repeatability::High);
        assert_eq!(dev.measure(), Err(Error::I2c(ErrorKind::Bus)));
        i2c.done();
    }
}
