//! Safe USB access over `wasi_usb`, shaped like rusb/libusb but `no_std` and allocation-free.
//!
//! - [`DeviceList`] lists the granted devices matching a [`Filter`] (built with a builder);
//!   each is a [`Device`]: bus, address, port path, speed, ids, and its descriptors
//!   ([`Device::device_descriptor`], [`Device::config_descriptor`] parsed by
//!   [`descriptors`]).
//! - [`Device::open`] gives a [`DeviceHandle`], closed on drop. It selects configurations,
//!   claims interfaces (explicitly or with the [`ClaimedInterface`] guard, released on drop)
//!   and runs transfers. Each transfer is one `wasi_usb` call and puts exactly that on the
//!   wire: a control transfer is SETUP (`request_type`, `request`, `value`, `index`,
//!   `wLength` = buffer length), an optional DATA stage and STATUS; bulk and interrupt
//!   transfers move the buffer to/from one endpoint. Timeouts are in milliseconds (0: the
//!   grant's default). IN transfers return the bytes read (a short packet ends the transfer
//!   and is not an error), OUT transfers the bytes written.
//! - Direction mistakes (an OUT endpoint passed to `read_bulk`, an IN request type to
//!   `write_control`) are caught here as [`Error::InvalidParam`] before any call is made.
//! - [`hotplug_poll`] drains arrival/departure events without blocking.
//! - [`open_configured`] (and its parts [`Wanted`], [`select_interface`],
//!   [`DeviceHandle::configure_and_claim`]) finds the device a driver is configured for
//!   (config `vid`, `pid`, `serial`), opens it and claims its interface.
//!
//! Every `usb_errno` maps to one [`Error`] variant; [`Error::BadDescriptor`] is the SDK's own
//! (descriptor bytes that do not parse). Off wasm32 (native `cargo test`), the calls return
//! [`Error::NotSupported`]; the parsing in [`descriptors`] works everywhere.

pub mod descriptors;
mod open;

pub use descriptors::{
    ConfigDescriptor, DeviceDescriptor, Direction, EndpointDescriptor, InterfaceDescriptor,
    TransferType, Version,
};
pub use open::{open_configured, select_interface, step, OpenError, Opened, Selected, Wanted};

/// A failed USB call: one variant per `usb_errno` case, plus `BadDescriptor`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Error {
    Io,
    InvalidParam,
    Access,
    NoDevice,
    NotFound,
    Busy,
    Timeout,
    Overflow,
    Pipe,
    Interrupted,
    NoMem,
    NotSupported,
    Fault,
    BadHandle,
    Other,
    /// Descriptor bytes from the device did not parse (SDK-side check, no errno).
    BadDescriptor,
}

impl Error {
    /// The variant for a `usb_errno` value (`None` for `success`; unknown values → `Other`).
    pub fn from_errno(errno: u16) -> Option<Self> {
        Some(match errno {
            0 => return None,
            1 => Error::Io,
            2 => Error::InvalidParam,
            3 => Error::Access,
            4 => Error::NoDevice,
            5 => Error::NotFound,
            6 => Error::Busy,
            7 => Error::Timeout,
            8 => Error::Overflow,
            9 => Error::Pipe,
            10 => Error::Interrupted,
            11 => Error::NoMem,
            12 => Error::NotSupported,
            13 => Error::Fault,
            14 => Error::BadHandle,
            _ => Error::Other,
        })
    }

    /// The `usb_errno` value (`BadDescriptor` has none and reports `other`).
    pub fn errno(self) -> u16 {
        match self {
            Error::Io => 1,
            Error::InvalidParam => 2,
            Error::Access => 3,
            Error::NoDevice => 4,
            Error::NotFound => 5,
            Error::Busy => 6,
            Error::Timeout => 7,
            Error::Overflow => 8,
            Error::Pipe => 9,
            Error::Interrupted => 10,
            Error::NoMem => 11,
            Error::NotSupported => 12,
            Error::Fault => 13,
            Error::BadHandle => 14,
            Error::Other | Error::BadDescriptor => 15,
        }
    }

