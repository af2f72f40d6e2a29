// SPDX-License-Identifier: GPL-2.0

//! The management interface of a controller, as nvme-cli uses it: the
//! character device `/dev/rsnvme<N>` with the NVMe passthrough ioctls of
//! `include/uapi/linux/nvme_ioctl.h` (admin commands, resets) and the sysfs
//! attributes the C driver's controller device has
//! (drivers/nvme/host/sysfs.c). Also the controller numbers, which the
//! disks are named after too.
//!
//! An open file holds a [`Handle`], which outlives the controller: remove
//! first deregisters the device, then detaches the handle, after which
//! its ioctls fail with `ENODEV`; commands still running are taken back
//! with the controller's requests, and remove waits until they have let
//! go of its queues ([`Handle::wait_idle`]).

#![deny(unsafe_code)]

use crate::admin::{AdminQueue, UserData};
use crate::ctrl::Ctrl;
use crate::ns::{NamespaceSet, Target, UserCommands};
use crate::spec::completion::Completion;
use crate::spec::identify::IdentifyController;
use crate::spec::passthru::{self, Direction, Passthru};
use crate::sys::blk::{TagSet, TagSetRef};

use crate::spec::command::Command;
use crate::sys::blk::DataDir;
use crate::sys::compat::user_slice;
use crate::sys::misc::{capable_sys_admin, FileOps, MiscDevice};
use crate::sys::pci::PciDevice;
use crate::sys::sysfs::Attributes;
use crate::sys::uring::{Queued, UringCmd};
use core::fmt;
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::alloc::flags::GFP_KERNEL;
use kernel::error::{
    code::{EACCES, EBUSY, EINVAL, ENODEV, ENOTTY},
    Result,
};
use kernel::prelude::*;
use kernel::sync::{Arc, CondVar, Mutex};
use kernel::{new_condvar, new_mutex};

/// Controller numbers in use, one bit each: `rsnvme<N>` and its disks
/// `rsnvme<N>n<nsid>`. The lowest free number is taken, so a controller
/// bound again after an unbind gets its old name back.
static NUMBERS: [AtomicU64; 4] = [const { AtomicU64::new(0) }; 4];

pub(crate) use crate::admin::MAX_PASSTHRU_BYTES;

/// Longest timeout a passthrough command may ask for: an hour.
const MAX_PASSTHRU_TIMEOUT_MS: u32 = 3_600_000;

/// A controller number, free again when dropped.
pub(crate) struct ControllerNumber(u32);

impl ControllerNumber {
    /// Takes the lowest free number; `EBUSY` if all are in use.
    pub(crate) fn take() -> Result<Self> {
        for (word, bits) in NUMBERS.iter().enumerate() {
            let mut cur = bits.load(Ordering::Relaxed);
            while cur != u64::MAX {
                let bit = cur.trailing_ones();
                match bits.compare_exchange(
                    cur,
                    cur | (1 << bit),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                ) {
                    Ok(_) => return Ok(Self(word as u32 * 64 + bit)),
                    Err(now) => cur = now,
                }
            }
        }
        Err(EBUSY)
    }

    /// The number.
    pub(crate) fn get(&self) -> u32 {
        self.0
    }
}

impl Drop for ControllerNumber {
    fn drop(&mut self) {
        if let Some(bits) = NUMBERS.get((self.0 / 64) as usize) {
            bits.fetch_and(!(1u64 << (self.0 % 64)), Ordering::AcqRel);
        }
    }
}

/// What the ioctls need of a bound controller.
pub(crate) struct Live {
    pub(crate) admin: Arc<AdminQueue>,
    pub(crate) set: Arc<TagSet<Ctrl>>,
    /// The namespaces with disks, once they exist.
    pub(crate) namespaces: Option<Arc<dyn NamespaceSet>>,
}

/// Fixed facts about the controller, for sysfs and the ioctls.
pub(crate) struct Facts {
    pub(crate) id: IdentifyController,
    /// I/O queues in use.
    pub(crate) io_queues: u32,
    /// Entries per I/O queue.
    pub(crate) io_depth: u32,
    /// Most bytes one passthrough command may move.
    pub(crate) max_transfer: u32,
}

/// Registers a controller's character device named `name`, whose files
/// reach the handle given.
pub(crate) type RegisterFn =
    fn(&PciDevice, fmt::Arguments<'_>, Arc<Handle>) -> Result<MiscDevice<Handle>>;

/// The data behind a controller's character device and open files.
#[pin_data]
pub(crate) struct Handle {
    pdev: PciDevice,
    facts: Facts,
    /// `None` once the controller is being removed.
    #[pin]
    live: Mutex<Option<Live>>,
    /// Commands from user space running now. None holds a lock, and
    /// remove does not wait for them to end by themselves: it takes them
    /// back, then waits until they have let go of the controller's queues
    /// ([`Handle::wait_idle`]), before it frees them.
    #[pin]
    users: Mutex<u32>,
    #[pin]
    idle: CondVar,
}

/// A command from user space that is running: counted until dropped.
struct User<'a>(&'a Handle);

