// SPDX-License-Identifier: GPL-2.0

//! The tag set: its allocation and work items, quiescing, and looking up
//! and cancelling its requests.

use super::*;

impl RawSet {
    /// The `RawSet` around a tag set.
    ///
    /// # Safety
    ///
    /// `set` must be the `set` field of a `RawSet`.
    #[allow(unsafe_code)]
    pub(super) unsafe fn of(set: *mut bindings::blk_mq_tag_set) -> *mut RawSet {
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
/// [`Operations::event_work`]), which can run at the same time, on a
/// workqueue of its own with `WQ_MEM_RECLAIM` (they recover the I/O the
/// memory reclaim may wait for).
///
/// # Invariants
///
/// `raw.set` was initialised by `blk_mq_alloc_tag_set` with `driver_data`
/// pointing to `*data` and the ops table of `T`; `raw.work` runs
/// `run_work::<T>` and `raw.event_work` `run_event_work::<T>`, queued on
/// `raw.wq`, which is `wq`'s. On drop the work items are cancelled, then
/// the set freed, then the workqueue.
/// `pdev` is the device the requests' data is mapped for.
pub(crate) struct TagSet<T: Operations> {
    raw: KBox<UnsafeCell<RawSet>>,
    data: Arc<T>,
    _pdev: PciDevice,
    // After `raw`: destroyed once the set is gone.
    _wq: Workqueue,
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
        let wq = Workqueue::new(c"rsnvme_wq")?;
        let both = boxed.get();
        // SAFETY: `both` is fresh and exclusively owned; the key is static.
        unsafe {
            (*both).pdev = pdev.as_raw();
            (*both).wq = wq.as_ptr();
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
            _wq: wq,
        })
    }

    #[allow(unsafe_code)]
    pub(super) fn as_ptr(&self) -> *mut bindings::blk_mq_tag_set {
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
        // `_wq` is destroyed after this, with nothing queued on it.
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
    /// A tag set of `T` that outlives `'a` (made only in this module's
    /// files, from a `TagSet` or from blk-mq's callbacks of one).
    pub(super) set: *mut bindings::blk_mq_tag_set,
    pub(super) _p: PhantomData<&'a T>,
}

impl<T: Operations> TagSetRef<'_, T> {
    /// The request with `tag` in hardware queue `queue` if it is in flight,
    /// for its completion. Bogus tags from a device give `None`. Calling
    /// it at any time is sound: the request can only be completed through
    /// [`InFlight::complete`], which claims it first, so a late, stale or
    /// duplicate completion never ends a request twice.
    #[allow(unsafe_code)]
    pub(crate) fn in_flight(&self, queue: u32, tag: u32) -> Option<InFlight<'_, T>> {
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
        // SAFETY: A request of this set, allocated as long as the set is,
        // which outlives the borrow of `self`.
        let rq = unsafe { SharedRequest::<T>::new(rq) }?;
        if !rq.in_flight() {
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

    /// Queues the set's work item ([`Operations::work`]) on the set's
    /// workqueue, unless it is queued already; returns whether it was
    /// queued now.
    #[allow(unsafe_code)]
    pub(crate) fn schedule_work(&self) -> bool {
        // SAFETY: `set` is the `set` field of a `RawSet` (container_of);
        // its work item is initialised and cancelled before it is freed.
        unsafe {
            let both = RawSet::of(self.set);
            bindings::queue_work_on(
                bindings::RSNVME_WORK_CPU_UNBOUND,
                (*both).wq,
                addr_of_mut!((*both).work),
            )
        }
    }
}

impl<T: Operations> TagSetRef<'_, T> {
    /// Queues the set's event work item ([`Operations::event_work`]) on
    /// the set's workqueue, unless it is queued already; returns whether
    /// it was queued now. May be called from any context.
    #[allow(unsafe_code)]
    pub(crate) fn schedule_event_work(&self) -> bool {
        // SAFETY: As in `schedule_work`.
        unsafe {
            let both = RawSet::of(self.set);
            bindings::queue_work_on(
                bindings::RSNVME_WORK_CPU_UNBOUND,
                (*both).wq,
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
    // SAFETY: By the function's requirements: the walk holds a reference
    // to the request; it is only completed through `InFlight::complete`,
    // which claims it first.
    let Some(req) = (unsafe { SharedRequest::<T>::new(rq) }) else {
        return true;
    };
    // SAFETY: `data` is `cancel_all`'s `Cancel<T>`, alive during the walk.
    let cancel = unsafe { &mut *data.cast::<Cancel<T>>() };
    if req.in_flight() && InFlight(req).complete(cancel.fail) {
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
    // SAFETY: By the function's requirements; only the state is read, with
    // one load (blk-mq writes it with `WRITE_ONCE`).
    if unsafe { addr_of!((*rq).state).read_volatile() } == bindings::mq_rq_state_MQ_RQ_IN_FLIGHT {
        // SAFETY: `data` is `busy`'s counter, alive during the walk.
        let count = unsafe { &mut *data.cast::<u32>() };
        *count = count.saturating_add(1);
    }
    true
}
