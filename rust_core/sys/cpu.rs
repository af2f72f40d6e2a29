// SPDX-License-Identifier: GPL-2.0

//! CPU counts (include/linux/cpumask.h).

use super::bindings;

/// The number of online CPUs (`num_online_cpus()`), at least 1.
#[allow(unsafe_code)]
pub(crate) fn num_online() -> u32 {
    // SAFETY: `__num_online_cpus` is a kernel global that is always valid
    // to read; like `num_online_cpus()` this is a single atomic load.
    let n = unsafe { core::ptr::read_volatile(&raw const bindings::__num_online_cpus.counter) };
    u32::try_from(n).unwrap_or(1).max(1)
}
