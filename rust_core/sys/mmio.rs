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
use kernel::error::{
    code::{EINVAL, ENODEV, ENOMEM},
    Result,
};

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

// SAFETY: MMIO through `ioread32`/`iowrite32` may happen from any thread; the
// mapping itself is not tied to the thread that created it.
unsafe impl Send for Bar {}
// SAFETY: `&Bar` only allows single register accesses, which the hardware
// takes one at a time; ordering between them is the caller's protocol.
unsafe impl Sync for Bar {}

impl Bar {
    /// Maps all of BAR `bar` of `pdev`. Fails with `ENODEV` when the BAR is
    /// shorter than `min_len` bytes.
    pub(crate) fn map(pdev: &PciDevice, bar: u8, min_len: usize) -> Result<Self> {
        let len = usize::try_from(pdev.resource_len(bar.into())).map_err(|_| EINVAL)?;
        if len < min_len {
            return Err(ENODEV);
        }
        // SAFETY: The device is valid by `PciDevice`'s invariant; a `maxlen`
        // of 0 maps the whole BAR.
        let addr = unsafe { bindings::pci_iomap(pdev.as_raw(), c_int::from(bar), 0) };
        let addr = NonNull::new(addr).ok_or(ENOMEM)?;
        // INVARIANT: `addr` maps the whole BAR, which is `len` bytes long.
        Ok(Self {
            pdev: pdev.clone(),
            addr,
            len,
        })
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
    pub(crate) fn read32(&self, offset: usize) -> Result<u32> {
        let reg = self.reg(offset, 4)?;
        // SAFETY: `reg` is an aligned 32-bit location inside the mapping,
        // which is live by the type invariant.
        Ok(unsafe { bindings::ioread32(reg) })
    }

    /// Reads the 64-bit register at `offset` as two 32-bit reads, low half
    /// first, as NVMe allows for CAP.
    pub(crate) fn read64(&self, offset: usize) -> Result<u64> {
        let reg = self.reg(offset, 8)?;
        // SAFETY: `reg` is an aligned 64-bit location inside the mapping.
        Ok(unsafe { bindings::ioread64_lo_hi(reg) })
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        // SAFETY: `addr` came from `pci_iomap` on this device and is
        // unmapped exactly once, here.
        unsafe { bindings::pci_iounmap(self.pdev.as_raw(), self.addr.as_ptr()) };
    }
}
