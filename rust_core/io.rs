// SPDX-License-Identifier: GPL-2.0

//! I/O queue pairs and the blk-mq driver on top of them: NVMe commands
//! built from block requests, PRPs for their data, completion by interrupt
//! and recovery from timeouts (NVM Command Set Specification 1.0).

#![deny(unsafe_code)]

use crate::admin::posted_entry;
use crate::controller::Registers;
use crate::spec::command::{Command, DsmRange};
use crate::spec::completion::{Status as NvmeStatus, StatusKind};
use crate::spec::prp::{self, PrpError, Segment};
use crate::spec::queue::{doorbell_offset, CqRing};
use crate::sys::blk::{
    self, Op, Operations, Request, Status, TagSet, TagSetRef, TimeoutAction, MAX_SEGMENTS,
};
use crate::sys::dma::CoherentArray;
use crate::sys::dmapool::{DmaPool, PoolBlock};
use crate::sys::irq::{IrqHandler, IrqReturn};
use crate::sys::mmio::Doorbell;
use crate::sys::pci::PciDevice;
use crate::sys::print::{dev_err, dev_warn};
use crate::sys::sync::{new_irq_spinlock, IrqSpinLock};
use kernel::alloc::{flags::GFP_KERNEL, KVec};
use kernel::error::{code::EINVAL, Result};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};

/// Most entries per I/O queue, whatever CAP.MQES allows: each tag holds a
/// scatterlist, so deeper queues cost memory without helping a device
/// behind a few queues.
pub(crate) const MAX_IO_DEPTH: u16 = 256;

/// A completion queue entry is four dwords.
const CQE_DWORDS: usize = 4;

/// The status the driver records for a request it cancels: generic status
/// 0x07, Command Abort Requested.
const STATUS_ABORTED: u16 = 0x07;

/// Submission queue state.
struct SqState {
    tail: u16,
    /// Commands written but not yet announced with the doorbell.
    unrung: bool,
    /// Set once the controller is gone or reset: no more submissions.
    dead: bool,
}

/// Completion queue state.
struct CqState {
    ring: CqRing,
    /// Set once the controller is gone or reset: the handler stops.
    dead: bool,
}

/// One I/O submission/completion queue pair.
#[pin_data]
pub(crate) struct IoQueue {
    qid: u16,
    depth: u16,
    /// Vector index its completions interrupt on.
    pub(crate) vector: u16,
    sq_mem: CoherentArray<Command>,
    cq_mem: CoherentArray<u32>,
    sq_doorbell: Doorbell,
    cq_doorbell: Doorbell,
    #[pin]
    sq: IrqSpinLock<SqState>,
    #[pin]
    cq: IrqSpinLock<CqState>,
}

impl IoQueue {
    /// Allocates queue pair `qid` of `depth` entries in DMA memory; the
    /// caller creates it on the controller with [`IoQueue::create_commands`].
    pub(crate) fn new(regs: &Registers, qid: u16, depth: u16, vector: u16) -> Result<Arc<Self>> {
        let entries = usize::from(depth);
        let sq_mem = CoherentArray::zeroed(&regs.pdev, entries)?;
        let cq_mem = CoherentArray::zeroed(&regs.pdev, entries * CQE_DWORDS)?;
        let stride = regs.cap.doorbell_stride_shift();
        let sq_doorbell = regs
            .bar
            .doorbell(doorbell_offset(qid, false, stride).ok_or(EINVAL)?)?;
        let cq_doorbell = regs
            .bar
            .doorbell(doorbell_offset(qid, true, stride).ok_or(EINVAL)?)?;
        let ring = CqRing::new(depth).ok_or(EINVAL)?;
        Arc::pin_init(
            pin_init!(Self {
                qid,
                depth,
                vector,
                sq_mem,
                cq_mem,
                sq_doorbell,
                cq_doorbell,
                sq <- new_irq_spinlock!(SqState { tail: 0, unrung: false, dead: false }, "rsnvme_io_sq"),
                cq <- new_irq_spinlock!(CqState { ring, dead: false }, "rsnvme_io_cq"),
            }),
            GFP_KERNEL,
        )
    }

