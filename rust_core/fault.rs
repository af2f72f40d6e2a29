// SPDX-License-Identifier: GPL-2.0

//! Fault injection for tests: failures that bring-up and the I/O path
//! simulate on request, chosen with the `fault` module parameter.
//!
//! Only a module built with `--cfg rsnvme_fault_injection` (`make
//! RSNVME_FAULT_INJECTION=y`, which `make test` does) has the parameter.
//! In any other build [`Faults::inject`] is constant `false` and a
//! [`Switch`] holds nothing, so production code pays nothing for the
//! checks: the compiler removes them.

#![deny(unsafe_code)]

#[cfg(rsnvme_fault_injection)]
use crate::sys::param;
use crate::sys::pci::PciDevice;
#[cfg(rsnvme_fault_injection)]
use crate::sys::print::dev_warn;
#[cfg(rsnvme_fault_injection)]
use core::sync::atomic::{AtomicBool, Ordering};

/// A failure a test can ask for, by its `fault=` number.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Fault {
    /// 1: interrupt vector allocation is refused.
    IrqVectors = 1,
    /// 2: DMA memory for the admin queue cannot be had.
    DmaAlloc = 2,
    /// 3: the controller is never told to enable, so never becomes ready.
    NeverReady = 3,
    /// 4: Identify Controller is never announced to the device.
    IdentifyTimeout = 4,
    /// 5: the I/O queues announce no command to the device until the next
    /// controller reset, so the first I/O times out, is aborted, times
    /// out again and the reset follows.
    IoTimeout = 5,
    /// 6: every reset after probe leaves the controller disabled (it is
    /// never told to enable), so the controller is marked dead.
    ResetFails = 6,
    /// 7: probe fails once the I/O queues exist, before the disks are
    /// added, so everything it built is unwound.
    AfterIoQueues = 7,
    /// 8: the controller is taken to support NVM Subsystem Reset whatever
    /// CAP.NSSRS says, so `NVME_IOCTL_SUBSYS_RESET` writes NSSR (which a
    /// controller without it ignores) and resets the controller.
    SubsystemReset = 8,
    /// 9: commands from user space (passthrough, admin and I/O) are
    /// started but never announced to the device, so each stalls until a
    /// reset takes it back or its timeout does.
    UserCommandLost = 9,
    /// 10: each reset waits 3 s with the queues held before it disables
    /// the controller, so that what happens during a reset can be seen.
    SlowReset = 10,
}

#[cfg(rsnvme_fault_injection)]
impl Fault {
    /// The fault numbered `n`, if there is one.
    pub(crate) fn from_number(n: u32) -> Option<Self> {
        [
            Self::IrqVectors,
            Self::DmaAlloc,
            Self::NeverReady,
            Self::IdentifyTimeout,
            Self::IoTimeout,
            Self::ResetFails,
            Self::AfterIoQueues,
            Self::SubsystemReset,
            Self::UserCommandLost,
            Self::SlowReset,
        ]
        .into_iter()
        .find(|f| *f as u32 == n)
    }
}

/// The fault chosen for one bring-up; asked once per step.
#[derive(Clone, Copy)]
pub(crate) struct Faults {
    #[cfg(rsnvme_fault_injection)]
    chosen: Option<Fault>,
}

impl Faults {
    /// Reads the `fault` module parameter for a bring-up of `pdev`.
    pub(crate) fn for_probe(pdev: &PciDevice) -> Self {
        #[cfg(rsnvme_fault_injection)]
        {
            let n = param::fault();
            let chosen = Fault::from_number(n);
            if n != 0 && chosen.is_none() {
                dev_warn!(pdev, "ignoring unknown fault={n}\n");
            }
            Self { chosen }
        }
        #[cfg(not(rsnvme_fault_injection))]
        {
            let _ = pdev;
            Self {}
        }
    }

    /// Whether `fault` is to be injected here.
    #[inline(always)]
    pub(crate) fn inject(&self, fault: Fault) -> bool {
        #[cfg(rsnvme_fault_injection)]
        return self.chosen == Some(fault);
        #[cfg(not(rsnvme_fault_injection))]
        {
            let _ = fault;
            false
        }
    }
}

/// A flag a fault turns on for a while (a queue whose doorbell goes
/// silent until the next reset); empty and always off without fault injection.
pub(crate) struct Switch {
    #[cfg(rsnvme_fault_injection)]
    on: AtomicBool,
}

impl Switch {
    /// A switch that is off.
    pub(crate) const fn new() -> Self {
        Self {
            #[cfg(rsnvme_fault_injection)]
            on: AtomicBool::new(false),
        }
    }

    /// Turns the switch on.
    pub(crate) fn set(&self) {
        #[cfg(rsnvme_fault_injection)]
        self.on.store(true, Ordering::Relaxed);
    }

    /// Turns the switch off.
    pub(crate) fn clear(&self) {
        #[cfg(rsnvme_fault_injection)]
        self.on.store(false, Ordering::Relaxed);
    }

    /// Whether the switch is on; constant `false` without fault injection.
    #[inline(always)]
    pub(crate) fn is_on(&self) -> bool {
        #[cfg(rsnvme_fault_injection)]
        return self.on.load(Ordering::Relaxed);
        #[cfg(not(rsnvme_fault_injection))]
        false
    }
}
