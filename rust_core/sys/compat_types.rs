// SPDX-License-Identifier: GPL-2.0

//! What differs between the kernels rsnvme builds against, Linux 6.12 and
//! 7.3: the safe half of `sys::compat` (`compat.rs` has the C calls).
//!
//! Kbuild sets the cfg `rsnvme_linux_7_3` when building against 7.3 or
//! later (from the kernel's `VERSION` and `PATCHLEVEL`). Each item here
//! and in `compat.rs` has one definition per kernel; the rest of the crate
//! uses them through `sys::compat` instead of the API that changed. The C
//! functions of both kernels are listed at the end of `bindings_helper.h`.
//!
//! Every difference, and where it is handled:
//!
//! | 6.12 | 7.3 | where |
//! | --- | --- | --- |
//! | `blk_mq_pci_map_queues()`, `<linux/blk-mq-pci.h>` | `blk_mq_map_hw_queues()` on the `struct device` (6.14; 6.12.y has it, but its PCI bus gives it no IRQ affinity) | `compat::map_hw_queues` |
//! | `__blk_rq_map_sg(q, rq, sg, last)` | `__blk_rq_map_sg(rq, sg, last)` (6.15) | `compat::blk_rq_map_sg` |
//! | `dma_pool_create()` exported | a static inline; `dma_pool_create_node()` | `compat::dma_pool_create` |
//! | `ioread64_lo_hi()` exported | a static inline; `__ioread64_lo_hi()` | avoided: `Bar::read64` does its two `ioread32()`s |
//! | `BLK_MQ_F_SHOULD_MERGE` | gone, merging is the default | [`TAG_SET_FLAGS`] |
//! | `init_request(.., unsigned int numa_node)` | `int numa_node` | [`InitRequestNode`] |
//! | `device_attribute.show`/`.store`, `attribute_group.attrs`, `.is_visible` | each in a union with a const variant | [`set_show`], [`set_store`], [`set_attrs`], [`set_is_visible`] |
//! | `bvec_iter.bi_bvec_done` | `bvec_iter.bi_offset` | [`bvec_done`] |
//! | `Guard::as_mut` is `DerefMut`'s (reaches `Option::as_mut`) | `Guard::as_mut` pins the data | callers write `Option::as_mut(&mut guard)` (`mgmt.rs`, `scan.rs`) |
//! | no irq-disabling spinlock in the kernel crate | `kernel::sync::SpinLockIrq`; the lock `Backend` trait also wants `try_lock` and `assert_is_held` (no irqsave trylock is callable from Rust) | [`IrqSpinLock`] (6.12: `compat::IrqSpinLockBackend`) |
//! | `UserSlice::new(usize, len)` | `UserSlice::new(UserPtr, len)` | [`user_slice`] |
//! | `CStr::as_ptr`/`from_ptr` allowed | forbidden by the kernel's clippy.toml (`c_char` is `u8`); `CStrExt::from_char_ptr` instead | [`char_ptr`], `compat::cstr_from_ptr` |
//! | `kernel::time::Ktime` | `kernel::time::Instant<Monotonic>`, `Delta` | [`Instant`], [`now`], [`ns_since`] |
//! | `system_unbound_wq` | deprecated for `system_dfl_wq` (warns once when used) | avoided: the work runs on the driver's own workqueue (`sys/workqueue.rs`) |
//! | `struct module` FFI-safe | has an empty `struct its_array` (rustc: not FFI-safe) | `#[allow(improper_ctypes)]` on `__this_module` (`sys/mod.rs`) |
//! | pedantic clippy lints off | `cast_lossless`, `ptr_as_ptr`, `ref_as_ptr`, ... on | allowed in the generated bindings (`sys/bindings.rs`); rsnvme's own code is clean under both |
//! | external module builds run in the kernel's build directory | in the module's directory (6.13) | `gen_bindings.sh` changes to `$(objtree)` itself |
//! | `CONFIG_BLK_MQ_PCI` | gone (6.14); the rnull sample needs `CONFIG_CONFIGFS_FS` | `qemu-ci/kernel.7.3.config` |
//! | clang 13 or later for a clang build (KASAN with Rust needs one) | clang 15 or later (Debian 12 has 14): 7.3's test kernel is built with gcc, without KASAN | `qemu-ci/kernel.7.3.config` |
//! | bindgen with libclang 14 | libclang 17 or later | `qemu-ci/fetch-7.3.sh` (Debian's libclang 19, unpacked privately) |
//! | `io_uring_cmd_done(cmd, ret, res2, flags)` posts a big CQE on a CQE32 ring | `__io_uring_cmd_done(.., is_cqe32)`, `io_uring_cmd_done32()` inline | `compat::uring_cmd_done` |
//! | task work gets `(struct io_uring_cmd *, unsigned int issue_flags)` | gets `(struct io_tw_req, io_tw_token_t)`; the command is the start of its `io_kiocb`, the flags are `IO_URING_F_COMPLETE_DEFER` | `uring::task_work`, [`TaskWork`] |
//! | `rq_end_io_fn(rq, status)` | `rq_end_io_fn(rq, status, iob)` | a cfg'd parameter of `uring_end_io` (`sys/blk/queue.rs`) |
//! | clippy's `unnecessary_map_or` held back by 6.12's MSRV | on | `queue.rs` uses a `match` (the same on both) |

