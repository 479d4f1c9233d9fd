//! Pure encoding for the HD44780 backpack: HD44780 bytes → PCF8574 writes, and text or a
//! CBOR map → a [`Screen`] of character codes as the A00 character ROM draws them: printable
//! ASCII except the backslash, which the ROM does not have (its 0x5C is `¥`); `¥` → 0x5C,
//! `→` 0x7E, `←` 0x7F, `°` 0xDF; anything else → `?`. Lines longer than the display are cut.

use core::fmt::{self, Write};

use minicbor::data::Type;
use minicbor::Decoder;
use wasi_hw_sdk::FmtBuf;

use crate::interface::{BACKLIGHT, COLS, EN, ROWS, RS};

/// Whether a byte goes to the instruction or the data register.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Register {
    Instruction,
    Data,
}

/// The 4 PCF8574 bytes that send `value` as two EN-latched nibbles, high nibble first.
pub fn encode_byte(value: u8, register: Register, backlight: bool) -> [u8; 4] {
    let ctrl = if register == Register::Data { RS } else { 0 } | if backlight { BACKLIGHT } else { 0 };
    let hi = (value & 0xf0) | ctrl;
    let lo = (value << 4) | ctrl;
    [hi | EN, hi, lo | EN, lo]
}

/// The 2 PCF8574 bytes that send one nibble (the 4-bit initialisation steps).
pub fn encode_nibble(nibble: u8, backlight: bool) -> [u8; 2] {
    let b = (nibble << 4) | if backlight { BACKLIGHT } else { 0 };
    [b | EN, b]
}

/// The display's character code for `c`.
pub fn char_code(c: char) -> u8 {
    match c {
        '\\' => b'?',          // A00 ROM: 0x5C draws '¥'
        ' '..='}' => c as u8, // A00 ROM: ASCII 0x20..0x7D ('~' and DEL differ)
        '¥' => 0x5c,
        '→' => 0x7e,
        '←' => 0x7f,
        '°' => 0xdf,          // the A00 glyph is the small raised ring
        _ => b'?',
    }
}

/// What the display shows: `ROWS` lines of `COLS` character codes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Screen {
    pub lines: [[u8; COLS]; ROWS],
}

impl Default for Screen {
    fn default() -> Self {
        Screen { lines: [[b' '; COLS]; ROWS] }
    }
}

/// Writes characters into one line, cutting at the display width.
struct LineWriter<'a> {
    line: &'a mut [u8; COLS],
    col: usize,
}

impl Write for LineWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for c in s.chars() {
            if self.col < COLS {
                self.line[self.col] = char_code(c);
                self.col += 1;
            }
        }
        Ok(())
    }
}

impl Screen {
    /// Text split into lines at newlines (or the two characters `\n`, as typed on a
    /// command line); lines beyond the display are dropped.
    pub fn from_text(text: &str) -> Self {
        let mut screen = Screen::default();
        let mut row = 0;
        let mut w = LineWriter { line: &mut screen.lines[0], col: 0 };
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            let newline = c == '\n' || (c == '\\' && chars.peek() == Some(&'n'));
            if newline {
                if c == '\\' {
                    chars.next();
                }
                row += 1;
                if row == ROWS {
                    break;
                }
                w = LineWriter { line: &mut screen.lines[row], col: 0 };
            } else {
                let _ = w.write_char(c);
            }
        }
        screen
    }

    /// A CBOR map rendered as `key: value` lines, in map order (first `ROWS` entries).
    /// Keys must be text; values may be text, integers, floats, booleans or null.
    pub fn from_cbor_map(cbor: &[u8]) -> Result<Self, RenderError> {
        let mut screen = Screen::default();
        let mut d = Decoder::new(cbor);
        let len = d.map().map_err(|_| RenderError::NotAMap)?;
        let mut row = 0;
        loop {
            match len {
                Some(n) if row as u64 >= n => break,
                None if d.datatype().map_err(|_| RenderError::Malformed)? == Type::Break => break,
                _ => {}
            }
            match d.datatype() {
                Ok(Type::String) => {}
                Ok(_) => return Err(RenderError::KeyNotText),
                Err(_) => return Err(RenderError::Malformed),
            }
            let key = d.str().map_err(|_| RenderError::Malformed)?;
            if row < ROWS {
                let mut value = FmtBuf::<COLS>::new();
                write_value(&mut d, &mut value)?;
                render_entry(&mut screen.lines[row], key, value.as_str());
            } else {
                d.skip().map_err(|_| RenderError::Malformed)?;
            }
            row += 1;
        }
        Ok(screen)
    }
}

