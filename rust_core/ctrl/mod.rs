// SPDX-License-Identifier: GPL-2.0

//! The controller behind its I/O tag set: what decides, for a controller
//! that is up, what may happen to it now. The tag set's driver data
//! ([`Ctrl`]) holds the request path below it ([`crate::io`]) and, each
//! concern in a file and a type of its own, recovery (`reset.rs`: resets,
//! the end of a controller, the gate [`Recovery`] that lets one of them
//! run at a time), power (`power.rs`: suspend and resume) and
//! asynchronous events (`events.rs`, [`events::Events`]). Every step asks
//! the state machine ([`crate::state`]) first.
//!
//! A timed-out request is polled for, then aborted, then the controller
//! is reset, as Linux's C driver does; requests caught by a reset are
//! requeued and retried.

#![deny(unsafe_code)]

pub(crate) mod events;
mod power;
mod reset;

use crate::admin::AdminQueue;
use crate::fault::Faults;
use crate::io::{uring_outcome, IoPdu, IoSet, RequestPath};
use crate::ns::NsDisk;
use crate::queue::{QueuePair, ShadowDoorbells};
use crate::registers::Registers;
use crate::spec::command::{command_id, Command};
use crate::spec::completion::Completion;
use crate::spec::regs::Cc;
use crate::state::{State, StateMachine};
use crate::sys::blk::{
    BlkStatus, CompletionBatch, HeldQuiesce, Operations, Request, Requests, TagSetRef, TimedOut,
    TimeoutAction,
};
use crate::sys::pci::PciDevice;
use crate::sys::print::{dev_err, dev_warn};
use crate::sys::uring::{Queued, UringCmd, UringOutcome};
use core::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use events::Events;
use kernel::alloc::{flags::GFP_KERNEL, KVec};
use kernel::error::{code::EINVAL, Result};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};

pub(crate) use crate::admin::UserData;
pub(crate) use power::CacheFlush;

/// Why a reset was asked for, kept until the reset work runs.
#[derive(Clone, Copy)]
#[repr(u8)]
enum Reason {
    None = 0,
    Timeout = 1,
    Fatal = 2,
    SubsystemReset = 3,
    AdminTimeout = 4,
}

impl Reason {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Timeout,
            2 => Self::Fatal,
            3 => Self::SubsystemReset,
            4 => Self::AdminTimeout,
            _ => Self::None,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::None => "requested",
            Self::Timeout => "I/O timeout",
            Self::Fatal => "controller fatal status",
            Self::SubsystemReset => "NVM subsystem reset occurred (CSTS.NSSRO)",
            Self::AdminTimeout => "admin command timeout",
        }
    }
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

/// Held by the closure [`Ctrl::exclusive`] runs: what the commands that
/// must not overlap a reset, a suspend or each other require. Only
/// `exclusive` makes one.
pub(crate) struct Exclusive(());

/// The gate of recovery: one reset, suspend, resume or teardown at a
/// time, the state machine they move, and the reset the timeouts asked
/// for.
///
/// A timeout that asks for a reset may have seen the controller live
/// just before a reset (or a suspend) began, and ask only once it is
/// over; the C driver waits for timeout handlers in each reset
/// (`nvme_sync_queues`). Here each request carries the epoch it was made
/// in, the number of restarts begun before, and the reset work drops one
/// from an earlier epoch: the restart since did what it asked.
#[pin_data]
struct Recovery {
    /// Where the controller stands ([`crate::state`]), shared with the
    /// admin queue and the request path; changed only with `lock` held.
    state: Arc<StateMachine>,
    /// The reset the work item is to do: its [`Reason`] in the low byte,
    /// the epoch it was asked in above.
    asked: AtomicU64,
    /// Restarts (resets and resumes) begun; read before the state by a
    /// timeout, raised with `lock` held once the state left `live`.
    epoch: AtomicU32,
    /// Held while the controller is reset, suspended, resumed or torn
    /// down, so only one of them runs at a time; holds the tag set's
    /// quiesce from suspend to resume.
    #[pin]
    lock: Mutex<Option<HeldQuiesce>>,
    /// Resets done.
    resets: AtomicU32,
}

impl Recovery {
    fn new(state: Arc<StateMachine>) -> impl PinInit<Self> {
        pin_init!(Self {
            state,
            asked: AtomicU64::new(Reason::None as u64),
            epoch: AtomicU32::new(0),
            lock <- new_mutex!(None, "rsnvme_recovery"),
            resets: AtomicU32::new(0),
        })
    }

