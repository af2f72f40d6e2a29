// SPDX-License-Identifier: GPL-2.0

//! One NVMe controller bound to the driver: bring-up in named steps (map,
//! reset, admin queue, interrupts, enable, identify, namespaces, queue
//! count, I/O queues, disks), each undone by the value it returns, and
//! teardown in the reverse order.

#![deny(unsafe_code)]

mod bringup;

pub(crate) use bringup::Tables;
use bringup::{
    add_disks, admin_interrupt, admin_queue, enable, management, map, poll_queues_wanted, reset,
    spread_interrupts, Bringup, Identity, Interrupts, Live, Mapped,
};

use crate::admin::AdminQueue;
use crate::ctrl::events::EventHandling;
use crate::ctrl::CacheFlush;
use crate::fault::{Fault, Faults};
use crate::mgmt::{CharDevice, ControllerNumber};
use crate::registers::shutdown_timeout_ms;
use crate::scan::Namespaces;
use crate::spec::event::event_config;
use crate::spec::regs::Cc;
use crate::start::Steps;
use crate::state::StateMachine;
use crate::sys::irq::IrqKind;
use crate::sys::pci::PciDevice;
use crate::sys::print::{dev_err, dev_info};
use crate::sys::sysfs::Attributes;
use core::fmt;
use kernel::alloc::flags::GFP_KERNEL;
use kernel::error::{
    code::{EINVAL, ENODEV, ENOMEM},
    Result,
};
use kernel::sync::Arc;

/// The sysfs attributes of a bound controller, in the order
/// [`Controller::show`] takes their index.
pub(crate) const ATTRIBUTE_NAMES: [&core::ffi::CStr; 5] = [
    c"model",
    c"serial",
    c"firmware_rev",
    c"queue_count",
    c"reset_controller",
];

/// One NVMe controller bound to this driver.
///
/// Fields drop in declaration order, which undoes bring-up in reverse:
/// stop handling asynchronous events (waiting for a rescan they started),
/// remove the character device (waiting for a command from user space),
/// remove the disks (waiting for their I/O), shut the controller down (so
/// it stops all DMA) and free the I/O queues, then the interrupts and the
/// admin queue, then unmap and release BAR0 and disable the device; the
/// controller number is free again once nothing is named after it.
pub(crate) struct Controller {
    events: Option<EventHandling>,
    chardev: Option<CharDevice>,
    namespaces: Option<Arc<Namespaces>>,
    live: Live,
    irqs: Interrupts,
    admin: Arc<AdminQueue>,
    identity: Identity,
    /// I/O queue pairs the controller granted.
    io_granted: u32,
    mapped: Mapped,
    number: ControllerNumber,
    pdev: PciDevice,
}

impl Controller {
    /// Takes over the controller at `pdev` and brings it up: map, reset,
    /// admin queue, interrupts, enable, identify, namespaces, queue count,
    /// I/O queues, disks. On error every step taken is undone, in reverse.
    /// Its devices point to `tables`.
    pub(crate) fn probe(pdev: PciDevice, tables: &Tables) -> Result<Self> {
        let faults = Faults::for_probe(&pdev);
        let number = ControllerNumber::take().inspect_err(|_| {
            dev_err!(&pdev, "no free controller number\n");
        })?;
        let mapped = map(&pdev, faults)?;
        let regs = &mapped.regs;
        reset(regs)?;
        let state = Arc::new(StateMachine::new(), GFP_KERNEL)?;
        let admin = admin_queue(&mapped, &state, faults)?;
        let irqs = admin_interrupt(&pdev, &admin, faults)?;
        let mut enabled = enable(&mapped, &admin, faults)?;

        let mut bringup = Bringup::new(regs, &admin, &state)?;
        let id = bringup.controller(faults)?;
        admin.set_abort_limit(id.abort_limit());
        enabled.shutdown_ms = shutdown_timeout_ms(id.shutdown_latency_us());
        let nvm = bringup.nvm_limits()?;
        let namespaces = bringup.namespaces(&id)?;
        let identity = Identity {
            id,
            nvm,
            namespaces,
        };
        let io_granted = bringup.queue_count();
        // Polled queues only next to at least one with interrupts.
        let polled = poll_queues_wanted().min(io_granted.saturating_sub(1));

        let (irqs, count) = spread_interrupts(&pdev, &admin, irqs, io_granted - polled)?;
        let mut live = Live {
            enabled,
            io: None,
            shadow: None,
        };
        let mut namespaces = None;
        let mut chardev = None;
        let mut events = None;
        if count > 0 {
            live.shadow = bringup.shadow_doorbells(&identity.id, &mapped)?;
            let shadow = live.shadow.clone();
            let io = live
                .io
                .insert(bringup.io_queues(&mapped, &irqs, count, polled, shadow, faults)?);
            if faults.inject(Fault::AfterIoQueues) {
                dev_err!(
                    &pdev,
                    "failing probe with the I/O queues created: ENOMEM (injected)\n"
                );
                return Err(ENOMEM);
            }
            // Live from here on: timeouts of the disks' first reads abort
            // and reset as they would later.
            io.set.data().start()?;
            let mgmt = chardev.insert(management(&pdev, &identity, &mapped, &admin, io)?);
            let added = add_disks(&identity, io, &mapped, &admin, mgmt, number.get(), tables)?;
            let config = event_config(identity.id.optional_async_events());
            events = Some(EventHandling::start(&io.set, added.clone(), config));
            namespaces = Some(added);
        }
        drop(bringup);

        let mut ctrl = Self {
            events,
            chardev,
            namespaces,
            live,
            irqs,
            admin,
            identity,
            io_granted,
            mapped,
            number,
            pdev,
        };
        ctrl.report();
        let number = ctrl.number.get();
        if let Some(chardev) = &mut ctrl.chardev {
            // Without it (reported) the controller still serves its disks.
            if let Err(e) = chardev.register(number, tables.register_char_device) {
                dev_err!(&ctrl.pdev, "cannot register /dev/rsnvme{number}: {e:?}\n");
            }
        }
        Ok(ctrl)
    }