    /// The WITX case name (`"pipe"`, `"timeout"`, …), `"bad_descriptor"` for the SDK's own.
    pub fn name(self) -> &'static str {
        match self {
            Error::Io => "io",
            Error::InvalidParam => "invalid_param",
            Error::Access => "access",
            Error::NoDevice => "no_device",
            Error::NotFound => "not_found",
            Error::Busy => "busy",
            Error::Timeout => "timeout",
            Error::Overflow => "overflow",
            Error::Pipe => "pipe",
            Error::Interrupted => "interrupted",
            Error::NoMem => "no_mem",
            Error::NotSupported => "not_supported",
            Error::Fault => "fault",
            Error::BadHandle => "bad_handle",
            Error::Other => "other",
            Error::BadDescriptor => "bad_descriptor",
        }
    }
}

impl core::fmt::Display for Error {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str(match self {
            Error::Io => "input/output error",
            Error::InvalidParam => "invalid parameter",
            Error::Access => "access denied by the driver's grant",
            Error::NoDevice => "no such device (it may have been disconnected)",
            Error::NotFound => "entity not found",
            Error::Busy => "resource busy",
            Error::Timeout => "operation timed out",
            Error::Overflow => "overflow: the device sent more data than requested",
            Error::Pipe => "pipe error: endpoint stalled",
            Error::Interrupted => "call interrupted",
            Error::NoMem => "request exceeds the driver's quota",
            Error::NotSupported => "operation not supported by this host",
            Error::Fault => "buffer outside the driver's memory",
            Error::BadHandle => "invalid device or handle",
            Error::Other => "other error",
            Error::BadDescriptor => "malformed descriptor",
        })
    }
}

pub type Result<T> = core::result::Result<T, Error>;

/// A device's negotiated speed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Speed {
    Unknown,
    Low,
    Full,
    High,
    Super,
    SuperPlus,
}

impl Speed {
    fn from_raw(v: u8) -> Self {
        match v {
            1 => Speed::Low,
            2 => Speed::Full,
            3 => Speed::High,
            4 => Speed::Super,
            5 => Speed::SuperPlus,
            _ => Speed::Unknown,
        }
    }
}

/// `bmRequestType` building blocks (USB 2.0 table 9-2) and standard requests.
pub mod request {
    pub const DIR_OUT: u8 = 0x00;
    pub const DIR_IN: u8 = 0x80;
    pub const TYPE_STANDARD: u8 = 0x00;
    pub const TYPE_CLASS: u8 = 0x20;
    pub const TYPE_VENDOR: u8 = 0x40;
    pub const RECIPIENT_DEVICE: u8 = 0x00;
    pub const RECIPIENT_INTERFACE: u8 = 0x01;
    pub const RECIPIENT_ENDPOINT: u8 = 0x02;
    pub const RECIPIENT_OTHER: u8 = 0x03;

    pub const GET_STATUS: u8 = 0x00;
    pub const CLEAR_FEATURE: u8 = 0x01;
    pub const SET_FEATURE: u8 = 0x03;
    pub const GET_DESCRIPTOR: u8 = 0x06;
    pub const GET_CONFIGURATION: u8 = 0x08;
    pub const GET_INTERFACE: u8 = 0x0A;

    /// Compose a `bmRequestType`.
    pub const fn request_type(direction_in: bool, kind: u8, recipient: u8) -> u8 {
        (if direction_in { DIR_IN } else { DIR_OUT }) | kind | recipient
    }
}

/// Which devices [`DeviceList::new`] returns; only the fields that were set are compared.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Filter<'a> {
    pub vendor_id: Option<u16>,
    pub product_id: Option<u16>,
    pub class: Option<u8>,
    pub serial: Option<&'a str>,
}

impl<'a> Filter<'a> {
    /// A filter matching every granted device.
    pub const fn new() -> Self {
        Self { vendor_id: None, product_id: None, class: None, serial: None }
    }
    pub const fn vendor_id(mut self, vid: u16) -> Self {
        self.vendor_id = Some(vid);
        self
    }
    pub const fn product_id(mut self, pid: u16) -> Self {
        self.product_id = Some(pid);
        self
    }
    /// Match the device class (`bDeviceClass`).
    pub const fn class(mut self, class: u8) -> Self {
        self.class = Some(class);
        self
    }
    pub const fn serial(mut self, serial: &'a str) -> Self {
        self.serial = Some(serial);
        self
    }
}

/// Where a device sits and what it is (`device_info`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeviceInfo {
    pub bus_number: u8,
    pub address: u8,
    pub speed: Speed,
    pub class: u8,
    pub subclass: u8,
    pub protocol: u8,
    pub vendor_id: u16,
    pub product_id: u16,
    pub num_configurations: u8,
    pub port_depth: u8,
}