impl Drop for User<'_> {
    fn drop(&mut self) {
        let mut users = self.0.users.lock();
        *users = users.saturating_sub(1);
        if *users == 0 {
            self.0.idle.notify_all();
        }
    }
}

/// A command from user space counted as running, with the queues it may
/// use (see [`Handle::enter`]).
type Entered<'a> = (User<'a>, Arc<AdminQueue>, Option<Arc<dyn NamespaceSet>>);

/// The sysfs attributes of the character device, in the order
/// [`Handle::show`] takes their index.
pub(crate) const ATTRIBUTE_NAMES: [&core::ffi::CStr; 10] = [
    c"model",
    c"serial",
    c"firmware_rev",
    c"transport",
    c"address",
    c"state",
    c"cntlid",
    c"subsysnqn",
    c"queue_count",
    c"sqsize",
];

/// The management interface of a bound controller: the [`Handle`] its
/// character device and its disks' ioctls use, and the character device
/// once registered. On drop the device is deregistered, then the handle
/// detached.
pub(crate) struct CharDevice {
    dev: Option<MiscDevice<Handle>>,
    handle: Arc<Handle>,
}

impl CharDevice {
    /// The handle for the bound controller `live`; no device yet.
    pub(crate) fn new(pdev: &PciDevice, facts: Facts, live: Live) -> Result<Self> {
        let handle = Arc::pin_init(
            pin_init!(Handle {
                pdev: pdev.clone(),
                facts,
                live <- new_mutex!(Some(live), "rsnvme_mgmt_live"),
                users <- new_mutex!(0, "rsnvme_mgmt_users"),
                idle <- new_condvar!("rsnvme_mgmt_idle"),
            }),
            GFP_KERNEL,
        )?;
        Ok(Self { dev: None, handle })
    }

    /// Lets the ioctls reach the namespaces (I/O commands may name only
    /// those with a disk; `NVME_IOCTL_RESCAN`).
    pub(crate) fn attach(&self, namespaces: Arc<dyn NamespaceSet>) {
        // `Option::as_mut` through the guard (7.3's guard has a pinning
        // `as_mut` of its own).
        if let Some(live) = Option::as_mut(&mut self.handle.live.lock()) {
            live.namespaces = Some(namespaces);
        }
    }

    /// The handle, for the disks' ioctls.
    pub(crate) fn handle(&self) -> &Arc<Handle> {
        &self.handle
    }

    /// Registers `/dev/rsnvme<number>` with `register` (the entry points
    /// own the device's C tables).
    pub(crate) fn register(&mut self, number: u32, register: RegisterFn) -> Result {
        let pdev = &self.handle.pdev;
        let dev = register(pdev, format_args!("rsnvme{number}"), self.handle.clone())?;
        self.dev = Some(dev);
        Ok(())
    }
}

impl Drop for CharDevice {
    fn drop(&mut self) {
        // No new opens and no attributes from here on.
        drop(self.dev.take());
        // Open files (of the character device or of a disk) get ENODEV
        // from now on; a rescan or reset ioctl in progress is waited for.
        *self.handle.live.lock() = None;
    }
}

impl Handle {
    /// `NVME_IOCTL_ADMIN_CMD` (`wide` false) and `NVME_IOCTL_ADMIN64_CMD`,
    /// or for an I/O `target` `NVME_IOCTL_IO_CMD` and `NVME_IOCTL_IO64_CMD`:
    /// sends the command at user address `arg` and returns its status (0
    /// on success, the NVMe status field otherwise), with the result and
    /// read data copied back. On a namespace's block device the command
    /// must name that namespace (`EINVAL` otherwise, as in the C driver).
    pub(crate) fn passthru(&self, arg: usize, wide: bool, target: Target) -> Result<isize> {
        let size = if wide {
            passthru::PASSTHRU64_SIZE
        } else {
            passthru::PASSTHRU_SIZE
        };
        let mut raw = [0u8; passthru::PASSTHRU64_SIZE];
        let raw = raw.get_mut(..size).ok_or(EINVAL)?;
        user_slice(arg, size).reader().read_slice(raw)?;
        let cmd = passthru::parse(raw, self.facts.max_transfer).map_err(|_| EINVAL)?;
        if matches!(target, Target::Namespace(nsid) if nsid != cmd.command.nsid()) {
            return Err(EINVAL);
        }
        let cqe = self.execute(cmd, target != Target::Admin)?;
        if wide {
            let result = u64::from(cqe.result()) | (u64::from(cqe.dw1()) << 32);
            let at = arg.checked_add(passthru::RESULT64_OFFSET).ok_or(EINVAL)?;
            user_slice(at, 8)
                .writer()
                .write_slice(&result.to_le_bytes())?;
        } else {
            let at = arg.checked_add(passthru::RESULT_OFFSET).ok_or(EINVAL)?;
            user_slice(at, 4)
                .writer()
                .write_slice(&cqe.result().to_le_bytes())?;
        }
        isize::try_from(cqe.status().0).map_err(|_| EINVAL)
    }

