// SPDX-License-Identifier: GPL-2.0

//! A character device with a dynamic minor in the `misc` class
//! (`struct miscdevice`, include/linux/miscdevice.h), with ioctls and
//! sysfs attributes served by safe Rust, and user memory access.
//!
//! An open file holds an `Arc` of the device's data, taken in `open`
//! (which `misc_open` runs under the misc lock, so it cannot race with
//! deregistration) and dropped in `release`; so the data outlives every
//! file, and a file opened before the device went away only sees data
//! that says so. The file operations name this module as their owner, so
//! the module stays loaded while a file is open. The attributes are
//! removed by `misc_deregister`, which waits for `show` calls in progress.

use super::__this_module;
use super::bindings;
use super::misc_types::NameBuf;
pub(crate) use super::misc_types::{file_operations_uring, FileOps, UringFileOps};
use super::pci::PciDevice;
use super::uring::UringCmd;
use core::ffi::CStr;
use core::fmt::{self, Write};
use core::mem::MaybeUninit;
use kernel::alloc::{flags::GFP_KERNEL, KBox};
use kernel::error::{code::EINVAL, Error, Result};
use kernel::ffi::{c_long, c_uint, c_ulong};
use kernel::sync::Arc;
use kernel::types::Opaque;

/// The registered device and its data, at a fixed address from
/// registration to deregistration.
#[repr(C)]
struct Inner<T> {
    /// First, so the `struct miscdevice *` the kernel hands out is also a
    /// pointer to the `Inner`.
    misc: Opaque<bindings::miscdevice>,
    name: [u8; 32],
    data: Arc<T>,
}

/// A registered misc device serving `T`; deregistered on drop.
///
/// # Invariants
///
/// `inner.misc` is registered with `misc_register`, with `inner.name` as
/// its name, file operations from [`file_operations::<T>`] and attribute
/// groups whose attributes come from [`attribute::<T, _>`].
pub(crate) struct MiscDevice<T: FileOps> {
    inner: KBox<Inner<T>>,
}

#[allow(unsafe_code)]
// SAFETY: The `miscdevice` is only written by the kernel, under its misc
// lock; Rust only reads the name and the data, which is `Send + Sync`.
unsafe impl<T: FileOps> Send for MiscDevice<T> {}
#[allow(unsafe_code)]
// SAFETY: As above: `&MiscDevice` gives only shared reads.
unsafe impl<T: FileOps> Sync for MiscDevice<T> {}

impl<T: FileOps> MiscDevice<T> {
    /// Registers `/dev/<name>` in the misc class with `parent` as its
    /// parent device, serving `data`.
    ///
    /// # Safety
    ///
    /// `fops` must come from [`file_operations::<T>`] and `groups` must be
    /// a NULL-terminated array of groups whose attributes come from
    /// [`attribute::<T, _>`]; both must live as long as the module.
    #[allow(unsafe_code)]
    pub(crate) unsafe fn register(
        parent: &PciDevice,
        name: fmt::Arguments<'_>,
        fops: &'static bindings::file_operations,
        groups: *const *const bindings::attribute_group,
        data: Arc<T>,
    ) -> Result<Self> {
        let mut inner = KBox::new(
            Inner {
                misc: Opaque::uninit(),
                name: [0; 32],
                data,
            },
            GFP_KERNEL,
        )?;
        NameBuf::new(&mut inner.name)
            .write_fmt(name)
            .map_err(|_| EINVAL)?;
        // SAFETY: An all-zero `miscdevice` is its unregistered state.
        let mut misc: bindings::miscdevice = unsafe { MaybeUninit::zeroed().assume_init() };
        misc.minor = bindings::MISC_DYNAMIC_MINOR as i32;
        misc.name = inner.name.as_ptr().cast();
        misc.fops = fops;
        misc.parent = parent.as_device();
        misc.groups = groups.cast_mut();
        misc.mode = 0o600;
        // SAFETY: Nothing else refers to `inner.misc` yet.
        unsafe { inner.misc.get().write(misc) };
        // SAFETY: `inner.misc` is initialised and stays at this heap
        // address until `drop` deregisters it; its name lives as long
        // (same allocation); `fops` and `groups` are `T`'s by this
        // function's safety requirements and live as long as the module.
        let ret = unsafe { bindings::misc_register(inner.misc.get()) };
        if ret != 0 {
            return Err(Error::from_errno(ret));
        }
        // INVARIANT: Registered above with the checked tables.
        Ok(Self { inner })
    }
}

impl<T: FileOps> Drop for MiscDevice<T> {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: Registered, by the type invariant; after this no `open`
        // can find it and its attributes are gone, so `inner` may be freed.
        unsafe { bindings::misc_deregister(self.inner.misc.get()) };
    }
}

