// SPDX-License-Identifier: GPL-2.0

//! The blk-mq driver on top of the I/O queue pairs: NVMe commands built
//! from block requests, PRPs for their data, completion by interrupt, and
//! error recovery (NVM Command Set Specification 1.0): a timed-out command
//! is polled for, then aborted, then the controller is reset, as Linux's C
//! driver does; requests caught by a reset are requeued and retried.

#![deny(unsafe_code)]

use crate::admin::{AdminQueue, EventSink};
use crate::fault::{Fault, Faults};
use crate::ns::NsDisk;
use crate::queue::{QueuePair, ShadowDoorbells};
use crate::registers::Registers;
use crate::scan::Namespaces;
use crate::spec::command::{command_id, split_command_id, Command, TAG_BITS};
use crate::spec::completion::{Completion, Status as NvmeStatus, StatusKind};
use crate::spec::event::{CriticalWarning, Event, EventKind};
use crate::spec::identify::WriteSizes;
use crate::spec::limits;
use crate::spec::nsid::NamespaceIds;
use crate::spec::prp::{self, PrpError, Segment};
use crate::spec::regs::Cc;
use crate::sys::blk::{
    self, BlkStatus, CompletionBatch, HeldQuiesce, Op, Operations, Request, TagSet, TagSetRef,
    TimedOut, TimeoutAction,
};
use crate::sys::dma::CoherentArray;
use crate::sys::dmapool::{DmaPool, PoolBlock};
use crate::sys::irq::{IrqHandler, IrqReturn};
use crate::sys::param;
use crate::sys::pci::PciDevice;
use crate::sys::print::{dev_err, dev_info, dev_warn};
use crate::sys::time::{etimedout, msleep, Deadline};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};
use kernel::alloc::{flags::GFP_KERNEL, KVec};
use kernel::error::{
    code::{EBUSY, EINVAL, EIO, ENODEV, ENOMEM, ENOTTY},
    Result,
};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};

/// Most entries per I/O queue, whatever CAP.MQES allows: each tag holds a
/// scatterlist, so deeper queues cost memory without helping a device
/// behind a few queues.
pub(crate) const MAX_IO_DEPTH: u16 = 256;

const _: () = assert!((MAX_IO_DEPTH as u32) <= 1 << TAG_BITS);

/// The tag of the driver's own commands on an I/O queue, beyond every
/// blk-mq tag.
const INTERNAL_TAG: u32 = (1 << TAG_BITS) - 1;

const _: () = assert!((MAX_IO_DEPTH as u32) <= INTERNAL_TAG);

/// Set in [`IoShared::internal`] once the command completed.
const INTERNAL_DONE: u32 = 1 << 16;

/// How long an I/O may take before recovery starts: the `io_timeout`
/// module parameter (30 s by default, as Linux's C driver), in ms.
pub(crate) fn io_timeout_ms() -> u32 {
    param::io_timeout().clamp(1, 3600) * 1000
}

/// Where the controller stands, as the I/O path sees it.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
#[repr(u8)]
enum State {
    /// Serving I/O.
    Live = 0,
    /// Being reset: the queues are quiesced, requests wait.
    Resetting = 1,
    /// Could not be brought back, or is gone: I/O fails at once.
    Dead = 2,
    /// Being unbound: no more resets.
    Deleting = 3,
    /// Shut down for system sleep or power-off: the queues are quiesced,
    /// requests wait for the resume.
    Suspended = 4,
}

impl State {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Live,
            1 => Self::Resetting,
            2 => Self::Dead,
            3 => Self::Deleting,
            _ => Self::Suspended,
        }
    }
}

/// Why a reset was asked for, kept until the reset work runs.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Reason {
    None = 0,
    Timeout = 1,
    Fatal = 2,
    SubsystemReset = 3,
}

impl Reason {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Timeout,
            2 => Self::Fatal,
            3 => Self::SubsystemReset,
            _ => Self::None,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::None => "requested",
            Self::Timeout => "I/O timeout",
            Self::Fatal => "controller fatal status",
            Self::SubsystemReset => "NVM subsystem reset occurred (CSTS.NSSRO)",
        }
    }
}

/// What a reset starts with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ResetKind {
    /// A controller reset (CC.EN cleared).
    Controller,
    /// An NVM Subsystem Reset (NSSR), which resets this controller and
    /// every other one in its subsystem.
    Subsystem,
}

/// What bringing the controller back needs beyond the queues.
pub(crate) struct Restart {
    /// The admin queue, revived and reprogrammed on each reset.
    pub(crate) admin: Arc<AdminQueue>,
    /// The controller configuration to enable with.
    pub(crate) cc: Cc,
    /// The shadow doorbell buffers, handed over again on each reset.
    pub(crate) shadow: Option<Arc<ShadowDoorbells>>,
    /// Faults to inject (tests).
    pub(crate) faults: Faults,
}

/// A namespace the driver serves: what its disk's requests need, and its
/// identifiers.
#[derive(Clone, Copy)]
pub(crate) struct Namespace {
    /// Namespace identifier.
    pub(crate) nsid: u32,
    /// Capacity in logical blocks.
    pub(crate) blocks: u64,
    /// Logical block size as a shift (9 for 512 bytes).
    pub(crate) lba_shift: u32,
    /// Preferred, optimal and atomic write sizes.
    pub(crate) write_sizes: WriteSizes,
    /// EUI64, NGUID, UUID.
    pub(crate) ids: NamespaceIds,
}

