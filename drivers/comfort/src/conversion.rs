//! Pure parts: the dew point and the fields of a sensor reading.

use minicbor::data::Type;
use minicbor::Decoder;

/// Magnus coefficients over water (Sonntag 1990), valid −45 °C … 60 °C.
const A: f32 = 17.62;
const B: f32 = 243.12;

/// Natural logarithm for x > 0 (no `std` on wasm32): x = m·2^e with m in [1, 2),
/// ln m = 2·atanh((m−1)/(m+1)) by its series (|z| ≤ 1/3: eight terms are exact to f32).
pub fn ln(x: f32) -> f32 {
    if x.is_nan() || x <= 0.0 || x.is_infinite() {
        return f32::NAN;
    }
    let bits = x.to_bits();
    let mut e = ((bits >> 23) & 0xff) as i32 - 127;
    let mut m = f32::from_bits((bits & 0x007f_ffff) | 0x3f80_0000);
    if e == -127 {
        // subnormal: normalise
        let y = x * (1u64 << 32) as f32;
        let b = y.to_bits();
        e = ((b >> 23) & 0xff) as i32 - 127 - 32;
        m = f32::from_bits((b & 0x007f_ffff) | 0x3f80_0000);
    }
    let z = ((m - 1.0) / (m + 1.0)) as f64;
    let z2 = z * z;
    let mut term = z;
    let mut sum = 0.0f64;
    let mut k = 1.0f64;
    for _ in 0..8 {
        sum += term / k;
        term *= z2;
        k += 2.0;
    }
    (2.0 * sum + e as f64 * core::f64::consts::LN_2) as f32
}

/// Dew point in °C from temperature (°C) and relative humidity (%, > 0).
pub fn dew_point_c(temperature_c: f32, humidity_pct: f32) -> f32 {
    let gamma = ln(humidity_pct / 100.0) + A * temperature_c / (B + temperature_c);
    B * gamma / (A - gamma)
}

/// `temperature_c` and `humidity_pct` of a reading (a CBOR map with text keys; other keys
/// are skipped). `None` for a value that is absent or not a float.
pub fn fields(cbor: &[u8]) -> (Option<f32>, Option<f32>) {
    let mut d = Decoder::new(cbor);
    let (mut t, mut h) = (None, None);
    let Ok(Some(n)) = d.map() else { return (None, None) };
    for _ in 0..n {
        let Ok(key) = d.str() else { return (t, h) };
        let value = match d.datatype() {
            Ok(Type::F32) => d.f32().ok(),
            Ok(Type::F64) => d.f64().ok().map(|v| v as f32),
            _ => {
                if d.skip().is_err() {
                    return (t, h);
                }
                None
            }
        };
        match key {
            "temperature_c" => t = value,
            "humidity_pct" => h = value,
            _ => {}
        }
    }
    (t, h)
}

/// The mean of the values present, `None` when there are none.
pub fn mean(values: &[Option<f32>]) -> Option<f32> {
    let (sum, n) = values.iter().flatten().fold((0.0f32, 0u32), |(s, n), v| (s + v, n + 1));
    (n > 0).then(|| sum / n as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_matches_std() {
        for x in [1e-30f32, 0.001, 0.3, 0.5, 0.999, 1.0, 1.5, 2.0, 10.0, 1e6, 3.4e38] {
            let want = x.ln();
            assert!((ln(x) - want).abs() <= want.abs() * 1e-6 + 1e-6, "{x}: {} vs {want}", ln(x));
        }
        assert!(ln(0.0).is_nan() && ln(-1.0).is_nan());
    }

    #[test]
    fn dew_point_reference_values() {
        // 20 °C at 50 % → 9.3 °C; 30 °C at 80 % → 26.2 °C; saturation → the temperature
        assert!((dew_point_c(20.0, 50.0) - 9.26).abs() < 0.05);
        assert!((dew_point_c(30.0, 80.0) - 26.17).abs() < 0.05);
        assert!((dew_point_c(15.0, 100.0) - 15.0).abs() < 0.01);
    }

    #[test]
    fn reads_sensor_maps() {
        // {"temperature_c": 21.5f32, "x": 1, "humidity_pct": 48.0f64}
        let mut buf = [0u8; 64];
        let mut e = minicbor::Encoder::new(&mut buf[..]);
        e.map(3).unwrap().str("temperature_c").unwrap().f32(21.5).unwrap()
            .str("x").unwrap().u8(1).unwrap().str("humidity_pct").unwrap().f64(48.0).unwrap();
        assert_eq!(fields(&buf), (Some(21.5), Some(48.0)));
        assert_eq!(fields(&[0x01]), (None, None));
        assert_eq!(mean(&[Some(1.0), None, Some(3.0)]), Some(2.0));
        assert_eq!(mean(&[None]), None);
    }
}
