// SPDX-License-Identifier: GPL-2.0

//! Device-prefixed kernel log messages (`dev_err` and friends from
//! include/linux/dev_printk.h), taking Rust format arguments.

use super::bindings;
use super::compat;
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

/// A device the log can name: a wrapper of a `struct device`.
///
/// # Safety
///
/// [`Device::as_device`] returns a pointer to a valid `struct device` for
/// as long as the value lives.
#[allow(unsafe_code)]
pub(crate) unsafe trait Device {
    /// The `struct device`.
    fn as_device(&self) -> *mut bindings::device;
}

/// Prints `args` to the kernel log, prefixed with the driver and device name.
#[allow(unsafe_code)]
pub(crate) fn dev_print(dev: &impl Device, level: Level, args: fmt::Arguments<'_>) {
    // SAFETY: `dev.as_device()` is a valid `struct device` by the safety
    // requirements of `Device`.
    unsafe { device_print(dev.as_device(), level, args) };
}

/// Prints `args` to the kernel log, prefixed with the driver and device name.
///
/// # Safety
///
/// `dev` must point to a valid `struct device`.
#[cfg(not(rsnvme_no_pa))]
#[allow(unsafe_code)]
pub(super) unsafe fn device_print(
    dev: *mut bindings::device,
    level: Level,
    args: fmt::Arguments<'_>,
) {
    let print = match level {
        Level::Err => bindings::_dev_err,
        Level::Warn => bindings::_dev_warn,
        Level::Info => bindings::_dev_info,
    };
    // SAFETY: `dev` is valid by the requirements. The format string is
    // NUL-terminated and its single `%pA` consumes a pointer to `fmt::Arguments`, which is what is
    // passed; `args` outlives the call.
    unsafe {
        print(
            dev,
            compat::char_ptr(c"%pA"),
            core::ptr::from_ref(&args).cast::<c_void>(),
        )
    };
}

/// Prints `args` to the kernel log, prefixed with the driver and device name.
///
/// # Safety
///
/// `dev` must point to a valid `struct device`.
///
/// A kernel without `CONFIG_RUST` has no `%pA` in vsprintf (it warns and
/// prints an error string instead), so builds for such kernels (`--cfg
/// rsnvme_no_pa`) format the message here and hand it over as `%s`.
#[cfg(rsnvme_no_pa)]
#[allow(unsafe_code)]
pub(super) unsafe fn device_print(
    dev: *mut bindings::device,
    level: Level,
    args: fmt::Arguments<'_>,
) {
    let print = match level {
        Level::Err => bindings::_dev_err,
        Level::Warn => bindings::_dev_warn,
        Level::Info => bindings::_dev_info,
    };
    let mut line = [0u8; LINE_MAX];
    let len = format_into(&mut line, args);
    if len == 0 {
        return;
    }
    // SAFETY: `dev` is a valid `struct device` by this function's safety
    // requirements. The format string is NUL-terminated and its
    // single `%s` consumes `line`, which `format_into` left NUL-terminated.
    unsafe { print(dev, compat::char_ptr(c"%s"), line.as_ptr().cast::<c_void>()) };
}

/// The longest log line [`dev_print`] forms without `%pA`, with its NUL
/// (printk's own record limit is 1024 bytes).
#[cfg(rsnvme_no_pa)]
const LINE_MAX: usize = 512;

/// Formats `args` into `buf`, cut to fit, always NUL-terminated; returns the
/// number of bytes before the NUL (0 for an empty `buf`). A message that
/// did not fit ends in "...\n" (log messages end in a newline).
#[cfg(rsnvme_no_pa)]
pub(crate) fn format_into(buf: &mut [u8], args: fmt::Arguments<'_>) -> usize {
    /// A `fmt::Write` into a byte slice that keeps room for the NUL.
    struct Cursor<'a> {
        buf: &'a mut [u8],
        len: usize,
        cut: bool,
    }
    impl fmt::Write for Cursor<'_> {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            let room = self.buf.len().saturating_sub(self.len + 1);
            let n = s.len().min(room);
            self.buf[self.len..self.len + n].copy_from_slice(&s.as_bytes()[..n]);
            self.len += n;
            if n < s.len() {
                self.cut = true;
            }
            Ok(())
        }
    }
    if buf.is_empty() {
        return 0;
    }
    let mut cursor = Cursor {
        buf,
        len: 0,
        cut: false,
    };
    let _ = fmt::write(&mut cursor, args);
    let (buf, len) = (cursor.buf, cursor.len);
    if cursor.cut && len >= 4 {
        buf[len - 4..len].copy_from_slice(b"...\n");
    }
    // `write_str` left room for it.
    buf[len] = 0;
    len
}

/// `_printk` for the `kernel` crate's own messages (`pr_*!`, its panic
/// handler) in builds without `%pA`: `tools/stock/build.sh` points the
/// crate's calls of `_printk` here. They pass one of the crate's format
/// strings (`kernel::print::format_strings`): a level and `"%s: %pA"`
/// with the module name and a `fmt::Arguments`, or `KERN_CONT` and
/// `"%pA"` with the arguments alone. The message is formatted here and
/// handed to the real `_printk` as `%s`.
///
/// # Safety
///
/// `fmt` must be one of those format strings and `a`, `b` what it names.
#[cfg(rsnvme_no_pa)]
#[allow(unsafe_code)]
#[no_mangle]
unsafe extern "C" fn rsnvme_kernel_printk(
    fmt: *const kernel::ffi::c_char,
    a: *const c_void,
    b: *const c_void,
) -> kernel::ffi::c_int {
    // SAFETY: By the requirements, `fmt` holds at least the two bytes of a
    // level (SOH and the level or 'c').
    let level = unsafe { *fmt.cast::<u8>().add(1) };
    let cont = level == b'c';
    let args = if cont { a } else { b };
    let mut line = [0u8; LINE_MAX];
    // SAFETY: By the requirements, `args` points to a live `fmt::Arguments`.
    format_into(&mut line, unsafe { *args.cast::<fmt::Arguments<'_>>() });
    if cont {
        let f = [1u8, level, b'%', b's', 0];
        // SAFETY: `f` is a NUL-terminated format whose one `%s` consumes the
        // NUL-terminated `line`.
        unsafe { kernel::bindings::_printk(f.as_ptr().cast(), line.as_ptr()) }
    } else {
        let f = [1u8, level, b'%', b's', b':', b' ', b'%', b's', 0];
        // SAFETY: As above; the first `%s` consumes the module name `a`,
        // a NUL-terminated string by the requirements.
        unsafe { kernel::bindings::_printk(f.as_ptr().cast(), a, line.as_ptr()) }
    }
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
