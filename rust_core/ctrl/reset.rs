// SPDX-License-Identifier: GPL-2.0

//! Error recovery: a controller reset (NVMe Base Specification 2.0,
//! section 3.7.2) or an NVM subsystem reset that takes every request back
//! and brings the controller up again on the same queues with probe's
//! steps, the end of a controller that is gone or being removed, and the
//! commands that must not overlap them ([`Ctrl::exclusive`]). Every step
//! asks the state machine ([`crate::state`]) first.

#![deny(unsafe_code)]

use super::{Ctrl, Exclusive};
use crate::fault::Fault;
use crate::io::mark_host_aborted;
use crate::start::Steps;
use crate::state::State;
use crate::sys::blk::{self, QuiesceGate, TagSetRef};
use crate::sys::pci::DmaStopped;
use crate::sys::print::{dev_err, dev_info, dev_warn};
use crate::sys::time::msleep;
use core::sync::atomic::Ordering;
use kernel::error::{
    code::{EBUSY, EIO, ENODEV, ENOTTY},
    Result,
};

/// What a reset starts with.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum ResetKind {
    /// A controller reset (CC.EN cleared).
    Controller,
    /// An NVM Subsystem Reset (NSSR), which resets this controller and
    /// every other one in its subsystem.
    Subsystem,
}

/// No reset, suspend, resume or teardown runs while a disk's queue joins
/// the tag set; it is quiesced with its siblings while suspended.
impl QuiesceGate for Ctrl {
    fn settled(&self, join: &mut dyn FnMut(bool)) {
        let held = self.recovery.lock.lock();
        join(held.is_some());
    }
}

impl Ctrl {
    /// Stops the device and the queues and takes back every request the
    /// controller had: disables the controller (CC.EN=0, within CAP.TO),
    /// stops bus mastering, reaps what was posted and cancels the rest as
    /// aborted by the host; `complete` requeues or fails them. The caller
    /// holds `recovery` and keeps the set quiesced. Returns whether the
    /// controller was reset (it is safe to let it do DMA again), and how
    /// many requests were cancelled.
    pub(super) fn take_back(
        &self,
        set: &TagSetRef<'_, Self>,
        quiesced: &blk::Quiesced<'_>,
    ) -> (Option<DmaStopped>, u32) {
        // Admin commands wait from here on, the driver's own and from
        // user space; those outstanding are taken back below.
        self.restart.admin.quiesce();
        if self.restart.faults.inject(Fault::SlowReset) {
            msleep(3000);
        }
        let present = self.pdev.is_present();
        if present && self.pdev.restore_memory_decoding() {
            dev_warn!(&self.pdev, "memory decoding was off; turned it back on\n");
        }
        // A device that is gone is not waited for.
        let disabled = present && self.regs.disable().is_ok();
        let dma = self.pdev.stop_dma();
        let cancelled = self.cancel_outstanding(set, quiesced, &dma);
        (disabled.then_some(dma), cancelled)
    }

    /// Stops the queues of a controller whose DMA is stopped (`dma`) and
    /// takes back every request it had: reaps what was posted, then ends
    /// the rest host-aborted, admin commands (which then wait until the
    /// admin queue is revived or released) and I/O alike. Returns how many
    /// I/O requests were taken back.
    fn cancel_outstanding(
        &self,
        set: &TagSetRef<'_, Self>,
        quiesced: &blk::Quiesced<'_>,
        dma: &DmaStopped,
    ) -> u32 {
        self.path.stop_queues(set);
        self.restart.admin.stop(dma);
        set.cancel_all(quiesced, dma, mark_host_aborted)
            .unwrap_or(0)
    }

    /// Resets the controller and brings it back with the same queues
    /// (NVMe Base Specification 2.0, section 3.7.2): in-flight requests
    /// are requeued and sent again once it is back. If it cannot be
    /// brought back it is marked dead and its I/O fails. Never runs
    /// concurrently with another reset, a suspend or resume, or teardown.
    pub(crate) fn reset(&self, set: &TagSetRef<'_, Self>, reason: &str) -> Result {
        let _guard = self.recovery.lock.lock();
        self.reset_locked(set, reason, ResetKind::Controller)
    }

    /// Whether the controller can reset its NVM subsystem (CAP.NSSRS).
    pub(crate) fn subsystem_reset_supported(&self) -> bool {
        self.regs.subsystem_reset_supported()
    }

