//! Finding, opening and claiming the one device a driver is configured for: the start of a
//! USB driver's `init`.
//!
//! - [`Wanted::from_config`] reads config `vid` and `pid` (absent: the driver's defaults) and
//!   an optional `serial`; [`Wanted::find`] lists the granted devices matching them
//!   (`list_devices`) and takes the first.
//! - [`select_interface`] reads configuration descriptor 0 and lets the driver pick its
//!   interface (and keep what it needs of it, such as endpoint addresses).
//! - [`DeviceHandle::configure_and_claim`] then puts on the wire: GET_CONFIGURATION,
//!   SET_CONFIGURATION only when another configuration is active, optionally
//!   DETACH_KERNEL_DRIVER, and CLAIM_INTERFACE.
//! - [`open_configured`] does all of it in that order (opening the device between the last
//!   two, detaching kernel drivers) for a driver with nothing to check in between.
//!
//! A failure is an [`OpenError`] naming the failed step (`"list_devices"`,
//! `"config_descriptor"`, `"open"`, `"get_configuration"`, `"set_configuration"`,
//! `"claim_interface"`); a driver turns it into its own error type with `From<OpenError>`,
//! written for it by [`impl_usb_open_errors!`](crate::impl_usb_open_errors).

use crate::config::{self, ConfigError};
use crate::FmtBuf;

use super::{ConfigDescriptor, Device, DeviceHandle, DeviceList, Error, Filter};

/// Why finding or opening the configured device failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OpenError {
    Config(ConfigError),
    /// A USB call failed at the named step.
    Usb(&'static str, Error),
    /// No granted device matched the filter.
    NotFound { vid: u16, pid: u16 },
}

impl From<ConfigError> for OpenError {
    fn from(e: ConfigError) -> Self {
        OpenError::Config(e)
    }
}

/// `impl From<ConfigError>` and `impl From<usb::OpenError>` for `$error`, a driver's error
/// type with the variants `Config(ConfigError)`, `Usb(&'static str, usb::Error)` and
/// `NotFound { vid: u16, pid: u16 }`: each error becomes the variant of the same name.
#[macro_export]
macro_rules! impl_usb_open_errors {
    ($error:ty) => {
        impl From<$crate::config::ConfigError> for $error {
            fn from(e: $crate::config::ConfigError) -> Self {
                Self::Config(e)
            }
        }

        impl From<$crate::usb::OpenError> for $error {
            fn from(e: $crate::usb::OpenError) -> Self {
                match e {
                    $crate::usb::OpenError::Config(e) => Self::Config(e),
                    $crate::usb::OpenError::Usb(what, e) => Self::Usb(what, e),
                    $crate::usb::OpenError::NotFound { vid, pid } => Self::NotFound { vid, pid },
                }
            }
        }
    };
}

/// `r` with its error labelled as the step `what` (`OpenError::Usb(what, e)`).
pub fn step<T>(what: &'static str, r: super::Result<T>) -> Result<T, OpenError> {
    r.map_err(|e| OpenError::Usb(what, e))
}

/// The device a driver is configured for: vendor and product id, and optionally a serial.
pub struct Wanted {
    pub vid: u16,
    pub pid: u16,
    serial: Option<FmtBuf<64>>,
}

impl Wanted {
    /// Config `vid` and `pid` (absent: `default_vid`, `default_pid`) and `serial` (absent: any).
    pub fn from_config(default_vid: u16, default_pid: u16) -> Result<Self, ConfigError> {
        let vid = config::u16_or("vid", default_vid)?;
        let pid = config::u16_or("pid", default_pid)?;
        let mut buf = [0u8; 64];
        let serial = config::get("serial", &mut buf)?.map(|s| FmtBuf::format(format_args!("{s}")));
        Ok(Self { vid, pid, serial })
    }

    /// The configured serial number, if one was.
    pub fn serial(&self) -> Option<&str> {
        self.serial.as_ref().map(|s| s.as_str())
    }

    /// Vendor and product id, and the serial where one was configured.
    pub fn filter(&self) -> Filter<'_> {
        let f = Filter::new().vendor_id(self.vid).product_id(self.pid);
        match self.serial() {
            Some(s) => f.serial(s),
            None => f,
        }
    }

    /// The first granted device matching [`filter`](Self::filter) (`list_devices`).
    pub fn find(&self) -> Result<Device, OpenError> {
        let list = step("list_devices", DeviceList::<4>::new(&self.filter()))?;
        list.get(0).ok_or(OpenError::NotFound { vid: self.vid, pid: self.pid })
    }
}

