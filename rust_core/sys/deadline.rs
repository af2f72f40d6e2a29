// SPDX-License-Identifier: GPL-2.0

//! Deadlines for bounded waits on hardware (include/linux/ktime.h), and the
//! error a wait that passed its deadline returns.

#![deny(unsafe_code)]

use super::time::monotonic_ns;
use kernel::bindings;
use kernel::error::Error;

/// The `ETIMEDOUT` error, which 6.12's `kernel::error::code` lacks.
pub(crate) fn etimedout() -> Error {
    Error::from_errno(-(bindings::ETIMEDOUT as i32))
}

/// A point in monotonic time (nanoseconds) after which a wait gives up.
#[derive(Clone, Copy)]
pub(crate) struct Deadline(i64);

impl Deadline {
    /// The deadline `ms` milliseconds from now.
    pub(crate) fn after_ms(ms: u32) -> Self {
        Self(monotonic_ns().saturating_add(i64::from(ms).saturating_mul(1_000_000)))
    }

    /// Whether the deadline has passed.
    pub(crate) fn expired(self) -> bool {
        monotonic_ns() >= self.0
    }

    /// Milliseconds left, 0 once expired.
    pub(crate) fn remaining_ms(self) -> u32 {
        let left = self.0.saturating_sub(monotonic_ns()) / 1_000_000;
        u32::try_from(left.max(0)).unwrap_or(u32::MAX)
    }
}
