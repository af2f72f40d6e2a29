// SPDX-License-Identifier: GPL-2.0

//! The safe half of the blk-mq abstraction (see `blk.rs`): the types and
//! the trait a driver sees, with no `unsafe` of their own.

#![deny(unsafe_code)]

use super::{CompletionBatch, Request, TagSetRef, TimedOut};
use crate::sys::bindings;
use crate::sys::pci::PciDevice;
use crate::sys::sysfs_types::Attributes;
use core::ffi::c_uint;
use core::fmt;

/// Most scatter/gather segments one request may have.
pub(crate) const MAX_SEGMENTS: usize = 128;

/// The result of a request, as the block layer knows them (`blk_status_t`).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum BlkStatus {
    Ok,
    NotSupported,
    NoSpace,
    Target,
    Medium,
    Protection,
    /// Out of a resource for now; blk-mq retries later.
    Resource,
    IoError,
}

impl BlkStatus {
    /// The C value.
    pub(super) fn raw(self) -> bindings::blk_status_t {
        match self {
            Self::Ok => bindings::RSNVME_BLK_STS_OK,
            Self::NotSupported => bindings::RSNVME_BLK_STS_NOTSUPP,
            Self::NoSpace => bindings::RSNVME_BLK_STS_NOSPC,
            Self::Target => bindings::RSNVME_BLK_STS_TARGET,
            Self::Medium => bindings::RSNVME_BLK_STS_MEDIUM,
            Self::Protection => bindings::RSNVME_BLK_STS_PROTECTION,
            Self::Resource => bindings::RSNVME_BLK_STS_RESOURCE,
            Self::IoError => bindings::RSNVME_BLK_STS_IOERR,
        }
    }

    /// The status for a C value (anything unlisted is an I/O error).
    pub(super) fn from_raw(raw: bindings::blk_status_t) -> Self {
        [
            Self::Ok,
            Self::NotSupported,
            Self::NoSpace,
            Self::Target,
            Self::Medium,
            Self::Protection,
            Self::Resource,
        ]
        .into_iter()
        .find(|s| s.raw() == raw)
        .unwrap_or(Self::IoError)
    }
}

/// What a request asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Op {
    Read,
    Write,
    Flush,
    Discard,
    WriteZeroes,
    /// A driver-private command whose data (if any) moves to memory.
    DrvIn,
    /// A driver-private command whose data moves to the device.
    DrvOut,
    /// Anything else (zoned, driver-private, ...).
    Other,
}

impl Op {
    /// The direction the request's data moves in, for DMA-mapping it.
    pub(super) fn dma_direction(self) -> bindings::dma_data_direction {
        match self {
            Self::Write | Self::DrvOut => bindings::dma_data_direction_DMA_TO_DEVICE,
            _ => bindings::dma_data_direction_DMA_FROM_DEVICE,
        }
    }
}

/// What the timeout handler did with a request.
pub(crate) enum TimeoutAction {
    /// The request was ended (or will be); blk-mq forgets the timer.
    Done,
    /// The request stays with the driver for another timeout period.
    ResetTimer,
}

impl TimeoutAction {
    /// The C value.
    pub(super) fn raw(self) -> bindings::blk_eh_timer_return {
        match self {
            Self::Done => bindings::blk_eh_timer_return_BLK_EH_DONE,
            Self::ResetTimer => bindings::blk_eh_timer_return_BLK_EH_RESET_TIMER,
        }
    }
}

/// What a disk's block device offers beyond reads and writes: its sysfs
/// attributes and the ioctls the block layer leaves to the driver.
pub(crate) trait DiskFile: Attributes + Send + Sync {
    /// Handles ioctl `cmd` with argument `arg` (a user address or a
    /// number) on the disk's block device, or on one of its partitions
    /// (`partition`); returns what the ioctl returns, or an error.
    fn ioctl(&self, cmd: u32, arg: usize, partition: bool) -> kernel::error::Result<isize>;
}

/// Keeps a tag set's quiesce state still while a new disk's queue joins
/// the set (`blk_mq_quiesce_tagset` quiesces only the queues it finds):
/// whoever quiesces the set for long (a reset, a suspend) implements it.
pub(crate) trait QuiesceGate {
    /// Runs `join`, which adds a queue to the set, with no quiesce or
    /// unquiesce of the set meanwhile; `join` is told whether the set's
    /// queues are quiesced.
    fn settled(&self, join: &mut dyn FnMut(bool));
}