impl Namespace {
    /// Capacity in 512-byte sectors (saturating).
    pub(crate) fn sectors(&self) -> u64 {
        let shift = self.lba_shift.saturating_sub(9);
        self.blocks.checked_shl(shift).unwrap_or(u64::MAX)
    }
}

/// Held by the closure [`IoShared::exclusive`] runs: what the commands
/// that must not overlap a reset, a suspend or each other require. Only
/// `exclusive` makes one.
pub(crate) struct Exclusive(());

/// Per-request driver data.
pub(crate) struct IoPdu {
    /// The PRP list or DSM range page of a request in flight.
    page: Option<PoolBlock>,
    /// The completion's status field (without the phase bit).
    status: u16,
    /// How often the request was sent again.
    retries: u32,
}

/// The state all I/O queues share: the tag set's driver data.
#[pin_data]
pub(crate) struct IoShared {
    pdev: PciDevice,
    regs: Arc<Registers>,
    queues: KVec<Arc<QueuePair>>,
    pool: Arc<DmaPool>,
    page_size: u32,
    /// The vector of I/O queue 1 when vectors are spread over CPUs.
    affinity_offset: Option<u32>,
    restart: Restart,
    /// A [`State`]; changed only with `recovery` held.
    state: AtomicU8,
    /// The [`Reason`] for the reset the work item is to do.
    reason: AtomicU8,
    /// Held while the controller is reset, suspended, resumed or torn
    /// down, so only one of them runs at a time; holds the tag set's
    /// quiesce from suspend to resume.
    #[pin]
    recovery: Mutex<Option<HeldQuiesce>>,
    /// The outcome of the driver's own command on I/O queue 1 (a flush
    /// before a shutdown): [`INTERNAL_DONE`] and the status once it
    /// completed, 0 before.
    internal: AtomicU32,
    /// The namespaces a Namespace Attribute Changed event rescans, while
    /// [`EventHandling`] lives.
    #[pin]
    scan: Mutex<Option<Arc<Namespaces>>>,
    /// Whether an Asynchronous Event Request is kept outstanding: from
    /// [`EventHandling::start`] to its drop.
    events_on: AtomicBool,
    /// The Asynchronous Event Configuration set before each request.
    event_config: AtomicU32,
    /// Resets done, requests sent again, requests failed.
    resets: AtomicU32,
    retried: AtomicU32,
    failed: AtomicU32,
}

impl IoShared {
    pub(crate) fn new(
        regs: Arc<Registers>,
        queues: KVec<Arc<QueuePair>>,
        page_size: u32,
        affinity_offset: Option<u32>,
        restart: Restart,
    ) -> Result<Arc<Self>> {
        let pdev = regs.pdev().clone();
        let pool = DmaPool::new(&pdev, c"rsnvme prp", page_size as usize)?;
        Arc::pin_init(
            pin_init!(Self {
                pdev,
                regs,
                queues,
                pool,
                page_size,
                affinity_offset,
                restart,
                state: AtomicU8::new(State::Live as u8),
                reason: AtomicU8::new(Reason::None as u8),
                recovery <- new_mutex!(None, "rsnvme_recovery"),
                internal: AtomicU32::new(0),
                scan <- new_mutex!(None, "rsnvme_scan"),
                events_on: AtomicBool::new(false),
                event_config: AtomicU32::new(0),
                resets: AtomicU32::new(0),
                retried: AtomicU32::new(0),
                failed: AtomicU32::new(0),
            }),
            GFP_KERNEL,
        )
    }

    fn state(&self) -> State {
        State::from_u8(self.state.load(Ordering::Acquire))
    }

    fn set_state(&self, state: State) {
        self.state.store(state as u8, Ordering::Release);
    }

    /// Whether the controller is dead: its queues are stopped for good.
    pub(crate) fn dead(&self) -> bool {
        self.state() == State::Dead
    }

