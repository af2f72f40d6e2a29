// SPDX-License-Identifier: GPL-2.0

//! User I/O commands from io_uring (a namespace's generic device,
//! `generic.rs`) as requests: sent without waiting, their outcome handed
//! to the io_uring command when they end.

#![deny(unsafe_code)]

use super::{IoPdu, IoSet, RequestPath};
use crate::admin::UserData;
use crate::spec::command::Command;
use crate::sys::blk::{BlkStatus, DataDir, Requests};
use crate::sys::uring::{Queued, UringCmd, UringOutcome};
use kernel::error::{
    code::{EBUSY, EIO, ENODEV},
    Result,
};

impl RequestPath {
    /// Sends I/O command `cmd` from io_uring command `uring` as a
    /// driver-private request from `requests` (a disk's queue), with
    /// `data` mapped from user memory (`data.len` iovecs at `data.addr`
    /// if `vectored`), and returns without waiting. The request takes the
    /// way of [`RequestPath::user_command`]'s (timeouts, resets,
    /// teardown); when it ends, [`UringOutcome::outcome`] completes
    /// `uring`.
    pub(crate) fn uring_command<T: IoSet + UringOutcome>(
        &self,
        requests: Requests<'_, T>,
        cmd: Command,
        data: Option<UserData>,
        vectored: bool,
        timeout_ms: u32,
        uring: UringCmd<'_>,
    ) -> Result<Queued> {
        if self.dead() {
            return Err(ENODEV);
        }
        let dir = data.map_or(DataDir::In, |d| d.dir);
        let mut rq = requests.alloc_uring(dir, &uring)?;
        let pdu = rq.pdu();
        pdu.cmd = cmd;
        pdu.page = None;
        // A request taken back before it completed keeps no result of an
        // earlier command.
        pdu.result = (0, 0);
        if timeout_ms > 0 {
            rq.set_timeout_ms(timeout_ms);
        }
        if let Some(d) = data.filter(|d| d.len > 0) {
            rq.map_user_io(d.addr, d.len, vectored)?;
        }
        Ok(rq.send_uring(uring))
    }
}

/// The outcome of an io_uring command whose request ended with `status`
/// and `pdu` ([`UringOutcome::outcome`] of the tag set's data): the NVMe
/// status (host-aborted for a command a reset or teardown took back), or
/// `EBUSY` or `EIO` if the request failed before it reached the
/// controller, as [`RequestPath::user_command`] returns them; DW0 and DW1
/// as the extra result.
pub(crate) fn uring_outcome(pdu: &IoPdu, status: BlkStatus) -> (i32, u64) {
    let result = u64::from(pdu.result.0) | (u64::from(pdu.result.1) << 32);
    match status {
        BlkStatus::Ok => (i32::from(pdu.status), result),
        BlkStatus::Resource => (EBUSY.to_errno(), 0),
        _ => (EIO.to_errno(), 0),
    }
}
