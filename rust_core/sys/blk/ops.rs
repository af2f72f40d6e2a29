// SPDX-License-Identifier: GPL-2.0

//! The `blk_mq_ops` table a [`TagSet`] of `T` gets: the C callbacks that
//! call `T`'s [`Operations`].

use super::*;

/// The `blk_mq_ops` table for `T`.
pub(super) struct Ops<T: Operations>(PhantomData<T>);

// Every member is an `unsafe` callback of the C side or its helper.
#[allow(unsafe_code)]
impl<T: Operations> Ops<T> {
    pub(super) const TABLE: bindings::blk_mq_ops = {
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
    pub(super) unsafe fn data<'a>(set: *const bindings::blk_mq_tag_set) -> &'a T {
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
            let status = data.queue_rq(queue, &mut rq, (*bd).last);
            // Started, it is the device's until its completion is claimed;
            // refused, blk-mq ends or requeues it by the status.
            let _ = rq.into_raw();
            status.raw()
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
    pub(super) unsafe fn owner(set: *mut bindings::blk_mq_tag_set) -> *mut bindings::pci_dev {
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
            let Some(req) = SharedRequest::<T>::new(rq) else {
                return bindings::blk_eh_timer_return_BLK_EH_DONE;
            };
            let set = TagSetRef {
                set,
                _p: PhantomData,
            };
            data.timeout(&TimedOut { rq: req }, &set).raw()
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
    /// Called by blk-mq with a live hctx of a [`TagSet`] of `T`, or null,
    /// and, if not null, a batch that it ends after the call.
    unsafe extern "C" fn poll(
        hctx: *mut bindings::blk_mq_hw_ctx,
        iob: *mut bindings::io_comp_batch,
    ) -> c_int {
        // A request `blk_rq_poll` found freed meanwhile (`uring_types.rs`).
        if hctx.is_null() {
            return 0;
        }
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
