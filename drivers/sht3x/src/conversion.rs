//! CRC-8 and signal conversion (datasheet 4.12 and 4.13): pure functions, no I/O.
//!
//! T[°C] = -45 + 175 · S_T / (2^16 − 1);  RH[%] = 100 · S_RH / (2^16 − 1).

/// CRC-8 of a data word: polynomial 0x31 (x^8 + x^5 + x^4 + 1), init 0xFF, no reflection,
/// no final XOR.
pub fn crc8(data: &[u8]) -> u8 {
    let mut crc: u8 = 0xff;
    for &byte in data {
        crc ^= byte;
        for _ in 0..8 {
            crc = if crc & 0x80 != 0 { (crc << 1) ^ 0x31 } else { crc << 1 };
        }
    }
    crc
}

/// Temperature in °C from the raw signal S_T.
pub fn temperature_c(raw: u16) -> f32 {
    -45.0 + 175.0 * f32::from(raw) / 65535.0
}

/// Relative humidity in % from the raw signal S_RH.
pub fn humidity_pct(raw: u16) -> f32 {
    100.0 * f32::from(raw) / 65535.0
}

/// A reading's raw signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Measurement {
    pub raw_temperature: u16,
    pub raw_humidity: u16,
}

impl Measurement {
    /// Checks both CRCs of the 6-byte response; `None` on a mismatch.
    pub fn from_response(r: &[u8; 6]) -> Option<Self> {
        if crc8(&r[0..2]) != r[2] || crc8(&r[3..5]) != r[5] {
            return None;
        }
        Some(Measurement {
            raw_temperature: u16::from_be_bytes([r[0], r[1]]),
            raw_humidity: u16::from_be_bytes([r[3], r[4]]),
        })
    }

    pub fn temperature_c(&self) -> f32 {
        temperature_c(self.raw_temperature)
    }

    pub fn humidity_pct(&self) -> f32 {
        humidity_pct(self.raw_humidity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_datasheet_example() {
        // Datasheet table 20: CRC(0xBEEF) = 0x92.
        assert_eq!(crc8(&[0xbe, 0xef]), 0x92);
        assert_eq!(crc8(&[0x00, 0x00]), 0x81);
    }

    #[test]
    fn conversion_formulas() {
        assert_eq!(temperature_c(0), -45.0);
        assert_eq!(temperature_c(0xffff), 130.0);
        assert!((temperature_c(0x6666) - 25.0).abs() < 1e-4); // 0x6666/0xffff = 0.4
        assert!((temperature_c(0x2f8b) - -12.5).abs() < 0.01); // below zero
        assert_eq!(humidity_pct(0), 0.0);
        assert_eq!(humidity_pct(0xffff), 100.0);
        assert!((humidity_pct(0x8000) - 50.0).abs() < 0.01);
    }

    #[test]
    fn response_crcs_are_checked() {
        let ok = [0x66, 0x66, crc8(&[0x66, 0x66]), 0x80, 0x00, crc8(&[0x80, 0x00])];
        let m = Measurement::from_response(&ok).unwrap();
        assert_eq!((m.raw_temperature, m.raw_humidity), (0x6666, 0x8000));
        let mut bad = ok;
        bad[5] ^= 1;
        assert_eq!(Measurement::from_response(&bad), None);
        let mut bad = ok;
        bad[0] ^= 0x40;
        assert_eq!(Measurement::from_response(&bad), None);
    }
}
