// SPDX-License-Identifier: GPL-2.0

//! PCI device handles (include/linux/pci.h).
//!
//! The raw `struct pci_dev` pointer from the PCI core becomes a
//! [`PciDevice`] in [`PciDevice::get`] and is never seen above this layer.
//! Enabling the device and claiming a BAR return guards that undo the step
//! when dropped.

use super::bindings;
use super::compat;
use core::ffi::{c_int, c_void, CStr};
use core::ptr::{addr_of_mut, NonNull};
use kernel::error::{code::EINVAL, to_result, Result};

/// A counted reference to a PCI device.
///
/// # Invariants
///
/// `ptr` points to a valid `struct pci_dev` on which this handle holds one
/// reference, taken with `pci_dev_get` and dropped with `pci_dev_put`.
pub(crate) struct PciDevice {
    ptr: NonNull<bindings::pci_dev>,
}

#[allow(unsafe_code)]
// SAFETY: A `struct pci_dev` is reference counted and the PCI functions this
// type calls may be called from any thread.
unsafe impl Send for PciDevice {}
#[allow(unsafe_code)]
// SAFETY: `&PciDevice` only allows calls that the PCI core serialises
// itself, so sharing it between threads is sound.
unsafe impl Sync for PciDevice {}

impl PciDevice {
    /// Takes a reference to the device at `ptr`.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid `struct pci_dev`.
    #[allow(unsafe_code)]
    pub(crate) unsafe fn get(ptr: *mut bindings::pci_dev) -> Result<Self> {
        // SAFETY: `ptr` is valid by this function's safety requirements.
        let ptr = unsafe { bindings::pci_dev_get(ptr) };
        // INVARIANT: `pci_dev_get` returned the device with a new reference.
        NonNull::new(ptr).map(|ptr| Self { ptr }).ok_or(EINVAL)
    }

    /// The raw device, for the other wrappers in this layer.
    pub(super) fn as_raw(&self) -> *mut bindings::pci_dev {
        self.ptr.as_ptr()
    }

    /// The embedded `struct device`, for logging and DMA.
    #[allow(unsafe_code)]
    pub(super) fn as_device(&self) -> *mut bindings::device {
        // SAFETY: `ptr` is valid by the type invariant; this only computes
        // the address of a field.
        unsafe { addr_of_mut!((*self.ptr.as_ptr()).dev) }
    }

    /// The device's name, its PCI address as `pci_name()` gives it.
    #[allow(unsafe_code)]
    pub(crate) fn name(&self) -> &CStr {
        // SAFETY: `ptr` is valid by the type invariant; a PCI device's
        // name is set when it is added and not changed while it lives.
        let name = unsafe { (*self.as_device()).kobj.name };
        if name.is_null() {
            return c"";
        }
        // SAFETY: A non-null kobject name is a NUL-terminated string that
        // lives as long as the device, which `self` keeps alive.
        unsafe { compat::cstr_from_ptr(name) }
    }

    /// PCI vendor id.
    #[allow(unsafe_code)]
    pub(crate) fn vendor_id(&self) -> u16 {
        // SAFETY: `ptr` is valid by the type invariant and `vendor` is
        // fixed once the device is enumerated.
        unsafe { (*self.ptr.as_ptr()).vendor }
    }

    /// PCI device id.
    #[allow(unsafe_code)]
    pub(crate) fn device_id(&self) -> u16 {
        // SAFETY: As for `vendor_id`.
        unsafe { (*self.ptr.as_ptr()).device }
    }

    /// Whether MSI-X is enabled on the device.
    #[allow(unsafe_code)]
    pub(crate) fn msix_enabled(&self) -> bool {
        // SAFETY: `ptr` is valid by the type invariant; the PCI core only
        // changes this bit while allocating or freeing vectors, which the
        // bound driver does itself.
        unsafe { (*self.ptr.as_ptr()).msix_enabled() != 0 }
    }

    /// Whether MSI is enabled on the device.
    #[allow(unsafe_code)]
    pub(crate) fn msi_enabled(&self) -> bool {
        // SAFETY: As for `msix_enabled`.
        unsafe { (*self.ptr.as_ptr()).msi_enabled() != 0 }
    }

    /// Length in bytes of BAR `bar`, 0 if it is absent or out of range.
    #[allow(unsafe_code)]
    pub(crate) fn resource_len(&self, bar: usize) -> u64 {
        // SAFETY: `ptr` is valid by the type invariant; BAR resources are
        // fixed while a driver is bound.
        let res = unsafe { &(*self.ptr.as_ptr()).resource };
        match res.get(bar) {
            Some(r) if r.end != 0 => r.end.wrapping_sub(r.start).wrapping_add(1),
            _ => 0,
        }
    }

