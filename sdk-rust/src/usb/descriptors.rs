//! USB standard descriptors (USB 2.0 §9.6), parsed from the bytes the host returns.
//!
//! Pure and allocation-free: a [`DeviceDescriptor`] is copied out of its 18 bytes; a
//! [`ConfigDescriptor`] borrows the caller's buffer and is validated once by
//! [`ConfigDescriptor::parse`] (header, `wTotalLength`, every sub-descriptor's `bLength`),
//! so its iterators over interfaces, endpoints and class-specific descriptors cannot fail.

use super::Error;

/// `bDescriptorType` values (USB 2.0 table 9-5) and the HID class descriptor.
pub mod descriptor_type {
    pub const DEVICE: u8 = 0x01;
    pub const CONFIGURATION: u8 = 0x02;
    pub const STRING: u8 = 0x03;
    pub const INTERFACE: u8 = 0x04;
    pub const ENDPOINT: u8 = 0x05;
    pub const INTERFACE_ASSOCIATION: u8 = 0x0B;
    pub const HID: u8 = 0x21;
}

/// Device / interface class codes used by the bundled drivers.
pub mod class {
    pub const PER_INTERFACE: u8 = 0x00;
    pub const HID: u8 = 0x03;
    pub const MASS_STORAGE: u8 = 0x08;
    pub const VENDOR_SPECIFIC: u8 = 0xFF;
}

fn le16(b: &[u8], at: usize) -> u16 {
    u16::from_le_bytes([b[at], b[at + 1]])
}

/// A binary-coded-decimal version such as `bcdUSB` 0x0200 → 2.0.0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Version(pub u16);

impl Version {
    pub fn major(self) -> u8 {
        let b = (self.0 >> 8) as u8;
        (b >> 4) * 10 + (b & 0x0F)
    }
    pub fn minor(self) -> u8 {
        ((self.0 >> 4) & 0x0F) as u8
    }
    pub fn sub_minor(self) -> u8 {
        (self.0 & 0x0F) as u8
    }
}

impl core::fmt::Display for Version {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}.{}.{}", self.major(), self.minor(), self.sub_minor())
    }
}

/// The 18-byte standard device descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceDescriptor {
    pub usb_version: Version,
    pub class: u8,
    pub subclass: u8,
    pub protocol: u8,
    pub max_packet_size_0: u8,
    pub vendor_id: u16,
    pub product_id: u16,
    pub device_version: Version,
    pub manufacturer_index: u8,
    pub product_index: u8,
    pub serial_number_index: u8,
    pub num_configurations: u8,
}

impl DeviceDescriptor {
    /// The length of a device descriptor on the wire.
    pub const LEN: usize = 18;

    /// Parse a device descriptor; `BadDescriptor` when it is short, its `bLength`
    /// is not 18, its type is not DEVICE, or `bMaxPacketSize0` is not 8/16/32/64 (or 9 for
    /// SuperSpeed's exponent form).
    pub fn parse(b: &[u8]) -> Result<Self, Error> {
        if b.len() < Self::LEN || b[0] as usize != Self::LEN || b[1] != descriptor_type::DEVICE {
            return Err(Error::BadDescriptor);
        }
        if !matches!(b[7], 8 | 9 | 16 | 32 | 64) {
            return Err(Error::BadDescriptor);
        }
        Ok(Self {
            usb_version: Version(le16(b, 2)),
            class: b[4],
            subclass: b[5],
            protocol: b[6],
            max_packet_size_0: b[7],
            vendor_id: le16(b, 8),
            product_id: le16(b, 10),
            device_version: Version(le16(b, 12)),
            manufacturer_index: b[14],
            product_index: b[15],
            serial_number_index: b[16],
            num_configurations: b[17],
        })
    }
}

/// A validated configuration descriptor with everything that follows it
/// (`wTotalLength` bytes), borrowed from the caller's buffer.
#[derive(Clone, Copy, Debug)]
pub struct ConfigDescriptor<'a> {
    bytes: &'a [u8],
}

