// SPDX-License-Identifier: GPL-2.0

//! One NVMe queue pair: a submission queue and its completion queue in DMA
//! memory, their doorbells, and the loop that reaps completions (NVMe Base
//! Specification 2.0, section 3.3). The admin queue and every I/O queue
//! are a [`QueuePair`], as `struct nvme_queue` is in the C driver.

#![deny(unsafe_code)]

use crate::fault::{FreeCheck, Switch};
use crate::registers::Registers;
use crate::spec::command::Command;
use crate::spec::completion::Completion;
use crate::spec::queue::{shadow_index, shadow_needs_event, CqRing, SqRing};
use crate::sys::dma::{dma_mb, dma_rmb, dma_wmb, CoherentArray};
use crate::sys::mmio::Doorbell;
use crate::sys::pci::DmaStopped;
use crate::sys::sync::{new_irq_spinlock, IrqSpinLock};
use core::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use kernel::alloc::flags::GFP_KERNEL;
use kernel::error::{
    code::{EBUSY, EINVAL, ENODEV},
    Result,
};
use kernel::prelude::*;
use kernel::sync::{new_spinlock, Arc, SpinLock};

/// A completion queue entry is four little-endian dwords; the Phase Tag is
/// bit 16 of the last one.
const CQE_DWORDS: usize = 4;

/// Completions reaped before the CQ head doorbell is rung and they are
/// handed on; the loop goes on with the next batch.
const REAP_BATCH: usize = 16;

/// Submission queue state.
struct SqState {
    ring: SqRing,
    /// Entries written but not yet announced with the doorbell.
    unrung: bool,
    /// Set once the queue is stopped: no more submissions.
    dead: bool,
}

/// Completion queue state.
struct CqState {
    ring: CqRing,
    /// Set once the queue is stopped: completions are no longer reaped.
    dead: bool,
}

/// The shadow doorbell and event index buffers of Doorbell Buffer Config
/// (NVMe Base Specification 2.0, section 5.8), one page each, laid out
/// like the doorbell registers. For controllers that are emulated in
/// software (QEMU's), where each register write is a costly trap: the
/// driver writes new doorbell values to memory and writes the register
/// only when the controller's event index says it is waiting to be told.
/// The controller reads the shadow values whenever it works on a queue.
/// They apply to the I/O queues only; the admin queue always rings.
pub(crate) struct ShadowDoorbells {
    doorbells: CoherentArray<u32>,
    event_indices: CoherentArray<u32>,
    stride_shift: u32,
    /// Whether the controller was given the buffers since it was last
    /// enabled: until then every doorbell is written to the register too.
    active: AtomicBool,
}

impl ShadowDoorbells {
    /// Allocates both buffers, zeroed, `page_size` bytes each, for a
    /// controller with doorbell stride `regs`' CAP.DSTRD.
    pub(crate) fn new(regs: &Registers, page_size: usize) -> Result<Arc<Self>> {
        let entries = page_size / core::mem::size_of::<u32>();
        Ok(Arc::new(
            Self {
                doorbells: CoherentArray::zeroed(regs.pdev(), entries)?,
                event_indices: CoherentArray::zeroed(regs.pdev(), entries)?,
                stride_shift: regs.cap().doorbell_stride_shift(),
                active: AtomicBool::new(false),
            },
            GFP_KERNEL,
        )?)
    }

    /// The Doorbell Buffer Config command that hands the buffers over.
    pub(crate) fn config_command(&self) -> Command {
        Command::doorbell_buffer_config(
            self.doorbells.dma_handle(),
            self.event_indices.dma_handle(),
        )
    }

    /// Clears both buffers and stops using them until
    /// [`ShadowDoorbells::activate`]: for a controller that was reset,
    /// before its queues are created again from index 0. The controller's
    /// DMA is stopped (`dma`), so it reads or writes neither buffer
    /// meanwhile; `EINVAL` if `dma` is another device's.
    pub(crate) fn clear(&self, dma: &DmaStopped) -> Result {
        if !dma.covers(self.doorbells.device()) {
            return Err(EINVAL);
        }
        self.active.store(false, Ordering::Release);
        for i in 0..self.doorbells.count() {
            self.doorbells.write(i, 0)?;
            self.event_indices.write(i, 0)?;
        }
        Ok(())
    }

