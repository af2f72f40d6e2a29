// SPDX-License-Identifier: GPL-2.0

//! One NVMe controller bound to the driver: bring-up in named steps (map,
//! reset, admin queue, interrupts, enable, identify, namespaces, queue
//! count, I/O queues, disks), each undone by the value it returns, and
//! teardown in the reverse order.

#![deny(unsafe_code)]

use crate::admin::AdminQueue;
use crate::fault::{Fault, Faults};
use crate::io::{
    io_timeout_ms, EventHandling, IoShared, Limits, Namespace, QueueIrq, Restart, MAX_IO_DEPTH,
};
use crate::mgmt::{CharDevice, ControllerNumber, Facts, Live as MgmtLive};
use crate::queue::{QueuePair, ShadowDoorbells};
use crate::registers::{shutdown_timeout_ms, Registers, SHUTDOWN_TIMEOUT_MS};
use crate::scan::{DiskParams, Found, Identifier, Namespaces, MAX_NAMESPACES};
use crate::spec::command::{Cns, Command};
use crate::spec::completion::Completion;
use crate::spec::event::event_config;
use crate::spec::identify::{IdentifyController, IdentifyControllerNvm, IDENTIFY_DATA_SIZE};
use crate::spec::limits;
use crate::spec::prp;
use crate::spec::queue::io_queue_depth;
use crate::spec::regs::{Cap, Cc, Version, DOORBELLS};
use crate::sys::blk::{TagSet, MAX_SEGMENTS};
use crate::sys::cpu;
use crate::sys::dma::CoherentArray;
use crate::sys::irq::{IrqKind, IrqRegistration, IrqVectors};
use crate::sys::mmio::Bar;
use crate::sys::param;
use crate::sys::pci::{EnabledDevice, PciDevice, Region};
use crate::sys::print::{dev_err, dev_info, dev_warn};
use crate::sys::sysfs::Attributes;
use crate::sys::time::etimedout;
use core::fmt;
use kernel::alloc::{flags::GFP_KERNEL, KBox, KVec};
use kernel::error::{
    code::{EINVAL, ENODEV, ENOMEM, ENOSPC},
    Result,
};
use kernel::sync::Arc;

/// BAR0 must at least hold the registers and the first doorbell; the admin
/// queue doorbells' real extent is checked once CAP.DSTRD is known.
const MIN_BAR_LEN: usize = DOORBELLS + 4;

/// The kernel's page size as a shift (`PAGE_SHIFT`).
const PAGE_SHIFT: u32 = kernel::bindings::PAGE_SHIFT;

/// The sysfs attributes of a bound controller, in the order
/// [`Controller::show`] takes their index.
pub(crate) const ATTRIBUTE_NAMES: [&core::ffi::CStr; 5] = [
    c"model",
    c"serial",
    c"firmware_rev",
    c"queue_count",
    c"reset_controller",
];

/// BAR0 mapped and claimed, with the controller's registers.
///
/// Fields drop in order: unmap BAR0, release it, disable the device.
struct Mapped {
    regs: Arc<Registers>,
    /// `CC.MPS` as a shift: the memory page size used with the controller.
    page_shift: u32,
    _region: Region,
    _enabled: EnabledDevice,
}

/// Interrupt vectors with the admin queue's handler on vector 0.
///
/// Fields drop in order: the handler is freed before its vector.
struct Interrupts {
    _admin: IrqRegistration<AdminQueue>,
    vectors: IrqVectors,
}

/// A controller that has been enabled; shut down when dropped, and bus
/// mastering turned off, which stops all of its DMA even if it ignored
/// the shutdown.
struct Enabled {
    regs: Arc<Registers>,
    /// How long the shutdown may take: RTD3E once Identify told it.
    shutdown_ms: u32,
}

