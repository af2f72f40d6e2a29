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

use crate::sys::__this_module;
use crate::sys::bindings;
use crate::sys::compat;
use crate::sys::pci::{DmaStopped, PciDevice};
use crate::sys::workqueue::Workqueue;
use crate::sys::Static;
use core::cell::UnsafeCell;
use core::ffi::{c_int, c_uint, c_void, CStr};
use core::fmt;
use core::marker::PhantomData;
use core::mem::{size_of, MaybeUninit};
use core::ptr::{addr_of, addr_of_mut, NonNull};
use core::sync::atomic::{AtomicU64, Ordering};
use kernel::alloc::{flags::GFP_KERNEL, KBox};
use kernel::error::{code::EINVAL, to_result, Error, Result};
use kernel::sync::Arc;

mod request;
mod types;

use crate::sys::sysfs_types::Attributes;
pub(crate) use request::TimedOut;
use request::{PduBox, RequestState};
pub(crate) use types::{
    BlkStatus, DiskFile, Limits, Op, Operations, QuiesceGate, TimeoutAction, MAX_SEGMENTS,
};
use types::{Cancel, NameWriter, RawSet};

mod disk;
mod ops;
mod queue;
mod tagset;

pub(crate) use disk::{disk_attribute, disk_group, Disk, DiskGroups};
use ops::Ops;
pub(crate) use queue::{DataDir, OwnRequest, RequestQueue, Requests};
pub(crate) use tagset::{HeldQuiesce, Quiesced, TagSet, TagSetRef};

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

    /// The fields of the C request the driver reads, copied out.
    #[allow(unsafe_code)]
    pub(super) fn fields(&self) -> RqFields {
        let rq = self.rq.as_ptr();
        // SAFETY: Live by the type invariant. Each field is read through
        // the raw pointer, with no reference to the whole C request (blk-mq
        // writes some of its other fields, its deadline say, while the
        // driver owns it); these are not written while the driver does.
        unsafe {
            RqFields {
                cmd_flags: (*rq).cmd_flags,
                tag: (*rq).tag,
                sector: (*rq).__sector,
                data_len: (*rq).__data_len,
            }
        }
    }

    /// The request's queue.
    #[allow(unsafe_code)]
    fn queue(&self) -> *mut bindings::request_queue {
        // SAFETY: Live by the type invariant; `q` is set at allocation.
        unsafe { (*self.rq.as_ptr()).q }
    }

    /// The request's pdu, owned by the driver with the request.
    #[allow(unsafe_code)]
    fn pdu_box(&mut self) -> &mut PduBox<T> {
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
        unsafe { (*self.queue()).queuedata.cast::<T::Disk>().as_ref() }
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
            // SAFETY: Live by the type invariant; read through the pointer.
            #[allow(unsafe_code)]
            bio: unsafe { (*self.rq.as_ptr()).bio },
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
        unsafe { (*self.queue()).limits.max_discard_segments }
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
    fn shared(&self) -> &RequestState {
        // SAFETY: As in `pdu_box`; only the atomics are read through it.
        unsafe { &(*self.rq.as_ptr().add(1).cast::<PduBox<T>>()).state }
    }
}

/// The fields of a request that the driver reads ([`Request::fields`]).
#[derive(Clone, Copy)]
pub(super) struct RqFields {
    pub(super) cmd_flags: bindings::blk_opf_t,
    pub(super) tag: c_int,
    pub(super) sector: u64,
    pub(super) data_len: c_uint,
}

/// A started request of a `T` tag set that the driver does not own: its
/// completion, its cancellation and its timeout handler may see it at the
/// same time. Only what does not change while it is started is read, with
/// single loads (`READ_ONCE`), and its pdu's atomics; whoever claims its
/// completion ([`SharedRequest::claim`]) owns it.
///
/// # Invariants
///
/// `rq` is a request of a `T` tag set, allocated for `'a`, whose pdu is an
/// initialised `PduBox<T>`.
pub(crate) struct SharedRequest<'a, T: Operations> {
    rq: NonNull<bindings::request>,
    _p: PhantomData<(&'a bindings::request, T)>,
}

