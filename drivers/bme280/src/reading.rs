//! The BME280 over any embedded-hal 1.0 `I2c` and `DelayNs`: identification, soft reset,
//! calibration read-out and forced-mode measurement (what goes on the wire: crate docs).

use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;

use crate::configuration::Config;
use crate::conversion::{compensate, Calibration, Measurement, RawSample};
use crate::interface::*;

/// How often `status` is re-read (1 ms apart) after the maximum measurement time.
pub const STATUS_RETRIES: u32 = 10;

/// A BME280 failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error<E> {
    /// The bus transfer failed.
    I2c(E),
    /// `id` did not read 0x60: not a BME280 (0x58 would be a BMP280).
    WrongChipId(u8),
    /// `status` still showed `measuring` / `im_update` after the datasheet's maximum time.
    Busy,
}

/// A BME280 at `address` on `i2c`.
#[derive(Debug)]
pub struct Bme280<I2C, D> {
    i2c: I2C,
    delay: D,
    address: u8,
    config: Config,
    calibration: Calibration,
}

impl<I2C: I2c, D: DelayNs> Bme280<I2C, D> {
    /// Wraps the bus; no I/O until [`init`](Self::init).
    pub fn new(i2c: I2C, delay: D, address: u8, config: Config) -> Self {
        Self { i2c, delay, address, config, calibration: Calibration::default() }
    }

    /// Checks the chip id, soft-resets, waits for the NVM copy and reads the calibration.
    pub fn init(&mut self) -> Result<(), Error<I2C::Error>> {
        let id = self.read_register(ID)?;
        if id != CHIP_ID {
            return Err(Error::WrongChipId(id));
        }
        self.write_register(RESET, RESET_WORD)?;
        self.delay.delay_ms(2); // start-up time after reset: 2 ms (datasheet 1.1)
        self.wait_status_clear(STATUS_IM_UPDATE)?;
        let mut block1 = [0u8; CALIB_00_LEN];
        let mut block2 = [0u8; CALIB_26_LEN];
        self.i2c.write_read(self.address, &[CALIB_00], &mut block1).map_err(Error::I2c)?;
        self.i2c.write_read(self.address, &[CALIB_26], &mut block2).map_err(Error::I2c)?;
        self.calibration = Calibration::from_registers(&block1, &block2);
        Ok(())
    }

    /// The calibration read by `init`.
    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }

    /// One forced-mode measurement, compensated.
    pub fn measure(&mut self) -> Result<Measurement, Error<I2C::Error>> {
        let raw = self.measure_raw()?;
        Ok(compensate(&self.calibration, &raw))
    }

    /// One forced-mode measurement, uncompensated.
    pub fn measure_raw(&mut self) -> Result<RawSample, Error<I2C::Error>> {
        // ctrl_hum only takes effect with the following ctrl_meas write (datasheet 5.4.3).
        let config = self.config;
        self.write_register(CTRL_HUM, config.ctrl_hum())?;
        self.write_register(CTRL_MEAS, config.ctrl_meas_forced())?;
        self.delay.delay_us(config.max_measurement_us());
        self.wait_status_clear(STATUS_MEASURING)?;
        let mut data = [0u8; DATA_LEN];
        self.i2c.write_read(self.address, &[DATA], &mut data).map_err(Error::I2c)?;
        Ok(RawSample::from_registers(&data))
    }

    /// Gives the bus and delay back.
    pub fn release(self) -> (I2C, D) {
        (self.i2c, self.delay)
    }

    fn wait_status_clear(&mut self, mask: u8) -> Result<(), Error<I2C::Error>> {
        for attempt in 0..=STATUS_RETRIES {
            if self.read_register(STATUS)? & mask == 0 {
                return Ok(());
            }
            if attempt < STATUS_RETRIES {
                self.delay.delay_ms(1);
            }
        }
        Err(Error::Busy)
    }

    fn read_register(&mut self, reg: u8) -> Result<u8, Error<I2C::Error>> {
        let mut value = [0u8];
        self.i2c.write_read(self.address, &[reg], &mut value).map_err(Error::I2c)?;
        Ok(value[0])
    }

    fn write_register(&mut self, reg: u8, value: u8) -> Result<(), Error<I2C::Error>> {
        self.i2c.write(self.address, &[reg, value]).map_err(Error::I2c)
    }
}

