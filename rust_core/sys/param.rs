// SPDX-License-Identifier: GPL-2.0

//! The module parameter `fault` (include/linux/moduleparam.h).
//!
//! 6.12's Rust `module!` macro has no parameters and this module is not
//! built with it, so the parameter is declared here the way `module_param`
//! does in C: a `struct kernel_param` in the `__param` section. (There is no
//! `parm=` description in `.modinfo`: rustc puts each such static in a
//! section of its own, and modpost would then miss the shim's license.)
//!
//! Tests use it to make bring-up and I/O fail at chosen points (see
//! `fault.rs`); it is 0 (no fault) unless set at load time or through
//! /sys/module/rsnvme/parameters/fault. Only test builds have it
//! (`--cfg rsnvme_fault_injection`).

use super::{__this_module, bindings};
use core::sync::atomic::{AtomicU32, Ordering};

/// The parameter's value, written by the kernel's `param_ops_uint`.
static FAULT: AtomicU32 = AtomicU32::new(0);

/// A parameter table entry the module loader can read.
#[repr(transparent)]
struct KernelParam(bindings::kernel_param);

// SAFETY: The entry is immutable; the kernel only reads it, and writes the
// value it points to (`FAULT`, an atomic) with the parameter lock held.
unsafe impl Sync for KernelParam {}

#[link_section = "__param"]
#[used]
static FAULT_PARAM: KernelParam = KernelParam(bindings::kernel_param {
    name: c"fault".as_ptr().cast(),
    mod_: (&raw const __this_module).cast_mut(),
    ops: &raw const bindings::param_ops_uint,
    perm: 0o644,
    level: -1,
    flags: 0,
    __bindgen_anon_1: bindings::kernel_param__bindgen_ty_1 {
        arg: FAULT.as_ptr().cast(),
    },
});

/// The current value of the `fault` parameter.
pub(crate) fn fault() -> u32 {
    FAULT.load(Ordering::Relaxed)
}
