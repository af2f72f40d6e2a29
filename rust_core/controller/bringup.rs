// SPDX-License-Identifier: GPL-2.0

//! Bringing a controller up, in the steps probe takes: map BAR0, reset,
//! admin queue, interrupts, enable, identify, queue count, I/O queues,
//! management handle, disks; and the types that own what each step set
//! up, whose drops undo it (`controller/mod.rs` holds them in a
//! [`super::Controller`]).

#![deny(unsafe_code)]

use crate::admin::AdminQueue;
use crate::ctrl::{Ctrl, Restart};
use crate::fault::{Fault, Faults, Flag};
use crate::io::{io_timeout_ms, QueueIrq, MAX_IO_DEPTH};
use crate::mgmt::{CharDevice, Facts, Live as MgmtLive, RegisterFn};
use crate::ns::Namespace;
use crate::queue::{QueuePair, ShadowDoorbells};
use crate::registers::{Registers, SHUTDOWN_TIMEOUT_MS};
use crate::scan::{DiskParams, Found, Identifier, Namespaces, MAX_NAMESPACES};
use crate::spec::command::{Cns, Command};
use crate::spec::completion::Completion;
use crate::spec::identify::{IdentifyController, IdentifyControllerNvm, IDENTIFY_DATA_SIZE};
use crate::spec::queue::io_queue_depth;
use crate::spec::regs::{Cc, Version, DOORBELLS};
use crate::start::Steps;
use crate::state::StateMachine;
use crate::sys::blk::{DiskGroups, TagSet};
use crate::sys::cpu;
use crate::sys::dma::CoherentArray;
use crate::sys::irq::{IrqKind, IrqRegistration, IrqVectors};
use crate::sys::mmio::Bar;
use crate::sys::param;
use crate::sys::pci::{EnabledDevice, PciDevice, Region};
use crate::sys::print::{dev_err, dev_info, dev_warn};
use crate::sys::time::etimedout;
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

/// BAR0 mapped and claimed, with the controller's registers.
///
/// Fields drop in order: unmap BAR0, release it, disable the device.
pub(super) struct Mapped {
    pub(super) regs: Arc<Registers>,
    /// `CC.MPS` as a shift: the memory page size used with the controller.
    pub(super) page_shift: u32,
    pub(super) _region: Region,
    pub(super) _enabled: EnabledDevice,
}

/// Interrupt vectors with the admin queue's handler on vector 0 (the
/// vectors are freed once no handler is left on them, whatever the field
/// order).
pub(super) struct Interrupts {
    pub(super) _admin: IrqRegistration<AdminQueue>,
    pub(super) vectors: IrqVectors,
}

/// A controller that has been enabled; shut down when dropped, and bus
/// mastering turned off, which stops all of its DMA even if it ignored
/// the shutdown.
pub(super) struct Enabled {
    pub(super) regs: Arc<Registers>,
    /// How long the shutdown may take: RTD3E once Identify told it.
    pub(super) shutdown_ms: u32,
    /// Whether [`Enabled::shut_down`] ran already.
    pub(super) done: bool,
}

impl Drop for Enabled {
    fn drop(&mut self) {
        self.shut_down();
    }
}

