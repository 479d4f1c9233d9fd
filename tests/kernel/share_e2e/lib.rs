//! Test driver for tests/kernel/test_sharing_sdk.py: the SDK's `share` module end to end.
//! Config `role = "grantor"`: shares an 8-byte `SharedRegion` with driver `peer` (read-only),
//! writes the poll count into it every poll, reports it, and revokes the grant at poll 3.
//! Config `role = "grantee"`: every poll reads 4 bytes from `peer`'s grant and reports what
//! it saw (`seen`, `len`), or `denied`; a write through the read-only grant must be `Access`.
#![no_std]

use wasi_hw_sdk::report::Report;
use wasi_hw_sdk::share::{self, Grant, Rights, SharedRegion};
use wasi_hw_sdk::{config, export_driver, Driver, DriverError, Error};

static FRAME: SharedRegion<8> = SharedRegion::new();

enum Role {
    Grantor { n: u32, grant: Option<Grant> },
    Grantee,
}

struct E2e {
    role: Role,
    peer: [u8; 16],
    peer_len: usize,
}

impl E2e {
    fn peer(&self) -> &str {
        core::str::from_utf8(&self.peer[..self.peer_len]).unwrap_or("")
    }
}

impl Driver for E2e {
    type Error = Error;

    fn init() -> Result<Self, Error> {
        let mut buf = [0u8; 16];
        let mut peer = [0u8; 16];
        let peer_len = config::get("peer", &mut peer)?.map(str::len).unwrap_or(0);
        let grantor = config::get("role", &mut buf)? == Some("grantor");
        let mut me = E2e { role: Role::Grantee, peer, peer_len };
        if grantor {
            let grant = Grant::share(&FRAME, me.peer(), Rights::READ)?;
            me.role = Role::Grantor { n: 0, grant: Some(grant) };
        }
        Ok(me)
    }

    fn poll(&mut self) -> Result<(), Error> {
        let peer_len = self.peer_len;
        let peer = self.peer;
        let peer = core::str::from_utf8(&peer[..peer_len]).unwrap_or("");
        match &mut self.role {
            Role::Grantor { n, grant } => {
                *n += 1;
                FRAME.write(0, &n.to_le_bytes())?;
                if *n == 3 {
                    if let Some(g) = grant.take() {
                        g.revoke()?;
                    }
                }
                Report::new().u32("n", *n).bool("shared", grant.is_some()).send()?;
            }
            Role::Grantee => {
                let mut b = [0u8; 4];
                match share::granted_read(peer, 0, &mut b) {
                    Ok(()) => {
                        let len = share::granted_len(peer)? as u32;
                        let write_denied =
                            share::granted_write(peer, 0, &[1]) == Err(DriverError::Access);
                        Report::new()
                            .u32("seen", u32::from_le_bytes(b))
                            .u32("len", len)
                            .bool("write_denied", write_denied)
                            .send()?;
                    }
                    Err(DriverError::Access) => Report::new().bool("denied", true).send()?,
                    Err(e) => return Err(e.into()),
                }
            }
        }
        Ok(())
    }
}

export_driver!(E2e);