#![deny(unsafe_code)]

use super::bindings;
use core::ffi::{c_uint, CStr};
use kernel::uaccess::UserSlice;

/// The user memory at `addr`, `len` bytes long.
///
/// 7.3 takes the address as a `UserPtr`, 6.12 as a `usize`.
pub(crate) fn user_slice(addr: usize, len: usize) -> UserSlice {
    #[cfg(not(rsnvme_linux_7_3))]
    let ptr = addr;
    #[cfg(rsnvme_linux_7_3)]
    let ptr = kernel::uaccess::UserPtr::from_addr(addr);
    UserSlice::new(ptr, len)
}

/// The kernel's `const char *` of a C string.
///
/// 7.3's kernel crate makes `c_char` `u8` on every architecture and its
/// clippy configuration forbids `CStr::as_ptr` (whose `c_char` may be
/// `i8`); the bytes' pointer is the same on both kernels.
pub(crate) const fn char_ptr(s: &CStr) -> *const kernel::ffi::c_char {
    s.to_bytes_with_nul().as_ptr().cast()
}

/// The `flags` of a blk-mq tag set.
///
/// 6.12 merges requests only with `BLK_MQ_F_SHOULD_MERGE`; 6.14 made
/// merging the default and removed the flag.
#[cfg(not(rsnvme_linux_7_3))]
pub(super) const TAG_SET_FLAGS: c_uint = bindings::BLK_MQ_F_SHOULD_MERGE as c_uint;
/// The `flags` of a blk-mq tag set (see the 6.12 definition).
#[cfg(rsnvme_linux_7_3)]
pub(super) const TAG_SET_FLAGS: c_uint = 0;

/// The type of `blk_mq_ops.init_request`'s NUMA node argument: 6.12 has it
/// unsigned, 7.3 an `int` (`NUMA_NO_NODE` is -1).
#[cfg(not(rsnvme_linux_7_3))]
pub(super) type InitRequestNode = c_uint;
/// The type of `blk_mq_ops.init_request`'s NUMA node argument.
#[cfg(rsnvme_linux_7_3)]
pub(super) type InitRequestNode = core::ffi::c_int;

/// Sets the `show` callback of a device attribute.
///
/// 7.3 puts `show` in a union with a `show_const` variant.
pub(super) const fn set_show(attr: &mut bindings::device_attribute, show: super::sysfs::ShowFn) {
    #[cfg(not(rsnvme_linux_7_3))]
    {
        attr.show = Some(show);
    }
    #[cfg(rsnvme_linux_7_3)]
    {
        attr.__bindgen_anon_1.show = Some(show);
    }
}

/// Sets the `store` callback of a device attribute.
///
/// 7.3 puts `store` in a union with a `store_const` variant.
pub(super) const fn set_store(attr: &mut bindings::device_attribute, store: super::sysfs::StoreFn) {
    #[cfg(not(rsnvme_linux_7_3))]
    {
        attr.store = Some(store);
    }
    #[cfg(rsnvme_linux_7_3)]
    {
        attr.__bindgen_anon_2.store = Some(store);
    }
}

/// Sets the attributes of an attribute group.
///
/// 7.3 puts `attrs` in a union with a const `attrs_const` variant.
pub(super) const fn set_attrs(
    group: &mut bindings::attribute_group,
    attrs: *mut *mut bindings::attribute,
) {
    #[cfg(not(rsnvme_linux_7_3))]
    {
        group.attrs = attrs;
    }
    #[cfg(rsnvme_linux_7_3)]
    {
        group.__bindgen_anon_2.attrs = attrs;
    }
}

