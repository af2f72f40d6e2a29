// SPDX-License-Identifier: GPL-2.0

//! io_uring commands on a character device (include/linux/io_uring/cmd.h,
//! `IORING_OP_URING_CMD`): the command io_uring hands to a file's
//! `uring_cmd`, read safely; and the way a command that went out with a
//! driver-private request comes back: the request's `end_io` keeps the
//! outcome in the command's `pdu` and asks for task work, which unmaps
//! the user buffer and posts the completion in the submitter's task
//! (`uring_cmd_iopoll` polls the request meanwhile).
//!
//! The command's memory belongs to io_uring: it stays valid from the
//! `uring_cmd` call that returns `-EIOCBQUEUED` until the driver
//! completes it, once, and is not touched afterwards.

use super::bindings;
use super::blk::{BlkStatus, Operations};
use super::compat;
use core::ffi::{c_int, c_uint};
use core::marker::PhantomData;
use core::mem::{align_of, offset_of, size_of};
use core::ptr::NonNull;
use core::sync::atomic::{AtomicPtr, Ordering};

/// The `EOPNOTSUPP` error (an operation the file does not support),
/// which 6.12's `kernel::error::code` lacks.
pub(crate) fn eopnotsupp() -> kernel::error::Error {
    kernel::error::Error::from_errno(-(kernel::bindings::EOPNOTSUPP as i32))
}

/// Bytes of the command area of a 128-byte SQE: from `sqe->cmd` (offset
/// 48 of the first 64 bytes) to the end of the second 64.
pub(crate) const SQE128_CMD_BYTES: usize = 80;

/// Where `cmd` starts in `struct io_uring_sqe` (a fixed user ABI; the
/// field is a zero-length array in an anonymous union, which bindgen
/// names differently from kernel to kernel).
const SQE_CMD_OFFSET: usize = 48;
const _: () = assert!(size_of::<bindings::io_uring_sqe>() == 64);

/// What the driver keeps in a command's `pdu` from the send of its
/// request until the command is completed.
#[repr(C)]
struct UringPdu {
    /// The request while it is in flight, for polling; null once it ended.
    req: AtomicPtr<bindings::request>,
    /// The bio of the user buffer (null for none), unmapped in task
    /// context: ending the request advances `req->bio`.
    bio: *mut bindings::bio,
    /// DW0 and DW1 of the completion, for the CQE's extra result.
    result: u64,
    /// The NVMe status, or a negative errno, for the CQE's result.
    status: i32,
}

/// The `pdu` of `struct io_uring_cmd` is 32 bytes on both kernels (a type
/// check: this does not compile otherwise).
fn _pdu_is_32_bytes(cmd: &bindings::io_uring_cmd) -> [u8; 32] {
    cmd.pdu
}
const _: () = assert!(size_of::<UringPdu>() <= 32);
const _: () = assert!(offset_of!(bindings::io_uring_cmd, pdu) % align_of::<UringPdu>() == 0);

/// The driver's part of `cmd`.
///
/// # Safety
///
/// `cmd` is a live command the driver owns (issued to it and not yet
/// completed).
#[allow(unsafe_code)]
unsafe fn pdu(cmd: *mut bindings::io_uring_cmd) -> *mut UringPdu {
    // SAFETY: By the requirements `cmd` is live; the pdu is large and
    // aligned enough for `UringPdu` (checked above).
    unsafe { core::ptr::addr_of_mut!((*cmd).pdu).cast::<UringPdu>() }
}

/// A command io_uring handed to a file's `uring_cmd`, for that call.
/// Either the call fails, and io_uring completes the command with the
/// error, or the command goes out with a request
/// ([`crate::sys::blk::OwnRequest::send_uring`]) and is completed when
/// that request ends.
///
/// # Invariants
///
/// `cmd` is the command of a `uring_cmd` call in progress, issued with
/// `flags`, whose SQE stays readable during the call; only this value
/// may hand it over for completion.
pub(crate) struct UringCmd<'a> {
    cmd: NonNull<bindings::io_uring_cmd>,
    flags: c_uint,
    _call: PhantomData<&'a mut bindings::io_uring_cmd>,
}