/// Lays out `key: value` in one line; when it does not fit, the space goes, then the key
/// is shortened so the value stays whole (`temperature:21.5`).
fn render_entry(line: &mut [u8; COLS], key: &str, value: &str) {
    let (k, v) = (key.chars().count(), value.chars().count());
    let mut w = LineWriter { line, col: 0 };
    let _ = if k + 2 + v <= COLS {
        write!(w, "{key}: {value}")
    } else if k + 1 + v <= COLS {
        write!(w, "{key}:{value}")
    } else {
        let keep = COLS.saturating_sub(v + 1).max(1);
        let cut = key.char_indices().nth(keep).map_or(key.len(), |(i, _)| i);
        write!(w, "{}:{value}", &key[..cut])
    };
}

/// Writes one CBOR value as text; floats with one decimal (a 16-column display).
fn write_value(d: &mut Decoder<'_>, w: &mut impl Write) -> Result<(), RenderError> {
    let bad = |_| RenderError::Malformed;
    let _ = match d.datatype().map_err(bad)? {
        Type::String => write!(w, "{}", d.str().map_err(bad)?),
        Type::U8 | Type::U16 | Type::U32 | Type::U64 => write!(w, "{}", d.u64().map_err(bad)?),
        Type::I8 | Type::I16 | Type::I32 | Type::I64 => write!(w, "{}", d.i64().map_err(bad)?),
        Type::F16 | Type::F32 => write!(w, "{:.1}", d.f32().map_err(bad)?),
        Type::F64 => write!(w, "{:.1}", d.f64().map_err(bad)?),
        Type::Bool => write!(w, "{}", d.bool().map_err(bad)?),
        Type::Null => {
            d.null().map_err(bad)?;
            write!(w, "-")
        }
        _ => return Err(RenderError::UnsupportedValue),
    };
    Ok(())
}

/// One row of a [`Screen`] as text (`Display`): character codes mapped back as the A00 ROM
/// draws them (0x5C → `¥`, 0x7E → `→`, 0x7F → `←`, 0xDF → `°`),
/// trailing blanks dropped.
pub struct LineText<'a>(pub &'a [u8; COLS]);

impl fmt::Display for LineText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let end = self.0.iter().rposition(|&c| c != b' ').map_or(0, |i| i + 1);
        for &code in &self.0[..end] {
            f.write_char(match code {
                0x5c => '¥',
                0x7e => '→',
                0x7f => '←',
                0xdf => '°',
                0x20..=0x7d => code as char,
                _ => '?',
            })?;
        }
        Ok(())
    }
}

