//! HD44780 character LCD (16×2) behind a PCF8574 I2C backpack, split embedded-hal style:
//!
//! - [`interface`]: the backpack's pin map and the HD44780 instruction set;
//! - [`conversion`]: pure encoding — bytes → backpack writes, text and CBOR maps → a
//!   [`Screen`] of character codes;
//! - [`Hd44780`] (in `display`): the display over any `embedded_hal::i2c::I2c` + `DelayNs`;
//! - [`driver`] (wasm): shows config `text`, then whatever map arrives in the inbox.
//!
//! On the wire: the PCF8574 drives its 8 pins with each byte written to it
//! (P0 = RS, P1 = RW, P2 = EN, P3 = backlight, P4–P7 = D4–D7). Each HD44780 byte is sent as
//! two nibbles, high first, each latched by a falling EN edge: one I2C write of 4 bytes
//! `[hi|EN, hi, lo|EN, lo]` (RS set for data, backlight bit kept). Initialisation follows
//! the datasheet's 4-bit sequence (figure 24).
#![cfg_attr(target_arch = "wasm32", no_std)]

pub mod conversion;
mod display;
pub mod interface;

pub mod driver;

pub use conversion::{RenderError, Screen};
pub use display::Hd44780;