    fn state(&self) -> State {
        self.state.get()
    }

    /// The current epoch, read before the state it asks about.
    fn epoch(&self) -> u32 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Starts a new epoch: a restart begins. The caller holds `lock` and
    /// moved the state away from `live`.
    fn next_epoch(&self) {
        self.epoch.fetch_add(1, Ordering::SeqCst);
    }

    /// Asks for a reset for `reason`, seen in epoch `epoch`.
    fn ask(&self, reason: Reason, epoch: u32) {
        self.asked
            .store(u64::from(epoch) << 8 | reason as u64, Ordering::SeqCst);
    }

    /// Takes the reset asked for in the current epoch, leaving none; one
    /// asked for in an earlier epoch is dropped.
    fn take_reason(&self) -> Reason {
        let asked = self.asked.swap(Reason::None as u64, Ordering::SeqCst);
        if asked >> 8 != u64::from(self.epoch()) {
            return Reason::None;
        }
        Reason::from_u8(asked as u8)
    }
}

/// A controller that is up, as its I/O tag set's callbacks see it: the
/// tag set's driver data.
#[pin_data]
pub(crate) struct Ctrl {
    pdev: PciDevice,
    regs: Arc<Registers>,
    /// The I/O queues and the requests on them.
    path: RequestPath,
    /// What a reset or resume brings the controller back with.
    restart: Restart,
    #[pin]
    recovery: Recovery,
    #[pin]
    events: Events,
}

impl Ctrl {
    /// The controller behind `regs` with the I/O queues `queues`, in
    /// state `state` (being probed).
    pub(crate) fn new(
        regs: Arc<Registers>,
        queues: KVec<Arc<QueuePair>>,
        page_size: u32,
        affinity_offset: Option<u32>,
        restart: Restart,
        state: Arc<StateMachine>,
    ) -> Result<Arc<Self>> {
        let pdev = regs.pdev().clone();
        let path = RequestPath::new(
            &pdev,
            queues,
            page_size,
            affinity_offset,
            state.clone(),
            restart.faults,
        )?;
        Arc::pin_init(
            pin_init!(Self {
                pdev,
                regs,
                path,
                restart,
                recovery <- Recovery::new(state),
                events <- Events::new(),
            }),
            GFP_KERNEL,
        )
    }

    fn state(&self) -> State {
        self.recovery.state()
    }

    /// Declares the controller live once probe brought its I/O queues up
    /// (the C driver's `nvme_start_ctrl`): from here on timeouts abort
    /// and reset. `EINVAL` if it was not being probed.
    pub(crate) fn start(&self) -> Result {
        let _guard = self.recovery.lock.lock();
        self.recovery
            .state
            .change(State::Live)
            .map(|_| ())
            .map_err(|refused| {
                dev_err!(&self.pdev, "cannot start the controller: {refused}\n");
                EINVAL
            })
    }

    /// Whether the controller is dead: its queues are stopped for good.
    pub(crate) fn dead(&self) -> bool {
        self.state() == State::Dead
    }

    /// Whether requests sent now will be served, if only after a reset in
    /// progress: the controller is neither suspended nor going away.
    pub(crate) fn serves_requests(&self) -> bool {
        matches!(
            self.state(),
            State::Live | State::Resetting | State::Connecting
        )
    }