    /// `NVME_IOCTL_SUBMIT_IO` on the block device of namespace `nsid`, of
    /// `1 << lba_shift`-byte blocks: the Read, Write or Compare that the
    /// `struct nvme_user_io` at user address `arg` describes; returns its
    /// status as [`Handle::passthru`] does.
    pub(crate) fn submit_io(&self, arg: usize, nsid: u32, lba_shift: u32) -> Result<isize> {
        let mut raw = [0u8; passthru::USER_IO_SIZE];
        user_slice(arg, raw.len()).reader().read_slice(&mut raw)?;
        let cmd = passthru::parse_user_io(&raw, nsid, lba_shift, self.facts.max_transfer)
            .map_err(|_| EINVAL)?;
        let cqe = self.execute(cmd, true)?;
        isize::try_from(cqe.status().0).map_err(|_| EINVAL)
    }

    /// Sends a checked command from user space, as a request on the
    /// queue of the namespace it names if `io` (it must have a disk), else
    /// on the admin queue, with its data mapped from user memory, and
    /// returns its completion. Many run at once, and none holds a lock
    /// while it runs: a reset takes them back (they end host-aborted).
    /// Checked by [`Handle::admit`].
    fn execute(&self, cmd: Passthru, io: bool) -> Result<Completion> {
        let (command, data, timeout_ms) = Self::admit(cmd, io)?;
        // Dropped in reverse order: the queues are let go of before the
        // count falls.
        let (_user, admin, namespaces) = self.enter()?;
        if io {
            let namespaces = namespaces.ok_or(EINVAL)?;
            namespaces.user_io(command, data, timeout_ms)
        } else {
            admin.user_command(command, data, timeout_ms)
        }
    }

    /// Checks a command from user space for [`Handle::execute`] (`io`
    /// for an I/O command) and returns it with its data and timeout.
    /// Refuses the admin commands the driver keeps to itself; needs
    /// `CAP_SYS_ADMIN` but for the identify commands anyone may send.
    fn admit(cmd: Passthru, io: bool) -> Result<(Command, Option<UserData>, u32)> {
        let Passthru {
            command,
            addr,
            data_len,
            direction,
            timeout_ms,
        } = cmd;
        if !io && passthru::admin_reserved(command.opcode()) {
            return Err(EINVAL);
        }
        let unprivileged = !io && passthru::admin_allowed_unprivileged(&command);
        if !unprivileged && !capable_sys_admin() {
            return Err(EACCES);
        }
        let timeout_ms = timeout_ms.min(MAX_PASSTHRU_TIMEOUT_MS);
        let data = match direction {
            Direction::None => None,
            dir => Some(UserData {
                addr: usize::try_from(addr).map_err(|_| EINVAL)?,
                len: data_len,
                dir: if dir == Direction::ToDevice {
                    DataDir::Out
                } else {
                    DataDir::In
                },
            }),
        };
        Ok((command, data, timeout_ms))
    }