impl Drop for Enabled {
    fn drop(&mut self) {
        let pdev = self.regs.pdev();
        if let Err(e) = self.regs.shutdown(self.shutdown_ms) {
            dev_warn!(pdev, "shutdown failed ({e:?}), resetting\n");
            // Nothing more can be done if the reset fails too; it logged.
            let _ = self.regs.disable();
        }
        if let Ok(csts) = self.regs.csts() {
            dev_info!(pdev, "controller shut down, {csts}\n");
        }
        // Off for good: the token is dropped without resuming.
        let _ = pdev.stop_dma();
    }
}

/// What Identify told about the controller and its usable namespaces.
struct Identity {
    id: KBox<IdentifyController>,
    /// The NVM Command Set limits (all zero: none reported).
    nvm: IdentifyControllerNvm,
    namespaces: KVec<Namespace>,
}

/// The enabled controller and the I/O queues it serves.
///
/// Fields drop in order: the controller is shut down (so it no longer
/// writes to any queue) before the I/O queues' memory is freed, on every
/// path: a probe that fails after the queues exist, and remove.
struct Live {
    enabled: Enabled,
    io: Option<IoQueues>,
    /// The shadow doorbell buffers the controller was given, if any.
    shadow: Option<Arc<ShadowDoorbells>>,
}

/// The I/O queue pairs behind a blk-mq tag set.
///
/// Fields drop in order: the handlers are freed before the tag set (and
/// the queue memory it holds).
struct IoQueues {
    _irqs: KVec<IrqRegistration<QueueIrq>>,
    set: Arc<TagSet<IoShared>>,
}

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

/// Step "map": enables the PCI device and bus mastering, sets the DMA
/// mask, claims and maps BAR0, and checks the controller's capabilities.
fn map(pdev: &PciDevice, faults: Faults) -> Result<Mapped> {
    let enabled = pdev.enable_mem().inspect_err(|e| {
        dev_err!(pdev, "cannot enable PCI device: {e:?}\n");
    })?;
    enabled.set_master();
    pdev.set_dma_mask(64).inspect_err(|e| {
        dev_err!(pdev, "no usable 64-bit DMA mask: {e:?}\n");
    })?;
    // Bounce buffers (swiotlb) must keep the offset in the page PRPs name.
    pdev.set_dma_min_align_mask((1u32 << PAGE_SHIFT) - 1)
        .inspect_err(|e| {
            dev_err!(pdev, "cannot set the DMA alignment mask: {e:?}\n");
        })?;
    let region = pdev.request_region(0, c"rsnvme").inspect_err(|e| {
        dev_err!(pdev, "cannot claim BAR0: {e:?}\n");
    })?;
    let bar = Bar::map(pdev, 0, MIN_BAR_LEN).inspect_err(|e| {
        dev_err!(
            pdev,
            "cannot map BAR0 ({} bytes, need {MIN_BAR_LEN}): {e:?}\n",
            pdev.resource_len(0)
        );
    })?;
    let mut regs = Registers::new(pdev, bar)?;
    let page_shift = check_capabilities(&regs)?;
    if faults.inject(Fault::SubsystemReset) && !regs.subsystem_reset_supported() {
        dev_warn!(
            pdev,
            "taking CAP.NSSRS as set: NVM subsystem reset (injected)\n"
        );
        regs.assume_subsystem_reset();
    }
    Ok(Mapped {
        regs: Arc::new(regs, GFP_KERNEL)?,
        page_shift,
        _region: region,
        _enabled: enabled,
    })
}

