// SPDX-License-Identifier: GPL-2.0

//! The request path of the I/O queues (NVM Command Set Specification
//! 1.0): NVMe commands built from block requests and from user space
//! (`REQ_OP_DRV_IN/OUT`), PRPs for their data, the completions matched to
//! their requests, retried or ended. Every command on an I/O queue is a
//! blk-mq request.
//!
//! It decides nothing about the controller: whether a request may be sent
//! or retried it asks the state machine ([`crate::state`]), and what a
//! timeout leads to is the caller's call (the tag set's driver data above
//! it, [`IoSet`]).

#![deny(unsafe_code)]

mod uring;

pub(crate) use uring::uring_outcome;

use crate::admin::{run_request, UserData};
use crate::data::{map_prps, send};
use crate::fault::{Fault, Faults};
use crate::ns::{Namespace, NsDisk};
use crate::queue::QueuePair;
use crate::spec::command::{command_id, split_command_id, Command, TAG_BITS};
use crate::spec::completion::{Completion, Status as NvmeStatus, StatusKind};
use crate::spec::limits;
use crate::state::{State, StateMachine};
use crate::sys::blk::{
    BlkStatus, CompletionBatch, Op, Operations, Request, Requests, TagSet, TagSetRef,
};
use crate::sys::dmapool::{DmaPool, PoolBlock};
use crate::sys::irq::{IrqHandler, IrqReturn};
use crate::sys::param;
use crate::sys::pci::PciDevice;
use crate::sys::print::{dev_err, dev_warn};
use core::sync::atomic::{AtomicU32, Ordering};
use kernel::alloc::KVec;
use kernel::error::{code::ENODEV, Result};
use kernel::sync::Arc;

/// Most entries per I/O queue, whatever CAP.MQES allows: each tag holds a
/// scatterlist, so deeper queues cost memory without helping a device
/// behind a few queues.
pub(crate) const MAX_IO_DEPTH: u16 = 256;

const _: () = assert!((MAX_IO_DEPTH as u32) <= 1 << TAG_BITS);

/// How long an I/O may take before recovery starts: the `io_timeout`
/// module parameter (30 s by default, as Linux's C driver), in ms.
pub(crate) fn io_timeout_ms() -> u32 {
    param::io_timeout().clamp(1, 3600) * 1000
}

/// The driver data of an I/O tag set: the blk-mq operations whose
/// queues are [`QueuePair`]s and whose requests carry an [`IoPdu`], on
/// top of a [`RequestPath`]. The layer above implements it; the request
/// path and the queue interrupts only need these two things of it.
pub(crate) trait IoSet: Operations<Queue = QueuePair, Disk = NsDisk, Pdu = IoPdu> {
    /// The request path the operations run on.
    fn path(&self) -> &RequestPath;
}

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

impl IoPdu {
    /// The pdu of a request blk-mq has not used yet.
    pub(crate) fn new() -> Self {
        Self {
            page: None,
            status: 0,
            retries: 0,
            cmd: Command::default(),
            result: (0, 0),
        }
    }
}

/// Cancels a request: records that the host aborted it, for `complete`.
pub(crate) fn mark_host_aborted(pdu: &mut IoPdu) {
    pdu.status = NvmeStatus::HOST_ABORTED.0;
}

/// The I/O queue pairs and what sending and completing requests on them
/// needs: the DMA pool of PRP lists and DSM ranges, the controller's
/// page size, and the counts of requests sent again and failed.
pub(crate) struct RequestPath {
    pdev: PciDevice,
    queues: KVec<Arc<QueuePair>>,
    pool: Arc<DmaPool>,
    page_size: u32,
    /// The vector of I/O queue 1 when vectors are spread over CPUs.
    affinity_offset: Option<u32>,
    /// Where the controller stands, asked before a request is sent or
    /// sent again; changed only by the layer above.
    state: Arc<StateMachine>,
    faults: Faults,
    /// Requests sent again, requests failed.
    retried: AtomicU32,
    failed: AtomicU32,
}

impl RequestPath {
    /// The request path over `queues` of the controller at `pdev`, whose
    /// memory pages are `page_size` bytes.
    pub(crate) fn new(
        pdev: &PciDevice,
        queues: KVec<Arc<QueuePair>>,
        page_size: u32,
        affinity_offset: Option<u32>,
        state: Arc<StateMachine>,
        faults: Faults,
    ) -> Result<Self> {
        let pool = DmaPool::new(pdev, c"rsnvme prp", page_size as usize)?;
        Ok(Self {
            pdev: pdev.clone(),
            queues,
            pool,
            page_size,
            affinity_offset,
            state,
            faults,
            retried: AtomicU32::new(0),
            failed: AtomicU32::new(0),
        })
    }

    /// Whether the controller is dead: its requests fail, none is retried.
    fn dead(&self) -> bool {
        self.state.get() == State::Dead
    }

    /// The queues, for creating, deleting and stopping them.
    pub(crate) fn queues(&self) -> &[Arc<QueuePair>] {
        &self.queues
    }

