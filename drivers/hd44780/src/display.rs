//! The display over any embedded-hal 1.0 `I2c` and `DelayNs` (wire format: crate docs).

use embedded_hal::delay::DelayNs;
use embedded_hal::i2c::I2c;

use crate::conversion::{encode_byte, encode_nibble, Register, Screen};
use crate::interface::*;

/// An HD44780 behind a PCF8574 at `address`.
#[derive(Debug)]
pub struct Hd44780<I2C, D> {
    i2c: I2C,
    delay: D,
    address: u8,
    backlight: bool,
}

impl<I2C: I2c, D: DelayNs> Hd44780<I2C, D> {
    /// Wraps the bus; no I/O until [`init`](Self::init).
    pub fn new(i2c: I2C, delay: D, address: u8, backlight: bool) -> Self {
        Self { i2c, delay, address, backlight }
    }

    /// The datasheet's 4-bit initialisation (figure 24), then 2 lines 5×8, display on,
    /// cursor off, increment without shift, cleared.
    pub fn init(&mut self) -> Result<(), I2C::Error> {
        // All pins low but the backlight: EN idle low before the first edge.
        self.i2c.write(self.address, &[if self.backlight { BACKLIGHT } else { 0 }])?;
        self.delay.delay_us(POWER_ON_US);
        // "Function set: 8-bit" three times, waiting > 4.1 ms, > 100 µs, then 4-bit.
        self.nibble(0x3)?;
        self.delay.delay_us(4_500);
        self.nibble(0x3)?;
        self.delay.delay_us(150);
        self.nibble(0x3)?;
        self.delay.delay_us(150);
        self.nibble(0x2)?;
        self.delay.delay_us(150);
        self.command(FUNCTION_SET_4BIT_2LINE)?;
        self.command(DISPLAY_OFF)?;
        self.clear()?;
        self.command(ENTRY_MODE_INCREMENT)?;
        self.command(DISPLAY_ON)
    }

    /// Clears the display and homes the cursor.
    pub fn clear(&mut self) -> Result<(), I2C::Error> {
        self.command(CLEAR_DISPLAY)?;
        self.delay.delay_us(SLOW_COMMAND_US);
        Ok(())
    }

    /// Writes every row of `screen` (cursor to each row's start, then its characters).
    ///
    /// The PCF8574 latches every byte on its own, so a row goes out in writes of at most
    /// [`MAX_WRITE`] bytes: what an SMBus-only adapter can carry (an I2C block write is one
    /// byte plus 32), with the same effect on the display as one long write.
    pub fn show(&mut self, screen: &Screen) -> Result<(), I2C::Error> {
        for (row, line) in screen.lines.iter().enumerate() {
            self.command(SET_DDRAM_ADDR | ROW_ADDR[row])?;
            let mut wire = [0u8; 4 * COLS];
            for (chunk, &code) in wire.chunks_exact_mut(4).zip(line.iter()) {
                chunk.copy_from_slice(&encode_byte(code, Register::Data, self.backlight));
            }
            for piece in wire.chunks(MAX_WRITE) {
                self.i2c.write(self.address, piece)?;
            }
        }
        Ok(())
    }

    /// Sends one instruction byte. Instructions other than clear/home execute in 37 µs,
    /// less than the I2C time of the next nibble pair, so no explicit wait follows.
    pub fn command(&mut self, instruction: u8) -> Result<(), I2C::Error> {
        self.i2c.write(self.address, &encode_byte(instruction, Register::Instruction, self.backlight))
    }

    fn nibble(&mut self, nibble: u8) -> Result<(), I2C::Error> {
        self.i2c.write(self.address, &encode_nibble(nibble, self.backlight))
    }

    /// Gives the bus and delay back.
    pub fn release(self) -> (I2C, D) {
        (self.i2c, self.delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use embedded_hal_mock::eh1::delay::{CheckedDelay, NoopDelay, Transaction as D};
    use embedded_hal_mock::eh1::i2c::{Mock, Transaction as T};

    const A: u8 = 0x27;

    fn cmd(b: u8) -> T {
        T::write(A, encode_byte(b, Register::Instruction, true).to_vec())
    }

    #[test]
    fn init_sequence_on_the_wire() {
        let mut i2c = Mock::new(&[
            T::write(A, vec![0x08]),
            T::write(A, vec![0x3c, 0x38]),
            T::write(A, vec![0x3c, 0x38]),
            T::write(A, vec![0x3c, 0x38]),
            T::write(A, vec![0x2c, 0x28]),
            T::write(A, vec![0x2c, 0x28, 0x8c, 0x88]), // 0x28 function set
            cmd(0x08),
            cmd(0x01),
            cmd(0x06),
            cmd(0x0c),
        ]);
        let mut delay = CheckedDelay::new(&[
            D::delay_us(50_000),
            D::delay_us(4_500),
            D::delay_us(150),
            D::delay_us(150),
            D::delay_us(150),
            D::delay_us(2_000),
        ]);
        let mut lcd = Hd44780::new(i2c.clone(), delay.clone(), A, true);
        lcd.init().unwrap();
        i2c.done();
        delay.done();
    }

    #[test]
    fn show_addresses_each_row_then_writes_its_characters() {
        let screen = Screen::from_text("Hi\nyou");
        let row = |text: &[u8; 16]| -> Vec<u8> {
            text.iter().flat_map(|&c| encode_byte(c, Register::Data, true)).collect()
        };
        let halves = |text: &[u8; 16]| -> [T; 2] {
            let r = row(text);
            [T::write(A, r[..MAX_WRITE].to_vec()), T::write(A, r[MAX_WRITE..].to_vec())]
        };
        let [hi1, hi2] = halves(b"Hi              ");
        let [you1, you2] = halves(b"you             ");
        let mut i2c = Mock::new(&[cmd(0x80), hi1, hi2, cmd(0xc0), you1, you2]);
        let mut lcd = Hd44780::new(i2c.clone(), NoopDelay, A, true);
        lcd.show(&screen).unwrap();
        i2c.done();
    }
}
