//! Calibration parsing and Bosch's integer compensation (datasheet 4.2.2, 4.2.3, 5.4):
//! pure functions, no I/O.
//!
//! Results: temperature in 0.01 °C, pressure in Pa as Q24.8, humidity in %RH as Q22.10 —
//! exactly the datasheet's `BME280_compensate_T_int32`, `BME280_compensate_P_int64` and
//! `bme280_compensate_H_int32`.

/// The factory trimming parameters `dig_*`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Calibration {
    pub t1: u16,
    pub t2: i16,
    pub t3: i16,
    pub p1: u16,
    pub p2: i16,
    pub p3: i16,
    pub p4: i16,
    pub p5: i16,
    pub p6: i16,
    pub p7: i16,
    pub p8: i16,
    pub p9: i16,
    pub h1: u8,
    pub h2: i16,
    pub h3: u8,
    pub h4: i16,
    pub h5: i16,
    pub h6: i8,
}

impl Calibration {
    /// Parses registers 0x88..=0xA1 (`block1`) and 0xE1..=0xE7 (`block2`), datasheet table 16.
    pub fn from_registers(block1: &[u8; 26], block2: &[u8; 7]) -> Self {
        let u = |i: usize| u16::from_le_bytes([block1[i], block1[i + 1]]);
        let s = |i: usize| i16::from_le_bytes([block1[i], block1[i + 1]]);
        Calibration {
            t1: u(0),
            t2: s(2),
            t3: s(4),
            p1: u(6),
            p2: s(8),
            p3: s(10),
            p4: s(12),
            p5: s(14),
            p6: s(16),
            p7: s(18),
            p8: s(20),
            p9: s(22),
            // block1[24] (0xA0) is not used.
            h1: block1[25],
            h2: i16::from_le_bytes([block2[0], block2[1]]),
            h3: block2[2],
            // dig_H4 = 0xE4[7:0] (signed) << 4 | 0xE5[3:0]; dig_H5 = 0xE6 (signed) << 4 | 0xE5[7:4]
            h4: (i16::from(block2[3] as i8) << 4) | i16::from(block2[4] & 0x0f),
            h5: (i16::from(block2[5] as i8) << 4) | i16::from(block2[4] >> 4),
            h6: block2[6] as i8,
        }
    }
}

/// Uncompensated ADC values from the data burst 0xF7..=0xFE.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawSample {
    pub pressure: i32,
    pub temperature: i32,
    pub humidity: i32,
}

/// `adc_T`/`adc_P` when that measurement was skipped (oversampling 0).
pub const SKIPPED_20BIT: i32 = 0x80000;
/// `adc_H` when humidity was skipped.
pub const SKIPPED_16BIT: i32 = 0x8000;

impl RawSample {
    /// Unpacks press (20 bit), temp (20 bit), hum (16 bit) from the 8 data bytes.
    pub fn from_registers(d: &[u8; 8]) -> Self {
        let twenty = |msb: u8, lsb: u8, xlsb: u8| (i32::from(msb) << 12) | (i32::from(lsb) << 4) | (i32::from(xlsb) >> 4);
        RawSample {
            pressure: twenty(d[0], d[1], d[2]),
            temperature: twenty(d[3], d[4], d[5]),
            humidity: (i32::from(d[6]) << 8) | i32::from(d[7]),
        }
    }
}

/// A compensated reading; `None` for quantities that were not measured.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Measurement {
    /// Temperature in 0.01 °C.
    pub temperature_centi_c: i32,
    /// Pressure in Pa, Q24.8 (divide by 256).
    pub pressure_q24_8: Option<u32>,
    /// Relative humidity in %, Q22.10 (divide by 1024).
    pub humidity_q22_10: Option<u32>,
}

impl Measurement {
    pub fn temperature_c(&self) -> f32 {
        self.temperature_centi_c as f32 / 100.0
    }
    pub fn pressure_pa(&self) -> Option<f32> {
        self.pressure_q24_8.map(|p| p as f32 / 256.0)
    }
    pub fn humidity_pct(&self) -> Option<f32> {
        self.humidity_q22_10.map(|h| h as f32 / 1024.0)
    }
}

