//! SHT3x addresses and commands (datasheet section 4). Commands are 16 bit, sent MSB first.

/// Default 7-bit address (ADDR pin low).
pub const DEFAULT_ADDRESS: u8 = 0x44;
/// Alternative address (ADDR pin high).
pub const ALTERNATE_ADDRESS: u8 = 0x45;

/// Single shot, clock stretching disabled, high repeatability.
pub const SINGLE_SHOT_HIGH: u16 = 0x2400;
/// Single shot, clock stretching disabled, medium repeatability.
pub const SINGLE_SHOT_MEDIUM: u16 = 0x240B;
/// Single shot, clock stretching disabled, low repeatability.
pub const SINGLE_SHOT_LOW: u16 = 0x2416;
/// Soft reset.
pub const SOFT_RESET: u16 = 0x30A2;
/// Read the status register (2 bytes + CRC).
pub const READ_STATUS: u16 = 0xF32D;

/// The two bytes of `command` as they go on the wire.
pub const fn command_bytes(command: u16) -> [u8; 2] {
    command.to_be_bytes()
}