    /// Enables memory decoding (`pci_enable_device_mem`) until the guard
    /// is dropped.
    #[allow(unsafe_code)]
    pub(crate) fn enable_mem(&self) -> Result<EnabledDevice> {
        // SAFETY: `ptr` is valid by the type invariant.
        to_result(unsafe { bindings::pci_enable_device_mem(self.as_raw()) })?;
        Ok(EnabledDevice { pdev: self.clone() })
    }

    /// Sets the streaming and coherent DMA masks to `bits` bits.
    #[allow(unsafe_code)]
    pub(crate) fn set_dma_mask(&self, bits: u32) -> Result {
        let mask = match bits {
            64 => u64::MAX,
            1..=63 => (1u64 << bits) - 1,
            _ => return Err(EINVAL),
        };
        // SAFETY: `as_device()` is valid by the type invariant.
        to_result(unsafe { bindings::dma_set_mask(self.as_device(), mask) })?;
        // SAFETY: As above.
        to_result(unsafe { bindings::dma_set_coherent_mask(self.as_device(), mask) })
    }

    /// Claims BAR `bar` for this driver (`pci_request_region`) until the
    /// guard is dropped.
    #[allow(unsafe_code)]
    pub(crate) fn request_region(&self, bar: u8, name: &'static CStr) -> Result<Region> {
        // SAFETY: `ptr` is valid by the type invariant; `name` is a static
        // NUL-terminated string, as the resource tree keeps the pointer.
        to_result(unsafe {
            bindings::pci_request_region(self.as_raw(), c_int::from(bar), compat::char_ptr(name))
        })?;
        Ok(Region {
            pdev: self.clone(),
            bar,
        })
    }

    /// Stores the driver's per-device data pointer (`pci_set_drvdata`).
    ///
    /// # Safety
    ///
    /// Whatever reads the drvdata (the driver's sysfs attributes and its
    /// remove) takes it for the driver's own type: `data` must point to
    /// that type, alive until it is taken back, or be null.
    #[allow(unsafe_code)]
    pub(crate) unsafe fn set_drvdata(&self, data: *mut c_void) {
        // SAFETY: The device is valid while `self` holds its reference.
        unsafe { (*self.ptr.as_ptr()).dev.driver_data = data };
    }

    /// Sets the device's DMA parameters: bounce buffering (swiotlb) keeps
    /// the offset of each mapping within a `min_align_mask + 1` boundary,
    /// as PRPs need (`dma_set_min_align_mask`), and a mapped scatterlist
    /// segment may be up to `max_segment_size` bytes long
    /// (`dma_set_max_seg_size`). `EINVAL` without DMA parameters.
    #[allow(unsafe_code)]
    pub(crate) fn set_dma_parms(&self, min_align_mask: u32, max_segment_size: u32) -> Result {
        // SAFETY: The device is valid; `dma_parms` is set up by the PCI
        // core for the device's lifetime, or null.
        let parms = unsafe { (*self.as_device()).dma_parms };
        if parms.is_null() {
            return Err(EINVAL);
        }
        // SAFETY: Non-null, see above; the driver owns these settings
        // while it is bound, and probe runs before anything maps for it.
        unsafe {
            (*parms).min_align_mask = min_align_mask;
            (*parms).max_segment_size = max_segment_size;
        }
        Ok(())
    }

    /// The largest DMA mapping the device can have, and the largest that
    /// maps without a slow path (`dma_max_mapping_size`,
    /// `dma_opt_mapping_size`), in bytes.
    #[allow(unsafe_code)]
    pub(crate) fn dma_mapping_sizes(&self) -> (usize, usize) {
        // SAFETY: The device is valid while `self` holds its reference.
        unsafe {
            (
                bindings::dma_max_mapping_size(self.as_device()),
                bindings::dma_opt_mapping_size(self.as_device()),
            )
        }
    }

    /// Whether the device still answers on the bus (`pci_device_is_present`):
    /// false once it was surprise-removed.
    #[allow(unsafe_code)]
    pub(crate) fn is_present(&self) -> bool {
        // SAFETY: The device is valid while `self` holds its reference.
        unsafe { bindings::pci_device_is_present(self.as_raw()) }
    }

    /// Stops the device's DMA by clearing bus mastering
    /// (`pci_clear_master`): from now on it can neither read nor write
    /// memory, whatever state it is in.
    #[allow(unsafe_code)]
    pub(crate) fn stop_dma(&self) -> DmaStopped {
        // SAFETY: The device is valid while `self` holds its reference.
        unsafe { bindings::pci_clear_master(self.as_raw()) };
        DmaStopped { pdev: self.clone() }
    }

