// SPDX-License-Identifier: GPL-2.0

//! The steps that put a controller's queues into service: enable, queue
//! count, shadow doorbells, I/O queue creation. Probe takes them once,
//! from nothing (`controller/bringup.rs`); a reset or a resume takes them
//! again on the same memory (`io/recovery.rs`). There is no second copy.

#![deny(unsafe_code)]

use crate::admin::AdminQueue;
use crate::queue::{QueuePair, ShadowDoorbells};
use crate::registers::Registers;
use crate::spec::regs::Cc;
use crate::sys::print::{dev_err, dev_warn};
use kernel::error::{code::EIO, Result};
use kernel::sync::Arc;

/// The controller and admin queue the steps act on.
pub(crate) struct Steps<'a> {
    pub(crate) regs: &'a Registers,
    pub(crate) admin: &'a AdminQueue,
}

impl Steps<'_> {
    /// Step "enable": writes `cc` (with EN set, unless a fault wants it
    /// not to come up) and waits for CSTS.RDY within CAP.TO; then lets
    /// admin commands reach the controller. A controller that does not
    /// become ready is disabled and its DMA stopped for good: it may yet
    /// come up later and use queues about to be freed.
    pub(crate) fn enable(&self, cc: Cc) -> Result {
        let regs = self.regs;
        regs.enable(cc).inspect_err(|_| {
            dev_err!(regs.pdev(), "controller did not become ready\n");
            let _ = regs.disable();
            let _ = regs.pdev().stop_dma();
        })?;
        self.admin.release();
        Ok(())
    }

    /// Step "queue count" (Set Features, Number of Queues): asks for
    /// `wanted` I/O queue pairs; returns how many the controller grants.
    pub(crate) fn queue_count(&self, wanted: u16) -> Result<u32> {
        self.admin.set_queue_count(wanted)
    }

    /// Step "queue count" again, for queues that exist: `EIO` if the
    /// controller now grants fewer than `count`.
    pub(crate) fn keep_queue_count(&self, count: u16) -> Result {
        let granted = self.queue_count(count)?;
        if granted < u32::from(count) {
            dev_err!(
                self.regs.pdev(),
                "controller grants {granted} I/O queue pairs, {count} in use\n"
            );
            return Err(EIO);
        }
        Ok(())
    }

    /// Step "shadow doorbells" (Doorbell Buffer Config): hands `shadow`'s
    /// buffers to the controller, which forgets them on every reset.
    /// False if the controller refused them: the queues then ring every
    /// doorbell. An error only if the command could not run at all (the
    /// controller was disabled: nothing more will work).
    pub(crate) fn shadow_doorbells(&self, shadow: &ShadowDoorbells) -> Result<bool> {
        match self.admin.set_shadow_doorbells(shadow) {
            Ok(()) => Ok(true),
            Err(e) if e == crate::sys::time::etimedout() => Err(e),
            Err(_) => {
                dev_warn!(self.regs.pdev(), "continuing without shadow doorbells\n");
                Ok(false)
            }
        }
    }

    /// Step "I/O queues": creates each of `queues` on the controller, CQ
    /// then SQ, in order.
    pub(crate) fn create_queues(&self, queues: &[Arc<QueuePair>]) -> Result {
        queues
            .iter()
            .try_for_each(|queue| self.admin.create_io_queue(queue))
    }
}
