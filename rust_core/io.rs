// SPDX-License-Identifier: GPL-2.0

//! The blk-mq driver on top of the I/O queue pairs: NVMe commands built
//! from block requests, PRPs for their data, completion by interrupt, and
//! error recovery (NVM Command Set Specification 1.0): a timed-out command
//! is polled for, then aborted, then the controller is reset, as Linux's C
//! driver does; requests caught by a reset are requeued and retried.

#![deny(unsafe_code)]

use crate::admin::AdminQueue;
use crate::fault::{Fault, Faults};
use crate::queue::QueuePair;
use crate::registers::Registers;
use crate::spec::command::{command_id, split_command_id, Command, DsmRange, TAG_BITS};
use crate::spec::completion::{Completion, Status as NvmeStatus, StatusKind};
use crate::spec::prp::{self, PrpError, Segment};
use crate::spec::regs::Cc;
use crate::sys::blk::{
    self, BlkStatus, Op, Operations, Request, TagSet, TagSetRef, TimedOut, TimeoutAction,
    MAX_SEGMENTS,
};
use crate::sys::dmapool::{DmaPool, PoolBlock};
use crate::sys::irq::{IrqHandler, IrqReturn};
use crate::sys::param;
use crate::sys::pci::PciDevice;
use crate::sys::print::{dev_err, dev_info, dev_warn};
use core::sync::atomic::{AtomicU32, AtomicU8, Ordering};
use kernel::alloc::{flags::GFP_KERNEL, KVec};
use kernel::error::{
    code::{EBUSY, EIO, ENODEV, ENOMEM},
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
}

