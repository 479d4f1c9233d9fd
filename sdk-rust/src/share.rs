//! Sharing memory with other drivers over `wasi_driver.grant` / `revoke` / `granted_*`.
//!
//! The grantor grants another driver of the same kernel read (or read/write) access to a
//! region of its own memory; the kernel checks every access against its grant table (both
//! manifests must allow the pair in `[sharing]`), copies straight between the two memories,
//! and ends the grant at once on [`Grant::revoke`] or when either driver stops or restarts.
//!
//! ```ignore
//! // grantor ("sensor"): publish the latest frame to "lcd"
//! static FRAME: SharedRegion<16> = SharedRegion::new();
//! let grant = Grant::share(&FRAME, "lcd", Rights::READ)?;
//! FRAME.write(0, &reading.to_le_bytes());        // the grantee sees it on its next read
//!
//! // grantee ("lcd")
//! let mut buf = [0u8; 4];
//! share::granted_read("sensor", 0, &mut buf)?;
//! ```
//!
//! Regions must be `'static`: the grantee may touch them whenever it runs, for as long as the
//! grant lives. Three ways to grant:
//! - [`Grant::new`]: an immutable `&'static [u8]` (read grants only);
//! - [`Grant::new_mut`]: a `&'static mut [u8]` given away for the grant's lifetime (any
//!   rights) and handed back by [`MutGrant::revoke_mut`] — like a DMA buffer;
//! - [`Grant::share`]: a [`SharedRegion`] that the grantor keeps reading and writing (by
//!   copies, never references) while it is shared.
//!
//! Errors are [`DriverError`]s: `Access` (policy, no live grant, missing right, outside the
//! region), `BadHandle`, `InvalidArgument`, `Fault`, `NoMem`.

use core::cell::UnsafeCell;
use core::ops::BitOr;

use crate::driver::DriverError;
use crate::raw::wasi_driver as raw;

/// What a grant lets the grantee do (`$grant_rights`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rights(u8);

impl Rights {
    /// Copy bytes out of the region ([`granted_read`]).
    pub const READ: Rights = Rights(raw::GRANT_RIGHTS_READ);
    /// Copy bytes into the region ([`granted_write`]).
    pub const WRITE: Rights = Rights(raw::GRANT_RIGHTS_WRITE);
    /// Both.
    pub const READ_WRITE: Rights = Rights(raw::GRANT_RIGHTS_READ | raw::GRANT_RIGHTS_WRITE);

    /// The raw flag bits.
    pub const fn bits(self) -> u8 {
        self.0
    }

    /// Whether every right of `other` is in `self`.
    pub const fn contains(self, other: Rights) -> bool {
        self.0 & other.0 == other.0
    }
}

impl BitOr for Rights {
    type Output = Rights;
    fn bitor(self, rhs: Rights) -> Rights {
        Rights(self.0 | rhs.0)
    }
}

/// A live grant of a region of this driver's memory; revoke it with [`Grant::revoke`].
///
/// Dropping a `Grant` does *not* revoke it (the region is `'static`, so the grant stays
/// sound); it ends when the driver stops.
#[derive(Debug, PartialEq, Eq)]
pub struct Grant {
    handle: raw::Grant,
}

impl Grant {
    /// Grants `grantee` read access to an immutable region. `rights` must be
    /// [`Rights::READ`]: an immutable region cannot be written (else `InvalidArgument`,
    /// without asking the host).
    pub fn new(region: &'static [u8], grantee: &str, rights: Rights) -> Result<Grant, DriverError> {
        if rights != Rights::READ {
            return Err(DriverError::InvalidArgument);
        }
        grant(region.as_ptr() as usize, region.len(), grantee, rights)
    }

    /// Grants `grantee` `rights` to a region this driver gives up until
    /// [`MutGrant::revoke_mut`] hands it back (on failure it comes back with the error).
    pub fn new_mut(
        region: &'static mut [u8],
        grantee: &str,
        rights: Rights,
    ) -> Result<MutGrant, (DriverError, &'static mut [u8])> {
        match grant(region.as_mut_ptr() as usize, region.len(), grantee, rights) {
            Ok(grant) => Ok(MutGrant { grant, region }),
            Err(e) => Err((e, region)),
        }
    }

