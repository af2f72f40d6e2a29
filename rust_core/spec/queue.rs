// SPDX-License-Identifier: GPL-2.0

//! Queue ring arithmetic (NVMe Base Specification 2.0, "Queue Mechanism").
//!
//! Pure index bookkeeping for submission and completion queues: which slot
//! to fill next, when a ring is full, which completion entries are new, and
//! where each doorbell lives. The DMA memory and the doorbell writes belong
//! to the transport layer.

use super::regs::DOORBELLS;

/// Smallest legal queue: one slot in use and one always left empty.
const MIN_DEPTH: u16 = 2;

/// Returns the slot after `index` in a ring of `depth` slots.
fn next_slot(index: u16, depth: u16) -> u16 {
    match index.checked_add(1) {
        Some(next) if next < depth => next,
        _ => 0,
    }
}

/// Producer side of a submission queue.
///
/// # Invariants
///
/// `depth >= 2`, `head < depth` and `tail < depth`. The slots from `head` up
/// to (not including) `tail` belong to the controller; the slot before `head`
/// is never filled, so `head == tail` always means empty.
#[derive(Clone, Copy, Debug)]
pub(crate) struct SqRing {
    /// Next slot the host fills.
    tail: u16,
    /// Oldest slot the controller has not consumed, as last reported.
    head: u16,
    /// Number of slots.
    depth: u16,
}

impl SqRing {
    /// Creates an empty ring of `depth` slots; `None` if `depth` is below 2.
    pub(crate) fn new(depth: u16) -> Option<Self> {
        if depth < MIN_DEPTH {
            return None;
        }
        // INVARIANT: `depth >= 2` was checked; both indices start at 0.
        Some(Self {
            tail: 0,
            head: 0,
            depth,
        })
    }

    /// Slots currently owned by the controller.
    fn used(&self) -> u16 {
        if self.tail >= self.head {
            self.tail - self.head
        } else {
            // By the invariants `head < depth`, so this cannot underflow.
            self.depth.saturating_sub(self.head - self.tail)
        }
    }

    /// Number of entries that can be pushed before the ring is full.
    pub(crate) fn free_slots(&self) -> u16 {
        // By the invariants `used() < depth`, so this is at least 0.
        self.depth.saturating_sub(1).saturating_sub(self.used())
    }

    /// Whether no entry can be pushed until the controller consumes one.
    pub(crate) fn is_full(&self) -> bool {
        next_slot(self.tail, self.depth) == self.head
    }

    /// Claims the slot at the tail and advances the tail past it.
    ///
    /// Returns the slot index to fill, or `None` if the ring is full. The
    /// caller writes the entry and then rings the doorbell with [`Self::tail`].
    pub(crate) fn push(&mut self) -> Option<u16> {
        if self.is_full() {
            return None;
        }
        let slot = self.tail;
        // INVARIANT: `next_slot` returns a value below `depth`.
        self.tail = next_slot(self.tail, self.depth);
        Some(slot)
    }

    /// The tail to write to the submission queue doorbell.
    pub(crate) fn tail(&self) -> u16 {
        self.tail
    }

    /// The controller's head as last accepted by [`Self::update_head`].
    pub(crate) fn head(&self) -> u16 {
        self.head
    }

    /// Records the SQ Head Pointer from a completion entry.
    ///
    /// The new head must lie between the current head and the tail
    /// (inclusive), since the controller can only consume entries that were
    /// submitted and never gives them back. Other values, including any at
    /// or beyond `depth` and stale ones from older completions, are ignored.
    pub(crate) fn update_head(&mut self, new_head: u16) {
        if new_head >= self.depth {
            return;
        }
        let in_window = if self.head <= self.tail {
            self.head <= new_head && new_head <= self.tail
        } else {
            new_head >= self.head || new_head <= self.tail
        };
        if in_window {
            // INVARIANT: `new_head < depth` was checked.
            self.head = new_head;
        }
    }
}

/// Consumer side of a completion queue.
///
/// # Invariants
///
/// `depth >= 2` and `head < depth`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CqRing {
    /// Next slot to look at.
    head: u16,
    /// Phase Tag that marks a new entry in the current pass over the ring.
    phase: bool,
    /// Number of slots.
    depth: u16,
}

impl CqRing {
    /// Creates a ring of `depth` zeroed slots; `None` if `depth` is below 2.
    ///
    /// The controller writes Phase Tag 1 on its first pass over zeroed
    /// memory, so that is the phase expected first.
    pub(crate) fn new(depth: u16) -> Option<Self> {
        if depth < MIN_DEPTH {
            return None;
        }
        // INVARIANT: `depth >= 2` was checked; the head starts at 0.
        Some(Self {
            head: 0,
            phase: true,
            depth,
        })
    }

    /// The slot to look at next, also the value for the head doorbell.
    pub(crate) fn head(&self) -> u16 {
        self.head
    }

    /// The Phase Tag that new entries carry in the current pass.
    pub(crate) fn expected_phase(&self) -> bool {
        self.phase
    }

