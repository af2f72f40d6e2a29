// SPDX-License-Identifier: GPL-2.0

//! The admin queue (NVMe Base Specification 2.0, section 3.3): queue pair
//! 0 behind a blk-mq tag set of its own, as the C driver's admin tag set.
//! Every admin command, the driver's own and those from user space, is a
//! request: many can be outstanding at once, each is timed out, cancelled
//! by a reset and waited for as I/O is, and no lock is held while one
//! runs.
//!
//! Two kinds of command live outside the tag set, with command
//! identifiers beyond its tags: the Asynchronous Event Request, which is
//! outstanding until the controller has an event, and Abort, which an I/O
//! timeout must be able to send when every tag is taken (no more at once
//! than the controller's Abort Command Limit allows).

#![deny(unsafe_code)]

mod commands;
mod ops;

pub(crate) use commands::run_request;

use crate::data::map_prps;
use crate::fault::{Fault, Faults, Flag};
use crate::queue::{QueuePair, ShadowDoorbells};
use crate::registers::Registers;
use crate::spec::command::{command_id, split_command_id, Command};
use crate::spec::completion::{Completion, Status, StatusKind};
use crate::spec::regs::{Acq, Aqa, Asq};
use crate::state::{State, StateMachine};
use crate::sys::blk::{
    BlkStatus, CompletionBatch, DataDir, DiskFile, HeldQuiesce, Limits, Operations, OwnRequest,
    Request, RequestQueue, Requests, TagSet, TagSetRef, TimedOut, TimeoutAction,
};
use crate::sys::dmapool::{DmaPool, PoolBlock};
use crate::sys::irq::{IrqHandler, IrqReturn};
use crate::sys::param;
use crate::sys::pci::{DmaStopped, PciDevice};
use crate::sys::print::{dev_err, dev_info, dev_warn};
use crate::sys::sync::{new_irq_spinlock, IrqSpinLock};
use crate::sys::sysfs::Attributes;
use crate::sys::time::etimedout;
use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};
use kernel::alloc::flags::GFP_KERNEL;
use kernel::error::{
    code::{EACCES, EBUSY, EINVAL, EIO, ENODEV, ENOTTY},
    Error, Result,
};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};

/// Entries in the admin submission and completion queues.
pub(crate) const ADMIN_DEPTH: u16 = 32;

/// Most Abort commands the driver has outstanding at once, whatever the
/// controller's Abort Command Limit allows.
const MAX_ABORTS: u32 = 4;

/// The command identifier tag of the Asynchronous Event Request: the last
/// one a full queue (depth less one) can hold.
const EVENT_TAG: u32 = ADMIN_DEPTH as u32 - 2;

/// The first tag of the Abort commands, below the event request's.
const FIRST_ABORT_TAG: u32 = EVENT_TAG - MAX_ABORTS;

/// Tags of the admin tag set: every entry a full queue holds, less the
/// event request and the aborts.
const BLK_DEPTH: u32 = FIRST_ABORT_TAG;

const _: () = assert!(BLK_DEPTH + MAX_ABORTS + 1 == ADMIN_DEPTH as u32 - 1);

/// Most bytes one passthrough command may move, if the controller's MDTS
/// allows as much: the admin queue's limit, and user I/O commands'.
pub(crate) const MAX_PASSTHRU_BYTES: u32 = 1 << 20;

/// How long an admin command may take before it is given up: the
/// `admin_timeout` module parameter, in milliseconds (at least a second).
pub(crate) fn admin_timeout_ms() -> u32 {
    param::admin_timeout().clamp(1, 3600) * 1000
}

/// Most events kept until the work item takes them; the controller does
/// not report another of a kind before its log page is read, so a few do.
const MAX_EVENTS: usize = 8;

/// What the layer above is told by the admin queue.
pub(crate) trait EventListener: Send + Sync {
    /// An event was kept for [`AdminQueue::take_event`].
    fn event(&self);
    /// An admin command timed out on a live controller: it needs a reset,
    /// which takes the command back.
    fn timed_out(&self);
}

