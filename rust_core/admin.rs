// SPDX-License-Identifier: GPL-2.0

//! The admin queue pair: command submission, completion by interrupt and a
//! bounded wait per command (NVMe Base Specification 2.0, section 3.3).

#![deny(unsafe_code)]

use crate::controller::Registers;
use crate::spec::command::Command;
use crate::spec::completion::Completion;
use crate::spec::queue::{doorbell_offset, CqRing, SqRing};
use crate::sys::dma::{dma_rmb, CoherentArray};
use crate::sys::irq::{IrqHandler, IrqReturn};
use crate::sys::mmio::Doorbell;
use crate::sys::pci::PciDevice;
use crate::sys::print::dev_warn;
use crate::sys::sync::{new_irq_spinlock, IrqSpinLock};
use crate::sys::time::{etimedout, msleep, Deadline};
use kernel::alloc::flags::GFP_KERNEL;
use kernel::error::{
    code::{EBUSY, EINVAL},
    Result,
};
use kernel::new_condvar;
use kernel::prelude::*;
use kernel::sync::{Arc, CondVar, CondVarTimeoutResult};
use kernel::time::msecs_to_jiffies;

/// Entries in each admin queue; commands are only sent during probe, one
/// at a time, so a small queue is plenty.
pub(crate) const ADMIN_DEPTH: u16 = 32;

/// How long an admin command may take before it is given up.
pub(crate) const ADMIN_TIMEOUT_MS: u32 = 5000;

/// A completion queue entry is four little-endian dwords; the phase bit is
/// bit 16 of the last one.
const CQE_DWORDS: usize = 4;

/// State of one command identifier.
#[derive(Clone, Copy)]
enum Slot {
    /// Not in use.
    Free,
    /// Submitted; a waiter sleeps until the completion arrives.
    Waiting,
    /// Completed; the waiter has yet to collect it.
    Done(Completion),
    /// Its waiter gave up; a late completion just frees the slot.
    Abandoned,
}

/// Queue state shared by submitters and the interrupt handler.
struct AdminState {
    sq: SqRing,
    cq: CqRing,
    slots: [Slot; ADMIN_DEPTH as usize],
}

/// The admin submission and completion queues of one controller.
#[pin_data]
pub(crate) struct AdminQueue {
    pdev: PciDevice,
    sq_mem: CoherentArray<Command>,
    cq_mem: CoherentArray<u32>,
    sq_doorbell: Doorbell,
    cq_doorbell: Doorbell,
    #[pin]
    state: IrqSpinLock<AdminState>,
    #[pin]
    completed: CondVar,
}

impl AdminQueue {
    /// Allocates the queues in DMA memory; the caller programs AQA, ASQ and
    /// ACQ with [`AdminQueue::registers`] before enabling the controller.
    pub(crate) fn new(regs: &Registers) -> Result<Arc<Self>> {
        let depth = usize::from(ADMIN_DEPTH);
        let sq_mem = CoherentArray::zeroed(&regs.pdev, depth)?;
        let cq_mem = CoherentArray::zeroed(&regs.pdev, depth * CQE_DWORDS)?;
        let stride = regs.cap.doorbell_stride_shift();
        let sq_off = doorbell_offset(0, false, stride).ok_or(EINVAL)?;
        let cq_off = doorbell_offset(0, true, stride).ok_or(EINVAL)?;
        let sq_doorbell = regs.bar.doorbell(sq_off)?;
        let cq_doorbell = regs.bar.doorbell(cq_off)?;
        let state = AdminState {
            sq: SqRing::new(ADMIN_DEPTH).ok_or(EINVAL)?,
            cq: CqRing::new(ADMIN_DEPTH).ok_or(EINVAL)?,
            slots: [Slot::Free; ADMIN_DEPTH as usize],
        };
        Arc::pin_init(
            pin_init!(Self {
                pdev: regs.pdev.clone(),
                sq_mem,
                cq_mem,
                sq_doorbell,
                cq_doorbell,
                state <- new_irq_spinlock!(state, "rsnvme_admin_queue"),
                completed <- new_condvar!("rsnvme_admin_completed"),
            }),
            GFP_KERNEL,
        )
    }

