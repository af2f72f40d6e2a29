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
pub(crate) mod pci_types;
pub(crate) mod print;
pub(crate) mod sync;
pub(crate) mod sysfs;
pub(crate) mod sysfs_types;
pub(crate) mod time;
pub(crate) mod uring;
pub(crate) mod uring_types;
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

/// The C data a [`Static`] may hold: tables the kernel only reads, and
/// lock class keys, which only lockdep writes (under its own lock).
pub(crate) trait StaticData {}
impl StaticData for bindings::attribute_group {}
impl StaticData for bindings::file_operations {}
impl<const N: usize> StaticData for [bindings::device_attribute; N] {}
impl<const N: usize> StaticData for [*const bindings::attribute; N] {}
impl<const N: usize> StaticData for [*const bindings::attribute_group; N] {}
impl StaticData for core::cell::UnsafeCell<bindings::lock_class_key> {}

#[allow(unsafe_code)]
// SAFETY: Rust code never writes the contents of a `Static` and reads them
// only as the C tables they are (`StaticData`), mostly only taking their
// addresses for the kernel. The kernel only reads them, but for a lock
// class key, which lockdep writes under its own lock, so sharing a
// `Static` of these between threads is sound.
unsafe impl<T: StaticData> Sync for Static<T> {}