/// The interface [`select_interface`] chose, and the configuration it belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selected {
    /// `bConfigurationValue` of configuration descriptor 0.
    pub config_value: u8,
    /// `bInterfaceNumber`.
    pub interface: u8,
}

/// Reads `device`'s configuration descriptor 0 (`config_descriptor`, at most 256 bytes) and
/// hands it to `pick`, which returns the number of the interface the driver wants and what
/// it keeps of it (or the driver's error when the device has no such interface).
pub fn select_interface<T, E: From<OpenError>>(
    device: Device,
    pick: impl FnOnce(&ConfigDescriptor<'_>) -> Result<(u8, T), E>,
) -> Result<(Selected, T), E> {
    let mut buf = [0u8; 256];
    let cfg = step("config_descriptor", device.config_descriptor(0, &mut buf))?;
    let (interface, kept) = pick(&cfg)?;
    Ok((Selected { config_value: cfg.value(), interface }, kept))
}

impl DeviceHandle {
    /// Makes `selected.config_value` the active configuration unless it already is, then
    /// claims `selected.interface`. With `detach_kernel_driver`, a kernel driver (usbhid,
    /// usb-storage) that owns the interface is told to let go first; hosts without kernel
    /// drivers answer not_supported / not_found, and any other failure is only logged
    /// (debug): the claim then says whether the interface is free.
    pub fn configure_and_claim(&self, selected: Selected, detach_kernel_driver: bool) -> Result<(), OpenError> {
        if step("get_configuration", self.active_configuration())? != selected.config_value {
            step("set_configuration", self.set_active_configuration(selected.config_value))?;
        }
        if detach_kernel_driver {
            match self.detach_kernel_driver(selected.interface) {
                Ok(()) | Err(Error::NotSupported | Error::NotFound) => {}
                Err(e) => crate::debug!("detach_kernel_driver({}): {}", selected.interface, e),
            }
        }
        step("claim_interface", self.claim_interface(selected.interface))
    }
}

/// The configured device, opened, its configuration active and its interface claimed.
pub struct Opened<T> {
    pub wanted: Wanted,
    pub handle: DeviceHandle,
    /// The claimed interface's number.
    pub interface: u8,
    /// What `pick` kept of the interface.
    pub kept: T,
}

/// [`Wanted::from_config`]`(default_vid, default_pid)`, [`Wanted::find`],
/// [`select_interface`]`(pick)`, [`Device::open`], then
/// [`DeviceHandle::configure_and_claim`] with kernel drivers detached.
pub fn open_configured<T, E: From<OpenError>>(
    default_vid: u16,
    default_pid: u16,
    pick: impl FnOnce(&ConfigDescriptor<'_>) -> Result<(u8, T), E>,
) -> Result<Opened<T>, E> {
    let wanted = Wanted::from_config(default_vid, default_pid).map_err(OpenError::from)?;
    let device = wanted.find()?;
    let (selected, kept) = select_interface(device, pick)?;
    let handle = step("open", device.open())?;
    handle.configure_and_claim(selected, true)?;
    Ok(Opened { wanted, handle, interface: selected.interface, kept })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_named() {
        assert_eq!(step::<()>("open", Err(Error::Access)), Err(OpenError::Usb("open", Error::Access)));
        assert_eq!(step("open", Ok(3)), Ok(3));
    }

    #[test]
    fn filter_has_the_serial_only_when_configured() {
        let w = Wanted { vid: 0x1209, pid: 1, serial: None };
        assert_eq!(w.filter(), Filter::new().vendor_id(0x1209).product_id(1));
        let w = Wanted { serial: Some(FmtBuf::format(format_args!("ECHO0001"))), ..w };
        assert_eq!(w.filter().serial, Some("ECHO0001"));
    }

    #[test]
    fn natively_nothing_is_found() {
        let w = Wanted { vid: 0x1209, pid: 2, serial: None };
        assert_eq!(w.find().unwrap_err(), OpenError::Usb("list_devices", Error::NotSupported));
    }
}