/// Logs CAP, VS and CSTS, checks the driver can work with the controller
/// and returns the memory page shift to use.
fn check_capabilities(regs: &Registers) -> Result<u32> {
    let pdev = regs.pdev();
    let cap = regs.cap();
    let vs: Version = regs.read()?;
    let csts = regs.csts()?;
    dev_info!(
        pdev,
        "NVMe controller {:04x}:{:04x}, BAR0 {} bytes\n",
        pdev.vendor_id(),
        pdev.device_id(),
        regs.bar_len()
    );
    dev_info!(pdev, "{cap}\n");
    dev_info!(pdev, "{vs}\n");
    dev_info!(pdev, "{csts}\n");
    if !cap.supports_nvm() {
        dev_err!(pdev, "controller lacks the NVM command set\n");
        return Err(ENODEV);
    }
    let Some(page_shift) = cap.page_shift_for(PAGE_SHIFT) else {
        dev_err!(
            pdev,
            "minimum memory page size {} exceeds the host page size {}\n",
            1u64 << cap.mps_min_shift(),
            1u64 << PAGE_SHIFT
        );
        return Err(ENODEV);
    };
    if regs.bar_len() < cap.admin_doorbells_end() {
        dev_err!(
            pdev,
            "BAR0 is {} bytes, too short for doorbells {} bytes apart\n",
            regs.bar_len(),
            cap.doorbell_stride()
        );
        return Err(ENODEV);
    }
    if csts.fatal() {
        dev_warn!(pdev, "controller reports a fatal status (CSTS.CFS)\n");
    }
    Ok(page_shift)
}

/// Step "reset": disables the controller, so it does no DMA and takes a
/// new admin queue.
fn reset(regs: &Registers) -> Result {
    regs.disable().inspect_err(|_| {
        dev_err!(regs.pdev(), "controller did not reset\n");
    })
}

/// Step "admin queue": allocates the admin queue pair and programs its
/// addresses into the disabled controller.
fn admin_queue(regs: &Registers, faults: Faults) -> Result<Arc<AdminQueue>> {
    let pdev = regs.pdev();
    if faults.inject(Fault::DmaAlloc) {
        dev_err!(pdev, "cannot allocate the admin queue: ENOMEM (injected)\n");
        return Err(ENOMEM);
    }
    let admin = AdminQueue::new(regs).inspect_err(|e| {
        dev_err!(pdev, "cannot allocate the admin queue: {e:?}\n");
    })?;
    admin.program(regs)?;
    Ok(admin)
}

/// Step "interrupts": one vector, for the admin queue, until the number of
/// I/O queues is known.
fn admin_interrupt(
    pdev: &PciDevice,
    admin: &Arc<AdminQueue>,
    faults: Faults,
) -> Result<Interrupts> {
    if faults.inject(Fault::IrqVectors) {
        dev_err!(
            pdev,
            "cannot allocate interrupt vectors: ENOSPC (injected)\n"
        );
        return Err(ENOSPC);
    }
    let vectors = IrqVectors::alloc(pdev, 1, 1, None).inspect_err(|e| {
        dev_err!(pdev, "cannot allocate interrupt vectors: {e:?}\n");
    })?;
    let admin =
        IrqRegistration::request(&vectors, 0, admin.clone(), c"rsnvme").inspect_err(|e| {
            dev_err!(pdev, "cannot register the admin interrupt: {e:?}\n");
        })?;
    Ok(Interrupts {
        _admin: admin,
        vectors,
    })
}

/// Step "enable": enables the controller and waits for it to be ready.
fn enable(mapped: &Mapped, faults: Faults) -> Result<Enabled> {
    let regs = &mapped.regs;
    let cc = Cc::for_enable(mapped.page_shift).ok_or(EINVAL)?;
    // Injected: write the configuration without EN, so RDY never comes.
    let cc = if faults.inject(Fault::NeverReady) {
        cc.disabled()
    } else {
        cc
    };
    regs.enable(cc).inspect_err(|_| {
        dev_err!(regs.pdev(), "controller did not become ready\n");
        // It may still come up later and use the admin queue, which is
        // about to be freed: reset it and stop its DMA for good.
        let _ = regs.disable();
        let _ = regs.pdev().stop_dma();
    })?;
    Ok(Enabled {
        regs: regs.clone(),
        shutdown_ms: SHUTDOWN_TIMEOUT_MS,
    })
}

/// Admin commands during bring-up, with the identify buffer they share.
struct Bringup<'a> {
    regs: &'a Registers,
    admin: &'a Arc<AdminQueue>,
    buf: CoherentArray<u8>,
    page: KBox<[u8; IDENTIFY_DATA_SIZE]>,
}