    /// Resets done, requests retried and requests failed so far.
    pub(crate) fn counts(&self) -> (u32, u32, u32) {
        (
            self.resets.load(Ordering::Relaxed),
            self.retried.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }

    /// The queues, for creating and deleting them.
    pub(crate) fn queues(&self) -> &[Arc<QueuePair>] {
        &self.queues
    }

    /// Hands the completion `cqe` of I/O queue `queue` (index `index`) to
    /// the block layer; a request that succeeded here joins `batch`, if
    /// given.
    fn complete_entry(
        &self,
        set: &TagSetRef<'_, IoShared>,
        queue: &QueuePair,
        index: u32,
        cqe: &Completion,
        batch: Option<&mut CompletionBatch<'_>>,
    ) {
        let (tag, generation) = split_command_id(cqe.cid());
        if tag == INTERNAL_TAG {
            let status = u32::from(cqe.status().0);
            self.internal
                .store(INTERNAL_DONE | status, Ordering::Release);
            return;
        }
        let Some(rq) = set.in_flight(index, tag) else {
            dev_warn!(
                &self.pdev,
                "queue {}: completion for unknown command id {:#x}\n",
                queue.qid(),
                cqe.cid()
            );
            return;
        };
        if command_id(tag, rq.sequence()) != cqe.cid() {
            dev_warn!(
                &self.pdev,
                "queue {}: stale completion for command id {:#x} (generation {generation}), \
                 ignored\n",
                queue.qid(),
                cqe.cid()
            );
            return;
        }
        if rq.fake_timeout() {
            // fail_io_timeout: the completion is lost, the request times out.
            return;
        }
        let status = cqe.status().0;
        match rq.complete_here(|pdu| pdu.status = status) {
            // Completed on the submitting CPU.
            Some(None) => {}
            Some(Some(rq)) => self.finish(rq, batch),
            None => dev_warn!(
                &self.pdev,
                "queue {}: duplicate completion for command id {:#x}, ignored\n",
                queue.qid(),
                cqe.cid()
            ),
        }
    }

    /// Stops the device and the queues and takes back every request the
    /// controller had: disables the controller (CC.EN=0, within CAP.TO),
    /// stops bus mastering, reaps what was posted and cancels the rest as
    /// aborted by the host; `complete` requeues or fails them. The caller
    /// holds `recovery` and keeps the set quiesced. Returns whether the
    /// controller was reset (it is safe to let it do DMA again), and how
    /// many requests were cancelled.
    fn take_back(
        &self,
        set: &TagSetRef<'_, IoShared>,
        quiesced: &blk::Quiesced<'_>,
    ) -> (Option<crate::sys::pci::DmaStopped>, u32) {
        let present = self.pdev.is_present();
        if present && self.pdev.restore_memory_decoding() {
            dev_warn!(&self.pdev, "memory decoding was off; turned it back on\n");
        }
        // A device that is gone is not waited for.
        let disabled = present && self.regs.disable().is_ok();
        let dma = self.pdev.stop_dma();
        for (i, q) in self.queues.iter().enumerate() {
            q.stop(|cqe| self.complete_entry(set, q, i as u32, cqe, None));
        }
        self.restart.admin.stop();
        let cancelled = set
            .cancel_all(quiesced, &dma, mark_host_aborted)
            .unwrap_or(0);
        (disabled.then_some(dma), cancelled)
    }

    /// Resets the controller and brings it back with the same queues
    /// (NVMe Base Specification 2.0, section 3.7.2): in-flight requests
    /// are requeued and sent again once it is back. If it cannot be
    /// brought back it is marked dead and its I/O fails. Never runs
    /// concurrently with another reset, a suspend or resume, or teardown.
    pub(crate) fn reset(&self, set: &TagSetRef<'_, IoShared>, reason: &str) -> Result {
        let _guard = self.recovery.lock();
        self.reset_locked(set, reason, ResetKind::Controller)
    }

    /// Whether the controller can reset its NVM subsystem (CAP.NSSRS).
    pub(crate) fn subsystem_reset_supported(&self) -> bool {
        self.regs.subsystem_reset_supported()
    }

    /// Resets the NVM subsystem (NSSR), which resets this controller and
    /// every other one in the subsystem, then brings this one back as
    /// [`IoShared::reset`] does: the requests it had are requeued and
    /// sent again, and it is marked dead if it cannot be brought back.
    /// `ENOTTY`, with nothing written, if the controller cannot reset its
    /// subsystem; refused in the states that refuse a reset.
    pub(crate) fn subsystem_reset(&self, set: &TagSetRef<'_, IoShared>, reason: &str) -> Result {
        if !self.subsystem_reset_supported() {
            return Err(ENOTTY);
        }
        let _guard = self.recovery.lock();
        self.reset_locked(set, reason, ResetKind::Subsystem)
    }

    /// [`IoShared::reset`] or [`IoShared::subsystem_reset`] (`kind`), with
    /// `recovery` held.
    fn reset_locked(&self, set: &TagSetRef<'_, IoShared>, reason: &str, kind: ResetKind) -> Result {
        match self.state() {
            State::Dead | State::Deleting => return Err(ENODEV),
            State::Suspended => return Err(EBUSY),
            State::Live | State::Resetting => {}
        }
        self.set_state(State::Resetting);
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
            self.resets.fetch_add(1, Ordering::Relaxed);
        }
        // Timeouts that saw the controller live before this reset began
        // asked for one: this was it.
        self.reason.store(Reason::None as u8, Ordering::Relaxed);
        result
    }

    /// Takes every request back from the controller and brings it up
    /// again on the same queues, then unquiesces the set: the requeued
    /// requests go out again, or fail if the controller could not be
    /// brought back and is now dead. `what` names the step in the log.
    /// The caller holds `recovery`.
    fn restart(
        &self,
        set: &TagSetRef<'_, IoShared>,
        quiesced: blk::Quiesced<'_>,
        what: &str,
    ) -> Result {
        let (dma, requeued) = self.take_back(set, &quiesced);
        let result = match dma {
            Some(dma) => {
                dma.resume();
                self.bring_back()
            }
            None => Err(EIO),
        };
        match result {
            Ok(()) => {
                self.set_state(State::Live);
                dev_info!(
                    &self.pdev,
                    "{what} done: {} I/O queues, {requeued} requests requeued\n",
                    self.queues.len()
                );
            }
            Err(_) => {
                // Whatever the controller does now, the queues are
                // stopped and the DMA off for good.
                let _ = self.regs.disable();
                let _ = self.pdev.stop_dma();
                self.set_state(State::Dead);
                dev_err!(
                    &self.pdev,
                    "{what} failed: controller is dead, failing its I/O\n"
                );
            }
        }
        drop(quiesced);
        result.map_err(|_| EIO)
    }