    /// I/O queue pairs in use.
    fn io_queues(&self) -> u32 {
        self.live
            .io
            .as_ref()
            .map_or(0, |io| io.set.data().queues().len() as u32)
    }

    /// Polled I/O queue pairs in use (no interrupt).
    fn polled_queues(&self) -> usize {
        self.live.io.as_ref().map_or(0, |io| {
            io.set
                .data()
                .queues()
                .iter()
                .filter(|q| q.vector().is_none())
                .count()
        })
    }

    /// Logs what the controller is and what it offers.
    fn report(&self) {
        let id = &self.identity.id;
        let kind = match self.irqs.vectors.kind() {
            IrqKind::MsiX => "MSI-X",
            IrqKind::Msi => "MSI",
            IrqKind::Intx => "INTx",
        };
        let mdts = match id.max_transfer_shift(self.mapped.regs.cap().mps_min_shift()) {
            Some(shift) if shift < 64 => 1u64 << shift,
            _ => 0,
        };
        dev_info!(
            &self.pdev,
            "model \"{}\" serial \"{}\" firmware \"{}\": {} I/O queue pairs granted, \
             {} used, {} namespaces, max transfer {} bytes (0: no limit), {} x{}{}{}\n",
            id.model(),
            id.serial(),
            id.firmware(),
            self.io_granted,
            self.io_queues(),
            self.identity.namespaces.len(),
            mdts,
            kind,
            self.irqs.vectors.count(),
            PolledSuffix(self.polled_queues()),
            if self.live.shadow.is_some() {
                ", shadow doorbells"
            } else {
                ""
            }
        );
        for ns in self.identity.namespaces.iter() {
            let bytes = ns.blocks.checked_shl(ns.lba_shift).unwrap_or(u64::MAX);
            dev_info!(
                &self.pdev,
                "namespace {}: {} blocks of {} bytes ({} MiB)\n",
                ns.nsid,
                ns.blocks,
                1u32 << ns.lba_shift,
                bytes >> 20
            );
        }
    }

    /// Hands the controller back: removes its disks (waiting for their
    /// I/O), deletes the I/O queues; dropping the fields then shuts the
    /// controller down and releases everything.
    pub(crate) fn remove(mut self) {
        dev_info!(&self.pdev, "unbinding\n");
        // No rescan starts from here on.
        drop(self.events.take());
        // Then no command from user space starts; those running are taken
        // back below, and waited for before anything is freed.
        let users = self.chardev.as_ref().map(|c| c.handle().clone());
        drop(self.chardev.take());
        if let Some(io) = &self.live.io {
            let shared = io.set.data();
            // No reset from now on; one in progress finishes first.
            shared.begin_teardown(&io.set.borrowed());
            if !self.pdev.is_present() || self.mapped.regs.csts().is_err() {
                // The device is gone: nothing will complete by itself.
                shared.kill(&io.set.borrowed(), "controller is gone");
            }
        }
        if let Some(namespaces) = &self.namespaces {
            drop(namespaces.take_all());
        }
        if let Some(io) = &self.live.io {
            let shared = io.set.data();
            if !shared.dead() {
                // A failure was logged; the shutdown that follows deletes
                // the remaining queues anyway.
                shared.delete_queues();
            }
            let (resets, retried, failed) = shared.counts();
            dev_info!(
                &self.pdev,
                "recovery: {resets} resets, {retried} requests retried, {failed} requests failed\n"
            );
        }
        // Shut down now rather than when the fields drop, so that what is
        // still outstanding (a command from user space, which holds its
        // disk or the admin queue, so neither waited for it) is taken back
        // while the device is this driver's: its timeout would come after
        // the device is released.
        self.live.enabled.shut_down();
        match &self.live.io {
            Some(io) => io.set.data().end_teardown(&io.set.borrowed()),
            None => self.admin.end(),
        }
        if let Some(users) = users {
            users.wait_idle();
        }
    }
}