    /// Grants `grantee` `rights` to a [`SharedRegion`] this driver keeps using.
    pub fn share<const N: usize>(
        region: &'static SharedRegion<N>,
        grantee: &str,
        rights: Rights,
    ) -> Result<Grant, DriverError> {
        grant(region.0.get() as usize, N, grantee, rights)
    }

    /// The kernel's handle of this grant.
    pub fn handle(&self) -> u32 {
        self.handle
    }

    /// Ends the grant: the grantee's next access fails with `Access`.
    pub fn revoke(self) -> Result<(), DriverError> {
        DriverError::check(import_call!(raw::DRIVER_ERRNO_OTHER, raw::revoke(self.handle as i32)))
    }
}

/// A grant of a `&'static mut` region: the region comes back with [`MutGrant::revoke_mut`].
#[derive(Debug)]
pub struct MutGrant {
    grant: Grant,
    region: &'static mut [u8],
}

impl MutGrant {
    /// The kernel's handle of this grant.
    pub fn handle(&self) -> u32 {
        self.grant.handle
    }

    /// Ends the grant and returns the region (or the error and the still-live grant).
    pub fn revoke_mut(self) -> Result<&'static mut [u8], (DriverError, MutGrant)> {
        match DriverError::check(import_call!(
            raw::DRIVER_ERRNO_OTHER,
            raw::revoke(self.grant.handle as i32)
        )) {
            Ok(()) => Ok(self.region),
            Err(e) => Err((e, self)),
        }
    }
}

fn grant(ptr: usize, len: usize, grantee: &str, rights: Rights) -> Result<Grant, DriverError> {
    let mut handle: raw::Grant = 0;
    DriverError::check(import_call!(
        raw::DRIVER_ERRNO_OTHER,
        raw::grant(
            ptr as i32,
            len as i32,
            grantee.as_ptr() as i32,
            grantee.len() as i32,
            rights.0 as i32,
            &mut handle as *mut raw::Grant as i32,
        )
    ))?;
    Ok(Grant { handle })
}

/// `N` bytes that may be shared with other drivers while this driver keeps using them.
///
/// The bytes are only ever accessed by copies (`read`/`write`), never through references,
/// because a grantee may change them (through the host) between this driver's calls.
pub struct SharedRegion<const N: usize>(UnsafeCell<[u8; N]>);

// SAFETY: a wasm32-unknown-unknown instance is single-threaded, and the host touches the
// bytes only while another driver runs — never during a call into this one — so no access
// through `read`/`write` overlaps another.
unsafe impl<const N: usize> Sync for SharedRegion<N> {}

impl<const N: usize> Default for SharedRegion<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> SharedRegion<N> {
    /// `N` zero bytes.
    pub const fn new() -> Self {
        Self(UnsafeCell::new([0; N]))
    }

    /// The region's length.
    pub const fn len(&self) -> usize {
        N
    }

    /// Whether the region is empty.
    pub const fn is_empty(&self) -> bool {
        N == 0
    }

    /// Copies `data` in at `offset`; `TooLarge` (nothing written) if it does not fit.
    pub fn write(&self, offset: usize, data: &[u8]) -> Result<(), DriverError> {
        let end = offset.checked_add(data.len()).ok_or(DriverError::TooLarge)?;
        if end > N {
            return Err(DriverError::TooLarge);
        }
        // SAFETY: in bounds (checked above); no reference to the contents exists (see Sync).
        unsafe {
            core::ptr::copy(data.as_ptr(), (self.0.get() as *mut u8).add(offset), data.len())
        };
        Ok(())
    }

    /// Copies `buf.len()` bytes at `offset` out; `TooLarge` if that leaves the region.
    pub fn read(&self, offset: usize, buf: &mut [u8]) -> Result<(), DriverError> {
        let end = offset.checked_add(buf.len()).ok_or(DriverError::TooLarge)?;
        if end > N {
            return Err(DriverError::TooLarge);
        }
        // SAFETY: as in `write`.
        unsafe {
            core::ptr::copy((self.0.get() as *const u8).add(offset), buf.as_mut_ptr(), buf.len())
        };
        Ok(())
    }
}

