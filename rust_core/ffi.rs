// SPDX-License-Identifier: GPL-2.0

//! Entry points called by the C shim's `struct pci_driver`, and the
//! attribute groups its `.dev_groups` points to.
//!
//! cbindgen turns these declarations into `include/my_pci_rust_bindings.h`.
//! The raw `struct pci_dev` pointer is wrapped at once. While a device is
//! bound, its drvdata points to its [`Controller`] in a [`KBox`].

use crate::controller::{Controller, ATTRIBUTE_NAMES};
use crate::io::IoShared;
use crate::mgmt::{self, Handle};
use crate::ns;
use crate::sys::bindings::{
    attribute, attribute_group, device, device_attribute, file_operations, pci_dev,
};
use crate::sys::blk::{self, DiskGroups};
use crate::sys::misc::{self, MiscDevice};
use crate::sys::pci::{self, PciDevice};
use crate::sys::sysfs;
use crate::sys::Static;
use core::ffi::c_int;
use core::ptr;
use kernel::alloc::{flags::GFP_KERNEL, KBox};

/// Binds the driver to an NVMe controller (`pci_driver.probe`).
///
/// Returns 0 when the controller is ready, or a negative errno after undoing
/// every step already taken.
///
/// # Safety
///
/// `pdev` must point to a valid PCI device that the PCI core is binding to
/// this driver; `my_rust_remove` is called for it before it goes away.
#[no_mangle]
pub unsafe extern "C" fn my_rust_probe(pdev: *mut pci_dev) -> c_int {
    // SAFETY: `pdev` is valid by this function's safety requirements.
    let dev = match unsafe { PciDevice::get(pdev) } {
        Ok(dev) => dev,
        Err(e) => return e.to_errno(),
    };
    let ctrl = match Controller::probe(dev.clone()) {
        Ok(ctrl) => ctrl,
        Err(e) => return e.to_errno(),
    };
    match KBox::new(ctrl, GFP_KERNEL) {
        // SAFETY: drvdata is a `KBox<Controller>` from here until remove
        // takes it back; the attributes and remove read it as such.
        Ok(ctrl) => unsafe { dev.set_drvdata(KBox::into_raw(ctrl).cast()) },
        // The controller was dropped inside `KBox::new`, shutting it down.
        Err(e) => return kernel::error::Error::from(e).to_errno(),
    }
    0
}

/// Unbinds the driver from a controller (`pci_driver.remove`).
///
/// # Safety
///
/// `pdev` must point to a valid PCI device for which `my_rust_probe`
/// returned 0 and that has not been removed since.
#[no_mangle]
pub unsafe extern "C" fn my_rust_remove(pdev: *mut pci_dev) {
    // SAFETY: `pdev` is valid by this function's safety requirements.
    let ctrl = unsafe { pci::drvdata(pdev) }.cast::<Controller>();
    if ctrl.is_null() {
        return;
    }
    // SAFETY: `pdev` is valid by this function's safety requirements.
    if let Ok(dev) = unsafe { PciDevice::get(pdev) } {
        // SAFETY: Null means "no controller" to every reader.
        unsafe { dev.set_drvdata(ptr::null_mut()) };
    }
    // SAFETY: `ctrl` came from `KBox::into_raw` in probe. The driver core
    // removed the attribute groups (the only other users) before calling
    // remove, and only this function takes it back, once.
    let ctrl = unsafe { KBox::from_raw(ctrl) };
    KBox::into_inner(ctrl).remove();
}

/// The controller bound to `pdev`, if any.
///
/// # Safety
///
/// `pdev` must point to a valid PCI device bound to this driver, whose
/// device lock the caller holds (so remove cannot run meanwhile).
unsafe fn bound<'a>(pdev: *mut pci_dev) -> Option<&'a Controller> {
    // SAFETY: `pdev` is valid by this function's safety requirements.
    let ctrl = unsafe { pci::drvdata(pdev) }.cast::<Controller>();
    // SAFETY: Non-null drvdata is the `KBox<Controller>` probe stored; only
    // remove takes it back, which the device lock keeps out until the
    // caller returns.
    unsafe { ctrl.as_ref() }
}

