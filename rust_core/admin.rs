// SPDX-License-Identifier: GPL-2.0

//! The admin queue: commands submitted one by one on queue pair 0, each
//! waited for with a bound, completed by interrupt (NVMe Base
//! Specification 2.0, section 3.3).

#![deny(unsafe_code)]

use crate::queue::{QueuePair, ShadowDoorbells};
use crate::registers::Registers;
use crate::spec::command::Command;
use crate::spec::completion::{Completion, Status, StatusKind};
use crate::spec::regs::{Acq, Aqa, Asq};
use crate::sys::irq::{IrqHandler, IrqReturn};
use crate::sys::param;
use crate::sys::pci::PciDevice;
use crate::sys::print::{dev_err, dev_info, dev_warn};
use crate::sys::sync::{new_irq_spinlock, IrqSpinLock};
use crate::sys::time::{etimedout, msleep, Deadline};
use kernel::alloc::flags::GFP_KERNEL;
use kernel::error::{
    code::{EACCES, EBUSY, EINVAL, EIO},
    Error, Result,
};
use kernel::new_condvar;
use kernel::prelude::*;
use kernel::sync::{Arc, CondVar, CondVarTimeoutResult};
use kernel::time::msecs_to_jiffies;

/// Entries in each admin queue; commands are sent one at a time during
/// bring-up and teardown, so a small queue is plenty.
pub(crate) const ADMIN_DEPTH: u16 = 32;

/// How long an admin command may take before it is given up: the
/// `admin_timeout` module parameter, in milliseconds (at least a second).
pub(crate) fn admin_timeout_ms() -> u32 {
    param::admin_timeout().clamp(1, 3600) * 1000
}

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
    /// An Abort for command `cid` of queue `qid`, which nobody waits for:
    /// its completion is logged and frees the slot.
    Abort { qid: u16, cid: u16 },
    /// An Asynchronous Event Request, outstanding until the controller
    /// has an event; its completion is kept for [`AdminQueue::take_event`].
    Event,
}

/// Most events kept until the work item takes them; the controller does
/// not report another of a kind before its log page is read, so a few do.
const MAX_EVENTS: usize = 8;

/// What is told of each asynchronous event the admin queue takes (the
/// layer above, which handles them).
pub(crate) trait EventListener: Send + Sync {
    /// An event was kept for [`AdminQueue::take_event`].
    fn event(&self);
}

/// Events reported and not yet handled, and whom to tell.
struct Events {
    results: [u32; MAX_EVENTS],
    count: usize,
    /// Who handles events; `None` outside [`EventSink`]'s lifetime.
    sink: Option<Arc<dyn EventListener>>,
}

/// The admin queue pair of one controller and its waiters.
#[pin_data]
pub(crate) struct AdminQueue {
    pdev: PciDevice,
    pair: Arc<QueuePair>,
    #[pin]
    slots: IrqSpinLock<[Slot; ADMIN_DEPTH as usize]>,
    #[pin]
    completed: CondVar,
    #[pin]
    events: IrqSpinLock<Events>,
}

impl AdminQueue {
    /// Allocates the admin queue pair in DMA memory.
    pub(crate) fn new(regs: &Registers) -> Result<Arc<Self>> {
        let pair = QueuePair::new(regs, 0, ADMIN_DEPTH, Some(0), None)?;
        Arc::pin_init(
            pin_init!(Self {
                pdev: regs.pdev().clone(),
                pair,
                slots <- new_irq_spinlock!([Slot::Free; ADMIN_DEPTH as usize], "rsnvme_admin_slots"),
                completed <- new_condvar!("rsnvme_admin_completed"),
                events <- new_irq_spinlock!(
                    Events {
                        results: [0; MAX_EVENTS],
                        count: 0,
                        sink: None,
                    },
                    "rsnvme_admin_events"
                ),
            }),
            GFP_KERNEL,
        )
    }