    /// The bring-up steps a reset repeats: the admin queue, enable, the
    /// number of queues and each I/O queue pair, on the same memory.
    fn bring_back(&self) -> Result {
        let admin = &self.restart.admin;
        admin.revive(&self.regs)?;
        // Injected: configure without EN, so RDY never comes.
        let cc = if self.restart.faults.inject(Fault::ResetFails) {
            self.restart.cc.disabled()
        } else {
            self.restart.cc
        };
        self.regs.enable(cc).inspect_err(|_| {
            dev_err!(
                &self.pdev,
                "controller did not become ready after the reset\n"
            );
        })?;
        let count = u16::try_from(self.queues.len())?;
        let granted = admin.set_queue_count(&self.regs, count)?;
        if granted < u32::from(count) {
            dev_err!(
                &self.pdev,
                "controller grants {granted} I/O queue pairs after the reset, {count} in use\n"
            );
            return Err(EIO);
        }
        // The reset cleared the controller's copy; without the buffers
        // the queues ring every doorbell.
        if let Some(shadow) = &self.restart.shadow {
            if admin.set_shadow_doorbells(&self.regs, shadow).is_err() {
                dev_warn!(
                    &self.pdev,
                    "continuing without shadow doorbells after the reset\n"
                );
            }
        }
        for queue in self.queues.iter() {
            queue.revive()?;
            admin.create_io_queue(&self.regs, queue)?;
        }
        // The reset dropped the outstanding event request.
        if self.events_on.load(Ordering::Acquire) && admin.request_event().is_err() {
            dev_warn!(
                &self.pdev,
                "no asynchronous event request after the reset\n"
            );
        }
        Ok(())
    }

    /// Deletes the I/O queues on the controller, stopping at the first
    /// failure (which was logged); returns how many were deleted. The
    /// controller must have no command outstanding on them.
    pub(crate) fn delete_queues(&self) -> usize {
        let admin = &self.restart.admin;
        self.queues
            .iter()
            .take_while(|queue| admin.delete_io_queue(&self.regs, queue).is_ok())
            .count()
    }