/// The length of the region `grantor` granted to this driver.
pub fn granted_len(grantor: &str) -> Result<usize, DriverError> {
    let mut len: raw::Size = 0;
    DriverError::check(import_call!(
        raw::DRIVER_ERRNO_OTHER,
        raw::granted_len(
            grantor.as_ptr() as i32,
            grantor.len() as i32,
            &mut len as *mut raw::Size as i32
        )
    ))?;
    Ok(len as usize)
}

/// Fills `buf` with the bytes at `offset` of the region `grantor` granted to this driver
/// (its bytes as they are now). `Access` if there is no live read grant or the span leaves
/// the region.
pub fn granted_read(grantor: &str, offset: usize, buf: &mut [u8]) -> Result<(), DriverError> {
    DriverError::check(import_call!(
        raw::DRIVER_ERRNO_OTHER,
        raw::granted_read(
            grantor.as_ptr() as i32,
            grantor.len() as i32,
            offset as i32,
            buf.as_mut_ptr() as i32,
            buf.len() as i32
        )
    ))
}

/// Copies `data` to `offset` of the region `grantor` granted to this driver. `Access` if
/// there is no live write grant or the span leaves the region.
pub fn granted_write(grantor: &str, offset: usize, data: &[u8]) -> Result<(), DriverError> {
    DriverError::check(import_call!(
        raw::DRIVER_ERRNO_OTHER,
        raw::granted_write(
            grantor.as_ptr() as i32,
            grantor.len() as i32,
            offset as i32,
            data.as_ptr() as i32,
            data.len() as i32
        )
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rights_are_the_spec_flags() {
        assert_eq!(Rights::READ.bits(), 1);
        assert_eq!(Rights::WRITE.bits(), 2);
        assert_eq!(Rights::READ | Rights::WRITE, Rights::READ_WRITE);
        assert!(Rights::READ_WRITE.contains(Rights::WRITE));
        assert!(!Rights::READ.contains(Rights::WRITE));
    }

    #[test]
    fn immutable_regions_are_read_only() {
        static TABLE: [u8; 4] = [1, 2, 3, 4];
        assert_eq!(Grant::new(&TABLE, "lcd", Rights::READ_WRITE), Err(DriverError::InvalidArgument));
        assert_eq!(Grant::new(&TABLE, "lcd", Rights::WRITE), Err(DriverError::InvalidArgument));
        // natively there is no host: the call itself is `Other`
        assert_eq!(Grant::new(&TABLE, "lcd", Rights::READ), Err(DriverError::Other));
    }

    #[test]
    fn without_a_host_every_call_is_other_and_regions_come_back() {
        static SHARED: SharedRegion<8> = SharedRegion::new();
        assert_eq!(Grant::share(&SHARED, "lcd", Rights::READ), Err(DriverError::Other));
        let buf: &'static mut [u8] = std::boxed::Box::leak(std::vec![0u8; 8].into_boxed_slice());
        let (err, back) = Grant::new_mut(buf, "lcd", Rights::READ).unwrap_err();
        assert_eq!((err, back.len()), (DriverError::Other, 8));
        let mut out = [0u8; 2];
        assert_eq!(granted_read("sensor", 0, &mut out), Err(DriverError::Other));
        assert_eq!(granted_write("sensor", 0, &out), Err(DriverError::Other));
        assert_eq!(granted_len("sensor"), Err(DriverError::Other));
        assert_eq!(Grant { handle: 3 }.revoke(), Err(DriverError::Other));
    }

    #[test]
    fn shared_region_copies_in_bounds_only() {
        let r: SharedRegion<8> = SharedRegion::new();
        assert_eq!(r.len(), 8);
        r.write(6, &[7, 8]).unwrap();
        let mut out = [0u8; 3];
        r.read(5, &mut out).unwrap();
        assert_eq!(out, [0, 7, 8]);
        assert_eq!(r.write(7, &[1, 2]), Err(DriverError::TooLarge));
        assert_eq!(r.read(usize::MAX, &mut out), Err(DriverError::TooLarge));
        assert_eq!(r.write(8, &[]), Ok(()));
    }
}