    /// Tells a disabled controller where the admin queues are (AQA, ASQ,
    /// ACQ), for the next enable.
    pub(crate) fn program(&self, regs: &Registers) -> Result {
        let depth = u32::from(ADMIN_DEPTH);
        let (sq, cq) = self.pair.dma_handles();
        regs.write(Aqa::for_sizes(depth, depth).ok_or(EINVAL)?)?;
        regs.write(Asq(sq))?;
        regs.write(Acq(cq))
    }

    /// The queue pair, for fault injection.
    pub(crate) fn pair(&self) -> &QueuePair {
        &self.pair
    }

    /// Sends Abort for command `cid` of I/O queue `qid` without waiting
    /// for it; its outcome is logged when it completes.
    pub(crate) fn abort(&self, qid: u16, cid: u16) -> Result {
        self.submit_unwaited(Command::abort(qid, cid), Slot::Abort { qid, cid }, |_| {
            false
        })
    }

    /// Submits `cmd` from a free slot marked `kind`, without waiting for it
    /// (`record` handles its completion); does nothing if a slot already
    /// matches `unless`. `EBUSY` when no slot is free.
    fn submit_unwaited(&self, mut cmd: Command, kind: Slot, unless: fn(&Slot) -> bool) -> Result {
        let mut slots = self.slots.lock();
        if slots.iter().any(unless) {
            return Ok(());
        }
        let slot = slots
            .iter()
            .position(|s| matches!(s, Slot::Free))
            .ok_or(EBUSY)?;
        cmd.set_cid(u16::try_from(slot)?);
        *slots.get_mut(slot).ok_or(EINVAL)? = kind;
        drop(slots);
        let submitted = self.pair.submit(cmd, true);
        if submitted.is_err() {
            if let Some(s) = self.slots.lock().get_mut(slot) {
                *s = Slot::Free;
            }
        }
        submitted
    }

    /// Stops the admin queue of a disabled controller: reaps what it
    /// posted, then fails every command still waited for (they were lost
    /// with the reset) and forgets those nobody waits for.
    pub(crate) fn stop(&self) {
        self.pair.stop(|cqe| self.record(cqe));
        let mut slots = self.slots.lock();
        for slot in slots.iter_mut() {
            *slot = match *slot {
                Slot::Waiting => Slot::Done(Completion::with_status(Status::HOST_ABORTED)),
                Slot::Done(cqe) => Slot::Done(cqe),
                // An event request is lost with the controller's state.
                Slot::Free | Slot::Abandoned | Slot::Abort { .. } | Slot::Event => Slot::Free,
            };
        }
        drop(slots);
        self.completed.notify_all();
    }

    /// Makes the stopped admin queue usable again and tells the disabled
    /// controller where it is, for the next enable.
    pub(crate) fn revive(&self, regs: &Registers) -> Result {
        self.pair.revive()?;
        self.program(regs)
    }

    /// Records completion `cqe` for its slot.
    fn record(&self, cqe: &Completion) {
        let mut slots = self.slots.lock();
        match slots.get_mut(usize::from(cqe.cid())) {
            Some(slot @ Slot::Waiting) => *slot = Slot::Done(*cqe),
            Some(slot @ Slot::Abandoned) => *slot = Slot::Free,
            Some(slot @ &mut Slot::Abort { qid, cid }) => {
                // Bit 0 of DW0 set: the command was not aborted.
                let outcome = if cqe.result() & 1 == 0 {
                    "aborted"
                } else {
                    "not aborted"
                };
                dev_info!(
                    &self.pdev,
                    "Abort of queue {qid} command id {cid:#x}: {}, {outcome}\n",
                    cqe.status()
                );
                *slot = Slot::Free;
            }
            Some(slot @ Slot::Event) => {
                *slot = Slot::Free;
                // A failed request (aborted when the queues went away, or
                // beyond the controller's limit) reports nothing.
                if cqe.status().is_success() {
                    self.keep_event(cqe.result());
                }
            }
            _ => dev_warn!(
                &self.pdev,
                "admin completion for unknown command id {}\n",
                cqe.cid()
            ),
        }
    }

