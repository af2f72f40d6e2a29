// SPDX-License-Identifier: GPL-2.0

//! A namespace's disk as user space sees it beyond its data: the sysfs
//! attributes the C driver gives a namespace's disk under
//! `/sys/block/<disk>/` (`nsid`, `wwid`, `eui`, `nguid`, `uuid`;
//! drivers/nvme/host/sysfs.c) and the NVMe ioctls of its block device
//! (`include/uapi/linux/nvme_ioctl.h`), which go through the controller's
//! management handle (`mgmt.rs`, behind [`UserCommands`]) with the same
//! checks as on `/dev/rsnvme<N>`; and what the layers below the scan know
//! of the namespaces: [`Namespace`] and [`NamespaceSet`].

#![deny(unsafe_code)]

use crate::admin::UserData;
use crate::spec::command::Command;
use crate::spec::completion::Completion;
use crate::spec::identify::{IdentifyController, WriteSizes};
use crate::spec::nsid::{NamespaceIds, SpacedHex, Uuid, Wwid};
use crate::spec::passthru;
use crate::sys::blk::DiskFile;
use crate::sys::misc::capable_sys_admin;
use crate::sys::sysfs::Attributes;
use crate::sys::uring::{Queued, UringCmd};
use core::fmt;
use kernel::error::{
    code::{EACCES, EINVAL, ENOTTY},
    Result,
};
use kernel::sync::Arc;

/// The sysfs attributes of a namespace's disk, in the order
/// [`NsDisk::show`] takes their index.
/// A namespace the driver serves: what its disk's requests need, and its
/// identifiers.
#[derive(Clone, Copy)]
pub(crate) struct Namespace {
    /// Namespace identifier.
    pub(crate) nsid: u32,
    /// Capacity in logical blocks.
    pub(crate) blocks: u64,
    /// Logical block size as a shift (9 for 512 bytes).
    pub(crate) lba_shift: u32,
    /// Preferred, optimal and atomic write sizes.
    pub(crate) write_sizes: WriteSizes,
    /// EUI64, NGUID, UUID.
    pub(crate) ids: NamespaceIds,
}

impl Namespace {
    /// Capacity in 512-byte sectors (saturating).
    pub(crate) fn sectors(&self) -> u64 {
        let shift = self.lba_shift.saturating_sub(9);
        self.blocks.checked_shl(shift).unwrap_or(u64::MAX)
    }
}

/// Where a passthrough command from user space goes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target {
    /// The admin queue.
    Admin,
    /// The queue of the disk of the namespace the command names, any
    /// that has one (the controller device).
    AnyNamespace,
    /// The queue of this namespace's disk, for it only (its block device).
    Namespace(u32),
}

/// The commands from user space a namespace's block device passes on
/// (to the controller's management handle, `mgmt.rs`).
pub(crate) trait UserCommands: Send + Sync {
    /// `NVME_IOCTL_ADMIN_CMD`, `NVME_IOCTL_IO_CMD` and their 64-bit forms
    /// (`wide`) for `target`, with the command at user address `arg`.
    fn passthru(&self, arg: usize, wide: bool, target: Target) -> Result<isize>;

    /// `NVME_IOCTL_SUBMIT_IO` for namespace `nsid` of `1 << lba_shift`
    /// byte blocks.
    fn submit_io(&self, arg: usize, nsid: u32, lba_shift: u32) -> Result<isize>;

    /// `NVME_URING_CMD_IO` (`NVME_URING_CMD_IO_VEC` if `vectored`) on
    /// namespace `nsid`'s generic device: sends the command in `cmd`'s
    /// SQE without waiting for it.
    fn uring_io(&self, cmd: UringCmd<'_>, nsid: u32, vectored: bool) -> Result<Queued>;
}

/// The namespaces a controller serves as disks, as the layers below the
/// scan (`scan.rs`) use them.
pub(crate) trait NamespaceSet: Send + Sync {
    /// Sends I/O command `cmd` from user space on the queue of the disk
    /// of the namespace it names (`EINVAL` if none), with `data` mapped
    /// from user memory, and waits for it (up to `timeout_ms`, 0 for the
    /// I/O timeout, after which the controller is reset).
    fn user_io(&self, cmd: Command, data: Option<UserData>, timeout_ms: u32) -> Result<Completion>;