/// `t_fine`, the fine temperature that pressure and humidity compensation use.
pub fn t_fine(c: &Calibration, adc_t: i32) -> i32 {
    let t1 = i32::from(c.t1);
    let var1 = (((adc_t >> 3) - (t1 << 1)) * i32::from(c.t2)) >> 11;
    let d = (adc_t >> 4) - t1;
    let var2 = (((d * d) >> 12) * i32::from(c.t3)) >> 14;
    var1 + var2
}

/// Temperature in 0.01 °C from `t_fine`.
pub fn temperature_centi_c(t_fine: i32) -> i32 {
    (t_fine * 5 + 128) >> 8
}

/// Pressure in Pa as Q24.8 (`BME280_compensate_P_int64`); 0 when `dig_P1` is 0.
pub fn pressure_q24_8(c: &Calibration, t_fine: i32, adc_p: i32) -> u32 {
    let mut var1 = i64::from(t_fine) - 128_000;
    let mut var2 = var1 * var1 * i64::from(c.p6);
    var2 += (var1 * i64::from(c.p5)) << 17;
    var2 += i64::from(c.p4) << 35;
    var1 = ((var1 * var1 * i64::from(c.p3)) >> 8) + ((var1 * i64::from(c.p2)) << 12);
    var1 = (((1i64 << 47) + var1) * i64::from(c.p1)) >> 33;
    if var1 == 0 {
        return 0; // avoid division by zero (datasheet)
    }
    let mut p: i64 = 1_048_576 - i64::from(adc_p);
    p = (((p << 31) - var2) * 3125) / var1;
    let var1 = (i64::from(c.p9) * (p >> 13) * (p >> 13)) >> 25;
    let var2 = (i64::from(c.p8) * p) >> 19;
    p = ((p + var1 + var2) >> 8) + (i64::from(c.p7) << 4);
    p as u32
}

/// Relative humidity in % as Q22.10 (`bme280_compensate_H_int32`), clamped to 0..=100 %.
pub fn humidity_q22_10(c: &Calibration, t_fine: i32, adc_h: i32) -> u32 {
    let v = t_fine - 76_800;
    let mut x = ((((adc_h << 14) - (i32::from(c.h4) << 20) - (i32::from(c.h5) * v)) + 16_384) >> 15)
        * (((((((v * i32::from(c.h6)) >> 10) * (((v * i32::from(c.h3)) >> 11) + 32_768)) >> 10)
            + 2_097_152)
            * i32::from(c.h2)
            + 8_192)
            >> 14);
    x -= ((((x >> 15) * (x >> 15)) >> 7) * i32::from(c.h1)) >> 4;
    x = x.clamp(0, 419_430_400);
    (x >> 12) as u32
}