    /// Keeps an event's result and schedules the work that handles it.
    fn keep_event(&self, result: u32) {
        let mut events = self.events.lock();
        let at = events.count;
        match events.results.get_mut(at) {
            Some(slot) => {
                *slot = result;
                events.count = at + 1;
            }
            None => dev_warn!(
                &self.pdev,
                "asynchronous event {result:#010x} dropped: too many pending\n"
            ),
        }
        if let Some(listener) = &events.sink {
            listener.event();
        }
    }

    /// Submits an Asynchronous Event Request, unless one is outstanding;
    /// nobody waits for it. Its completion is kept for
    /// [`AdminQueue::take_event`] and the sink's work scheduled.
    pub(crate) fn request_event(&self) -> Result {
        self.submit_unwaited(Command::async_event_request(), Slot::Event, |s| {
            matches!(s, Slot::Event)
        })
    }

    /// The oldest event reported and not yet taken.
    pub(crate) fn take_event(&self) -> Option<u32> {
        let mut events = self.events.lock();
        let count = events.count;
        if count == 0 {
            return None;
        }
        let first = events.results.first().copied();
        events.results.copy_within(1..count, 0);
        events.count = count - 1;
        first
    }
}

/// While it lives, the asynchronous events of an admin queue are told to
/// a listener (which may hold the admin queue: dropping this breaks that
/// cycle).
pub(crate) struct EventSink {
    admin: Arc<AdminQueue>,
}

impl EventSink {
    /// Makes `admin`'s events be told to `listener`.
    pub(crate) fn new(admin: &Arc<AdminQueue>, listener: Arc<dyn EventListener>) -> Self {
        admin.events.lock().sink = Some(listener);
        Self {
            admin: admin.clone(),
        }
    }
}

impl Drop for EventSink {
    fn drop(&mut self) {
        // Taken out under the lock, dropped after it.
        let listener = self.admin.events.lock().sink.take();
        drop(listener);
    }
}

impl AdminQueue {
    /// Submits `cmd` and sleeps until it completes or the admin timeout
    /// ([`admin_timeout_ms`]) passes (`ETIMEDOUT`).
    ///
    /// On timeout the command may still be executed later, so the caller
    /// must reset the controller before freeing memory the command names.
    pub(crate) fn submit_and_wait(&self, cmd: Command) -> Result<Completion> {
        self.submit_and_wait_for(cmd, admin_timeout_ms())
    }

    /// [`AdminQueue::submit_and_wait`] with a timeout of `timeout_ms`
    /// milliseconds (a user's passthrough command chooses its own).
    pub(crate) fn submit_and_wait_for(
        &self,
        mut cmd: Command,
        timeout_ms: u32,
    ) -> Result<Completion> {
        let mut slots = self.slots.lock();
        let cid = slots
            .iter()
            .position(|s| matches!(s, Slot::Free))
            .ok_or(EBUSY)?;
        cmd.set_cid(u16::try_from(cid)?);
        // The interrupt handler takes the queue's locks before `slots`, so
        // submit without holding it; the slot is reserved meanwhile.
        *slots.get_mut(cid).ok_or(EINVAL)? = Slot::Waiting;
        drop(slots);
        let submitted = self.pair.submit(cmd, true);
        slots = self.slots.lock();
        if let Err(e) = submitted {
            if let Some(slot) = slots.get_mut(cid) {
                *slot = Slot::Free;
            }
            return Err(e);
        }

        let deadline = Deadline::after_ms(timeout_ms);
        loop {
            match slots.get(cid).copied() {
                Some(Slot::Done(cqe)) => {
                    if let Some(slot) = slots.get_mut(cid) {
                        *slot = Slot::Free;
                    }
                    return Ok(cqe);
                }
                Some(Slot::Waiting) => {}
                _ => return Err(EINVAL),
            }
            if deadline.expired() {
                if let Some(slot) = slots.get_mut(cid) {
                    *slot = Slot::Abandoned;
                }
                return Err(etimedout());
            }
            let jiffies = msecs_to_jiffies(deadline.remaining_ms().max(1));
            if let CondVarTimeoutResult::Signal { .. } = self
                .completed
                .wait_interruptible_timeout(&mut slots, jiffies)
            {
                // A pending signal makes every interruptible wait return at
                // once; the command still owns its slot and memory, so keep
                // waiting for it, sleeping uninterruptibly between checks.
                drop(slots);
                msleep(1);
                slots = self.slots.lock();
            }
        }
    }
}

