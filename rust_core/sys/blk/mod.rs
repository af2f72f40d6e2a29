// SPDX-License-Identifier: GPL-2.0

//! A blk-mq abstraction: tag set, gendisk and requests
//! (include/linux/blk-mq.h, include/linux/blkdev.h).
//!
//! 6.12's `kernel::block::mq` has no per-queue data, tag lookup, timeouts
//! or request accessors, so this module wraps the C API itself. A driver
//! implements [`Operations`]; the tag set's `driver_data` points to it and
//! each hardware context's `driver_data` to its [`Operations::Queue`]. Each
//! request's pdu holds the driver's [`Operations::Pdu`] and a scatterlist
//! for DMA-mapping the request's data.

use super::__this_module;
use super::bindings;
use super::compat;
use super::pci::{DmaStopped, PciDevice};
use super::Static;
use core::cell::UnsafeCell;
use core::ffi::{c_int, c_uint, c_void, CStr};
use core::fmt;
use core::marker::PhantomData;
use core::mem::{size_of, MaybeUninit};
use core::ptr::{addr_of_mut, NonNull};
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::alloc::{flags::GFP_KERNEL, KBox};
use kernel::error::{code::EINVAL, to_result, Error, Result};
use kernel::sync::Arc;

pub(crate) use super::blk_request::TimedOut;
use super::blk_request::{PduBox, RequestState};
pub(crate) use super::blk_types::{BlkStatus, Limits, Op, Operations, TimeoutAction, MAX_SEGMENTS};
use super::blk_types::{Cancel, NameWriter, RawSet};
use super::misc_types::FileOps;
use super::sysfs_types::Attributes;

/// The bios of a request the driver owns, as (start sector, bytes); see
/// [`Request::bio_ranges`].
///
/// # Invariants
///
/// `bio` is null or a bio of the request borrowed for `'a`, whose list
/// does not change during that borrow.
pub(crate) struct BioRanges<'a> {
    bio: *const bindings::bio,
    _rq: PhantomData<&'a bindings::request>,
}

impl Iterator for BioRanges<'_> {
    type Item = (u64, u32);

    #[allow(unsafe_code)]
    fn next(&mut self) -> Option<Self::Item> {
        // SAFETY: By the type invariant the bio, if not null, is live and
        // unchanged for the borrow of its request.
        let bio = unsafe { self.bio.as_ref() }?;
        // INVARIANT: The next bio of the same list, or null at its end.
        self.bio = bio.bi_next;
        Some((bio.bi_iter.bi_sector, bio.bi_iter.bi_size))
    }
}

/// A request owned by the driver: between `queue_rq` and its end.
///
/// # Invariants
///
/// `rq` is a live request of a tag set driven by `T`, owned by the driver
/// while this value exists; its pdu is an initialised `PduBox<T>`.
pub(crate) struct Request<T: Operations> {
    rq: NonNull<bindings::request>,
    _p: PhantomData<T>,
}

impl<T: Operations> Request<T> {
    /// # Safety
    ///
    /// `rq` must be a live request of a `T` tag set that the caller owns.
    #[allow(unsafe_code)]
    unsafe fn from_raw(rq: *mut bindings::request) -> Option<Self> {
        // INVARIANT: By the function's requirements.
        NonNull::new(rq).map(|rq| Self {
            rq,
            _p: PhantomData,
        })
    }

    /// The C request, for reading its fields.
    #[allow(unsafe_code)]
    pub(super) fn raw(&self) -> &bindings::request {
        // SAFETY: Live by the type invariant; the driver owns it, so blk-mq
        // does not change the fields read through this.
        unsafe { self.rq.as_ref() }
    }

    /// The request's pdu, owned by the driver with the request.
    #[allow(unsafe_code)]
    pub(super) fn pdu_box(&mut self) -> &mut PduBox<T> {
        // SAFETY: The pdu directly follows the request (`blk_mq_rq_to_pdu`)
        // and holds a `PduBox<T>` by the type invariant; ownership of the
        // request makes the borrow exclusive.
        unsafe { &mut *self.rq.as_ptr().add(1).cast::<PduBox<T>>() }
    }

    /// Whether this is the first time the driver sees the request (not a
    /// requeued one); marks it seen (`RQF_DONTPREP`).
    #[allow(unsafe_code)]
    pub(crate) fn first_dispatch(&mut self) -> bool {
        // SAFETY: The driver owns the request; blk-mq reads `rq_flags`
        // only once the request is handed back.
        let flags = unsafe { &mut (*self.rq.as_ptr()).rq_flags };
        let first = *flags & bindings::RSNVME_RQF_DONTPREP == 0;
        *flags |= bindings::RSNVME_RQF_DONTPREP;
        first
    }

    /// The data of the disk the request is for.
    #[allow(unsafe_code)]
    pub(crate) fn disk(&self) -> Option<&T::Disk> {
        // SAFETY: The request's queue is live while it has requests;
        // `queuedata` was set by `Disk::add` to the `T::Disk` that the
        // `Disk` keeps alive until the queue is gone.
        unsafe { (*self.raw().q).queuedata.cast::<T::Disk>().as_ref() }
    }

    /// Tells blk-mq the request is now with the device (starts its
    /// timer) and returns the number of this start (wrapping), which a
    /// completion must name (see [`InFlight::sequence`]).
    #[allow(unsafe_code)]
    pub(crate) fn start(&mut self) -> u8 {
        // The device completes the request only after the doorbell write
        // that follows, which is ordered after these stores (as `writel`
        // is).
        let sequence = self.pdu_box().state.start();
        // SAFETY: The request is live and owned by the driver.
        unsafe { bindings::blk_mq_start_request(self.rq.as_ptr()) };
        sequence
    }

    /// DMA-maps the request's data for `pdev`, in the direction its
    /// operation implies, and returns the number of mapped segments.
    #[allow(unsafe_code)]
    pub(crate) fn dma_map(&mut self, pdev: &PciDevice) -> Result<u32> {
        let dir = self.op().dma_direction();
        let rq = self.rq.as_ptr();
        // SAFETY: The driver owns the request; `nr_phys_segments` is fixed
        // once it is dispatched.
        let segments = unsafe { (*rq).nr_phys_segments };
        if segments == 1 {
            if let Some(mapped) = self.dma_map_single(pdev, dir)? {
                return Ok(mapped);
            }
        }
        let pdu = self.pdu_box();
        let sg = pdu.sg.as_mut_ptr();
        // Only as many entries as the request has segments are cleared
        // (not the whole table) and end-marked, as the C driver does.
        let segments = c_uint::from(segments).clamp(1, MAX_SEGMENTS as c_uint);
        // SAFETY: `sg` is this request's own table of `MAX_SEGMENTS`
        // entries, of which `segments` are used; the queue limits cap
        // requests at `MAX_SEGMENTS` segments, and `__blk_rq_map_sg`
        // fills at most `nr_phys_segments` entries.
        let nents = unsafe {
            bindings::sg_init_table(sg, segments);
            compat::blk_rq_map_sg(rq, sg)
        };
        let nents = c_uint::try_from(nents).map_err(|_| EINVAL)?;
        if nents == 0 || nents as usize > MAX_SEGMENTS {
            return Err(EINVAL);
        }
        // SAFETY: The device is valid and `sg` holds `nents` entries.
        let mapped =
            unsafe { bindings::dma_map_sg_attrs(pdev.as_device(), sg, nents as c_int, dir, 0) };
        let mapped = c_uint::try_from(mapped).map_err(|_| EINVAL)?;
        if mapped == 0 {
            return Err(kernel::error::code::ENOMEM);
        }
        pdu.mapped_nents = nents;
        pdu.mapped = mapped;
        pdu.dir = dir;
        Ok(mapped)
    }