impl State {
    fn from_u8(v: u8) -> Self {
        match v {
            0 => Self::Live,
            1 => Self::Resetting,
            2 => Self::Dead,
            _ => Self::Deleting,
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
}

impl Reason {
    fn from_u8(v: u8) -> Self {
        match v {
            1 => Self::Timeout,
            2 => Self::Fatal,
            _ => Self::None,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::None => "requested",
            Self::Timeout => "I/O timeout",
            Self::Fatal => "controller fatal status",
        }
    }
}

/// What bringing the controller back needs beyond the queues.
pub(crate) struct Restart {
    /// The admin queue, revived and reprogrammed on each reset.
    pub(crate) admin: Arc<AdminQueue>,
    /// The controller configuration to enable with.
    pub(crate) cc: Cc,
    /// Faults to inject (tests).
    pub(crate) faults: Faults,
}

/// A namespace the driver serves: what its disk's requests need.
#[derive(Clone, Copy)]
pub(crate) struct Namespace {
    /// Namespace identifier.
    pub(crate) nsid: u32,
    /// Capacity in logical blocks.
    pub(crate) blocks: u64,
    /// Logical block size as a shift (9 for 512 bytes).
    pub(crate) lba_shift: u32,
}

impl Namespace {
    /// Capacity in 512-byte sectors (saturating).
    pub(crate) fn sectors(&self) -> u64 {
        let shift = self.lba_shift.saturating_sub(9);
        self.blocks.checked_shl(shift).unwrap_or(u64::MAX)
    }
}

/// Per-request driver data.
pub(crate) struct IoPdu {
    /// The PRP list or DSM range page of a request in flight.
    page: Option<PoolBlock>,
    /// The completion's status field (without the phase bit).
    status: u16,
    /// How often the request was sent again.
    retries: u32,
    /// The request's mapped segments, for building its PRPs.
    segments: [Segment; MAX_SEGMENTS],
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
    /// Held while the controller is reset or torn down, so only one of
    /// them runs at a time.
    #[pin]
    recovery: Mutex<()>,
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
                recovery <- new_mutex!((), "rsnvme_recovery"),
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
    /// the block layer.
    fn complete_entry(
        &self,
        set: &TagSetRef<'_, IoShared>,
        queue: &QueuePair,
        index: u32,
        cqe: &Completion,
    ) {
        let (tag, generation) = split_command_id(cqe.cid());
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
        if !rq.complete(|pdu| pdu.status = status) {
            dev_warn!(
                &self.pdev,
                "queue {}: duplicate completion for command id {:#x}, ignored\n",
                queue.qid(),
                cqe.cid()
            );
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
            q.stop(|cqe| self.complete_entry(set, q, i as u32, cqe));
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
    /// concurrently with another reset or with teardown.
    pub(crate) fn reset(&self, set: &TagSetRef<'_, IoShared>, reason: &str) -> Result {
        let _guard = self.recovery.lock();
        self.reset_locked(set, reason)
    }

    /// [`IoShared::reset`], with `recovery` held.
    fn reset_locked(&self, set: &TagSetRef<'_, IoShared>, reason: &str) -> Result {
        match self.state() {
            State::Dead | State::Deleting => return Err(ENODEV),
            State::Live | State::Resetting => {}
        }
        self.set_state(State::Resetting);
        dev_warn!(&self.pdev, "resetting the controller: {reason}\n");
        let quiesced = set.quiesce();
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
                self.resets.fetch_add(1, Ordering::Relaxed);
                self.set_state(State::Live);
                dev_info!(
                    &self.pdev,
                    "reset done: {} I/O queues, {requeued} requests requeued\n",
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
                    "reset failed: controller is dead, failing its I/O\n"
                );
            }
        }
        // Timeouts that saw the controller live before this reset began
        // asked for one: this was it.
        self.reason.store(Reason::None as u8, Ordering::Relaxed);
        // Unquiesced on return: requeued requests go out again (or fail,
        // if the controller is dead).
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
        for queue in self.queues.iter() {
            queue.revive()?;
            admin.create_io_queue(&self.regs, queue)?;
        }
        Ok(())
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
    /// more. The disks can then be removed; their I/O still completes.
    pub(crate) fn begin_teardown(&self) {
        let _guard = self.recovery.lock();
        if self.state() != State::Dead {
            self.set_state(State::Deleting);
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
                let r = DsmRange::new(slba, blocks).to_bytes();
                // The range is 16 little-endian bytes; store them as such.
                let words = [
                    u64::from_ne_bytes([r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]]),
                    u64::from_ne_bytes([r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]]),
                ];
                for (i, word) in words.into_iter().enumerate() {
                    *page.words_mut().get_mut(i).ok_or(BlkStatus::IoError)? = word;
                }
                let cmd = Command::dsm_deallocate(ns.nsid, 1, page.dma_handle())
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
        let mapped = rq.dma_map(&self.pdev).map_err(|e| {
            if e == ENOMEM {
                BlkStatus::Resource
            } else {
                dev_err!(&self.pdev, "cannot map a request for DMA: {e:?}\n");
                BlkStatus::IoError
            }
        })?;
        for i in 0..mapped {
            let (addr, len) = rq.dma_segment(i).ok_or(BlkStatus::IoError)?;
            let slot = rq
                .pdu()
                .segments
                .get_mut(i as usize)
                .ok_or(BlkStatus::IoError)?;
            *slot = Segment { addr, len };
        }
        let segs = rq
            .pdu()
            .segments
            .get(..mapped as usize)
            .ok_or(BlkStatus::IoError)?;
        // Most requests fit in PRP1 and PRP2; only longer ones need a list.
        let prps = match prp::build(segs, self.page_size, &mut []) {
            Ok(prps) => prps,
            Err(PrpError::TooLong) => {
                let mut page = self.pool.alloc_atomic().ok_or(BlkStatus::Resource)?;
                let segs = rq
                    .pdu()
                    .segments
                    .get(..mapped as usize)
                    .ok_or(BlkStatus::IoError)?;
                let prps = prp::build(segs, self.page_size, page.words_mut()).map_err(|e| {
                    dev_err!(&self.pdev, "cannot describe a request with PRPs: {e}\n");
                    BlkStatus::IoError
                })?;
                let prp2 = prps.prp2_value(page.dma_handle());
                rq.pdu().page = Some(page);
                return Ok((prps.prp1, prp2));
            }
            Err(e) => {
                dev_err!(&self.pdev, "cannot describe a request with PRPs: {e}\n");
                return Err(BlkStatus::IoError);
            }
        };
        Ok((prps.prp1, prps.prp2_value(0)))
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
    type Disk = Namespace;
    type Pdu = IoPdu;

    fn new_pdu() -> IoPdu {
        IoPdu {
            page: None,
            status: 0,
            retries: 0,
            segments: [Segment { addr: 0, len: 0 }; MAX_SEGMENTS],
        }
    }

    fn queue(&self, index: u32) -> Option<&QueuePair> {
        self.queues.get(index as usize).map(|q| &**q)
    }

    fn irq_affinity(&self) -> Option<(&PciDevice, u32)> {
        self.affinity_offset.map(|offset| (&self.pdev, offset))
    }

    fn queue_rq(&self, queue: &QueuePair, rq: &mut Request<Self>, last: bool) -> BlkStatus {
        let Some(&ns) = rq.disk() else {
            return BlkStatus::IoError;
        };
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

    fn complete(&self, mut rq: Request<Self>) {
        self.release(&mut rq);
        let raw = rq.pdu().status;
        let status = NvmeStatus(raw);
        if status.is_success() {
            rq.end(BlkStatus::Ok);
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

    fn timeout(&self, rq: &TimedOut<'_, Self>, set: &TagSetRef<'_, Self>) -> TimeoutAction {
        let index = rq.queue_index();
        let Some(queue) = self.queues.get(index as usize) else {
            return TimeoutAction::ResetTimer;
        };
        let qid = queue.qid();
        let cid = command_id(rq.tag(), rq.sequence());
        match self.state() {
            // The reset in progress takes the request back.
            State::Resetting => return TimeoutAction::ResetTimer,
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
        queue.reap(|cqe| self.complete_entry(set, queue, index, cqe));
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
        if self.regs.csts().map_or(true, |csts| csts.fatal()) {
            self.schedule_reset(set, Reason::Fatal);
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

    fn work(&self, set: &TagSetRef<'_, Self>) {
        let _guard = self.recovery.lock();
        // No reason left: a reset since the request did the job.
        let reason = Reason::from_u8(self.reason.swap(Reason::None as u8, Ordering::Relaxed));
        if self.state() == State::Live && !matches!(reason, Reason::None) {
            // A failure was logged and marked the controller dead.
            let _ = self.reset_locked(set, reason.describe());
        }
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
        let reaped = queue.reap(|cqe| shared.complete_entry(&set, queue, self.index, cqe));
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

pub(crate) use blk::{Disk, Limits};
