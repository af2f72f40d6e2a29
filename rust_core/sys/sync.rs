// SPDX-License-Identifier: GPL-2.0

//! A spinlock that disables local interrupts while held
//! (`spin_lock_irqsave`, include/linux/spinlock.h).
//!
//! Queue state is touched both by interrupt handlers and by process
//! context, so its lock must keep the handler from interrupting a holder on
//! the same CPU. The 6.12 `kernel::sync::SpinLock` does not; this backend
//! plugs `spin_lock_irqsave` into the kernel crate's generic [`Lock`], which
//! keeps its guards, lockdep classes and [`kernel::sync::CondVar`] support.

use kernel::bindings;
use kernel::sync::lock::{Backend, Lock};

/// A `spinlock_t` taken with interrupts disabled.
pub(crate) type IrqSpinLock<T> = Lock<T, IrqSpinLockBackend>;

/// Creates an [`IrqSpinLock`] initialiser with its own lockdep class.
macro_rules! new_irq_spinlock {
    ($inner:expr, $name:literal) => {
        kernel::sync::lock::Lock::<_, $crate::sys::sync::IrqSpinLockBackend>::new(
            $inner,
            kernel::c_str!($name),
            kernel::static_lock_class!(),
        )
    };
}
pub(crate) use new_irq_spinlock;

/// The [`Backend`] of [`IrqSpinLock`]: a `spinlock_t` whose guard keeps the
/// saved interrupt flags.
pub(crate) struct IrqSpinLockBackend;

// SAFETY: The kernel's `spinlock_t` provides mutual exclusion; `lock` and
// `relock` (the default, which calls `lock`) both take it with
// `_raw_spin_lock_irqsave`, and `unlock` restores the flags that call saved.
unsafe impl Backend for IrqSpinLockBackend {
    type State = bindings::spinlock_t;
    type GuardState = kernel::ffi::c_ulong;

    unsafe fn init(
        ptr: *mut Self::State,
        name: *const kernel::ffi::c_char,
        key: *mut bindings::lock_class_key,
    ) {
        // SAFETY: `ptr` is valid for writes and `name` and `key` live
        // forever, by the safety requirements of this function.
        unsafe { bindings::__spin_lock_init(ptr, name, key) }
    }

    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        // SAFETY: `ptr` is an initialised `spinlock_t` by the safety
        // requirements of this function. Outside PREEMPT_RT (which Rust
        // does not support in 6.12) a `spinlock_t` is a `raw_spinlock_t`
        // at offset 0.
        unsafe { bindings::_raw_spin_lock_irqsave(ptr.cast()) }
    }

    unsafe fn unlock(ptr: *mut Self::State, flags: &Self::GuardState) {
        // SAFETY: The caller owns the lock, taken by `lock` above, which
        // returned `flags`.
        unsafe { bindings::_raw_spin_unlock_irqrestore(ptr.cast(), *flags) }
    }
}