    /// The fast path of [`Request::dma_map`] for a request of one
    /// segment, as the C driver has: maps its only bio vector directly,
    /// without clearing and filling the scatterlist. `None` (nothing
    /// mapped) if the vector does not cover the whole request.
    #[allow(unsafe_code)]
    fn dma_map_single(
        &mut self,
        pdev: &PciDevice,
        dir: bindings::dma_data_direction,
    ) -> Result<Option<u32>> {
        let rq = self.rq.as_ptr();
        // SAFETY: The driver owns the request; its bio chain and the bio's
        // vector table are fixed while it is in flight, and the iterator
        // of the first bio points into that table (`req_bvec` and
        // `mp_bvec_iter_bvec`, inline in C).
        let (page, offset, len, total) = unsafe {
            let bio = (*rq).bio;
            if bio.is_null() || (*rq).rq_flags & bindings::RSNVME_RQF_SPECIAL_PAYLOAD != 0 {
                return Ok(None);
            }
            let iter = (*bio).bi_iter;
            let bv = &*(*bio).bi_io_vec.add(iter.bi_idx as usize);
            let len = iter
                .bi_size
                .min(bv.bv_len.saturating_sub(compat::bvec_done(&iter)));
            let offset = bv.bv_offset.saturating_add(compat::bvec_done(&iter));
            (bv.bv_page, offset, len, (*rq).__data_len)
        };
        if len == 0 || len != total {
            return Ok(None);
        }
        // SAFETY: `page` and `offset..offset + len` are the request's data,
        // which stays allocated until the request ends (after the unmap).
        let addr = unsafe {
            bindings::dma_map_page_attrs(
                pdev.as_device(),
                page,
                offset as usize,
                len as usize,
                dir,
                0,
            )
        };
        // `dma_mapping_error`, inline in C; the debug hook marks the
        // mapping as checked.
        #[cfg(CONFIG_DMA_API_DEBUG)]
        // SAFETY: `addr` was just returned for this device.
        unsafe {
            bindings::debug_dma_mapping_error(pdev.as_device(), addr)
        };
        if addr == bindings::RSNVME_DMA_MAPPING_ERROR {
            return Err(kernel::error::code::ENOMEM);
        }
        let pdu = self.pdu_box();
        pdu.single_dma = addr;
        pdu.single_len = len;
        pdu.dir = dir;
        Ok(Some(1))
    }

    /// Start sector (512 bytes) and length in bytes of each bio of the
    /// request, in order: a discard request that blk-mq merged from
    /// several bios covers one range per bio.
    pub(crate) fn bio_ranges(&self) -> BioRanges<'_> {
        // INVARIANT: `bio` heads the request's bio list, which does not
        // change while the driver owns the request (only ending it, which
        // takes the request, walks and frees the bios).
        BioRanges {
            bio: self.raw().bio,
            _rq: PhantomData,
        }
    }

    /// The largest number of ranges the request's queue lets one discard
    /// request have (`queue_max_discard_segments`).
    #[allow(unsafe_code)]
    pub(crate) fn max_discard_segments(&self) -> u16 {
        // SAFETY: The request's queue is live while it has requests, and
        // its limits are only changed with the queue frozen (no request
        // owned by a driver).
        unsafe { (*self.raw().q).limits.max_discard_segments }
    }

    /// Undoes [`Request::dma_map`], if it was done.
    #[allow(unsafe_code)]
    pub(crate) fn dma_unmap(&mut self, pdev: &PciDevice) {
        let pdu = self.pdu_box();
        if pdu.single_len != 0 {
            // SAFETY: Mapped with these arguments by `dma_map_single`.
            unsafe {
                bindings::dma_unmap_page_attrs(
                    pdev.as_device(),
                    pdu.single_dma,
                    pdu.single_len as usize,
                    pdu.dir,
                    0,
                )
            };
            pdu.single_len = 0;
        }
        if pdu.mapped_nents == 0 {
            return;
        }
        // SAFETY: The table was mapped with these arguments by `dma_map`.
        unsafe {
            bindings::dma_unmap_sg_attrs(
                pdev.as_device(),
                pdu.sg.as_mut_ptr(),
                pdu.mapped_nents as c_int,
                pdu.dir,
                0,
            )
        };
        pdu.mapped_nents = 0;
        pdu.mapped = 0;
    }

    /// Ends the request with `status`, giving it back to blk-mq.
    #[allow(unsafe_code)]
    pub(crate) fn end(self, status: BlkStatus) {
        // SAFETY: The driver owns the request and gives it up here.
        unsafe { bindings::blk_mq_end_request(self.rq.as_ptr(), status.raw()) };
    }

    /// Ends the request successfully as part of `batch` (when the batch is
    /// ended), or at once if blk-mq cannot end it in a batch (scheduler
    /// tags, an `end_io` callback, a poller's batch of another driver).
    #[allow(unsafe_code)]
    pub(crate) fn end_ok_in(self, batch: &mut CompletionBatch<'_>) {
        let rq = self.rq.as_ptr();
        // SAFETY: The driver owns the request.
        let (flags, end_io) = unsafe { ((*rq).rq_flags, (*rq).end_io) };
        if flags & bindings::RSNVME_RQF_SCHED_TAGS != 0 || end_io.is_some() {
            self.end(BlkStatus::Ok);
            return;
        }
        let iob = batch.iob();
        // A poller's batch may already hold another driver's requests, to
        // be ended by that driver's callback: then this one ends alone.
        let ours = end_batch as unsafe extern "C" fn(*mut bindings::io_comp_batch) as usize;
        match iob.complete {
            None => iob.complete = Some(end_batch),
            Some(f) if f as usize == ours => {}
            Some(_) => {
                self.end(BlkStatus::Ok);
                return;
            }
        }
        iob.need_ts |= flags & bindings::RSNVME_RQF_NEED_TS != 0;
        // SAFETY: The driver owns the request and hands it to the batch,
        // at the head of its list (`rq_list_add_head`, inline in C).
        unsafe {
            (*rq).__bindgen_anon_1.rq_next = iob.req_list.head;
            iob.req_list.head = rq;
            if iob.req_list.tail.is_null() {
                iob.req_list.tail = rq;
            }
        }
    }

    /// Gives the request back to blk-mq to be sent again later (after a
    /// controller reset, or to retry it); the driver must have released
    /// what it held for it.
    #[allow(unsafe_code)]
    pub(crate) fn requeue(self) {
        // SAFETY: The driver owns the request and gives it up here; the
        // requeue list is kicked so it is dispatched once the queue runs.
        unsafe { bindings::blk_mq_requeue_request(self.rq.as_ptr(), true) };
    }

    /// The request's bookkeeping shared with completions and timeouts.
    #[allow(unsafe_code)]
    pub(super) fn shared(&self) -> &RequestState {
        // SAFETY: As in `pdu_box`; only the atomics are read through it.
        unsafe { &(*self.rq.as_ptr().add(1).cast::<PduBox<T>>()).state }
    }

    /// The index of the hardware queue a started request was sent on.
    #[allow(unsafe_code)]
    pub(super) fn queue_index(&self) -> u32 {
        // SAFETY: A started request has its hardware context.
        unsafe { (*self.raw().mq_hctx).queue_num }
    }
}