    /// Uses the buffers from now on: the controller accepted them.
    pub(crate) fn activate(&self) {
        self.active.store(true, Ordering::Release);
    }

    /// The entry of queue `qid`'s SQ tail or CQ head doorbell, if the
    /// buffers have one.
    fn slot(&self, qid: u16, completion: bool) -> Option<usize> {
        shadow_index(qid, completion, self.stride_shift).filter(|&i| i < self.doorbells.count())
    }

    /// Publishes `new` in shadow entry `index`; returns whether the
    /// register must be written too.
    fn update(&self, index: usize, new: u16) -> bool {
        if !self.active.load(Ordering::Acquire) {
            return true;
        }
        // For an SQ tail: the entries, and the PRP lists and ranges they
        // point to, written before reach the controller no later than the
        // new tail does, so it fetches whole commands (the C driver has a
        // `wmb()` here). For a CQ head there is nothing to order; one path
        // serves both, as in C.
        dma_wmb();
        let Some(old) = self.doorbells.read(index) else {
            return true;
        };
        if self.doorbells.write(index, u32::from(new).to_le()).is_err() {
            return true;
        }
        // The write of the new value before the read of the event index,
        // a store before a load (the C driver's `mb()`): the controller
        // orders its event index update before its read of the shadow
        // doorbell, so one of the two sides always sees the other's
        // update and no doorbell is left unrung.
        dma_mb();
        let Some(event) = self.event_indices.read(index) else {
            return true;
        };
        // Doorbell values are 16-bit queue indices.
        shadow_needs_event(u32::from_le(event) as u16, new, u32::from_le(old) as u16)
    }
}

/// A queue pair's entries in the shadow doorbell buffers.
struct Shadow {
    buffers: Arc<ShadowDoorbells>,
    sq: usize,
    cq: usize,
}

impl Shadow {
    fn new(buffers: &Arc<ShadowDoorbells>, qid: u16) -> Option<Self> {
        Some(Self {
            sq: buffers.slot(qid, false)?,
            cq: buffers.slot(qid, true)?,
            buffers: buffers.clone(),
        })
    }
}

/// A submission queue and its completion queue.
///
/// Submitters take `sq`, in process context only; the reap loop (also in
/// interrupt handlers) takes `cq` and only publishes the controller's SQ
/// head through `sq_head`, so `sq` need not disable interrupts. Lock
/// order: `sq` before `cq` (revive takes both): `cq` is taken in
/// interrupt handlers, so it may not be held while waiting for `sq`.
#[pin_data]
pub(crate) struct QueuePair {
    /// Fault injection: checks, before the rings below are freed, that
    /// the controller can no longer write them (first, so dropped first).
    free_check: FreeCheck,
    qid: u16,
    depth: u16,
    /// The interrupt vector completions signal; `None` for a polled queue.
    vector: Option<u16>,
    sq_mem: CoherentArray<Command>,
    cq_mem: CoherentArray<u32>,
    sq_doorbell: Doorbell,
    cq_doorbell: Doorbell,
    /// Shadow doorbells, for I/O queues of controllers that have them.
    shadow: Option<Shadow>,
    /// Whether the CQ head doorbell register is written on every reap,
    /// shadow doorbells or not: the completions signal a level-triggered
    /// interrupt (INTx), which the controller may deassert only on that
    /// write. A controller that never moves its CQ event index (QEMU 7.2
    /// does not) would otherwise keep the line asserted, and the kernel
    /// disables it ("nobody cared").
    cq_always_rung: bool,
    /// Fault injection: when on, the SQ tail doorbell is never rung.
    silent: Switch,
    /// The SQ Head Pointer of the newest completion reaped, for the
    /// submitters' ring.
    sq_head: AtomicU16,
    #[pin]
    sq: SpinLock<SqState>,
    #[pin]
    cq: IrqSpinLock<CqState>,
}

