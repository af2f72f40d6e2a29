// SPDX-License-Identifier: GPL-2.0

//! DMA-coherent memory shared with a device (`dma_alloc_coherent`,
//! include/linux/dma-mapping.h).
//!
//! The device may write this memory at any time, so it is never handed out
//! as a Rust reference: elements are copied in and out with volatile
//! accesses, and only types for which every bit pattern is valid may live
//! in it.

use super::bindings;
use super::pci::PciDevice;
use core::arch::asm;
use core::marker::PhantomData;
use core::mem::size_of;
use core::ptr::NonNull;
use kernel::error::{
    code::{EINVAL, ENOMEM},
    Result,
};

/// Types that may live in memory a device writes: plain data with no
/// padding, for which every bit pattern is a valid value.
///
/// # Safety
///
/// Implementers must be `#[repr(C)]` or primitive, contain no padding,
/// pointers or references, and accept any bit pattern.
#[allow(unsafe_code)]
pub(crate) unsafe trait DeviceData: Copy {}

#[allow(unsafe_code)]
// SAFETY: Integers accept every bit pattern and have no padding.
unsafe impl DeviceData for u8 {}
#[allow(unsafe_code)]
// SAFETY: As above.
unsafe impl DeviceData for u64 {}

/// An array of `T` in DMA-coherent memory, freed on drop.
///
/// # Invariants
///
/// `cpu` points to `len` values of `T` (`len * size_of::<T>()` bytes,
/// zeroed at allocation) allocated by `dma_alloc_attrs` for `pdev`, whose
/// bus address is `handle`; they stay allocated until `drop`.
pub(crate) struct CoherentArray<T: DeviceData> {
    pdev: PciDevice,
    cpu: NonNull<T>,
    handle: u64,
    len: usize,
    _p: PhantomData<T>,
}

#[allow(unsafe_code)]
// SAFETY: The memory is owned by this value and accessed only through
// volatile copies, which are sound from any thread.
unsafe impl<T: DeviceData + Send> Send for CoherentArray<T> {}
#[allow(unsafe_code)]
// SAFETY: `&CoherentArray` only allows whole-element volatile reads and
// writes, which do not create references into shared memory.
unsafe impl<T: DeviceData + Sync> Sync for CoherentArray<T> {}

impl<T: DeviceData> CoherentArray<T> {
    /// The number of elements.
    pub(crate) fn count(&self) -> usize {
        self.len
    }

    /// The device the memory was allocated for, which may access it.
    pub(crate) fn device(&self) -> &PciDevice {
        &self.pdev
    }

    /// Allocates `len` zeroed elements of DMA-coherent memory for `pdev`.
    #[allow(unsafe_code)]
    pub(crate) fn zeroed(pdev: &PciDevice, len: usize) -> Result<Self> {
        let size = len.checked_mul(size_of::<T>()).ok_or(EINVAL)?;
        if size == 0 {
            return Err(EINVAL);
        }
        let mut handle: bindings::dma_addr_t = 0;
        // SAFETY: The device is valid by `PciDevice`'s invariant and
        // `handle` is a valid place for the bus address. `__GFP_ZERO`
        // makes the memory start zeroed.
        let cpu = unsafe {
            bindings::dma_alloc_attrs(
                pdev.as_device(),
                size,
                &mut handle,
                bindings::RSNVME_GFP_KERNEL_ZERO,
                0,
            )
        };
        let cpu = NonNull::new(cpu.cast::<T>()).ok_or(ENOMEM)?;
        // INVARIANT: `dma_alloc_attrs` returned `size` bytes for `pdev` at
        // bus address `handle`.
        Ok(Self {
            pdev: pdev.clone(),
            cpu,
            handle,
            len,
            _p: PhantomData,
        })
    }

    /// The bus address the device uses for element 0.
    pub(crate) fn dma_handle(&self) -> u64 {
        self.handle
    }

    /// Copies element `index` out of device memory.
    #[allow(unsafe_code)]
    pub(crate) fn read(&self, index: usize) -> Option<T> {
        if index >= self.len {
            return None;
        }
        // SAFETY: `index < len`, so the element is inside the allocation,
        // which is live by the type invariant; `T: DeviceData` accepts
        // whatever the device wrote.
        Some(unsafe { self.cpu.as_ptr().add(index).read_volatile() })
    }

    /// Copies `value` into element `index`; `EINVAL` if out of range.
    #[allow(unsafe_code)]
    pub(crate) fn write(&self, index: usize, value: T) -> Result {
        if index >= self.len {
            return Err(EINVAL);
        }
        // SAFETY: As in `read`; the memory is not referenced anywhere, so a
        // volatile write through the raw pointer aliases nothing.
        unsafe { self.cpu.as_ptr().add(index).write_volatile(value) };
        Ok(())
    }

    /// Copies the first `out.len()` elements into `out`; `EINVAL` if the
    /// array is shorter.
    #[allow(unsafe_code)]
    pub(crate) fn read_into(&self, out: &mut [T]) -> Result {
        if out.len() > self.len {
            return Err(EINVAL);
        }
        for (i, o) in out.iter_mut().enumerate() {
            // SAFETY: `i < out.len() <= len`; see `read`.
            *o = unsafe { self.cpu.as_ptr().add(i).read_volatile() };
        }
        Ok(())
    }
}

