// SPDX-License-Identifier: GPL-2.0

//! Requests the driver makes itself (include/linux/blk-mq.h): a request
//! queue with no disk (the admin queue's), and driver-private requests
//! (`REQ_OP_DRV_IN`/`REQ_OP_DRV_OUT`) on it or on a disk's queue, with
//! user memory mapped into them, executed and waited for.

use super::*;
use crate::sys::uring::{self, Queued, UringCmd, UringOutcome};

/// A request queue of a `T` tag set that has no disk: the admin queue's.
///
/// # Invariants
///
/// `q` was returned by `blk_mq_alloc_queue` for `set`'s tag set and is
/// destroyed and put on drop, before the set can be freed.
pub(crate) struct RequestQueue<T: Operations> {
    q: NonNull<bindings::request_queue>,
    _set: Arc<TagSet<T>>,
}

#[allow(unsafe_code)]
// SAFETY: A request queue may be used from any thread; blk-mq
// synchronises it.
unsafe impl<T: Operations> Send for RequestQueue<T> {}
#[allow(unsafe_code)]
// SAFETY: As above.
unsafe impl<T: Operations> Sync for RequestQueue<T> {}

impl<T: Operations> RequestQueue<T> {
    /// Allocates a request queue on `set` with `limits`.
    #[allow(unsafe_code)]
    pub(crate) fn new(set: &Arc<TagSet<T>>, limits: &Limits) -> Result<Self> {
        let mut lim = limits.to_raw();
        // SAFETY: `set` is allocated and outlives the queue (held below);
        // `lim` is read during the call.
        let q =
            unsafe { bindings::blk_mq_alloc_queue(set.as_ptr(), &mut lim, core::ptr::null_mut()) };
        if q.is_null() || (q as usize) >= (-4095isize) as usize {
            return Err(Error::from_errno(q as isize as c_int));
        }
        // INVARIANT: Allocated above for `set`.
        Ok(Self {
            // SAFETY: Checked non-null above.
            q: unsafe { NonNull::new_unchecked(q) },
            _set: set.clone(),
        })
    }

    /// Where the driver allocates its own requests.
    pub(crate) fn requests(&self) -> Requests<'_, T> {
        Requests {
            q: self.q.as_ptr(),
            _p: PhantomData,
        }
    }
}

impl<T: Operations> Drop for RequestQueue<T> {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: Allocated by the type invariant; nothing uses it after
        // this (`Requests` borrows `self`). Destroying it waits for its
        // requests and marks it dying.
        unsafe {
            bindings::blk_mq_destroy_queue(self.q.as_ptr());
            bindings::blk_put_queue(self.q.as_ptr());
        }
    }
}

/// Which way a driver-private request's data moves.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum DataDir {
    /// From the device to memory (`REQ_OP_DRV_IN`); also for no data.
    In,
    /// From memory to the device (`REQ_OP_DRV_OUT`).
    Out,
}

/// A request queue of a `T` tag set (a disk's or a [`RequestQueue`]),
/// borrowed for allocating driver-private requests.
///
/// # Invariants
///
/// `q` is a live request queue of a `T` tag set for `'a`.
pub(crate) struct Requests<'a, T: Operations> {
    q: *mut bindings::request_queue,
    _p: PhantomData<&'a T>,
}

impl<'a, T: Operations> Requests<'a, T> {
    /// # Safety
    ///
    /// `q` must be a request queue of a `T` tag set that stays live for
    /// `'a`.
    #[allow(unsafe_code)]
    pub(super) unsafe fn from_raw(q: *mut bindings::request_queue) -> Self {
        // INVARIANT: By the function's requirements.
        Self { q, _p: PhantomData }
    }