impl Enabled {
    /// Shuts the controller down (CC.SHN, or CC.EN=0 if that fails) and
    /// turns bus mastering off for good; once only.
    pub(super) fn shut_down(&mut self) {
        if core::mem::replace(&mut self.done, true) {
            return;
        }
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
pub(super) struct Identity {
    pub(super) id: KBox<IdentifyController>,
    /// The NVM Command Set limits (all zero: none reported).
    pub(super) nvm: IdentifyControllerNvm,
    pub(super) namespaces: KVec<Namespace>,
}

/// The enabled controller and the I/O queues it serves.
///
/// Fields drop in order: the controller is shut down (so it no longer
/// writes to any queue) before the I/O queues' memory is freed, on every
/// path: a probe that fails after the queues exist, and remove.
pub(super) struct Live {
    pub(super) enabled: Enabled,
    pub(super) io: Option<IoQueues>,
    /// The shadow doorbell buffers the controller was given, if any.
    pub(super) shadow: Option<Arc<ShadowDoorbells>>,
}

/// The I/O queue pairs behind a blk-mq tag set.
///
/// Fields drop in order: the handlers are freed before the tag set (and
/// the queue memory it holds).
pub(super) struct IoQueues {
    pub(super) _irqs: KVec<IrqRegistration<QueueIrq<Ctrl>>>,
    pub(super) set: Arc<TagSet<Ctrl>>,
}

/// Step "map": enables the PCI device and bus mastering, sets the DMA
/// mask, claims and maps BAR0, and checks the controller's capabilities.
pub(super) fn map(pdev: &PciDevice, faults: Faults) -> Result<Mapped> {
    let enabled = pdev.enable_mem().inspect_err(|e| {
        dev_err!(pdev, "cannot enable PCI device: {e:?}\n");
    })?;
    pdev.set_dma_mask(64).inspect_err(|e| {
        dev_err!(pdev, "no usable 64-bit DMA mask: {e:?}\n");
    })?;
    // Bounce buffers (swiotlb) must keep the offset in the page PRPs name.
    // PRPs have no limit on a segment's length (each names pages), and the
    // queue limits let the block layer merge contiguous pages into one
    // segment of any length (the virt boundary implies no segment size
    // limit): the DMA layer must accept such segments too.
    pdev.set_dma_parms((1u32 << PAGE_SHIFT) - 1, u32::MAX)
        .inspect_err(|e| {
            dev_err!(pdev, "cannot set the DMA parameters: {e:?}\n");
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
    if faults.has(Flag::IgnoresDisable) {
        dev_warn!(
            pdev,
            "taking the controller as ignoring CC.EN=0 (injected)\n"
        );
        regs.ignore_disable();
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
pub(super) fn reset(regs: &Registers) -> Result {
    regs.disable().inspect_err(|_| {
        dev_err!(regs.pdev(), "controller did not reset\n");
    })
}

/// Step "admin queue": allocates the admin queue pair and programs its
/// addresses into the disabled controller.
pub(super) fn admin_queue(
    mapped: &Mapped,
    state: &Arc<StateMachine>,
    faults: Faults,
) -> Result<Arc<AdminQueue>> {
    let regs = &mapped.regs;
    let pdev = regs.pdev();
    if faults.inject(Fault::DmaAlloc) {
        dev_err!(pdev, "cannot allocate the admin queue: ENOMEM (injected)\n");
        return Err(ENOMEM);
    }
    let page_size = 1u32 << mapped.page_shift;
    let admin = AdminQueue::new(regs, state.clone(), page_size, faults).inspect_err(|e| {
        dev_err!(pdev, "cannot allocate the admin queue: {e:?}\n");
    })?;
    admin.program(regs)?;
    Ok(admin)
}

/// Step "interrupts": one vector, for the admin queue, until the number of
/// I/O queues is known.
pub(super) fn admin_interrupt(
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

/// Step "enable": enables the controller and waits for it to be ready
/// ([`Steps::enable`]).
pub(super) fn enable(mapped: &Mapped, admin: &AdminQueue, faults: Faults) -> Result<Enabled> {
    let regs = &mapped.regs;
    let cc = Cc::for_enable(mapped.page_shift).ok_or(EINVAL)?;
    // Injected: write the configuration without EN, so RDY never comes.
    let cc = if faults.inject(Fault::NeverReady) {
        cc.disabled()
    } else {
        cc
    };
    Steps { regs, admin }.enable(cc)?;
    Ok(Enabled {
        regs: regs.clone(),
        shutdown_ms: SHUTDOWN_TIMEOUT_MS,
        done: false,
    })
}

/// Admin commands during bring-up, with the identify buffer they share.
pub(super) struct Bringup<'a> {
    pub(super) regs: &'a Registers,
    pub(super) admin: &'a Arc<AdminQueue>,
    /// The controller's state machine, which the I/O path shares.
    pub(super) state: &'a Arc<StateMachine>,
    pub(super) buf: CoherentArray<u8>,
    pub(super) page: KBox<[u8; IDENTIFY_DATA_SIZE]>,
}

impl<'a> Bringup<'a> {
    pub(super) fn new(
        regs: &'a Registers,
        admin: &'a Arc<AdminQueue>,
        state: &'a Arc<StateMachine>,
    ) -> Result<Self> {
        Ok(Self {
            regs,
            admin,
            state,
            buf: CoherentArray::zeroed(regs.pdev(), IDENTIFY_DATA_SIZE)?,
            page: KBox::new([0; IDENTIFY_DATA_SIZE], GFP_KERNEL)?,
        })
    }

    /// The steps shared with a reset.
    fn steps(&self) -> Steps<'_> {
        Steps {
            regs: self.regs,
            admin: self.admin,
        }
    }

    /// Runs one admin command, see [`AdminQueue::command`].
    fn command(&self, cmd: Command, what: &str) -> Result<Completion> {
        self.admin.command(cmd, what)
    }

    /// Runs Identify with `cns` and `nsid` and copies the result to `page`.
    fn identify(&mut self, cns: Cns, nsid: u32, what: &str) -> Result {
        let cmd = Command::identify(cns, nsid, self.buf.dma_handle());
        self.command(cmd, what)?;
        self.buf.read_into(&mut self.page[..])
    }

    /// Step "identify": Identify Controller, checked.
    pub(super) fn controller(&mut self, faults: Faults) -> Result<KBox<IdentifyController>> {
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
    pub(super) fn nvm_limits(&mut self) -> Result<IdentifyControllerNvm> {
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
    pub(super) fn namespaces(&mut self, id: &IdentifyController) -> Result<KVec<Namespace>> {
        let pdev = self.regs.pdev();
        let mut identifier = Identifier::new(self.regs)?;
        let run =
            |cmd: Command, what: &str| -> Result { self.admin.command(cmd, what).map(|_| ()) };
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
    pub(super) fn queue_count(&self) -> u32 {
        let wanted = cpu::num_online().saturating_add(poll_queues_wanted());
        let wanted = u16::try_from(wanted).unwrap_or(u16::MAX);
        match self.steps().queue_count(wanted) {
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
    pub(super) fn shadow_doorbells(
        &self,
        id: &IdentifyController,
        mapped: &Mapped,
    ) -> Result<Option<Arc<ShadowDoorbells>>> {
        if !id.supports_doorbell_buffer_config() || param::shadow_doorbells() == 0 {
            return Ok(None);
        }
        let shadow = ShadowDoorbells::new(self.regs, 1usize << mapped.page_shift)?;
        let taken = self.steps().shadow_doorbells(&shadow)?;
        Ok(taken.then_some(shadow))
    }

    /// Step "I/O queues": `count` queue pairs with an interrupt handler
    /// each and `polled` ones without, created on the controller and put
    /// behind a tag set; they use `shadow`'s doorbells if given.
    pub(super) fn io_queues(
        &self,
        mapped: &Mapped,
        irqs: &Interrupts,
        count: u32,
        polled: u32,
        shadow: Option<Arc<ShadowDoorbells>>,
        faults: Faults,
    ) -> Result<IoQueues> {
        let regs = &mapped.regs;
        // The queues are kept here too, so that on failure they outlive
        // the stop below whatever dropped its own references.
        let mut queues = KVec::new();
        self.try_io_queues(mapped, irqs, count, polled, shadow, faults, &mut queues)
            .inspect_err(|_| {
                // Queues created on the controller are freed on the way
                // out: it must no longer write to them. Probe fails, so
                // its DMA stays off. Only then are the queues freed.
                let _ = regs.disable();
                let _ = regs.pdev().stop_dma();
                drop(core::mem::take(&mut queues));
            })
    }

    /// [`Bringup::io_queues`], which stops the controller if this fails;
    /// each queue made is also put in `made`.
    #[allow(clippy::too_many_arguments)]
    fn try_io_queues(
        &self,
        mapped: &Mapped,
        irqs: &Interrupts,
        count: u32,
        polled: u32,
        shadow: Option<Arc<ShadowDoorbells>>,
        faults: Faults,
        made: &mut KVec<Arc<QueuePair>>,
    ) -> Result<IoQueues> {
        let regs = &mapped.regs;
        let depth = io_queue_depth(regs.cap().max_queue_entries(), MAX_IO_DEPTH);
        let spread = irqs.vectors.count() > 1;
        let level = irqs.vectors.kind() == IrqKind::Intx;
        let mut queues = KVec::new();
        let with_irq = u16::try_from(count)?;
        for qid in 1..=u16::try_from(count.checked_add(polled).ok_or(EINVAL)?)? {
            // With a single vector the queue shares it with the admin queue.
            let vector = match qid {
                _ if qid > with_irq => None,
                _ if spread => Some(qid),
                _ => Some(0),
            };
            let queue = QueuePair::new(regs, qid, depth, vector, level, shadow.as_ref())?;
            made.push(queue.clone(), GFP_KERNEL)?;
            queues.push(queue, GFP_KERNEL)?;
        }
        self.steps().create_queues(&queues)?;
        if faults.inject(Fault::IoQueueSetup) {
            dev_err!(
                regs.pdev(),
                "failing the I/O queue step with {} queues created: ENOMEM (injected)\n",
                queues.len()
            );
            return Err(ENOMEM);
        }
        if faults.inject(Fault::IoTimeout) {
            queues.iter().for_each(|queue| queue.silence_doorbell());
        }
        let page_size = 1u32 << mapped.page_shift;
        let restart = Restart {
            admin: self.admin.clone(),
            cc: Cc::for_enable(mapped.page_shift).ok_or(EINVAL)?,
            shadow,
            faults,
        };
        let shared = Ctrl::new(
            regs.clone(),
            queues,
            page_size,
            spread.then_some(1),
            restart,
            self.state.clone(),
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
pub(super) fn poll_queues_wanted() -> u32 {
    param::poll_queues().min(cpu::num_online())
}

/// Step "interrupts" again, once the queue count is known: one vector for
/// the admin queue and one per I/O queue, spread over the CPUs. Returns the
/// new interrupts and how many I/O queues they serve.
pub(super) fn spread_interrupts(
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
pub(super) fn management(
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
pub(super) fn add_disks(
    identity: &Identity,
    io: &IoQueues,
    mapped: &Mapped,
    admin: &Arc<AdminQueue>,
    mgmt: &CharDevice,
    number: u32,
    tables: &Tables,
) -> Result<Arc<Namespaces>> {
    let pdev = mapped.regs.pdev();
    let (_, dma_limit) = pdev.dma_mapping_sizes();
    let params = DiskParams {
        pdev: pdev.clone(),
        id: *identity.id,
        nvm: identity.nvm,
        cap: mapped.regs.cap(),
        page_shift: mapped.page_shift,
        dma_limit,
        number,
        groups: tables.disk_groups,
        register_generic: tables.register_generic,
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

/// The C tables the entry points (`ffi.rs`, `tables.rs`) own, which the
/// devices a controller registers point to.
pub(crate) struct Tables {
    /// Registers the controller's character device.
    pub(crate) register_char_device: RegisterFn,
    /// Registers a namespace's generic character device.
    pub(crate) register_generic: crate::generic::RegisterFn,
    /// The sysfs attribute groups of every namespace's disk.
    pub(crate) disk_groups: &'static DiskGroups<Ctrl>,
}
