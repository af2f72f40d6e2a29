// SPDX-License-Identifier: GPL-2.0

//! Read-only sysfs attributes of a bound controller, in the PCI device's
//! directory (`sysfs_create_group`, include/linux/sysfs.h).
//!
//! The attribute table is static. Each `show` finds the controller through
//! the device's drvdata (a [`Bound`]), so the group is created only once
//! drvdata is set and removed before the controller is freed (see
//! `ffi.rs`); `sysfs_remove_group` waits for `show` calls in progress.

use super::bindings;
use super::pci::PciDevice;
use super::Static;
use crate::ffi::Bound;
use core::ffi::c_void;
use core::fmt;
use core::mem::MaybeUninit;
use core::ptr::addr_of_mut;
use kernel::error::{code::ENODEV, to_result, Result};

/// Attribute names, in the order `Controller::attribute` takes them.
pub(crate) const ATTRIBUTE_NAMES: [&core::ffi::CStr; 4] =
    [c"model", c"serial", c"firmware_rev", c"queue_count"];

/// Builds a read-only (0444) device attribute called `name`.
const fn attribute(name: &'static core::ffi::CStr) -> bindings::device_attribute {
    // SAFETY: `device_attribute` is plain C data for which all zeroes is
    // the valid "unset" value of every field.
    let mut attr: bindings::device_attribute = unsafe { MaybeUninit::zeroed().assume_init() };
    attr.attr.name = name.as_ptr().cast();
    attr.attr.mode = 0o444;
    attr.show = Some(show);
    attr
}

static ATTRIBUTES: Static<[bindings::device_attribute; 4]> = Static([
    attribute(ATTRIBUTE_NAMES[0]),
    attribute(ATTRIBUTE_NAMES[1]),
    attribute(ATTRIBUTE_NAMES[2]),
    attribute(ATTRIBUTE_NAMES[3]),
]);

/// `struct attribute *` for each entry of [`ATTRIBUTES`], NULL-terminated.
static ATTRIBUTE_PTRS: Static<[*const bindings::attribute; 5]> = Static([
    &raw const ATTRIBUTES.0[0].attr,
    &raw const ATTRIBUTES.0[1].attr,
    &raw const ATTRIBUTES.0[2].attr,
    &raw const ATTRIBUTES.0[3].attr,
    core::ptr::null(),
]);

static GROUP: Static<bindings::attribute_group> = Static({
    // SAFETY: As in `attribute`: all zeroes is a valid, empty group.
    let mut group: bindings::attribute_group = unsafe { MaybeUninit::zeroed().assume_init() };
    group.attrs = (&raw const ATTRIBUTE_PTRS.0).cast_mut().cast();
    group
});

/// The attribute group while it is registered; removed on drop.
pub(crate) struct AttributeGroup {
    pdev: PciDevice,
}

impl AttributeGroup {
    /// Adds the attributes to `pdev`'s sysfs directory. The device's
    /// drvdata must already point to its [`Bound`].
    pub(crate) fn create(pdev: &PciDevice) -> Result<Self> {
        // SAFETY: The device is valid by `PciDevice`'s invariant; `GROUP`
        // and everything it points to are static.
        to_result(unsafe {
            bindings::sysfs_create_group(addr_of_mut!((*pdev.as_device()).kobj), &GROUP.0)
        })?;
        Ok(Self { pdev: pdev.clone() })
    }
}

impl Drop for AttributeGroup {
    fn drop(&mut self) {
        // SAFETY: The group was added to this device's kobject in `create`.
        // Removal waits for running `show` calls to finish.
        unsafe {
            bindings::sysfs_remove_group(addr_of_mut!((*self.pdev.as_device()).kobj), &GROUP.0)
        };
    }
}

/// `show` of every attribute: prints the controller's value.
///
/// # Safety
///
/// Called by sysfs with a device that has this group, one of
/// [`ATTRIBUTES`] and a `PAGE_SIZE` buffer.
unsafe extern "C" fn show(
    dev: *mut bindings::device,
    attr: *mut bindings::device_attribute,
    buf: *mut kernel::ffi::c_char,
) -> isize {
    let Some(index) = ATTRIBUTES
        .0
        .iter()
        .position(|a| core::ptr::eq(a, attr.cast_const()))
    else {
        return ENODEV.to_errno() as isize;
    };
    // SAFETY: `dev` is valid for the call, by the function's requirements.
    let data = unsafe { (*dev).driver_data }.cast_const();
    if data.is_null() {
        return ENODEV.to_errno() as isize;
    }
    // SAFETY: The group exists only while drvdata points to a live
    // `Bound` (see the module documentation). Only its `ctrl` field is
    // borrowed, shared; `ffi.rs` never mutates that field while bound.
    let ctrl = unsafe { &(*data.cast::<Bound>()).ctrl };
    let args: fmt::Arguments<'_> = format_args!("{}\n", ctrl.attribute(index));
    // SAFETY: `buf` is a sysfs page buffer; `%pA` consumes the pointer to
    // `args`, which outlives the call.
    let n = unsafe {
        bindings::sysfs_emit(
            buf,
            c"%pA".as_ptr().cast(),
            core::ptr::from_ref(&args).cast::<c_void>(),
        )
    };
    n as isize
}