    /// Whether the entry at the head, with Phase Tag `cqe_phase`, is new.
    pub(crate) fn is_new(&self, cqe_phase: bool) -> bool {
        cqe_phase == self.phase
    }

    /// Moves past the entry at the head, flipping the phase on wrap-around.
    pub(crate) fn advance(&mut self) {
        // INVARIANT: `next_slot` returns a value below `depth`.
        self.head = next_slot(self.head, self.depth);
        if self.head == 0 {
            self.phase = !self.phase;
        }
    }
}

/// Offset in BAR0 of a queue's doorbell register.
///
/// The submission queue tail doorbell of queue `qid` is at
/// `0x1000 + (2 * qid) * (4 << stride_shift)`, its completion queue head
/// doorbell one stride later. Returns `None` if the offset does not fit in
/// `usize`.
pub(crate) fn doorbell_offset(qid: u16, completion: bool, stride_shift: u32) -> Option<usize> {
    let stride = 1usize.checked_shl(stride_shift.checked_add(2)?)?;
    let index = usize::from(qid)
        .checked_mul(2)?
        .checked_add(usize::from(completion))?;
    index.checked_mul(stride)?.checked_add(DOORBELLS)
}

/// Index of a queue's doorbell in the shadow doorbell and event index
/// buffers, in 32-bit entries: the buffers are laid out like the doorbell
/// registers, so the SQ tail of queue `qid` is entry
/// `2 * qid << stride_shift` and its CQ head one stride later. `None` if
/// the index does not fit in `usize`.
pub(crate) fn shadow_index(qid: u16, completion: bool, stride_shift: u32) -> Option<usize> {
    let index = usize::from(qid)
        .checked_mul(2)?
        .checked_add(usize::from(completion))?;
    index.checked_mul(1usize.checked_shl(stride_shift)?)
}

/// Whether a doorbell moved from `old` to `new` in the shadow buffer must
/// also be written to the register: when the controller's event index
/// (the value it last saw and asked to be told past) lies in `old..new`,
/// counting modulo 2^16. Otherwise the controller is still working through
/// the queue and reads the shadow value by itself. Same test as virtio's
/// `vring_need_event`.
pub(crate) fn shadow_needs_event(event_index: u16, new: u16, old: u16) -> bool {
    new.wrapping_sub(event_index).wrapping_sub(1) < new.wrapping_sub(old)
}