    /// Resets the NVM subsystem (NSSR), which resets this controller and
    /// every other one in the subsystem, then brings this one back as
    /// [`Ctrl::reset`] does: the requests it had are requeued and
    /// sent again, and it is marked dead if it cannot be brought back.
    /// `ENOTTY`, with nothing written, if the controller cannot reset its
    /// subsystem; refused in the states that refuse a reset.
    pub(crate) fn subsystem_reset(&self, set: &TagSetRef<'_, Self>, reason: &str) -> Result {
        if !self.subsystem_reset_supported() {
            return Err(ENOTTY);
        }
        let _guard = self.recovery.lock.lock();
        self.reset_locked(set, reason, ResetKind::Subsystem)
    }

    /// [`Ctrl::reset`] or [`Ctrl::subsystem_reset`] (`kind`), with
    /// `recovery` held.
    pub(super) fn reset_locked(
        &self,
        set: &TagSetRef<'_, Self>,
        reason: &str,
        kind: ResetKind,
    ) -> Result {
        if let Err(refused) = self.recovery.state.change(State::Resetting) {
            return Err(match refused.from {
                State::Dead | State::Deleting => ENODEV,
                _ => EBUSY,
            });
        }
        if kind == ResetKind::Subsystem {
            dev_info!(&self.pdev, "NVM subsystem reset {reason}\n");
            dev_warn!(
                &self.pdev,
                "resetting the controller: NVM subsystem reset\n"
            );
        } else {
            dev_warn!(&self.pdev, "resetting the controller: {reason}\n");
        }
        let quiesced = set.quiesce();
        if kind == ResetKind::Subsystem {
            // With the queues quiesced, nothing rings a doorbell while the
            // controller resets. Whether or not the write took effect (a
            // device that did not answer again was logged), the controller
            // may have lost its queues: the restart takes every request
            // back, disabling the controller first (within CAP.TO), and
            // brings it up again, or finds it gone and marks it dead.
            let _ = self.regs.reset_subsystem();
        }
        let result = self.restart(set, quiesced, "reset");
        if result.is_ok() {
            self.recovery.resets.fetch_add(1, Ordering::Relaxed);
        }
        // Timeouts that saw the controller live before this reset began
        // asked for one: this was it.
        self.recovery.take_reason();
        result
    }

    /// Takes every request back from the controller and brings it up
    /// again on the same queues, then unquiesces the set: the requeued
    /// requests go out again, or fail if the controller could not be
    /// brought back and is now dead. `what` names the step in the log.
    /// The caller holds `recovery`.
    pub(super) fn restart(
        &self,
        set: &TagSetRef<'_, Self>,
        quiesced: blk::Quiesced<'_>,
        what: &str,
    ) -> Result {
        // Resets asked for before this point are done by this one.
        self.recovery.next_epoch();
        let (dma, requeued) = self.take_back(set, &quiesced);
        let connecting = self
            .recovery
            .state
            .change(State::Connecting)
            .inspect_err(|refused| {
                dev_err!(&self.pdev, "{what}: {refused}\n");
            });
        let result = match (dma, connecting) {
            (Some(dma), Ok(_)) => self.revive(&dma).and_then(|()| {
                dma.resume();
                self.bring_back()
            }),
            _ => Err(EIO),
        };
        // Only this path leaves Connecting, with `recovery` held.
        let result = result.and_then(|()| {
            self.recovery
                .state
                .change(State::Live)
                .map(|_| ())
                .map_err(|_| EIO)
        });
        match result {
            Ok(()) => {
                dev_info!(
                    &self.pdev,
                    "{what} done: {} I/O queues, {requeued} requests requeued\n",
                    self.path.queues().len()
                );
                // Events whose log page a reset kept from being read.
                if self.restart.admin.events_pending() {
                    set.schedule_event_work();
                }
            }
            Err(_) => {
                // Whatever the controller does now, the queues are
                // stopped and the DMA off for good.
                let _ = self.regs.disable();
                let _ = self.pdev.stop_dma();
                // Every state may become Dead but Dead itself.
                let _ = self.recovery.state.change(State::Dead);
                // Admin commands that waited fail now, as new ones will.
                self.restart.admin.release();
                dev_err!(
                    &self.pdev,
                    "{what} failed: controller is dead, failing its I/O\n"
                );
            }
        }
        drop(quiesced);
        result.map_err(|_| EIO)
    }

    /// Makes the stopped queues usable again as new, and clears the shadow
    /// doorbell buffers, while the controller's DMA is stopped (`dma`).
    fn revive(&self, dma: &DmaStopped) -> Result {
        self.restart.admin.revive(&self.regs, dma)?;
        if let Some(shadow) = &self.restart.shadow {
            shadow.clear(dma)?;
        }
        self.path
            .queues()
            .iter()
            .try_for_each(|queue| queue.revive(dma))
    }

