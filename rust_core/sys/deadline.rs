// SPDX-License-Identifier: GPL-2.0

//! Deadlines for bounded waits on hardware (include/linux/ktime.h), and the
//! error a wait that passed its deadline returns.

#![deny(unsafe_code)]

use super::compat::{now, ns_since, Instant};
use kernel::bindings;
use kernel::error::Error;

/// The `ETIMEDOUT` error, which 6.12's `kernel::error::code` lacks.
pub(crate) fn etimedout() -> Error {
    Error::from_errno(-(bindings::ETIMEDOUT as i32))
}

/// A point in monotonic time after which a wait gives up: `ns`
/// nanoseconds after `start`.
#[derive(Clone, Copy)]
pub(crate) struct Deadline {
    start: Instant,
    ns: i64,
}

impl Deadline {
    /// The deadline `ms` milliseconds from now.
    pub(crate) fn after_ms(ms: u32) -> Self {
        Self {
            start: now(),
            ns: i64::from(ms).saturating_mul(1_000_000),
        }
    }

    /// Whether the deadline has passed.
    pub(crate) fn expired(self) -> bool {
        ns_since(self.start) >= self.ns
    }
}