/// A device's port numbers from the root hub (USB allows at most 7 tiers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PortPath {
    ports: [u8; 7],
    len: u8,
}

impl PortPath {
    pub fn as_slice(&self) -> &[u8] {
        &self.ports[..self.len as usize]
    }
}

/// A listed device the driver may see. Cheap to copy; its handle goes stale when the
/// device leaves (calls then fail with `NoDevice` or `BadHandle`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Device {
    raw: u32,
}

/// The devices matching a filter when it was made; holds up to `N` of them.
#[derive(Clone, Debug)]
pub struct DeviceList<const N: usize = 16> {
    devices: [u32; N],
    len: usize,
    total: usize,
}

impl<const N: usize> DeviceList<N> {
    /// List the granted devices present now that match `filter`.
    pub fn new(filter: &Filter<'_>) -> Result<Self> {
        let mut devices = [0u32; N];
        let total = sys::list_devices(filter, &mut devices)?;
        Ok(Self { devices, len: total.min(N), total })
    }

    /// How many devices this list holds.
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    /// How many devices matched (more than [`len`](Self::len) if `N` was too small).
    pub fn total(&self) -> usize {
        self.total
    }
    pub fn get(&self, i: usize) -> Option<Device> {
        (i < self.len).then(|| Device { raw: self.devices[i] })
    }
    pub fn iter(&self) -> impl Iterator<Item = Device> + '_ {
        self.devices[..self.len].iter().map(|&raw| Device { raw })
    }
}

/// The first granted device with this vendor and product id.
pub fn find(vendor_id: u16, product_id: u16) -> Result<Option<Device>> {
    let list = DeviceList::<1>::new(&Filter::new().vendor_id(vendor_id).product_id(product_id))?;
    Ok(list.get(0))
}

impl Device {
    /// The raw `$device` handle.
    pub fn as_raw(&self) -> u32 {
        self.raw
    }

    pub fn info(&self) -> Result<DeviceInfo> {
        sys::device_info(self.raw)
    }

    pub fn port_path(&self) -> Result<PortPath> {
        let mut p = PortPath::default();
        let n = sys::port_path(self.raw, &mut p.ports)?;
        p.len = n.min(p.ports.len()) as u8;
        Ok(p)
    }

    /// The device descriptor, parsed.
    pub fn device_descriptor(&self) -> Result<DeviceDescriptor> {
        let mut buf = [0u8; DeviceDescriptor::LEN];
        let n = sys::device_descriptor(self.raw, &mut buf)?;
        DeviceDescriptor::parse(&buf[..n.min(buf.len())])
    }

    /// Configuration descriptor `index` (0-based, not the configuration value) read into
    /// `buf` and validated. A `buf` shorter than its `wTotalLength` gives `Overflow`.
    pub fn config_descriptor<'b>(&self, index: u8, buf: &'b mut [u8]) -> Result<ConfigDescriptor<'b>> {
        let total = sys::config_descriptor(self.raw, index, buf)?;
        if total > buf.len() {
            return Err(Error::Overflow);
        }
        ConfigDescriptor::parse(&buf[..total])
    }

    /// Open the device.
    pub fn open(&self) -> Result<DeviceHandle> {
        Ok(DeviceHandle { raw: sys::open(self.raw)?, device: *self })
    }
}

/// An opened device; closed (interfaces released, transfers cancelled) on drop.
#[derive(Debug)]
pub struct DeviceHandle {
    raw: u32,
    device: Device,
}

impl Drop for DeviceHandle {
    fn drop(&mut self) {
        let _ = sys::close(self.raw);
    }
}

/// `bytes` as text; a multi-byte character cut off at the end (a full buffer) is dropped,
/// anything else that is not UTF-8 is `BadDescriptor`.
fn utf8_prefix(bytes: &[u8]) -> Result<&str> {
    match core::str::from_utf8(bytes) {
        Ok(s) => Ok(s),
        Err(e) if e.error_len().is_none() => Ok(core::str::from_utf8(&bytes[..e.valid_up_to()]).unwrap_or("")),
        Err(_) => Err(Error::BadDescriptor),
    }
}

fn check_in(endpoint_or_type: u8) -> Result<()> {
    if endpoint_or_type & 0x80 != 0 { Ok(()) } else { Err(Error::InvalidParam) }
}

