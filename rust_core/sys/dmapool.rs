// SPDX-License-Identifier: GPL-2.0

//! Pools of small DMA-coherent blocks (`dma_pool_create`,
//! include/linux/dmapool.h), used for PRP lists and DSM ranges.

use super::bindings;
use super::compat;
use super::pci::PciDevice;
use core::ptr::NonNull;
use kernel::alloc::flags::GFP_KERNEL;
use kernel::error::{code::ENOMEM, Result};
use kernel::sync::Arc;

/// A pool of `block_size`-byte DMA-coherent blocks, aligned to their size.
///
/// # Invariants
///
/// `pool` was created by `dma_pool_create` for `pdev` with `block_size`
/// and is destroyed on drop, after every block (each holds an `Arc` to the
/// pool) has been freed.
pub(crate) struct DmaPool {
    pdev: PciDevice,
    pool: NonNull<bindings::dma_pool>,
    block_size: usize,
}

#[allow(unsafe_code)]
// SAFETY: `dma_pool_alloc` and `dma_pool_free` may be called from any
// context and thread; the pool has its own lock.
unsafe impl Send for DmaPool {}
#[allow(unsafe_code)]
// SAFETY: As above.
unsafe impl Sync for DmaPool {}

impl DmaPool {
    /// Creates a pool of `block_size`-byte blocks for `pdev`.
    #[allow(unsafe_code)]
    pub(crate) fn new(
        pdev: &PciDevice,
        name: &'static core::ffi::CStr,
        block_size: usize,
    ) -> Result<Arc<Self>> {
        // SAFETY: The device is valid; `name` is static; alignment equal to
        // the size keeps every block within one page for page-sized blocks.
        let pool = unsafe {
            compat::dma_pool_create(
                compat::char_ptr(name),
                pdev.as_device(),
                block_size,
                block_size,
                0,
            )
        };
        let pool = NonNull::new(pool).ok_or(ENOMEM)?;
        // INVARIANT: The pool was created with `block_size`.
        Ok(Arc::new(
            Self {
                pdev: pdev.clone(),
                pool,
                block_size,
            },
            GFP_KERNEL,
        )?)
    }

    /// Takes a block without sleeping; `None` if none can be had now.
    #[allow(unsafe_code)]
    pub(crate) fn alloc_atomic(self: &Arc<Self>) -> Option<PoolBlock> {
        let mut dma: bindings::dma_addr_t = 0;
        // SAFETY: `pool` is live by the type invariant; `GFP_ATOMIC` never
        // sleeps, as `queue_rq` requires.
        let cpu = unsafe {
            bindings::dma_pool_alloc(self.pool.as_ptr(), bindings::RSNVME_GFP_ATOMIC, &mut dma)
        };
        let cpu = NonNull::new(cpu.cast::<u64>())?;
        // INVARIANT: `cpu` is a fresh block of this pool at bus address `dma`.
        Some(PoolBlock {
            pool: self.clone(),
            cpu,
            dma,
        })
    }
}

impl Drop for DmaPool {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        let _ = &self.pdev;
        // SAFETY: By the type invariant every block was freed (each held a
        // reference to this pool), so the pool can go.
        unsafe { bindings::dma_pool_destroy(self.pool.as_ptr()) };
    }
}

/// One block of a [`DmaPool`], returned to it on drop.
///
/// # Invariants
///
/// `cpu` is a block of `pool` at bus address `dma`, `pool.block_size`
/// bytes long and 8-byte aligned, owned by this value.
pub(crate) struct PoolBlock {
    pool: Arc<DmaPool>,
    cpu: NonNull<u64>,
    dma: u64,
}

#[allow(unsafe_code)]
// SAFETY: The block is owned by this value; see `DmaPool`.
unsafe impl Send for PoolBlock {}

impl PoolBlock {
    /// The bus address of the block.
    pub(crate) fn dma_handle(&self) -> u64 {
        self.dma
    }

    /// How many 64-bit words the block holds.
    pub(crate) fn words(&self) -> usize {
        self.pool.block_size / core::mem::size_of::<u64>()
    }

    /// Stores `word` at word `index` of the block with one volatile write;
    /// false, storing nothing, if `index` is beyond the block. The block is
    /// only ever written through this, never borrowed or read: the device
    /// may read it at any time.
    #[allow(unsafe_code)]
    pub(crate) fn write_word(&mut self, index: usize, word: u64) -> bool {
        if index >= self.words() {
            return false;
        }
        // SAFETY: By the type invariant `cpu` points to `block_size` bytes
        // of 8-byte-aligned memory owned by this value, and `index` is
        // within them; no reference to the memory is made, so the
        // device's accesses alias none.
        unsafe { self.cpu.as_ptr().add(index).write_volatile(word) };
        true
    }
}

impl Drop for PoolBlock {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: The block came from this pool and is freed once, here.
        unsafe {
            bindings::dma_pool_free(self.pool.pool.as_ptr(), self.cpu.as_ptr().cast(), self.dma)
        };
    }
}