    /// Whether the command register has Bus Master Enable set, as read
    /// from the device; `None` if it cannot be read or the device no
    /// longer answers. Only fault injection's checks need it.
    #[cfg(rsnvme_fault_injection)]
    #[allow(unsafe_code)]
    pub(crate) fn bus_master(&self) -> Option<bool> {
        let mut cmd: u16 = 0;
        // SAFETY: The device is valid; `cmd` is written by the call.
        let ret = unsafe {
            bindings::pci_read_config_word(self.as_raw(), bindings::PCI_COMMAND as c_int, &mut cmd)
        };
        (ret == 0 && cmd != u16::MAX).then_some(cmd & bindings::PCI_COMMAND_MASTER as u16 != 0)
    }

    /// Turns memory decoding back on if something cleared it behind the
    /// driver's back (e.g. `setpci`), so that the registers answer again;
    /// returns whether it had to.
    #[allow(unsafe_code)]
    pub(crate) fn restore_memory_decoding(&self) -> bool {
        let want = bindings::PCI_COMMAND_MEMORY as u16;
        let mut cmd: u16 = 0;
        // SAFETY: The device is valid; `cmd` is written by the call.
        let ret = unsafe {
            bindings::pci_read_config_word(self.as_raw(), bindings::PCI_COMMAND as c_int, &mut cmd)
        };
        if ret != 0 || cmd & want == want {
            return false;
        }
        // SAFETY: As above; only the memory enable bit is changed.
        unsafe {
            bindings::pci_write_config_word(
                self.as_raw(),
                bindings::PCI_COMMAND as c_int,
                cmd | want,
            )
        };
        true
    }
}

/// The device's DMA is stopped: bus mastering is off until
/// [`DmaStopped::resume`]. Dropped without `resume`, it stays off.
pub(crate) struct DmaStopped {
    pdev: PciDevice,
}

impl DmaStopped {
    /// The device whose DMA is stopped.
    pub(crate) fn device(&self) -> &PciDevice {
        &self.pdev
    }

    /// Lets the device do DMA again, once it is known to be reset (it no
    /// longer remembers any memory it was given).
    #[allow(unsafe_code)]
    pub(crate) fn resume(self) {
        // SAFETY: The device is valid while `self` holds its reference.
        unsafe { bindings::pci_set_master(self.pdev.as_raw()) };
    }
}

/// Reads the driver data pointer of a raw device (`pci_get_drvdata`).
///
/// # Safety
///
/// `ptr` must point to a valid `struct pci_dev`.
#[allow(unsafe_code)]
pub(crate) unsafe fn drvdata(ptr: *mut bindings::pci_dev) -> *mut c_void {
    // SAFETY: `ptr` is valid by this function's safety requirements.
    unsafe { (*ptr).dev.driver_data }
}

/// The PCI device whose embedded `struct device` is `dev` (`to_pci_dev`).
///
/// # Safety
///
/// `dev` must point to the `dev` field of a valid `struct pci_dev`.
#[allow(unsafe_code)]
pub(crate) unsafe fn of_device(dev: *mut bindings::device) -> *mut bindings::pci_dev {
    // SAFETY: container_of, by this function's safety requirements.
    unsafe {
        dev.byte_sub(core::mem::offset_of!(bindings::pci_dev, dev))
            .cast()
    }
}

impl Clone for PciDevice {
    #[allow(unsafe_code)]
    fn clone(&self) -> Self {
        // SAFETY: `ptr` is valid by the type invariant.
        unsafe { bindings::pci_dev_get(self.as_raw()) };
        // INVARIANT: The clone owns the reference just taken.
        Self { ptr: self.ptr }
    }
}

impl Drop for PciDevice {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: By the type invariant this handle owns one reference.
        unsafe { bindings::pci_dev_put(self.as_raw()) };
    }
}

/// A PCI device with memory decoding enabled; disabled again on drop.
pub(crate) struct EnabledDevice {
    pdev: PciDevice,
}

impl EnabledDevice {
    /// Lets the device master the bus, i.e. do DMA (`pci_set_master`).
    /// `pci_disable_device` on drop clears it again.
    #[allow(unsafe_code)]
    pub(crate) fn set_master(&self) {
        // SAFETY: The device is valid by `PciDevice`'s invariant.
        unsafe { bindings::pci_set_master(self.pdev.as_raw()) };
    }
}

impl Drop for EnabledDevice {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: The device is valid and was enabled by `enable_mem`.
        unsafe { bindings::pci_disable_device(self.pdev.as_raw()) };
    }
}

/// A BAR claimed by this driver; released on drop.
pub(crate) struct Region {
    pdev: PciDevice,
    bar: u8,
}

impl Drop for Region {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: The device is valid and `bar` was claimed by
        // `request_region`.
        unsafe { bindings::pci_release_region(self.pdev.as_raw(), c_int::from(self.bar)) };
    }
}