    /// Quiets the controller for system sleep or power-off (`what`): waits,
    /// up to the I/O timeout, for the requests it has; flushes the volatile
    /// write cache of each namespace in `flush`; deletes the I/O queues and
    /// shuts it down (CC.SHN normal, within `shutdown_ms`). The set stays
    /// quiesced until [`IoShared::resume`]: new requests wait. Requests the
    /// controller does not finish are taken back (it is disabled) and wait
    /// too. Logs one line with the outcome.
    pub(crate) fn suspend(
        &self,
        set: &TagSetRef<'_, IoShared>,
        flush: &[u32],
        shutdown_ms: u32,
        what: &str,
    ) {
        let mut held = self.recovery.lock();
        match self.state() {
            State::Live => {}
            State::Dead => {
                dev_info!(&self.pdev, "{what}: controller is dead, nothing to do\n");
                return;
            }
            State::Resetting | State::Deleting | State::Suspended => return,
        }
        let quiesced = set.quiesce();
        self.set_state(State::Suspended);
        let busy = self.drain(set);
        if busy > 0 {
            dev_warn!(
                &self.pdev,
                "{what}: {busy} requests still in flight after {} ms: disabling the controller\n",
                io_timeout_ms()
            );
            // The DMA stays off until the resume restarts the controller.
            let (_, requeued) = self.take_back(set, &quiesced);
            dev_info!(
                &self.pdev,
                "{what}: controller disabled, {requeued} requests requeued\n"
            );
        } else {
            let flushed = match flush {
                [] => "no volatile write cache",
                nsids => match nsids
                    .iter()
                    .try_for_each(|&nsid| self.internal_command(set, Command::flush(nsid)))
                {
                    Ok(()) => "write cache flushed",
                    Err(_) => "write cache flush FAILED",
                },
            };
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
        *held = Some(quiesced.hold());
    }

    /// Brings a suspended controller back with the steps of a reset and
    /// lets the requests that waited go out. One that cannot be brought
    /// back is marked dead: its I/O fails. Nothing to do if it was not
    /// suspended.
    pub(crate) fn resume(&self, set: &TagSetRef<'_, IoShared>) -> Result {
        let mut held = self.recovery.lock();
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
    fn drain(&self, set: &TagSetRef<'_, IoShared>) -> u32 {
        let deadline = Deadline::after_ms(io_timeout_ms());
        loop {
            let busy = set.busy();
            if busy == 0 || deadline.expired() {
                return busy;
            }
            msleep(1);
        }
    }

    /// Runs `cmd` on I/O queue 1 outside blk-mq and polls, up to the I/O
    /// timeout, for its completion. Only while the set is quiesced and
    /// the queue idle (suspend), so one such command runs at a time.
    fn internal_command(&self, set: &TagSetRef<'_, IoShared>, cmd: Command) -> Result {
        let timeout_ms = io_timeout_ms();
        match self.run_internal(set, cmd, timeout_ms) {
            Ok(status) if status.is_success() => Ok(()),
            Ok(status) => {
                dev_err!(
                    &self.pdev,
                    "command {:#04x} (nsid {}) failed: {status}\n",
                    cmd.opcode(),
                    cmd.nsid()
                );
                Err(EIO)
            }
            Err(e) => {
                if e == etimedout() {
                    dev_err!(
                        &self.pdev,
                        "command {:#04x} (nsid {}) timed out after {timeout_ms} ms\n",
                        cmd.opcode(),
                        cmd.nsid()
                    );
                }
                Err(e)
            }
        }
    }

    /// Runs an I/O command from user space on I/O queue 1, outside
    /// blk-mq, and returns its status; `EBUSY` if the queue is full. Only
    /// inside [`IoShared::exclusive`] (its token proves it), which keeps a
    /// second such command, a reset and a suspend out, and resets the
    /// controller if this times out (after `timeout_ms`).
    pub(crate) fn user_io_command(
        &self,
        _exclusive: &Exclusive,
        set: &TagSetRef<'_, IoShared>,
        cmd: Command,
        timeout_ms: u32,
    ) -> Result<NvmeStatus> {
        self.run_internal(set, cmd, timeout_ms)
    }

    /// Submits `cmd` with the internal command identifier on I/O queue 1
    /// and polls for its status for up to `timeout_ms`. One at a time:
    /// the callers hold `recovery`.
    fn run_internal(
        &self,
        set: &TagSetRef<'_, IoShared>,
        mut cmd: Command,
        timeout_ms: u32,
    ) -> Result<NvmeStatus> {
        let queue = self.queues.first().ok_or(ENODEV)?;
        self.internal.store(0, Ordering::Relaxed);
        cmd.set_cid(command_id(INTERNAL_TAG, 0));
        queue.submit(cmd, true)?;
        let deadline = Deadline::after_ms(timeout_ms);
        loop {
            queue.reap(|cqe| self.complete_entry(set, queue, 0, cqe, None));
            let done = self.internal.load(Ordering::Acquire);
            if done & INTERNAL_DONE != 0 {
                return Ok(NvmeStatus(done as u16));
            }
            if deadline.expired() {
                return Err(etimedout());
            }
            msleep(1);
        }
    }

    /// Stops the controller for good (it is gone, or a timeout came during
    /// teardown): I/O outstanding and to come fails.
    pub(crate) fn kill(&self, set: &TagSetRef<'_, IoShared>, why: &str) {
        let _guard = self.recovery.lock();
        if self.state() == State::Dead {
            return;
        }
        dev_err!(
            &self.pdev,
            "{why}: disabling the controller, failing its I/O\n"
        );
        self.set_state(State::Dead);
        let quiesced = set.quiesce();
        // The DMA stays off: the token is dropped without resuming.
        let _ = self.take_back(set, &quiesced);
    }

    /// Starts teardown: waits for a reset in progress, then allows no
    /// more. The disks can then be removed; their I/O still completes. A
    /// controller still suspended (shut down) will not come back: it is
    /// marked dead and the requests that waited fail.
    pub(crate) fn begin_teardown(&self, set: &TagSetRef<'_, IoShared>) {
        let mut held = self.recovery.lock();
        if let Some(quiesce) = held.take() {
            self.set_state(State::Dead);
            // Dropping the guard unquiesces: the waiting requests fail.
            drop(set.unhold(quiesce));
            return;
        }
        if self.state() != State::Dead {
            self.set_state(State::Deleting);
        }
    }

    /// Runs `f` (an admin command from user space) while the controller
    /// is live and no reset, suspend, resume or teardown runs. If `f`
    /// times out, the controller is reset before this returns, so the
    /// command can no longer touch memory the caller frees. `ENODEV` if
    /// the controller is dead or being removed, `EBUSY` while suspended.
    pub(crate) fn exclusive<R>(
        &self,
        set: &TagSetRef<'_, IoShared>,
        f: impl FnOnce(&Exclusive) -> Result<R>,
    ) -> Result<R> {
        let _guard = self.recovery.lock();
        match self.state() {
            State::Live => {}
            State::Suspended | State::Resetting => return Err(EBUSY),
            State::Dead | State::Deleting => return Err(ENODEV),
        }
        let result = f(&Exclusive(()));
        if matches!(&result, Err(e) if *e == etimedout()) {
            // A failed reset leaves the controller dead, its DMA off.
            let _ = self.reset_locked(
                set,
                "admin command from user space timed out",
                ResetKind::Controller,
            );
        }
        result
    }

    /// The controller's state as the C driver's sysfs `state` names it.
    pub(crate) fn state_name(&self) -> &'static str {
        match self.state() {
            State::Live => "live",
            State::Resetting => "resetting",
            State::Dead => "dead",
            State::Deleting => "deleting",
            State::Suspended => "suspended",
        }
    }

    /// Asks the work item to reset the controller for `reason`.
    fn schedule_reset(&self, set: &TagSetRef<'_, IoShared>, reason: Reason) {
        self.reason.store(reason as u8, Ordering::Relaxed);
        set.schedule_work();
    }

    /// Builds the NVMe command for `rq`, mapping its data for DMA.
    fn build(
        &self,
        ns: &Namespace,
        rq: &mut Request<Self>,
    ) -> core::result::Result<Command, BlkStatus> {
        let shift = ns.lba_shift;
        let slba = rq.sector() >> (shift - 9);
        let blocks = rq.bytes() >> shift;
        match rq.op() {
            Op::Flush => Ok(Command::flush(ns.nsid)),
            Op::Read | Op::Write => {
                let write = rq.op() == Op::Write;
                let mut cmd = if write {
                    Command::write(ns.nsid, slba, blocks, rq.fua())
                } else {
                    Command::read(ns.nsid, slba, blocks, rq.fua())
                }
                .ok_or(BlkStatus::IoError)?;
                let (prp1, prp2) = self.map_data(rq)?;
                cmd.set_prps(prp1, prp2);
                Ok(cmd)
            }
            Op::WriteZeroes => {
                Command::write_zeroes(ns.nsid, slba, blocks).ok_or(BlkStatus::IoError)
            }
            Op::Discard => {
                let mut page = self.pool.alloc_atomic().ok_or(BlkStatus::Resource)?;
                let max = rq.max_discard_segments();
                let count = if max <= 1 {
                    // One range for the whole request, which blk-mq may
                    // have merged from adjacent bios.
                    limits::fill_dsm_ranges(page.words_mut(), [(slba, blocks)], 1)
                } else {
                    // One range per bio, as blk-mq merged them.
                    let ranges = rq
                        .bio_ranges()
                        .map(|(sector, bytes)| (sector >> (shift - 9), bytes >> shift));
                    limits::fill_dsm_ranges(page.words_mut(), ranges, max)
                };
                let count = count.ok_or_else(|| {
                    dev_err!(
                        &self.pdev,
                        "discard of {} bios does not fit {max} ranges\n",
                        rq.bio_ranges().count()
                    );
                    BlkStatus::IoError
                })?;
                let cmd = Command::dsm_deallocate(ns.nsid, count, page.dma_handle())
                    .ok_or(BlkStatus::IoError)?;
                rq.pdu().page = Some(page);
                Ok(cmd)
            }
            Op::Other => Err(BlkStatus::NotSupported),
        }
    }

    /// DMA-maps `rq`'s data and returns PRP1 and PRP2.
    fn map_data(&self, rq: &mut Request<Self>) -> core::result::Result<(u64, u64), BlkStatus> {
        // Out of mapping space (bounce buffers) for now: blk-mq retries
        // later. A request the mapping rejects would fail every time.
        rq.dma_map(&self.pdev).map_err(|e| {
            if e == ENOMEM {
                BlkStatus::Resource
            } else {
                dev_err!(&self.pdev, "cannot map a request for DMA: {e:?}\n");
                BlkStatus::IoError
            }
        })?;
        // Most requests fit in PRP1 and PRP2; only longer ones need a list.
        match prp::build(rq.dma_segments().map(segment), self.page_size, &mut []) {
            Ok(prps) => return Ok((prps.prp1, prps.prp2_value(0))),
            Err(PrpError::TooLong) => {}
            Err(e) => {
                dev_err!(&self.pdev, "cannot describe a request with PRPs: {e}\n");
                return Err(BlkStatus::IoError);
            }
        }
        let mut page = self.pool.alloc_atomic().ok_or(BlkStatus::Resource)?;
        let prps = prp::build(
            rq.dma_segments().map(segment),
            self.page_size,
            page.words_mut(),
        )
        .map_err(|e| {
            dev_err!(&self.pdev, "cannot describe a request with PRPs: {e}\n");
            BlkStatus::IoError
        })?;
        let prp2 = prps.prp2_value(page.dma_handle());
        rq.pdu().page = Some(page);
        Ok((prps.prp1, prp2))
    }

    /// Ends `rq`, whose completion was claimed: releases what it held, then
    /// ends it (a success as part of `batch`, if given), sends it again or
    /// fails it.
    fn finish(&self, mut rq: Request<Self>, batch: Option<&mut CompletionBatch<'_>>) {
        self.release(&mut rq);
        let raw = rq.pdu().status;
        let status = NvmeStatus(raw);
        if status.is_success() {
            match batch {
                Some(batch) => rq.end_ok_in(batch),
                None => rq.end(BlkStatus::Ok),
            }
            return;
        }
        // As the C driver: anything but Do Not Retry is worth another try
        // (requests cancelled by a reset too), a few times, unless the
        // submitter wants no retries or the controller is dead.
        let retries = rq.pdu().retries;
        if !status.do_not_retry()
            && !rq.no_retry()
            && retries < param::max_retries()
            && !self.dead()
        {
            rq.pdu().retries = retries + 1;
            self.retried.fetch_add(1, Ordering::Relaxed);
            rq.requeue();
            return;
        }
        self.failed.fetch_add(1, Ordering::Relaxed);
        rq.end(blk_status(raw));
    }

    /// Releases what a request held while in flight.
    fn release(&self, rq: &mut Request<Self>) {
        rq.dma_unmap(&self.pdev);
        rq.pdu().page = None;
    }
}

/// A mapped segment as [`prp::build`] takes it.
fn segment((addr, len): (u64, u32)) -> Segment {
    Segment { addr, len }
}

/// The block-layer status for an NVMe completion status.
fn blk_status(raw: u16) -> BlkStatus {
    match NvmeStatus(raw).kind() {
        StatusKind::Success => BlkStatus::Ok,
        StatusKind::InvalidOpcode | StatusKind::InvalidField | StatusKind::InvalidNamespace => {
            BlkStatus::NotSupported
        }
        StatusKind::LbaOutOfRange => BlkStatus::Target,
        StatusKind::CapacityExceeded => BlkStatus::NoSpace,
        StatusKind::WriteFault | StatusKind::UnrecoveredReadError => BlkStatus::Medium,
        StatusKind::AccessDenied => BlkStatus::Protection,
        _ => BlkStatus::IoError,
    }
}

impl Operations for IoShared {
    type Queue = QueuePair;
    type Disk = NsDisk;
    type Pdu = IoPdu;

