//! PCF8574 backpack wiring and the HD44780 instruction set (Hitachi datasheet table 6).

/// Usual backpack address (PCF8574 with A2..A0 high); PCF8574A boards use 0x3F.
pub const DEFAULT_ADDRESS: u8 = 0x27;

/// P0: register select (0 = instruction, 1 = data).
pub const RS: u8 = 1 << 0;
/// P1: read/write (always 0 = write here).
pub const RW: u8 = 1 << 1;
/// P2: enable; data is latched on its falling edge.
pub const EN: u8 = 1 << 2;
/// P3: backlight transistor.
pub const BACKLIGHT: u8 = 1 << 3;

/// Clear display (1.52 ms).
pub const CLEAR_DISPLAY: u8 = 0x01;
/// Return home (1.52 ms).
pub const RETURN_HOME: u8 = 0x02;
/// Entry mode set: increment, no display shift.
pub const ENTRY_MODE_INCREMENT: u8 = 0x06;
/// Display control: display on, cursor off, blink off.
pub const DISPLAY_ON: u8 = 0x0C;
/// Display control: everything off.
pub const DISPLAY_OFF: u8 = 0x08;
/// Function set: 4-bit interface, 2 lines, 5×8 dots.
pub const FUNCTION_SET_4BIT_2LINE: u8 = 0x28;
/// Set DDRAM address (OR the address in).
pub const SET_DDRAM_ADDR: u8 = 0x80;

/// Columns of the display.
pub const COLS: usize = 16;
/// Rows of the display.
pub const ROWS: usize = 2;
/// DDRAM address of each row's first column.
pub const ROW_ADDR: [u8; ROWS] = [0x00, 0x40];
/// The longest single I2C write the driver makes: 32 bytes (8 characters), which an
/// SMBus-only adapter can still carry as an I2C block write (one byte plus 32).
pub const MAX_WRITE: usize = 32;

/// Power-on wait before the first instruction (datasheet: > 40 ms after Vcc = 2.7 V).
pub const POWER_ON_US: u32 = 50_000;
/// Execution time of clear/home (1.52 ms), rounded up.
pub const SLOW_COMMAND_US: u32 = 2_000;