    /// The admin commands that create this pair on the controller, CQ
    /// first (NVMe Base Specification 2.0, section 3.3.1.1).
    pub(crate) fn create_commands(&self) -> Option<(Command, Command)> {
        let cq = Command::create_io_cq(
            self.qid,
            self.depth,
            self.cq_mem.dma_handle(),
            self.vector,
            true,
        )?;
        let sq = Command::create_io_sq(self.qid, self.depth, self.sq_mem.dma_handle(), self.qid)?;
        Some((cq, sq))
    }

    /// The admin commands that delete this pair, SQ first.
    pub(crate) fn delete_commands(&self) -> (Command, Command) {
        (
            Command::delete_io_sq(self.qid),
            Command::delete_io_cq(self.qid),
        )
    }

    /// Writes `cmd` to the submission queue; rings the doorbell unless
    /// more commands follow (`last == false`). Fails once the queue is dead.
    fn submit(&self, cmd: Command, last: bool) -> Result {
        let mut sq = self.sq.lock();
        if sq.dead {
            return Err(EINVAL);
        }
        // The queue has one entry more than the tag set has tags, so it
        // cannot overflow: a tag (and its slot) is only reused after its
        // completion, which the controller posts after fetching the entry.
        self.sq_mem.write(usize::from(sq.tail), cmd)?;
        sq.tail = if sq.tail + 1 >= self.depth {
            0
        } else {
            sq.tail + 1
        };
        if last {
            // Ordered after the entry write above (as `writel` is).
            self.sq_doorbell.ring(sq.tail.into());
            sq.unrung = false;
        } else {
            sq.unrung = true;
        }
        Ok(())
    }

    /// Rings the doorbell for commands submitted with `last == false`.
    fn commit(&self) {
        let mut sq = self.sq.lock();
        if sq.unrung && !sq.dead {
            self.sq_doorbell.ring(sq.tail.into());
            sq.unrung = false;
        }
    }

    /// Completes every request the controller has posted a completion for.
    fn process_completions(
        &self,
        set: &TagSetRef<'_, IoShared>,
        index: u32,
        pdev: &PciDevice,
    ) -> u32 {
        let mut cq = self.cq.lock();
        if cq.dead {
            return 0;
        }
        let mut handled = 0;
        while let Some(cqe) = posted_entry(&self.cq_mem, &cq.ring) {
            cq.ring.advance();
            handled += 1;
            match set.in_flight(index, cqe.cid().into()) {
                Some(mut done) => {
                    done.pdu().status = cqe.status().0;
                    done.complete();
                }
                None => dev_warn!(
                    pdev,
                    "queue {}: completion for unknown command id {}\n",
                    self.qid,
                    cqe.cid()
                ),
            }
        }
        if handled > 0 {
            self.cq_doorbell.ring(cq.ring.head().into());
        }
        handled
    }

    /// Stops the queue: completes what the controller posted, then takes
    /// no more submissions and ignores further interrupts. For a
    /// controller that has been reset or is gone.
    fn kill(&self, set: &TagSetRef<'_, IoShared>, index: u32, pdev: &PciDevice) {
        self.sq.lock().dead = true;
        self.process_completions(set, index, pdev);
        self.cq.lock().dead = true;
    }
}

/// What a disk's requests need to know.
#[derive(Clone, Copy)]
pub(crate) struct Namespace {
    pub(crate) nsid: u32,
    pub(crate) lba_shift: u32,
}

/// Per-request driver data.
pub(crate) struct IoPdu {
    /// The PRP list or DSM range page of a request in flight.
    page: Option<PoolBlock>,
    /// The completion's status field (without the phase bit).
    status: u16,
    /// The request's mapped segments, for building its PRPs.
    segments: [Segment; MAX_SEGMENTS],
}

/// The state all I/O queues share: the tag set's driver data.
#[pin_data]
pub(crate) struct IoShared {
    pdev: PciDevice,
    regs: Arc<Registers>,
    queues: KVec<Arc<IoQueue>>,
    pool: Arc<DmaPool>,
    page_size: u32,
    /// The vector of I/O queue 1 when vectors are spread over CPUs.
    affinity_offset: Option<u32>,
    /// Whether doorbells are rung; false only for fault injection, which
    /// makes every I/O time out.
    ring: bool,
    /// Whether the controller was reset after a timeout or went away.
    #[pin]
    failed: Mutex<bool>,
}