/// Compensates a whole sample; skipped quantities come back as `None`.
pub fn compensate(c: &Calibration, raw: &RawSample) -> Measurement {
    let tf = t_fine(c, raw.temperature);
    Measurement {
        temperature_centi_c: temperature_centi_c(tf),
        pressure_q24_8: (raw.pressure != SKIPPED_20BIT).then(|| pressure_q24_8(c, tf, raw.pressure)),
        humidity_q22_10: (raw.humidity != SKIPPED_16BIT).then(|| humidity_q22_10(c, tf, raw.humidity)),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// The trimming values of Bosch's worked example (BMP280 datasheet 3.12, whose
    /// temperature and pressure compensation the BME280 shares) plus typical humidity ones.
    pub(crate) const EXAMPLE: Calibration = Calibration {
        t1: 27504, t2: 26435, t3: -1000,
        p1: 36477, p2: -10685, p3: 3024, p4: 2855, p5: 140, p6: -7, p7: 15500, p8: -14600, p9: 6000,
        h1: 75, h2: 362, h3: 0, h4: 313, h5: 50, h6: 30,
    };

    /// EXAMPLE as the chip stores it in 0x88..=0xA1 and 0xE1..=0xE7.
    pub(crate) fn example_registers() -> ([u8; 26], [u8; 7]) {
        let c = EXAMPLE;
        let mut b1 = [0u8; 26];
        let words: [u16; 12] = [
            c.t1, c.t2 as u16, c.t3 as u16, c.p1, c.p2 as u16, c.p3 as u16, c.p4 as u16,
            c.p5 as u16, c.p6 as u16, c.p7 as u16, c.p8 as u16, c.p9 as u16,
        ];
        for (i, w) in words.iter().enumerate() {
            b1[2 * i..2 * i + 2].copy_from_slice(&w.to_le_bytes());
        }
        b1[25] = c.h1;
        let h2 = c.h2.to_le_bytes();
        let b2 = [
            h2[0], h2[1], c.h3,
            (c.h4 >> 4) as u8,
            ((c.h4 & 0x0f) as u8) | (((c.h5 & 0x0f) as u8) << 4),
            (c.h5 >> 4) as u8,
            c.h6 as u8,
        ];
        (b1, b2)
    }

    #[test]
    fn calibration_registers_parse() {
        let (b1, b2) = example_registers();
        assert_eq!(Calibration::from_registers(&b1, &b2), EXAMPLE);
        // Negative dig_H4/dig_H5 (signed upper byte) and dig_H6.
        let b2 = [0, 0, 0, 0xff, 0x8e, 0xfe, 0xf6];
        let c = Calibration::from_registers(&[0; 26], &b2);
        assert_eq!(c.h4, -16 + 0xe);
        assert_eq!(c.h5, -32 + 0x8);
        assert_eq!(c.h6, -10);
    }

    #[test]
    fn datasheet_worked_example_temperature() {
        // adc_T = 519888 → t_fine = 128422 → 25.08 °C.
        let tf = t_fine(&EXAMPLE, 519_888);
        assert_eq!(tf, 128_422);
        assert_eq!(temperature_centi_c(tf), 2508);
    }

    #[test]
    fn datasheet_worked_example_pressure() {
        // adc_P = 415148 → 100653.27 Pa in the datasheet's example.
        let p = pressure_q24_8(&EXAMPLE, 128_422, 415_148);
        let pa = p as f64 / 256.0;
        assert!((pa - 100_653.27).abs() < 0.05, "{pa}");
    }

    /// The datasheet's double-precision humidity formula (section 8.1), as a reference.
    fn humidity_double(c: &Calibration, t_fine: i32, adc_h: i32) -> f64 {
        let t = t_fine as f64 - 76_800.0;
        let mut h = (adc_h as f64 - (c.h4 as f64 * 64.0 + c.h5 as f64 / 16_384.0 * t))
            * (c.h2 as f64 / 65_536.0
                * (1.0 + c.h6 as f64 / 67_108_864.0 * t * (1.0 + c.h3 as f64 / 67_108_864.0 * t)));
        h *= 1.0 - c.h1 as f64 * h / 524_288.0;
        h.clamp(0.0, 100.0)
    }

    #[test]
    fn humidity_integer_matches_the_double_formula_and_clamps() {
        for adc_h in [20_000, 27_000, 30_000, 33_000] {
            let int = humidity_q22_10(&EXAMPLE, 128_422, adc_h) as f64 / 1024.0;
            let dbl = humidity_double(&EXAMPLE, 128_422, adc_h);
            assert!((int - dbl).abs() < 0.01, "{adc_h}: {int} vs {dbl}");
        }
        assert_eq!(humidity_q22_10(&EXAMPLE, 128_422, 30_000), 56_317); // 54.997 %RH
        assert_eq!(humidity_q22_10(&EXAMPLE, 128_422, 0), 0);
        assert_eq!(humidity_q22_10(&EXAMPLE, 128_422, 0xffff), 100 * 1024);
    }

    #[test]
    fn raw_unpacking_and_skipped_quantities() {
        // press 0x655ac (415148), temp 0x7eed0 (519888), hum 0x7530 (30000)
        let raw = RawSample::from_registers(&[0x65, 0x5a, 0xc0, 0x7e, 0xed, 0x00, 0x75, 0x30]);
        assert_eq!(raw, RawSample { pressure: 415_148, temperature: 519_888, humidity: 30_000 });
        let m = compensate(&EXAMPLE, &raw);
        assert_eq!(m.temperature_c(), 25.08);
        assert!((m.pressure_pa().unwrap() - 100_653.27).abs() < 0.05);
        assert!((m.humidity_pct().unwrap() - 55.0).abs() < 0.01);
        let skipped = RawSample { pressure: SKIPPED_20BIT, temperature: 519_888, humidity: SKIPPED_16BIT };
        let m = compensate(&EXAMPLE, &skipped);
        assert_eq!((m.pressure_pa(), m.humidity_pct()), (None, None));
    }

    #[test]
    fn zero_p1_does_not_divide_by_zero() {
        let c = Calibration { p1: 0, ..EXAMPLE };
        assert_eq!(pressure_q24_8(&c, 128_422, 415_148), 0);
    }
}