#[cfg(test)]
#[allow(clippy::unusual_byte_groupings)] // grouped by register field
mod tests {
    use super::*;
    use crate::configuration::Oversampling;
    use crate::conversion::tests::{example_registers, EXAMPLE};
    use embedded_hal::i2c::ErrorKind;
    use embedded_hal_mock::eh1::delay::{CheckedDelay, NoopDelay, Transaction as D};
    use embedded_hal_mock::eh1::i2c::{Mock, Transaction as T};

    const A: u8 = 0x76;

    fn init_script() -> Vec<T> {
        let (b1, b2) = example_registers();
        vec![
            T::write_read(A, vec![ID], vec![CHIP_ID]),
            T::write(A, vec![RESET, RESET_WORD]),
            T::write_read(A, vec![STATUS], vec![STATUS_IM_UPDATE]),
            T::write_read(A, vec![STATUS], vec![0]),
            T::write_read(A, vec![CALIB_00], b1.to_vec()),
            T::write_read(A, vec![CALIB_26], b2.to_vec()),
        ]
    }

    #[test]
    fn init_then_forced_measurement_on_the_wire() {
        let mut script = init_script();
        script.extend([
            T::write(A, vec![CTRL_HUM, 0b001]),
            T::write(A, vec![CTRL_MEAS, 0b001_001_01]),
            T::write_read(A, vec![STATUS], vec![STATUS_MEASURING]),
            T::write_read(A, vec![STATUS], vec![0]),
            T::write_read(A, vec![DATA], vec![0x65, 0x5a, 0xc0, 0x7e, 0xed, 0x00, 0x75, 0x30]),
        ]);
        let mut i2c = Mock::new(&script);
        let mut delay = CheckedDelay::new(&[
            D::delay_ms(2),     // after reset
            D::delay_ms(1),     // im_update still set once
            D::delay_us(9_300), // max measurement time at 1x/1x/1x
            D::delay_ms(1),     // measuring still set once
        ]);
        let mut dev = Bme280::new(i2c.clone(), delay.clone(), A, Config::default());
        dev.init().unwrap();
        assert_eq!(*dev.calibration(), EXAMPLE);
        let m = dev.measure().unwrap();
        assert_eq!(m.temperature_centi_c, 2508);
        assert!((m.pressure_pa().unwrap() - 100_653.27).abs() < 0.05);
        assert!((m.humidity_pct().unwrap() - 55.0).abs() < 0.01);
        i2c.done();
        delay.done();
    }

    #[test]
    fn wrong_chip_id_is_reported() {
        let mut i2c = Mock::new(&[T::write_read(A, vec![ID], vec![0x58])]);
        let mut dev = Bme280::new(i2c.clone(), NoopDelay, A, Config::default());
        assert_eq!(dev.init(), Err(Error::WrongChipId(0x58)));
        i2c.done();
    }

    #[test]
    fn nack_propagates_as_i2c_error() {
        let mut i2c = Mock::new(&[T::write_read(A, vec![ID], vec![0]).with_error(ErrorKind::Other)]);
        let mut dev = Bme280::new(i2c.clone(), NoopDelay, A, Config::default());
        assert_eq!(dev.init(), Err(Error::I2c(ErrorKind::Other)));
        i2c.done();
    }

    #[test]
    fn stuck_measuring_is_busy_not_a_hang() {
        let cfg = Config { temperature: Oversampling::X1, pressure: Oversampling::Skipped, humidity: Oversampling::Skipped };
        let mut script = vec![T::write(A, vec![CTRL_HUM, 0]), T::write(A, vec![CTRL_MEAS, 0b001_000_01])];
        for _ in 0..=STATUS_RETRIES {
            script.push(T::write_read(A, vec![STATUS], vec![STATUS_MEASURING]));
        }
        let mut i2c = Mock::new(&script);
        let mut dev = Bme280::new(i2c.clone(), NoopDelay, A, cfg);
        assert_eq!(dev.measure_raw(), Err(Error::Busy));
        i2c.done();
    }
}
