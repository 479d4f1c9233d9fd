//! Measurement settings: oversampling per quantity → `ctrl_hum`/`ctrl_meas` bytes, and the
//! maximum measurement time (datasheet section 9.1, appendix B).

use crate::interface::MODE_FORCED;

/// Oversampling of one quantity; `Skipped` turns its measurement off.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Oversampling {
    Skipped = 0,
    X1 = 1,
    X2 = 2,
    X4 = 3,
    X8 = 4,
    X16 = 5,
}

impl Oversampling {
    /// From the sample count (0 = skipped, 1, 2, 4, 8, 16).
    pub fn from_count(n: u64) -> Option<Self> {
        Some(match n {
            0 => Self::Skipped,
            1 => Self::X1,
            2 => Self::X2,
            4 => Self::X4,
            8 => Self::X8,
            16 => Self::X16,
            _ => return None,
        })
    }

    /// Number of samples averaged (0 when skipped).
    pub fn count(self) -> u32 {
        match self {
            Self::Skipped => 0,
            other => 1 << (other as u32 - 1),
        }
    }

    /// The 3-bit `osrs_x` field value.
    pub fn bits(self) -> u8 {
        self as u8
    }
}

/// One forced-mode measurement's settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Config {
    pub temperature: Oversampling,
    pub pressure: Oversampling,
    pub humidity: Oversampling,
}

impl Default for Config {
    /// The datasheet's "weather monitoring" setting: 1× each.
    fn default() -> Self {
        Self { temperature: Oversampling::X1, pressure: Oversampling::X1, humidity: Oversampling::X1 }
    }
}

impl Config {
    /// `ctrl_hum` register value.
    pub fn ctrl_hum(&self) -> u8 {
        self.humidity.bits()
    }

    /// `ctrl_meas` register value starting a forced measurement.
    pub fn ctrl_meas_forced(&self) -> u8 {
        (self.temperature.bits() << 5) | (self.pressure.bits() << 2) | MODE_FORCED
    }

    /// Maximum measurement time in microseconds (datasheet 9.1):
    /// 1.25 ms + 2.3 ms·osrs_t + (2.3 ms·osrs_p + 0.575 ms) + (2.3 ms·osrs_h + 0.575 ms),
    /// the pressure and humidity terms only when enabled.
    pub fn max_measurement_us(&self) -> u32 {
        let mut us = 1250 + 2300 * self.temperature.count();
        if self.pressure != Oversampling::Skipped {
            us += 2300 * self.pressure.count() + 575;
        }
        if self.humidity != Oversampling::Skipped {
            us += 2300 * self.humidity.count() + 575;
        }
        us
    }
}

#[cfg(test)]
#[allow(clippy::unusual_byte_groupings)] // grouped by register field
mod tests {
    use super::*;

    #[test]
    fn control_bytes() {
        let c = Config::default();
        assert_eq!(c.ctrl_hum(), 0b001);
        assert_eq!(c.ctrl_meas_forced(), 0b001_001_01);
        let c = Config { temperature: Oversampling::X2, pressure: Oversampling::X16, humidity: Oversampling::Skipped };
        assert_eq!(c.ctrl_hum(), 0);
        assert_eq!(c.ctrl_meas_forced(), 0b010_101_01);
    }

    #[test]
    fn measurement_time_matches_datasheet_table() {
        // Datasheet 9.1: 1x/1x/1x → 9.3 ms max; 16x/16x/16x → 112.8 ms max.
        assert_eq!(Config::default().max_measurement_us(), 9_300);
        let c = Config { temperature: Oversampling::X16, pressure: Oversampling::X16, humidity: Oversampling::X16 };
        assert_eq!(c.max_measurement_us(), 112_800);
        // Temperature only (weather monitoring without p/h): 1.25 + 2.3 = 3.55 ms.
        let c = Config { temperature: Oversampling::X1, pressure: Oversampling::Skipped, humidity: Oversampling::Skipped };
        assert_eq!(c.max_measurement_us(), 3_550);
    }

    #[test]
    fn oversampling_counts() {
        for n in [0, 1, 2, 4, 8, 16] {
            assert_eq!(Oversampling::from_count(n).unwrap().count() as u64, n);
        }
        assert_eq!(Oversampling::from_count(3), None);
    }
}