fn check_out(endpoint_or_type: u8) -> Result<()> {
    if endpoint_or_type & 0x80 == 0 { Ok(()) } else { Err(Error::InvalidParam) }
}

impl DeviceHandle {
    /// The raw `$device_handle`.
    pub fn as_raw(&self) -> u32 {
        self.raw
    }
    /// The listed device this handle was opened from.
    pub fn device(&self) -> Device {
        self.device
    }

    /// Close now and report the outcome (dropping closes too, ignoring errors).
    pub fn close(self) -> Result<()> {
        let raw = self.raw;
        core::mem::forget(self);
        sys::close(raw)
    }

    /// String descriptor `index` in language `langid` (0: the device's first language),
    /// decoded to UTF-8 by the host into `buf`. A string longer than `buf` is cut at a
    /// character boundary.
    pub fn read_string_descriptor<'b>(&self, index: u8, langid: u16, buf: &'b mut [u8]) -> Result<&'b str> {
        if index == 0 {
            return Err(Error::InvalidParam); // index 0 is the language table, not a string
        }
        let n = sys::string_descriptor(self.raw, index, langid, buf)?.min(buf.len());
        let buf: &'b [u8] = buf;
        utf8_prefix(&buf[..n])
    }

    /// [`read_string_descriptor`](Self::read_string_descriptor) in the first language.
    pub fn read_string<'b>(&self, index: u8, buf: &'b mut [u8]) -> Result<&'b str> {
        self.read_string_descriptor(index, 0, buf)
    }

    /// The active configuration value (0: unconfigured).
    pub fn active_configuration(&self) -> Result<u8> {
        sys::get_configuration(self.raw)
    }

    pub fn set_active_configuration(&self, value: u8) -> Result<()> {
        sys::set_configuration(self.raw, value)
    }

    pub fn claim_interface(&self, interface: u8) -> Result<()> {
        sys::claim_interface(self.raw, interface)
    }

    pub fn release_interface(&self, interface: u8) -> Result<()> {
        sys::release_interface(self.raw, interface)
    }

    /// Claim `interface` for as long as the returned guard lives.
    pub fn claim(&self, interface: u8) -> Result<ClaimedInterface<'_>> {
        self.claim_interface(interface)?;
        Ok(ClaimedInterface { handle: self, interface })
    }

    pub fn set_alternate_setting(&self, interface: u8, alt_setting: u8) -> Result<()> {
        sys::set_alt_setting(self.raw, interface, alt_setting)
    }

    pub fn detach_kernel_driver(&self, interface: u8) -> Result<()> {
        sys::detach_kernel_driver(self.raw, interface)
    }

    /// Control IN: `request_type` must have bit 7 set; reads at most `buf.len()` bytes
    /// (`wLength`) and returns how many came.
    pub fn read_control(
        &self,
        request_type: u8,
        request: u8,
        value: u16,
        index: u16,
        buf: &mut [u8],
        timeout_ms: u32,
    ) -> Result<usize> {
        check_in(request_type)?;
        sys::control(self.raw, request_type, request, value, index, buf.as_mut_ptr(), buf.len(), timeout_ms)
    }

    /// Control OUT: `request_type` must have bit 7 clear; sends `data` and returns the
    /// bytes written.
    pub fn write_control(
        &self,
        request_type: u8,
        request: u8,
        value: u16,
        index: u16,
        data: &[u8],
        timeout_ms: u32,
    ) -> Result<usize> {
        check_out(request_type)?;
        // The host only reads an OUT buffer.
        sys::control(self.raw, request_type, request, value, index, data.as_ptr() as *mut u8, data.len(), timeout_ms)
    }

    /// Bulk IN on `endpoint` (bit 7 set); returns the bytes read.
    pub fn read_bulk(&self, endpoint: u8, buf: &mut [u8], timeout_ms: u32) -> Result<usize> {
        check_in(endpoint)?;
        sys::transfer(sys::Kind::Bulk, self.raw, endpoint, buf.as_mut_ptr(), buf.len(), timeout_ms)
    }

    /// Bulk OUT on `endpoint` (bit 7 clear); returns the bytes written.
    pub fn write_bulk(&self, endpoint: u8, data: &[u8], timeout_ms: u32) -> Result<usize> {
        check_out(endpoint)?;
        sys::transfer(sys::Kind::Bulk, self.raw, endpoint, data.as_ptr() as *mut u8, data.len(), timeout_ms)
    }

    /// Interrupt IN on `endpoint` (bit 7 set); returns the bytes read.
    pub fn read_interrupt(&self, endpoint: u8, buf: &mut [u8], timeout_ms: u32) -> Result<usize> {
        check_in(endpoint)?;
        sys::transfer(sys::Kind::Interrupt, self.raw, endpoint, buf.as_mut_ptr(), buf.len(), timeout_ms)
    }

    /// Interrupt OUT on `endpoint` (bit 7 clear); returns the bytes written.
    pub fn write_interrupt(&self, endpoint: u8, data: &[u8], timeout_ms: u32) -> Result<usize> {
        check_out(endpoint)?;
        sys::transfer(sys::Kind::Interrupt, self.raw, endpoint, data.as_ptr() as *mut u8, data.len(), timeout_ms)
    }

    /// An isochronous transfer of `packets.len()` packets laid out back to back in `data`
    /// (each packet's `length` set by the caller); the host fills in `actual_length` and
    /// `status`. Returns the total bytes transferred.
    pub fn iso_transfer(&self, endpoint: u8, data: &mut [u8], packets: &mut [IsoPacket], timeout_ms: u32) -> Result<usize> {
        let sum: u64 = packets.iter().map(|p| p.length as u64).sum();
        if sum > data.len() as u64 {
            return Err(Error::InvalidParam);
        }
        sys::iso_transfer(self.raw, endpoint, data, packets, timeout_ms)
    }

    /// Clear a halt (stall) on `endpoint`.
    pub fn clear_halt(&self, endpoint: u8) -> Result<()> {
        sys::clear_halt(self.raw, endpoint)
    }

    /// Reset the device (needs the reset grant).
    pub fn reset(&self) -> Result<()> {
        sys::reset_device(self.raw)
    }
}

