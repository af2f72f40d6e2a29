// SPDX-License-Identifier: GPL-2.0

//! Lists of 64-bit words that the driver writes for the controller to read:
//! PRP lists (NVMe Base Specification 2.0, section 4.1.1) and Dataset
//! Management range lists (section 3.3.3.2.1).
//!
//! They live in DMA memory the controller may read at any time, so the
//! code that fills them never borrows that memory: it stores one word at a
//! time through a [`WordSink`] and never reads a word back.

#![deny(unsafe_code)]

/// A list of 64-bit words that is only ever written, entry by entry.
pub(crate) trait WordSink {
    /// How many words the list holds.
    fn capacity(&self) -> usize;

    /// Stores `word` (already in the controller's byte order) at `index`;
    /// false, storing nothing, if `index` is beyond the list.
    fn put(&mut self, index: usize, word: u64) -> bool;

    /// Zeroes every word from `from` to the end of the list.
    fn zero_from(&mut self, from: usize) {
        for index in from..self.capacity() {
            self.put(index, 0);
        }
    }
}

/// Plain memory, as the host tests use (and an empty list, `[]`).
impl WordSink for [u64] {
    fn capacity(&self) -> usize {
        self.len()
    }

    fn put(&mut self, index: usize, word: u64) -> bool {
        match self.get_mut(index) {
            Some(slot) => {
                *slot = word;
                true
            }
            None => false,
        }
    }
}

impl<const N: usize> WordSink for [u64; N] {
    fn capacity(&self) -> usize {
        N
    }

    fn put(&mut self, index: usize, word: u64) -> bool {
        self.as_mut_slice().put(index, word)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slices_and_arrays() {
        let mut list = [7u64; 4];
        assert!(list.put(0, 1));
        assert!(list.put(3, 4));
        assert!(!list.put(4, 5));
        assert_eq!(list, [1, 7, 7, 4]);
        list[..].zero_from(1);
        assert_eq!(list, [1, 0, 0, 0]);
        let mut empty: [u64; 0] = [];
        assert_eq!(empty.capacity(), 0);
        assert!(!empty.put(0, 1));
    }
}
