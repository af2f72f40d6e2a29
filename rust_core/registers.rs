// SPDX-License-Identifier: GPL-2.0

//! The controller's registers in BAR0, accessed by type, and the state
//! changes made through them: reset, enable and shutdown (NVMe Base
//! Specification 2.0, sections 3.1 and 3.5).

#![deny(unsafe_code)]

use crate::spec::queue::doorbell_offset;
use crate::spec::regs::{Cap, Cc, Crto, Csts, Nssr, Register, ShutdownStatus, Version};
use crate::sys::mmio::{Bar, Doorbell};
use crate::sys::pci::PciDevice;
use crate::sys::print::{dev_err, dev_info, dev_warn};
use crate::sys::time::{etimedout, msleep, Deadline};
use kernel::error::{
    code::{EINVAL, EIO, ENODEV, ENOTTY},
    Result,
};
use kernel::sync::Arc;

/// How long a normal shutdown may take before it is abandoned when the
/// controller reports no RTD3E, and the least it gets otherwise: Linux's C
/// driver waits 5 s by default (its `shutdown_timeout`).
pub(crate) const SHUTDOWN_TIMEOUT_MS: u32 = 5000;

/// The most a shutdown is waited for, whatever RTD3E says.
const MAX_SHUTDOWN_TIMEOUT_MS: u32 = 60_000;

/// The shutdown bound for a controller whose RTD3E is `rtd3e_us`.
pub(crate) fn shutdown_timeout_ms(rtd3e_us: u32) -> u32 {
    if rtd3e_us == 0 {
        return SHUTDOWN_TIMEOUT_MS;
    }
    rtd3e_us
        .div_ceil(1000)
        .clamp(SHUTDOWN_TIMEOUT_MS, MAX_SHUTDOWN_TIMEOUT_MS)
}

/// Floor for CAP.TO waits, for controllers that report TO = 0.
const MIN_READY_TIMEOUT_MS: u32 = 500;

/// A register width the BAR can be accessed with.
pub(crate) trait Access: Sized {
    /// Reads the register of this width at `offset`.
    fn read(bar: &Bar, offset: usize) -> Result<Self>;
    /// Writes `self` to the register of this width at `offset`.
    fn write(self, bar: &Bar, offset: usize) -> Result;
}

impl Access for u32 {
    fn read(bar: &Bar, offset: usize) -> Result<Self> {
        bar.read32(offset)
    }

    fn write(self, bar: &Bar, offset: usize) -> Result {
        bar.write32(offset, self)
    }
}

impl Access for u64 {
    fn read(bar: &Bar, offset: usize) -> Result<Self> {
        bar.read64(offset)
    }

    fn write(self, bar: &Bar, offset: usize) -> Result {
        bar.write64(offset, self)
    }
}

/// The register block of one controller, with its capabilities.
pub(crate) struct Registers {
    pdev: PciDevice,
    bar: Arc<Bar>,
    cap: Cap,
    /// The bound for CSTS.RDY transitions, from CAP.TO or CRTO.
    ready_timeout_ms: u32,
    /// Whether NSSR resets the NVM subsystem (CAP.NSSRS, NVMe 1.1+).
    subsystem_reset: bool,
    /// Fault injection: CC.EN=0 is never written, as if the controller
    /// ignored it.
    ignores_disable: bool,
}

impl Registers {
    /// Takes over mapped BAR0 of `pdev`: checks that the controller
    /// answers (CSTS is not all ones) and reads CAP.
    pub(crate) fn new(pdev: &PciDevice, bar: Arc<Bar>) -> Result<Self> {
        let mut regs = Self {
            pdev: pdev.clone(),
            bar,
            cap: Cap(0),
            ready_timeout_ms: MIN_READY_TIMEOUT_MS,
            subsystem_reset: false,
            ignores_disable: false,
        };
        regs.csts()?;
        regs.cap = regs.read()?;
        let mut ready_ms = regs.cap.timeout_ms();
        // NVMe 2.0 controllers may need longer to be ready with their
        // media than CAP.TO (which then only says how long without).
        let vs: Version = regs.read()?;
        if vs.major() >= 2 && regs.cap.has_ready_timeouts() {
            let crto: Crto = regs.read()?;
            ready_ms = ready_ms.max(crto.ready_with_media_ms());
        }
        regs.ready_timeout_ms = ready_ms.max(MIN_READY_TIMEOUT_MS);
        regs.subsystem_reset = regs.cap.subsystem_reset_supported(vs);
        Ok(regs)
    }

