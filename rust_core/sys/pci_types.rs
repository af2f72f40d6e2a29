// SPDX-License-Identifier: GPL-2.0

//! The safe half of the PCI device abstraction (see `pci.rs`): enabling
//! the device and stopping its DMA, as guards and tokens counted under the
//! binding's control lock.

#![deny(unsafe_code)]

use super::pci::{DevRef, PciDevice};
use super::print::dev_warn;
use kernel::error::{code::EBUSY, Result};
use kernel::prelude::*;
use kernel::sync::Mutex;

/// The driver's own account of the device, kept under the binding's
/// control lock ([`PciDevice::control`]), which also serialises the
/// driver's changes to the command register and DMA settings.
pub(crate) struct Control {
    /// Live [`EnabledDevice`] guards.
    enabled: u32,
    /// Live [`DmaStopped`] tokens: while there is one, bus mastering
    /// stays off.
    stopped: u32,
}

impl Control {
    /// No guard, no token.
    pub(super) fn new() -> Self {
        Self {
            enabled: 0,
            stopped: 0,
        }
    }

    /// Whether bus mastering may be turned on: the device is enabled and
    /// no token holds its DMA stopped.
    pub(super) fn may_master(&self) -> bool {
        self.enabled > 0 && self.stopped == 0
    }

    /// Whether the device may be disabled: an enable is counted, whose
    /// guard is dropping.
    pub(super) fn may_disable(&self) -> bool {
        self.enabled > 0
    }
}

/// What every handle of one binding shares: the device reference and the
/// lock that serialises the driver's changes to the device.
#[pin_data]
pub(super) struct Shared {
    pub(super) dev: DevRef,
    #[pin]
    pub(super) control: Mutex<Control>,
}

/// A change of the command register ([`PciDevice::command`]).
pub(super) enum Change {
    /// `pci_enable_device_mem`: memory decoding on.
    EnableMem,
    /// `pci_disable_device`: bus mastering and decoding off.
    Disable,
    /// `pci_set_master`: bus mastering (DMA) on.
    SetMaster,
    /// `pci_clear_master`: bus mastering (DMA) off.
    ClearMaster,
}

impl Clone for PciDevice {
    fn clone(&self) -> Self {
        // INVARIANT: A clone of the binding's handle, sharing its lock.
        Self {
            shared: self.shared.clone(),
        }
    }
}

impl PciDevice {
    /// Enables memory decoding (`pci_enable_device_mem`) and bus
    /// mastering (`pci_set_master`), i.e. DMA, until the guard is
    /// dropped. `EBUSY` while a [`DmaStopped`] token lives.
    pub(crate) fn enable_mem(&self) -> Result<EnabledDevice> {
        let mut control = self.control();
        if control.stopped > 0 {
            return Err(EBUSY);
        }
        self.command(&mut control, Change::EnableMem)?;
        control.enabled = control.enabled.saturating_add(1);
        // Cannot fail: enabled, and no token lives.
        let _ = self.command(&mut control, Change::SetMaster);
        Ok(EnabledDevice { pdev: self.clone() })
    }

    /// Stops the device's DMA by clearing bus mastering
    /// (`pci_clear_master`): from now on it can neither read nor write
    /// memory, whatever state it is in, until the token's
    /// [`DmaStopped::resume`].
    pub(crate) fn stop_dma(&self) -> DmaStopped {
        let mut control = self.control();
        // Turning bus mastering off never fails.
        let _ = self.command(&mut control, Change::ClearMaster);
        control.stopped = control.stopped.saturating_add(1);
        DmaStopped {
            pdev: self.clone(),
            resume: false,
        }
    }

    /// Whether `other` is a handle of the same device.
    pub(crate) fn same(&self, other: &PciDevice) -> bool {
        self.as_raw() == other.as_raw()
    }
}

/// A PCI device with memory decoding and bus mastering enabled
/// ([`PciDevice::enable_mem`]); disabled again on drop.
pub(crate) struct EnabledDevice {
    pdev: PciDevice,
}

impl Drop for EnabledDevice {
    fn drop(&mut self) {
        let mut control = self.pdev.control();
        // `pci_disable_device` never fails; it clears bus mastering too.
        let _ = self.pdev.command(&mut control, Change::Disable);
        control.enabled = control.enabled.saturating_sub(1);
    }
}

/// Proof that the device's DMA is stopped: bus mastering is off while
/// this token lives. Only [`PciDevice::stop_dma`] makes one, and nothing
/// turns bus mastering on while one lives: the [`DmaStopped::resume`] of
/// the last one does, and nothing else does after probe enabled the
/// device. Dropped without `resume`, it leaves bus mastering off.
pub(crate) struct DmaStopped {
    pdev: PciDevice,
    /// Whether dropping this token lets the device do DMA again.
    resume: bool,
}

impl DmaStopped {
    /// The device whose DMA is stopped.
    pub(crate) fn device(&self) -> &PciDevice {
        &self.pdev
    }

    /// Whether this token proves `pdev`'s DMA stopped.
    pub(crate) fn covers(&self, pdev: &PciDevice) -> bool {
        self.pdev.same(pdev)
    }

    /// Lets the device do DMA again, once it is known to be reset (it no
    /// longer remembers any memory it was given), unless another token
    /// still holds it stopped (then the last of them decides) or the
    /// device was disabled meanwhile.
    pub(crate) fn resume(mut self) {
        self.resume = true;
    }
}

impl Drop for DmaStopped {
    fn drop(&mut self) {
        let mut control = self.pdev.control();
        control.stopped = control.stopped.saturating_sub(1);
        if self.resume && self.pdev.command(&mut control, Change::SetMaster).is_err() {
            drop(control);
            dev_warn!(
                &self.pdev,
                "bus mastering left off: its DMA is still held stopped\n"
            );
        }
    }
}

/// A BAR claimed by this driver; released on drop.
///
/// # Invariants
///
/// `bar` of `pdev` was claimed by [`PciDevice::request_region`], the only
/// maker of a `Region` (its fields are visible to `pci.rs` for that).
pub(crate) struct Region {
    pub(super) pdev: PciDevice,
    pub(super) bar: u8,
}