/// A request found by its tag, in flight, to be completed.
pub(crate) struct InFlight<T: Operations>(Request<T>);

impl<T: Operations> InFlight<T> {
    /// The number of the request's current start ([`Request::start`]).
    pub(crate) fn sequence(&self) -> u8 {
        self.0.shared().sequence()
    }

    /// Whether the block layer's `fail_io_timeout` fault injection wants
    /// this completion dropped, so that the request times out.
    #[allow(unsafe_code)]
    pub(crate) fn fake_timeout(&self) -> bool {
        #[cfg(CONFIG_FAIL_IO_TIMEOUT)]
        {
            let q = self.0.raw().q;
            // SAFETY: The request's queue is live while it has requests;
            // `blk_should_fake_timeout` is inline in C: flag, then the
            // fault attribute's decision.
            unsafe {
                let flags = core::ptr::addr_of!((*q).queue_flags).read_volatile();
                if (flags >> bindings::RSNVME_QUEUE_FLAG_FAIL_IO) & 1 != 0 {
                    return bindings::__blk_should_fake_timeout(q);
                }
            }
        }
        false
    }

    /// Claims the request's completion and lets `f` store the result in
    /// the pdu. If the request should complete on the CPU that submitted
    /// it and this is another one, it is sent there (to
    /// [`Operations::complete`]) and `Some(None)` returned; else it is
    /// returned to be completed here. `None`, doing nothing, if the
    /// request was already completed or cancelled.
    #[allow(unsafe_code)]
    pub(crate) fn complete_here(
        mut self,
        f: impl FnOnce(&mut T::Pdu),
    ) -> Option<Option<Request<T>>> {
        if !self.0.claim() {
            return None;
        }
        // The claim makes this the request's only owner.
        f(self.0.pdu());
        // SAFETY: The request is in flight and its completion is ours.
        if unsafe { bindings::blk_mq_complete_request_remote(self.0.rq.as_ptr()) } {
            return Some(None);
        }
        Some(Some(self.0))
    }

    /// Claims the request's completion, lets `f` store the result in the
    /// pdu and hands the request to [`Operations::complete`], possibly on
    /// the CPU that submitted it. Returns false, doing nothing, if the
    /// request was already completed or cancelled.
    #[allow(unsafe_code)]
    pub(crate) fn complete(mut self, f: impl FnOnce(&mut T::Pdu)) -> bool {
        if !self.0.claim() {
            return false;
        }
        // The claim makes this the request's only owner.
        f(self.0.pdu());
        // SAFETY: The request is in flight and its completion is ours.
        unsafe { bindings::blk_mq_complete_request(self.0.rq.as_ptr()) };
        true
    }
}

/// Successful completions ended together (`struct io_comp_batch`), as the
/// C driver does: tags are given back and queue references dropped once
/// per batch instead of once per request. The batch is either the
/// driver's own (the interrupt handler's), ended when it is dropped, or
/// the one a poller passed to [`Operations::poll`], which the poller ends
/// through its `complete` callback once polling is done.
///
/// # Invariants
///
/// Every request on the list of `caller` (if given, else `own`) that this
/// batch put there is owned by the batch: its completion was claimed, the
/// driver released what it held for it, and it is ended exactly once:
/// `own`'s when the batch is dropped, `caller`'s by blk-mq's poller, which
/// calls `complete` for a non-empty list after `mq_ops->poll` returns.
pub(crate) struct CompletionBatch<'a> {
    own: bindings::io_comp_batch,
    caller: Option<&'a mut bindings::io_comp_batch>,
}

impl CompletionBatch<'static> {
    /// An empty batch of the driver's own.
    #[allow(unsafe_code)]
    pub(crate) fn new() -> Self {
        Self {
            // SAFETY: All zeroes is an empty batch (no requests, no
            // callback).
            own: unsafe { MaybeUninit::zeroed().assume_init() },
            caller: None,
        }
    }
}

impl CompletionBatch<'_> {
    /// The list requests are added to: the poller's if given, else ours.
    fn iob(&mut self) -> &mut bindings::io_comp_batch {
        match &mut self.caller {
            Some(iob) => iob,
            None => &mut self.own,
        }
    }
}

impl Drop for CompletionBatch<'_> {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        if !self.own.req_list.head.is_null() {
            // SAFETY: By the type invariant the requests on `own`'s list
            // are the batch's to end, once; the list is emptied by the call.
            unsafe { bindings::blk_mq_end_request_batch(&mut self.own) };
        }
    }
}

/// `io_comp_batch.complete` of a [`CompletionBatch`]: ends its requests.
///
/// # Safety
///
/// `iob` is the `iob` of a live [`CompletionBatch`].
#[allow(unsafe_code)]
unsafe extern "C" fn end_batch(iob: *mut bindings::io_comp_batch) {
    // SAFETY: By the requirements the requests are the batch's to end.
    unsafe { bindings::blk_mq_end_request_batch(iob) };
}

impl RawSet {
    /// The `RawSet` around a tag set.
    ///
    /// # Safety
    ///
    /// `set` must be the `set` field of a `RawSet`.
    #[allow(unsafe_code)]
    unsafe fn of(set: *mut bindings::blk_mq_tag_set) -> *mut RawSet {
        // SAFETY: container_of, by the requirements.
        unsafe { set.byte_sub(core::mem::offset_of!(RawSet, set)).cast() }
    }
}

/// Lockdep class of the tag sets' work items.
#[allow(unsafe_code)]
static WORK_KEY: Static<UnsafeCell<bindings::lock_class_key>> =
    // SAFETY: A lock class key is zero-initialised static data.
    Static(UnsafeCell::new(unsafe {
            MaybeUninit::zeroed().assume_init()
        }));

/// Lockdep class of the tag sets' event work items.
#[allow(unsafe_code)]
static EVENT_WORK_KEY: Static<UnsafeCell<bindings::lock_class_key>> =
    // SAFETY: A lock class key is zero-initialised static data.
    Static(UnsafeCell::new(unsafe {
            MaybeUninit::zeroed().assume_init()
        }));

/// A blk-mq tag set driven by `T`, for the requests of one PCI device,
/// with two work items for the driver ([`Operations::work`],
/// [`Operations::event_work`]), which can run at the same time.
///
/// # Invariants
///
/// `raw.set` was initialised by `blk_mq_alloc_tag_set` with `driver_data`
/// pointing to `*data` and the ops table of `T`; `raw.work` runs
/// `run_work::<T>` and `raw.event_work` `run_event_work::<T>`. On drop
/// the work items are cancelled, then the set freed.
/// `pdev` is the device the requests' data is mapped for.
pub(crate) struct TagSet<T: Operations> {
    raw: KBox<UnsafeCell<RawSet>>,
    data: Arc<T>,
    _pdev: PciDevice,
}

#[allow(unsafe_code)]
// SAFETY: blk-mq synchronises access to the tag set itself; `T` is
// `Send + Sync`.
unsafe impl<T: Operations> Send for TagSet<T> {}
#[allow(unsafe_code)]
// SAFETY: As above.
unsafe impl<T: Operations> Sync for TagSet<T> {}

