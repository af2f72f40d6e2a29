// SPDX-License-Identifier: GPL-2.0

//! The safe half of a blk-mq request (see `blk.rs`): what the driver reads
//! from a request it owns, and the bookkeeping that lets exactly one of its
//! completion, its cancellation and its timeout handler end it.

#![deny(unsafe_code)]

use super::types::{Op, Operations, MAX_SEGMENTS};
use super::{Request, SharedRequest};
use crate::sys::bindings;
use core::ffi::c_int;
use core::ffi::c_uint;
use core::sync::atomic::{AtomicBool, AtomicU8, Ordering};

/// Who may complete a request, and which start it is on: shared by its
/// completion, its cancellation and its timeout handler, which may run at
/// the same time, so only atomics.
pub(super) struct RequestState {
    /// Set by whoever completes the request (its completion or its
    /// cancellation), so that only one of them does; cleared on start.
    claimed: AtomicBool,
    /// Counts the request's starts, so that a completion for an earlier
    /// start can be told apart.
    sequence: AtomicU8,
    /// Timeouts since the request's last start.
    timeouts: AtomicU8,
}

impl RequestState {
    /// Records a new start of the request (by its owner, before the device
    /// sees it) and returns its number (wrapping).
    pub(super) fn start(&self) -> u8 {
        let sequence = self.sequence.load(Ordering::Relaxed).wrapping_add(1);
        self.sequence.store(sequence, Ordering::Relaxed);
        self.timeouts.store(0, Ordering::Relaxed);
        // Whoever finds the request in flight through its completion sees
        // it unclaimed and with this start's number, provided the device
        // learns of the request only after this store.
        self.claimed.store(false, Ordering::Release);
        sequence
    }

    /// Claims the request's completion; true for the one caller that may
    /// complete it since its last start.
    pub(super) fn claim(&self) -> bool {
        self.claimed
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }

    /// Whether the request's completion was claimed since its last start.
    pub(super) fn claimed(&self) -> bool {
        self.claimed.load(Ordering::Acquire)
    }

    /// The number of the request's current start.
    pub(super) fn sequence(&self) -> u8 {
        self.sequence.load(Ordering::Acquire)
    }

    /// Counts a timeout; returns how many came before it since the last
    /// start.
    pub(super) fn count_timeout(&self) -> u8 {
        self.timeouts.fetch_add(1, Ordering::AcqRel)
    }
}

impl<T: Operations> Request<T> {
    /// Gives up the request without ending it (ownership passes to the C
    /// call the caller makes next); `Drop` does not run.
    pub(super) fn into_raw(self) -> *mut bindings::request {
        core::mem::ManuallyDrop::new(self).rq.as_ptr()
    }

    /// Whether the submitter asked for no retries (`REQ_FAILFAST_*`).
    pub(crate) fn no_retry(&self) -> bool {
        self.fields().cmd_flags & bindings::RSNVME_REQ_FAILFAST_MASK != 0
    }

    /// The request's tag, unique in its hardware queue.
    pub(crate) fn tag(&self) -> u32 {
        u32::try_from(self.fields().tag).unwrap_or(u32::MAX)
    }

    /// The operation.
    pub(crate) fn op(&self) -> Op {
        match self.fields().cmd_flags & bindings::RSNVME_REQ_OP_MASK {
            bindings::req_op_REQ_OP_READ => Op::Read,
            bindings::req_op_REQ_OP_WRITE => Op::Write,
            bindings::req_op_REQ_OP_FLUSH => Op::Flush,
            bindings::req_op_REQ_OP_DISCARD => Op::Discard,
            bindings::req_op_REQ_OP_WRITE_ZEROES => Op::WriteZeroes,
            bindings::req_op_REQ_OP_DRV_IN => Op::DrvIn,
            bindings::req_op_REQ_OP_DRV_OUT => Op::DrvOut,
            _ => Op::Other,
        }
    }

    /// Whether the data must be on stable media when the request ends.
    pub(crate) fn fua(&self) -> bool {
        self.fields().cmd_flags & bindings::RSNVME_REQ_FUA != 0
    }

    /// First sector (512 bytes) the request touches.
    pub(crate) fn sector(&self) -> u64 {
        self.fields().sector
    }

    /// Bytes the request covers.
    pub(crate) fn bytes(&self) -> u32 {
        self.fields().data_len
    }

    /// Claims the request's completion; true for the one caller that may
    /// complete it since its last start. `queue_rq` claims a request it
    /// started but could not send before it reports the failure.
    pub(crate) fn claim(&self) -> bool {
        self.shared().claim()
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

/// A request whose timer expired, as the timeout handler sees it: it may
/// be completed at the same time, so the pdu is out of reach.
pub(crate) struct TimedOut<'a, T: Operations> {
    pub(super) rq: SharedRequest<'a, T>,
}

impl<T: Operations> TimedOut<'_, T> {
    /// The request's tag.
    pub(crate) fn tag(&self) -> u32 {
        self.rq.tag()
    }

    /// The index of the hardware queue the request was sent on.
    pub(crate) fn queue_index(&self) -> u32 {
        self.rq.queue_index()
    }

    /// First sector and bytes, for messages.
    pub(crate) fn range(&self) -> (u64, u32) {
        self.rq.range()
    }

    /// The number of the request's current start.
    pub(crate) fn sequence(&self) -> u8 {
        self.rq.shared().sequence()
    }

    /// Whether its completion was claimed (it completed meanwhile).
    pub(crate) fn completed(&self) -> bool {
        self.rq.shared().claimed()
    }

    /// Counts this timeout; returns how many came before it since the
    /// request's start.
    pub(crate) fn count(&self) -> u8 {
        self.rq.shared().count_timeout()
    }
}

/// What blk-mq keeps for each request: the driver's pdu and DMA state.
pub(super) struct PduBox<T: Operations> {
    /// Who may complete the request, and which start it is on.
    pub(super) state: RequestState,
    /// Only the request's owner touches it: before start, and once its
    /// completion is claimed.
    pub(super) pdu: T::Pdu,
    /// Entries given to `dma_map_sg`, 0 when the table is not mapped.
    pub(super) mapped_nents: c_uint,
    pub(super) mapped: c_uint,
    /// A request of one segment is mapped without the table: its bus
    /// address and length (0 when not mapped so).
    pub(super) single_dma: bindings::dma_addr_t,
    pub(super) single_len: c_uint,
    pub(super) dir: bindings::dma_data_direction,
    pub(super) sg: [bindings::scatterlist; MAX_SEGMENTS],
}

/// What the driver reads and writes in a request it owns, through its
/// pdu (no `unsafe`: `Request::pdu_box` is the one way in).
impl<T: Operations> Request<T> {
    /// The driver's data for this request.
    pub(crate) fn pdu(&mut self) -> &mut T::Pdu {
        &mut self.pdu_box().pdu
    }

    /// Bus addresses and lengths of the mapped segments, in order.
    pub(crate) fn dma_segments(&mut self) -> impl Iterator<Item = (u64, u32)> + Clone + '_ {
        let pdu = self.pdu_box();
        let single = (pdu.single_len != 0).then_some((pdu.single_dma, pdu.single_len));
        // The table is one array (no chaining), so mapped entries are
        // consecutive.
        single.into_iter().chain(
            pdu.sg
                .iter()
                .take(pdu.mapped as usize)
                .map(|sg| (sg.dma_address, sg.dma_length)),
        )
    }
}
