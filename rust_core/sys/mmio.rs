// SPDX-License-Identifier: GPL-2.0

//! Memory-mapped PCI BARs (`pci_iomap` and `ioread32`/`iowrite32` from
//! include/asm-generic/iomap.h).
//!
//! Every access is checked against the mapped length and the access size's
//! alignment, so a bad offset (for instance a doorbell computed from a
//! corrupt CAP.DSTRD) is an error, not a stray write.

use super::bindings;
use super::pci::PciDevice;
use core::ffi::{c_int, c_void};
use core::ptr::NonNull;
use kernel::alloc::flags::GFP_KERNEL;
use kernel::error::{
    code::{EINVAL, ENODEV, ENOMEM},
    Result,
};
use kernel::sync::Arc;

/// A PCI memory BAR mapped into kernel virtual memory.
///
/// # Invariants
///
/// `addr` is the cookie `pci_iomap` returned for a BAR of `pdev` that is
/// at least `len` bytes long, and it stays mapped until `drop`.
pub(crate) struct Bar {
    pdev: PciDevice,
    addr: NonNull<c_void>,
    len: usize,
}

#[allow(unsafe_code)]
// SAFETY: MMIO through `ioread32`/`iowrite32` may happen from any thread; the
// mapping itself is not tied to the thread that created it.
unsafe impl Send for Bar {}
#[allow(unsafe_code)]
// SAFETY: `&Bar` only allows single register accesses, which the hardware
// takes one at a time; ordering between them is the caller's protocol.
unsafe impl Sync for Bar {}

impl Bar {
    /// Maps all of BAR `bar` of `pdev`. Fails with `ENODEV` when the BAR is
    /// shorter than `min_len` bytes.
    #[allow(unsafe_code)]
    pub(crate) fn map(pdev: &PciDevice, bar: u8, min_len: usize) -> Result<Arc<Self>> {
        let len = usize::try_from(pdev.resource_len(bar.into())).map_err(|_| EINVAL)?;
        if len < min_len {
            return Err(ENODEV);
        }
        // SAFETY: The device is valid by `PciDevice`'s invariant; a `maxlen`
        // of 0 maps the whole BAR.
        let addr = unsafe { bindings::pci_iomap(pdev.as_raw(), c_int::from(bar), 0) };
        let addr = NonNull::new(addr).ok_or(ENOMEM)?;
        // INVARIANT: `addr` maps the whole BAR, which is `len` bytes long.
        let bar = Self {
            pdev: pdev.clone(),
            addr,
            len,
        };
        Ok(Arc::new(bar, GFP_KERNEL)?)
    }

    /// Length of the mapping in bytes.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Returns the address of the `size`-byte register at `offset`, if the
    /// register is naturally aligned and inside the mapping.
    fn reg(&self, offset: usize, size: usize) -> Result<*mut c_void> {
        match offset.checked_add(size) {
            Some(end) if end <= self.len && offset % size == 0 => {
                // The pointer is only computed here; it is dereferenced by
                // the ioread/iowrite functions, within the mapping.
                Ok(self.addr.as_ptr().cast::<u8>().wrapping_add(offset).cast())
            }
            _ => Err(EINVAL),
        }
    }

    /// Reads the 32-bit register at `offset`.
    #[allow(unsafe_code)]
    pub(crate) fn read32(&self, offset: usize) -> Result<u32> {
        let reg = self.reg(offset, 4)?;
        // SAFETY: `reg` is an aligned 32-bit location inside the mapping,
        // which is live by the type invariant.
        Ok(unsafe { bindings::ioread32(reg) })
    }

    /// Writes the 32-bit register at `offset`. Like `writel`, this is
    /// ordered after the CPU's earlier writes to DMA-coherent memory.
    #[allow(unsafe_code)]
    pub(crate) fn write32(&self, offset: usize, value: u32) -> Result {
        let reg = self.reg(offset, 4)?;
        // SAFETY: As in `read32`.
        unsafe { bindings::iowrite32(value, reg) };
        Ok(())
    }

    /// Writes the 64-bit register at `offset` as two 32-bit writes, low
    /// half first, as NVMe allows for ASQ and ACQ.
    pub(crate) fn write64(&self, offset: usize, value: u64) -> Result {
        self.reg(offset, 8)?;
        // Truncation intended: the low half, then the high half.
        self.write32(offset, value as u32)?;
        self.write32(offset + 4, (value >> 32) as u32)
    }

    /// Returns the doorbell register at `offset`, checked once here so that
    /// ringing it cannot fail.
    pub(crate) fn doorbell(self: &Arc<Self>, offset: usize) -> Result<Doorbell> {
        let reg = self.reg(offset, 4)?;
        // INVARIANT: `reg` is a checked register of `bar`, kept mapped by
        // the reference the doorbell holds.
        Ok(Doorbell {
            _bar: self.clone(),
            reg,
        })
    }

    /// Reads the 64-bit register at `offset` as two 32-bit reads, low half
    /// first, as NVMe allows for CAP.
    /// (What `ioread64_lo_hi` does; 6.12 and 7.3 export it under
    /// different names.)
    pub(crate) fn read64(&self, offset: usize) -> Result<u64> {
        self.reg(offset, 8)?;
        let lo = self.read32(offset)?;
        let hi = self.read32(offset.checked_add(4).ok_or(EINVAL)?)?;
        Ok(u64::from(hi) << 32 | u64::from(lo))
    }
}

/// A 32-bit doorbell register of a mapped BAR.
///
/// # Invariants
///
/// `reg` is an aligned 32-bit register inside `_bar`'s mapping.
pub(crate) struct Doorbell {
    /// Keeps the mapping that `reg` points into alive.
    _bar: Arc<Bar>,
    reg: *mut c_void,
}

#[allow(unsafe_code)]
// SAFETY: The register may be written from any thread (see `Bar`).
unsafe impl Send for Doorbell {}
#[allow(unsafe_code)]
// SAFETY: Writing the register through `&Doorbell` is a single MMIO store.
unsafe impl Sync for Doorbell {}

impl Doorbell {
    /// Writes `value` to the doorbell. The write is ordered after the CPU's
    /// earlier writes to DMA-coherent memory (as `writel` is), so entries
    /// written to a queue before ringing are visible to the device.
    #[allow(unsafe_code)]
    pub(crate) fn ring(&self, value: u32) {
        // SAFETY: By the type invariant `reg` is a valid register, mapped
        // while `self._bar` is alive.
        unsafe { bindings::iowrite32(value, self.reg) };
    }
}

impl Drop for Bar {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: `addr` came from `pci_iomap` on this device and is
        // unmapped exactly once, here.
        unsafe { bindings::pci_iounmap(self.pdev.as_raw(), self.addr.as_ptr()) };
    }
}