    /// The bring-up steps a reset repeats, as probe takes them
    /// ([`Steps`]), on the same memory revived ([`Ctrl::revive`]):
    /// enable, the number of queues, the shadow doorbells and each I/O
    /// queue pair; then the event request the reset dropped.
    fn bring_back(&self) -> Result {
        let admin = &self.restart.admin;
        // Injected: configure without EN, so RDY never comes.
        let cc = if self.restart.faults.inject(Fault::ResetFails) {
            self.restart.cc.disabled()
        } else {
            self.restart.cc
        };
        let steps = Steps {
            regs: &self.regs,
            admin,
        };
        steps.enable(cc)?;
        steps.keep_queue_count(u16::try_from(self.path.queues().len())?)?;
        if let Some(shadow) = &self.restart.shadow {
            // The reset cleared the controller's copy; refused, the queues
            // ring every doorbell.
            steps.shadow_doorbells(shadow)?;
        }
        steps.create_queues(self.path.queues())?;
        if self.events.on() && admin.request_event().is_err() {
            dev_warn!(
                &self.pdev,
                "no asynchronous event request after the reset\n"
            );
        }
        Ok(())
    }

    /// Deletes the I/O queues on the controller, stopping at the first
    /// failure (which was logged); returns how many were deleted. Commands
    /// still outstanding on a queue are aborted by the controller when its
    /// SQ is deleted; the caller takes their requests back afterwards.
    pub(crate) fn delete_queues(&self) -> usize {
        let admin = &self.restart.admin;
        self.path
            .queues()
            .iter()
            .take_while(|queue| admin.delete_io_queue(queue).is_ok())
            .count()
    }

    /// Stops the controller for good (it is gone, or a timeout came during
    /// teardown): I/O outstanding and to come fails.
    pub(crate) fn kill(&self, set: &TagSetRef<'_, Self>, why: &str) {
        let _guard = self.recovery.lock.lock();
        if self.recovery.state.change(State::Dead).is_err() {
            // Dead already.
            return;
        }
        dev_err!(
            &self.pdev,
            "{why}: disabling the controller, failing its I/O\n"
        );
        let quiesced = set.quiesce();
        // The DMA stays off: the token is dropped without resuming.
        let _ = self.take_back(set, &quiesced);
        // Admin commands from now on fail at once.
        self.restart.admin.release();
    }

    /// Ends teardown once the controller is shut down: it completes
    /// nothing more, so every request still outstanding (commands from user
    /// space, which hold their disk or the admin queue) is taken back now,
    /// host-aborted, and the controller is dead: what is sent later fails
    /// at once.
    pub(crate) fn end_teardown(&self, set: &TagSetRef<'_, Self>) {
        let _guard = self.recovery.lock.lock();
        // Dead already if it was killed.
        let _ = self.recovery.state.change(State::Dead);
        let quiesced = set.quiesce();
        // Off for good: the token is only shown, never resumed.
        let dma = self.pdev.stop_dma();
        self.cancel_outstanding(set, &quiesced, &dma);
        // What is sent from now on fails at once.
        self.restart.admin.release();
    }

    /// Starts teardown: waits for a reset in progress, then allows no
    /// more. The disks can then be removed; their I/O still completes. A
    /// controller still suspended (shut down) will not come back: it is
    /// marked dead and the requests that waited fail.
    pub(crate) fn begin_teardown(&self, set: &TagSetRef<'_, Self>) {
        let mut held = self.recovery.lock.lock();
        if let Some(quiesce) = held.take() {
            // Suspended may become Dead.
            let _ = self.recovery.state.change(State::Dead);
            // Dropping the guard unquiesces: the waiting requests fail.
            drop(set.unhold(quiesce));
            return;
        }
        // Refused only when the controller is dead already.
        let _ = self.recovery.state.change(State::Deleting);
    }

    /// Runs `f` while the controller is live and no reset, suspend,
    /// resume or teardown runs: for steps that must not interleave with
    /// them and wait for nothing (submitting the event request). `ENODEV`
    /// if the controller is dead or being removed, `EBUSY` otherwise.
    pub(crate) fn exclusive<R>(&self, f: impl FnOnce(&Exclusive) -> Result<R>) -> Result<R> {
        let _guard = self.recovery.lock.lock();
        match self.state() {
            State::Live => f(&Exclusive(())),
            State::Dead | State::Deleting => Err(ENODEV),
            State::New | State::Resetting | State::Connecting | State::Suspended => Err(EBUSY),
        }
    }
}
