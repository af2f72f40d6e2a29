// SPDX-License-Identifier: GPL-2.0

//! Sleeping (include/linux/delay.h).

use kernel::bindings;

pub(crate) use super::deadline::{etimedout, Deadline};

/// Sleeps for at least `ms` milliseconds (`msleep`); process context only.
#[allow(unsafe_code)]
pub(crate) fn msleep(ms: u32) {
    // SAFETY: `msleep` may be called with any value from process context,
    // which is where the driver's waits run (probe, remove, admin commands).
    unsafe { bindings::msleep(ms) };
}
