// SPDX-License-Identifier: GPL-2.0

//! A workqueue of the driver's own (`alloc_workqueue`,
//! `include/linux/workqueue.h`) for work on the I/O reclaim path: resetting
//! a controller and handling its events may be what frees memory (the
//! controller serves the swap or the file system being written back), so
//! it must make progress without allocating: `WQ_MEM_RECLAIM` gives the
//! queue a rescuer thread of its own. Unbound, as the work sleeps for
//! long (a reset waits for the controller).

use super::bindings;
use super::compat;
use core::ffi::CStr;
use core::ptr::NonNull;
use kernel::error::{code::ENOMEM, Result};

/// An unbound workqueue with `WQ_MEM_RECLAIM`.
///
/// # Invariants
///
/// `wq` was returned by `alloc_workqueue` and is destroyed on drop, which
/// waits for the work queued on it to run.
pub(crate) struct Workqueue {
    wq: NonNull<bindings::workqueue_struct>,
}

#[allow(unsafe_code)]
// SAFETY: The workqueue API may be used from any thread.
unsafe impl Send for Workqueue {}
#[allow(unsafe_code)]
// SAFETY: As above; `&Workqueue` only queues work.
unsafe impl Sync for Workqueue {}

impl Workqueue {
    /// Allocates a workqueue named `name` (its rescuer thread's name in
    /// `ps`), which must not hold a `%`.
    #[allow(unsafe_code)]
    pub(crate) fn new(name: &'static CStr) -> Result<Self> {
        // SAFETY: `name` is a NUL-terminated string, and the driver's
        // names have no conversion specifiers.
        let wq =
            unsafe { compat::alloc_workqueue(compat::char_ptr(name), bindings::RSNVME_WQ_FLAGS) };
        // INVARIANT: Returned by `alloc_workqueue`.
        Ok(Self {
            wq: NonNull::new(wq).ok_or(ENOMEM)?,
        })
    }

    /// The queue, for `queue_work_on`.
    pub(crate) fn as_ptr(&self) -> *mut bindings::workqueue_struct {
        self.wq.as_ptr()
    }
}

impl Drop for Workqueue {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: Allocated by `alloc_workqueue` (the type invariant) and
        // destroyed only here; it waits for queued work to finish.
        unsafe { bindings::destroy_workqueue(self.wq.as_ptr()) };
    }
}
