//! BME280 register map (datasheet section 5.3) and chip constants.

/// Default 7-bit address (SDO to GND); 0x77 with SDO to VDDIO.
pub const DEFAULT_ADDRESS: u8 = 0x76;
/// Alternative address (SDO to VDDIO).
pub const ALTERNATE_ADDRESS: u8 = 0x77;
/// Value of the `id` register.
pub const CHIP_ID: u8 = 0x60;

/// Calibration block 1: dig_T1..dig_P9, (0xA0 unused), dig_H1.
pub const CALIB_00: u8 = 0x88;
/// Length of calibration block 1 (0x88..=0xA1).
pub const CALIB_00_LEN: usize = 26;
/// Chip identification.
pub const ID: u8 = 0xD0;
/// Soft reset: write [`RESET_WORD`].
pub const RESET: u8 = 0xE0;
/// The word that resets the device.
pub const RESET_WORD: u8 = 0xB6;
/// Calibration block 2: dig_H2..dig_H6.
pub const CALIB_26: u8 = 0xE1;
/// Length of calibration block 2 (0xE1..=0xE7).
pub const CALIB_26_LEN: usize = 7;
/// Humidity oversampling (`osrs_h[2:0]`); takes effect on the next `ctrl_meas` write.
pub const CTRL_HUM: u8 = 0xF2;
/// Status: bit 3 `measuring`, bit 0 `im_update`.
pub const STATUS: u8 = 0xF3;
/// `osrs_t[7:5]`, `osrs_p[4:2]`, `mode[1:0]`.
pub const CTRL_MEAS: u8 = 0xF4;
/// `t_sb[7:5]`, `filter[4:2]`, `spi3w_en[0]`.
pub const CONFIG: u8 = 0xF5;
/// First data register: press_msb (burst 0xF7..=0xFE).
pub const DATA: u8 = 0xF7;
/// Length of the data burst.
pub const DATA_LEN: usize = 8;

/// `status.measuring`: a conversion is running.
pub const STATUS_MEASURING: u8 = 1 << 3;
/// `status.im_update`: NVM data are being copied to the image registers.
pub const STATUS_IM_UPDATE: u8 = 1 << 0;

/// `mode[1:0]` = forced: one measurement, then back to sleep.
pub const MODE_FORCED: u8 = 0b01;
/// `mode[1:0]` = sleep.
pub const MODE_SLEEP: u8 = 0b00;
