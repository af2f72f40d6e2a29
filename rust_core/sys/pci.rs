// SPDX-License-Identifier: GPL-2.0

//! PCI device handles (include/linux/pci.h).
//!
//! The raw `struct pci_dev` pointer from the PCI core becomes a
//! [`PciDevice`] in [`PciDevice::get`] and is never seen above this layer.
//! Enabling the device and claiming a BAR return guards that undo the step
//! when dropped. Every handle of one binding shares one lock, under which
//! the driver changes the device's command register (bus mastering,
//! memory decoding, INTx masking) and DMA settings, and which counts the
//! [`DmaStopped`] tokens: while one lives, bus mastering stays off.

use super::bindings;
use super::compat;
use super::pci_types::{Change, Control, Shared};
pub(crate) use super::pci_types::{DmaStopped, EnabledDevice, Region};
use super::print::Device;
use core::ffi::{c_int, c_void, CStr};
use core::ptr::{addr_of_mut, NonNull};
use kernel::alloc::flags::GFP_KERNEL;
use kernel::error::{
    code::{EBUSY, EINVAL},
    to_result, Result,
};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::lock::{mutex::MutexBackend, Guard};
use kernel::sync::Arc;

/// A counted reference to a `struct pci_dev`.
///
/// # Invariants
///
/// `ptr` points to a valid `struct pci_dev` on which this value holds one
/// reference, taken with `pci_dev_get` and dropped with `pci_dev_put`.
pub(super) struct DevRef {
    ptr: NonNull<bindings::pci_dev>,
}

impl Drop for DevRef {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: By the type invariant this value owns one reference.
        unsafe { bindings::pci_dev_put(self.ptr.as_ptr()) };
    }
}

/// A handle to the PCI device a driver is bound to; clones share it.
///
/// # Invariants
///
/// `shared.dev` is the device. Every handle of one binding is a clone of
/// the one [`PciDevice::get`] made, so `shared.control` is the one lock
/// under which the binding changes the device's command register (bus
/// mastering, memory decoding, INTx masking by vector allocation) and DMA
/// settings. `control.stopped` counts the live [`DmaStopped`] tokens of
/// the device and `control.enabled` its live [`EnabledDevice`] guards.
///
/// # Sharing
///
/// The calls `&PciDevice` allows from several threads at once are of three
/// kinds. Read-modify-writes of the command register and writes of the DMA
/// settings (`enable_mem`, `stop_dma`, `restore_memory_decoding`,
/// `set_dma_mask`, `set_dma_parms`, vector allocation in `irq.rs`, and the
/// drops of `EnabledDevice` and `DmaStopped`) all take `control`, so none
/// of them overwrites another's change. The others are calls the PCI and
/// DMA cores serialise themselves (claiming a region, mapping, config
/// space reads), or reads of fields fixed while the driver is bound.
/// Changes the PCI core makes on its own (sysfs `enable`, `setpci`) are
/// not serialised with the driver's, as for any C driver.
pub(crate) struct PciDevice {
    pub(super) shared: Arc<Shared>,
}

#[allow(unsafe_code)]
// SAFETY: A `struct pci_dev` is reference counted and the PCI functions this
// type calls may be called from any thread.
unsafe impl Send for PciDevice {}
#[allow(unsafe_code)]
// SAFETY: What `&PciDevice` allows is serialised by its control lock, which
// every handle of the binding shares, or by the PCI core (see "Sharing").
unsafe impl Sync for PciDevice {}

impl PciDevice {
    /// Takes a reference to the device at `ptr`, for the binding of this
    /// driver to it.
    ///
    /// # Safety
    ///
    /// `ptr` must point to a valid `struct pci_dev` that the PCI core is
    /// binding to this driver. Every other handle of this binding must be
    /// a clone of the one returned, and the handles of an earlier binding
    /// must make none of the calls that take the control lock any more
    /// (its remove returned), so that one lock serialises them all.
    #[allow(unsafe_code)]
    pub(crate) unsafe fn get(ptr: *mut bindings::pci_dev) -> Result<Self> {
        // SAFETY: `ptr` is valid by this function's safety requirements.
        let ptr = unsafe { bindings::pci_dev_get(ptr) };
        // INVARIANT: `pci_dev_get` returned the device with a new reference.
        let dev = NonNull::new(ptr).map(|ptr| DevRef { ptr }).ok_or(EINVAL)?;
        Self::new(dev)
    }

    /// The one handle of a binding, for `dev`.
    fn new(dev: DevRef) -> Result<Self> {
        // INVARIANT: The one handle of this binding, by the requirements of
        // `get`; no guard or token exists yet.
        Ok(Self {
            shared: Arc::pin_init(
                pin_init!(Shared {
                    dev,
                    control <- new_mutex!(Control::new(), "rsnvme_pci_control"),
                }),
                GFP_KERNEL,
            )?,
        })
    }