/// One descriptor inside a configuration: its type and its bytes (including the
/// two-byte header).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawDescriptor<'a> {
    pub descriptor_type: u8,
    pub bytes: &'a [u8],
}

/// Iterator over the descriptors in a byte run already validated by `ConfigDescriptor::parse`.
#[derive(Clone, Debug)]
pub struct RawDescriptors<'a> {
    rest: &'a [u8],
}

impl<'a> Iterator for RawDescriptors<'a> {
    type Item = RawDescriptor<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.len() < 2 {
            return None;
        }
        let len = self.rest[0] as usize;
        let (d, rest) = self.rest.split_at(len);
        self.rest = rest;
        Some(RawDescriptor { descriptor_type: d[1], bytes: d })
    }
}

impl<'a> ConfigDescriptor<'a> {
    /// The length of the configuration descriptor header.
    pub const HEADER_LEN: usize = 9;

    /// Validate and wrap a configuration descriptor. `buf` may be longer than
    /// `wTotalLength` (the rest is ignored) but not shorter (`BadDescriptor`: the caller's
    /// buffer truncated it). Every sub-descriptor must have `bLength >= 2` and end inside
    /// the total; interface descriptors must be 9 bytes and endpoint descriptors at least 7.
    pub fn parse(buf: &'a [u8]) -> Result<Self, Error> {
        if buf.len() < Self::HEADER_LEN
            || (buf[0] as usize) < Self::HEADER_LEN
            || buf[1] != descriptor_type::CONFIGURATION
        {
            return Err(Error::BadDescriptor);
        }
        let total = le16(buf, 2) as usize;
        if total < buf[0] as usize || total > buf.len() {
            return Err(Error::BadDescriptor);
        }
        let bytes = &buf[..total];
        let mut at = bytes[0] as usize;
        while at < total {
            if total - at < 2 {
                return Err(Error::BadDescriptor);
            }
            let len = bytes[at] as usize;
            let min = match bytes[at + 1] {
                descriptor_type::INTERFACE => 9,
                descriptor_type::ENDPOINT => 7,
                _ => 2,
            };
            if len < min || at + len > total {
                return Err(Error::BadDescriptor);
            }
            at += len;
        }
        Ok(Self { bytes })
    }

    /// All `wTotalLength` bytes.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
    pub fn total_length(&self) -> usize {
        self.bytes.len()
    }
    pub fn num_interfaces(&self) -> u8 {
        self.bytes[4]
    }
    /// `bConfigurationValue`: the value to pass to `set_configuration`.
    pub fn value(&self) -> u8 {
        self.bytes[5]
    }
    pub fn description_index(&self) -> u8 {
        self.bytes[6]
    }
    pub fn self_powered(&self) -> bool {
        self.bytes[7] & 0x40 != 0
    }
    pub fn remote_wakeup(&self) -> bool {
        self.bytes[7] & 0x20 != 0
    }
    /// Maximum power in milliamperes (`bMaxPower` is in units of 2 mA for USB 2).
    pub fn max_power_ma(&self) -> u16 {
        self.bytes[8] as u16 * 2
    }

    /// Every descriptor after the configuration header, in order.
    pub fn descriptors(&self) -> RawDescriptors<'a> {
        RawDescriptors { rest: &self.bytes[self.bytes[0] as usize..] }
    }

    /// Every interface descriptor (each alternate setting separately), in order.
    pub fn interfaces(&self) -> Interfaces<'a> {
        Interfaces { inner: self.descriptors() }
    }

    /// The interface descriptor for `number` / `alt_setting`, if present.
    pub fn interface(&self, number: u8, alt_setting: u8) -> Option<InterfaceDescriptor<'a>> {
        self.interfaces().find(|i| i.number() == number && i.alt_setting() == alt_setting)
    }
}