impl<T: Operations> TagSet<T> {
    /// Allocates a tag set of `queues` hardware queues of `depth` tags
    /// for requests that `pdev` transfers. The last `poll_queues` of them
    /// (fewer than `queues`) have no interrupt: blk-mq sends polled I/O
    /// there and reaps it through [`Operations::poll`].
    #[allow(unsafe_code)]
    pub(crate) fn new(
        data: Arc<T>,
        pdev: &PciDevice,
        queues: u32,
        poll_queues: u32,
        depth: u32,
        timeout_ms: u32,
    ) -> Result<Self> {
        if poll_queues >= queues {
            return Err(EINVAL);
        }
        // SAFETY: All zeroes is a valid, empty `blk_mq_tag_set` and a
        // work item yet to be initialised.
        let zeroed: RawSet = unsafe { MaybeUninit::zeroed().assume_init() };
        let boxed = KBox::new(UnsafeCell::new(zeroed), GFP_KERNEL)?;
        let both = boxed.get();
        // SAFETY: `both` is fresh and exclusively owned; the key is static.
        unsafe {
            (*both).pdev = pdev.as_raw();
            (*both).poll_queues = poll_queues;
            bindings::rust_helper_init_work_with_key(
                addr_of_mut!((*both).work),
                Some(run_work::<T>),
                false,
                compat::char_ptr(c"rsnvme_work"),
                WORK_KEY.0.get(),
            );
            bindings::rust_helper_init_work_with_key(
                addr_of_mut!((*both).event_work),
                Some(run_event_work::<T>),
                false,
                compat::char_ptr(c"rsnvme_event_work"),
                EVENT_WORK_KEY.0.get(),
            )
        };
        // SAFETY: As above.
        let raw = unsafe { addr_of_mut!((*both).set) };
        // SAFETY: `raw` is the fresh, exclusively owned set being filled in.
        unsafe {
            (*raw).ops = &Ops::<T>::TABLE;
            (*raw).nr_hw_queues = queues;
            // The default, read and poll maps (`map_queues` fills them in),
            // or the default one alone.
            (*raw).nr_maps = if poll_queues > 0 {
                bindings::hctx_type_HCTX_MAX_TYPES
            } else {
                1
            };
            (*raw).queue_depth = depth;
            (*raw).cmd_size = size_of::<PduBox<T>>() as c_uint;
            (*raw).numa_node = bindings::NUMA_NO_NODE;
            (*raw).timeout = kernel::time::msecs_to_jiffies(timeout_ms) as c_uint;
            (*raw).flags = compat::TAG_SET_FLAGS;
            (*raw).driver_data = core::ptr::from_ref::<T>(&data).cast_mut().cast();
        }
        // SAFETY: The set is filled in; `data` outlives it (held below).
        to_result(unsafe { bindings::blk_mq_alloc_tag_set(raw) })?;
        // INVARIANT: The set was allocated with `driver_data` = `data`.
        Ok(Self {
            raw: boxed,
            data,
            _pdev: pdev.clone(),
        })
    }

    #[allow(unsafe_code)]
    fn as_ptr(&self) -> *mut bindings::blk_mq_tag_set {
        // SAFETY: Only the field's address is taken.
        unsafe { addr_of_mut!((*self.raw.get()).set) }
    }

    /// A handle for looking up and cancelling requests.
    pub(crate) fn borrowed(&self) -> TagSetRef<'_, T> {
        TagSetRef {
            set: self.as_ptr(),
            _p: PhantomData,
        }
    }

    /// The driver data.
    pub(crate) fn data(&self) -> &Arc<T> {
        &self.data
    }

    /// Cancels the event work item ([`Operations::event_work`]): takes it
    /// off the queue, or waits until it has run. It may be queued again
    /// afterwards. Must not be called from the event work itself.
    #[allow(unsafe_code)]
    pub(crate) fn cancel_event_work(&self) {
        // SAFETY: The work item was initialised by `new` and lives as long
        // as `self`; from any other context than itself it may be
        // cancelled (the requirement above).
        unsafe { bindings::cancel_work_sync(addr_of_mut!((*self.raw.get()).event_work)) };
    }
}

impl<T: Operations> Drop for TagSet<T> {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: The work items were initialised by `new`; once
        // cancelled they neither run nor are queued, so nothing reaches
        // the set. The event work is cancelled first: it may queue the
        // other (through a reset request), never the reverse.
        unsafe {
            bindings::cancel_work_sync(addr_of_mut!((*self.raw.get()).event_work));
            bindings::cancel_work_sync(addr_of_mut!((*self.raw.get()).work));
        }
        // SAFETY: Allocated by the type invariant. No disk uses it any
        // more: each `Disk` holds a reference to its tag set.
        unsafe { bindings::blk_mq_free_tag_set(self.as_ptr()) };
    }
}

/// The event work item of a `T` tag set: runs [`Operations::event_work`].
///
/// # Safety
///
/// Called by the workqueue with the `event_work` of a [`RawSet`] inside a
/// live [`TagSet`] of `T` (its drop cancels the work before freeing it).
#[allow(unsafe_code)]
unsafe extern "C" fn run_event_work<T: Operations>(work: *mut bindings::work_struct) {
    // SAFETY: `work` is the `event_work` field of a `RawSet`.
    let both = unsafe {
        work.byte_sub(core::mem::offset_of!(RawSet, event_work))
            .cast::<RawSet>()
    };
    // SAFETY: The set is allocated while its work can run.
    let set = unsafe { addr_of_mut!((*both).set) };
    // SAFETY: As above; `driver_data` is the set's `T`.
    let data = unsafe { Ops::<T>::data(set) };
    data.event_work(&TagSetRef {
        set,
        _p: PhantomData,
    });
}

/// The work item of a `T` tag set: runs [`Operations::work`].
///
/// # Safety
///
/// Called by the workqueue with the `work` of a [`RawSet`] inside a live
/// [`TagSet`] of `T` (its drop cancels the work before freeing it).
#[allow(unsafe_code)]
unsafe extern "C" fn run_work<T: Operations>(work: *mut bindings::work_struct) {
    // SAFETY: `work` is the `work` field of a `RawSet` (container_of).
    let both = unsafe {
        work.byte_sub(core::mem::offset_of!(RawSet, work))
            .cast::<RawSet>()
    };
    // SAFETY: The set is allocated while its work can run.
    let set = unsafe { addr_of_mut!((*both).set) };
    // SAFETY: As above; `driver_data` is the set's `T`.
    let data = unsafe { Ops::<T>::data(set) };
    data.work(&TagSetRef {
        set,
        _p: PhantomData,
    });
}

/// A tag set whose queues are quiesced: no `queue_rq` runs or starts
/// until it is dropped (`blk_mq_quiesce_tagset`).
pub(crate) struct Quiesced<'a> {
    set: *mut bindings::blk_mq_tag_set,
    _p: PhantomData<&'a ()>,
}

