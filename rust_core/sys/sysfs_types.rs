// SPDX-License-Identifier: GPL-2.0

//! The safe half of the sysfs attributes (see `sysfs.rs`): the trait whose
//! values a driver's attributes show, and their formatting.

#![deny(unsafe_code)]

use core::fmt;
use kernel::error::Result;

/// The values behind a driver's attributes, shown from its drvdata.
pub(crate) trait Attributes: Sync + 'static {
    /// Writes the value of attribute number `index` (without a newline).
    fn show(&self, index: usize, out: &mut fmt::Formatter<'_>) -> fmt::Result;
    /// Takes `input`, written to attribute number `index`.
    fn store(&self, index: usize, input: &[u8]) -> Result;
    /// Whether attribute number `index` exists for this value (asked
    /// once, when the attributes are created); all do by default.
    fn visible(&self, _index: usize) -> bool {
        true
    }
}

/// Formats attribute `I` of a `T`.
pub(super) struct Value<'a, T, const I: usize>(pub(super) &'a T);

impl<T: Attributes, const I: usize> fmt::Display for Value<'_, T, I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.show(I, f)?;
        f.write_str("\n")
    }
}

/// A `show` callback of a device attribute.
pub(super) type ShowFn = unsafe extern "C" fn(
    *mut super::bindings::device,
    *mut super::bindings::device_attribute,
    *mut kernel::ffi::c_char,
) -> isize;

/// A `store` callback of a device attribute.
pub(super) type StoreFn = unsafe extern "C" fn(
    *mut super::bindings::device,
    *mut super::bindings::device_attribute,
    *const kernel::ffi::c_char,
    usize,
) -> isize;