/// Why an inbox message could not be shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenderError {
    /// The message is not a CBOR map.
    NotAMap,
    /// A key is not a text string.
    KeyNotText,
    /// A value is an array, map, byte string or tag.
    UnsupportedValue,
    /// The CBOR is truncated or invalid.
    Malformed,
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A definite CBOR map of text keys to f32 values.
    fn cbor_map(entries: &[(&str, f32)]) -> std::vec::Vec<u8> {
        let mut e = minicbor::Encoder::new(std::vec::Vec::new());
        e.map(entries.len() as u64).unwrap();
        for (k, v) in entries {
            e.str(k).unwrap().f32(*v).unwrap();
        }
        e.into_writer()
    }

    fn line(s: &Screen, row: usize) -> &str {
        core::str::from_utf8(&s.lines[row]).unwrap()
    }

    #[test]
    fn bytes_become_two_latched_nibbles() {
        // 'A' = 0x41 as data with backlight: RS|BL = 0x09.
        assert_eq!(encode_byte(0x41, Register::Data, true), [0x4d, 0x49, 0x1d, 0x19]);
        // Clear display, instruction, backlight off.
        assert_eq!(encode_byte(0x01, Register::Instruction, false), [0x04, 0x00, 0x14, 0x10]);
        assert_eq!(encode_nibble(0x3, true), [0x3c, 0x38]);
    }

    #[test]
    fn text_lines_are_padded_cut_and_mapped() {
        let s = Screen::from_text("Hello\\n21.5°C and much more text");
        assert_eq!(line(&s, 0), "Hello           ");
        assert_eq!(s.lines[1][..6], [b'2', b'1', b'.', b'5', 0xdf, b'C']);
        assert_eq!(&s.lines[1][6..], b" and much ");
        let s = Screen::from_text("a\nb\nc");
        assert_eq!((line(&s, 0), line(&s, 1)), ("a               ", "b               "));
        assert_eq!(Screen::from_text("ü~").lines[0][..2], [b'?', b'?']);
    }

    #[test]
    fn lines_read_back_as_text() {
        let s = Screen::from_text("21.5°C  \nok");
        assert_eq!(std::format!("{}|{}", LineText(&s.lines[0]), LineText(&s.lines[1])), "21.5°C|ok");
        // what the A00 ROM draws: no backslash (0x5C is the yen sign), arrows at 0x7E/0x7F
        let s = Screen::from_text("a\\b ¥1 →←");
        assert_eq!(s.lines[0][..8], [b'a', b'?', b'b', b' ', 0x5c, b'1', b' ', 0x7e]);
        assert_eq!(std::format!("{}", LineText(&s.lines[0])), "a?b ¥1 →←");
    }

    #[test]
    fn cbor_map_renders_key_value_lines() {
        // {"t": 21.5 (f32), "rh": 40, "x": "y"} — only two rows fit.
        let msg = [0xa3, 0x61, b't', 0xfa, 0x41, 0xac, 0x00, 0x00, 0x62, b'r', b'h', 0x18, 40, 0x61, b'x', 0x61, b'y'];
        let s = Screen::from_cbor_map(&msg).unwrap();
        assert_eq!(line(&s, 0), "t: 21.5         ");
        assert_eq!(line(&s, 1), "rh: 40          ");
        // Long keys: the space goes, then the key is cut so the value stays whole.
        let s = Screen::from_cbor_map(&cbor_map(&[("temperature_c", 21.53), ("humidity_pct", 4.0)])).unwrap();
        assert_eq!(line(&s, 0), "temperature:21.5");
        assert_eq!(line(&s, 1), "humidity_pct:4.0");
        let s = Screen::from_cbor_map(&cbor_map(&[("pressure_pa", 100801.19), ("x", 1152921504606846976.0)])).unwrap(); // 2^60, exact in f32
        assert_eq!(line(&s, 0), "pressur:100801.2");
        assert_eq!(line(&s, 1), "x:11529215046068"); // a value wider than the display is cut
        // Indefinite-length map, negative int and bool.
        let msg = [0xbf, 0x61, b'n', 0x26, 0x61, b'b', 0xf5, 0xff];
        let s = Screen::from_cbor_map(&msg).unwrap();
        assert_eq!((line(&s, 0), line(&s, 1)), ("n: -7           ", "b: true         "));
    }

    #[test]
    fn bad_messages_are_precise_errors() {
        assert_eq!(Screen::from_cbor_map(&[0x83, 1, 2, 3]), Err(RenderError::NotAMap));
        assert_eq!(Screen::from_cbor_map(&[0xa1, 0x01, 0x02]), Err(RenderError::KeyNotText));
        assert_eq!(Screen::from_cbor_map(&[0xa1, 0x61, b'k', 0x80]), Err(RenderError::UnsupportedValue));
        assert_eq!(Screen::from_cbor_map(&[0xa2, 0x61, b'k', 0x01]), Err(RenderError::Malformed));
        assert_eq!(Screen::from_cbor_map(&[0xa1, 0x61, b'k', 0x19, 0x01]), Err(RenderError::Malformed));
        assert_eq!(Screen::from_cbor_map(&[]), Err(RenderError::NotAMap));
    }
}