impl IrqHandler for AdminQueue {
    fn handle_irq(&self) -> IrqReturn {
        let reaped = self.pair.reap(|cqe| self.record(cqe));
        if reaped == 0 {
            return IrqReturn::None;
        }
        self.completed.notify_all();
        IrqReturn::Handled
    }
}

/// Maps an NVMe status to the kernel error a failed command returns.
fn status_error(kind: StatusKind) -> Error {
    match kind {
        StatusKind::InvalidOpcode | StatusKind::InvalidField | StatusKind::InvalidNamespace => {
            EINVAL
        }
        StatusKind::AccessDenied => EACCES,
        _ => EIO,
    }
}

impl AdminQueue {
    /// Runs one admin command and checks its status; `what` names it in
    /// error messages. A timeout disables the controller, so that the
    /// command can no longer write to memory the caller is about to free.
    pub(crate) fn command(&self, regs: &Registers, cmd: Command, what: &str) -> Result<Completion> {
        let cqe = match self.submit_and_wait(cmd) {
            Ok(cqe) => cqe,
            Err(e) if e == etimedout() => {
                dev_err!(
                    &self.pdev,
                    "{what} timed out after {} ms; resetting the controller\n",
                    admin_timeout_ms()
                );
                // If the reset fails too, it logged why; the caller fails
                // either way.
                let _ = regs.disable();
                return Err(etimedout());
            }
            Err(e) => {
                dev_err!(&self.pdev, "{what} could not be submitted: {e:?}\n");
                return Err(e);
            }
        };
        let status = cqe.status();
        if !status.is_success() {
            dev_err!(&self.pdev, "{what} failed: {status}\n");
            return Err(status_error(status.kind()));
        }
        Ok(cqe)
    }

    /// Set Features (Number of Queues): asks for `wanted` I/O queue pairs
    /// and returns how many the controller grants (NSQA in bits 15:0,
    /// NCQA in bits 31:16 of the result, both zero-based).
    pub(crate) fn set_queue_count(&self, regs: &Registers, wanted: u16) -> Result<u32> {
        let cmd = Command::set_features_num_queues(wanted, wanted);
        let cqe = self.command(regs, cmd, "Set Features (Number of Queues)")?;
        let sq = (cqe.result() & 0xffff) + 1;
        let cq = (cqe.result() >> 16) + 1;
        Ok(sq.min(cq))
    }

    /// Doorbell Buffer Config: hands `shadow`'s buffers to the controller
    /// and starts using them. Before the I/O queues are created.
    pub(crate) fn set_shadow_doorbells(
        &self,
        regs: &Registers,
        shadow: &ShadowDoorbells,
    ) -> Result {
        shadow.clear()?;
        self.command(regs, shadow.config_command(), "Doorbell Buffer Config")?;
        shadow.activate();
        Ok(())
    }

    /// Creates I/O queue pair `queue` on the controller, CQ first.
    pub(crate) fn create_io_queue(&self, regs: &Registers, queue: &QueuePair) -> Result {
        let (create_cq, create_sq) = queue.create_commands().ok_or(EINVAL)?;
        self.command(regs, create_cq, "Create I/O Completion Queue")?;
        self.command(regs, create_sq, "Create I/O Submission Queue")?;
        Ok(())
    }

    /// Deletes I/O queue pair `queue` on the controller, SQ first.
    pub(crate) fn delete_io_queue(&self, regs: &Registers, queue: &QueuePair) -> Result {
        let (delete_sq, delete_cq) = queue.delete_commands();
        self.command(regs, delete_sq, "Delete I/O Submission Queue")?;
        self.command(regs, delete_cq, "Delete I/O Completion Queue")?;
        Ok(())
    }
}