    fn new_pdu() -> IoPdu {
        IoPdu {
            page: None,
            status: 0,
            retries: 0,
        }
    }

    fn queue(&self, index: u32) -> Option<&QueuePair> {
        self.queues.get(index as usize).map(|q| &**q)
    }

    fn irq_affinity(&self) -> Option<(&PciDevice, u32)> {
        self.affinity_offset.map(|offset| (&self.pdev, offset))
    }

    fn queue_rq(&self, queue: &QueuePair, rq: &mut Request<Self>, last: bool) -> BlkStatus {
        let Some(disk) = rq.disk() else {
            return BlkStatus::IoError;
        };
        let ns = *disk.namespace();
        // Refused before it starts: nothing else may end it then.
        if self.dead() {
            self.failed.fetch_add(1, Ordering::Relaxed);
            return BlkStatus::IoError;
        }
        if rq.first_dispatch() {
            rq.pdu().retries = 0;
        }
        let mut cmd = match self.build(&ns, rq) {
            Ok(cmd) => cmd,
            Err(status) => {
                self.release(rq);
                return status;
            }
        };
        rq.pdu().status = 0;
        let sequence = rq.start();
        cmd.set_cid(command_id(rq.tag(), sequence));
        match queue.submit(cmd, last) {
            Ok(()) => BlkStatus::Ok,
            // Whoever claimed it (a cancel) ends it; blk-mq must not.
            Err(_) if !rq.claim() => BlkStatus::Ok,
            Err(e) => {
                self.release(rq);
                // A full queue frees up as commands complete: try again.
                if e == EBUSY {
                    BlkStatus::Resource
                } else {
                    BlkStatus::IoError
                }
            }
        }
    }

