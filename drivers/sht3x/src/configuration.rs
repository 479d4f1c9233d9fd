//! Repeatability of a single-shot measurement: its command and maximum duration
//! (datasheet table 4 and 9).

use crate::interface::{SINGLE_SHOT_HIGH, SINGLE_SHOT_LOW, SINGLE_SHOT_MEDIUM};

/// Measurement repeatability (noise vs. duration).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Repeatability {
    #[default]
    High,
    Medium,
    Low,
}

impl Repeatability {
    /// From the config text `high` / `medium` / `low`.
    pub fn parse(text: &str) -> Option<Self> {
        match text.trim() {
            t if t.eq_ignore_ascii_case("high") => Some(Self::High),
            t if t.eq_ignore_ascii_case("medium") => Some(Self::Medium),
            t if t.eq_ignore_ascii_case("low") => Some(Self::Low),
            _ => None,
        }
    }

    /// The single-shot command with clock stretching disabled.
    pub fn command(self) -> u16 {
        match self {
            Self::High => SINGLE_SHOT_HIGH,
            Self::Medium => SINGLE_SHOT_MEDIUM,
            Self::Low => SINGLE_SHOT_LOW,
        }
    }

    /// Maximum measurement duration in microseconds (15 / 6 / 4 ms).
    pub fn max_duration_us(self) -> u32 {
        match self {
            Self::High => 15_000,
            Self::Medium => 6_000,
            Self::Low => 4_000,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_and_durations() {
        assert_eq!(Repeatability::default().command(), 0x2400);
        assert_eq!(Repeatability::parse(" Medium").unwrap().command(), 0x240B);
        assert_eq!(Repeatability::parse("low").unwrap().max_duration_us(), 4_000);
        assert_eq!(Repeatability::parse("ultra"), None);
    }
}