impl QueuePair {
    /// Allocates queue pair `qid` (0 is the admin queue) of `depth` entries
    /// in DMA memory, completing on interrupt vector `vector`, or without
    /// interrupts (polled) if `None`; an I/O queue uses `shadow`'s
    /// doorbells if given. `level` says the vector is a level-triggered
    /// line (INTx).
    pub(crate) fn new(
        regs: &Registers,
        qid: u16,
        depth: u16,
        vector: Option<u16>,
        level: bool,
        shadow: Option<&Arc<ShadowDoorbells>>,
    ) -> Result<Arc<Self>> {
        let entries = usize::from(depth);
        let sq_mem = CoherentArray::zeroed(regs.pdev(), entries)?;
        let cq_mem = CoherentArray::zeroed(regs.pdev(), entries * CQE_DWORDS)?;
        let sq_doorbell = regs.doorbell(qid, false)?;
        let cq_doorbell = regs.doorbell(qid, true)?;
        let sq = SqState {
            ring: SqRing::new(depth).ok_or(EINVAL)?,
            unrung: false,
            dead: false,
        };
        let cq = CqState {
            ring: CqRing::new(depth).ok_or(EINVAL)?,
            dead: false,
        };
        let shadow = shadow
            .filter(|_| qid != 0)
            .and_then(|s| Shadow::new(s, qid));
        Arc::pin_init(
            pin_init!(Self {
                free_check: FreeCheck::new(regs, qid),
                qid,
                depth,
                vector,
                sq_mem,
                cq_mem,
                sq_doorbell,
                cq_doorbell,
                shadow,
                cq_always_rung: level && vector.is_some(),
                silent: Switch::new(),
                sq_head: AtomicU16::new(0),
                sq <- new_spinlock!(sq, "rsnvme_sq"),
                cq <- new_irq_spinlock!(cq, "rsnvme_cq"),
            }),
            GFP_KERNEL,
        )
    }

    /// The queue identifier.
    pub(crate) fn qid(&self) -> u16 {
        self.qid
    }

    /// The interrupt vector its completions signal, `None` if polled.
    pub(crate) fn vector(&self) -> Option<u16> {
        self.vector
    }

    /// Bus addresses of the submission and completion queue memory, for
    /// ASQ/ACQ or the commands that create an I/O queue pair.
    pub(crate) fn dma_handles(&self) -> (u64, u64) {
        (self.sq_mem.dma_handle(), self.cq_mem.dma_handle())
    }

    /// The admin commands that create this I/O queue pair on the
    /// controller, CQ first (NVMe Base Specification 2.0, section 3.3.1.1).
    pub(crate) fn create_commands(&self) -> Option<(Command, Command)> {
        let (sq, cq) = self.dma_handles();
        let create_cq = Command::create_io_cq(
            self.qid,
            self.depth,
            cq,
            self.vector.unwrap_or(0),
            self.vector.is_some(),
        )?;
        let create_sq = Command::create_io_sq(self.qid, self.depth, sq, self.qid)?;
        Some((create_cq, create_sq))
    }

    /// The admin commands that delete this I/O queue pair, SQ first.
    pub(crate) fn delete_commands(&self) -> (Command, Command) {
        (
            Command::delete_io_sq(self.qid),
            Command::delete_io_cq(self.qid),
        )
    }

    /// Fault injection: the SQ tail doorbell of this queue is never rung
    /// from now on, so the controller sees none of its commands.
    pub(crate) fn silence_doorbell(&self) {
        self.silent.set();
    }

    /// Tells the controller the SQ tail is now `tail`.
    fn ring_sq_doorbell(&self, tail: u16) {
        if !self.silent.is_on() {
            // The doorbell write is ordered after the entry writes before
            // it (as `writel` is), so the controller fetches whole entries.
            let ring = match &self.shadow {
                Some(s) => s.buffers.update(s.sq, tail),
                None => true,
            };
            if ring {
                self.sq_doorbell.ring(tail.into());
            }
        }
    }

    /// Writes `cmd` at the SQ tail and advances it; rings the doorbell now
    /// when `last`, else leaves that to [`QueuePair::commit`] because more
    /// commands follow. `EBUSY` when the queue is full, `ENODEV` once it
    /// is stopped.
    pub(crate) fn submit(&self, cmd: Command, last: bool) -> Result {
        let mut sq = self.sq.lock();
        if sq.dead {
            return Err(ENODEV);
        }
        // Slots the controller consumed since the last submission are
        // free again (a stale or bogus head is ignored).
        sq.ring.update_head(self.sq_head.load(Ordering::Acquire));
        let slot = sq.ring.push().ok_or(EBUSY)?;
        // `push` only returns slots below the depth, so this cannot fail.
        self.sq_mem.write(usize::from(slot), cmd)?;
        if last {
            self.ring_sq_doorbell(sq.ring.tail());
            sq.unrung = false;
        } else {
            sq.unrung = true;
        }
        Ok(())
    }