/// Sets the `is_visible` callback of an attribute group.
///
/// 7.3 puts it in a union with a const-attribute variant.
pub(super) const fn set_is_visible(
    group: &mut bindings::attribute_group,
    f: unsafe extern "C" fn(
        *mut bindings::kobject,
        *mut bindings::attribute,
        kernel::ffi::c_int,
    ) -> bindings::umode_t,
) {
    #[cfg(not(rsnvme_linux_7_3))]
    {
        group.is_visible = Some(f);
    }
    #[cfg(rsnvme_linux_7_3)]
    {
        group.__bindgen_anon_1.is_visible = Some(f);
    }
}

/// The bytes of the current vector a bio iterator has consumed.
///
/// 7.3 names the field `bi_offset` (it was `bi_bvec_done`).
pub(super) fn bvec_done(iter: &bindings::bvec_iter) -> c_uint {
    #[cfg(not(rsnvme_linux_7_3))]
    {
        iter.bi_bvec_done
    }
    #[cfg(rsnvme_linux_7_3)]
    {
        iter.bi_offset
    }
}

/// A spinlock taken with local interrupts disabled.
///
/// 7.3's kernel crate has one, `kernel::sync::SpinLockIrq`; 6.12's does
/// not, so there it is the generic `Lock` with rsnvme's own backend,
/// `IrqSpinLockBackend` below.
#[cfg(rsnvme_linux_7_3)]
pub(crate) type IrqSpinLock<T> = kernel::sync::SpinLockIrq<T>;
/// A spinlock taken with local interrupts disabled.
#[cfg(not(rsnvme_linux_7_3))]
pub(crate) type IrqSpinLock<T> = kernel::sync::lock::Lock<T, super::compat::IrqSpinLockBackend>;

/// Creates an [`IrqSpinLock`] initialiser with its own lockdep class.
#[cfg(rsnvme_linux_7_3)]
macro_rules! new_irq_spinlock {
    ($inner:expr, $name:literal) => {
        kernel::sync::new_spinlock_irq!($inner, $name)
    };
}
/// Creates an [`IrqSpinLock`] initialiser with its own lockdep class.
#[cfg(not(rsnvme_linux_7_3))]
macro_rules! new_irq_spinlock {
    ($inner:expr, $name:literal) => {
        kernel::sync::lock::Lock::<_, $crate::sys::compat::IrqSpinLockBackend>::new(
            $inner,
            kernel::c_str!($name),
            kernel::static_lock_class!(),
        )
    };
}
pub(crate) use new_irq_spinlock;

/// A point in monotonic time: 6.12's `Ktime`, 7.3's `Instant<Monotonic>`.
#[cfg(not(rsnvme_linux_7_3))]
pub(crate) type Instant = kernel::time::Ktime;
/// A point in monotonic time: 6.12's `Ktime`, 7.3's `Instant<Monotonic>`.
#[cfg(rsnvme_linux_7_3)]
pub(crate) type Instant = kernel::time::Instant<kernel::time::Monotonic>;

/// The monotonic clock's time now (`ktime_get`).
pub(crate) fn now() -> Instant {
    #[cfg(not(rsnvme_linux_7_3))]
    let t = kernel::time::Ktime::ktime_get();
    #[cfg(rsnvme_linux_7_3)]
    let t = Instant::now();
    t
}

/// Nanoseconds from `earlier` to now.
pub(crate) fn ns_since(earlier: Instant) -> i64 {
    #[cfg(not(rsnvme_linux_7_3))]
    let ns = (now() - earlier).to_ns();
    #[cfg(rsnvme_linux_7_3)]
    let ns = earlier.elapsed().as_nanos();
    ns
}

/// The task work callback `__io_uring_cmd_do_in_task` takes.
#[cfg(not(rsnvme_linux_7_3))]
pub(crate) type TaskWork = unsafe extern "C" fn(*mut bindings::io_uring_cmd, c_uint);
/// The task work callback `__io_uring_cmd_do_in_task` takes.
#[cfg(rsnvme_linux_7_3)]
pub(crate) type TaskWork = unsafe extern "C" fn(bindings::io_tw_req, bindings::io_tw_state);
