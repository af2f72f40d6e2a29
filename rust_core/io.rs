// SPDX-License-Identifier: GPL-2.0

//! The blk-mq driver on top of the I/O queue pairs: NVMe commands built
//! from block requests, PRPs for their data, completion by interrupt and
//! failing what is outstanding after a timeout (NVM Command Set
//! Specification 1.0).

#![deny(unsafe_code)]

use crate::queue::QueuePair;
use crate::registers::Registers;
use crate::spec::command::{Command, DsmRange};
use crate::spec::completion::{Completion, Status as NvmeStatus, StatusKind};
use crate::spec::prp::{self, PrpError, Segment};
use crate::sys::blk::{
    self, BlkStatus, Op, Operations, Request, TagSet, TagSetRef, TimeoutAction, MAX_SEGMENTS,
};
use crate::sys::dmapool::{DmaPool, PoolBlock};
use crate::sys::irq::{IrqHandler, IrqReturn};
use crate::sys::pci::PciDevice;
use crate::sys::print::{dev_err, dev_warn};
use kernel::alloc::{flags::GFP_KERNEL, KVec};
use kernel::error::{code::EBUSY, Result};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};

/// Most entries per I/O queue, whatever CAP.MQES allows: each tag holds a
/// scatterlist, so deeper queues cost memory without helping a device
/// behind a few queues.
pub(crate) const MAX_IO_DEPTH: u16 = 256;

/// The status the driver records for a request it cancels: generic status
/// 0x07, Command Abort Requested.
const STATUS_ABORTED: u16 = 0x07;

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
    /// Whether the controller was reset after a timeout or went away.
    #[pin]
    failed: Mutex<bool>,
}

impl IoShared {
    pub(crate) fn new(
        regs: Arc<Registers>,
        queues: KVec<Arc<QueuePair>>,
        page_size: u32,
        affinity_offset: Option<u32>,
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
        match set.in_flight(index, cqe.cid().into()) {
            Some(mut rq) => {
                rq.pdu().status = cqe.status().0;
                rq.complete();
            }
            None => dev_warn!(
                &self.pdev,
                "queue {}: completion for unknown command id {}\n",
                queue.qid(),
                cqe.cid()
            ),
        }
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
            q.stop(|cqe| self.complete_entry(set, q, i as u32, cqe));
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
        let mapped = rq.dma_map(&self.pdev).map_err(|_| BlkStatus::Resource)?;
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
        match queue.submit(cmd, last) {
            Ok(()) => BlkStatus::Ok,
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
        let set = self.set.borrowed();
        let reaped = queue.reap(|cqe| shared.complete_entry(&set, queue, self.index, cqe));
        if reaped > 0 {
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

pub(crate) use blk::{Disk, Limits};