    fn commit_rqs(&self, queue: &QueuePair) {
        queue.commit();
    }

    fn complete(&self, rq: Request<Self>) {
        self.finish(rq, None);
    }

    fn timeout(&self, rq: &TimedOut<'_, Self>, set: &TagSetRef<'_, Self>) -> TimeoutAction {
        let index = rq.queue_index();
        let Some(queue) = self.queues.get(index as usize) else {
            return TimeoutAction::ResetTimer;
        };
        let qid = queue.qid();
        let cid = command_id(rq.tag(), rq.sequence());
        match self.state() {
            // The reset in progress takes the request back; so does the
            // suspend that waits for it, or the resume after it.
            State::Resetting | State::Suspended => return TimeoutAction::ResetTimer,
            State::Dead | State::Deleting => {
                self.kill(set, "I/O timeout while the controller is going away");
                return TimeoutAction::Done;
            }
            State::Live => {}
        }
        let (sector, bytes) = rq.range();
        dev_warn!(
            &self.pdev,
            "I/O timeout: queue {qid} command id {cid:#x}, {bytes} bytes at sector {sector}\n"
        );
        // A lost interrupt: the completion is there already.
        queue.reap(|cqe| self.complete_entry(set, queue, index, cqe, None));
        if rq.completed() {
            dev_warn!(
                &self.pdev,
                "I/O timeout: completion found by polling (missed interrupt)\n"
            );
            return TimeoutAction::Done;
        }
        if !self.pdev.is_present() {
            self.kill(set, "controller is gone");
            return TimeoutAction::Done;
        }
        let broken = match self.regs.csts() {
            Ok(csts) if csts.fatal() => Some(Reason::Fatal),
            // The subsystem was reset (through another of its controllers,
            // say): this controller lost its queues, and aborting helps
            // nothing. Linux's C driver resets it too.
            Ok(csts) if self.subsystem_reset_supported() && csts.subsystem_reset_occurred() => {
                Some(Reason::SubsystemReset)
            }
            Ok(_) => None,
            Err(_) => Some(Reason::Fatal),
        };
        if let Some(reason) = broken {
            self.schedule_reset(set, reason);
            return TimeoutAction::ResetTimer;
        }
        if rq.count() == 0 {
            dev_warn!(
                &self.pdev,
                "I/O timeout: aborting queue {qid} command id {cid:#x}\n"
            );
            if self.restart.admin.abort(qid, cid).is_ok() {
                return TimeoutAction::ResetTimer;
            }
        }
        dev_warn!(
            &self.pdev,
            "I/O timeout after abort: resetting the controller\n"
        );
        self.schedule_reset(set, Reason::Timeout);
        TimeoutAction::ResetTimer
    }

    fn poll(
        &self,
        queue: &QueuePair,
        index: u32,
        set: &TagSetRef<'_, Self>,
        batch: &mut CompletionBatch<'_>,
    ) -> u32 {
        queue.reap(|cqe| self.complete_entry(set, queue, index, cqe, Some(&mut *batch)))
    }

    fn work(&self, set: &TagSetRef<'_, Self>) {
        {
            let _guard = self.recovery.lock();
            // No reason left: a reset since the request did the job.
            let reason = Reason::from_u8(self.reason.swap(Reason::None as u8, Ordering::Relaxed));
            if self.state() == State::Live && !matches!(reason, Reason::None) {
                // A failure was logged and marked the controller dead.
                let _ = self.reset_locked(set, reason.describe(), ResetKind::Controller);
            }
        }
    }