impl Controller {
    /// Quiets the controller for power-off or reboot
    /// (`pci_driver.shutdown`): see [`Controller::suspend`]. It stays shut
    /// down; I/O submitted afterwards waits.
    pub(crate) fn shutdown(&self) {
        self.quiet("shutdown");
    }

    /// Quiets the controller for system sleep: waits for its requests,
    /// flushes a volatile write cache, deletes the I/O queues and shuts
    /// it down (CC.SHN); I/O submitted meanwhile waits for the resume.
    pub(crate) fn suspend(&self) {
        self.quiet("suspend");
    }

    /// Brings the controller back after system sleep, with the steps of a
    /// reset, and lets the I/O that waited go out. `EIO` if it cannot be
    /// brought back: it is then dead and its I/O fails.
    pub(crate) fn resume(&self) -> Result {
        match &self.live.io {
            Some(io) => io.set.data().resume(&io.set.borrowed()),
            None => self.restart_admin(),
        }
    }

    /// Shuts the controller down for `what`, logging the outcome.
    fn quiet(&self, what: &str) {
        let shutdown_ms = self.live.enabled.shutdown_ms;
        let Some(io) = &self.live.io else {
            let regs = &self.mapped.regs;
            let outcome = regs.shutdown(shutdown_ms);
            if let Ok(csts) = regs.csts() {
                let done = if outcome.is_ok() {
                    "shut down"
                } else {
                    "not shut down"
                };
                dev_info!(&self.pdev, "{what}: controller {done} ({csts})\n");
            }
            // As with I/O queues: no DMA while asleep or into the next
            // kernel, and admin commands wait for the resume.
            let _ = self.pdev.stop_dma();
            self.admin.quiesce();
            return;
        };
        let ctrl = io.set.data();
        // The cache is flushed first, with flush requests on the disks'
        // queues (timed out, aborted and reset like any I/O), while the
        // controller is still live; the shutdown then waits for what is
        // left in flight and commits the rest (CC.SHN).
        let cache = if !self.identity.id.volatile_write_cache() {
            CacheFlush::NoCache
        } else if !ctrl.serves_requests() {
            // Suspended (a flush would wait for the resume) or dead.
            CacheFlush::Failed
        } else {
            match self.namespaces.as_ref().map(|n| n.flush()) {
                Some(Err(_)) => CacheFlush::Failed,
                _ => CacheFlush::Done,
            }
        };
        ctrl.suspend(&io.set.borrowed(), cache, shutdown_ms, what);
    }

    /// Resume of a controller without I/O queues: reset it and enable it
    /// again with its admin queue.
    fn restart_admin(&self) -> Result {
        let result = self.try_restart_admin();
        if result.is_err() {
            // Commands that waited fail rather than wait for ever.
            self.admin.release();
        }
        result
    }

    /// [`Controller::restart_admin`], which releases the admin queue if
    /// this fails.
    fn try_restart_admin(&self) -> Result {
        let regs = &self.mapped.regs;
        let cc = Cc::for_enable(self.mapped.page_shift).ok_or(EINVAL)?;
        regs.disable()?;
        let dma = self.pdev.stop_dma();
        self.admin.stop(&dma);
        self.admin.revive(regs, &dma)?;
        dma.resume();
        Steps {
            regs,
            admin: &self.admin,
        }
        .enable(cc)?;
        dev_info!(&self.pdev, "resume done: no I/O queues\n");
        Ok(())
    }
}

impl Attributes for Controller {
    fn show(&self, index: usize, out: &mut fmt::Formatter<'_>) -> fmt::Result {
        let id = &self.identity.id;
        match index {
            0 => out.write_str(id.model()),
            1 => out.write_str(id.serial()),
            2 => out.write_str(id.firmware()),
            3 => write!(out, "{}", self.io_granted),
            _ => Ok(()),
        }
    }

    fn store(&self, index: usize, _input: &[u8]) -> Result {
        match (index, &self.live.io) {
            // reset_controller: any write resets, and returns when done.
            (4, Some(io)) => io
                .set
                .data()
                .reset(&io.set.borrowed(), "requested through sysfs"),
            _ => Err(ENODEV),
        }
    }
}

/// ", N polled" in the summary line when polled queues are in use.
struct PolledSuffix(usize);

impl core::fmt::Display for PolledSuffix {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self.0 {
            0 => Ok(()),
            n => write!(f, ", {n} polled"),
        }
    }
}
