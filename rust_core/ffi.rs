// SPDX-License-Identifier: GPL-2.0

//! Entry points called by the C shim's `struct pci_driver`, and the
//! attribute groups its `.dev_groups` points to.
//!
//! cbindgen turns these declarations into `include/my_pci_rust_bindings.h`.
//! The raw `struct pci_dev` pointer is wrapped at once. While a device is
//! bound, its drvdata points to its [`Controller`] in a [`KBox`].

use crate::controller::{Controller, Tables, ATTRIBUTE_NAMES};
use crate::ctrl::Ctrl;
use crate::generic::Generic;
use crate::mgmt::Handle;
use crate::sys::bindings::{attribute, attribute_group, device, device_attribute, pci_dev};
use crate::sys::blk::DiskGroups;
use crate::sys::misc::MiscDevice;
use crate::sys::pci::{self, PciDevice};
use crate::sys::sysfs;
use crate::sys::Static;
use crate::tables::{CHAR_FOPS, CHAR_GROUPS, DISK_GROUP_LIST, GENERIC_FOPS, GENERIC_GROUPS};
use core::ffi::c_int;
use core::fmt::Arguments as Args;
use core::ptr;
use kernel::alloc::{flags::GFP_KERNEL, KBox};
use kernel::{error::Result, sync::Arc};
use MiscDevice as Misc;

/// Binds the driver to an NVMe controller (`pci_driver.probe`).
///
/// Returns 0 when the controller is ready, or a negative errno after undoing
/// every step already taken.
///
/// # Safety
///
/// `pdev` must point to a valid PCI device that the PCI core is binding to
/// this driver; `my_rust_remove` is called for it before it goes away.
#[allow(unsafe_code)]
#[no_mangle]
pub unsafe extern "C" fn my_rust_probe(pdev: *mut pci_dev) -> c_int {
    // SAFETY: `pdev` is valid and being bound. This is the binding's one
    // `get` (remove makes none); an earlier binding's remove dropped every
    // handle that takes the control lock (open files keep only logging).
    let dev = match unsafe { PciDevice::get(pdev) } {
        Ok(dev) => dev,
        Err(e) => return e.to_errno(),
    };
    let tables = Tables {
        register_char_device,
        register_generic,
        disk_groups: &DISK_GROUPS,
    };
    let ctrl = match Controller::probe(dev.clone(), &tables) {
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
#[allow(unsafe_code)]
#[no_mangle]
pub unsafe extern "C" fn my_rust_remove(pdev: *mut pci_dev) {
    // SAFETY: `pdev` is valid by this function's safety requirements.
    let ctrl = unsafe { pci::drvdata(pdev) }.cast::<Controller>();
    if ctrl.is_null() {
        return;
    }
    // SAFETY: `pdev` is valid by this function's safety requirements; null
    // means "no controller" to every reader.
    unsafe { pci::clear_drvdata(pdev) };
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
#[allow(unsafe_code)]
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
#[allow(unsafe_code)]
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
#[allow(unsafe_code)]
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
#[allow(unsafe_code)]
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
#[allow(unsafe_code)]
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
#[allow(unsafe_code)]
#[no_mangle]
pub static mut my_rust_dev_groups: [*const attribute_group; 2] = [&raw const GROUP.0, ptr::null()];

/// Registers the character device `name` of a controller, serving
/// `handle`.
#[allow(unsafe_code)]
fn register_char_device(
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

/// Registers a namespace's generic character device `name`.
#[allow(unsafe_code)]
fn register_generic(pdev: &PciDevice, name: Args<'_>, data: Arc<Generic>) -> Result<Misc<Generic>> {
    let (fops, groups) = (&GENERIC_FOPS.0, &raw const GENERIC_GROUPS.0[0]);
    // SAFETY: `Generic`'s file operations and (empty) groups, in statics.
    unsafe { MiscDevice::register(pdev, name, fops, groups, data) }
}

/// The groups every namespace's disk gets.
#[allow(unsafe_code)]
static DISK_GROUPS: DiskGroups<Ctrl> =
    // SAFETY: One group from `disk_group::<Ctrl>`, whose attribute
    // number `I` is `disk_attribute::<Ctrl, I>`, all in statics.
    unsafe { DiskGroups::new(&raw const DISK_GROUP_LIST.0[0]) };