impl<'a> Bringup<'a> {
    fn new(regs: &'a Registers, admin: &'a Arc<AdminQueue>) -> Result<Self> {
        Ok(Self {
            regs,
            admin,
            buf: CoherentArray::zeroed(regs.pdev(), IDENTIFY_DATA_SIZE)?,
            page: KBox::new([0; IDENTIFY_DATA_SIZE], GFP_KERNEL)?,
        })
    }

    /// Runs one admin command, see [`AdminQueue::command`].
    fn command(&self, cmd: Command, what: &str) -> Result<Completion> {
        self.admin.command(self.regs, cmd, what)
    }

    /// Runs Identify with `cns` and `nsid` and copies the result to `page`.
    fn identify(&mut self, cns: Cns, nsid: u32, what: &str) -> Result {
        let cmd = Command::identify(cns, nsid, self.buf.dma_handle());
        self.command(cmd, what)?;
        self.buf.read_into(&mut self.page[..])
    }

    /// Step "identify": Identify Controller, checked.
    fn controller(&mut self, faults: Faults) -> Result<KBox<IdentifyController>> {
        if faults.inject(Fault::IdentifyTimeout) {
            self.admin.pair().silence_doorbell();
        }
        self.identify(Cns::Controller, 0, "Identify Controller")?;
        let id = KBox::new(IdentifyController::parse(&self.page), GFP_KERNEL)?;
        id.validate().map_err(|e| {
            dev_err!(self.regs.pdev(), "unusable Identify Controller data: {e}\n");
            ENODEV
        })?;
        Ok(id)
    }

    /// Step "NVM limits": the NVM Command Set specific Identify Controller
    /// structure (discard and Write Zeroes limits). CNS 06h needs NVMe
    /// 1.2 (where CNS became a byte); a controller before it, or one that
    /// fails the command, is taken to report no limits.
    fn nvm_limits(&mut self) -> Result<IdentifyControllerNvm> {
        let vs: Version = self.regs.read()?;
        if !vs.is_at_least(1, 2) {
            return Ok(IdentifyControllerNvm::default());
        }
        match self.identify(Cns::NvmController, 0, "Identify Controller (NVM)") {
            Ok(()) => Ok(IdentifyControllerNvm::parse(&self.page)),
            // The controller was disabled: nothing more will work.
            Err(e) if e == etimedout() => Err(e),
            Err(_) => {
                dev_info!(
                    self.regs.pdev(),
                    "no NVM command set limits: discard and Write Zeroes unlimited\n"
                );
                Ok(IdentifyControllerNvm::default())
            }
        }
    }

    /// Step "namespaces": identifies every active namespace and keeps the
    /// usable ones.
    fn namespaces(&mut self, id: &IdentifyController) -> Result<KVec<Namespace>> {
        let pdev = self.regs.pdev();
        let mut identifier = Identifier::new(self.regs)?;
        let run = |cmd: Command, what: &str| -> Result {
            self.admin.command(self.regs, cmd, what).map(|_| ())
        };
        let nsids = match identifier.active_list(&run) {
            Ok(nsids) => nsids,
            Err(_) => {
                // Controllers before NVMe 1.1 lack the list: try 1..=NN.
                let nn = id.namespace_count().min(MAX_NAMESPACES as u32);
                dev_warn!(
                    pdev,
                    "no active namespace list; trying namespaces 1..={nn}\n"
                );
                let mut nsids = KVec::new();
                for nsid in 1..=nn {
                    nsids.push(nsid, GFP_KERNEL)?;
                }
                nsids
            }
        };
        let mut namespaces = KVec::new();
        for &nsid in nsids.iter() {
            if let Found::Usable(ns) = identifier.namespace(&run, nsid)? {
                namespaces.push(ns, GFP_KERNEL)?;
            }
        }
        if namespaces.is_empty() {
            dev_warn!(pdev, "no usable namespaces\n");
        }
        Ok(namespaces)
    }