/// A claimed interface, released when dropped.
#[derive(Debug)]
pub struct ClaimedInterface<'h> {
    handle: &'h DeviceHandle,
    interface: u8,
}

impl<'h> ClaimedInterface<'h> {
    pub fn number(&self) -> u8 {
        self.interface
    }
    pub fn handle(&self) -> &'h DeviceHandle {
        self.handle
    }
    pub fn set_alternate_setting(&self, alt_setting: u8) -> Result<()> {
        self.handle.set_alternate_setting(self.interface, alt_setting)
    }
    /// Release now and report the outcome.
    pub fn release(self) -> Result<()> {
        let (h, i) = (self.handle, self.interface);
        core::mem::forget(self);
        h.release_interface(i)
    }
}

impl Drop for ClaimedInterface<'_> {
    fn drop(&mut self) {
        let _ = self.handle.release_interface(self.interface);
    }
}

/// One isochronous packet: `length` requested, `actual_length` and `status` from the host.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[repr(C)]
pub struct IsoPacket {
    pub length: u32,
    pub actual_length: u32,
    /// A `usb_errno` (0: success); see [`IsoPacket::error`].
    pub status: u16,
}

impl IsoPacket {
    pub fn new(length: u32) -> Self {
        Self { length, actual_length: 0, status: 0 }
    }
    pub fn error(&self) -> Option<Error> {
        Error::from_errno(self.status)
    }
}

/// What happened to a device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HotplugKind {
    Arrived,
    Left,
}

/// One hotplug event; for `Left`, `device` is the stale handle the device had.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HotplugEvent {
    pub kind: HotplugKind,
    pub device: Device,
}

/// Up to `N` hotplug events taken by [`hotplug_poll`], oldest first.
#[derive(Clone, Copy, Debug)]
pub struct HotplugEvents<const N: usize> {
    events: [Option<HotplugEvent>; N],
    len: usize,
}

impl<const N: usize> HotplugEvents<N> {
    pub fn len(&self) -> usize {
        self.len
    }
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
    pub fn iter(&self) -> impl Iterator<Item = HotplugEvent> + '_ {
        self.events[..self.len].iter().flatten().copied()
    }
}

/// Take up to `N` pending hotplug events of granted devices, oldest first. Never blocks;
/// events beyond `N` stay queued for the next call.
pub fn hotplug_poll<const N: usize>() -> Result<HotplugEvents<N>> {
    let mut events = [None; N];
    let len = sys::hotplug_poll(&mut events)?;
    Ok(HotplugEvents { events, len })
}

