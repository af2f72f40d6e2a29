// SPDX-License-Identifier: GPL-2.0

//! Controller state changes through its registers: reset, enable and
//! shutdown (NVMe Base Specification 2.0, section 3.5).

#![deny(unsafe_code)]

use crate::spec::regs::{offset, Cap, Cc, Csts, ShutdownStatus};
use crate::sys::mmio::Bar;
use crate::sys::pci::PciDevice;
use crate::sys::print::dev_err;
use crate::sys::time::{etimedout, msleep, Deadline};
use kernel::error::{
    code::{EIO, ENODEV},
    Result,
};
use kernel::sync::Arc;

/// How long a normal shutdown may take before it is abandoned. Linux's C
/// driver waits 5 s by default (its `shutdown_timeout`).
const SHUTDOWN_TIMEOUT_MS: u32 = 5000;

/// Floor for CAP.TO waits, for controllers that report TO = 0.
const MIN_READY_TIMEOUT_MS: u32 = 500;

/// The controller's register block and its capabilities.
pub(crate) struct Registers {
    pub(crate) pdev: PciDevice,
    pub(crate) bar: Arc<Bar>,
    pub(crate) cap: Cap,
}

impl Registers {
    /// Reads CSTS; `ENODEV` if the device no longer answers.
    pub(crate) fn csts(&self) -> Result<Csts> {
        let csts = Csts(self.bar.read32(offset::CSTS)?);
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

    /// The bound for CSTS.RDY transitions: CAP.TO.
    fn ready_timeout_ms(&self) -> u32 {
        self.cap.timeout_ms().max(MIN_READY_TIMEOUT_MS)
    }

    /// Resets the controller: clears CC.EN and waits for CSTS.RDY to clear,
    /// within CAP.TO. Afterwards the controller does no DMA.
    pub(crate) fn disable(&self) -> Result {
        let cc = Cc(self.bar.read32(offset::CC)?);
        if cc.enabled() {
            self.bar.write32(offset::CC, cc.disabled().0)?;
        }
        self.wait_csts(self.ready_timeout_ms(), "CSTS.RDY to clear", |c| !c.ready())
    }

    /// Enables the controller with `cc` and waits, within CAP.TO, for
    /// CSTS.RDY; a fatal status (CSTS.CFS) fails at once.
    pub(crate) fn enable(&self, cc: Cc) -> Result {
        self.bar.write32(offset::CC, cc.0)?;
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
    /// and waits for CSTS.SHST to report completion.
    pub(crate) fn shutdown(&self) -> Result {
        let cc = Cc(self.bar.read32(offset::CC)?);
        if !cc.enabled() {
            return Ok(());
        }
        self.bar.write32(offset::CC, cc.with_normal_shutdown().0)?;
        self.wait_csts(SHUTDOWN_TIMEOUT_MS, "shutdown to complete", |c| {
            c.shutdown_status() == ShutdownStatus::Complete
        })
    }
}
