// SPDX-License-Identifier: GPL-2.0

//! Device-prefixed kernel log messages (`dev_err` and friends from
//! include/linux/dev_printk.h), taking Rust format arguments.

use super::bindings;
use super::compat;
use super::pci::PciDevice;
use core::ffi::c_void;
use core::fmt;

/// Severity of a device log message.
#[derive(Clone, Copy)]
pub(crate) enum Level {
    /// `KERN_ERR`.
    Err,
    /// `KERN_WARNING`.
    Warn,
    /// `KERN_INFO`.
    Info,
}

/// Prints `args` to the kernel log, prefixed with the driver and device name.
#[allow(unsafe_code)]
pub(crate) fn dev_print(dev: &PciDevice, level: Level, args: fmt::Arguments<'_>) {
    let print = match level {
        Level::Err => bindings::_dev_err,
        Level::Warn => bindings::_dev_warn,
        Level::Info => bindings::_dev_info,
    };
    // SAFETY: `dev.as_device()` is a valid `struct device` by the type
    // invariant of `PciDevice`. The format string is NUL-terminated and its
    // single `%pA` consumes a pointer to `fmt::Arguments`, which is what is
    // passed; `args` outlives the call.
    unsafe {
        print(
            dev.as_device(),
            compat::char_ptr(c"%pA"),
            core::ptr::from_ref(&args).cast::<c_void>(),
        )
    };
}

/// Logs an error for a PCI device: `dev_err!(dev, "fmt\n", args...)`.
macro_rules! dev_err {
    ($dev:expr, $($arg:tt)*) => {
        $crate::sys::print::dev_print($dev, $crate::sys::print::Level::Err, format_args!($($arg)*))
    };
}

/// Logs a warning for a PCI device: `dev_warn!(dev, "fmt\n", args...)`.
macro_rules! dev_warn {
    ($dev:expr, $($arg:tt)*) => {
        $crate::sys::print::dev_print($dev, $crate::sys::print::Level::Warn, format_args!($($arg)*))
    };
}

/// Logs information for a PCI device: `dev_info!(dev, "fmt\n", args...)`.
macro_rules! dev_info {
    ($dev:expr, $($arg:tt)*) => {
        $crate::sys::print::dev_print($dev, $crate::sys::print::Level::Info, format_args!($($arg)*))
    };
}

pub(crate) use {dev_err, dev_info, dev_warn};
