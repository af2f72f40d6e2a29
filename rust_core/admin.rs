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

use crate::data::map_prps;
use crate::fault::{Fault, Faults};
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
        let pair = QueuePair::new(regs, 0, ADMIN_DEPTH, Some(0), None)?;
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

    /// Makes the stopped admin queue usable again, tells the disabled
    /// controller where it is, for the next enable. It stays held: once
    /// the controller is enabled, [`AdminQueue::release`] lets commands
    /// through (none may reach a disabled controller).
    pub(crate) fn revive(&self, regs: &Registers) -> Result {
        self.shared().pair.revive()?;
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

impl AdminShared {
    /// Hands completion `cqe` to its request, or to the event request or
    /// abort it belongs to.
    fn record(&self, set: &TagSetRef<'_, Self>, cqe: &Completion) {
        let (tag, _) = split_command_id(cqe.cid());
        if tag < BLK_DEPTH {
            let Some(rq) = set.in_flight(0, tag) else {
                dev_warn!(
                    &self.pdev,
                    "admin completion for unknown command id {:#x}\n",
                    cqe.cid()
                );
                return;
            };
            if command_id(tag, rq.sequence()) != cqe.cid() {
                dev_warn!(
                    &self.pdev,
                    "stale admin completion for command id {:#x}, ignored\n",
                    cqe.cid()
                );
                return;
            }
            if !rq.complete(|pdu| pdu.cqe = *cqe) {
                dev_warn!(
                    &self.pdev,
                    "duplicate admin completion for command id {:#x}, ignored\n",
                    cqe.cid()
                );
            }
            return;
        }
        if tag == EVENT_TAG {
            self.specials.lock().event_outstanding = false;
            // A failed request (aborted when the queues went away, or
            // beyond the controller's limit) reports nothing.
            if cqe.status().is_success() {
                self.keep_event(cqe.result());
            }
            return;
        }
        let slot = tag.wrapping_sub(FIRST_ABORT_TAG) as usize;
        let aborted = self
            .specials
            .lock()
            .aborts
            .get_mut(slot)
            .and_then(Option::take);
        match aborted {
            Some((qid, cid)) => {
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
            }
            None => dev_warn!(
                &self.pdev,
                "admin completion for unknown command id {:#x}\n",
                cqe.cid()
            ),
        }
    }

    /// Keeps an event's result and tells the listener.
    fn keep_event(&self, result: u32) {
        let mut specials = self.specials.lock();
        let at = specials.count;
        match specials.results.get_mut(at) {
            Some(slot) => {
                *slot = result;
                specials.count = at + 1;
            }
            None => dev_warn!(
                &self.pdev,
                "asynchronous event {result:#010x} dropped: too many pending\n"
            ),
        }
        if let Some(listener) = &specials.sink {
            listener.event();
        }
    }

    /// The listener to tell of a timeout, if any.
    fn listener(&self) -> Option<Arc<dyn EventListener>> {
        self.specials.lock().sink.clone()
    }

    /// Releases what a request held while in flight.
    fn release(&self, rq: &mut Request<Self>) {
        rq.dma_unmap(&self.pdev);
        rq.pdu().list = None;
    }

    /// Disables the controller and stops its DMA, then takes back every
    /// admin request (they end host-aborted): a command timed out where
    /// no reset can take it back (during bring-up, a reset's bring-up,
    /// suspend or teardown). Whatever comes next fails; nothing can write
    /// to the memory the commands named any more.
    fn disable_and_cancel(&self, set: &TagSetRef<'_, Self>) {
        self.disabled_by_timeout.store(true, Ordering::Relaxed);
        let quiesced = set.quiesce();
        // If the reset fails too it logged why; the DMA stops regardless.
        let _ = self.regs.disable();
        let dma = self.pdev.stop_dma();
        self.pair.stop(|cqe| self.record(set, cqe));
        let _ = set.cancel_all(&quiesced, &dma, mark_host_aborted);
        // The DMA stays off: the token is dropped without resuming. The
        // stopped queue fails what is sent from now on.
        drop(dma);
        drop(quiesced);
    }
}

impl Operations for AdminShared {
    type Queue = QueuePair;
    type Disk = NoDisk;
    type Pdu = AdminPdu;

    fn new_pdu() -> AdminPdu {
        AdminPdu {
            cmd: Command::default(),
            cqe: Completion::default(),
            list: None,
            user: false,
        }
    }

    fn queue(&self, index: u32) -> Option<&QueuePair> {
        (index == 0).then_some(&*self.pair)
    }

    fn irq_affinity(&self) -> Option<(&PciDevice, u32)> {
        None
    }

    fn queue_rq(&self, queue: &QueuePair, rq: &mut Request<Self>, last: bool) -> BlkStatus {
        if self.state.get() == State::Dead {
            return BlkStatus::IoError;
        }
        let mut cmd = rq.pdu().cmd;
        if rq.bytes() > 0 {
            match map_prps(rq, &self.pdev, &self.pool, self.page_size) {
                Ok(prps) => {
                    cmd.set_prps(prps.prp1, prps.prp2);
                    rq.pdu().list = prps.list;
                }
                Err(status) => {
                    self.release(rq);
                    return status;
                }
            }
        }
        rq.pdu().cqe = Completion::default();
        let user = rq.pdu().user;
        let sequence = rq.start();
        cmd.set_cid(command_id(rq.tag(), sequence));
        if user && self.faults.inject(Fault::UserCommandLost) {
            dev_warn!(
                &self.pdev,
                "admin command {:#04x} from user space not sent (injected)\n",
                cmd.opcode()
            );
            return BlkStatus::Ok;
        }
        match queue.submit(cmd, last) {
            Ok(()) => BlkStatus::Ok,
            // Whoever claimed it (a cancel) ends it; blk-mq must not.
            Err(_) if !rq.claim() => BlkStatus::Ok,
            Err(e) => {
                self.release(rq);
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
        // The outcome is in the pdu, for the one who waits.
        rq.end(BlkStatus::Ok);
    }

    fn timeout(&self, rq: &TimedOut<'_, Self>, set: &TagSetRef<'_, Self>) -> TimeoutAction {
        // A lost interrupt: the completion is there already.
        self.pair.reap(|cqe| self.record(set, cqe));
        if rq.completed() {
            dev_warn!(
                &self.pdev,
                "admin timeout: completion found by polling (missed interrupt)\n"
            );
            return TimeoutAction::Done;
        }
        let state = self.state.get();
        match state {
            // The reset in progress takes it back.
            State::Resetting => return TimeoutAction::ResetTimer,
            State::Live => {
                if let Some(listener) = self.listener() {
                    dev_warn!(
                        &self.pdev,
                        "admin command id {:#x} timed out: resetting the controller\n",
                        command_id(rq.tag(), rq.sequence())
                    );
                    listener.timed_out();
                    return TimeoutAction::ResetTimer;
                }
            }
            _ => {}
        }
        dev_err!(
            &self.pdev,
            "admin command id {:#x} timed out ({state}): disabling the controller\n",
            command_id(rq.tag(), rq.sequence())
        );
        self.disable_and_cancel(set);
        TimeoutAction::Done
    }

    fn poll(
        &self,
        _queue: &QueuePair,
        _index: u32,
        _set: &TagSetRef<'_, Self>,
        _batch: &mut CompletionBatch<'_>,
    ) -> u32 {
        0
    }

    fn work(&self, _set: &TagSetRef<'_, Self>) {}

    fn event_work(&self, _set: &TagSetRef<'_, Self>) {}
}

impl IrqHandler for AdminQueue {
    fn handle_irq(&self) -> IrqReturn {
        let shared = self.shared();
        let set = self.set.borrowed();
        if shared.pair.reap(|cqe| shared.record(&set, cqe)) == 0 {
            return IrqReturn::None;
        }
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

/// Sends a driver-private request from `requests`, filled in by `fill`,
/// with `data` mapped into it, and waits until it ends; `timeout_ms` 0
/// is the tag set's default. `outcome` reads the result from the pdu.
pub(crate) fn run_request<T: Operations, R>(
    requests: Requests<'_, T>,
    data: Option<UserData>,
    timeout_ms: u32,
    fill: impl FnOnce(&mut T::Pdu),
    outcome: impl FnOnce(&mut T::Pdu) -> R,
) -> Result<R> {
    let dir = data.map_or(DataDir::In, |d| d.dir);
    let mut rq: OwnRequest<'_, T> = requests.alloc(dir)?;
    fill(rq.pdu());
    if timeout_ms > 0 {
        rq.set_timeout_ms(timeout_ms);
    }
    if let Some(d) = data.filter(|d| d.len > 0) {
        rq.map_user(d.addr, d.len)?;
    }
    let status = rq.execute();
    let unmapped = rq.unmap_user();
    if status != BlkStatus::Ok {
        return Err(if status == BlkStatus::Resource {
            EBUSY
        } else {
            EIO
        });
    }
    unmapped?;
    Ok(outcome(rq.pdu()))
}

impl AdminQueue {
    /// Sends `cmd`, with `data` (if any) mapped from user memory, as a
    /// request and waits until it ends: completed by the controller,
    /// taken back by a reset (a host-aborted status), or failed.
    /// `timeout_ms` 0 is the admin timeout. `user` marks a command from
    /// user space.
    fn run(
        &self,
        cmd: Command,
        data: Option<UserData>,
        timeout_ms: u32,
        user: bool,
    ) -> Result<Completion> {
        if self.shared().state.get() == State::Dead {
            return Err(ENODEV);
        }
        run_request(
            self.queue.requests(),
            data,
            timeout_ms,
            |pdu: &mut AdminPdu| {
                pdu.cmd = cmd;
                pdu.user = user;
                pdu.list = None;
            },
            |pdu| pdu.cqe,
        )
    }

    /// Sends `cmd`, whose data (if any) its PRPs already point to in DMA
    /// memory that the caller keeps until this returns, and waits for it
    /// (see [`AdminQueue::run`]). When this returns the controller no
    /// longer uses that memory: a request ends only once the controller
    /// completed it or its DMA was stopped. `ETIMEDOUT` if the command was
    /// taken back.
    pub(crate) fn execute(&self, cmd: Command) -> Result<Completion> {
        let cqe = self.run(cmd, None, 0, false)?;
        if cqe.status() == Status::HOST_ABORTED {
            return Err(etimedout());
        }
        Ok(cqe)
    }

    /// Sends a command from user space with its data mapped from user
    /// memory and waits for it (up to `timeout_ms`, then the controller is
    /// reset, which takes it back): see [`AdminQueue::run`].
    pub(crate) fn user_command(
        &self,
        cmd: Command,
        data: Option<UserData>,
        timeout_ms: u32,
    ) -> Result<Completion> {
        self.run(cmd, data, timeout_ms, true)
    }

    /// Runs one admin command of the driver's own and checks its status;
    /// `what` names it in error messages.
    pub(crate) fn command(&self, cmd: Command, what: &str) -> Result<Completion> {
        let cqe = match self.execute(cmd) {
            Ok(cqe) => cqe,
            Err(e) if e == etimedout() => {
                if self.shared().disabled_by_timeout.load(Ordering::Relaxed) {
                    dev_err!(
                        &self.shared().pdev,
                        "{what} timed out after {} ms; resetting the controller\n",
                        admin_timeout_ms()
                    );
                } else {
                    dev_err!(
                        &self.shared().pdev,
                        "{what} was taken back by a controller reset\n"
                    );
                }
                return Err(e);
            }
            Err(e) => {
                dev_err!(&self.shared().pdev, "{what} failed: {e:?}\n");
                return Err(e);
            }
        };
        let status = cqe.status();
        if !status.is_success() {
            dev_err!(&self.shared().pdev, "{what} failed: {status}\n");
            return Err(status_error(status.kind()));
        }
        Ok(cqe)
    }

    /// Set Features (Number of Queues): asks for `wanted` I/O queue pairs
    /// and returns how many the controller grants (NSQA in bits 15:0,
    /// NCQA in bits 31:16 of the result, both zero-based).
    pub(crate) fn set_queue_count(&self, wanted: u16) -> Result<u32> {
        let cmd = Command::set_features_num_queues(wanted, wanted);
        let cqe = self.command(cmd, "Set Features (Number of Queues)")?;
        let sq = (cqe.result() & 0xffff) + 1;
        let cq = (cqe.result() >> 16) + 1;
        Ok(sq.min(cq))
    }

    /// Doorbell Buffer Config: hands `shadow`'s buffers to the controller
    /// and starts using them. Before the I/O queues are created.
    pub(crate) fn set_shadow_doorbells(&self, shadow: &ShadowDoorbells) -> Result {
        shadow.clear()?;
        self.command(shadow.config_command(), "Doorbell Buffer Config")?;
        shadow.activate();
        Ok(())
    }

    /// Creates I/O queue pair `queue` on the controller, CQ first.
    pub(crate) fn create_io_queue(&self, queue: &QueuePair) -> Result {
        let (create_cq, create_sq) = queue.create_commands().ok_or(EINVAL)?;
        self.command(create_cq, "Create I/O Completion Queue")?;
        self.command(create_sq, "Create I/O Submission Queue")?;
        Ok(())
    }

    /// Deletes I/O queue pair `queue` on the controller, SQ first.
    pub(crate) fn delete_io_queue(&self, queue: &QueuePair) -> Result {
        let (delete_sq, delete_cq) = queue.delete_commands();
        self.command(delete_sq, "Delete I/O Submission Queue")?;
        self.command(delete_cq, "Delete I/O Completion Queue")?;
        Ok(())
    }
}