/// The driver side of a tag set.
pub(crate) trait Operations: Send + Sync + Sized + 'static {
    /// Data of one hardware queue.
    type Queue: Send + Sync;
    /// Data of one disk, reachable from its requests; it serves the
    /// disk's ioctls and sysfs attributes.
    type Disk: DiskFile;
    /// Driver data of one request; created when the tag set is allocated.
    type Pdu: Send;

    /// A fresh per-request value.
    fn new_pdu() -> Self::Pdu;
    /// Hardware queue `index`.
    fn queue(&self, index: u32) -> Option<&Self::Queue>;
    /// The PCI device and first vector whose IRQ affinity spreads CPUs over
    /// the hardware queues, or `None` for blk-mq's default spreading.
    fn irq_affinity(&self) -> Option<(&PciDevice, u32)>;
    /// Starts `rq`; `last` is false when more requests follow at once.
    fn queue_rq(&self, queue: &Self::Queue, rq: &mut Request<Self>, last: bool) -> BlkStatus;
    /// Makes requests queued with `last == false` visible to the device.
    fn commit_rqs(&self, queue: &Self::Queue);
    /// Finishes a request that [`InFlight::complete`] handed over: reads
    /// its result from the pdu and ends it.
    fn complete(&self, rq: Request<Self>);
    /// Called when `rq` has been outstanding too long.
    fn timeout(&self, rq: &TimedOut<'_, Self>, set: &TagSetRef<'_, Self>) -> TimeoutAction;
    /// Reaps the completions of polled hardware queue `index` (`queue`),
    /// ending successful requests in `batch`; returns how many it found.
    fn poll(
        &self,
        queue: &Self::Queue,
        index: u32,
        set: &TagSetRef<'_, Self>,
        batch: &mut CompletionBatch<'_>,
    ) -> u32;
    /// The work [`TagSetRef::schedule_work`] asked for, in process context;
    /// never runs twice at once.
    fn work(&self, set: &TagSetRef<'_, Self>);
    /// The work [`TagSetRef::schedule_event_work`] asked for, in process
    /// context; never runs twice at once, but may run while
    /// [`Operations::work`] does (so it may wait for what that does).
    fn event_work(&self, set: &TagSetRef<'_, Self>);
}

/// Limits and features of a disk's queue.
pub(crate) struct Limits {
    pub(crate) logical_block_size: u32,
    pub(crate) physical_block_size: u32,
    pub(crate) io_min: u32,
    pub(crate) io_opt: u32,
    pub(crate) max_hw_sectors: u32,
    pub(crate) max_segments: u16,
    pub(crate) virt_boundary_mask: usize,
    pub(crate) dma_alignment: u32,
    pub(crate) write_cache: bool,
    pub(crate) max_discard_sectors: u32,
    pub(crate) max_discard_segments: u16,
    pub(crate) discard_granularity: u32,
    pub(crate) max_write_zeroes_sectors: u32,
}

impl Limits {
    /// The C limits of a new queue: these, and the default (0) for every
    /// limit not named here.
    pub(super) fn to_raw(&self) -> bindings::queue_limits {
        let mut lim = bindings::queue_limits {
            logical_block_size: self.logical_block_size,
            physical_block_size: self.physical_block_size,
            io_min: self.io_min,
            io_opt: self.io_opt,
            max_hw_sectors: self.max_hw_sectors,
            max_segments: self.max_segments,
            virt_boundary_mask: self.virt_boundary_mask,
            dma_alignment: self.dma_alignment,
            max_hw_discard_sectors: self.max_discard_sectors,
            max_discard_segments: self.max_discard_segments,
            discard_granularity: self.discard_granularity,
            max_write_zeroes_sectors: self.max_write_zeroes_sectors,
            ..Default::default()
        };
        if self.write_cache {
            lim.features = bindings::RSNVME_BLK_FEAT_WRITE_CACHE | bindings::RSNVME_BLK_FEAT_FUA;
        }
        lim
    }
}

/// Formats into a NUL-terminated C char array, failing if it is too short.
pub(super) struct NameWriter<'a> {
    pub(super) buf: &'a mut [kernel::ffi::c_char],
    pub(super) len: usize,
}

impl fmt::Write for NameWriter<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            // Keep one byte for the terminating NUL.
            if self.len + 1 >= self.buf.len() {
                return Err(fmt::Error);
            }
            *self.buf.get_mut(self.len).ok_or(fmt::Error)? = b;
            self.len += 1;
        }
        if let Some(nul) = self.buf.get_mut(self.len) {
            *nul = 0;
        }
        Ok(())
    }
}

/// The C side of a tag set: the set and the driver's two work items.
#[repr(C)]
pub(super) struct RawSet {
    pub(super) set: bindings::blk_mq_tag_set,
    pub(super) work: bindings::work_struct,
    pub(super) event_work: bindings::work_struct,
    /// The device of the `TagSet`'s `pdev`, which keeps it alive.
    pub(super) pdev: *mut bindings::pci_dev,
    /// How many of the hardware queues, the last ones, are polled.
    pub(super) poll_queues: c_uint,
    /// The queue the work items run on: the `TagSet`'s own.
    pub(super) wq: *mut bindings::workqueue_struct,
}

/// What [`TagSetRef::cancel_all`] passes to `cancel_one`.
pub(super) struct Cancel<T: Operations> {
    pub(super) fail: fn(&mut T::Pdu),
    pub(super) count: u32,
}
