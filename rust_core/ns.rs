// SPDX-License-Identifier: GPL-2.0

//! A namespace's disk as user space sees it beyond its data: the sysfs
//! attributes the C driver gives a namespace's disk under
//! `/sys/block/<disk>/` (`nsid`, `wwid`, `eui`, `nguid`, `uuid`;
//! drivers/nvme/host/sysfs.c) and the NVMe ioctls of its block device
//! (`include/uapi/linux/nvme_ioctl.h`), which go through the controller's
//! management handle (`mgmt.rs`) with the same checks as on
//! `/dev/rsnvme<N>`.

#![deny(unsafe_code)]

use crate::io::Namespace;
use crate::mgmt::{Handle, Target};
use crate::spec::identify::IdentifyController;
use crate::spec::nsid::{SpacedHex, Uuid, Wwid};
use crate::spec::passthru;
use crate::sys::misc::FileOps;
use crate::sys::sysfs::Attributes;
use core::fmt;
use kernel::error::{
    code::{EINVAL, ENOTTY},
    Result,
};
use kernel::sync::Arc;

/// The sysfs attributes of a namespace's disk, in the order
/// [`NsDisk::show`] takes their index.
pub(crate) const ATTRIBUTE_NAMES: [&core::ffi::CStr; 5] =
    [c"nsid", c"wwid", c"eui", c"nguid", c"uuid"];

/// The data of a namespace's disk: what its requests, its attributes and
/// its ioctls need.
pub(crate) struct NsDisk {
    ns: Namespace,
    /// The controller's PCI vendor ID, serial and model numbers, for a
    /// WWID when the namespace has no identifier of its own.
    vendor_id: u16,
    serial: [u8; 20],
    model: [u8; 40],
    /// The controller's management handle, which runs the ioctls.
    mgmt: Arc<Handle>,
}

impl NsDisk {
    /// The disk data of namespace `ns` of the controller `id` describes,
    /// whose commands from user space go through `mgmt`.
    pub(crate) fn new(ns: Namespace, id: &IdentifyController, mgmt: Arc<Handle>) -> Self {
        let (serial, model) = id.raw_serial_model();
        Self {
            ns,
            vendor_id: id.vendor_id(),
            serial: *serial,
            model: *model,
            mgmt,
        }
    }

    /// The namespace.
    pub(crate) fn namespace(&self) -> &Namespace {
        &self.ns
    }
}

impl Attributes for NsDisk {
    fn show(&self, index: usize, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids = &self.ns.ids;
        match index {
            0 => write!(out, "{}", self.ns.nsid),
            1 => write!(
                out,
                "{}",
                Wwid {
                    ids,
                    vendor_id: self.vendor_id,
                    serial: &self.serial,
                    model: &self.model,
                    nsid: self.ns.nsid,
                }
            ),
            2 => write!(out, "{}", SpacedHex(&ids.eui64)),
            3 => write!(out, "{}", Uuid(&ids.nguid)),
            4 => write!(out, "{}", ids.uuid_or_nguid()),
            _ => Ok(()),
        }
    }

    fn store(&self, _index: usize, _input: &[u8]) -> Result {
        Err(EINVAL)
    }

    /// As the C driver: `eui`, `nguid` and `uuid` only when there is a
    /// value to show (`uuid` shows the NGUID when there is no UUID).
    fn visible(&self, index: usize) -> bool {
        let ids = &self.ns.ids;
        match index {
            2 => ids.has_eui64(),
            3 => ids.has_nguid(),
            4 => ids.has_uuid_or_nguid(),
            _ => true,
        }
    }
}

impl FileOps for NsDisk {
    /// As the C driver's namespace ioctls: its namespace ID, I/O
    /// commands for this namespace, `NVME_IOCTL_SUBMIT_IO`, and admin
    /// commands for the controller (nvme-cli sends `id-ns` so).
    fn ioctl(&self, cmd: u32, arg: usize) -> Result<isize> {
        let nsid = self.ns.nsid;
        let mgmt = &self.mgmt;
        match cmd {
            passthru::IOCTL_ID => isize::try_from(nsid).map_err(|_| EINVAL),
            passthru::IOCTL_IO_CMD => mgmt.passthru(arg, false, Target::Namespace(nsid)),
            passthru::IOCTL_IO64_CMD => mgmt.passthru(arg, true, Target::Namespace(nsid)),
            passthru::IOCTL_SUBMIT_IO => mgmt.submit_io(arg, nsid, self.ns.lba_shift),
            passthru::IOCTL_ADMIN_CMD => mgmt.passthru(arg, false, Target::Admin),
            passthru::IOCTL_ADMIN64_CMD => mgmt.passthru(arg, true, Target::Admin),
            _ => Err(ENOTTY),
        }
    }
}