impl<T: Operations> SharedRequest<'_, T> {
    /// # Safety
    ///
    /// `rq` must be a request of a `T` tag set that stays allocated for
    /// `'a` (a tag's request, or one blk-mq passes to a callback).
    #[allow(unsafe_code)]
    unsafe fn new(rq: *mut bindings::request) -> Option<Self> {
        // INVARIANT: By the function's requirements; `init_request` wrote
        // the pdu of every request of the set.
        NonNull::new(rq).map(|rq| Self {
            rq,
            _p: PhantomData,
        })
    }

    /// Whether the request is started and not completed (`MQ_RQ_IN_FLIGHT`).
    #[allow(unsafe_code)]
    fn in_flight(&self) -> bool {
        // SAFETY: Allocated by the type invariant; blk-mq writes the state
        // with `WRITE_ONCE`, so it is read with one load.
        let state = unsafe { addr_of!((*self.rq.as_ptr()).state).read_volatile() };
        state == bindings::mq_rq_state_MQ_RQ_IN_FLIGHT
    }

    /// The request's bookkeeping: atomics only.
    #[allow(unsafe_code)]
    fn shared(&self) -> &RequestState {
        // SAFETY: The pdu follows the request and holds a `PduBox<T>`;
        // only its atomics are reached through this.
        unsafe { &(*self.rq.as_ptr().add(1).cast::<PduBox<T>>()).state }
    }

    /// The request's tag, fixed while it is started.
    #[allow(unsafe_code)]
    pub(super) fn tag(&self) -> u32 {
        // SAFETY: Allocated by the type invariant; one load.
        let tag = unsafe { addr_of!((*self.rq.as_ptr()).tag).read_volatile() };
        u32::try_from(tag).unwrap_or(u32::MAX)
    }

    /// The index of the hardware queue a started request was sent on.
    #[allow(unsafe_code)]
    pub(super) fn queue_index(&self) -> u32 {
        // SAFETY: A started request has its hardware context, which lives
        // as long as its queue.
        unsafe {
            let hctx = addr_of!((*self.rq.as_ptr()).mq_hctx).read_volatile();
            if hctx.is_null() {
                return u32::MAX;
            }
            (*hctx).queue_num
        }
    }

    /// First sector and bytes, for messages.
    #[allow(unsafe_code)]
    pub(super) fn range(&self) -> (u64, u32) {
        // SAFETY: Allocated by the type invariant; one load each.
        unsafe {
            (
                addr_of!((*self.rq.as_ptr()).__sector).read_volatile(),
                addr_of!((*self.rq.as_ptr()).__data_len).read_volatile(),
            )
        }
    }

    /// Claims the request's completion: the request, now owned, for the
    /// one caller that may complete it since its last start.
    #[allow(unsafe_code)]
    fn claim(&self) -> Option<Request<T>> {
        if !self.shared().claim() {
            return None;
        }
        // SAFETY: A live request of a `T` tag set, and the claim makes the
        // caller its only owner.
        unsafe { Request::from_raw(self.rq.as_ptr()) }
    }
}

/// A request found by its tag, in flight, to be completed.
pub(crate) struct InFlight<'a, T: Operations>(SharedRequest<'a, T>);

impl<T: Operations> InFlight<'_, T> {
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
            // SAFETY: Allocated; `q` is set at allocation.
            let q = unsafe { addr_of!((*self.0.rq.as_ptr()).q).read() };
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
    pub(crate) fn complete_here(self, f: impl FnOnce(&mut T::Pdu)) -> Option<Option<Request<T>>> {
        let mut rq = self.0.claim()?;
        f(rq.pdu());
        // SAFETY: The request is in flight and its completion is ours.
        if unsafe { bindings::blk_mq_complete_request_remote(rq.rq.as_ptr()) } {
            return Some(None);
        }
        Some(Some(rq))
    }

    /// Claims the request's completion, lets `f` store the result in the
    /// pdu and hands the request to [`Operations::complete`], possibly on
    /// the CPU that submitted it. Returns false, doing nothing, if the
    /// request was already completed or cancelled.
    #[allow(unsafe_code)]
    pub(crate) fn complete(self, f: impl FnOnce(&mut T::Pdu)) -> bool {
        let Some(mut rq) = self.0.claim() else {
            return false;
        };
        f(rq.pdu());
        // SAFETY: The request is in flight and its completion is ours.
        unsafe { bindings::blk_mq_complete_request(rq.rq.as_ptr()) };
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