    fn event_work(&self, set: &TagSetRef<'_, Self>) {
        self.handle_events(set);
    }
}

impl IoShared {
    /// Handles the asynchronous events the admin queue kept: reads the log
    /// page each names (which clears it, so the controller reports the
    /// next), logs SMART / Health critical warnings, rescans the
    /// namespaces on Namespace Attribute Changed; then requests the next
    /// event. Runs in the event work item, apart from the reset work: a
    /// rescan adds and removes disks, which waits for I/O that may need a
    /// reset.
    fn handle_events(&self, set: &TagSetRef<'_, Self>) {
        let admin = &self.restart.admin;
        while let Some(result) = admin.take_event() {
            let event = Event(result);
            let len = match event.kind() {
                EventKind::NamespaceChanged => 4096,
                _ => 512,
            };
            let page = self.read_log(set, event.log_page(), len);
            match event.kind() {
                EventKind::Health => {
                    let warning = page.as_ref().ok().and_then(|p| p.first().copied());
                    match warning {
                        Some(bits) => dev_warn!(
                            &self.pdev,
                            "SMART/health critical warning {}\n",
                            CriticalWarning(bits)
                        ),
                        None => dev_warn!(
                            &self.pdev,
                            "SMART/health event ({event}), log page unreadable\n"
                        ),
                    }
                }
                EventKind::NamespaceChanged => {
                    dev_info!(&self.pdev, "namespace attributes changed: rescanning\n");
                    let namespaces = self.scan.lock().clone();
                    if let Some(namespaces) = namespaces {
                        if let Err(e) = namespaces.rescan() {
                            dev_warn!(&self.pdev, "rescan failed: {e:?}\n");
                        }
                    }
                }
                EventKind::Other => dev_info!(&self.pdev, "asynchronous event: {event}\n"),
            }
        }
        if self.events_on.load(Ordering::Acquire) {
            // Not while resetting: the reset requests one when done.
            let _ = self.exclusive(set, |_| admin.request_event());
        }
    }

    /// Tells the controller which events to report (Set Features,
    /// Asynchronous Event Configuration) and requests the first. With
    /// `recovery` held, or inside [`IoShared::exclusive`].
    fn arm_events(&self) -> Result {
        let admin = &self.restart.admin;
        let config = self.event_config.load(Ordering::Relaxed);
        let cmd = Command::set_features_async_events(config);
        admin.command(
            &self.regs,
            cmd,
            "Set Features (Asynchronous Event Configuration)",
        )?;
        admin.request_event()
    }

    /// Reads `len` bytes of log page `lid` (clearing the event it
    /// reports), as a passthrough command runs.
    fn read_log(&self, set: &TagSetRef<'_, Self>, lid: u8, len: u32) -> Result<KVec<u8>> {
        let buf = CoherentArray::<u8>::zeroed(&self.pdev, len as usize)?;
        let cmd = Command::get_log_page(lid, len, buf.dma_handle()).ok_or(EINVAL)?;
        let admin = &self.restart.admin;
        let cqe = self.exclusive(set, |_| admin.submit_and_wait(cmd))?;
        if !cqe.status().is_success() {
            dev_warn!(
                &self.pdev,
                "Get Log Page {lid:#04x} failed: {}\n",
                cqe.status()
            );
            return Err(EIO);
        }
        let mut page = KVec::from_elem(0u8, len as usize, GFP_KERNEL)?;
        buf.read_into(&mut page)?;
        Ok(page)
    }
}

/// While it lives, the controller keeps an Asynchronous Event Request
/// outstanding and its events are handled ([`IoShared::handle_events`]),
/// with `namespaces` rescanned on Namespace Attribute Changed. Dropped
/// first on remove: no rescan starts afterwards, and the references the
/// admin queue and the tag set's data held are given back.
pub(crate) struct EventHandling {
    set: Arc<TagSet<IoShared>>,
    sink: Option<EventSink>,
}

impl EventHandling {
    /// Starts handling `set`'s controller's events: those `config` (the
    /// Asynchronous Event Configuration) enables; requests the first.
    pub(crate) fn start(
        set: &Arc<TagSet<IoShared>>,
        namespaces: Arc<Namespaces>,
        config: u32,
    ) -> Self {
        let shared = set.data();
        let admin = &shared.restart.admin;
        *shared.scan.lock() = Some(namespaces);
        let sink = EventSink::new(admin, set.clone());
        shared.event_config.store(config, Ordering::Relaxed);
        shared.events_on.store(true, Ordering::Release);
        if shared
            .exclusive(&set.borrowed(), |_| shared.arm_events())
            .is_err()
        {
            dev_warn!(&shared.pdev, "no asynchronous events\n");
        }
        Self {
            set: set.clone(),
            sink: Some(sink),
        }
    }
}

impl Drop for EventHandling {
    /// Stops the event handling: an event no longer schedules the work,
    /// the work requests no more events, and once the work in progress (a
    /// rescan, say) is done, it no longer holds the namespaces. Never runs
    /// in the event work (remove and a failed probe drop it).
    fn drop(&mut self) {
        drop(self.sink.take());
        let shared = self.set.data();
        shared.events_on.store(false, Ordering::Release);
        self.set.cancel_event_work();
        let namespaces = shared.scan.lock().take();
        drop(namespaces);
    }
}

/// The interrupt handler of one I/O queue.
pub(crate) struct QueueIrq {
    pub(crate) set: Arc<TagSet<IoShared>>,
    pub(crate) index: u32,
}

impl IrqHandler for QueueIrq {
    fn handle_irq(&self) -> IrqReturn {
        let shared = self.set.data();
        let Some(queue) = shared.queues.get(self.index as usize) else {
            return IrqReturn::None;
        };
        let set = self.set.borrowed();
        // Requests that succeeded are ended together once the queue is
        // reaped, outside its lock.
        let mut batch = CompletionBatch::new();
        let reaped =
            queue.reap(|cqe| shared.complete_entry(&set, queue, self.index, cqe, Some(&mut batch)));
        drop(batch);
        if reaped > 0 {
            IrqReturn::Handled
        } else {
            IrqReturn::None
        }
    }
}

/// Cancels a request: records that the host aborted it, for `complete`.
fn mark_host_aborted(pdu: &mut IoPdu) {
    pdu.status = NvmeStatus::HOST_ABORTED.0;
}

pub(crate) use blk::Limits;