    /// Rings the doorbell for commands submitted with `last == false`.
    pub(crate) fn commit(&self) {
        let mut sq = self.sq.lock();
        if sq.unrung && !sq.dead {
            self.ring_sq_doorbell(sq.ring.tail());
            sq.unrung = false;
        }
    }

    /// The entry at the CQ head, if the controller has posted it: its
    /// Phase Tag is the one the ring expects for this pass.
    fn pending(&self, ring: &CqRing) -> Option<Completion> {
        let base = usize::from(ring.head()).checked_mul(CQE_DWORDS)?;
        let dw3 = self.cq_mem.read(base + 3)?;
        if !ring.is_new(dw3 & (1 << 16) != 0) {
            return None;
        }
        // The read of the Phase Tag before the reads of the rest of the
        // entry (and of any data the command returned): the controller
        // writes the entry before it flips the tag, so the rest is not
        // read from before the flip (the C driver's `dma_rmb()` after
        // `nvme_cqe_pending`).
        dma_rmb();
        let mut bytes = [0u8; 16];
        for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
            let dw = if i == 3 {
                dw3
            } else {
                self.cq_mem.read(base + i)?
            };
            chunk.copy_from_slice(&dw.to_le_bytes());
        }
        Some(Completion::from_bytes(bytes))
    }

    /// Reaps every posted completion: while an entry is pending, consume
    /// it and advance the head; per batch, record the controller's SQ head,
    /// ring the CQ head doorbell once and hand the entries to `each`.
    /// Returns how many were reaped; none once the queue is stopped.
    pub(crate) fn reap(&self, mut each: impl FnMut(&Completion)) -> u32 {
        let mut cq = self.cq.lock();
        let mut total = 0;
        while !cq.dead {
            let mut batch = [Completion::default(); REAP_BATCH];
            let mut n: usize = 0;
            for entry in batch.iter_mut() {
                let Some(cqe) = self.pending(&cq.ring) else {
                    break;
                };
                cq.ring.advance();
                *entry = cqe;
                n += 1;
            }
            let Some(newest) = n.checked_sub(1).and_then(|i| batch.get(i)) else {
                break;
            };
            // SQ slots up to the newest head are free again before any of
            // these commands' owners can submit more.
            self.sq_head.store(newest.sq_head(), Ordering::Release);
            let head = cq.ring.head();
            let ring = match &self.shadow {
                // The shadow entry is updated either way: the controller
                // reads it to know which entries are free.
                Some(s) => s.buffers.update(s.cq, head) || self.cq_always_rung,
                None => true,
            };
            if ring {
                self.cq_doorbell.ring(head.into());
            }
            for cqe in batch.iter().take(n) {
                each(cqe);
            }
            total += n as u32;
            if n < REAP_BATCH {
                break;
            }
        }
        total
    }

    /// Stops the queue: takes no more submissions, reaps what the
    /// controller has posted (handing it to `each`), then reaps no more.
    /// For a controller that has been disabled or is gone.
    pub(crate) fn stop(&self, each: impl FnMut(&Completion)) {
        self.sq.lock().dead = true;
        self.reap(each);
        self.cq.lock().dead = true;
    }

    /// Makes a stopped queue usable again after a controller reset, as
    /// new: both rings empty, the CQ memory cleared (so no old entry looks
    /// posted), the fault-injection switch off. The controller's DMA is
    /// stopped (`dma`), so it cannot use the queue meanwhile. `EBUSY` if
    /// the queue was not stopped, `EINVAL` if `dma` is another device's.
    pub(crate) fn revive(&self, dma: &DmaStopped) -> Result {
        if !dma.covers(self.cq_mem.device()) {
            return Err(EINVAL);
        }
        let mut sq = self.sq.lock();
        let mut cq = self.cq.lock();
        if !sq.dead || !cq.dead {
            return Err(EBUSY);
        }
        for i in 0..self.cq_mem.count() {
            self.cq_mem.write(i, 0)?;
        }
        sq.ring = SqRing::new(self.depth).ok_or(EINVAL)?;
        self.sq_head.store(0, Ordering::Release);
        cq.ring = CqRing::new(self.depth).ok_or(EINVAL)?;
        sq.unrung = false;
        sq.dead = false;
        cq.dead = false;
        self.silent.clear();
        Ok(())
    }
}
