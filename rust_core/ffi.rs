// SPDX-License-Identifier: GPL-2.0

//! Entry points called by the C shim's `struct pci_driver`.
//!
//! cbindgen turns these declarations into `include/my_pci_rust_bindings.h`.
//! The raw `struct pci_dev` pointer is wrapped at once. While a device is
//! bound, its drvdata points to a [`Bound`] in a [`KBox`].

use crate::driver::Controller;
use crate::sys::bindings::pci_dev;
use crate::sys::pci::{self, PciDevice};
use crate::sys::print::dev_warn;
use crate::sys::sysfs::AttributeGroup;
use core::ffi::c_int;
use core::ptr::{self, addr_of_mut};
use kernel::alloc::{flags::GFP_KERNEL, KBox};

/// What a bound device's drvdata points to.
///
/// `ctrl` is only ever borrowed shared (sysfs `show` reads it concurrently),
/// and `sysfs` is only written and taken through its own field, so no
/// `&mut Bound` is ever made while the device is bound.
pub(crate) struct Bound {
    /// The controller.
    pub(crate) ctrl: Controller,
    /// The sysfs attributes, removed before `ctrl` is dropped.
    sysfs: Option<AttributeGroup>,
}

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
    let bound = match KBox::new(Bound { ctrl, sysfs: None }, GFP_KERNEL) {
        Ok(bound) => KBox::into_raw(bound),
        // The controller was dropped inside `KBox::new`, shutting it down.
        Err(e) => return kernel::error::Error::from(e).to_errno(),
    };
    dev.set_drvdata(bound.cast());
    match AttributeGroup::create(&dev) {
        // SAFETY: `bound` is live and owned by drvdata; writing the field
        // (which holds `None`, so nothing needs dropping) does not touch
        // `ctrl`, which sysfs may already be reading.
        Ok(group) => unsafe { addr_of_mut!((*bound).sysfs).write(Some(group)) },
        Err(e) => dev_warn!(&dev, "no sysfs attributes: {e:?}\n"),
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
    let bound = unsafe { pci::drvdata(pdev) }.cast::<Bound>();
    if bound.is_null() {
        return;
    }
    // SAFETY: A successful probe stored a live `Bound` as drvdata. Taking
    // the field removes the sysfs group, which waits for `show` calls that
    // still borrow `ctrl`.
    drop(unsafe { addr_of_mut!((*bound).sysfs).replace(None) });
    // SAFETY: `pdev` is valid by this function's safety requirements.
    if let Ok(dev) = unsafe { PciDevice::get(pdev) } {
        dev.set_drvdata(ptr::null_mut());
    }
    // SAFETY: `bound` came from `KBox::into_raw` in probe and nothing
    // borrows it any more; only this function takes it back, once.
    let bound = unsafe { KBox::from_raw(bound) };
    KBox::into_inner(bound).ctrl.remove();
}