impl UringCmd<'_> {
    /// # Safety
    ///
    /// `cmd` is the command of the `uring_cmd` call in progress, issued
    /// with `flags`, and not handed to anything else.
    #[allow(unsafe_code)]
    pub(super) unsafe fn from_raw(cmd: *mut bindings::io_uring_cmd, flags: c_uint) -> Option<Self> {
        // INVARIANT: By the requirements of this function.
        NonNull::new(cmd).map(|cmd| Self {
            cmd,
            flags,
            _call: PhantomData,
        })
    }

    /// The command's operation (`sqe->cmd_op`), for the driver to tell.
    #[allow(unsafe_code)]
    pub(crate) fn op(&self) -> u32 {
        // SAFETY: Live during the call, by the type invariant.
        unsafe { (*self.cmd.as_ptr()).cmd_op }
    }

    /// Whether the ring has 128-byte SQEs and 32-byte CQEs, which NVMe
    /// passthrough needs (the command does not fit otherwise, nor does
    /// the result come back).
    pub(crate) fn big_entries(&self) -> bool {
        let both = bindings::RSNVME_IO_URING_F_SQE128 | bindings::RSNVME_IO_URING_F_CQE32;
        self.flags & both == both
    }

    /// Whether io_uring asks not to wait here (`IO_URING_F_NONBLOCK`): a
    /// request that cannot be had at once gives `EAGAIN`, and io_uring
    /// issues the command again from a context that may wait.
    pub(crate) fn nonblocking(&self) -> bool {
        self.flags & bindings::RSNVME_IO_URING_F_NONBLOCK != 0
    }

    /// Whether the ring polls for completions (`IORING_SETUP_IOPOLL`):
    /// the request goes to a polled queue.
    pub(crate) fn polled(&self) -> bool {
        self.flags & bindings::RSNVME_IO_URING_F_IOPOLL != 0
    }

    /// Whether the buffer is one registered with the ring
    /// (`IORING_URING_CMD_FIXED`).
    #[allow(unsafe_code)]
    pub(crate) fn fixed_buffer(&self) -> bool {
        // SAFETY: Live during the call, by the type invariant.
        let flags = unsafe { (*self.cmd.as_ptr()).flags };
        flags & bindings::RSNVME_IORING_URING_CMD_FIXED != 0
    }

    /// A copy of the command area of the 128-byte SQE, for the driver to
    /// parse; read once, as user space may change the ring meanwhile.
    /// Only for a ring with [`UringCmd::big_entries`] (`EINVAL` else).
    #[allow(unsafe_code)]
    pub(crate) fn payload(&self) -> kernel::error::Result<[u8; SQE128_CMD_BYTES]> {
        if !self.big_entries() {
            return Err(kernel::error::code::EINVAL);
        }
        let mut out = [0u8; SQE128_CMD_BYTES];
        // SAFETY: Live during the call, by the type invariant.
        let sqe = unsafe { (*self.cmd.as_ptr()).sqe }.cast::<u8>();
        for (i, chunk) in out.chunks_exact_mut(8).enumerate() {
            // SAFETY: The SQE is readable during the call (type
            // invariant) and 128 bytes long on a ring with big entries;
            // `SQE_CMD_OFFSET + 80` is its end. SQEs are 64-byte aligned,
            // so each word is aligned. Volatile: user space may write it.
            let word = unsafe {
                sqe.add(SQE_CMD_OFFSET + i * 8)
                    .cast::<u64>()
                    .read_volatile()
            };
            chunk.copy_from_slice(&word.to_ne_bytes());
        }
        Ok(out)
    }

    /// Hands the command to request `rq`, whose user buffer is `bio`
    /// (null for none): from here on the command is completed by
    /// [`ended`], called from the request's `end_io`. Returns the
    /// command for `end_io_data`.
    ///
    /// # Safety
    ///
    /// `rq` is a request about to be sent whose `end_io` calls [`ended`]
    /// with the pointer returned, once.
    #[allow(unsafe_code)]
    pub(super) unsafe fn hand_over(
        self,
        rq: *mut bindings::request,
        bio: *mut bindings::bio,
    ) -> (*mut bindings::io_uring_cmd, Queued) {
        let cmd = self.cmd.as_ptr();
        // SAFETY: The command is live and owned by the driver from this
        // call on; nothing else reads its pdu before `ended`.
        unsafe {
            pdu(cmd).write(UringPdu {
                req: AtomicPtr::new(rq),
                bio,
                result: 0,
                status: 0,
            })
        };
        (cmd, Queued(()))
    }
}