    /// Step "queue count": asks for one I/O queue pair per online CPU and
    /// the polled ones of the `poll_queues` parameter (Set Features, Number
    /// of Queues) and returns how many were granted.
    fn queue_count(&self) -> u32 {
        let wanted = cpu::num_online().saturating_add(poll_queues_wanted());
        let wanted = u16::try_from(wanted).unwrap_or(u16::MAX);
        match self.admin.set_queue_count(self.regs, wanted) {
            Ok(granted) => granted.min(wanted.into()),
            Err(_) => {
                dev_warn!(self.regs.pdev(), "continuing with the admin queue only\n");
                0
            }
        }
    }

    /// Step "shadow doorbells": if the controller supports Doorbell Buffer
    /// Config (OACS bit 8) and the `shadow_doorbells` parameter allows,
    /// allocates the buffers and hands them over. A controller that
    /// rejects them is used without.
    fn shadow_doorbells(
        &self,
        id: &IdentifyController,
        mapped: &Mapped,
    ) -> Result<Option<Arc<ShadowDoorbells>>> {
        if !id.supports_doorbell_buffer_config() || param::shadow_doorbells() == 0 {
            return Ok(None);
        }
        let shadow = ShadowDoorbells::new(self.regs, 1usize << mapped.page_shift)?;
        match self.admin.set_shadow_doorbells(self.regs, &shadow) {
            Ok(()) => Ok(Some(shadow)),
            // It was disabled: nothing more will work.
            Err(e) if e == etimedout() => Err(e),
            Err(_) => {
                dev_warn!(self.regs.pdev(), "continuing without shadow doorbells\n");
                Ok(None)
            }
        }
    }

    /// Step "I/O queues": `count` queue pairs with an interrupt handler
    /// each and `polled` ones without, created on the controller and put
    /// behind a tag set; they use `shadow`'s doorbells if given.
    fn io_queues(
        &self,
        mapped: &Mapped,
        irqs: &Interrupts,
        count: u32,
        polled: u32,
        shadow: Option<Arc<ShadowDoorbells>>,
        faults: Faults,
    ) -> Result<IoQueues> {
        let regs = &mapped.regs;
        let depth = io_queue_depth(regs.cap().max_queue_entries(), MAX_IO_DEPTH);
        let spread = irqs.vectors.count() > 1;
        let mut queues = KVec::new();
        let with_irq = u16::try_from(count)?;
        for qid in 1..=u16::try_from(count.checked_add(polled).ok_or(EINVAL)?)? {
            // With a single vector the queue shares it with the admin queue.
            let vector = match qid {
                _ if qid > with_irq => None,
                _ if spread => Some(qid),
                _ => Some(0),
            };
            let queue = QueuePair::new(regs, qid, depth, vector, shadow.as_ref())?;
            self.admin.create_io_queue(regs, &queue)?;
            if faults.inject(Fault::IoTimeout) {
                queue.silence_doorbell();
            }
            queues.push(queue, GFP_KERNEL)?;
        }
        let page_size = 1u32 << mapped.page_shift;
        let restart = Restart {
            admin: self.admin.clone(),
            cc: Cc::for_enable(mapped.page_shift).ok_or(EINVAL)?,
            shadow,
            faults,
        };
        let shared = IoShared::new(
            regs.clone(),
            queues,
            page_size,
            spread.then_some(1),
            restart,
        )?;
        let set = Arc::new(
            TagSet::new(
                shared,
                regs.pdev(),
                count + polled,
                polled,
                u32::from(depth) - 1,
                io_timeout_ms(),
            )?,
            GFP_KERNEL,
        )?;
        let mut handlers = KVec::new();
        for (index, queue) in set.data().queues().iter().enumerate() {
            let Some(vector) = queue.vector() else {
                continue;
            };
            let handler = QueueIrq {
                set: set.clone(),
                index: u32::try_from(index)?,
            };
            handlers.push(
                IrqRegistration::request(
                    &irqs.vectors,
                    vector.into(),
                    Arc::new(handler, GFP_KERNEL)?,
                    c"rsnvme-io",
                )?,
                GFP_KERNEL,
            )?;
        }
        Ok(IoQueues {
            _irqs: handlers,
            set,
        })
    }
}