/// Iterator over a configuration's interface descriptors.
#[derive(Clone, Debug)]
pub struct Interfaces<'a> {
    inner: RawDescriptors<'a>,
}

impl<'a> Iterator for Interfaces<'a> {
    type Item = InterfaceDescriptor<'a>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let d = self.inner.next()?;
            if d.descriptor_type == descriptor_type::INTERFACE {
                return Some(InterfaceDescriptor { bytes: d.bytes, following: self.inner.clone() });
            }
        }
    }
}

/// One interface descriptor (one alternate setting) and the descriptors that follow it
/// up to the next interface descriptor.
#[derive(Clone, Debug)]
pub struct InterfaceDescriptor<'a> {
    bytes: &'a [u8],
    following: RawDescriptors<'a>,
}

impl<'a> InterfaceDescriptor<'a> {
    pub fn number(&self) -> u8 {
        self.bytes[2]
    }
    pub fn alt_setting(&self) -> u8 {
        self.bytes[3]
    }
    pub fn num_endpoints(&self) -> u8 {
        self.bytes[4]
    }
    pub fn class(&self) -> u8 {
        self.bytes[5]
    }
    pub fn subclass(&self) -> u8 {
        self.bytes[6]
    }
    pub fn protocol(&self) -> u8 {
        self.bytes[7]
    }
    pub fn description_index(&self) -> u8 {
        self.bytes[8]
    }

    /// The descriptors belonging to this interface (endpoints and class-specific ones
    /// such as the HID descriptor), up to the next interface descriptor.
    pub fn descriptors(&self) -> impl Iterator<Item = RawDescriptor<'a>> + Clone + 'a {
        self.following.clone().take_while(|d| d.descriptor_type != descriptor_type::INTERFACE)
    }

    /// This interface's endpoint descriptors.
    pub fn endpoints(&self) -> impl Iterator<Item = EndpointDescriptor> + Clone + 'a {
        self.descriptors()
            .filter(|d| d.descriptor_type == descriptor_type::ENDPOINT)
            .map(|d| EndpointDescriptor::from_validated(d.bytes))
    }

    /// The first endpoint with this direction and transfer type.
    pub fn find_endpoint(&self, direction: Direction, kind: TransferType) -> Option<EndpointDescriptor> {
        self.endpoints().find(|e| e.direction() == direction && e.transfer_type() == kind)
    }
}

/// Transfer direction, from the host's point of view.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Direction {
    /// Device to host (endpoint address bit 7 set).
    In,
    /// Host to device.
    Out,
}

/// An endpoint's transfer type (`bmAttributes` bits 1..0).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TransferType {
    Control,
    Isochronous,
    Bulk,
    Interrupt,
}

/// A 7-byte endpoint descriptor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EndpointDescriptor {
    pub address: u8,
    pub attributes: u8,
    pub max_packet_size_raw: u16,
    pub interval: u8,
}

impl EndpointDescriptor {
    /// Parse an endpoint descriptor; `BadDescriptor` if short or of another type.
    pub fn parse(b: &[u8]) -> Result<Self, Error> {
        if b.len() < 7 || (b[0] as usize) < 7 || b[1] != descriptor_type::ENDPOINT {
            return Err(Error::BadDescriptor);
        }
        Ok(Self::from_validated(b))
    }

    fn from_validated(b: &[u8]) -> Self {
        Self { address: b[2], attributes: b[3], max_packet_size_raw: le16(b, 4), interval: b[6] }
    }