/// Proof that a command went out with a request and will be completed
/// when it ends: `uring_cmd` then returns `-EIOCBQUEUED`.
pub(crate) struct Queued(());

/// A tag set whose driver-private requests may carry io_uring commands:
/// what a command's completion says about its request.
pub(crate) trait UringOutcome: Operations {
    /// The CQE's result (the NVMe status, or a negative errno) and extra
    /// result (DW0, DW1 in the upper half) for a request that ended with
    /// `status` and `pdu`.
    fn outcome(pdu: &mut Self::Pdu, status: BlkStatus) -> (i32, u64);
}

/// Keeps the outcome of the request `cmd` went out with, which has just
/// ended, and asks for the command to be completed in its task.
///
/// # Safety
///
/// `cmd` was returned by [`UringCmd::hand_over`] for the request that
/// ended, and this is called once for it.
#[allow(unsafe_code)]
pub(super) unsafe fn ended(cmd: *mut bindings::io_uring_cmd, status: i32, result: u64) {
    // SAFETY: The command is live until it is completed, which only the
    // task work asked for below does.
    let pdu = unsafe { &mut *pdu(cmd) };
    pdu.status = status;
    pdu.result = result;
    // The request is freed once `end_io` returns: a poller must not
    // look at it any more. It then finds the command done or about to
    // be (its task work is queued).
    pdu.req.store(core::ptr::null_mut(), Ordering::Release);
    // SAFETY: `cmd` is live; the callback completes it, once.
    unsafe { compat::complete_in_task(cmd) };
}

/// The task work [`ended`] asked for: unmaps the user buffer and
/// completes the command with the kept outcome (`flags` are the issue
/// flags io_uring gives the task work).
///
/// # Safety
///
/// `cmd` is a command [`ended`] queued this task work for.
#[allow(unsafe_code)]
pub(super) unsafe fn task_done(cmd: *mut bindings::io_uring_cmd, flags: c_uint) {
    // SAFETY: Live until completed below.
    let pdu = unsafe { &mut *pdu(cmd) };
    let mut status = pdu.status;
    if !pdu.bio.is_null() {
        // SAFETY: The bio the request's mapping attached; the request has
        // ended, and this is the one unmap.
        let unmapped = unsafe { bindings::blk_rq_unmap_user(pdu.bio) };
        if unmapped != 0 && status == 0 {
            // Read data could not be copied back.
            status = unmapped;
        }
        pdu.bio = core::ptr::null_mut();
    }
    let result = pdu.result;
    // SAFETY: The driver owns the command and completes it once; it is
    // not touched afterwards.
    unsafe { compat::uring_cmd_done(cmd, status, result, flags) };
}

/// `file_operations.uring_cmd_iopoll`: polls the hardware queue of the
/// command's request while it is in flight (`IORING_SETUP_IOPOLL`).
///
/// # Safety
///
/// Called by io_uring for a command of this driver's `uring_cmd` that
/// returned `-EIOCBQUEUED` and is not completed yet, with its poll batch.
#[allow(unsafe_code)]
pub(super) unsafe extern "C" fn iopoll(
    cmd: *mut bindings::io_uring_cmd,
    iob: *mut bindings::io_comp_batch,
    poll_flags: c_uint,
) -> c_int {
    // SAFETY: The command is live (not yet completed) by the requirements.
    let req = unsafe { &(*pdu(cmd)).req }.load(Ordering::Acquire);
    if req.is_null() {
        return 0;
    }
    // SAFETY: A request of a tag set, whose requests stay allocated while
    // the set lives, which is longer than the queue it was sent on (the
    // disk's removal waits for the request). `blk_rq_poll` takes a
    // reference on the queue's usage counter before it polls and does
    // nothing if it cannot. A request that another poller completed and
    // freed meanwhile has no hctx, which the driver's `poll` takes as
    // nothing to poll, or another command's, which is polled for nothing
    // (C's `nvme_ns_chr_uring_cmd_iopoll` polls the same way).
    unsafe {
        if !bindings::blk_rq_is_poll(req) {
            return 0;
        }
        bindings::blk_rq_poll(req, iob, poll_flags)
    }
}
