// SPDX-License-Identifier: GPL-2.0

//! Sleeping (include/linux/delay.h) and the monotonic clock
//! (include/linux/timekeeping.h).

use kernel::bindings;

pub(crate) use super::deadline::{etimedout, Deadline};

/// Sleeps for at least `ms` milliseconds (`msleep`); process context only.
pub(crate) fn msleep(ms: u32) {
    // SAFETY: `msleep` may be called with any value from process context,
    // which is where the driver's waits run (probe, remove, admin commands).
    unsafe { bindings::msleep(ms) };
}

/// Nanoseconds of monotonic time (`ktime_get`).
///
/// The C function rather than the kernel crate's clock type, which 6.12
/// calls `Ktime` and 7.3 `Instant<Monotonic>`: one call for both kernels.
pub(crate) fn monotonic_ns() -> i64 {
    // SAFETY: `ktime_get` may be called from any context once timekeeping
    // is up, long before any module loads.
    unsafe { bindings::ktime_get() }
}