    /// Allocates a driver-private request for data moving `dir`, waiting
    /// for a free tag (the queue's usage counter keeps a dying queue
    /// from handing one out: `ENODEV` then).
    pub(crate) fn alloc(&self, dir: DataDir) -> Result<OwnRequest<'a, T>> {
        self.alloc_with(dir, 0, 0)
    }

    /// [`Requests::alloc`] with `opf` flags on the operation and
    /// allocation `flags` (`BLK_MQ_REQ_*`).
    #[allow(unsafe_code)]
    pub(in crate::sys) fn alloc_with(
        &self,
        dir: DataDir,
        opf: bindings::blk_opf_t,
        flags: bindings::blk_mq_req_flags_t,
    ) -> Result<OwnRequest<'a, T>> {
        let op = match dir {
            DataDir::In => bindings::req_op_REQ_OP_DRV_IN,
            DataDir::Out => bindings::req_op_REQ_OP_DRV_OUT,
        };
        // SAFETY: The queue is live by the type invariant.
        let rq = unsafe { bindings::blk_mq_alloc_request(self.q, op | opf, flags) };
        if rq.is_null() || (rq as usize) >= (-4095isize) as usize {
            return Err(Error::from_errno(rq as isize as c_int));
        }
        // INVARIANT: Freshly allocated, owned here, not executed.
        Ok(OwnRequest {
            // SAFETY: Checked non-null above.
            rq: unsafe { NonNull::new_unchecked(rq) },
            dir,
            user_bio: core::ptr::null_mut(),
            _p: PhantomData,
        })
    }
}

/// A driver-private request allocated by [`Requests::alloc`], owned by
/// its allocator until it is executed, and again once it has ended.
///
/// # Invariants
///
/// `rq` is a request of a `T` tag set, on a queue live for `'a`,
/// allocated by `blk_mq_alloc_request` and not yet freed; blk-mq does not
/// touch it outside [`OwnRequest::execute`] (after `send_uring`, which
/// consumes this, it is blk-mq's). `user_bio` is null or the bio the user
/// mapping attached, unmapped on drop. The request is freed on drop.
pub(crate) struct OwnRequest<'a, T: Operations> {
    rq: NonNull<bindings::request>,
    /// Which way its data moves.
    dir: DataDir,
    user_bio: *mut bindings::bio,
    _p: PhantomData<&'a T>,
}

impl<T: Operations> OwnRequest<'_, T> {
    /// The request's pdu, to describe the command before it is executed
    /// and to read its outcome afterwards.
    #[allow(unsafe_code)]
    pub(crate) fn pdu(&mut self) -> &mut T::Pdu {
        // SAFETY: The pdu follows the request and holds a `PduBox<T>`
        // (`init_request`); outside `execute` only the owner touches it.
        unsafe { &mut (*self.rq.as_ptr().add(1).cast::<PduBox<T>>()).pdu }
    }

    /// Sets how long the request may be outstanding before the timeout
    /// handler runs, in milliseconds (0: the tag set's default).
    #[allow(unsafe_code)]
    pub(crate) fn set_timeout_ms(&mut self, ms: u32) {
        let jiffies = kernel::time::msecs_to_jiffies(ms);
        // SAFETY: The request is owned here and not yet executed.
        unsafe { (*self.rq.as_ptr()).timeout = c_uint::try_from(jiffies).unwrap_or(c_uint::MAX) };
    }

    /// Maps `len` bytes of user memory at `addr` into the request, in the
    /// direction it was allocated for (`blk_rq_map_user`). Once only.
    pub(crate) fn map_user(&mut self, addr: usize, len: u32) -> Result {
        self.map_user_io(addr, len, false)
    }

    /// [`OwnRequest::map_user`], or if `vectored` the buffers of the `len`
    /// iovecs at `addr` (`blk_rq_map_user_io`): the pages are pinned, or
    /// copied through a kernel buffer where the queue's alignment demands.
    #[allow(unsafe_code)]
    pub(crate) fn map_user_io(&mut self, addr: usize, len: u32, vectored: bool) -> Result {
        if !self.user_bio.is_null() {
            return Err(EINVAL);
        }
        let (rq, write) = (self.rq.as_ptr(), self.dir == DataDir::Out);
        // SAFETY: Owned, not yet executed; `blk_rq_map_user_io` checks and
        // pins the user memory at `addr` (data, or `len` iovecs).
        to_result(unsafe {
            bindings::blk_rq_map_user_io(
                rq,
                core::ptr::null_mut(),
                addr as *mut c_void,
                len as usize,
                bindings::RSNVME_GFP_KERNEL,
                vectored,
                0,
                false,
                c_int::from(write),
            )
        })?;
        // SAFETY: As above; the bio the mapping attached.
        self.user_bio = unsafe { (*rq).bio };
        Ok(())
    }

    /// Sends the request and sleeps until it has ended (completed by the
    /// device, cancelled by a reset, or failed by its timeout handler);
    /// returns the block-layer status it ended with. The pdu holds the
    /// driver's outcome afterwards.
    #[allow(unsafe_code)]
    pub(crate) fn execute(&mut self) -> BlkStatus {
        // SAFETY: The request is owned here; blk-mq hands it back when it
        // has ended (a request with an `end_io` of `blk_execute_rq` is not
        // freed by ending it).
        let status = unsafe { bindings::blk_execute_rq(self.rq.as_ptr(), false) };
        BlkStatus::from_raw(status)
    }

    /// Undoes [`OwnRequest::map_user`] once the request has ended,
    /// copying read data back to the user if it went through a kernel
    /// buffer; a fault doing that is returned (`EFAULT`).
    #[allow(unsafe_code)]
    pub(crate) fn unmap_user(&mut self) -> Result {
        let bio = core::mem::take(&mut self.user_bio);
        if bio.is_null() {
            return Ok(());
        }
        // SAFETY: The bio `map_user` attached, taken out so it is unmapped
        // once; the request has ended or never ran.
        to_result(unsafe { bindings::blk_rq_unmap_user(bio) })
    }
}