/// The commands outside the tag set, and the events kept.
struct Specials {
    /// Whether the Asynchronous Event Request is outstanding.
    event_outstanding: bool,
    /// The command each outstanding Abort aborts, as (queue, command id).
    aborts: [Option<(u16, u16)>; MAX_ABORTS as usize],
    /// How many Aborts may be outstanding: ACL + 1, at most `MAX_ABORTS`.
    abort_limit: u32,
    results: [u32; MAX_EVENTS],
    count: usize,
    /// Who handles events and timeouts; `None` outside [`EventSink`]'s
    /// lifetime.
    sink: Option<Arc<dyn EventListener>>,
}

/// Driver data of one admin request.
pub(crate) struct AdminPdu {
    /// The command to send; its data pointer is filled in for mapped data.
    cmd: Command,
    /// The completion, or a host-aborted status if it was taken back.
    cqe: Completion,
    /// The PRP list of a request with mapped data.
    list: Option<PoolBlock>,
    /// Whether the command comes from user space.
    user: bool,
}

/// The admin queue's side of its tag set: the queue pair and what its
/// requests need.
#[pin_data]
pub(crate) struct AdminShared {
    pdev: PciDevice,
    regs: Arc<Registers>,
    pair: Arc<QueuePair>,
    pool: Arc<DmaPool>,
    page_size: u32,
    state: Arc<StateMachine>,
    faults: Faults,
    /// Set when a timeout disabled the controller, for the messages of
    /// the commands it took back.
    disabled_by_timeout: AtomicBool,
    /// Whether commands may reach the controller: false from
    /// [`AdminQueue::quiesce`] to [`AdminQueue::release`], so that the
    /// event request and Abort, which bypass the tag set, wait too.
    open: AtomicBool,
    #[pin]
    specials: IrqSpinLock<Specials>,
}

/// The admin queue of one controller.
///
/// Fields drop in order: the request queue before its tag set.
#[pin_data]
pub(crate) struct AdminQueue {
    queue: RequestQueue<AdminShared>,
    set: Arc<TagSet<AdminShared>>,
    /// The quiesce [`AdminQueue::stop`] keeps until the queue is revived
    /// or released.
    #[pin]
    held: Mutex<Option<HeldQuiesce>>,
}

/// The admin queue has no disk; its requests reach no ioctl.
pub(crate) struct NoDisk;

impl Attributes for NoDisk {
    fn show(&self, _index: usize, _out: &mut fmt::Formatter<'_>) -> fmt::Result {
        Ok(())
    }

    fn store(&self, _index: usize, _input: &[u8]) -> Result {
        Err(EINVAL)
    }
}

impl DiskFile for NoDisk {
    fn ioctl(&self, _cmd: u32, _arg: usize, _partition: bool) -> Result<isize> {
        Err(ENOTTY)
    }
}

/// User memory a passthrough command moves data to or from.
#[derive(Clone, Copy)]
pub(crate) struct UserData {
    pub(crate) addr: usize,
    pub(crate) len: u32,
    pub(crate) dir: DataDir,
}

/// Records that a request was taken back without completing.
fn mark_host_aborted(pdu: &mut AdminPdu) {
    pdu.cqe = Completion::with_status(Status::HOST_ABORTED);
}

impl AdminQueue {
    /// Allocates the admin queue pair in DMA memory and the tag set and
    /// request queue in front of it; requests may be sent once the
    /// controller is enabled with it. `page_size` is the controller's
    /// memory page size; `state` the controller's state machine.
    pub(crate) fn new(
        regs: &Arc<Registers>,
        state: Arc<StateMachine>,
        page_size: u32,
        faults: Faults,
    ) -> Result<Arc<Self>> {
        let pdev = regs.pdev().clone();
        let pair = QueuePair::new(regs, 0, ADMIN_DEPTH, Some(0), false, None)?;
        let pool = DmaPool::new(&pdev, c"rsnvme admin prp", page_size as usize)?;
        let owner = pdev.clone();
        let shared = Arc::pin_init(
            pin_init!(AdminShared {
                pdev: owner,
                regs: regs.clone(),
                pair,
                pool,
                page_size,
                state,
                faults,
                disabled_by_timeout: AtomicBool::new(false),
                open: AtomicBool::new(true),
                specials <- new_irq_spinlock!(
                    Specials {
                        event_outstanding: false,
                        aborts: [None; MAX_ABORTS as usize],
                        abort_limit: 1,
                        results: [0; MAX_EVENTS],
                        count: 0,
                        sink: None,
                    },
                    "rsnvme_admin_specials"
                ),
            }),
            GFP_KERNEL,
        )?;
        let set = Arc::new(
            TagSet::new(shared, &pdev, 1, 0, BLK_DEPTH, admin_timeout_ms())?,
            GFP_KERNEL,
        )?;
        let limits = Limits {
            logical_block_size: 512,
            physical_block_size: 512,
            io_min: 512,
            io_opt: 0,
            max_hw_sectors: MAX_PASSTHRU_BYTES >> 9,
            max_segments: crate::sys::blk::MAX_SEGMENTS as u16,
            virt_boundary_mask: page_size as usize - 1,
            // Dword-aligned user buffers are mapped as they are.
            dma_alignment: 3,
            write_cache: false,
            max_discard_sectors: 0,
            max_discard_segments: 0,
            discard_granularity: 0,
            max_write_zeroes_sectors: 0,
        };
        let queue = RequestQueue::new(&set, &limits)?;
        Arc::pin_init(
            pin_init!(Self {
                queue,
                set,
                held <- new_mutex!(None, "rsnvme_admin_held"),
            }),
            GFP_KERNEL,
        )
    }

