// SPDX-License-Identifier: GPL-2.0

//! The safe half of io_uring commands (see `uring.rs`): what the driver
//! sees of a command's issue, the proof that one went out, what a tag set
//! says about a command's outcome, and how a command comes back.
//!
//! A command io_uring hands to a file's `uring_cmd` (`IORING_OP_URING_CMD`,
//! include/linux/io_uring/cmd.h) either fails at once, and io_uring
//! completes it with the error, or goes out with a driver-private request
//! (`OwnRequest::send_uring`), and `uring_cmd` returns `-EIOCBQUEUED`.
//! Then the request's `end_io` keeps the outcome in the command's 32-byte
//! `pdu` (with the request, for polling, and the bio of the user buffer),
//! clears the request there (blk-mq frees it when `end_io` returns) and
//! asks for task work, which unmaps the bio and completes the command in
//! its submitter's task, once: `io_uring_cmd_done` on 6.12,
//! `__io_uring_cmd_done` on 7.3 (`compat.rs`). The command's memory is
//! io_uring's: valid until then, never touched afterwards. On a ring
//! with `IORING_SETUP_IOPOLL`, `uring_cmd_iopoll` polls the request's
//! hardware queue while the pdu names the request.
//!
//! Polling: `blk_rq_poll` checks the request's hctx, then reads it again
//! to poll it, and another ring polling the same queue may complete and
//! free the request in between. A freed request has no hctx, which the
//! driver's `poll` takes as nothing to poll; one allocated again is
//! another command's, polled for nothing. The request's memory stays
//! allocated while its tag set lives, longer than the queue it was sent
//! on (the disk's removal waits for the request), and `blk_rq_poll` takes
//! the queue's usage counter before it polls (C's
//! `nvme_ns_chr_uring_cmd_iopoll` polls the same way).

#![deny(unsafe_code)]

use super::bindings;
use super::blk::{BlkStatus, DataDir, Operations, OwnRequest, Requests};
use core::ffi::c_uint;
use core::marker::PhantomData;
use core::mem::{align_of, offset_of, size_of};
use core::ptr::NonNull;
use core::sync::atomic::AtomicPtr;
use kernel::error::Error;
use kernel::error::Result;

/// The `EOPNOTSUPP` error (an operation the file does not support),
/// which 6.12's `kernel::error::code` lacks.
pub(crate) fn eopnotsupp() -> Error {
    Error::from_errno(-(kernel::bindings::EOPNOTSUPP as i32))
}

/// Bytes of the command area of a 128-byte SQE: from `sqe->cmd` (offset
/// 48 of the first 64 bytes) to the end of the second 64.
pub(crate) const SQE128_CMD_BYTES: usize = 80;

/// The issue flags io_uring passes with a command (`IO_URING_F_*`).
#[derive(Clone, Copy)]
pub(crate) struct IssueFlags(pub(super) c_uint);

impl IssueFlags {
    /// Whether the ring has 128-byte SQEs and 32-byte CQEs, which NVMe
    /// passthrough needs (the command does not fit otherwise, nor does
    /// the result come back).
    pub(crate) fn big_entries(self) -> bool {
        let both = bindings::RSNVME_IO_URING_F_SQE128 | bindings::RSNVME_IO_URING_F_CQE32;
        self.0 & both == both
    }

    /// Whether io_uring asks not to wait here (`IO_URING_F_NONBLOCK`): a
    /// request that cannot be had at once gives `EAGAIN`, and io_uring
    /// issues the command again from a context that may wait.
    pub(crate) fn nonblocking(self) -> bool {
        self.0 & bindings::RSNVME_IO_URING_F_NONBLOCK != 0
    }

    /// Whether the ring polls for completions (`IORING_SETUP_IOPOLL`):
    /// the request goes to a polled queue.
    pub(crate) fn polled(self) -> bool {
        self.0 & bindings::RSNVME_IO_URING_F_IOPOLL != 0
    }
}

/// A command io_uring handed to a file's `uring_cmd`, for that call.
///
/// # Invariants
///
/// `cmd` is the command of a `uring_cmd` call in progress, issued with
/// `flags`, whose SQE stays readable during the call; only this value
/// may hand it over for completion.
pub(crate) struct UringCmd<'a> {
    pub(super) cmd: NonNull<bindings::io_uring_cmd>,
    pub(super) flags: IssueFlags,
    /// `sqe->cmd_op`.
    pub(super) op: u32,
    /// Whether the buffer is registered with the ring.
    pub(super) fixed: bool,
    pub(super) _call: PhantomData<&'a mut bindings::io_uring_cmd>,
}

