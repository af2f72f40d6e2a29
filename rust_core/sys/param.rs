// SPDX-License-Identifier: GPL-2.0

//! The module parameters (include/linux/moduleparam.h).
//!
//! 6.12's Rust `module!` macro has no parameters and this module is not
//! built with it, so each parameter is declared here the way `module_param`
//! does in C: a `struct kernel_param` in the `__param` section. (There is no
//! `parm=` description in `.modinfo`: rustc puts each such static in a
//! section of its own, and modpost would then miss the shim's license.)
//!
//! All are unsigned integers, set at load time or through
//! /sys/module/rsnvme/parameters/<name>; the kernel's `param_ops_uint`
//! writes them with the parameter lock held, so they are atomics here.

use super::{__this_module, bindings};
use core::sync::atomic::{AtomicU32, Ordering};

/// A parameter table entry the module loader can read.
#[repr(transparent)]
struct KernelParam(bindings::kernel_param);

#[allow(unsafe_code)]
// SAFETY: The entry is immutable; the kernel only reads it, and writes the
// value it points to (an atomic) with the parameter lock held.
unsafe impl Sync for KernelParam {}

/// Declares the unsigned parameter `$name` (mode `$perm`, default
/// `$default`) and a function `$name()` that reads it.
macro_rules! uint_param {
    ($(#[$doc:meta])* $name:ident, $value:ident, $entry:ident, $perm:expr, $default:expr) => {
        static $value: AtomicU32 = AtomicU32::new($default);

        #[allow(unsafe_code)]
        #[link_section = "__param"]
        #[used]
        static $entry: KernelParam = KernelParam(bindings::kernel_param {
            name: {
                const NAME: &core::ffi::CStr = match core::ffi::CStr::from_bytes_with_nul(
                    concat!(stringify!($name), "\0").as_bytes(),
                ) {
                    Ok(name) => name,
                    Err(_) => panic!("parameter name"),
                };
                $crate::sys::compat::char_ptr(NAME)
            },
            mod_: (&raw const __this_module).cast_mut(),
            ops: &raw const bindings::param_ops_uint,
            perm: $perm,
            level: -1,
            flags: 0,
            __bindgen_anon_1: bindings::kernel_param__bindgen_ty_1 {
                arg: $value.as_ptr().cast(),
            },
        });

        $(#[$doc])*
        pub(crate) fn $name() -> u32 {
            $value.load(Ordering::Relaxed)
        }
    };
}

uint_param!(
    /// `io_timeout`: seconds an I/O command may take before recovery
    /// starts (read when a controller is bound), as `nvme_core.io_timeout`.
    io_timeout, IO_TIMEOUT, IO_TIMEOUT_PARAM, 0o644, 30
);

uint_param!(
    /// `admin_timeout`: seconds an admin command may take.
    admin_timeout, ADMIN_TIMEOUT, ADMIN_TIMEOUT_PARAM, 0o644, 60
);

uint_param!(
    /// `max_retries`: how often a failed command that may be retried is
    /// sent again before its error is returned.
    max_retries, MAX_RETRIES, MAX_RETRIES_PARAM, 0o644, 5
);

uint_param!(
    /// `shadow_doorbells`: 1 to give controllers that support Doorbell
    /// Buffer Config (emulated ones) shadow doorbells, 0 to ring every
    /// doorbell register (read when a controller is bound).
    shadow_doorbells, SHADOW_DOORBELLS, SHADOW_DOORBELLS_PARAM, 0o644, 1
);

uint_param!(
    /// `poll_queues`: I/O queue pairs without interrupts, for polled I/O
    /// (io_uring `IORING_SETUP_IOPOLL`, `RWF_HIPRI`), as the C driver's
    /// parameter of that name; at most one per online CPU (read when a
    /// controller is bound).
    poll_queues, POLL_QUEUES, POLL_QUEUES_PARAM, 0o644, 0
);

#[cfg(rsnvme_fault_injection)]
uint_param!(
    /// `fault` (test builds only): the failure to inject, 0 for none
    /// (see `fault.rs`).
    fault, FAULT, FAULT_PARAM, 0o644, 0
);
