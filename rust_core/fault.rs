// SPDX-License-Identifier: GPL-2.0

//! Fault injection for tests: failures that bring-up and the I/O path
//! simulate on request, chosen with the `fault` module parameter: a fault
//! number in its low byte ([`Fault`]), and above it flags ([`Flag`]) that
//! combine with any number (`fault=0x103`: NeverReady on a controller
//! that ignores CC.EN=0).
//!
//! Only a module built with `--cfg rsnvme_fault_injection` (`make
//! RSNVME_FAULT_INJECTION=y`, which `make test` does) has the parameter.
//! In any other build [`Faults::inject`] is constant `false` and a
//! [`Switch`] holds nothing, so production code pays nothing for the
//! checks: the compiler removes them.

#![deny(unsafe_code)]

#[cfg(rsnvme_fault_injection)]
use crate::registers::Access;
use crate::registers::Registers;
#[cfg(rsnvme_fault_injection)]
use crate::spec::regs::{Cc, Register};
#[cfg(rsnvme_fault_injection)]
use crate::sys::mmio::Bar;
#[cfg(rsnvme_fault_injection)]
use crate::sys::param;
use crate::sys::pci::PciDevice;
#[cfg(rsnvme_fault_injection)]
use crate::sys::print::{dev_err, dev_warn};
#[cfg(rsnvme_fault_injection)]
use core::sync::atomic::{AtomicBool, Ordering};
#[cfg(rsnvme_fault_injection)]
use kernel::sync::Arc;

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
    /// 11: probe fails in its I/O queue step once the queues exist on the
    /// controller, before their tag set does (as when that allocation
    /// fails), so the step unwinds queues the controller was given.
    IoQueueSetup = 11,
}

/// A behaviour a test can add to any fault, by its bit in `fault=`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) enum Flag {
    /// 0x100: the controller ignores CC.EN=0 (the driver's write of it is
    /// skipped), so a disable times out and only bus mastering off stops
    /// its DMA.
    IgnoresDisable = 0x100,
    /// 0x200: Abort completions are noted but their Abort is kept as
    /// outstanding until the next reset, as if the controller held it.
    AbortsHeld = 0x200,
    /// 0x400: a rescan, once it has identified the namespaces, lets go of
    /// the list of disks and waits (at most 30 s) for the controller to
    /// leave `live` (a reset or suspend to begin) before it changes any
    /// disk. Read when a rescan runs ([`rescan_waits`]), so a test can
    /// turn it on and off while the driver is loaded.
    RescanWaits = 0x400,
}

/// The bits of `fault=` that hold the fault number.
#[cfg(rsnvme_fault_injection)]
const NUMBER_MASK: u32 = 0xff;

/// Every flag's bit.
#[cfg(rsnvme_fault_injection)]
const FLAGS_MASK: u32 =
    Flag::IgnoresDisable as u32 | Flag::AbortsHeld as u32 | Flag::RescanWaits as u32;

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
            Self::IoQueueSetup,
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
    /// The [`Flag`] bits chosen.
    #[cfg(rsnvme_fault_injection)]
    flags: u32,
}

impl Faults {
    /// Reads the `fault` module parameter for a bring-up of `pdev`.
    pub(crate) fn for_probe(pdev: &PciDevice) -> Self {
        #[cfg(rsnvme_fault_injection)]
        {
            let n = param::fault();
            let chosen = Fault::from_number(n & NUMBER_MASK);
            if (n & NUMBER_MASK != 0 && chosen.is_none()) || n & !(NUMBER_MASK | FLAGS_MASK) != 0 {
                dev_warn!(pdev, "ignoring unknown fault={n:#x}\n");
            }
            Self {
                chosen,
                flags: n & FLAGS_MASK,
            }
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

    /// Whether `flag` was chosen.
    #[inline(always)]
    pub(crate) fn has(&self, flag: Flag) -> bool {
        #[cfg(rsnvme_fault_injection)]
        return self.flags & flag as u32 != 0;
        #[cfg(not(rsnvme_fault_injection))]
        {
            let _ = flag;
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

/// Whether a rescan is to wait for a reset or a suspend
/// ([`Flag::RescanWaits`] in the `fault` parameter as it is now).
pub(crate) fn rescan_waits() -> bool {
    #[cfg(rsnvme_fault_injection)]
    return param::fault() & Flag::RescanWaits as u32 != 0;
    #[cfg(not(rsnvme_fault_injection))]
    {
        let _ = Flag::RescanWaits;
        false
    }
}

/// Checks, when dropped, that the controller can no longer write to the
/// queue it sits in front of (its first field, so it drops before the
/// queue's memory): it must be disabled (CC.EN clear) or have bus
/// mastering off; otherwise it logs that the memory was freed while the
/// controller could still write it. Empty without fault injection.
pub(crate) struct FreeCheck {
    #[cfg(rsnvme_fault_injection)]
    queue: Option<(PciDevice, Arc<Bar>, u16)>,
}

impl FreeCheck {
    /// A check for queue `qid` of the controller at `regs`.
    pub(crate) fn new(regs: &Registers, qid: u16) -> Self {
        #[cfg(rsnvme_fault_injection)]
        return Self {
            queue: Some((regs.pdev().clone(), regs.bar(), qid)),
        };
        #[cfg(not(rsnvme_fault_injection))]
        {
            let _ = (regs, qid);
            Self {}
        }
    }
}

#[cfg(rsnvme_fault_injection)]
impl Drop for FreeCheck {
    fn drop(&mut self) {
        let Some((pdev, bar, qid)) = self.queue.take() else {
            return;
        };
        // A device that no longer answers (all ones) does no DMA.
        let enabled = match u32::read(&bar, Cc::OFFSET) {
            Ok(raw) if raw != u32::MAX => Cc::from_raw(raw).enabled(),
            _ => false,
        };
        if enabled && pdev.bus_master() == Some(true) {
            dev_err!(
                &pdev,
                "queue {qid} freed while the controller may still write it (CC.EN set, bus mastering on)\n"
            );
        }
    }
}