impl UringCmd<'_> {
    /// The flags io_uring issued the command with.
    pub(crate) fn flags(&self) -> IssueFlags {
        self.flags
    }

    /// The command's operation (`sqe->cmd_op`), for the driver to tell.
    pub(crate) fn op(&self) -> u32 {
        self.op
    }

    /// Whether the buffer is one registered with the ring
    /// (`IORING_URING_CMD_FIXED`).
    pub(crate) fn fixed_buffer(&self) -> bool {
        self.fixed
    }
}

/// Proof that a command went out with a request and will be completed
/// when it ends: `uring_cmd` then returns `-EIOCBQUEUED`.
pub(crate) struct Queued(pub(super) ());

/// A tag set whose driver-private requests may carry io_uring commands:
/// what a command's completion says about its request.
pub(crate) trait UringOutcome: Operations {
    /// The CQE's result (the NVMe status, or a negative errno) and extra
    /// result (DW0, DW1 in the upper half) for a request that ended with
    /// `status` and `pdu`.
    fn outcome(pdu: &mut Self::Pdu, status: BlkStatus) -> (i32, u64);
}

/// The status a command completes with once its request ended with
/// `status` and its bio was unmapped with `unmapped` (0 or a negative
/// errno): a failure to copy read data back fails a command that
/// succeeded.
pub(super) fn final_status(status: i32, unmapped: i32) -> i32 {
    if unmapped != 0 && status == 0 {
        unmapped
    } else {
        status
    }
}

/// Where `cmd` starts in `struct io_uring_sqe` (a fixed user ABI; the
/// field is a zero-length array in an anonymous union, which bindgen
/// names differently from kernel to kernel).
pub(super) const SQE_CMD_OFFSET: usize = 48;
const _: () = assert!(size_of::<bindings::io_uring_sqe>() == 64);

/// What the driver keeps in a command's `pdu` from the send of its
/// request until the command is completed.
#[repr(C)]
pub(super) struct UringPdu {
    /// The request while it is in flight, for polling; null once it ended.
    pub(super) req: AtomicPtr<bindings::request>,
    /// The bio of the user buffer (null for none), unmapped in task
    /// context: ending the request advances `req->bio`.
    pub(super) bio: *mut bindings::bio,
    /// DW0 and DW1 of the completion, for the CQE's extra result.
    pub(super) result: u64,
    /// The NVMe status, or a negative errno, for the CQE's result.
    pub(super) status: i32,
}

/// The `pdu` of `struct io_uring_cmd` is 32 bytes on both kernels (a type
/// check: this does not compile otherwise).
fn _pdu_is_32_bytes(cmd: &bindings::io_uring_cmd) -> [u8; 32] {
    cmd.pdu
}
const _: () = assert!(size_of::<UringPdu>() <= 32);
const _: () = assert!(offset_of!(bindings::io_uring_cmd, pdu) % align_of::<UringPdu>() == 0);

impl<'a, T: Operations> Requests<'a, T> {
    /// Allocates a driver-private request for data moving `dir` that
    /// will carry io_uring command `cmd`: without waiting for a tag if
    /// io_uring asked not to wait (`EAGAIN` then, and io_uring issues the
    /// command again where it may wait), and for a polled queue if the
    /// ring polls.
    pub(crate) fn alloc_uring(
        &self,
        dir: DataDir,
        cmd: &UringCmd<'_>,
    ) -> Result<OwnRequest<'a, T>> {
        let (mut opf, mut flags) = (0, 0);
        let issue = cmd.flags();
        if issue.nonblocking() {
            opf |= bindings::RSNVME_REQ_NOWAIT;
            flags |= bindings::RSNVME_BLK_MQ_REQ_NOWAIT;
        }
        if issue.polled() {
            opf |= bindings::RSNVME_REQ_POLLED;
        }
        self.alloc_with(dir, opf, flags)
    }
}

impl UringPdu {
    /// The pdu of a command that goes out with request `rq`, whose user
    /// buffer is `bio` (null for none).
    pub(super) fn new(rq: *mut bindings::request, bio: *mut bindings::bio) -> Self {
        Self {
            req: AtomicPtr::new(rq),
            bio,
            result: 0,
            status: 0,
        }
    }
}