/// The polled I/O queues the `poll_queues` parameter asks for: no more
/// than one per online CPU, as blk-mq maps CPUs to them.
fn poll_queues_wanted() -> u32 {
    param::poll_queues().min(cpu::num_online())
}

/// Step "interrupts" again, once the queue count is known: one vector for
/// the admin queue and one per I/O queue, spread over the CPUs. Returns the
/// new interrupts and how many I/O queues they serve.
fn spread_interrupts(
    pdev: &PciDevice,
    admin: &Arc<AdminQueue>,
    old: Interrupts,
    wanted: u32,
) -> Result<(Interrupts, u32)> {
    drop(old);
    let vectors = IrqVectors::alloc(pdev, 1, wanted + 1, Some(1)).inspect_err(|e| {
        dev_err!(pdev, "cannot allocate interrupt vectors: {e:?}\n");
    })?;
    let handler = IrqRegistration::request(&vectors, 0, admin.clone(), c"rsnvme")?;
    // With a single vector, one I/O queue shares it with the admin queue.
    let count = match vectors.count() {
        0 | 1 => wanted.min(1),
        n => wanted.min(n - 1),
    };
    let irqs = Interrupts {
        _admin: handler,
        vectors,
    };
    Ok((irqs, count))
}

/// Step "management": the handle through which the character device and
/// the disks' ioctls reach the controller.
fn management(
    pdev: &PciDevice,
    identity: &Identity,
    mapped: &Mapped,
    admin: &Arc<AdminQueue>,
    io: &IoQueues,
) -> Result<CharDevice> {
    let cap = mapped.regs.cap();
    let mdts = match identity.id.max_transfer_shift(cap.mps_min_shift()) {
        Some(shift) if shift < 32 => 1u32 << shift,
        _ => u32::MAX,
    };
    let facts = Facts {
        id: *identity.id,
        io_queues: io.set.data().queues().len() as u32,
        io_depth: io_queue_depth(cap.max_queue_entries(), MAX_IO_DEPTH).into(),
        page_size: 1 << mapped.page_shift,
        max_transfer: mdts.min(crate::mgmt::MAX_PASSTHRU_BYTES),
    };
    let live = MgmtLive {
        admin: admin.clone(),
        set: io.set.clone(),
        namespaces: None,
    };
    CharDevice::new(pdev, facts, live)
}

/// Step "disks": one disk per usable namespace. A namespace whose disk
/// cannot be added is reported and left out.
fn add_disks(
    pdev: &PciDevice,
    identity: &Identity,
    io: &IoQueues,
    mapped: &Mapped,
    admin: &Arc<AdminQueue>,
    mgmt: &CharDevice,
    number: u32,
) -> Result<Arc<Namespaces>> {
    let (_, dma_limit) = pdev.dma_mapping_sizes();
    let params = DiskParams {
        pdev: pdev.clone(),
        id: *identity.id,
        nvm: identity.nvm,
        cap: mapped.regs.cap(),
        page_shift: mapped.page_shift,
        dma_limit,
        number,
    };
    let namespaces = Namespaces::new(
        params,
        mapped.regs.clone(),
        admin.clone(),
        io.set.clone(),
        mgmt.handle().clone(),
        &identity.namespaces,
    )?;
    mgmt.attach(namespaces.clone());
    Ok(namespaces)
}