    /// Whether the controller can reset its NVM subsystem
    /// ([`Registers::reset_subsystem`]).
    pub(crate) fn subsystem_reset_supported(&self) -> bool {
        self.subsystem_reset
    }

    /// Treats the controller as supporting NVM Subsystem Reset whatever
    /// CAP.NSSRS says: only for fault injection, so a test can drive the
    /// whole subsystem reset path on a controller without it (which
    /// ignores the NSSR write; the reset that follows still happens).
    pub(crate) fn assume_subsystem_reset(&mut self) {
        self.subsystem_reset = true;
    }

    /// Never writes CC.EN=0 from now on: only for fault injection, so a
    /// test can see that a controller which does not stop is kept from
    /// memory by bus mastering alone.
    pub(crate) fn ignore_disable(&mut self) {
        self.ignores_disable = true;
    }

    /// The mapped BAR, for fault injection's checks.
    #[cfg(rsnvme_fault_injection)]
    pub(crate) fn bar(&self) -> Arc<Bar> {
        self.bar.clone()
    }

    /// Starts an NVM Subsystem Reset (NVMe Base Specification 2.0,
    /// section 3.7.1): writes "NVMe" to NSSR, which resets every
    /// controller of the subsystem, this one included, so it stops all
    /// DMA and loses its queues and configuration. Then waits, within
    /// the ready timeout, for the device to answer again (CSTS not all
    /// ones: on PCIe the reset may take the link down for a while); the
    /// read also pushes the posted write out. The caller brings the
    /// controller back as after any reset. `ENOTTY` without CAP.NSSRS,
    /// with nothing written; `ENODEV` if the device does not come back.
    pub(crate) fn reset_subsystem(&self) -> Result {
        if !self.subsystem_reset {
            return Err(ENOTTY);
        }
        self.write(Nssr::reset())?;
        let timeout_ms = self.ready_timeout_ms();
        let deadline = Deadline::after_ms(timeout_ms);
        loop {
            let csts: Csts = self.read()?;
            if !csts.is_all_ones() {
                return Ok(());
            }
            if deadline.expired() {
                dev_err!(
                    &self.pdev,
                    "controller did not answer within {timeout_ms} ms of the NVM subsystem reset\n"
                );
                return Err(ENODEV);
            }
            msleep(1);
        }
    }

    /// Clears CSTS.NSSRO if it is set (write 1 to clear), so that a later
    /// subsystem reset shows, and says so; nothing on a controller without
    /// NVM Subsystem Reset, where the bit is reserved.
    fn clear_subsystem_reset_occurred(&self) -> Result {
        if !self.subsystem_reset {
            return Ok(());
        }
        let csts = self.csts()?;
        if csts.subsystem_reset_occurred() {
            dev_info!(
                &self.pdev,
                "an NVM subsystem reset occurred (CSTS.NSSRO), clearing it\n"
            );
            self.write(Csts::clear_subsystem_reset_occurred())?;
        }
        Ok(())
    }

    /// Reads register `R`.
    pub(crate) fn read<R: Register>(&self) -> Result<R>
    where
        R::Raw: Access,
    {
        R::Raw::read(&self.bar, R::OFFSET).map(R::from_raw)
    }

    /// Writes `value` to register `R`. Like `writel`, this is ordered after
    /// the CPU's earlier writes to DMA-coherent memory.
    pub(crate) fn write<R: Register>(&self, value: R) -> Result
    where
        R::Raw: Access,
    {
        value.raw().write(&self.bar, R::OFFSET)
    }