    pub fn number(&self) -> u8 {
        self.address & 0x0F
    }
    pub fn direction(&self) -> Direction {
        if self.address & 0x80 != 0 { Direction::In } else { Direction::Out }
    }
    pub fn transfer_type(&self) -> TransferType {
        match self.attributes & 0x03 {
            0 => TransferType::Control,
            1 => TransferType::Isochronous,
            2 => TransferType::Bulk,
            _ => TransferType::Interrupt,
        }
    }
    /// `wMaxPacketSize` bits 10..0: the packet size in bytes.
    pub fn max_packet_size(&self) -> u16 {
        self.max_packet_size_raw & 0x07FF
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEVICE: [u8; 18] = [
        18, 1, 0x00, 0x02, 0xFF, 0x00, 0x00, 64, 0x09, 0x12, 0x01, 0x00, 0x34, 0x12, 1, 2, 3, 1,
    ];

    // config: 1 interface (HID boot keyboard) with HID descriptor + 1 interrupt IN endpoint,
    // then interface 1 alt 0 and alt 1 with two bulk endpoints.
    const CONFIG: [u8; 9 + 9 + 9 + 7 + 9 + 9 + 7 + 7] = [
        9, 2, 66, 0, 2, 1, 0, 0xA0, 50, // config
        9, 4, 0, 0, 1, 3, 1, 1, 4, // interface 0 (HID boot kbd)
        9, 0x21, 0x11, 0x01, 0, 1, 0x22, 63, 0, // HID descriptor
        7, 5, 0x81, 3, 8, 0, 10, // EP1 IN interrupt, 8 bytes, 10 ms
        9, 4, 1, 0, 0, 0xFF, 0, 0, 0, // interface 1 alt 0, no endpoints
        9, 4, 1, 1, 2, 0xFF, 0, 0, 0, // interface 1 alt 1, two endpoints
        7, 5, 0x02, 2, 0x00, 0x02, 0, // EP2 OUT bulk 512
        7, 5, 0x82, 2, 0x00, 0x02, 0, // EP2 IN bulk 512
    ];

    #[test]
    fn device_descriptor_fields() {
        let d = DeviceDescriptor::parse(&DEVICE).unwrap();
        assert_eq!(d.usb_version, Version(0x0200));
        assert_eq!((d.usb_version.major(), d.usb_version.minor()), (2, 0));
        assert_eq!(d.class, 0xFF);
        assert_eq!(d.max_packet_size_0, 64);
        assert_eq!((d.vendor_id, d.product_id), (0x1209, 0x0001));
        assert_eq!(d.device_version, Version(0x1234));
        assert_eq!((d.manufacturer_index, d.product_index, d.serial_number_index), (1, 2, 3));
        assert_eq!(d.num_configurations, 1);
    }

    #[test]
    fn version_display_is_bcd() {
        assert_eq!(std::format!("{}", Version(0x0210)), "2.1.0");
        assert_eq!(Version(0x1100).major(), 11);
    }

    #[test]
    fn device_descriptor_rejects_bad_input() {
        assert_eq!(DeviceDescriptor::parse(&DEVICE[..17]), Err(Error::BadDescriptor));
        let mut bad = DEVICE;
        bad[1] = 2;
        assert_eq!(DeviceDescriptor::parse(&bad), Err(Error::BadDescriptor));
        let mut bad = DEVICE;
        bad[0] = 9;
        assert_eq!(DeviceDescriptor::parse(&bad), Err(Error::BadDescriptor));
        let mut bad = DEVICE;
        bad[7] = 63;
        assert_eq!(DeviceDescriptor::parse(&bad), Err(Error::BadDescriptor));
    }

    #[test]
    fn config_header_fields() {
        let c = ConfigDescriptor::parse(&CONFIG).unwrap();
        assert_eq!(c.total_length(), 66);
        assert_eq!(c.num_interfaces(), 2);
        assert_eq!(c.value(), 1);
        assert!(!c.self_powered());
        assert!(c.remote_wakeup());
        assert_eq!(c.max_power_ma(), 100);
    }

    #[test]
    fn interfaces_and_endpoints() {
        let c = ConfigDescriptor::parse(&CONFIG).unwrap();
        let ifs: [(u8, u8, u8, usize); 3] = {
            let mut out = [(0, 0, 0, 0); 3];
            let mut n = 0;
            for i in c.interfaces() {
                out[n] = (i.number(), i.alt_setting(), i.class(), i.endpoints().count());
                n += 1;
            }
            assert_eq!(n, 3);
            out
        };
        assert_eq!(ifs, [(0, 0, 3, 1), (1, 0, 0xFF, 0), (1, 1, 0xFF, 2)]);

        let kbd = c.interface(0, 0).unwrap();
        assert_eq!((kbd.subclass(), kbd.protocol(), kbd.description_index()), (1, 1, 4));
        let hid = kbd.descriptors().find(|d| d.descriptor_type == descriptor_type::HID).unwrap();
        assert_eq!(hid.bytes.len(), 9);
        let ep = kbd.find_endpoint(Direction::In, TransferType::Interrupt).unwrap();
        assert_eq!((ep.address, ep.number(), ep.max_packet_size(), ep.interval), (0x81, 1, 8, 10));
        assert!(kbd.find_endpoint(Direction::Out, TransferType::Interrupt).is_none());

        let bulk = c.interface(1, 1).unwrap();
        let out = bulk.find_endpoint(Direction::Out, TransferType::Bulk).unwrap();
        let inp = bulk.find_endpoint(Direction::In, TransferType::Bulk).unwrap();
        assert_eq!((out.address, inp.address), (0x02, 0x82));
        assert_eq!(inp.max_packet_size(), 512);
        assert!(c.interface(2, 0).is_none());
    }

    #[test]
    fn config_longer_buffer_is_cut_at_total_length() {
        let mut buf = [0xEEu8; 80];
        buf[..66].copy_from_slice(&CONFIG);
        let c = ConfigDescriptor::parse(&buf).unwrap();
        assert_eq!(c.as_bytes().len(), 66);
        assert_eq!(c.descriptors().count(), 7);
    }

    #[test]
    fn config_rejects_truncated_and_malformed() {
        // buffer shorter than wTotalLength
        assert_eq!(ConfigDescriptor::parse(&CONFIG[..40]).unwrap_err(), Error::BadDescriptor);
        // wrong type
        let mut bad = CONFIG;
        bad[1] = 1;
        assert!(ConfigDescriptor::parse(&bad).is_err());
        // zero-length sub-descriptor would loop forever if accepted
        let mut bad = CONFIG;
        bad[9] = 0;
        assert!(ConfigDescriptor::parse(&bad).is_err());
        // sub-descriptor running past wTotalLength
        let mut bad = CONFIG;
        bad[59] = 9;
        assert!(ConfigDescriptor::parse(&bad).is_err());
        // short endpoint descriptor
        let mut bad = CONFIG;
        bad[2] = 65;
        bad[59] = 6;
        assert!(ConfigDescriptor::parse(&bad[..65]).is_err());
        // wTotalLength smaller than the header
        let mut bad = CONFIG;
        bad[2] = 5;
        assert!(ConfigDescriptor::parse(&bad).is_err());
        // a lone trailing byte
        let mut buf = [0u8; 10];
        buf[..9].copy_from_slice(&CONFIG[..9]);
        buf[2] = 10;
        buf[9] = 1;
        assert!(ConfigDescriptor::parse(&buf).is_err());
    }

    #[test]
    fn endpoint_parse() {
        let e = EndpointDescriptor::parse(&[7, 5, 0x83, 0x03, 0x40, 0x18, 4]).unwrap();
        assert_eq!(e.direction(), Direction::In);
        assert_eq!(e.transfer_type(), TransferType::Interrupt);
        assert_eq!(e.max_packet_size(), 64); // high-bandwidth bits 12..11 masked off
        assert_eq!(EndpointDescriptor::parse(&[7, 4, 0, 0, 0, 0, 0]), Err(Error::BadDescriptor));
        assert_eq!(EndpointDescriptor::parse(&[7, 5, 0]), Err(Error::BadDescriptor));
    }
}