    fn shared(&self) -> &AdminShared {
        self.set.data()
    }

    /// Tells a disabled controller where the admin queues are (AQA, ASQ,
    /// ACQ), for the next enable.
    pub(crate) fn program(&self, regs: &Registers) -> Result {
        let depth = u32::from(ADMIN_DEPTH);
        let (sq, cq) = self.shared().pair.dma_handles();
        regs.write(Aqa::for_sizes(depth, depth).ok_or(EINVAL)?)?;
        regs.write(Asq(sq))?;
        regs.write(Acq(cq))
    }

    /// The queue pair, for fault injection.
    pub(crate) fn pair(&self) -> &QueuePair {
        &self.shared().pair
    }

    /// Lets `limit` Abort commands be outstanding at once (the
    /// controller's ACL + 1), up to the driver's own limit.
    pub(crate) fn set_abort_limit(&self, limit: u32) {
        self.shared().specials.lock().abort_limit = limit.clamp(1, MAX_ABORTS);
    }

    /// Sends Abort for command `cid` of I/O queue `qid` without waiting
    /// for it; its outcome is logged when it completes. `EBUSY` if as many
    /// Aborts as the controller allows are outstanding.
    pub(crate) fn abort(&self, qid: u16, cid: u16) -> Result {
        let shared = self.shared();
        if !shared.open.load(Ordering::Acquire) {
            return Err(EBUSY);
        }
        let mut specials = shared.specials.lock();
        let limit = specials.abort_limit as usize;
        let slot = specials
            .aborts
            .iter()
            .take(limit)
            .position(Option::is_none)
            .ok_or(EBUSY)?;
        let tag = FIRST_ABORT_TAG + slot as u32;
        if let Some(s) = specials.aborts.get_mut(slot) {
            *s = Some((qid, cid));
        }
        drop(specials);
        let mut cmd = Command::abort(qid, cid);
        cmd.set_cid(command_id(tag, 0));
        let submitted = shared.pair.submit(cmd, true);
        if submitted.is_err() {
            if let Some(s) = shared.specials.lock().aborts.get_mut(slot) {
                *s = None;
            }
        }
        submitted
    }

    /// Submits an Asynchronous Event Request, unless one is outstanding;
    /// nobody waits for it. Its completion is kept for
    /// [`AdminQueue::take_event`] and the sink told.
    pub(crate) fn request_event(&self) -> Result {
        let shared = self.shared();
        if !shared.open.load(Ordering::Acquire) {
            return Err(EBUSY);
        }
        let mut specials = shared.specials.lock();
        if specials.event_outstanding {
            return Ok(());
        }
        specials.event_outstanding = true;
        drop(specials);
        let mut cmd = Command::async_event_request();
        cmd.set_cid(command_id(EVENT_TAG, 0));
        let submitted = shared.pair.submit(cmd, true);
        if submitted.is_err() {
            shared.specials.lock().event_outstanding = false;
        }
        submitted
    }

    /// The oldest event reported and not yet taken.
    pub(crate) fn take_event(&self) -> Option<u32> {
        let mut specials = self.shared().specials.lock();
        let count = specials.count;
        if count == 0 {
            return None;
        }
        let first = specials.results.first().copied();
        specials.results.copy_within(1..count, 0);
        specials.count = count - 1;
        first
    }

