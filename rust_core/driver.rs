// SPDX-License-Identifier: GPL-2.0

//! NVMe controller logic, on top of the safe wrappers in `sys`.

#![deny(unsafe_code)]

use crate::spec::regs::{offset, Cap, Csts, Version};
use crate::sys::mmio::Bar;
use crate::sys::pci::{EnabledDevice, PciDevice, Region};
use crate::sys::print::{dev_err, dev_info, dev_warn};
use kernel::error::{code::ENODEV, Result};

/// BAR0 must at least hold the registers and the first doorbell; the admin
/// queue doorbells' real extent is checked once CAP.DSTRD is known.
const MIN_BAR_LEN: usize = offset::DOORBELLS + 4;

/// The kernel's page size as a shift (`PAGE_SHIFT`).
const PAGE_SHIFT: u32 = kernel::bindings::PAGE_SHIFT;

/// One NVMe controller bound to this driver.
///
/// Fields drop in declaration order, which undoes probe in reverse: unmap
/// BAR0, release it, disable the device, drop the device reference.
pub(crate) struct Controller {
    bar: Bar,
    _region: Region,
    _enabled: EnabledDevice,
    pdev: PciDevice,
}

impl Controller {
    /// Takes over the controller at `pdev`: enables it, maps BAR0 and
    /// reads its capabilities.
    pub(crate) fn probe(pdev: PciDevice) -> Result<Self> {
        let enabled = pdev.enable_mem().inspect_err(|e| {
            dev_err!(&pdev, "cannot enable PCI device: {e:?}\n");
        })?;
        enabled.set_master();
        pdev.set_dma_mask(64).inspect_err(|e| {
            dev_err!(&pdev, "no usable 64-bit DMA mask: {e:?}\n");
        })?;
        let region = pdev.request_region(0, c"rsnvme").inspect_err(|e| {
            dev_err!(&pdev, "cannot claim BAR0: {e:?}\n");
        })?;
        let bar = Bar::map(&pdev, 0, MIN_BAR_LEN).inspect_err(|e| {
            dev_err!(
                &pdev,
                "cannot map BAR0 ({} bytes, need {MIN_BAR_LEN}): {e:?}\n",
                pdev.resource_len(0)
            );
        })?;

        let csts = Csts(bar.read32(offset::CSTS)?);
        if csts.is_all_ones() {
            dev_err!(&pdev, "controller does not respond (CSTS reads all ones)\n");
            return Err(ENODEV);
        }
        let cap = Cap(bar.read64(offset::CAP)?);
        let vs = Version(bar.read32(offset::VS)?);
        dev_info!(
            &pdev,
            "NVMe controller {:04x}:{:04x}, BAR0 {} bytes\n",
            pdev.vendor_id(),
            pdev.device_id(),
            bar.len()
        );
        dev_info!(&pdev, "{cap}\n");
        dev_info!(&pdev, "{vs}\n");
        dev_info!(&pdev, "{csts}\n");
        if !cap.supports_nvm() {
            dev_err!(&pdev, "controller lacks the NVM command set\n");
            return Err(ENODEV);
        }
        if cap.page_shift_for(PAGE_SHIFT).is_none() {
            dev_err!(
                &pdev,
                "minimum memory page size {} exceeds the host page size {}\n",
                1u64 << cap.mps_min_shift(),
                1u64 << PAGE_SHIFT
            );
            return Err(ENODEV);
        }
        // The admin SQ tail and CQ head doorbells, CAP.DSTRD apart.
        let admin_doorbells_end = offset::DOORBELLS + 2 * cap.doorbell_stride();
        if bar.len() < admin_doorbells_end {
            dev_err!(
                &pdev,
                "BAR0 is {} bytes, too short for doorbells {} bytes apart\n",
                bar.len(),
                cap.doorbell_stride()
            );
            return Err(ENODEV);
        }
        if csts.fatal() {
            dev_warn!(&pdev, "controller reports a fatal status (CSTS.CFS)\n");
        }

        Ok(Self {
            bar,
            _region: region,
            _enabled: enabled,
            pdev,
        })
    }

    /// Hands the controller back; the fields' drops release everything.
    pub(crate) fn remove(self) {
        match self.bar.read32(offset::CSTS) {
            Ok(csts) => dev_info!(&self.pdev, "unbinding, {}\n", Csts(csts)),
            Err(e) => dev_err!(&self.pdev, "unbinding, CSTS unreadable: {e:?}\n"),
        }
    }
}