// ---- the one place that calls the raw imports -------------------------------------------

#[cfg_attr(not(target_arch = "wasm32"), allow(unused_assignments))]
mod sys {
    //! Thin typed wrappers over `raw::wasi_usb`: pointers and lengths of Rust slices go in,
    //! the errno comes back as `Result`. Off wasm32 each call is `NotSupported`.
    use super::{Device, DeviceInfo, Error, Filter, HotplugEvent, HotplugKind, IsoPacket, Result, Speed};
    use crate::raw::wasi_usb as raw;

    fn check(errno: i32) -> Result<()> {
        match Error::from_errno(errno as u16) {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }

    /// Run an import that writes a `$size` result through its last (out-pointer) argument.
    fn sized(f: impl FnOnce(&mut raw::Size) -> i32) -> Result<usize> {
        let mut n: raw::Size = 0;
        check(f(&mut n))?;
        Ok(n as usize)
    }

    macro_rules! usb_call {
        ($call:expr) => {
            import_call!(raw::USB_ERRNO_NOT_SUPPORTED, $call)
        };
    }

    pub enum Kind {
        Bulk,
        Interrupt,
    }

    pub fn list_devices(filter: &Filter<'_>, out: &mut [u32]) -> Result<usize> {
        let mut f = raw::Filter {
            flags: 0,
            class: filter.class.unwrap_or(0),
            vendor_id: filter.vendor_id.unwrap_or(0),
            product_id: filter.product_id.unwrap_or(0),
            serial: core::ptr::null(),
            serial_len: 0,
        };
        if filter.vendor_id.is_some() {
            f.flags |= raw::FILTER_FLAGS_VENDOR_ID;
        }
        if filter.product_id.is_some() {
            f.flags |= raw::FILTER_FLAGS_PRODUCT_ID;
        }
        if filter.class.is_some() {
            f.flags |= raw::FILTER_FLAGS_CLASS;
        }
        if let Some(s) = filter.serial {
            f.flags |= raw::FILTER_FLAGS_SERIAL;
            f.serial = s.as_ptr();
            f.serial_len = s.len() as raw::Size;
        }
        sized(|n| {
            usb_call!(raw::list_devices(
                &f as *const raw::Filter as i32,
                out.as_mut_ptr() as i32,
                out.len() as i32,
                n as *mut raw::Size as i32,
            ))
        })
    }

    pub fn device_info(device: u32) -> Result<DeviceInfo> {
        let mut i = core::mem::MaybeUninit::<raw::DeviceInfo>::zeroed();
        check(usb_call!(raw::device_info(device as i32, i.as_mut_ptr() as i32)))?;
        // SAFETY: zero-initialised plain-old-data, filled in by the host on success.
        let i = unsafe { i.assume_init() };
        Ok(DeviceInfo {
            bus_number: i.bus_number,
            address: i.address,
            speed: Speed::from_raw(i.speed),
            class: i.class,
            subclass: i.subclass,
            protocol: i.protocol,
            vendor_id: i.vendor_id,
            product_id: i.product_id,
            num_configurations: i.num_configurations,
            port_depth: i.port_depth,
        })
    }

    pub fn port_path(device: u32, buf: &mut [u8]) -> Result<usize> {
        sized(|n| {
            usb_call!(raw::port_path(device as i32, buf.as_mut_ptr() as i32, buf.len() as i32, n as *mut raw::Size as i32))
        })
    }

    pub fn device_descriptor(device: u32, buf: &mut [u8]) -> Result<usize> {
        sized(|n| {
            usb_call!(raw::device_descriptor(
                device as i32,
                buf.as_mut_ptr() as i32,
                buf.len() as i32,
                n as *mut raw::Size as i32
            ))
        })
    }

    pub fn config_descriptor(device: u32, index: u8, buf: &mut [u8]) -> Result<usize> {
        sized(|n| {
            usb_call!(raw::config_descriptor(
                device as i32,
                index as i32,
                buf.as_mut_ptr() as i32,
                buf.len() as i32,
                n as *mut raw::Size as i32
            ))
        })
    }

    pub fn open(device: u32) -> Result<u32> {
        let mut h: u32 = 0;
        check(usb_call!(raw::open(device as i32, &mut h as *mut u32 as i32)))?;
        Ok(h)
    }

    pub fn close(handle: u32) -> Result<()> {
        check(usb_call!(raw::close(handle as i32)))
    }

    pub fn string_descriptor(handle: u32, index: u8, langid: u16, buf: &mut [u8]) -> Result<usize> {
        sized(|n| {
            usb_call!(raw::string_descriptor(
                handle as i32,
                index as i32,
                langid as i32,
                buf.as_mut_ptr() as i32,
                buf.len() as i32,
                n as *mut raw::Size as i32
            ))
        })
    }

    pub fn get_configuration(handle: u32) -> Result<u8> {
        let mut v: u8 = 0;
        check(usb_call!(raw::get_configuration(handle as i32, &mut v as *mut u8 as i32)))?;
        Ok(v)
    }

    pub fn set_configuration(handle: u32, value: u8) -> Result<()> {
        check(usb_call!(raw::set_configuration(handle as i32, value as i32)))
    }

    pub fn claim_interface(handle: u32, interface: u8) -> Result<()> {
        check(usb_call!(raw::claim_interface(handle as i32, interface as i32)))
    }

    pub fn release_interface(handle: u32, interface: u8) -> Result<()> {
        check(usb_call!(raw::release_interface(handle as i32, interface as i32)))
    }

    pub fn set_alt_setting(handle: u32, interface: u8, alt: u8) -> Result<()> {
        check(usb_call!(raw::set_alt_setting(handle as i32, interface as i32, alt as i32)))
    }

    pub fn detach_kernel_driver(handle: u32, interface: u8) -> Result<()> {
        check(usb_call!(raw::detach_kernel_driver(handle as i32, interface as i32)))
    }

    #[allow(clippy::too_many_arguments)]
    pub fn control(
        handle: u32,
        request_type: u8,
        request: u8,
        value: u16,
        index: u16,
        data: *mut u8,
        len: usize,
        timeout_ms: u32,
    ) -> Result<usize> {
        sized(|n| {
            usb_call!(raw::control_transfer(
                handle as i32,
                request_type as i32,
                request as i32,
                value as i32,
                index as i32,
                data as i32,
                len as i32,
                timeout_ms as i32,
                n as *mut raw::Size as i32
            ))
        })
    }

    pub fn transfer(kind: Kind, handle: u32, endpoint: u8, data: *mut u8, len: usize, timeout_ms: u32) -> Result<usize> {
        sized(|n| {
            let n = n as *mut raw::Size as i32;
            match kind {
                Kind::Bulk => usb_call!(raw::bulk_transfer(
                    handle as i32,
                    endpoint as i32,
                    data as i32,
                    len as i32,
                    timeout_ms as i32,
                    n
                )),
                Kind::Interrupt => usb_call!(raw::interrupt_transfer(
                    handle as i32,
                    endpoint as i32,
                    data as i32,
                    len as i32,
                    timeout_ms as i32,
                    n
                )),
            }
        })
    }

    // `IsoPacket` is `#[repr(C)]` with the WITX layout of `$iso_packet`, so the caller's
    // array is passed as is.
    const _: () = assert!(core::mem::size_of::<IsoPacket>() == core::mem::size_of::<raw::IsoPacket>());

    pub fn iso_transfer(handle: u32, endpoint: u8, data: &mut [u8], packets: &mut [IsoPacket], timeout_ms: u32) -> Result<usize> {
        sized(|n| {
            usb_call!(raw::iso_transfer(
                handle as i32,
                endpoint as i32,
                data.as_mut_ptr() as i32,
                data.len() as i32,
                packets.as_mut_ptr() as i32,
                packets.len() as i32,
                timeout_ms as i32,
                n as *mut raw::Size as i32
            ))
        })
    }

    pub fn clear_halt(handle: u32, endpoint: u8) -> Result<()> {
        check(usb_call!(raw::clear_halt(handle as i32, endpoint as i32)))
    }

    pub fn reset_device(handle: u32) -> Result<()> {
        check(usb_call!(raw::reset_device(handle as i32)))
    }

    pub fn hotplug_poll(events: &mut [Option<HotplugEvent>]) -> Result<usize> {
        const CHUNK: usize = 8;
        let mut written = 0;
        while written < events.len() {
            let mut buf = [core::mem::MaybeUninit::<raw::HotplugEvent>::zeroed(); CHUNK];
            let want = (events.len() - written).min(CHUNK);
            let got = sized(|n| {
                usb_call!(raw::hotplug_poll(buf.as_mut_ptr() as i32, want as i32, n as *mut raw::Size as i32))
            })?
            .min(want);
            for (slot, ev) in events[written..written + got].iter_mut().zip(&buf[..got]) {
                // SAFETY: zero-initialised plain-old-data, `got` of them filled by the host.
                let ev = unsafe { ev.assume_init() };
                let kind = if ev.kind == raw::HOTPLUG_KIND_LEFT { HotplugKind::Left } else { HotplugKind::Arrived };
                *slot = Some(HotplugEvent { kind, device: Device { raw: ev.device } });
            }
            written += got;
            if got < want {
                break;
            }
        }
        Ok(written)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_errno_round_trips() {
        assert_eq!(Error::from_errno(0), None);
        for errno in 1u16..=15 {
            let e = Error::from_errno(errno).unwrap();
            assert_eq!(e.errno(), errno, "{}", e.name());
        }
        assert_eq!(Error::from_errno(99), Some(Error::Other));
        assert_eq!(Error::BadDescriptor.errno(), 15);
        assert_eq!(Error::from_errno(9).unwrap().name(), "pipe");
    }

    #[test]
    fn display_is_distinct_per_variant() {
        use std::string::ToString;
        let all = [
            Error::Io, Error::InvalidParam, Error::Access, Error::NoDevice, Error::NotFound,
            Error::Busy, Error::Timeout, Error::Overflow, Error::Pipe, Error::Interrupted,
            Error::NoMem, Error::NotSupported, Error::Fault, Error::BadHandle, Error::Other,
            Error::BadDescriptor,
        ];
        let texts: std::vec::Vec<_> = all.iter().map(|e| e.to_string()).collect();
        for (i, t) in texts.iter().enumerate() {
            assert!(!t.is_empty());
            assert!(texts.iter().skip(i + 1).all(|u| u != t), "duplicate message {t}");
        }
        assert_eq!(Error::Timeout.to_string(), "operation timed out");
    }

    #[test]
    fn filter_builder_sets_only_given_fields() {
        let f = Filter::new().vendor_id(0x1209).serial("A1");
        assert_eq!(f, Filter { vendor_id: Some(0x1209), product_id: None, class: None, serial: Some("A1") });
        assert_eq!(Filter::new().class(3).product_id(7).class, Some(3));
    }

    #[test]
    fn request_type_composition() {
        use request::*;
        assert_eq!(request_type(true, TYPE_VENDOR, RECIPIENT_DEVICE), 0xC0);
        assert_eq!(request_type(false, TYPE_CLASS, RECIPIENT_INTERFACE), 0x21);
        assert_eq!(request_type(true, TYPE_STANDARD, RECIPIENT_ENDPOINT), 0x82);
    }

    #[test]
    fn direction_checks_precede_any_call() {
        assert_eq!(check_in(0x81), Ok(()));
        assert_eq!(check_in(0x01), Err(Error::InvalidParam));
        assert_eq!(check_out(0x02), Ok(()));
        assert_eq!(check_out(0xC0), Err(Error::InvalidParam));
    }

    #[test]
    fn string_cut_inside_a_character_keeps_whole_characters() {
        assert_eq!(utf8_prefix("Echo".as_bytes()), Ok("Echo"));
        assert_eq!(utf8_prefix(&"Größe".as_bytes()[..3]), Ok("Gr")); // 'ö' cut in half
        assert_eq!(utf8_prefix(&[b'a', 0xFF, b'b']), Err(Error::BadDescriptor));
    }

    #[test]
    fn speed_from_raw() {
        assert_eq!(Speed::from_raw(3), Speed::High);
        assert_eq!(Speed::from_raw(200), Speed::Unknown);
    }

    #[test]
    fn iso_packet_layout_matches_witx() {
        assert_eq!(core::mem::size_of::<IsoPacket>(), 12);
        assert_eq!(core::mem::align_of::<IsoPacket>(), 4);
        assert_eq!(IsoPacket { status: 7, ..IsoPacket::new(8) }.error(), Some(Error::Timeout));
    }

    #[test]
    fn native_calls_report_not_supported() {
        assert_eq!(DeviceList::<4>::new(&Filter::new()).unwrap_err(), Error::NotSupported);
        assert_eq!(find(1, 2).unwrap_err(), Error::NotSupported);
    }
}
