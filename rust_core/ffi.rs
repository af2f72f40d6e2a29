// SPDX-License-Identifier: GPL-2.0

//! Entry points called by the C shim's `struct pci_driver`.
//!
//! cbindgen turns these declarations into `include/my_pci_rust_bindings.h`.
//! The raw `struct pci_dev` pointer is wrapped at once; the controller state
//! lives in a [`KBox`] whose pointer is the device's drvdata while bound.

use crate::driver::Controller;
use crate::sys::bindings::pci_dev;
use crate::sys::pci::{self, PciDevice};
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
        Ok(ctrl) => {
            dev.set_drvdata(KBox::into_raw(ctrl).cast());
            0
        }
        // `ctrl` was dropped inside `KBox::new`, shutting the device down.
        Err(e) => kernel::error::Error::from(e).to_errno(),
    }
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
    let data = unsafe { pci::drvdata(pdev) };
    if data.is_null() {
        return;
    }
    // SAFETY: A successful probe stored `KBox::into_raw` of a `Controller`
    // as drvdata, and only this function takes it back, once.
    let ctrl = unsafe { KBox::from_raw(data.cast::<Controller>()) };
    // SAFETY: `pdev` is valid by this function's safety requirements.
    if let Ok(dev) = unsafe { PciDevice::get(pdev) } {
        dev.set_drvdata(ptr::null_mut());
    }
    KBox::into_inner(ctrl).remove();
}