    /// Counts a command from user space as running and takes what it
    /// needs from under the `live` lock (only that): `ENODEV` once the
    /// controller is being removed.
    fn enter(&self) -> Result<Entered<'_>> {
        let live = self.live.lock();
        let live = live.as_ref().ok_or(ENODEV)?;
        *self.users.lock() += 1;
        Ok((User(self), live.admin.clone(), live.namespaces.clone()))
    }

    /// `NVME_URING_CMD_IO` (`NVME_URING_CMD_IO_VEC` if `vectored`) on
    /// namespace `nsid`'s generic device: checks the command in `cmd`'s
    /// SQE as [`Handle::passthru`] checks an I/O command for a namespace
    /// and sends it on that namespace's queue without waiting; `cmd` is
    /// completed when the request ends (with the NVMe status, and DW0
    /// and DW1 as the extra result). The command counts as running while
    /// it is being sent; once sent, its request holds the disk's queue,
    /// so removing the disk waits for it (and a teardown takes it back)
    /// as for any request.
    pub(crate) fn uring_io(&self, cmd: UringCmd<'_>, nsid: u32, vectored: bool) -> Result<Queued> {
        let raw = cmd.payload()?;
        let parsed =
            passthru::parse_uring(&raw, self.facts.max_transfer, vectored).map_err(|_| EINVAL)?;
        if parsed.command.nsid() != nsid {
            return Err(EINVAL);
        }
        let (command, data, timeout_ms) = Self::admit(parsed, true)?;
        let (_user, _admin, namespaces) = self.enter()?;
        namespaces
            .ok_or(EINVAL)?
            .uring_io(command, data, vectored, timeout_ms, cmd)
    }

    /// Waits until no command from user space holds the controller's
    /// queues any more; for remove, once the handle is detached (no new
    /// command starts) and the outstanding ones were taken back (they end
    /// at once).
    pub(crate) fn wait_idle(&self) {
        let mut users = self.users.lock();
        while *users > 0 {
            self.idle.wait(&mut users);
        }
    }

    /// `NVME_IOCTL_RESCAN`: rescans the namespaces, returning when done.
    fn rescan(&self) -> Result<isize> {
        if !capable_sys_admin() {
            return Err(EACCES);
        }
        // Held throughout, so remove waits for the rescan, which uses the
        // controller's queues.
        let live = self.live.lock();
        let live = live.as_ref().ok_or(ENODEV)?;
        live.namespaces.as_ref().ok_or(ENODEV)?.rescan()?;
        Ok(0)
    }

    /// `NVME_IOCTL_RESET` ([`Ctrl::reset`]) and
    /// `NVME_IOCTL_SUBSYS_RESET` ([`Ctrl::subsystem_reset`]: `ENOTTY`
    /// if the controller cannot, CAP.NSSRS clear, as from the C driver):
    /// for `CAP_SYS_ADMIN` only, returning when the controller is back.
    fn reset(&self, how: fn(&Ctrl, &TagSetRef<'_, Ctrl>, &str) -> Result) -> Result<isize> {
        if !capable_sys_admin() {
            return Err(EACCES);
        }
        let live = self.live.lock();
        let live = live.as_ref().ok_or(ENODEV)?;
        how(
            live.set.data(),
            &live.set.borrowed(),
            "requested through ioctl",
        )?;
        Ok(0)
    }
}

impl UserCommands for Handle {
    fn passthru(&self, arg: usize, wide: bool, target: Target) -> Result<isize> {
        Handle::passthru(self, arg, wide, target)
    }

    fn submit_io(&self, arg: usize, nsid: u32, lba_shift: u32) -> Result<isize> {
        Handle::submit_io(self, arg, nsid, lba_shift)
    }

    fn uring_io(&self, cmd: UringCmd<'_>, nsid: u32, vectored: bool) -> Result<Queued> {
        Handle::uring_io(self, cmd, nsid, vectored)
    }
}

impl FileOps for Handle {
    fn ioctl(&self, cmd: u32, arg: usize) -> Result<isize> {
        match cmd {
            passthru::IOCTL_ADMIN_CMD => self.passthru(arg, false, Target::Admin),
            passthru::IOCTL_ADMIN64_CMD => self.passthru(arg, true, Target::Admin),
            passthru::IOCTL_IO_CMD => self.passthru(arg, false, Target::AnyNamespace),
            passthru::IOCTL_IO64_CMD => self.passthru(arg, true, Target::AnyNamespace),
            passthru::IOCTL_RESET => self.reset(Ctrl::reset),
            passthru::IOCTL_SUBSYS_RESET => self.reset(Ctrl::subsystem_reset),
            passthru::IOCTL_RESCAN => self.rescan(),
            // Not served: NVME_IOCTL_ID and NVME_IOCTL_SUBMIT_IO are for
            // namespace devices, as in the C driver.
            _ => Err(ENOTTY),
        }
    }
}

impl Attributes for Handle {
    fn show(&self, index: usize, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = &self.facts.id;
        // With their padding, as the C driver shows them.
        let (serial, model, firmware) = id.padded_strings();
        match index {
            0 => out.write_str(model),
            1 => out.write_str(serial),
            2 => out.write_str(firmware),
            3 => out.write_str("pcie"),
            4 => write!(out, "{}", self.pdev.name().to_str().unwrap_or("?")),
            5 => {
                let live = self.live.lock();
                match live.as_ref() {
                    Some(live) => out.write_str(live.set.data().state_name()),
                    None => out.write_str("deleting"),
                }
            }
            6 => write!(out, "{}", id.controller_id()),
            7 => out.write_str(id.subsystem_nqn()),
            // As the C driver counts them: the admin queue too.
            8 => write!(out, "{}", self.facts.io_queues + 1),
            // Zero-based, as the C driver shows it.
            9 => write!(out, "{}", self.facts.io_depth.saturating_sub(1)),
            _ => Ok(()),
        }
    }

    fn store(&self, _index: usize, _input: &[u8]) -> Result {
        Err(EINVAL)
    }
}