impl Controller {
    /// Takes over the controller at `pdev` and brings it up: map, reset,
    /// admin queue, interrupts, enable, identify, namespaces, queue count,
    /// I/O queues, disks. On error every step taken is undone, in reverse.
    pub(crate) fn probe(pdev: PciDevice) -> Result<Self> {
        let faults = Faults::for_probe(&pdev);
        let number = ControllerNumber::take().inspect_err(|_| {
            dev_err!(&pdev, "no free controller number\n");
        })?;
        let mapped = map(&pdev, faults)?;
        let regs = &mapped.regs;
        reset(regs)?;
        let admin = admin_queue(regs, faults)?;
        let irqs = admin_interrupt(&pdev, &admin, faults)?;
        let mut enabled = enable(&mapped, faults)?;

        let mut bringup = Bringup::new(regs, &admin)?;
        let id = bringup.controller(faults)?;
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
            let mgmt = chardev.insert(management(&pdev, &identity, &mapped, &admin, io)?);
            let added = add_disks(&pdev, &identity, io, &mapped, &admin, mgmt, number.get())?;
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
            if let Err(e) = chardev.register(number) {
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
        // Then no command from user space runs.
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
            return;
        };
        let mut flush = KVec::new();
        if self.identity.id.volatile_write_cache() {
            let served = self
                .namespaces
                .as_ref()
                .map(|n| n.nsids())
                .unwrap_or_default();
            for nsid in served {
                if flush.push(nsid, GFP_KERNEL).is_err() {
                    dev_warn!(
                        &self.pdev,
                        "{what}: no memory to list namespaces to flush\n"
                    );
                    break;
                }
            }
        }
        io.set
            .data()
            .suspend(&io.set.borrowed(), &flush, shutdown_ms, what);
    }

    /// Resume of a controller without I/O queues: reset it and enable it
    /// again with its admin queue.
    fn restart_admin(&self) -> Result {
        let regs = &self.mapped.regs;
        let cc = Cc::for_enable(self.mapped.page_shift).ok_or(EINVAL)?;
        regs.disable()?;
        self.admin.stop();
        self.admin.revive(regs)?;
        regs.enable(cc)?;
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

/// Queue limits for namespace `ns` of a controller that reported `id`
/// and `nvm`. `dma_limit` is the largest mapping the DMA layer handles
/// well (bounce buffers make it small).
pub(crate) fn limits(
    id: &IdentifyController,
    nvm: &IdentifyControllerNvm,
    cap: Cap,
    page_shift: u32,
    ns: &Namespace,
    dma_limit: usize,
) -> Limits {
    let lba_shift = ns.lba_shift;
    let page_size = 1u32 << page_shift;
    // One PRP list page; longer transfers are split by the block layer.
    let mut max_bytes = prp::max_transfer_bytes(page_size, (page_size / 8) as usize);
    if let Some(shift) = id.max_transfer_shift(cap.mps_min_shift()) {
        if shift < 64 {
            max_bytes = max_bytes.min(1u64 << shift);
        }
    }
    max_bytes = max_bytes.min(u64::try_from(dma_limit).unwrap_or(u64::MAX));
    // Read and Write count blocks in 16 bits.
    max_bytes = max_bytes.min(65536u64 << lba_shift);
    let max_hw_sectors = u32::try_from(max_bytes >> 9).unwrap_or(u32::MAX);
    let sizes = limits::block_sizes(ns.write_sizes, id.atomic_write_blocks(), lba_shift);
    // The range list is one DMA pool block of a page.
    let discard = limits::discard(id.supports_dsm(), nvm, lba_shift, page_size);
    Limits {
        logical_block_size: 1 << lba_shift,
        physical_block_size: sizes.physical,
        io_min: sizes.io_min,
        io_opt: sizes.io_opt,
        max_hw_sectors,
        max_segments: MAX_SEGMENTS as u16,
        virt_boundary_mask: page_size as usize - 1,
        // PRP entries must be dword aligned.
        dma_alignment: 3,
        write_cache: id.volatile_write_cache(),
        max_discard_sectors: discard.max_sectors,
        max_discard_segments: discard.max_ranges,
        discard_granularity: sizes.discard_granularity,
        max_write_zeroes_sectors: limits::write_zeroes_sectors(
            id.supports_write_zeroes(),
            nvm,
            cap.mps_min_shift(),
            lba_shift,
        ),
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