impl<T: Operations> Drop for OwnRequest<'_, T> {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        if !self.user_bio.is_null() {
            // SAFETY: The bio `map_user` attached; the request has ended
            // or never ran, so nothing else uses it. A failure to copy
            // data back was the caller's to see in the data.
            let _ = unsafe { bindings::blk_rq_unmap_user(self.user_bio) };
        }
        // SAFETY: Allocated by `alloc` and owned here.
        unsafe { bindings::blk_mq_free_request(self.rq.as_ptr()) };
    }
}

impl<T: UringOutcome> OwnRequest<'_, T> {
    /// Sends the request without waiting, carrying io_uring command `cmd`,
    /// which its end completes (see `uring_types.rs`); it holds its
    /// queue's usage counter until then. The request and its bio are no
    /// longer the caller's: blk-mq and the command free and unmap them.
    #[allow(unsafe_code)]
    pub(crate) fn send_uring(self, cmd: UringCmd<'_>) -> Queued {
        let this = core::mem::ManuallyDrop::new(self);
        let rq = this.rq.as_ptr();
        // SAFETY: `end_io` below calls `uring::ended` once with it.
        let (cmd, queued) = unsafe { cmd.hand_over(rq, this.user_bio) };
        // SAFETY: Owned, not yet executed; blk-mq calls `end_io` once.
        unsafe {
            (*rq).end_io_data = cmd.cast();
            (*rq).end_io = Some(uring_end_io::<T>);
            bindings::blk_execute_rq_nowait(rq, false);
        }
        queued
    }
}

/// `end_io` of a request [`OwnRequest::send_uring`] sent (7.3 adds the
/// completion batch, unused): hands its outcome to its command.
///
/// # Safety
///
/// Called once by blk-mq for a request of a `T` tag set that `send_uring`
/// sent, ending with `status`.
#[allow(unsafe_code)]
unsafe extern "C" fn uring_end_io<T: UringOutcome>(
    rq: *mut bindings::request,
    status: bindings::blk_status_t,
    #[cfg(rsnvme_linux_7_3)] _iob: *const bindings::io_comp_batch,
) -> bindings::rq_end_io_ret {
    // SAFETY: Ending: this call is its only user; the pdu is a `PduBox<T>`.
    let (cmd, pdu) = unsafe {
        (
            (*rq).end_io_data.cast::<bindings::io_uring_cmd>(),
            &mut (*rq.add(1).cast::<PduBox<T>>()).pdu,
        )
    };
    let (result, extra) = T::outcome(pdu, BlkStatus::from_raw(status));
    // SAFETY: The command `send_uring` handed over; the one call for it.
    unsafe { uring::ended(cmd, result, extra) };
    bindings::rq_end_io_ret_RQ_END_IO_FREE
}