impl Drop for Quiesced<'_> {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: The set outlives `'a`; it was quiesced by `quiesce`.
        unsafe { bindings::blk_mq_unquiesce_tagset(self.set) };
    }
}

impl Quiesced<'_> {
    /// Keeps the set quiesced beyond this guard, until
    /// [`TagSetRef::unhold`] takes it back: from suspend to resume.
    pub(crate) fn hold(self) -> HeldQuiesce {
        let held = HeldQuiesce {
            set: self.set as usize,
        };
        // Unquiesced by the guard `unhold` returns instead.
        core::mem::forget(self);
        held
    }
}

/// A tag set left quiesced by [`Quiesced::hold`]. Give it back to
/// [`TagSetRef::unhold`]: dropped, it leaves the set quiesced for good.
#[must_use = "the set stays quiesced until `TagSetRef::unhold` takes this back"]
pub(crate) struct HeldQuiesce {
    /// The set's address, only compared.
    set: usize,
}

/// A borrowed tag set, for the timeout handler and teardown.
pub(crate) struct TagSetRef<'a, T: Operations> {
    set: *mut bindings::blk_mq_tag_set,
    _p: PhantomData<&'a T>,
}

impl<T: Operations> TagSetRef<'_, T> {
    /// The request with `tag` in hardware queue `queue` if it is in flight,
    /// for its completion. Bogus tags from a device give `None`. Calling
    /// it at any time is sound: the request can only be completed through
    /// [`InFlight::complete`], which claims it first, so a late, stale or
    /// duplicate completion never ends a request twice.
    #[allow(unsafe_code)]
    pub(crate) fn in_flight(&self, queue: u32, tag: u32) -> Option<InFlight<T>> {
        let set = self.set;
        // SAFETY: The set is allocated by the type invariant; `tags` has
        // `nr_hw_queues` entries.
        let tags = unsafe {
            if queue >= (*set).nr_hw_queues || tag >= (*set).queue_depth {
                return None;
            }
            *(*set).tags.add(queue as usize)
        };
        // SAFETY: `tags` belongs to this set (`blk_mq_tag_to_rq`, which is
        // inline in C): `rqs` has `nr_tags` entries.
        let rq = unsafe {
            if tags.is_null() || tag >= (*tags).nr_tags {
                return None;
            }
            *(*tags).rqs.add(tag as usize)
        };
        // SAFETY: A request of this set; it is only used below if it is in
        // flight, i.e. owned by the driver.
        let rq = unsafe { Request::<T>::from_raw(rq) }?;
        if rq.raw().state != bindings::mq_rq_state_MQ_RQ_IN_FLIGHT {
            return None;
        }
        Some(InFlight(rq))
    }

    /// Quiesces every queue of the set until the guard is dropped: when
    /// this returns, no `queue_rq` is running and none starts.
    #[allow(unsafe_code)]
    pub(crate) fn quiesce(&self) -> Quiesced<'_> {
        // SAFETY: `set` is an allocated tag set while `self` lives.
        unsafe { bindings::blk_mq_quiesce_tagset(self.set) };
        Quiesced {
            set: self.set,
            _p: PhantomData,
        }
    }

    /// The quiesce `held` kept on this set, as a guard again (dropping it
    /// unquiesces); `held` back if it belongs to another set.
    pub(crate) fn unhold(
        &self,
        held: HeldQuiesce,
    ) -> core::result::Result<Quiesced<'_>, HeldQuiesce> {
        if held.set != self.set as usize {
            return Err(held);
        }
        Ok(Quiesced {
            set: self.set,
            _p: PhantomData,
        })
    }

    /// How many requests the driver has started and not yet completed.
    #[allow(unsafe_code)]
    pub(crate) fn busy(&self) -> u32 {
        let mut count: u32 = 0;
        // SAFETY: `set` is an allocated tag set while `self` lives; the
        // callback gets `count` back as its data, during the call only.
        unsafe {
            bindings::blk_mq_tagset_busy_iter(
                self.set,
                Some(count_one),
                core::ptr::from_mut(&mut count).cast(),
            )
        };
        count
    }

    /// Completes every started request whose completion nobody claimed
    /// yet, after `fail` stored the outcome in its pdu; blk-mq then ends
    /// them through [`Operations::complete`], and this waits for that.
    /// The device's DMA must be stopped (`dma`) so that it writes no
    /// buffer these requests release, and the set quiesced (`quiesced`)
    /// so that none is started meanwhile. Returns how many were
    /// cancelled; `None`, cancelling nothing, if the tokens are for
    /// another set or device.
    #[allow(unsafe_code)]
    pub(crate) fn cancel_all(
        &self,
        quiesced: &Quiesced<'_>,
        dma: &DmaStopped,
        fail: fn(&mut T::Pdu),
    ) -> Option<u32> {
        // SAFETY: `set` is allocated; `pdev` of a `TagSet` is only read.
        let owner = unsafe { Ops::<T>::owner(self.set) };
        if quiesced.set != self.set || dma.device().as_raw() != owner {
            return None;
        }
        let mut cancel = Cancel::<T> { fail, count: 0 };
        // SAFETY: `set` is an allocated tag set while `self` lives; the
        // callback gets `cancel` back as its data, during the call only.
        unsafe {
            bindings::blk_mq_tagset_busy_iter(
                self.set,
                Some(cancel_one::<T>),
                core::ptr::from_mut(&mut cancel).cast(),
            );
            bindings::blk_mq_tagset_wait_completed_request(self.set);
        }
        Some(cancel.count)
    }

    /// Queues the set's work item ([`Operations::work`]) on the unbound
    /// system workqueue, unless it is queued already; returns whether it
    /// was queued now.
    #[allow(unsafe_code)]
    pub(crate) fn schedule_work(&self) -> bool {
        // SAFETY: `set` is the `set` field of a `RawSet` (container_of);
        // its work item is initialised and cancelled before it is freed.
        unsafe {
            let both = RawSet::of(self.set);
            bindings::queue_work_on(
                bindings::RSNVME_WORK_CPU_UNBOUND,
                compat::unbound_wq(),
                addr_of_mut!((*both).work),
            )
        }
    }
}

impl<T: Operations> TagSetRef<'_, T> {
    /// Queues the set's event work item ([`Operations::event_work`]) on
    /// the unbound system workqueue, unless it is queued already; returns
    /// whether it was queued now. May be called from any context.
    #[allow(unsafe_code)]
    pub(crate) fn schedule_event_work(&self) -> bool {
        // SAFETY: As in `schedule_work`.
        unsafe {
            let both = RawSet::of(self.set);
            bindings::queue_work_on(
                bindings::RSNVME_WORK_CPU_UNBOUND,
                compat::unbound_wq(),
                addr_of_mut!((*both).event_work),
            )
        }
    }
}

/// `blk_mq_tagset_busy_iter` callback of [`TagSetRef::cancel_all`].
///
/// # Safety
///
/// `rq` is a started request of a `T` tag set; `data` is the `Cancel<T>`
/// that `cancel_all` passed.
#[allow(unsafe_code)]
unsafe extern "C" fn cancel_one<T: Operations>(
    rq: *mut bindings::request,
    data: *mut c_void,
) -> bool {
    // SAFETY: By the function's requirements; the request is only used
    // through `InFlight::complete`, which claims it first.
    let Some(req) = (unsafe { Request::<T>::from_raw(rq) }) else {
        return true;
    };
    // SAFETY: `data` is `cancel_all`'s `Cancel<T>`, alive during the walk.
    let cancel = unsafe { &mut *data.cast::<Cancel<T>>() };
    if req.raw().state == bindings::mq_rq_state_MQ_RQ_IN_FLIGHT
        && InFlight(req).complete(cancel.fail)
    {
        cancel.count += 1;
    }
    true
}

/// `blk_mq_tagset_busy_iter` callback of [`TagSetRef::busy`].
///
/// # Safety
///
/// `rq` is a started request; `data` is the `u32` that `busy` passed.
#[allow(unsafe_code)]
unsafe extern "C" fn count_one(rq: *mut bindings::request, data: *mut c_void) -> bool {
    // SAFETY: By the function's requirements; only the state is read.
    if unsafe { (*rq).state } == bindings::mq_rq_state_MQ_RQ_IN_FLIGHT {
        // SAFETY: `data` is `busy`'s counter, alive during the walk.
        let count = unsafe { &mut *data.cast::<u32>() };
        *count = count.saturating_add(1);
    }
    true
}

/// The `blk_mq_ops` table for `T`.
struct Ops<T: Operations>(PhantomData<T>);

// Every member is an `unsafe` callback of the C side or its helper.
#[allow(unsafe_code)]
impl<T: Operations> Ops<T> {
    const TABLE: bindings::blk_mq_ops = {
        // SAFETY: All zeroes is a valid ops table with no callbacks.
        let mut ops: bindings::blk_mq_ops = unsafe { MaybeUninit::zeroed().assume_init() };
        ops.queue_rq = Some(Self::queue_rq);
        ops.commit_rqs = Some(Self::commit_rqs);
        ops.complete = Some(Self::complete);
        ops.timeout = Some(Self::timeout);
        ops.init_hctx = Some(Self::init_hctx);
        ops.init_request = Some(Self::init_request);
        ops.exit_request = Some(Self::exit_request);
        ops.map_queues = Some(Self::map_queues);
        ops.poll = Some(Self::poll);
        ops
    };

    /// # Safety
    ///
    /// `set` must be a tag set allocated by [`TagSet::new`] for `T`.
    unsafe fn data<'a>(set: *const bindings::blk_mq_tag_set) -> &'a T {
        // SAFETY: `driver_data` points to the `T` the `TagSet` keeps alive.
        unsafe { &*(*set).driver_data.cast::<T>() }
    }

    /// `blk_mq_ops.queue_rq`.
    ///
    /// # Safety
    ///
    /// Called by blk-mq with a live hctx of a [`TagSet`] of `T` and a request it hands over.
    unsafe extern "C" fn queue_rq(
        hctx: *mut bindings::blk_mq_hw_ctx,
        bd: *const bindings::blk_mq_queue_data,
    ) -> bindings::blk_status_t {
        // SAFETY: blk-mq passes a live hctx of a `T` tag set whose
        // `driver_data` `init_hctx` set to a `T::Queue`, and `bd` with a
        // request it now hands to the driver.
        unsafe {
            let data = Self::data((*(*hctx).queue).tag_set);
            let queue = &*(*hctx).driver_data.cast::<T::Queue>();
            let Some(mut rq) = Request::<T>::from_raw((*bd).rq) else {
                return BlkStatus::IoError.raw();
            };
            data.queue_rq(queue, &mut rq, (*bd).last).raw()
        }
    }

    /// `blk_mq_ops.commit_rqs`.
    ///
    /// # Safety
    ///
    /// Called by blk-mq with a live hctx of a [`TagSet`] of `T`.
    unsafe extern "C" fn commit_rqs(hctx: *mut bindings::blk_mq_hw_ctx) {
        // SAFETY: As in `queue_rq`.
        unsafe {
            let data = Self::data((*(*hctx).queue).tag_set);
            data.commit_rqs(&*(*hctx).driver_data.cast::<T::Queue>());
        }
    }

    /// `blk_mq_ops.complete`.
    ///
    /// # Safety
    ///
    /// Called by blk-mq with a request of a [`TagSet`] of `T` being completed.
    unsafe extern "C" fn complete(rq: *mut bindings::request) {
        // SAFETY: blk-mq hands over a request of a `T` tag set that
        // `blk_mq_complete_request` was called for.
        unsafe {
            let data = Self::data((*(*rq).q).tag_set);
            if let Some(rq) = Request::<T>::from_raw(rq) {
                data.complete(rq);
            }
        }
    }

    /// The device a `T` tag set's requests are mapped for.
    ///
    /// # Safety
    ///
    /// `set` must be the `set` of a live [`TagSet`] of `T`.
    unsafe fn owner(set: *mut bindings::blk_mq_tag_set) -> *mut bindings::pci_dev {
        // SAFETY: By the requirements, `set` sits in a `RawSet` whose
        // `pdev` was written before the set was allocated.
        unsafe { (*RawSet::of(set)).pdev }
    }

    /// `blk_mq_ops.timeout`.
    ///
    /// # Safety
    ///
    /// Called by blk-mq with a started request of a [`TagSet`] of `T`.
    unsafe extern "C" fn timeout(rq: *mut bindings::request) -> bindings::blk_eh_timer_return {
        // SAFETY: blk-mq passes a started request of a `T` tag set, and
        // holds a reference to it during the call.
        unsafe {
            let set = (*(*rq).q).tag_set;
            let data = Self::data(set);
            let Some(req) = Request::<T>::from_raw(rq) else {
                return bindings::blk_eh_timer_return_BLK_EH_DONE;
            };
            let set = TagSetRef {
                set,
                _p: PhantomData,
            };
            data.timeout(&TimedOut { rq: &req }, &set).raw()
        }
    }

    /// `blk_mq_ops.init_hctx`.
    ///
    /// # Safety
    ///
    /// Called by blk-mq with a new hctx and the set's `driver_data`.
    unsafe extern "C" fn init_hctx(
        hctx: *mut bindings::blk_mq_hw_ctx,
        data: *mut c_void,
        index: c_uint,
    ) -> c_int {
        // SAFETY: `data` is the set's `driver_data`, a `T`.
        let queue = unsafe { &*data.cast::<T>() }.queue(index);
        match queue {
            // SAFETY: `hctx` is live; the queue outlives the tag set.
            Some(q) => unsafe {
                (*hctx).driver_data = core::ptr::from_ref(q).cast_mut().cast();
                0
            },
            None => EINVAL.to_errno(),
        }
    }

    /// `blk_mq_ops.init_request`.
    ///
    /// # Safety
    ///
    /// Called by blk-mq with a request whose pdu is `cmd_size` bytes.
    unsafe extern "C" fn init_request(
        _set: *mut bindings::blk_mq_tag_set,
        rq: *mut bindings::request,
        _hctx: c_uint,
        _node: compat::InitRequestNode,
    ) -> c_int {
        // SAFETY: blk-mq allocated `cmd_size` bytes of pdu after `rq`, for
        // a `PduBox<T>`; they are uninitialised, so written, not assigned.
        unsafe {
            let pdu = rq.add(1).cast::<PduBox<T>>();
            addr_of_mut!((*pdu).pdu).write(T::new_pdu());
            addr_of_mut!((*pdu).mapped_nents).write(0);
            addr_of_mut!((*pdu).mapped).write(0);
            addr_of_mut!((*pdu).single_dma).write(0);
            addr_of_mut!((*pdu).single_len).write(0);
            addr_of_mut!((*pdu).dir).write(bindings::dma_data_direction_DMA_FROM_DEVICE);
        }
        0
    }

    /// `blk_mq_ops.exit_request`.
    ///
    /// # Safety
    ///
    /// Called by blk-mq once per request that `init_request` set up.
    unsafe extern "C" fn exit_request(
        _set: *mut bindings::blk_mq_tag_set,
        rq: *mut bindings::request,
        _hctx: c_uint,
    ) {
        // SAFETY: `init_request` wrote the pdu; it is dropped once, here.
        unsafe { core::ptr::drop_in_place(addr_of_mut!((*rq.add(1).cast::<PduBox<T>>()).pdu)) };
    }

    /// `blk_mq_ops.map_queues`: the interrupt-driven queues make up the
    /// default map, spread as their vectors' affinity says; polled queues,
    /// if any, the poll map, spread evenly. Reads and writes share the
    /// default map (an empty read map falls back to it).
    ///
    /// # Safety
    ///
    /// Called by blk-mq with a [`TagSet`] of `T`.
    unsafe extern "C" fn map_queues(set: *mut bindings::blk_mq_tag_set) {
        // SAFETY: `set` is a `T` tag set inside a `RawSet` (`owner`'s
        // requirements); `map` has `nr_maps` entries, which `new` set to
        // one or to all types, and its `mq_map`s are allocated.
        unsafe {
            let poll = (*RawSet::of(set)).poll_queues;
            let total = (*set).nr_hw_queues;
            let default = addr_of_mut!((*set).map[bindings::hctx_type_HCTX_TYPE_DEFAULT as usize]);
            (*default).nr_queues = total.saturating_sub(poll);
            (*default).queue_offset = 0;
            match Self::data(set).irq_affinity() {
                Some((pdev, offset)) => compat::map_hw_queues(default, pdev.as_raw(), offset),
                None => bindings::blk_mq_map_queues(default),
            }
            if (*set).nr_maps <= bindings::hctx_type_HCTX_TYPE_POLL {
                return;
            }
            let read = addr_of_mut!((*set).map[bindings::hctx_type_HCTX_TYPE_READ as usize]);
            (*read).nr_queues = 0;
            let polled = addr_of_mut!((*set).map[bindings::hctx_type_HCTX_TYPE_POLL as usize]);
            (*polled).nr_queues = poll;
            (*polled).queue_offset = (*default).nr_queues;
            bindings::blk_mq_map_queues(polled);
        }
    }

    /// `blk_mq_ops.poll`: reaps the completions of a polled queue; returns
    /// how many there were.
    ///
    /// # Safety
    ///
    /// Called by blk-mq with a live hctx of a [`TagSet`] of `T` and, if not
    /// null, a batch that it ends after the call.
    unsafe extern "C" fn poll(
        hctx: *mut bindings::blk_mq_hw_ctx,
        iob: *mut bindings::io_comp_batch,
    ) -> c_int {
        // SAFETY: As in `queue_rq`; `iob` is null or the poller's batch,
        // exclusively ours during the call, whose requests the poller ends
        // with its `complete` callback (`CompletionBatch`'s invariant).
        unsafe {
            let set = (*(*hctx).queue).tag_set;
            let data = Self::data(set);
            let queue = &*(*hctx).driver_data.cast::<T::Queue>();
            let mut batch = CompletionBatch {
                own: MaybeUninit::zeroed().assume_init(),
                caller: iob.as_mut(),
            };
            let set = TagSetRef {
                set,
                _p: PhantomData,
            };
            let found = data.poll(queue, (*hctx).queue_num, &set, &mut batch);
            c_int::try_from(found).unwrap_or(c_int::MAX)
        }
    }
}

/// The block device operations of a `T` tag set's disks: the owner (the
/// module stays loaded while a disk is open), the driver's ioctls, and the
/// release of the disk's data once the gendisk itself is freed.
///
/// A disk's `private_data` holds an `Arc<T::Disk>` from [`Disk::add`]
/// until `free_disk`: an open block device keeps its gendisk, so an ioctl
/// on a file opened before the disk was deleted still finds the data.
struct DiskOps<T: Operations>(PhantomData<T>);

// Every member is an `unsafe` callback of the C side or its helper.
#[allow(unsafe_code)]
impl<T: Operations> DiskOps<T> {
    const TABLE: bindings::block_device_operations = {
        // SAFETY: All zeroes is a valid table with no callbacks.
        let mut fops: bindings::block_device_operations =
            unsafe { MaybeUninit::zeroed().assume_init() };
        fops.owner = (&raw const __this_module).cast_mut();
        fops.ioctl = Some(Self::ioctl);
        fops.free_disk = Some(Self::free_disk);
        fops
    };

    /// The data of `disk`.
    ///
    /// # Safety
    ///
    /// `disk` must be a live gendisk that [`Disk::add`] added for `T`.
    unsafe fn data<'a>(disk: *const bindings::gendisk) -> &'a T::Disk {
        // SAFETY: By the requirements `private_data` holds the
        // `Arc<T::Disk>` that `Disk::add` leaked, released only by
        // `free_disk` once the gendisk is no longer used.
        unsafe { &*(*disk).private_data.cast_const().cast::<T::Disk>() }
    }

    /// `block_device_operations.ioctl`: the ioctls the block layer does
    /// not handle itself.
    ///
    /// # Safety
    ///
    /// Called by the block layer for an open block device of a disk
    /// added by [`Disk::add`] for `T`.
    unsafe extern "C" fn ioctl(
        bdev: *mut bindings::block_device,
        _mode: bindings::blk_mode_t,
        cmd: c_uint,
        arg: kernel::ffi::c_ulong,
    ) -> c_int {
        // SAFETY: The open block device holds a reference to its disk,
        // one of `T`'s by the requirements.
        let data = unsafe { Self::data((*bdev).bd_disk) };
        match data.ioctl(cmd, arg) {
            Ok(v) => c_int::try_from(v).unwrap_or(c_int::MAX),
            Err(e) => e.to_errno(),
        }
    }

    /// `block_device_operations.free_disk`: drops the disk's data.
    ///
    /// # Safety
    ///
    /// Called once by `disk_release` for a disk [`Disk::add`] added.
    unsafe extern "C" fn free_disk(disk: *mut bindings::gendisk) {
        // SAFETY: `private_data` holds the `Arc` that `Disk::add` leaked;
        // nothing uses the gendisk any more.
        drop(unsafe { Arc::from_raw((*disk).private_data.cast_const().cast::<T::Disk>()) });
    }

    /// The data of the disk whose device is `dev`.
    ///
    /// # Safety
    ///
    /// `dev` must be the device of a live disk added by [`Disk::add`] for
    /// `T` (`disk_to_dev`).
    unsafe fn of_device<'a>(dev: *mut bindings::device) -> &'a T::Disk {
        // SAFETY: A disk's device is the `bd_device` of its whole-disk
        // block device (`dev_to_bdev`), which names the disk.
        unsafe {
            let bdev = dev
                .byte_sub(core::mem::offset_of!(bindings::block_device, bd_device))
                .cast::<bindings::block_device>();
            Self::data((*bdev).bd_disk)
        }
    }

    /// `show` of attribute `I` of a disk.
    ///
    /// # Safety
    ///
    /// Called by sysfs for an attribute of [`DiskGroups<T>`] on a disk
    /// added with them, with a page buffer.
    unsafe extern "C" fn show<const I: usize>(
        dev: *mut bindings::device,
        _attr: *mut bindings::device_attribute,
        buf: *mut kernel::ffi::c_char,
    ) -> isize {
        // SAFETY: The attribute exists only while the disk is added
        // (`del_gendisk` removes it, waiting for this call), so the disk
        // and its data are live.
        let data = unsafe { Self::of_device(dev) };
        // SAFETY: `buf` is this `show`'s page buffer.
        unsafe { super::sysfs::emit::<T::Disk, I>(data, buf) }
    }

    /// `attribute_group.is_visible` of [`DiskGroups<T>`]: asks the disk's
    /// data whether attribute number `n` exists.
    ///
    /// # Safety
    ///
    /// Called by sysfs while `device_add_disk` creates the groups of a
    /// disk that [`Disk::add`] adds for `T`.
    unsafe extern "C" fn is_visible(
        kobj: *mut bindings::kobject,
        attr: *mut bindings::attribute,
        n: c_int,
    ) -> bindings::umode_t {
        // SAFETY: The kobject is the `kobj` of the disk's device.
        let data = unsafe {
            let dev = kobj
                .byte_sub(core::mem::offset_of!(bindings::device, kobj))
                .cast::<bindings::device>();
            Self::of_device(dev)
        };
        match usize::try_from(n) {
            // SAFETY: `attr` is the attribute sysfs asks about.
            Ok(index) if data.visible(index) => unsafe { (*attr).mode },
            _ => 0,
        }
    }
}

/// Builds the read-only (0444) attribute `name` of the disks of a `T` tag
/// set, attribute number `I` of `T::Disk`'s, for a [`DiskGroups<T>`].
pub(crate) const fn disk_attribute<T: Operations, const I: usize>(
    name: &'static CStr,
) -> bindings::device_attribute {
    super::sysfs::read_only(name, DiskOps::<T>::show::<I>)
}

/// An attribute group of `attrs` (a NULL-terminated array whose entry
/// number `I` is [`disk_attribute::<T, I>`]) whose attributes `T::Disk`
/// may hide ([`Attributes::visible`]).
pub(crate) const fn disk_group<T: Operations>(
    attrs: *const *const bindings::attribute,
) -> bindings::attribute_group {
    let mut group = super::sysfs::group(attrs);
    compat::set_is_visible(&mut group, DiskOps::<T>::is_visible);
    group
}

/// The sysfs attribute groups of a `T` tag set's disks, which come and go
/// with each disk.
///
/// # Invariants
///
/// `groups` is a NULL-terminated array of groups made by
/// [`disk_group::<T>`] whose attributes at index `I` are
/// [`disk_attribute::<T, I>`], all living as long as the module.
pub(crate) struct DiskGroups<T: Operations> {
    groups: *const *const bindings::attribute_group,
    _p: PhantomData<T>,
}

#[allow(unsafe_code)]
// SAFETY: The groups are read-only data for the kernel.
unsafe impl<T: Operations> Sync for DiskGroups<T> {}

impl<T: Operations> DiskGroups<T> {
    /// Wraps `groups`.
    ///
    /// # Safety
    ///
    /// `groups` must satisfy the type invariant.
    #[allow(unsafe_code)]
    pub(crate) const unsafe fn new(groups: *const *const bindings::attribute_group) -> Self {
        // INVARIANT: By the requirements.
        Self {
            groups,
            _p: PhantomData,
        }
    }
}

/// Lockdep class of the disks' queues.
#[allow(unsafe_code)]
static DISK_KEY: Static<UnsafeCell<bindings::lock_class_key>> =
    // SAFETY: A lock class key is zero-initialised static data.
    Static(UnsafeCell::new(unsafe {
            MaybeUninit::zeroed().assume_init()
        }));

/// A registered disk; removed (after its I/O drains) on drop.
///
/// # Invariants
///
/// `disk` was allocated by `__blk_mq_alloc_disk` and added with
/// `device_add_disk`; it is deleted and put on drop.
pub(crate) struct Disk<T: Operations> {
    disk: NonNull<bindings::gendisk>,
    /// Read by requests through `queuedata` until the disk is gone.
    data: Arc<T::Disk>,
    /// The capacity last set, in 512-byte sectors.
    sectors: AtomicU64,
    /// The tag set the disk's queue uses, freed only after the disk.
    _set: Arc<TagSet<T>>,
}

#[allow(unsafe_code)]
// SAFETY: The gendisk is reference counted and its functions may be called
// from any thread.
unsafe impl<T: Operations> Send for Disk<T> {}
#[allow(unsafe_code)]
// SAFETY: `&Disk` gives the data (`Sync`), an atomic and
// `set_capacity_and_notify`, which takes the block device's size lock.
unsafe impl<T: Operations> Sync for Disk<T> {}

impl<T: Operations> Disk<T> {
    /// Creates and registers a disk named `name` of `sectors` 512-byte
    /// sectors on `set`, with `parent` as its parent device and `groups`
    /// as its sysfs attributes.
    #[allow(unsafe_code)]
    pub(crate) fn add(
        set: &Arc<TagSet<T>>,
        data: Arc<T::Disk>,
        limits: &Limits,
        name: fmt::Arguments<'_>,
        sectors: u64,
        parent: &PciDevice,
        groups: &'static DiskGroups<T>,
    ) -> Result<Self> {
        let mut lim = limits.to_raw();
        let queuedata = core::ptr::from_ref::<T::Disk>(&data).cast_mut().cast();
        // SAFETY: `set` is allocated; `lim` is read during the call; the
        // key is static; `data` outlives the queue (held below).
        let disk = unsafe {
            bindings::__blk_mq_alloc_disk(set.as_ptr(), &mut lim, queuedata, DISK_KEY.0.get())
        };
        if disk.is_null() || (disk as usize) >= (-4095isize) as usize {
            return Err(Error::from_errno(disk as isize as c_int));
        }
        // SAFETY: `disk` is a fresh gendisk owned here.
        unsafe {
            (*disk).fops = &DiskOps::<T>::TABLE;
            let mut w = NameWriter {
                buf: &mut (*disk).disk_name,
                len: 0,
            };
            if fmt::write(&mut w, name).is_err() {
                bindings::put_disk(disk);
                return Err(EINVAL);
            }
            bindings::set_capacity(disk, sectors);
            // Released by `free_disk` once the disk was added, else below.
            let private = Arc::into_raw(data.clone());
            (*disk).private_data = private.cast_mut().cast();
            // The groups are `T`'s, by the type invariant of `DiskGroups`.
            let ret = bindings::device_add_disk(parent.as_device(), disk, groups.groups.cast_mut());
            if ret != 0 {
                // Not added: `put_disk` does not call `free_disk`.
                bindings::put_disk(disk);
                drop(Arc::from_raw(private));
                return Err(Error::from_errno(ret));
            }
        }
        // INVARIANT: Allocated and added above.
        Ok(Self {
            // SAFETY: Checked non-null above.
            disk: unsafe { NonNull::new_unchecked(disk) },
            data,
            sectors: AtomicU64::new(sectors),
            _set: set.clone(),
        })
    }
}

impl<T: Operations> Disk<T> {
    /// The disk's data.
    pub(crate) fn data(&self) -> &Arc<T::Disk> {
        &self.data
    }

    /// The capacity last set, in 512-byte sectors.
    pub(crate) fn capacity(&self) -> u64 {
        self.sectors.load(Ordering::Relaxed)
    }

    /// Changes the capacity to `sectors` 512-byte sectors and tells user
    /// space (a `RESIZE=1` change uevent), as a revalidation does.
    #[allow(unsafe_code)]
    pub(crate) fn set_capacity(&self, sectors: u64) {
        self.sectors.store(sectors, Ordering::Relaxed);
        // SAFETY: The disk is added, by the type invariant.
        unsafe { bindings::set_capacity_and_notify(self.disk.as_ptr(), sectors) };
    }
}

impl<T: Operations> Drop for Disk<T> {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: By the type invariant the disk was added; `del_gendisk`
        // waits for its in-flight requests, then it is put once.
        unsafe {
            bindings::del_gendisk(self.disk.as_ptr());
            bindings::put_disk(self.disk.as_ptr());
        }
    }
}
