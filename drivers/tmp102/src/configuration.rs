//! TMP102 addressing (ADD0 pin → 0x48..=0x4B) and measurement mode.

use tmp1x2::SlaveAddr;

/// Address with ADD0 to ground.
pub const DEFAULT_ADDRESS: u8 = 0x48;

/// The `tmp1x2` address selector for a 7-bit address (0x48 GND, 0x49 V+, 0x4A SDA, 0x4B SCL);
/// `None` outside that range.
pub fn slave_addr(address: u8) -> Option<SlaveAddr> {
    match address {
        0x48 => Some(SlaveAddr::Default),
        0x49..=0x4b => {
            let pins = address - DEFAULT_ADDRESS;
            Some(SlaveAddr::Alternative(pins & 0b10 != 0, pins & 0b01 != 0))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_pins() {
        assert_eq!(slave_addr(0x48), Some(SlaveAddr::Default));
        assert_eq!(slave_addr(0x49), Some(SlaveAddr::Alternative(false, true)));
        assert_eq!(slave_addr(0x4b), Some(SlaveAddr::Alternative(true, true)));
        assert_eq!(slave_addr(0x4c), None);
        assert_eq!(slave_addr(0x40), None);
    }
}

/// Replays datasheet values through the crate as the bus would deliver them.
#[cfg(test)]
mod datasheet {
    use super::*;
    use embedded_hal_mock::eh1::i2c::{Mock, Transaction as T};
    use tmp1x2::Tmp1x2;

    /// Reads the temperature register once, the device answering `reg` (two bytes).
    fn read(address: u8, reg: u16) -> f32 {
        let mut i2c = Mock::new(&[T::write_read(address, vec![0x00], reg.to_be_bytes().to_vec())]);
        let mut dev = Tmp1x2::new(i2c.clone(), slave_addr(address).unwrap());
        let t = dev.read_temperature().unwrap();
        i2c.done();
        t
    }

    #[test]
    fn twelve_bit_table_8_2() {
        // (°C, 12-bit register value); the register holds it left-justified (<< 4).
        let table: [(f32, u16); 12] = [
            (128.0 - 0.0625, 0x7ff), (100.0, 0x640), (80.0, 0x500), (75.0, 0x4b0),
            (50.0, 0x320), (25.0, 0x190), (0.25, 0x004), (0.0, 0x000),
            (-0.25, 0xffc), (-25.0, 0xe70), (-55.0, 0xc90), (0.0625, 0x001),
        ];
        for (celsius, value) in table {
            assert_eq!(read(0x48, value << 4), celsius, "{value:#05x}");
        }
    }

    #[test]
    fn thirteen_bit_extended_table_8_3() {
        // (°C, 13-bit value); left-justified (<< 3) with EM (bit 0) set.
        let table: [(f32, u16); 8] = [
            (150.0, 0x0960), (128.0, 0x0800), (127.9375, 0x07ff), (100.0, 0x0640),
            (25.0, 0x0190), (0.0, 0x0000), (-25.0, 0x1e70), (-55.0, 0x1c90),
        ];
        for (celsius, value) in table {
            assert_eq!(read(0x4a, (value << 3) | 1), celsius, "{value:#06x}");
        }
    }

    #[test]
    fn extended_mode_writes_the_em_bit() {
        let mut i2c = Mock::new(&[T::write(0x48, vec![0x01, 0x60, 0xb0])]);
        let mut dev = Tmp1x2::new(i2c.clone(), SlaveAddr::Default);
        dev.enable_extended_mode().unwrap();
        i2c.done();
    }
}