    /// Sends I/O command `cmd` from io_uring command `uring` on the queue
    /// of the disk of the namespace it names (`EINVAL` if none), with
    /// `data` mapped from user memory (`data.len` iovecs at `data.addr`
    /// if `vectored`), without waiting: `uring` is completed with the
    /// outcome when the request ends (after `timeout_ms`, 0 for the I/O
    /// timeout, the controller is reset).
    fn uring_io(
        &self,
        cmd: Command,
        data: Option<UserData>,
        vectored: bool,
        timeout_ms: u32,
        uring: UringCmd<'_>,
    ) -> Result<Queued>;

    /// Identifies the namespaces again and adds, resizes or removes
    /// their disks.
    fn rescan(&self) -> Result;
}

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
    mgmt: Arc<dyn UserCommands>,
}

impl NsDisk {
    /// The disk data of namespace `ns` of the controller `id` describes,
    /// whose commands from user space go through `mgmt`.
    pub(crate) fn new(ns: Namespace, id: &IdentifyController, mgmt: Arc<dyn UserCommands>) -> Self {
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

impl DiskFile for NsDisk {
    /// As the C driver's namespace ioctls: its namespace ID, I/O
    /// commands for this namespace, `NVME_IOCTL_SUBMIT_IO`, and admin
    /// commands for the controller (nvme-cli sends `id-ns` so). On a
    /// partition every command needs `CAP_SYS_ADMIN` (`EACCES`), as in
    /// the C driver: one could reach beyond the partition.
    fn ioctl(&self, cmd: u32, arg: usize, partition: bool) -> Result<isize> {
        let mgmt = &self.mgmt;
        let command = matches!(
            cmd,
            passthru::IOCTL_IO_CMD
                | passthru::IOCTL_IO64_CMD
                | passthru::IOCTL_SUBMIT_IO
                | passthru::IOCTL_ADMIN_CMD
                | passthru::IOCTL_ADMIN64_CMD
        );
        if partition && command && !capable_sys_admin() {
            return Err(EACCES);
        }
        namespace_ioctl(&**mgmt, &self.ns, cmd, arg)
    }
}

/// The NVMe ioctls of a namespace's devices (its block device and its
/// generic character device, `generic.rs`), as the C driver's
/// `nvme_ns_ioctl` and `nvme_ctrl_ioctl` serve them: its namespace ID,
/// I/O commands for this namespace, `NVME_IOCTL_SUBMIT_IO`, and admin
/// commands for the controller, through `mgmt` with its checks.
pub(crate) fn namespace_ioctl(
    mgmt: &dyn UserCommands,
    ns: &Namespace,
    cmd: u32,
    arg: usize,
) -> Result<isize> {
    let nsid = ns.nsid;
    match cmd {
        passthru::IOCTL_ID => isize::try_from(nsid).map_err(|_| EINVAL),
        passthru::IOCTL_IO_CMD => mgmt.passthru(arg, false, Target::Namespace(nsid)),
        passthru::IOCTL_IO64_CMD => mgmt.passthru(arg, true, Target::Namespace(nsid)),
        passthru::IOCTL_SUBMIT_IO => mgmt.submit_io(arg, nsid, ns.lba_shift),
        passthru::IOCTL_ADMIN_CMD => mgmt.passthru(arg, false, Target::Admin),
        passthru::IOCTL_ADMIN64_CMD => mgmt.passthru(arg, true, Target::Admin),
        _ => Err(ENOTTY),
    }
}
