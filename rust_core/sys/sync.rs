// SPDX-License-Identifier: GPL-2.0

//! A spinlock that disables local interrupts while held
//! (`spin_lock_irqsave`, include/linux/spinlock.h).
//!
//! Queue state is touched both by interrupt handlers and by process
//! context, so its lock must keep the handler from interrupting a holder on
//! the same CPU. The 6.12 `kernel::sync::SpinLock` does not; 7.3's kernel
//! crate has `SpinLockIrq`, which does. [`IrqSpinLock`] is that type on
//! 7.3 and, on 6.12, the kernel crate's generic `Lock` with a backend of
//! rsnvme's that takes the lock with `spin_lock_irqsave` (in
//! `sys/compat.rs`, the type in `sys/compat_types.rs`), which keeps its guards, lockdep classes and
//! `kernel::sync::CondVar` support.

#![deny(unsafe_code)]

pub(crate) use super::compat::{new_irq_spinlock, IrqSpinLock};