impl<T: DeviceData> Drop for CoherentArray<T> {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: By the type invariant the memory came from
        // `dma_alloc_attrs` with this size, device and handle, and it is
        // freed once, here.
        unsafe {
            bindings::dma_free_attrs(
                self.pdev.as_device(),
                self.len * size_of::<T>(),
                self.cpu.as_ptr().cast(),
                self.handle,
                0,
            )
        };
    }
}

// The DMA barriers of the kernel's `asm/barrier.h`: `dma_rmb()`,
// `dma_wmb()` and `dma_mb()`, which order the CPU's accesses to coherent
// DMA memory as a device sees them. In C they are macros, which bindgen
// cannot bind. Linux 6.12, with or without CONFIG_RUST (the stock kernels
// of tools/stock), has no Rust helper for them either (7.3's
// rust/helpers/barrier.c has), and a C helper of the driver's own would be
// one more C object in both module builds and a call on every completion.
// So each is the inline assembly its macro expands to on the architectures
// rsnvme builds for (`barrier_insn!`), inlined as in C. Every one is also
// a compiler barrier: an `asm!` without `nomem` may, to the compiler, read
// and write any memory, so no memory access moves across it (the C
// macros' "memory" clobber). Any other architecture fails to build here
// rather than get barriers that may be too weak.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
compile_error!("rsnvme's DMA barriers (sys/dma.rs) exist for x86-64 and arm64 only");

/// The instruction of each DMA barrier on x86-64, from
/// arch/x86/include/asm/barrier.h: `dma_rmb()` and `dma_wmb()` are
/// `barrier()`, none, as loads to write-back memory (which coherent DMA
/// memory is there) are not reordered with older loads, nor stores with
/// older stores; `dma_mb()` is `mb()`, `mfence`, as a store followed by a
/// load is the one pair x86 reorders.
#[cfg(target_arch = "x86_64")]
macro_rules! barrier_insn {
    (rmb) => {
        ""
    };
    (wmb) => {
        ""
    };
    (mb) => {
        "mfence"
    };
}

/// The instruction of each DMA barrier on arm64, from
/// arch/arm64/include/asm/barrier.h: `dmb` for the outer-shareable domain,
/// where devices are (`fence(SeqCst)` would be `dmb ish`, the CPUs'
/// inner-shareable domain only), for loads, stores or both.
#[cfg(target_arch = "aarch64")]
macro_rules! barrier_insn {
    (rmb) => {
        "dmb oshld"
    };
    (wmb) => {
        "dmb oshst"
    };
    (mb) => {
        "dmb osh"
    };
}

/// Orders the CPU's reads of DMA memory (`dma_rmb()`): reads after it see
/// data at least as new as reads before it saw. Used between seeing a
/// completion entry's Phase Tag flip and reading the rest of the entry.
/// x86-64: a compiler barrier; arm64: `dmb oshld`, which orders earlier
/// loads before later loads and stores.
#[inline(always)]
pub(crate) fn dma_rmb() {
    #[allow(unsafe_code)]
    // SAFETY: A barrier (or none) touches no memory, register, stack or flag.
    unsafe {
        asm!(barrier_insn!(rmb), options(nostack, preserves_flags))
    };
}

/// Orders the CPU's writes to DMA memory (`dma_wmb()`): the device sees
/// writes before it no later than writes after it. Used between writing
/// submission queue entries and publishing the new tail in the shadow
/// doorbell buffer. x86-64: a compiler barrier; arm64: `dmb oshst`, which
/// orders earlier stores before later stores.
#[inline(always)]
pub(crate) fn dma_wmb() {
    #[allow(unsafe_code)]
    // SAFETY: A barrier (or none) touches no memory, register, stack or flag.
    unsafe {
        asm!(barrier_insn!(wmb), options(nostack, preserves_flags))
    };
}

/// Orders all of the CPU's accesses to DMA memory before it against all
/// after it (`dma_mb()`), a store before a later load included. Used
/// between writing a shadow doorbell and reading the controller's event
/// index, as the controller orders updating the event index before
/// reading the shadow doorbell. x86-64: `mfence`; arm64: `dmb osh`.
#[inline(always)]
pub(crate) fn dma_mb() {
    #[allow(unsafe_code)]
    // SAFETY: A barrier touches no memory, register, stack or flag.
    unsafe {
        asm!(barrier_insn!(mb), options(nostack, preserves_flags))
    };
}

#[allow(unsafe_code)]
// SAFETY: `u32` accepts every bit pattern and has no padding.
unsafe impl DeviceData for u32 {}
#[allow(unsafe_code)]
// SAFETY: `Command` is `#[repr(C)]`, 64 bytes of integer fields with no
// padding (checked by its size assertion), so every bit pattern is valid.
unsafe impl DeviceData for crate::spec::command::Command {}
