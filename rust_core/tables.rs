// SPDX-License-Identifier: GPL-2.0

//! The C tables the kernel reads for the controller's character device,
//! the namespaces' generic character devices and their disks: file operations and sysfs attribute groups.
//! They are built by `sys::misc` and `sys::blk` from the attribute names
//! of `mgmt` and `ns`; `ffi` hands them to the kernel.

#![deny(unsafe_code)]

use crate::ctrl::Ctrl;
use crate::generic::Generic;
use crate::mgmt::{self, Handle};
use crate::ns;
use crate::sys::bindings::{attribute, attribute_group, device_attribute, file_operations};
use crate::sys::blk;
use crate::sys::misc;
use crate::sys::sysfs;
use crate::sys::Static;
use core::ptr;

/// The file operations of a controller's character device.
pub(crate) static CHAR_FOPS: Static<file_operations> = Static(misc::file_operations::<Handle>());

/// The file operations of a namespace's generic character device, with
/// io_uring commands.
pub(crate) static GENERIC_FOPS: Static<file_operations> =
    Static(misc::file_operations_uring::<Generic>());

/// The generic character device has no attribute groups.
pub(crate) static GENERIC_GROUPS: Static<[*const attribute_group; 1]> = Static([ptr::null()]);

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
pub(crate) static CHAR_GROUPS: Static<[*const attribute_group; 2]> =
    Static([&raw const CHAR_GROUP.0, ptr::null()]);

/// The attributes of a namespace's disk.
static DISK_ATTRIBUTES: Static<[device_attribute; 5]> = Static([
    blk::disk_attribute::<Ctrl, 0>(ns::ATTRIBUTE_NAMES[0]),
    blk::disk_attribute::<Ctrl, 1>(ns::ATTRIBUTE_NAMES[1]),
    blk::disk_attribute::<Ctrl, 2>(ns::ATTRIBUTE_NAMES[2]),
    blk::disk_attribute::<Ctrl, 3>(ns::ATTRIBUTE_NAMES[3]),
    blk::disk_attribute::<Ctrl, 4>(ns::ATTRIBUTE_NAMES[4]),
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
static DISK_GROUP: Static<attribute_group> =
    Static(blk::disk_group::<Ctrl>(&raw const DISK_ATTRIBUTE_LIST.0[0]));

/// The NULL-terminated groups of a namespace's disk.
pub(crate) static DISK_GROUP_LIST: Static<[*const attribute_group; 2]> =
    Static([&raw const DISK_GROUP.0, ptr::null()]);
