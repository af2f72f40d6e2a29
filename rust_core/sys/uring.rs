// SPDX-License-Identifier: GPL-2.0

//! io_uring commands on a character device: reading the command
//! io_uring hands to `uring_cmd`, and completing one that went out with a
//! request (see `uring_types.rs` for the way a command takes).

use super::bindings;
use super::compat;
pub(crate) use super::uring_types::*;
use core::ffi::{c_int, c_uint};
use core::ptr::NonNull;
use core::sync::atomic::Ordering;

/// The driver's part of `cmd`.
///
/// # Safety
///
/// `cmd` is a live command the driver owns.
#[allow(unsafe_code)]
unsafe fn pdu(cmd: *mut bindings::io_uring_cmd) -> *mut UringPdu {
    // SAFETY: `cmd` is live; its pdu fits a `UringPdu` (`uring_types.rs`).
    unsafe { core::ptr::addr_of_mut!((*cmd).pdu).cast::<UringPdu>() }
}

impl UringCmd<'_> {
    /// # Safety
    ///
    /// `cmd` is the command of the `uring_cmd` call in progress, issued
    /// with `flags`, and not handed to anything else.
    #[allow(unsafe_code)]
    pub(super) unsafe fn from_raw(cmd: *mut bindings::io_uring_cmd, flags: c_uint) -> Option<Self> {
        let cmd = NonNull::new(cmd)?;
        // SAFETY: Live during the call, by the requirements.
        let (op, cmd_flags) = unsafe { ((*cmd.as_ptr()).cmd_op, (*cmd.as_ptr()).flags) };
        // INVARIANT: By the requirements of this function.
        Some(Self {
            cmd,
            flags: IssueFlags(flags),
            op,
            fixed: cmd_flags & bindings::RSNVME_IORING_URING_CMD_FIXED != 0,
            _call: core::marker::PhantomData,
        })
    }

    /// A copy of the command area of the 128-byte SQE (`EINVAL` without
    /// [`IssueFlags::big_entries`]), read once: user space may change it.
    #[allow(unsafe_code)]
    pub(crate) fn payload(&self) -> kernel::error::Result<[u8; SQE128_CMD_BYTES]> {
        if !self.flags.big_entries() {
            return Err(kernel::error::code::EINVAL);
        }
        // SAFETY: Live during the call (type invariant); its SQE is
        // readable, 128 bytes (big entries), 64-byte aligned.
        let words = unsafe {
            let sqe = (*self.cmd.as_ptr()).sqe.cast::<u8>();
            sqe.add(SQE_CMD_OFFSET)
                .cast::<[u64; SQE128_CMD_BYTES / 8]>()
                .read_volatile()
        };
        let mut out = [0u8; SQE128_CMD_BYTES];
        for (chunk, word) in out.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&word.to_ne_bytes());
        }
        Ok(out)
    }

    /// Hands the command to request `rq` (user buffer `bio`, or null);
    /// returns it for `end_io_data`.
    ///
    /// # Safety
    ///
    /// `rq` is about to be sent; its `end_io` calls [`ended`] with it once.
    #[allow(unsafe_code)]
    pub(super) unsafe fn hand_over(
        self,
        rq: *mut bindings::request,
        bio: *mut bindings::bio,
    ) -> (*mut bindings::io_uring_cmd, Queued) {
        let cmd = self.cmd.as_ptr();
        // SAFETY: Live, and the driver's from this call on.
        unsafe { pdu(cmd).write(UringPdu::new(rq, bio)) };
        (cmd, Queued(()))
    }
}

/// Keeps the outcome of `cmd`'s request, which ended, and has the
/// command completed in its task.
///
/// # Safety
///
/// `cmd` came from [`UringCmd::hand_over`] for that request; once only.
#[allow(unsafe_code)]
pub(super) unsafe fn ended(cmd: *mut bindings::io_uring_cmd, status: i32, result: u64) {
    // SAFETY: Live until the task work queued below completes it.
    let pdu = unsafe { &mut *pdu(cmd) };
    pdu.status = status;
    pdu.result = result;
    // Freed once `end_io` returns: no poller may look at it any more.
    pdu.req.store(core::ptr::null_mut(), Ordering::Release);
    let work = Some(task_work as compat::TaskWork);
    // SAFETY: `cmd` is live; the task work completes it, once (with lazy
    // wake-up, as `io_uring_cmd_do_in_task_lazy`).
    unsafe { bindings::__io_uring_cmd_do_in_task(cmd, work, bindings::RSNVME_IOU_F_TWQ_LAZY_WAKE) };
}

/// The task work [`ended`] queued (io_uring's `flags`): unmaps the user
/// buffer, completes the command with the kept outcome.
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
        status = final_status(status, unsafe { bindings::blk_rq_unmap_user(pdu.bio) });
        pdu.bio = core::ptr::null_mut();
    }
    // SAFETY: Owned by the driver, completed once, not touched after.
    unsafe { compat::uring_cmd_done(cmd, status, pdu.result, flags) };
}

/// `file_operations.uring_cmd_iopoll`: polls the hardware queue of the
/// command's request while it is in flight.
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
    // SAFETY: A request of a tag set stays allocated while the set lives
    // (see "Polling" in `uring_types.rs` for one that ended meanwhile).
    unsafe {
        if req.is_null() || !bindings::blk_rq_is_poll(req) {
            return 0;
        }
        bindings::blk_rq_poll(req, iob, poll_flags)
    }
}

/// The task work that completes a command (6.12's signature).
///
/// # Safety
///
/// Called by io_uring for a command `uring::ended` queued it for.
#[cfg(not(rsnvme_linux_7_3))]
#[allow(unsafe_code)]
unsafe extern "C" fn task_work(cmd: *mut bindings::io_uring_cmd, flags: c_uint) {
    // SAFETY: By the safety requirements of this function.
    unsafe { task_done(cmd, flags) };
}

/// The task work that completes a command (7.3's signature: the command
/// is the start of its `io_kiocb`, `cmd_to_io_kiocb` is a cast).
///
/// # Safety
///
/// Called by io_uring for a command `uring::ended` queued it for.
#[cfg(rsnvme_linux_7_3)]
#[allow(unsafe_code)]
unsafe extern "C" fn task_work(tw: bindings::io_tw_req, _token: bindings::io_tw_state) {
    let cmd = tw.req.cast::<bindings::io_uring_cmd>();
    // SAFETY: By the safety requirements of this function; the flags are
    // 7.3's `IO_URING_CMD_TASK_WORK_ISSUE_FLAGS`.
    unsafe { task_done(cmd, bindings::RSNVME_IO_URING_F_COMPLETE_DEFER) };
}
