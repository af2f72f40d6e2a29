// SPDX-License-Identifier: GPL-2.0

//! The blk-mq driver on top of the I/O queue pairs: NVMe commands built
//! from block requests, PRPs for their data, completion by interrupt, and
//! the timeout handler (NVM Command Set Specification 1.0): a timed-out
//! command is polled for, then aborted, then the controller is reset, as
//! Linux's C driver does; requests caught by a reset are requeued and
//! retried.
//!
//! The rest of the I/O path's work lives beside it, each concern in a
//! file of its own: `recovery.rs` (resets, the end of a controller, the
//! commands that must not overlap them), `power.rs` (suspend and resume)
//! and `events.rs` (asynchronous events). Whether any of it may happen now
//! is the state machine's call ([`crate::state`]).

#![deny(unsafe_code)]

pub(crate) mod events;
mod power;
mod recovery;
mod uring;

use crate::admin::{run_request, AdminQueue, UserData};
use crate::data::{map_prps, send};
use crate::fault::{Fault, Faults};
use crate::ns::{Namespace, NamespaceSet, NsDisk};
use crate::queue::{QueuePair, ShadowDoorbells};
use crate::registers::Registers;
use crate::spec::command::{command_id, split_command_id, Command, TAG_BITS};
use crate::spec::completion::{Completion, Status as NvmeStatus, StatusKind};
use crate::spec::limits;
use crate::spec::regs::Cc;
use crate::state::{State, StateMachine};
use crate::sys::blk::{
    BlkStatus, CompletionBatch, HeldQuiesce, Op, Operations, Request, Requests, TagSet, TagSetRef,
    TimedOut, TimeoutAction,
};
use crate::sys::dmapool::{DmaPool, PoolBlock};
use crate::sys::irq::{IrqHandler, IrqReturn};
use crate::sys::param;
use crate::sys::pci::PciDevice;
use crate::sys::print::{dev_err, dev_warn};
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};
use kernel::alloc::{flags::GFP_KERNEL, KVec};
use kernel::error::{
    code::{EINVAL, ENODEV},
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
    /// The command of a driver-private request (passthrough).
    cmd: Command,
    /// The completion's DW0 and DW1, for a driver-private request.
    result: (u32, u32),
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
    /// Where the controller stands ([`crate::state`]), shared with the
    /// admin queue; changed only with `recovery` held.
    state: Arc<StateMachine>,
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
    scan: Mutex<Option<Arc<dyn NamespaceSet>>>,
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
        state: Arc<StateMachine>,
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
                state,
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
        self.state.get()
    }

    /// Declares the controller live once probe brought its I/O queues up
    /// (the C driver's `nvme_start_ctrl`): from here on timeouts abort
    /// and reset. `EINVAL` if it was not being probed.
    pub(crate) fn start(&self) -> Result {
        let _guard = self.recovery.lock();
        self.state
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
        let result = (cqe.result(), cqe.dw1());
        match rq.complete_here(|pdu| {
            pdu.status = status;
            pdu.result = result;
        }) {
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

    /// Sends I/O command `cmd` from user space as a driver-private request
    /// of a disk's queue (`requests`), with `data` mapped from user
    /// memory, and waits for it: completed by the controller, or taken
    /// back by a reset (a host-aborted status). After `timeout_ms` (0:
    /// the I/O timeout) it is aborted and the controller reset, as for
    /// any I/O; no lock is held meanwhile.
    pub(crate) fn user_command(
        &self,
        requests: Requests<'_, Self>,
        cmd: Command,
        data: Option<UserData>,
        timeout_ms: u32,
    ) -> Result<Completion> {
        if self.dead() {
            return Err(ENODEV);
        }
        run_request(
            requests,
            data,
            timeout_ms,
            |pdu: &mut IoPdu| {
                pdu.cmd = cmd;
                pdu.page = None;
            },
            |pdu| Completion::with_result(NvmeStatus(pdu.status), pdu.result.0, pdu.result.1),
        )
    }

    /// The controller's state as the C driver's sysfs `state` names it.
    pub(crate) fn state_name(&self) -> &'static str {
        self.state().name()
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
            Op::DrvIn | Op::DrvOut => {
                let mut cmd = rq.pdu().cmd;
                if cmd.nsid() != ns.nsid {
                    return Err(BlkStatus::IoError);
                }
                if rq.bytes() > 0 {
                    let (prp1, prp2) = self.map_data(rq)?;
                    cmd.set_prps(prp1, prp2);
                }
                Ok(cmd)
            }
            Op::Other => Err(BlkStatus::NotSupported),
        }
    }

    /// DMA-maps `rq`'s data and returns PRP1 and PRP2.
    fn map_data(&self, rq: &mut Request<Self>) -> core::result::Result<(u64, u64), BlkStatus> {
        let prps = map_prps(rq, &self.pdev, &self.pool, self.page_size)?;
        rq.pdu().page = prps.list;
        Ok((prps.prp1, prps.prp2))
    }

    /// Ends `rq`, whose completion was claimed: releases what it held, then
    /// ends it (a success as part of `batch`, if given), sends it again or
    /// fails it.
    fn finish(&self, mut rq: Request<Self>, batch: Option<&mut CompletionBatch<'_>>) {
        self.release(&mut rq);
        let raw = rq.pdu().status;
        let status = NvmeStatus(raw);
        if matches!(rq.op(), Op::DrvIn | Op::DrvOut) {
            // A command from user space: the outcome is in the pdu, for
            // the one who waits; it is not retried.
            rq.end(BlkStatus::Ok);
            return;
        }
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
            cmd: Command::default(),
            result: (0, 0),
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
        let cmd = match self.build(&ns, rq) {
            Ok(cmd) => cmd,
            Err(status) => {
                self.release(rq);
                return status;
            }
        };
        rq.pdu().status = 0;
        let lost = (self.restart.faults.inject(Fault::UserCommandLost)
            && matches!(rq.op(), Op::DrvIn | Op::DrvOut))
        .then_some("I/O");
        send(&self.pdev, queue, rq, cmd, last, lost, |rq| {
            self.release(rq)
        })
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

    fn event_work(&self, _set: &TagSetRef<'_, Self>) {
        self.handle_events();
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
