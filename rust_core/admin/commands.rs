// SPDX-License-Identifier: GPL-2.0

//! Admin commands as requests: the driver's own, waited for with their
//! status checked, and those from user space with their data mapped;
//! and the typed commands bring-up and reset send.

#![deny(unsafe_code)]

use super::*;

/// Maps an NVMe status to the kernel error a failed command returns.
fn status_error(kind: StatusKind) -> Error {
    match kind {
        StatusKind::InvalidOpcode | StatusKind::InvalidField | StatusKind::InvalidNamespace => {
            EINVAL
        }
        StatusKind::AccessDenied => EACCES,
        _ => EIO,
    }
}

/// Sends a driver-private request from `requests`, filled in by `fill`,
/// with `data` mapped into it, and waits until it ends; `timeout_ms` 0
/// is the tag set's default. `outcome` reads the result from the pdu.
pub(crate) fn run_request<T: Operations, R>(
    requests: Requests<'_, T>,
    data: Option<UserData>,
    timeout_ms: u32,
    fill: impl FnOnce(&mut T::Pdu),
    outcome: impl FnOnce(&mut T::Pdu) -> R,
) -> Result<R> {
    let dir = data.map_or(DataDir::In, |d| d.dir);
    let mut rq: OwnRequest<'_, T> = requests.alloc(dir)?;
    fill(rq.pdu());
    if timeout_ms > 0 {
        rq.set_timeout_ms(timeout_ms);
    }
    if let Some(d) = data.filter(|d| d.len > 0) {
        rq.map_user(d.addr, d.len)?;
    }
    let status = rq.execute();
    let unmapped = rq.unmap_user();
    if status != BlkStatus::Ok {
        return Err(if status == BlkStatus::Resource {
            EBUSY
        } else {
            EIO
        });
    }
    unmapped?;
    Ok(outcome(rq.pdu()))
}

impl AdminQueue {
    /// Sends `cmd`, with `data` (if any) mapped from user memory, as a
    /// request and waits until it ends: completed by the controller,
    /// taken back by a reset (a host-aborted status), or failed.
    /// `timeout_ms` 0 is the admin timeout. `user` marks a command from
    /// user space.
    fn run(
        &self,
        cmd: Command,
        data: Option<UserData>,
        timeout_ms: u32,
        user: bool,
    ) -> Result<Completion> {
        if self.shared().state.get() == State::Dead {
            return Err(ENODEV);
        }
        run_request(
            self.queue.requests(),
            data,
            timeout_ms,
            |pdu: &mut AdminPdu| {
                pdu.cmd = cmd;
                pdu.user = user;
                pdu.list = None;
            },
            |pdu| pdu.cqe,
        )
    }

    /// Sends `cmd`, whose data (if any) its PRPs already point to in DMA
    /// memory that the caller keeps until this returns, and waits for it
    /// (see [`AdminQueue::run`]). When this returns the controller no
    /// longer uses that memory: a request ends only once the controller
    /// completed it or its DMA was stopped. `ETIMEDOUT` if the command was
    /// taken back.
    pub(crate) fn execute(&self, cmd: Command) -> Result<Completion> {
        let cqe = self.run(cmd, None, 0, false)?;
        if cqe.status() == Status::HOST_ABORTED {
            return Err(etimedout());
        }
        Ok(cqe)
    }

    /// Sends a command from user space with its data mapped from user
    /// memory and waits for it (up to `timeout_ms`, then the controller is
    /// reset, which takes it back): see [`AdminQueue::run`].
    pub(crate) fn user_command(
        &self,
        cmd: Command,
        data: Option<UserData>,
        timeout_ms: u32,
    ) -> Result<Completion> {
        self.run(cmd, data, timeout_ms, true)
    }

    /// Runs one admin command of the driver's own and checks its status;
    /// `what` names it in error messages.
    pub(crate) fn command(&self, cmd: Command, what: &str) -> Result<Completion> {
        let cqe = match self.execute(cmd) {
            Ok(cqe) => cqe,
            Err(e) if e == etimedout() => {
                if self.shared().disabled_by_timeout.load(Ordering::Relaxed) {
                    dev_err!(
                        &self.shared().pdev,
                        "{what} timed out after {} ms; resetting the controller\n",
                        admin_timeout_ms()
                    );
                } else {
                    dev_err!(
                        &self.shared().pdev,
                        "{what} was taken back by a controller reset\n"
                    );
                }
                return Err(e);
            }
            Err(e) => {
                dev_err!(&self.shared().pdev, "{what} failed: {e:?}\n");
                return Err(e);
            }
        };
        let status = cqe.status();
        if !status.is_success() {
            dev_err!(&self.shared().pdev, "{what} failed: {status}\n");
            return Err(status_error(status.kind()));
        }
        Ok(cqe)
    }

    /// Set Features (Number of Queues): asks for `wanted` I/O queue pairs
    /// and returns how many the controller grants (NSQA in bits 15:0,
    /// NCQA in bits 31:16 of the result, both zero-based).
    pub(crate) fn set_queue_count(&self, wanted: u16) -> Result<u32> {
        let cmd = Command::set_features_num_queues(wanted, wanted);
        let cqe = self.command(cmd, "Set Features (Number of Queues)")?;
        let sq = (cqe.result() & 0xffff) + 1;
        let cq = (cqe.result() >> 16) + 1;
        Ok(sq.min(cq))
    }

    /// Doorbell Buffer Config: hands `shadow`'s buffers to the controller
    /// and starts using them. Before the I/O queues are created; the
    /// buffers are new, or were cleared since the controller was reset
    /// ([`ShadowDoorbells::clear`]).
    pub(crate) fn set_shadow_doorbells(&self, shadow: &ShadowDoorbells) -> Result {
        self.command(shadow.config_command(), "Doorbell Buffer Config")?;
        shadow.activate();
        Ok(())
    }

    /// Creates I/O queue pair `queue` on the controller, CQ first.
    pub(crate) fn create_io_queue(&self, queue: &QueuePair) -> Result {
        let (create_cq, create_sq) = queue.create_commands().ok_or(EINVAL)?;
        self.command(create_cq, "Create I/O Completion Queue")?;
        self.command(create_sq, "Create I/O Submission Queue")?;
        Ok(())
    }

    /// Deletes I/O queue pair `queue` on the controller, SQ first.
    pub(crate) fn delete_io_queue(&self, queue: &QueuePair) -> Result {
        let (delete_sq, delete_cq) = queue.delete_commands();
        self.command(delete_sq, "Delete I/O Submission Queue")?;
        self.command(delete_cq, "Delete I/O Completion Queue")?;
        Ok(())
    }
}
