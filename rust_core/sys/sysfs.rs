// SPDX-License-Identifier: GPL-2.0

//! sysfs attributes of a bound device, read-only or write-only, for a
//! driver's `dev_groups` (`struct device_attribute`,
//! include/linux/device.h).
//!
//! The driver core adds a driver's `dev_groups` to a device after its
//! probe succeeded and removes them before calling its remove, waiting for
//! `show` calls in progress. So while an attribute can be read, the
//! device's drvdata is what the successful probe stored there.

use super::bindings;
use super::compat;
#[cfg(not(rsnvme_no_pa))]
use core::ffi::c_void;
use core::ffi::CStr;
use core::fmt;
use core::mem::MaybeUninit;
use kernel::error::code::ENODEV;

pub(crate) use super::sysfs_types::Attributes;
use super::sysfs_types::Value;
pub(super) use super::sysfs_types::{ShowFn, StoreFn};

/// Builds the read-only (0444) device attribute `name`, number `I` of
/// `T`'s attributes.
///
/// # Safety
///
/// The attribute may only be shown for devices whose drvdata points to a
/// live `T`: it must only be part of the `dev_groups` of a driver whose
/// probe stores a `T` as drvdata before it succeeds and whose remove
/// takes it back (see the module documentation).
#[allow(unsafe_code)]
pub(crate) const unsafe fn attribute<T: Attributes, const I: usize>(
    name: &'static CStr,
) -> bindings::device_attribute {
    read_only(name, show::<T, I>)
}

/// The read-only (0444) device attribute `name`, shown by `show`; what
/// `show` requires of the device is for the caller to uphold where the
/// attribute is registered.
#[allow(unsafe_code)]
pub(super) const fn read_only(name: &'static CStr, show: ShowFn) -> bindings::device_attribute {
    // SAFETY: `device_attribute` is plain C data for which all zeroes is
    // the valid "unset" value of every field.
    let mut attr: bindings::device_attribute = unsafe { MaybeUninit::zeroed().assume_init() };
    attr.attr.name = compat::char_ptr(name);
    attr.attr.mode = 0o444;
    compat::set_show(&mut attr, show);
    attr
}

/// Builds the write-only (0200) device attribute `name`, number `I` of
/// `T`'s attributes.
///
/// # Safety
///
/// As for [`attribute`].
#[allow(unsafe_code)]
pub(crate) const unsafe fn write_attribute<T: Attributes, const I: usize>(
    name: &'static CStr,
) -> bindings::device_attribute {
    // SAFETY: As in `attribute`.
    let mut attr: bindings::device_attribute = unsafe { MaybeUninit::zeroed().assume_init() };
    attr.attr.name = compat::char_ptr(name);
    attr.attr.mode = 0o200;
    compat::set_store(&mut attr, store::<T, I>);
    attr
}

/// An attribute group of `attrs`, a NULL-terminated array of attributes.
#[allow(unsafe_code)]
pub(crate) const fn group(attrs: *const *const bindings::attribute) -> bindings::attribute_group {
    // SAFETY: As in `attribute`: all zeroes is a valid, empty group.
    let mut group: bindings::attribute_group = unsafe { MaybeUninit::zeroed().assume_init() };
    compat::set_attrs(&mut group, attrs.cast_mut().cast());
    group
}

/// `show` of attribute `I` of `T`: prints it into the sysfs buffer.
///
/// # Safety
///
/// Called by sysfs with a device whose drvdata points to a live `T` (the
/// requirement of [`attribute`]) and a `PAGE_SIZE` buffer.
#[allow(unsafe_code)]
unsafe extern "C" fn show<T: Attributes, const I: usize>(
    dev: *mut bindings::device,
    _attr: *mut bindings::device_attribute,
    buf: *mut kernel::ffi::c_char,
) -> isize {
    // SAFETY: `dev` is valid for the call, by the function's requirements.
    let data = unsafe { (*dev).driver_data }.cast_const().cast::<T>();
    // SAFETY: drvdata points to a live `T` while the attribute exists, by
    // the requirements of `attribute`; only shared access is made.
    let Some(data) = (unsafe { data.as_ref() }) else {
        return ENODEV.to_errno() as isize;
    };
    // SAFETY: By the function's requirements.
    unsafe { emit::<T, I>(data, buf) }
}

/// Prints attribute `I` of `data` into the sysfs buffer `buf`.
///
/// # Safety
///
/// `buf` must be the `PAGE_SIZE` buffer sysfs passed to a `show`.
#[allow(unsafe_code)]
pub(super) unsafe fn emit<T: Attributes, const I: usize>(
    data: &T,
    buf: *mut kernel::ffi::c_char,
) -> isize {
    let value = Value::<T, I>(data);
    let args: fmt::Arguments<'_> = format_args!("{value}");
    #[cfg(not(rsnvme_no_pa))]
    // SAFETY: `buf` is a sysfs page buffer by the requirements; `%pA`
    // consumes the pointer to `args`, which outlives the call.
    let n = unsafe {
        bindings::sysfs_emit(
            buf,
            compat::char_ptr(c"%pA"),
            core::ptr::from_ref(&args).cast::<c_void>(),
        )
    };
    // Without `%pA` (a kernel without CONFIG_RUST, see `print::dev_print`)
    // the value is formatted straight into the page.
    #[cfg(rsnvme_no_pa)]
    // SAFETY: `buf` is a sysfs page buffer by the requirements: `PAGE_SIZE`
    // writable bytes that nothing else uses during the `show`.
    let n = super::print::format_into(
        unsafe { core::slice::from_raw_parts_mut(buf.cast::<u8>(), kernel::page::PAGE_SIZE) },
        args,
    );
    n as isize
}

/// `store` of attribute `I` of `T`: hands the written bytes over.
///
/// # Safety
///
/// Called by sysfs with a device whose drvdata points to a live `T` (the
/// requirement of [`write_attribute`]) and `count` bytes at `buf`.
#[allow(unsafe_code)]
unsafe extern "C" fn store<T: Attributes, const I: usize>(
    dev: *mut bindings::device,
    _attr: *mut bindings::device_attribute,
    buf: *const kernel::ffi::c_char,
    count: usize,
) -> isize {
    // SAFETY: As in `show`.
    let data = unsafe { (*dev).driver_data }.cast_const().cast::<T>();
    // SAFETY: As in `show`.
    let Some(data) = (unsafe { data.as_ref() }) else {
        return ENODEV.to_errno() as isize;
    };
    let input = if buf.is_null() {
        &[][..]
    } else {
        // SAFETY: sysfs passes `count` readable bytes at `buf`.
        unsafe { core::slice::from_raw_parts(buf.cast::<u8>(), count) }
    };
    match data.store(I, input) {
        Ok(()) => isize::try_from(count).unwrap_or(isize::MAX),
        Err(e) => e.to_errno() as isize,
    }
}
