// SPDX-License-Identifier: GPL-2.0

//! Safe wrappers over the kernel C APIs that rsnvme uses.
//!
//! These modules hold all of the driver's `unsafe` code except the FFI entry
//! points. Each wrapper owns the resource it stands for and releases it on
//! drop, so error paths in the driver unwind by themselves. Nothing here
//! knows about the NVMe driver above it.

pub(crate) mod bindings;
pub(crate) mod blk;
pub(crate) mod compat;
pub(crate) mod compat_types;
pub(crate) mod cpu;
pub(crate) mod deadline;
pub(crate) mod dma;
pub(crate) mod dmapool;
pub(crate) mod irq;
pub(crate) mod irq_types;
pub(crate) mod misc;
pub(crate) mod misc_types;
pub(crate) mod mmio;
pub(crate) mod param;
pub(crate) mod pci;
pub(crate) mod print;
pub(crate) mod sync;
pub(crate) mod sysfs;
pub(crate) mod sysfs_types;
pub(crate) mod time;
pub(crate) mod workqueue;

// Only the module's address is ever taken, never its contents read, so
// what `struct module` holds does not matter (in 7.3 with the ITS
// mitigation it has an empty `struct its_array`, which rustc flags as not
// FFI-safe).
#[allow(improper_ctypes)]
extern "C" {
    /// This module, defined by modpost in the generated `rsnvme.mod.c`.
    static __this_module: bindings::module;
}

/// C data in a Rust `static` that the kernel points to: attribute tables,
/// ops tables, lock class keys.
#[repr(transparent)]
pub(crate) struct Static<T>(pub(crate) T);

#[allow(unsafe_code)]
// SAFETY: Rust code never reads or writes the contents of a `Static`, it
// only takes their addresses for the kernel. The kernel only reads them
// (lockdep may write a lock class key, under its own lock), so sharing a
// `Static` between threads is sound.
unsafe impl<T> Sync for Static<T> {}
