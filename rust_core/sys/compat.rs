// SPDX-License-Identifier: GPL-2.0

//! What differs between the kernels rsnvme builds against, Linux 6.12 and
//! 7.3: the kernel C calls that differ, each with one definition per kernel
//! (cfg `rsnvme_linux_7_3`). `compat_types.rs` is the safe half, re-exported
//! here, and its module documentation lists every difference.

use super::bindings;
use core::ffi::{c_int, c_uint, CStr};

pub(crate) use super::compat_types::*;

/// The C string at `ptr`.
///
/// # Safety
///
/// `ptr` is a NUL-terminated string that stays valid and unchanged for
/// `'a`.
#[allow(unsafe_code)]
pub(super) unsafe fn cstr_from_ptr<'a>(ptr: *const kernel::ffi::c_char) -> &'a CStr {
    #[cfg(not(rsnvme_linux_7_3))]
    // SAFETY: By the safety requirements of this function.
    let s = unsafe { CStr::from_ptr(ptr.cast()) };
    #[cfg(rsnvme_linux_7_3)]
    // SAFETY: By the safety requirements of this function.
    let s = unsafe { <CStr as kernel::str::CStrExt>::from_char_ptr(ptr) };
    s
}

/// Maps the blk-mq queues of `qmap` to the CPUs of `pdev`'s interrupt
/// vectors `offset..` (the vectors' affinity masks).
///
/// # Safety
///
/// `qmap` is a queue map of a tag set being (re)mapped by blk-mq, and
/// `pdev` a valid PCI device whose interrupt vectors are allocated.
#[allow(unsafe_code)]
pub(super) unsafe fn map_hw_queues(
    qmap: *mut bindings::blk_mq_queue_map,
    pdev: *mut bindings::pci_dev,
    offset: c_uint,
) {
    #[cfg(not(rsnvme_linux_7_3))]
    // SAFETY: By the safety requirements of this function.
    unsafe {
        bindings::blk_mq_pci_map_queues(qmap, pdev, offset as c_int)
    };
    #[cfg(rsnvme_linux_7_3)]
    // SAFETY: By the safety requirements of this function; `dev` is the
    // device embedded in the PCI device.
    unsafe {
        bindings::blk_mq_map_hw_queues(qmap, core::ptr::addr_of_mut!((*pdev).dev), offset)
    };
}

/// Maps the data of `rq` into the scatterlist `sg`; returns the number of
/// entries used, or a negative errno.
///
/// # Safety
///
/// `rq` is a started request the caller owns, and `sg` an initialised
/// table with at least `rq`'s `nr_phys_segments` entries.
#[allow(unsafe_code)]
pub(super) unsafe fn blk_rq_map_sg(
    rq: *mut bindings::request,
    sg: *mut bindings::scatterlist,
) -> c_int {
    let mut last = core::ptr::null_mut();
    #[cfg(not(rsnvme_linux_7_3))]
    // SAFETY: By the safety requirements of this function; `q` of a
    // request the caller owns is valid.
    let n = unsafe { bindings::__blk_rq_map_sg((*rq).q, rq, sg, &mut last) };
    #[cfg(rsnvme_linux_7_3)]
    // SAFETY: By the safety requirements of this function.
    let n = unsafe { bindings::__blk_rq_map_sg(rq, sg, &mut last) };
    n
}

/// Creates a DMA pool (`dma_pool_create`) on no particular NUMA node.
///
/// # Safety
///
/// `name` is a NUL-terminated string that outlives the pool and `dev` a
/// valid device.
#[allow(unsafe_code)]
pub(super) unsafe fn dma_pool_create(
    name: *const kernel::ffi::c_char,
    dev: *mut bindings::device,
    size: usize,
    align: usize,
    boundary: usize,
) -> *mut bindings::dma_pool {
    #[cfg(not(rsnvme_linux_7_3))]
    // SAFETY: By the safety requirements of this function.
    let pool = unsafe { bindings::dma_pool_create(name, dev, size, align, boundary) };
    #[cfg(rsnvme_linux_7_3)]
    // SAFETY: By the safety requirements of this function.
    let pool = unsafe {
        bindings::dma_pool_create_node(name, dev, size, align, boundary, bindings::NUMA_NO_NODE)
    };
    pool
}