    /// Bus addresses of the submission and completion queues, for ASQ and
    /// ACQ.
    pub(crate) fn registers(&self) -> (u64, u64) {
        (self.sq_mem.dma_handle(), self.cq_mem.dma_handle())
    }

    /// Submits `cmd` and sleeps until it completes or
    /// [`ADMIN_TIMEOUT_MS`] passes (`ETIMEDOUT`). With `ring == false` the
    /// doorbell is not rung, so the command is never seen: fault injection
    /// uses this to exercise the timeout path.
    ///
    /// On timeout the command may still be executed later, so the caller
    /// must reset the controller before freeing memory the command names.
    pub(crate) fn submit_and_wait(&self, mut cmd: Command, ring: bool) -> Result<Completion> {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let cid = state
            .slots
            .iter()
            .position(|s| matches!(s, Slot::Free))
            .ok_or(EBUSY)?;
        let tail = state.sq.push().ok_or(EBUSY)?;
        cmd.set_cid(u16::try_from(cid)?);
        self.sq_mem.write(usize::from(tail), cmd)?;
        if let Some(slot) = state.slots.get_mut(cid) {
            *slot = Slot::Waiting;
        }
        if ring {
            // The SQE write above is ordered before this MMIO write.
            self.sq_doorbell.ring(state.sq.tail().into());
        }

        let deadline = Deadline::after_ms(ADMIN_TIMEOUT_MS);
        loop {
            match guard.slots.get(cid).copied() {
                Some(Slot::Done(cqe)) => {
                    if let Some(slot) = guard.slots.get_mut(cid) {
                        *slot = Slot::Free;
                    }
                    return Ok(cqe);
                }
                Some(Slot::Waiting) => {}
                _ => return Err(EINVAL),
            }
            if deadline.expired() {
                if let Some(slot) = guard.slots.get_mut(cid) {
                    *slot = Slot::Abandoned;
                }
                return Err(etimedout());
            }
            let jiffies = msecs_to_jiffies(deadline.remaining_ms().max(1));
            if let CondVarTimeoutResult::Signal { .. } = self
                .completed
                .wait_interruptible_timeout(&mut guard, jiffies)
            {
                // A pending signal makes every interruptible wait return at
                // once; the command still owns its slot and memory, so keep
                // waiting for it, sleeping uninterruptibly between checks.
                drop(guard);
                msleep(1);
                guard = self.state.lock();
            }
        }
    }
}

impl IrqHandler for AdminQueue {
    fn handle_irq(&self) -> IrqReturn {
        let mut guard = self.state.lock();
        let state = &mut *guard;
        let mut handled = 0u32;
        while let Some(cqe) = posted_entry(&self.cq_mem, &state.cq) {
            state.cq.advance();
            state.sq.update_head(cqe.sq_head());
            handled += 1;
            match state.slots.get_mut(usize::from(cqe.cid())) {
                Some(slot @ Slot::Waiting) => *slot = Slot::Done(cqe),
                Some(slot @ Slot::Abandoned) => *slot = Slot::Free,
                _ => dev_warn!(
                    &self.pdev,
                    "admin completion for unknown command id {}\n",
                    cqe.cid()
                ),
            }
        }
        if handled == 0 {
            return IrqReturn::None;
        }
        self.cq_doorbell.ring(state.cq.head().into());
        drop(guard);
        self.completed.notify_all();
        IrqReturn::Handled
    }
}

/// Reads the completion entry at the head of `cq` from `cq_mem` (four
/// dwords per entry) if the controller has posted it, i.e. if its phase bit
/// is the one `cq` expects.
pub(crate) fn posted_entry(cq_mem: &CoherentArray<u32>, cq: &CqRing) -> Option<Completion> {
    let index = usize::from(cq.head());
    let base = index.checked_mul(CQE_DWORDS)?;
    let dw3 = cq_mem.read(base + 3)?;
    if !cq.is_new(dw3 & (1 << 16) != 0) {
        return None;
    }
    // The phase bit was read first; the rest of the entry must not be
    // read from before it.
    dma_rmb();
    let mut bytes = [0u8; 16];
    for (i, chunk) in bytes.chunks_exact_mut(4).enumerate() {
        let dw = if i == 3 { dw3 } else { cq_mem.read(base + i)? };
        chunk.copy_from_slice(&dw.to_le_bytes());
    }
    Some(Completion::from_bytes(bytes))
}