/// Quiets the controller before a reboot or power-off
/// (`pci_driver.shutdown`).
///
/// # Safety
///
/// `pdev` must point to a valid PCI device bound to this driver; the PCI
/// core calls this with its device lock held.
#[no_mangle]
pub unsafe extern "C" fn my_rust_shutdown(pdev: *mut pci_dev) {
    // SAFETY: By this function's safety requirements.
    if let Some(ctrl) = unsafe { bound(pdev) } {
        ctrl.shutdown();
    }
}

/// Suspends the controller for system sleep (`dev_pm_ops.suspend`, and
/// `.freeze` and `.poweroff` for hibernation).
///
/// # Safety
///
/// `dev` must point to the `struct device` of a PCI device bound to this
/// driver; the PM core calls this with its device lock held.
#[no_mangle]
pub unsafe extern "C" fn my_rust_suspend(dev: *mut device) -> c_int {
    // SAFETY: `dev` is a PCI device's by this function's requirements.
    let pdev = unsafe { pci::of_device(dev) };
    // SAFETY: By this function's safety requirements.
    if let Some(ctrl) = unsafe { bound(pdev) } {
        ctrl.suspend();
    }
    0
}

/// Brings the controller back after system sleep (`dev_pm_ops.resume`,
/// and `.thaw` and `.restore` for hibernation).
///
/// # Safety
///
/// As for [`my_rust_suspend`].
#[no_mangle]
pub unsafe extern "C" fn my_rust_resume(dev: *mut device) -> c_int {
    // SAFETY: `dev` is a PCI device's by this function's requirements.
    let pdev = unsafe { pci::of_device(dev) };
    // SAFETY: By this function's safety requirements.
    match unsafe { bound(pdev) }.map(Controller::resume) {
        Some(Err(e)) => e.to_errno(),
        _ => 0,
    }
}

/// The controller's attributes.
static ATTRIBUTES: Static<[device_attribute; 5]> = Static(
    // SAFETY: These attributes are only in `my_rust_dev_groups`, the
    // `dev_groups` of this driver, whose probe stores a `KBox<Controller>`
    // as drvdata before it succeeds and whose remove takes it back (above).
    unsafe {
        [
            sysfs::attribute::<Controller, 0>(ATTRIBUTE_NAMES[0]),
            sysfs::attribute::<Controller, 1>(ATTRIBUTE_NAMES[1]),
            sysfs::attribute::<Controller, 2>(ATTRIBUTE_NAMES[2]),
            sysfs::attribute::<Controller, 3>(ATTRIBUTE_NAMES[3]),
            sysfs::write_attribute::<Controller, 4>(ATTRIBUTE_NAMES[4]),
        ]
    },
);

/// The NULL-terminated list of [`ATTRIBUTES`] for their group.
static ATTRIBUTE_LIST: Static<[*const attribute; 6]> = Static([
    &raw const ATTRIBUTES.0[0].attr,
    &raw const ATTRIBUTES.0[1].attr,
    &raw const ATTRIBUTES.0[2].attr,
    &raw const ATTRIBUTES.0[3].attr,
    &raw const ATTRIBUTES.0[4].attr,
    ptr::null(),
]);

/// The group of the controller's attributes.
static GROUP: Static<attribute_group> = Static(sysfs::group(&raw const ATTRIBUTE_LIST.0[0]));

/// The attribute groups of a bound controller, NULL-terminated: the
/// shim's `pci_driver.dev_groups`. The driver core adds them after a
/// successful probe and removes them before remove.
#[no_mangle]
pub static mut my_rust_dev_groups: [*const attribute_group; 2] = [&raw const GROUP.0, ptr::null()];

/// The file operations of a controller's character device.
static CHAR_FOPS: Static<file_operations> = Static(misc::file_operations::<Handle>());

/// The character device's attributes.
static CHAR_ATTRIBUTES: Static<[device_attribute; 10]> = Static([
    misc::attribute::<Handle, 0>(mgmt::ATTRIBUTE_NAMES[0]),
    misc::attribute::<Handle, 1>(mgmt::ATTRIBUTE_NAMES[1]),
    misc::attribute::<Handle, 2>(mgmt::ATTRIBUTE_NAMES[2]),
    misc::attribute::<Handle, 3>(mgmt::ATTRIBUTE_NAMES[3]),
    misc::attribute::<Handle, 4>(mgmt::ATTRIBUTE_NAMES[4]),
    misc::attribute::<Handle, 5>(mgmt::ATTRIBUTE_NAMES[5]),
    misc::attribute::<Handle, 6>(mgmt::ATTRIBUTE_NAMES[6]),
    misc::attribute::<Handle, 7>(mgmt::ATTRIBUTE_NAMES[7]),
    misc::attribute::<Handle, 8>(mgmt::ATTRIBUTE_NAMES[8]),
    misc::attribute::<Handle, 9>(mgmt::ATTRIBUTE_NAMES[9]),
]);

