// SPDX-License-Identifier: GPL-2.0

//! System sleep and power-off: quieting the controller (waiting for its
//! requests, deleting the I/O queues, CC.SHN, after the caller flushed the
//! volatile write cache with flush requests) and bringing it back with the
//! steps of a reset.

#![deny(unsafe_code)]

use super::Ctrl;
use crate::io::io_timeout_ms;
use crate::state::State;
use crate::sys::blk::TagSetRef;
use crate::sys::print::{dev_info, dev_warn};
use crate::sys::time::{msleep, Deadline};
use kernel::error::{code::EINVAL, Result};

/// How the volatile write cache fared before a shutdown: the caller
/// flushes it with flush requests while the controller is live.
#[derive(Clone, Copy)]
pub(crate) enum CacheFlush {
    /// The controller has no volatile write cache.
    NoCache,
    /// Every disk's cache was flushed.
    Done,
    /// A flush failed, or the controller is dead.
    Failed,
}

impl CacheFlush {
    fn describe(self) -> &'static str {
        match self {
            Self::NoCache => "no volatile write cache",
            Self::Done => "write cache flushed",
            Self::Failed => "write cache flush FAILED",
        }
    }
}

impl Ctrl {
    /// Quiets the controller for system sleep or power-off (`what`), as
    /// Linux's C driver does in `nvme_dev_disable(dev, shutdown = true)`:
    /// waits, up to the I/O timeout, for the requests it has; then, whether
    /// they all finished or not, deletes the I/O queues and shuts the
    /// controller down (CC.SHN normal, within `shutdown_ms`). Only then are
    /// the requests it did not finish taken back (it is disabled). The set
    /// stays quiesced until [`Ctrl::resume`]: new requests wait, and so
    /// do those taken back. A controller that can take no command (gone,
    /// not ready, fatal status) is only disabled. Either way bus mastering
    /// ends off, so the controller does no DMA while asleep or into the
    /// next kernel after a kexec; the resume turns it on again. Logs the
    /// outcome, with the cache flush's (`cache`).
    pub(crate) fn suspend(
        &self,
        set: &TagSetRef<'_, Self>,
        cache: CacheFlush,
        shutdown_ms: u32,
        what: &str,
    ) {
        let mut held = self.recovery.lock.lock();
        if let Err(refused) = self.recovery.state.change(State::Suspended) {
            if refused.from == State::Dead {
                dev_info!(&self.pdev, "{what}: controller is dead, nothing to do\n");
            }
            return;
        }
        let quiesced = set.quiesce();
        let busy = self.drain(set);
        if busy > 0 {
            dev_warn!(
                &self.pdev,
                "{what}: {busy} requests still in flight after {} ms: shutting the controller down\n",
                io_timeout_ms()
            );
        }
        if self.responsive() {
            self.shut_down(cache, shutdown_ms, what);
        } else {
            // As the C driver with a dead controller: no command and no
            // shutdown notification, which would only wait for their
            // timeouts.
            dev_warn!(
                &self.pdev,
                "{what}: controller not responding, disabling it\n"
            );
            let _ = self.regs.disable();
        }
        if busy > 0 {
            // Shut down (or disabled), the controller finishes nothing
            // more: what it did not is taken back now, with bus mastering
            // off until the resume restarts the controller.
            let (_, taken) = self.take_back(set, &quiesced);
            dev_info!(&self.pdev, "{what}: {taken} requests taken back\n");
        } else {
            // Nothing is left in flight and the controller is shut down
            // (or disabled): bus mastering goes off, as the C driver's
            // `pci_disable_device` in `nvme_dev_disable` turns it off, and
            // stays off until the resume restarts the controller.
            let _ = self.pdev.stop_dma();
        }
        // Admin commands wait for the resume too (the controller is shut
        // down); it releases them once the controller is enabled again.
        self.restart.admin.quiesce();
        *held = Some(quiesced.hold());
    }

    /// Whether the controller can still take commands and a shutdown
    /// notification: present, ready and without a fatal status (what the
    /// C driver's `nvme_pci_ctrl_is_dead` asks before it deletes the
    /// queues and shuts a controller down).
    fn responsive(&self) -> bool {
        self.pdev.is_present()
            && self
                .regs
                .csts()
                .is_ok_and(|csts| csts.ready() && !csts.fatal())
    }

    /// The normal shutdown of NVMe Base Specification 2.0, section 3.6.1:
    /// deletes the I/O queues (which aborts the commands the controller
    /// still has on them) and shuts the controller down (CC.SHN normal,
    /// within `shutdown_ms`); one that does not finish shutting down is
    /// disabled. Logs the outcome for `what`, with the cache flush's.
    fn shut_down(&self, cache: CacheFlush, shutdown_ms: u32, what: &str) {
        let flushed = cache.describe();
        let deleted = self.delete_queues();
        let shut = self.regs.shutdown(shutdown_ms);
        if shut.is_err() {
            // It logged; a reset stops the controller anyway.
            let _ = self.regs.disable();
        }
        let done = if shut.is_ok() {
            "shut down"
        } else {
            "disabled"
        };
        match self.regs.csts() {
            Ok(csts) => dev_info!(
                &self.pdev,
                "{what}: {flushed}, {deleted} I/O queues deleted, controller {done} ({csts})\n"
            ),
            Err(_) => dev_info!(
                &self.pdev,
                "{what}: {flushed}, {deleted} I/O queues deleted, controller gone\n"
            ),
        }
    }

    /// Brings a suspended controller back with the steps of a reset and
    /// lets the requests that waited go out. One that cannot be brought
    /// back is marked dead: its I/O fails. Nothing to do if it was not
    /// suspended.
    pub(crate) fn resume(&self, set: &TagSetRef<'_, Self>) -> Result {
        let mut held = self.recovery.lock.lock();
        let Some(quiesce) = held.take() else {
            return Ok(());
        };
        let quiesced = match set.unhold(quiesce) {
            Ok(quiesced) => quiesced,
            Err(quiesce) => {
                *held = Some(quiesce);
                return Err(EINVAL);
            }
        };
        dev_info!(&self.pdev, "resuming the controller\n");
        self.restart(set, quiesced, "resume")
    }

    /// Waits, up to the I/O timeout, for the requests the controller has;
    /// returns how many are left.
    fn drain(&self, set: &TagSetRef<'_, Self>) -> u32 {
        let deadline = Deadline::after_ms(io_timeout_ms());
        loop {
            let busy = set.busy();
            if busy == 0 || deadline.expired() {
                return busy;
            }
            msleep(1);
        }
    }
}