    /// Queue `index` of the tag set.
    pub(crate) fn queue(&self, index: u32) -> Option<&QueuePair> {
        self.queues.get(index as usize).map(|q| &**q)
    }

    /// The device and the vector of queue 1, when vectors are spread.
    pub(crate) fn irq_affinity(&self) -> Option<(&PciDevice, u32)> {
        self.affinity_offset.map(|offset| (&self.pdev, offset))
    }

    /// Requests retried and requests failed so far.
    pub(crate) fn counts(&self) -> (u32, u32) {
        (
            self.retried.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
        )
    }

    /// Counts a request refused before it started.
    pub(crate) fn count_failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// Builds `rq`'s command and sends it on `queue` (blk-mq's
    /// `queue_rq`). The caller checked that the controller takes it.
    pub(crate) fn queue_rq<T: IoSet>(
        &self,
        queue: &QueuePair,
        rq: &mut Request<T>,
        last: bool,
    ) -> BlkStatus {
        let Some(disk) = rq.disk() else {
            return BlkStatus::IoError;
        };
        let ns = *disk.namespace();
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
        let lost = (self.faults.inject(Fault::UserCommandLost)
            && matches!(rq.op(), Op::DrvIn | Op::DrvOut))
        .then_some("I/O");
        send(&self.pdev, queue, rq, cmd, last, lost, |rq| {
            self.release(rq)
        })
    }

    /// Reaps the completions queue `index` has posted; those that
    /// succeeded join `batch`, if given. Returns how many were reaped.
    pub(crate) fn reap<T: IoSet>(
        &self,
        set: &TagSetRef<'_, T>,
        index: u32,
        mut batch: Option<&mut CompletionBatch<'_>>,
    ) -> u32 {
        let Some(queue) = self.queue(index) else {
            return 0;
        };
        queue.reap(|cqe| self.complete_entry(set, queue, index, cqe, batch.as_deref_mut()))
    }

    /// Stops every queue, handing what each had posted to the block
    /// layer. The controller's DMA is stopped.
    pub(crate) fn stop_queues<T: IoSet>(&self, set: &TagSetRef<'_, T>) {
        for (i, q) in self.queues.iter().enumerate() {
            q.stop(|cqe| self.complete_entry(set, q, i as u32, cqe, None));
        }
    }

    /// Hands the completion `cqe` of I/O queue `queue` (index `index`) to
    /// the block layer; a request that succeeded here joins `batch`, if
    /// given.
    pub(crate) fn complete_entry<T: IoSet>(
        &self,
        set: &TagSetRef<'_, T>,
        queue: &QueuePair,
        index: u32,
        cqe: &Completion,
        batch: Option<&mut CompletionBatch<'_>>,
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
    pub(crate) fn user_command<T: IoSet>(
        &self,
        requests: Requests<'_, T>,
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

    /// Builds the NVMe command for `rq`, mapping its data for DMA.
    fn build<T: IoSet>(
        &self,
        ns: &Namespace,
        rq: &mut Request<T>,
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
                    limits::fill_dsm_ranges(&mut page, [(slba, blocks)], 1)
                } else {
                    // One range per bio, as blk-mq merged them.
                    let ranges = rq
                        .bio_ranges()
                        .map(|(sector, bytes)| (sector >> (shift - 9), bytes >> shift));
                    limits::fill_dsm_ranges(&mut page, ranges, max)
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
    fn map_data<T: IoSet>(
        &self,
        rq: &mut Request<T>,
    ) -> core::result::Result<(u64, u64), BlkStatus> {
        let prps = map_prps(rq, &self.pdev, &self.pool, self.page_size)?;
        rq.pdu().page = prps.list;
        Ok((prps.prp1, prps.prp2))
    }

    /// Ends `rq`, whose completion was claimed: releases what it held, then
    /// ends it (a success as part of `batch`, if given), sends it again or
    /// fails it.
    pub(crate) fn finish<T: IoSet>(
        &self,
        mut rq: Request<T>,
        batch: Option<&mut CompletionBatch<'_>>,
    ) {
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
        self.count_failed();
        rq.end(blk_status(raw));
    }

    /// Releases what a request held while in flight.
    fn release<T: IoSet>(&self, rq: &mut Request<T>) {
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

/// The interrupt handler of one I/O queue of the tag set `set`.
pub(crate) struct QueueIrq<T: IoSet> {
    pub(crate) set: Arc<TagSet<T>>,
    pub(crate) index: u32,
}

impl<T: IoSet> IrqHandler for QueueIrq<T> {
    fn handle_irq(&self) -> IrqReturn {
        let set = self.set.borrowed();
        // Requests that succeeded are ended together once the queue is
        // reaped, outside its lock.
        let mut batch = CompletionBatch::new();
        let reaped = self
            .set
            .data()
            .path()
            .reap(&set, self.index, Some(&mut batch));
        drop(batch);
        if reaped > 0 {
            IrqReturn::Handled
        } else {
            IrqReturn::None
        }
    }
}