/// The NULL-terminated list of [`CHAR_ATTRIBUTES`].
static CHAR_ATTRIBUTE_LIST: Static<[*const attribute; 11]> = Static([
    &raw const CHAR_ATTRIBUTES.0[0].attr,
    &raw const CHAR_ATTRIBUTES.0[1].attr,
    &raw const CHAR_ATTRIBUTES.0[2].attr,
    &raw const CHAR_ATTRIBUTES.0[3].attr,
    &raw const CHAR_ATTRIBUTES.0[4].attr,
    &raw const CHAR_ATTRIBUTES.0[5].attr,
    &raw const CHAR_ATTRIBUTES.0[6].attr,
    &raw const CHAR_ATTRIBUTES.0[7].attr,
    &raw const CHAR_ATTRIBUTES.0[8].attr,
    &raw const CHAR_ATTRIBUTES.0[9].attr,
    ptr::null(),
]);

/// The group of the character device's attributes.
static CHAR_GROUP: Static<attribute_group> =
    Static(sysfs::group(&raw const CHAR_ATTRIBUTE_LIST.0[0]));

/// The NULL-terminated groups of the character device.
static CHAR_GROUPS: Static<[*const attribute_group; 2]> =
    Static([&raw const CHAR_GROUP.0, ptr::null()]);

/// Registers the character device `name` of a controller, serving
/// `handle`.
pub(crate) fn register_char_device(
    pdev: &PciDevice,
    name: core::fmt::Arguments<'_>,
    handle: kernel::sync::Arc<Handle>,
) -> kernel::error::Result<MiscDevice<Handle>> {
    // SAFETY: The file operations and groups above are `Handle`'s, built
    // by `sys::misc`, in statics.
    unsafe {
        MiscDevice::register(
            pdev,
            name,
            &CHAR_FOPS.0,
            &raw const CHAR_GROUPS.0[0],
            handle,
        )
    }
}

/// The attributes of a namespace's disk.
static DISK_ATTRIBUTES: Static<[device_attribute; 5]> = Static([
    blk::disk_attribute::<IoShared, 0>(ns::ATTRIBUTE_NAMES[0]),
    blk::disk_attribute::<IoShared, 1>(ns::ATTRIBUTE_NAMES[1]),
    blk::disk_attribute::<IoShared, 2>(ns::ATTRIBUTE_NAMES[2]),
    blk::disk_attribute::<IoShared, 3>(ns::ATTRIBUTE_NAMES[3]),
    blk::disk_attribute::<IoShared, 4>(ns::ATTRIBUTE_NAMES[4]),
]);

/// The NULL-terminated list of [`DISK_ATTRIBUTES`].
static DISK_ATTRIBUTE_LIST: Static<[*const attribute; 6]> = Static([
    &raw const DISK_ATTRIBUTES.0[0].attr,
    &raw const DISK_ATTRIBUTES.0[1].attr,
    &raw const DISK_ATTRIBUTES.0[2].attr,
    &raw const DISK_ATTRIBUTES.0[3].attr,
    &raw const DISK_ATTRIBUTES.0[4].attr,
    ptr::null(),
]);

/// The group of a namespace disk's attributes.
static DISK_GROUP: Static<attribute_group> = Static(blk::disk_group::<IoShared>(
    &raw const DISK_ATTRIBUTE_LIST.0[0],
));

/// The NULL-terminated groups of a namespace's disk.
static DISK_GROUP_LIST: Static<[*const attribute_group; 2]> =
    Static([&raw const DISK_GROUP.0, ptr::null()]);

/// The groups every namespace's disk gets.
pub(crate) static DISK_GROUPS: DiskGroups<IoShared> =
    // SAFETY: One group from `disk_group::<IoShared>`, whose attribute
    // number `I` is `disk_attribute::<IoShared, I>`, all in statics.
    unsafe { DiskGroups::new(&raw const DISK_GROUP_LIST.0[0]) };