    /// The binding's control lock, held (it may sleep): the command
    /// register and DMA settings are changed, and the guards and tokens
    /// counted, only under it.
    pub(super) fn control(&self) -> Guard<'_, Control, MutexBackend> {
        self.shared.control.lock()
    }

    /// Makes `change` to the command register, with the control lock held
    /// (`held`, only reachable through it); bus mastering only goes on as
    /// [`Control::may_master`] allows (else `EBUSY`), the device is only
    /// disabled as [`Control::may_disable`] allows (else `EINVAL`).
    #[allow(unsafe_code)]
    pub(super) fn command(&self, held: &mut Control, change: Change) -> Result {
        let pdev = self.as_raw();
        // SAFETY: The device is valid, and changed under the lock; it is
        // disabled only as often as it was enabled.
        unsafe {
            match change {
                Change::EnableMem => return to_result(bindings::pci_enable_device_mem(pdev)),
                Change::Disable if !held.may_disable() => return Err(EINVAL),
                Change::Disable => bindings::pci_disable_device(pdev),
                Change::SetMaster if !held.may_master() => return Err(EBUSY),
                Change::SetMaster => bindings::pci_set_master(pdev),
                Change::ClearMaster => bindings::pci_clear_master(pdev),
            }
        }
        Ok(())
    }

    /// The raw device, for the other wrappers in this layer.
    pub(super) fn as_raw(&self) -> *mut bindings::pci_dev {
        self.shared.dev.ptr.as_ptr()
    }

    /// The embedded `struct device`, for logging and DMA.
    #[allow(unsafe_code)]
    pub(super) fn as_device(&self) -> *mut bindings::device {
        // SAFETY: `ptr` is valid by the type invariant; this only computes
        // the address of a field.
        unsafe { addr_of_mut!((*self.as_raw()).dev) }
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
        unsafe { (*self.as_raw()).vendor }
    }

    /// PCI device id.
    #[allow(unsafe_code)]
    pub(crate) fn device_id(&self) -> u16 {
        // SAFETY: As for `vendor_id`.
        unsafe { (*self.as_raw()).device }
    }

    /// Whether MSI-X is enabled on the device.
    #[allow(unsafe_code)]
    pub(crate) fn msix_enabled(&self) -> bool {
        // SAFETY: `ptr` is valid by the type invariant; the PCI core only
        // changes this bit while allocating or freeing vectors, which the
        // bound driver does itself.
        unsafe { (*self.as_raw()).msix_enabled() != 0 }
    }

    /// Whether MSI is enabled on the device.
    #[allow(unsafe_code)]
    pub(crate) fn msi_enabled(&self) -> bool {
        // SAFETY: As for `msix_enabled`.
        unsafe { (*self.as_raw()).msi_enabled() != 0 }
    }

    /// Length in bytes of BAR `bar`, 0 if it is absent or out of range.
    #[allow(unsafe_code)]
    pub(crate) fn resource_len(&self, bar: usize) -> u64 {
        // SAFETY: `ptr` is valid by the type invariant; BAR resources are
        // fixed while a driver is bound.
        let res = unsafe { &(*self.as_raw()).resource };
        match res.get(bar) {
            Some(r) if r.end != 0 => r.end.wrapping_sub(r.start).wrapping_add(1),
            _ => 0,
        }
    }

    /// Sets the streaming and coherent DMA masks to `bits` bits.
    #[allow(unsafe_code)]
    pub(crate) fn set_dma_mask(&self, bits: u32) -> Result {
        let mask = match bits {
            64 => u64::MAX,
            1..=63 => (1u64 << bits) - 1,
            _ => return Err(EINVAL),
        };
        let _guard = self.control();
        // SAFETY: `as_device()` is valid by the type invariant; the masks
        // are written under the lock.
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
        unsafe { (*self.as_raw()).dev.driver_data = data };
    }

    /// Sets the device's DMA parameters: bounce buffering (swiotlb) keeps
    /// the offset of each mapping within a `min_align_mask + 1` boundary,
    /// as PRPs need (`dma_set_min_align_mask`), and a mapped scatterlist
    /// segment may be up to `max_segment_size` bytes long
    /// (`dma_set_max_seg_size`). `EINVAL` without DMA parameters.
    #[allow(unsafe_code)]
    pub(crate) fn set_dma_parms(&self, min_align_mask: u32, max_segment_size: u32) -> Result {
        let _guard = self.control();
        // SAFETY: The device is valid; `dma_parms` is set up by the PCI
        // core for the device's lifetime, or null.
        let parms = unsafe { (*self.as_device()).dma_parms };
        if parms.is_null() {
            return Err(EINVAL);
        }
        // SAFETY: Non-null, see above; the driver owns these settings
        // while it is bound and writes them under the lock, and probe runs
        // before anything maps for it.
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
        let _guard = self.control();
        // SAFETY: The device is valid; `cmd` is written by the call.
        let ret = unsafe {
            bindings::pci_read_config_word(self.as_raw(), bindings::PCI_COMMAND as c_int, &mut cmd)
        };
        if ret != 0 || cmd & want == want {
            return false;
        }
        // SAFETY: As above; only the memory enable bit is changed, and the
        // read and the write are under the lock.
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

/// Clears the driver data pointer of a raw device (`pci_set_drvdata(pdev,
/// NULL)`), at remove, without making a second handle to the device.
///
/// # Safety
///
/// `ptr` must point to a valid `struct pci_dev`.
#[allow(unsafe_code)]
pub(crate) unsafe fn clear_drvdata(ptr: *mut bindings::pci_dev) {
    // SAFETY: `ptr` is valid by this function's safety requirements.
    unsafe { (*ptr).dev.driver_data = core::ptr::null_mut() };
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

impl Drop for Region {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: The device is valid and `bar` was claimed by
        // `request_region`.
        unsafe { bindings::pci_release_region(self.pdev.as_raw(), c_int::from(self.bar)) };
    }
}

#[allow(unsafe_code)]
// SAFETY: The embedded `struct device` is valid while the handle holds its
// reference, by the type invariant.
unsafe impl Device for PciDevice {
    fn as_device(&self) -> *mut bindings::device {
        PciDevice::as_device(self)
    }
}