    /// Holds the admin queue: no request is sent to the controller until
    /// [`AdminQueue::revive`] or [`AdminQueue::release`]; new ones wait.
    /// Done already if it is held.
    pub(crate) fn quiesce(&self) {
        self.shared().open.store(false, Ordering::Release);
        let mut held = self.held.lock();
        if held.is_none() {
            *held = Some(self.set.borrowed().quiesce().hold());
        }
    }

    /// Lets requests reach the admin queue again (a stopped queue fails
    /// them). Nothing to do if it is not held.
    pub(crate) fn release(&self) {
        if let Some(held) = self.held.lock().take() {
            if let Ok(quiesced) = self.set.borrowed().unhold(held) {
                drop(quiesced);
            }
        }
        self.shared().open.store(true, Ordering::Release);
    }

    /// Stops the admin queue of a controller whose DMA is stopped (`dma`):
    /// holds it ([`AdminQueue::quiesce`]), reaps what the controller
    /// posted, then takes back every request still outstanding (they were
    /// lost with the controller's state): each ends with a host-aborted
    /// status. The event request and aborts are forgotten. Returns how
    /// many requests were taken back.
    pub(crate) fn stop(&self, dma: &DmaStopped) -> u32 {
        self.quiesce();
        let shared = self.shared();
        let set = self.set.borrowed();
        shared.pair.stop(|cqe| shared.record(&set, cqe));
        // The quiesce is kept (held again) once the requests are cancelled.
        let mut held = self.held.lock();
        let cancelled = match held.take().map(|h| set.unhold(h)) {
            Some(Ok(quiesced)) => {
                let n = set
                    .cancel_all(&quiesced, dma, mark_host_aborted)
                    .unwrap_or(0);
                *held = Some(quiesced.hold());
                n
            }
            Some(Err(other)) => {
                *held = Some(other);
                0
            }
            None => 0,
        };
        drop(held);
        let mut specials = shared.specials.lock();
        specials.event_outstanding = false;
        specials.aborts = [None; MAX_ABORTS as usize];
        cancelled
    }

    /// The end of a controller whose DMA is off for good (shut down at
    /// removal): takes back what is outstanding (those waiting get a
    /// host-aborted status) and fails what is sent from now on.
    pub(crate) fn end(&self) {
        let dma = self.shared().pdev.stop_dma();
        self.stop(&dma);
        // The stopped queue fails every request from now on.
        self.release();
    }

    /// Makes the stopped admin queue usable again while the controller's
    /// DMA is stopped (`dma`), tells the disabled controller where it is,
    /// for the next enable. It stays held: once the controller is enabled,
    /// [`AdminQueue::release`] lets commands through (none may reach a
    /// disabled controller).
    pub(crate) fn revive(&self, regs: &Registers, dma: &DmaStopped) -> Result {
        self.shared().pair.revive(dma)?;
        self.shared()
            .disabled_by_timeout
            .store(false, Ordering::Relaxed);
        self.program(regs)
    }

    /// Puts back an event taken with [`AdminQueue::take_event`] whose log
    /// page could not be read (a reset took the command back): it is
    /// handled again after the reset.
    pub(crate) fn put_back_event(&self, result: u32) {
        let mut specials = self.shared().specials.lock();
        let count = specials.count;
        if count >= MAX_EVENTS {
            return;
        }
        specials.results.copy_within(0..count, 1);
        if let Some(first) = specials.results.first_mut() {
            *first = result;
        }
        specials.count = count + 1;
    }

    /// Whether events wait to be handled.
    pub(crate) fn events_pending(&self) -> bool {
        self.shared().specials.lock().count > 0
    }
}

/// While it lives, the asynchronous events and admin timeouts of an admin
/// queue are told to a listener (which may hold the admin queue: dropping
/// this breaks that cycle).
pub(crate) struct EventSink {
    admin: Arc<AdminQueue>,
}

impl EventSink {
    /// Makes `admin`'s events and timeouts be told to `listener`.
    pub(crate) fn new(admin: &Arc<AdminQueue>, listener: Arc<dyn EventListener>) -> Self {
        admin.shared().specials.lock().sink = Some(listener);
        Self {
            admin: admin.clone(),
        }
    }
}

impl Drop for EventSink {
    fn drop(&mut self) {
        // Taken out under the lock, dropped after it.
        let listener = self.admin.shared().specials.lock().sink.take();
        drop(listener);
    }
}