/// `open`: takes a reference to the device's data for the file.
///
/// # Safety
///
/// Called by `misc_open` under the misc lock with `file->private_data`
/// pointing to the `miscdevice` of a registered [`MiscDevice<T>`].
#[allow(unsafe_code)]
unsafe extern "C" fn open<T: FileOps>(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> i32 {
    // SAFETY: `file` is valid for the call.
    let misc = unsafe { (*file).private_data }.cast::<Inner<T>>();
    // SAFETY: The `miscdevice` is the first field of a live, registered
    // `Inner<T>` (`repr(C)`) by this function's requirements; deregistration
    // waits for the misc lock the caller holds.
    let data = unsafe { &(*misc).data }.clone();
    // SAFETY: `file` is valid; `release` takes the reference back.
    unsafe { (*file).private_data = Arc::into_raw(data).cast_mut().cast() };
    0
}

/// `release`: drops the file's reference.
///
/// # Safety
///
/// Called once per file that [`open`] succeeded for.
#[allow(unsafe_code)]
unsafe extern "C" fn release<T: FileOps>(
    _inode: *mut bindings::inode,
    file: *mut bindings::file,
) -> i32 {
    // SAFETY: `private_data` holds the `Arc<T>` that `open` leaked.
    drop(unsafe { Arc::from_raw((*file).private_data.cast::<T>()) });
    0
}

/// `unlocked_ioctl`: hands the ioctl to `T`.
///
/// # Safety
///
/// Called by the VFS for a file that [`open`] succeeded for, before its
/// release.
#[allow(unsafe_code)]
unsafe extern "C" fn ioctl<T: FileOps>(
    file: *mut bindings::file,
    cmd: c_uint,
    arg: c_ulong,
) -> c_long {
    // SAFETY: `private_data` holds the `Arc<T>` that `open` leaked, live
    // until `release`, which cannot run during this call.
    let data = unsafe { &*(*file).private_data.cast_const().cast::<T>() };
    match data.ioctl(cmd, arg) {
        Ok(v) => v as c_long,
        Err(e) => e.to_errno() as c_long,
    }
}

/// The file operations of a [`MiscDevice<T>`].
#[allow(unsafe_code)]
pub(crate) const fn file_operations<T: FileOps>() -> bindings::file_operations {
    // SAFETY: All zeroes is a valid `file_operations` with no operations.
    let mut fops: bindings::file_operations = unsafe { MaybeUninit::zeroed().assume_init() };
    fops.owner = (&raw const __this_module).cast_mut();
    fops.open = Some(open::<T>);
    fops.release = Some(release::<T>);
    fops.unlocked_ioctl = Some(ioctl::<T>);
    fops
}

/// `uring_cmd`: hands an io_uring command to `T`.
///
/// # Safety
///
/// Called by io_uring with a command (issued with `issue_flags`) of a
/// file that [`open`] succeeded for.
#[allow(unsafe_code)]
pub(super) unsafe extern "C" fn uring_cmd<T: UringFileOps>(
    cmd: *mut bindings::io_uring_cmd,
    issue_flags: c_uint,
) -> i32 {
    // SAFETY: By this function's requirements.
    let Some(ucmd) = (unsafe { UringCmd::from_raw(cmd, issue_flags) }) else {
        return EINVAL.to_errno();
    };
    // SAFETY: `private_data` holds the `Arc<T>` that `open` leaked, live
    // until `release`, which cannot run while the command holds the file.
    let data = unsafe { &*(*(*cmd).file).private_data.cast_const().cast::<T>() };
    match data.uring_cmd(ucmd) {
        Ok(_queued) => -bindings::RSNVME_EIOCBQUEUED,
        Err(e) => e.to_errno(),
    }
}

/// Builds the read-only (0444) attribute `name`, number `I` of `T`'s, for
/// the groups of a [`MiscDevice<T>`].
pub(crate) const fn attribute<T: FileOps, const I: usize>(
    name: &'static CStr,
) -> bindings::device_attribute {
    super::sysfs::read_only(name, show::<T, I>)
}

/// `show` of attribute `I` of a [`MiscDevice<T>`].
///
/// # Safety
///
/// Called by sysfs for the device `misc_register` created, whose drvdata
/// is the `miscdevice` of a live [`MiscDevice<T>`], with a page buffer.
#[allow(unsafe_code)]
unsafe extern "C" fn show<T: FileOps, const I: usize>(
    dev: *mut bindings::device,
    _attr: *mut bindings::device_attribute,
    buf: *mut kernel::ffi::c_char,
) -> isize {
    // SAFETY: `dev` is valid for the call.
    let misc = unsafe { (*dev).driver_data }
        .cast_const()
        .cast::<Inner<T>>();
    // SAFETY: drvdata is the first field of a live `Inner<T>`: deregistration
    // removes the attributes, waiting for this call, before it is freed.
    let data: &T = unsafe { &(*misc).data };
    // SAFETY: `buf` is the sysfs page buffer of this `show`.
    unsafe { super::sysfs::emit::<T, I>(data, buf) }
}

/// Whether the calling task has `CAP_SYS_ADMIN`.
#[allow(unsafe_code)]
pub(crate) fn capable_sys_admin() -> bool {
    // SAFETY: `capable` only inspects the current task's credentials.
    unsafe { bindings::capable(bindings::CAP_SYS_ADMIN as i32) }
}