/// Depth for the I/O queues: the smaller of what the controller allows
/// (CAP.MQES + 1, as [`super::regs::Cap::max_queue_entries`] returns it) and
/// the driver's `cap`, but never below 2.
pub(crate) fn io_queue_depth(mqes_entries: u32, cap: u16) -> u16 {
    let depth = u16::try_from(mqes_entries).map_or(cap, |mqes| mqes.min(cap));
    depth.max(MIN_DEPTH)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_below_two_rejected() {
        assert!(SqRing::new(0).is_none());
        assert!(SqRing::new(1).is_none());
        assert!(CqRing::new(0).is_none());
        assert!(CqRing::new(1).is_none());
        assert!(SqRing::new(2).is_some());
    }

    #[test]
    fn sq_fills_leaving_one_slot_empty() {
        let mut sq = SqRing::new(4).unwrap();
        assert_eq!(sq.free_slots(), 3);
        assert_eq!(sq.push(), Some(0));
        assert_eq!(sq.push(), Some(1));
        assert_eq!(sq.push(), Some(2));
        assert!(sq.is_full());
        assert_eq!(sq.free_slots(), 0);
        assert_eq!(sq.push(), None);
        assert_eq!(sq.tail(), 3);
    }

    #[test]
    fn sq_wraps_around() {
        let mut sq = SqRing::new(4).unwrap();
        for _ in 0..3 {
            sq.push().unwrap();
        }
        sq.update_head(2);
        assert_eq!(sq.head(), 2);
        assert_eq!(sq.free_slots(), 2);
        assert_eq!(sq.push(), Some(3));
        assert_eq!(sq.push(), Some(0));
        assert_eq!(sq.tail(), 1);
        assert!(sq.is_full());
        assert_eq!(sq.push(), None);
        // Head wraps too: consumed up to the tail means empty.
        sq.update_head(1);
        assert_eq!(sq.free_slots(), 3);
        assert_eq!(sq.push(), Some(1));
    }

    #[test]
    fn sq_minimum_depth() {
        let mut sq = SqRing::new(2).unwrap();
        assert_eq!(sq.push(), Some(0));
        assert_eq!(sq.push(), None);
        sq.update_head(1);
        assert_eq!(sq.push(), Some(1));
        assert_eq!(sq.tail(), 0);
        assert_eq!(sq.push(), None);
    }

    #[test]
    fn sq_ignores_bogus_heads() {
        let mut sq = SqRing::new(8).unwrap();
        for _ in 0..5 {
            sq.push().unwrap();
        }
        sq.update_head(8);
        sq.update_head(u16::MAX);
        assert_eq!(sq.head(), 0);
        // Beyond the tail: the controller cannot have consumed that.
        sq.update_head(6);
        assert_eq!(sq.head(), 0);
        sq.update_head(3);
        assert_eq!(sq.head(), 3);
        // Stale value from an older completion.
        sq.update_head(2);
        assert_eq!(sq.head(), 3);
        assert_eq!(sq.free_slots(), 5);
    }

    #[test]
    fn sq_largest_depth() {
        let mut sq = SqRing::new(u16::MAX).unwrap();
        for i in 0..u16::MAX - 1 {
            assert_eq!(sq.push(), Some(i));
        }
        assert!(sq.is_full());
        sq.update_head(u16::MAX - 1);
        assert_eq!(sq.push(), Some(u16::MAX - 1));
        assert_eq!(sq.tail(), 0);
        assert_eq!(sq.free_slots(), u16::MAX - 2);
    }

    #[test]
    fn cq_phase_flips_after_depth_advances() {
        let mut cq = CqRing::new(3).unwrap();
        assert!(cq.expected_phase());
        assert!(cq.is_new(true));
        assert!(!cq.is_new(false));
        for expected_head in [1, 2] {
            cq.advance();
            assert_eq!(cq.head(), expected_head);
            assert!(cq.expected_phase());
        }
        cq.advance();
        assert_eq!(cq.head(), 0);
        assert!(!cq.expected_phase());
        assert!(cq.is_new(false));
        for _ in 0..3 {
            cq.advance();
        }
        assert_eq!(cq.head(), 0);
        assert!(cq.expected_phase());
    }

    #[test]
    fn cq_largest_depth() {
        let mut cq = CqRing::new(u16::MAX).unwrap();
        for _ in 0..u16::MAX - 1 {
            cq.advance();
        }
        assert_eq!(cq.head(), u16::MAX - 1);
        assert!(cq.expected_phase());
        cq.advance();
        assert_eq!(cq.head(), 0);
        assert!(!cq.expected_phase());
    }

    #[test]
    fn doorbells() {
        // DSTRD 0: 4-byte stride.
        assert_eq!(doorbell_offset(0, false, 0), Some(0x1000));
        assert_eq!(doorbell_offset(0, true, 0), Some(0x1004));
        assert_eq!(doorbell_offset(1, false, 0), Some(0x1008));
        assert_eq!(doorbell_offset(1, true, 0), Some(0x100c));
        // DSTRD 2: 16-byte stride.
        assert_eq!(doorbell_offset(0, true, 2), Some(0x1010));
        assert_eq!(doorbell_offset(3, false, 2), Some(0x1060));
        assert_eq!(doorbell_offset(3, true, 2), Some(0x1070));
        // Largest queue ID and DSTRD 15.
        assert_eq!(
            doorbell_offset(u16::MAX, true, 15),
            Some(0x1000 + 0x1_ffff * (4 << 15))
        );
    }

    #[test]
    fn shadow_indices() {
        assert_eq!(shadow_index(0, false, 0), Some(0));
        assert_eq!(shadow_index(1, false, 0), Some(2));
        assert_eq!(shadow_index(1, true, 0), Some(3));
        assert_eq!(shadow_index(3, true, 2), Some(28));
        assert_eq!(shadow_index(1, true, 64), None);
    }

    #[test]
    fn shadow_events() {
        // The controller saw everything up to the old value: tell it.
        assert!(shadow_needs_event(4, 5, 4));
        assert!(shadow_needs_event(4, 9, 4));
        // It has not caught up to the old value yet: it reads on.
        assert!(!shadow_needs_event(3, 5, 4));
        // Its event index lies inside the new stretch.
        assert!(shadow_needs_event(6, 9, 4));
        // Nothing moved: never.
        assert!(!shadow_needs_event(4, 4, 4));
        // Across the 16-bit wrap.
        assert!(shadow_needs_event(0xffff, 2, 0xffff));
        assert!(shadow_needs_event(0, 2, 0xffff));
        assert!(!shadow_needs_event(0xfffe, 2, 0xffff));
    }

    #[test]
    fn doorbell_overflow() {
        let bits = usize::BITS;
        assert_eq!(doorbell_offset(1, false, bits), None);
        assert_eq!(doorbell_offset(1, false, u32::MAX), None);
        assert_eq!(doorbell_offset(1, false, bits - 3), None);
        assert_eq!(doorbell_offset(0, false, bits - 3), Some(0x1000));
        assert_eq!(doorbell_offset(u16::MAX, true, bits - 8), None);
    }

    #[test]
    fn queue_depth() {
        assert_eq!(io_queue_depth(2048, 1024), 1024);
        assert_eq!(io_queue_depth(64, 1024), 64);
        assert_eq!(io_queue_depth(65536, 1024), 1024);
        assert_eq!(io_queue_depth(65536, u16::MAX), u16::MAX);
        assert_eq!(io_queue_depth(1, 1024), 2);
        assert_eq!(io_queue_depth(0, 1024), 2);
        assert_eq!(io_queue_depth(2048, 0), 2);
    }
}