    /// The capabilities read when the registers were taken over.
    pub(crate) fn cap(&self) -> Cap {
        self.cap
    }

    /// The device the registers belong to.
    pub(crate) fn pdev(&self) -> &PciDevice {
        &self.pdev
    }

    /// Length of BAR0 in bytes.
    pub(crate) fn bar_len(&self) -> usize {
        self.bar.len()
    }

    /// The submission queue tail (`completion == false`) or completion
    /// queue head doorbell of queue `qid`, CAP.DSTRD apart.
    pub(crate) fn doorbell(&self, qid: u16, completion: bool) -> Result<Doorbell> {
        let offset = doorbell_offset(qid, completion, self.cap.doorbell_stride_shift());
        self.bar.doorbell(offset.ok_or(EINVAL)?)
    }

    /// Reads CSTS; `ENODEV` if the device no longer answers.
    pub(crate) fn csts(&self) -> Result<Csts> {
        let csts: Csts = self.read()?;
        if csts.is_all_ones() {
            dev_err!(&self.pdev, "controller is gone (CSTS reads all ones)\n");
            return Err(ENODEV);
        }
        Ok(csts)
    }

    /// Polls CSTS until `done` holds, for at most `timeout_ms`.
    fn wait_csts(&self, timeout_ms: u32, what: &str, done: impl Fn(Csts) -> bool) -> Result {
        let deadline = Deadline::after_ms(timeout_ms);
        loop {
            let csts = self.csts()?;
            if done(csts) {
                return Ok(());
            }
            if deadline.expired() {
                dev_err!(
                    &self.pdev,
                    "timed out after {timeout_ms} ms waiting for {what} ({csts})\n"
                );
                return Err(etimedout());
            }
            msleep(1);
        }
    }

    /// The bound for CSTS.RDY transitions: CAP.TO, or CRTO.CRWMT when
    /// the controller has it and it is longer.
    pub(crate) fn ready_timeout_ms(&self) -> u32 {
        self.ready_timeout_ms
    }

    /// Resets the controller: clears CC.EN and waits for CSTS.RDY to clear,
    /// within CAP.TO. Afterwards the controller does no DMA.
    pub(crate) fn disable(&self) -> Result {
        let cc: Cc = self.read()?;
        if cc.enabled() && self.ignores_disable {
            dev_warn!(&self.pdev, "CC.EN=0 not written (injected)\n");
        } else if cc.enabled() {
            self.write(cc.disabled())?;
        }
        self.wait_csts(self.ready_timeout_ms(), "CSTS.RDY to clear", |c| !c.ready())
    }

    /// Enables the controller with `cc` and waits, within CAP.TO, for
    /// CSTS.RDY; a fatal status (CSTS.CFS) fails at once. The
    /// configuration is written first with EN clear, then EN is set in a
    /// write of its own, as some controllers need. CSTS.NSSRO is cleared
    /// first, as Linux's C driver does before it enables a controller.
    pub(crate) fn enable(&self, cc: Cc) -> Result {
        self.clear_subsystem_reset_occurred()?;
        self.write(cc.disabled())?;
        self.write(cc)?;
        self.wait_csts(self.ready_timeout_ms(), "CSTS.RDY", |c| {
            c.ready() || c.fatal()
        })?;
        let csts = self.csts()?;
        if csts.fatal() {
            dev_err!(&self.pdev, "controller failed while enabling ({csts})\n");
            return Err(EIO);
        }
        Ok(())
    }

    /// Tells the controller the host is shutting it down (CC.SHN normal)
    /// and waits, at most `timeout_ms`, for CSTS.SHST to report completion.
    pub(crate) fn shutdown(&self, timeout_ms: u32) -> Result {
        let cc: Cc = self.read()?;
        if !cc.enabled() {
            return Ok(());
        }
        self.write(cc.with_normal_shutdown())?;
        self.wait_csts(timeout_ms, "shutdown to complete", |c| {
            c.shutdown_status() == ShutdownStatus::Complete
        })
    }
}