    /// The controller's state as the C driver's sysfs `state` names it.
    pub(crate) fn state_name(&self) -> &'static str {
        self.state().name()
    }

    /// Resets done, requests retried and requests failed so far.
    pub(crate) fn counts(&self) -> (u32, u32, u32) {
        let (retried, failed) = self.path.counts();
        (
            self.recovery.resets.load(Ordering::Relaxed),
            retried,
            failed,
        )
    }

    /// The I/O queues, for creating and deleting them.
    pub(crate) fn queues(&self) -> &[Arc<QueuePair>] {
        self.path.queues()
    }

    /// Sends I/O command `cmd` from user space on a disk's queue
    /// (`requests`) and waits for it ([`RequestPath::user_command`],
    /// which refuses it with `ENODEV` once the controller is dead).
    pub(crate) fn user_command(
        &self,
        requests: Requests<'_, Self>,
        cmd: Command,
        data: Option<UserData>,
        timeout_ms: u32,
    ) -> Result<Completion> {
        self.path.user_command(requests, cmd, data, timeout_ms)
    }

    /// Sends I/O command `cmd` from io_uring command `uring` on a disk's
    /// queue (`requests`) without waiting
    /// ([`RequestPath::uring_command`], which refuses it with `ENODEV`
    /// once the controller is dead).
    pub(crate) fn uring_command(
        &self,
        requests: Requests<'_, Self>,
        cmd: Command,
        data: Option<UserData>,
        vectored: bool,
        timeout_ms: u32,
        uring: UringCmd<'_>,
    ) -> Result<Queued> {
        self.path
            .uring_command(requests, cmd, data, vectored, timeout_ms, uring)
    }

    /// Asks the work item to reset the controller for `reason`, seen in
    /// recovery epoch `epoch` (read before the state that led here).
    fn schedule_reset(&self, set: &TagSetRef<'_, Self>, reason: Reason, epoch: u32) {
        self.recovery.ask(reason, epoch);
        set.schedule_work();
    }

    /// What a timeout on a live controller leads to, once polling did not
    /// find the completion: a reset if the controller is broken or the
    /// request was aborted already, an Abort otherwise; the end of a
    /// controller that is gone, whose requests fail.
    fn recover(
        &self,
        rq: &TimedOut<'_, Self>,
        set: &TagSetRef<'_, Self>,
        qid: u16,
        cid: u16,
        epoch: u32,
    ) -> TimeoutAction {
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
            self.schedule_reset(set, reason, epoch);
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
        self.schedule_reset(set, Reason::Timeout, epoch);
        TimeoutAction::ResetTimer
    }
}

impl UringOutcome for Ctrl {
    fn outcome(pdu: &mut IoPdu, status: BlkStatus) -> (i32, u64) {
        uring_outcome(pdu, status)
    }
}

impl IoSet for Ctrl {
    fn path(&self) -> &RequestPath {
        &self.path
    }
}

impl Operations for Ctrl {
    type Queue = QueuePair;
    type Disk = NsDisk;
    type Pdu = IoPdu;

    fn new_pdu() -> IoPdu {
        IoPdu::new()
    }

    fn queue(&self, index: u32) -> Option<&QueuePair> {
        self.path.queue(index)
    }

    fn irq_affinity(&self) -> Option<(&PciDevice, u32)> {
        self.path.irq_affinity()
    }

    fn queue_rq(&self, queue: &QueuePair, rq: &mut Request<Self>, last: bool) -> BlkStatus {
        // Refused before it starts: nothing else may end it then.
        if self.dead() {
            self.path.count_failed();
            return BlkStatus::IoError;
        }
        self.path.queue_rq(queue, rq, last)
    }

    fn commit_rqs(&self, queue: &QueuePair) {
        queue.commit();
    }

    fn complete(&self, rq: Request<Self>) {
        self.path.finish(rq, None);
    }

    fn timeout(&self, rq: &TimedOut<'_, Self>, set: &TagSetRef<'_, Self>) -> TimeoutAction {
        let index = rq.queue_index();
        let Some(queue) = self.path.queue(index) else {
            return TimeoutAction::ResetTimer;
        };
        let qid = queue.qid();
        let cid = command_id(rq.tag(), rq.sequence());
        // Before the state: a reset asked for from here is dropped if a
        // restart began meanwhile.
        let epoch = self.recovery.epoch();
        match self.state() {
            // The reset in progress takes the request back; so does the
            // suspend that waits for it, or the resume after it.
            State::New | State::Resetting | State::Connecting | State::Suspended => {
                return TimeoutAction::ResetTimer
            }
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
        self.path.reap(set, index, None);
        if rq.completed() {
            dev_warn!(
                &self.pdev,
                "I/O timeout: completion found by polling (missed interrupt)\n"
            );
            return TimeoutAction::Done;
        }
        self.recover(rq, set, qid, cid, epoch)
    }

    fn poll(
        &self,
        _queue: &QueuePair,
        index: u32,
        set: &TagSetRef<'_, Self>,
        batch: &mut CompletionBatch<'_>,
    ) -> u32 {
        self.path.reap(set, index, Some(batch))
    }

    fn work(&self, set: &TagSetRef<'_, Self>) {
        let _guard = self.recovery.lock.lock();
        // No reason left: a reset since the request did the job.
        let reason = self.recovery.take_reason();
        if self.state() == State::Live && !matches!(reason, Reason::None) {
            // A failure was logged and marked the controller dead.
            let _ = self.reset_locked(set, reason.describe(), reset::ResetKind::Controller);
        }
    }

    fn event_work(&self, _set: &TagSetRef<'_, Self>) {
        self.handle_events();
    }
}