impl IoShared {
    pub(crate) fn new(
        regs: Arc<Registers>,
        queues: KVec<Arc<IoQueue>>,
        page_size: u32,
        affinity_offset: Option<u32>,
        ring: bool,
    ) -> Result<Arc<Self>> {
        let pdev = regs.pdev.clone();
        let pool = DmaPool::new(&pdev, c"rsnvme prp", page_size as usize)?;
        Arc::pin_init(
            pin_init!(Self {
                pdev,
                regs,
                queues,
                pool,
                page_size,
                affinity_offset,
                ring,
                failed <- new_mutex!(false, "rsnvme_io_failed"),
            }),
            GFP_KERNEL,
        )
    }

    /// Whether the controller was reset after a failure.
    pub(crate) fn failed(&self) -> bool {
        *self.failed.lock()
    }

    /// The queues, for creating and deleting them.
    pub(crate) fn queues(&self) -> &[Arc<IoQueue>] {
        &self.queues
    }

    /// Resets the controller, stops every queue and ends every request
    /// still outstanding with an error, once. The lock makes concurrent
    /// callers (timeouts on several queues, remove) wait for the first, so
    /// no request is cancelled twice.
    pub(crate) fn fail(&self, set: &TagSetRef<'_, IoShared>, why: &str) {
        let mut failed = self.failed.lock();
        if *failed {
            return;
        }
        dev_err!(
            &self.pdev,
            "{why}: resetting the controller, failing outstanding I/O\n"
        );
        // Whatever happens, the queues stop below; the reset logged errors.
        let _ = self.regs.disable();
        for (i, q) in self.queues.iter().enumerate() {
            q.kill(set, i as u32, &self.pdev);
        }
        // The device completes nothing any more: the driver owns every
        // started request.
        set.cancel_all(mark_aborted);
        *failed = true;
    }

