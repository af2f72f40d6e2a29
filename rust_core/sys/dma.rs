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

/// Orders the CPU's reads of DMA memory: reads after this barrier see data
/// at least as new as reads before it (`dma_rmb()`). Used between seeing a
/// completion entry's phase bit flip and reading the rest of the entry.
pub(crate) fn dma_rmb() {
    // On x86-64, loads are not reordered with other loads, so `dma_rmb()`
    // is only a compiler barrier; elsewhere an acquire fence orders them.
    #[cfg(target_arch = "x86_64")]
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
    #[cfg(not(target_arch = "x86_64"))]
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
}

/// Orders the CPU's writes to DMA memory: the device sees writes before
/// this barrier no later than writes after it (`dma_wmb()`). Used between
/// writing a submission queue entry and publishing the new tail in the
/// shadow doorbell buffer.
pub(crate) fn dma_wmb() {
    // x86-64 does not reorder stores with other stores.
    #[cfg(target_arch = "x86_64")]
    core::sync::atomic::compiler_fence(core::sync::atomic::Ordering::SeqCst);
    #[cfg(not(target_arch = "x86_64"))]
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
}

/// Orders the CPU's writes to DMA memory before its later reads of DMA
/// memory (`mb()`): a store followed by a load is the one pair x86 may
/// reorder, so this is a full fence everywhere. Used between writing a
/// shadow doorbell and reading the controller's event index, as the
/// controller orders updating the event index before reading the shadow
/// doorbell.
pub(crate) fn dma_mb() {
    core::sync::atomic::fence(core::sync::atomic::Ordering::SeqCst);
}

#[allow(unsafe_code)]
// SAFETY: `u32` accepts every bit pattern and has no padding.
unsafe impl DeviceData for u32 {}
#[allow(unsafe_code)]
// SAFETY: `Command` is `#[repr(C)]`, 64 bytes of integer fields with no
// padding (checked by its size assertion), so every bit pattern is valid.
unsafe impl DeviceData for crate::spec::command::Command {}