/// Allocates a workqueue named `name` with `flags` and the default
/// concurrency (`alloc_workqueue`: a function in 6.12, a macro around
/// `alloc_workqueue_noprof` in 7.3).
///
/// # Safety
///
/// `name` is a NUL-terminated string without conversion specifiers.
#[allow(unsafe_code)]
pub(super) unsafe fn alloc_workqueue(
    name: *const kernel::ffi::c_char,
    flags: core::ffi::c_uint,
) -> *mut bindings::workqueue_struct {
    #[cfg(not(rsnvme_linux_7_3))]
    // SAFETY: By the safety requirements of this function, `name` is a
    // format that takes no arguments.
    let wq = unsafe { bindings::alloc_workqueue(name, flags, 0) };
    #[cfg(rsnvme_linux_7_3)]
    // SAFETY: As above.
    let wq = unsafe { bindings::alloc_workqueue_noprof(name, flags, 0) };
    wq
}

/// The lock backend of 6.12's [`IrqSpinLock`]: a `spinlock_t` whose guard
/// keeps the saved interrupt flags.
#[cfg(not(rsnvme_linux_7_3))]
pub(crate) struct IrqSpinLockBackend;

#[allow(unsafe_code)]
// SAFETY: The kernel's `spinlock_t` provides mutual exclusion; `lock` and
// `relock` (the default, which calls `lock`) both take it with
// `_raw_spin_lock_irqsave`, and `unlock` restores the flags that call saved.
#[cfg(not(rsnvme_linux_7_3))]
unsafe impl kernel::sync::lock::Backend for IrqSpinLockBackend {
    type State = kernel::bindings::spinlock_t;
    type GuardState = kernel::ffi::c_ulong;

    #[allow(unsafe_code)]
    unsafe fn init(
        ptr: *mut Self::State,
        name: *const kernel::ffi::c_char,
        key: *mut kernel::bindings::lock_class_key,
    ) {
        // SAFETY: `ptr` is valid for writes and `name` and `key` live
        // forever, by the safety requirements of this function.
        unsafe { kernel::bindings::__spin_lock_init(ptr, name, key) }
    }

    #[allow(unsafe_code)]
    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        // SAFETY: `ptr` is an initialised `spinlock_t` by the safety
        // requirements of this function. Outside PREEMPT_RT (which Rust
        // does not support in 6.12) a `spinlock_t` is a `raw_spinlock_t`
        // at offset 0.
        unsafe { kernel::bindings::_raw_spin_lock_irqsave(ptr.cast()) }
    }

    #[allow(unsafe_code)]
    unsafe fn unlock(ptr: *mut Self::State, flags: &Self::GuardState) {
        // SAFETY: The caller owns the lock, taken by `lock` above, which
        // returned `flags`.
        unsafe { kernel::bindings::_raw_spin_unlock_irqrestore(ptr.cast(), *flags) }
    }
}

/// Completes io_uring command `cmd` (with the task work's `flags`): result
/// `status`, extra result `result` in its 32-byte CQE.
///
/// # Safety
///
/// `cmd` is a live command the driver owns, of a ring with 32-byte CQEs;
/// completed here, once, and not touched afterwards.
#[allow(unsafe_code)]
pub(super) unsafe fn uring_cmd_done(
    cmd: *mut bindings::io_uring_cmd,
    status: i32,
    result: u64,
    flags: c_uint,
) {
    // SAFETY: By the safety requirements of this function.
    unsafe {
        #[cfg(not(rsnvme_linux_7_3))]
        bindings::io_uring_cmd_done(cmd, status as isize, result, flags);
        #[cfg(rsnvme_linux_7_3)]
        bindings::__io_uring_cmd_done(cmd, status, result, flags, true);
    }
}
