// SPDX-License-Identifier: GPL-2.0

//! A namespace's generic character device, `/dev/rsng<N>n<nsid>` (the C
//! driver's `/dev/ng<N>n<nsid>`, drivers/nvme/host/core.c
//! `nvme_add_ns_cdev`): the namespace's NVMe ioctls without its block
//! device, and I/O commands through io_uring (`IORING_OP_URING_CMD` with
//! `NVME_URING_CMD_IO` and `NVME_URING_CMD_IO_VEC`, on a ring with
//! 128-byte SQEs and 32-byte CQEs, as drivers/nvme/host/ioctl.c serves
//! them). Both go through the controller's management handle
//! (`mgmt.rs`, behind [`UserCommands`]) with the checks of the block
//! device's passthrough; an open file only holds the [`Generic`], so it
//! outlives the controller and gets `ENODEV` once it is gone.

#![deny(unsafe_code)]

use crate::ns::{namespace_ioctl, Namespace, UserCommands};
use crate::spec::passthru;
use crate::sys::misc::{FileOps, MiscDevice, UringFileOps};
use crate::sys::pci::PciDevice;
use crate::sys::sysfs::Attributes;
use crate::sys::uring::{eopnotsupp, Queued, UringCmd};
use core::fmt;
use kernel::error::{
    code::{EINVAL, ENOTTY},
    Result,
};
use kernel::sync::Arc;

/// The data of a namespace's generic character device.
pub(crate) struct Generic {
    ns: Namespace,
    /// The controller's management handle, which runs the commands.
    mgmt: Arc<dyn UserCommands>,
}

impl Generic {
    /// The device data for namespace `ns`, whose commands go through
    /// `mgmt`.
    pub(crate) fn new(ns: Namespace, mgmt: Arc<dyn UserCommands>) -> Self {
        Self { ns, mgmt }
    }
}

impl FileOps for Generic {
    /// As on the namespace's block device (never a partition here).
    fn ioctl(&self, cmd: u32, arg: usize) -> Result<isize> {
        namespace_ioctl(&*self.mgmt, &self.ns, cmd, arg)
    }
}

impl UringFileOps for Generic {
    /// `NVME_URING_CMD_IO` and `NVME_URING_CMD_IO_VEC` for this
    /// namespace. As in the C driver: `EOPNOTSUPP` on a ring without
    /// big SQEs and CQEs, `ENOTTY` for other operations. Buffers
    /// registered with the ring are not supported (`EOPNOTSUPP`).
    fn uring_cmd(&self, cmd: UringCmd<'_>) -> Result<Queued> {
        if !cmd.flags().big_entries() {
            return Err(eopnotsupp());
        }
        let vectored = match cmd.op() {
            passthru::URING_CMD_IO => false,
            passthru::URING_CMD_IO_VEC => true,
            _ => return Err(ENOTTY),
        };
        if cmd.fixed_buffer() {
            return Err(eopnotsupp());
        }
        self.mgmt.uring_io(cmd, self.ns.nsid, vectored)
    }
}

impl Attributes for Generic {
    /// The device has no attributes of its own.
    fn show(&self, _index: usize, _out: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ok(())
    }

    fn store(&self, _index: usize, _input: &[u8]) -> Result {
        Err(EINVAL)
    }
}

/// Registers a namespace's generic device named `name` under the
/// controller `pdev`, serving the data given (the entry points own the
/// device's C tables).
pub(crate) type RegisterFn =
    fn(&PciDevice, fmt::Arguments<'_>, Arc<Generic>) -> Result<MiscDevice<Generic>>;