    /// Builds the NVMe command for `rq`, mapping its data for DMA.
    fn build(
        &self,
        ns: &Namespace,
        rq: &mut Request<Self>,
    ) -> core::result::Result<Command, Status> {
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
                .ok_or(Status::IoError)?;
                let (prp1, prp2) = self.map_data(rq)?;
                cmd.set_prps(prp1, prp2);
                Ok(cmd)
            }
            Op::WriteZeroes => Command::write_zeroes(ns.nsid, slba, blocks).ok_or(Status::IoError),
            Op::Discard => {
                let mut page = self.pool.alloc_atomic().ok_or(Status::Resource)?;
                let r = DsmRange::new(slba, blocks).to_bytes();
                // The range is 16 little-endian bytes; store them as such.
                let words = [
                    u64::from_ne_bytes([r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7]]),
                    u64::from_ne_bytes([r[8], r[9], r[10], r[11], r[12], r[13], r[14], r[15]]),
                ];
                for (i, word) in words.into_iter().enumerate() {
                    *page.words_mut().get_mut(i).ok_or(Status::IoError)? = word;
                }
                let cmd = Command::dsm_deallocate(ns.nsid, 1, page.dma_handle())
                    .ok_or(Status::IoError)?;
                rq.pdu().page = Some(page);
                Ok(cmd)
            }
            Op::Other => Err(Status::NotSupported),
        }
    }

    /// DMA-maps `rq`'s data and returns PRP1 and PRP2.
    fn map_data(&self, rq: &mut Request<Self>) -> core::result::Result<(u64, u64), Status> {
        let mapped = rq.dma_map(&self.pdev).map_err(|_| Status::Resource)?;
        for i in 0..mapped {
            let (addr, len) = rq.dma_segment(i).ok_or(Status::IoError)?;
            let slot = rq
                .pdu()
                .segments
                .get_mut(i as usize)
                .ok_or(Status::IoError)?;
            *slot = Segment { addr, len };
        }
        let segs = rq
            .pdu()
            .segments
            .get(..mapped as usize)
            .ok_or(Status::IoError)?;
        // Most requests fit in PRP1 and PRP2; only longer ones need a list.
        let prps = match prp::build(segs, self.page_size, &mut []) {
            Ok(prps) => prps,
            Err(PrpError::TooLong) => {
                let mut page = self.pool.alloc_atomic().ok_or(Status::Resource)?;
                let segs = rq
                    .pdu()
                    .segments
                    .get(..mapped as usize)
                    .ok_or(Status::IoError)?;
                let prps = prp::build(segs, self.page_size, page.words_mut()).map_err(|e| {
                    dev_err!(&self.pdev, "cannot describe a request with PRPs: {e}\n");
                    Status::IoError
                })?;
                let prp2 = prps.prp2_value(page.dma_handle());
                rq.pdu().page = Some(page);
                return Ok((prps.prp1, prp2));
            }
            Err(e) => {
                dev_err!(&self.pdev, "cannot describe a request with PRPs: {e}\n");
                return Err(Status::IoError);
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
fn blk_status(raw: u16) -> Status {
    match NvmeStatus(raw).kind() {
        StatusKind::Success => Status::Ok,
        StatusKind::InvalidOpcode | StatusKind::InvalidField | StatusKind::InvalidNamespace => {
            Status::NotSupported
        }
        StatusKind::LbaOutOfRange => Status::Target,
        StatusKind::CapacityExceeded => Status::NoSpace,
        StatusKind::WriteFault | StatusKind::UnrecoveredReadError => Status::Medium,
        StatusKind::AccessDenied => Status::Protection,
        _ => Status::IoError,
    }
}

impl Operations for IoShared {
    type Queue = IoQueue;
    type Disk = Namespace;
    type Pdu = IoPdu;

    fn new_pdu() -> IoPdu {
        IoPdu {
            page: None,
            status: 0,
            segments: [Segment { addr: 0, len: 0 }; MAX_SEGMENTS],
        }
    }

    fn queue(&self, index: u32) -> Option<&IoQueue> {
        self.queues.get(index as usize).map(|q| &**q)
    }

    fn irq_affinity(&self) -> Option<(&PciDevice, u32)> {
        self.affinity_offset.map(|offset| (&self.pdev, offset))
    }

    fn queue_rq(&self, queue: &IoQueue, rq: &mut Request<Self>, last: bool) -> Status {
        let Some(&ns) = rq.disk() else {
            return Status::IoError;
        };
        let mut cmd = match self.build(&ns, rq) {
            Ok(cmd) => cmd,
            Err(status) => {
                self.release(rq);
                return status;
            }
        };
        cmd.set_cid(rq.tag() as u16);
        rq.pdu().status = 0;
        rq.start();
        if queue.submit(cmd, last && self.ring).is_err() {
            self.release(rq);
            return Status::IoError;
        }
        Status::Ok
    }

    fn commit_rqs(&self, queue: &IoQueue) {
        if self.ring {
            queue.commit();
        }
    }

    fn complete(&self, mut rq: Request<Self>) {
        self.release(&mut rq);
        let status = blk_status(rq.pdu().status);
        rq.end(status);
    }

    fn timeout(&self, rq: &mut Request<Self>, set: &TagSetRef<'_, Self>) -> TimeoutAction {
        dev_warn!(
            &self.pdev,
            "I/O timeout: tag {}, {} bytes at sector {}\n",
            rq.tag(),
            rq.bytes(),
            rq.sector()
        );
        // No controller reset and retry yet: fail everything outstanding,
        // including `rq`, so nothing waits forever.
        self.fail(set, "I/O timeout");
        TimeoutAction::Done
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
        if queue.process_completions(&self.set.borrowed(), self.index, &shared.pdev) > 0 {
            IrqReturn::Handled
        } else {
            IrqReturn::None
        }
    }
}

/// Cancels a request: records the abort status for `complete`.
fn mark_aborted(pdu: &mut IoPdu) {
    pdu.status = STATUS_ABORTED;
}

/// Resets the controller (if not done yet) and ends every request still
/// outstanding, with an error; for a controller that is gone.
pub(crate) fn fail_and_cancel(set: &TagSet<IoShared>, why: &str) {
    set.data().fail(&set.borrowed(), why);
}

pub(crate) use blk::{Disk, Limits};
