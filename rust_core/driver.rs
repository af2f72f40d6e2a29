// SPDX-License-Identifier: GPL-2.0

//! NVMe controller bring-up and teardown, on top of the safe wrappers in
//! `sys`: reset, admin queue, interrupts, identify, queue count, shutdown.

#![deny(unsafe_code)]

use crate::admin::{AdminQueue, ADMIN_DEPTH, ADMIN_TIMEOUT_MS};
use crate::controller::Registers;
use crate::io::{self, Disk, IoQueue, IoShared, Limits, QueueIrq, MAX_IO_DEPTH};
use crate::spec::command::{Cns, Command};
use crate::spec::completion::{Completion, StatusKind};
use crate::spec::identify::{
    active_namespaces, IdentifyController, IdentifyNamespace, IDENTIFY_DATA_SIZE,
};
use crate::spec::prp;
use crate::spec::queue::io_queue_depth;
use crate::spec::regs::{aqa, offset, Cap, Cc, Version};
use crate::sys::blk::{TagSet, MAX_SEGMENTS};
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
    code::{EACCES, EINVAL, EIO, ENODEV, ENOMEM, ENOSPC},
    Error, Result,
};
use kernel::sync::Arc;

/// How long an I/O may take before the controller is reset, as Linux's C
/// driver defaults to.
const IO_TIMEOUT_MS: u32 = 30_000;

/// Numbers controllers for disk names (`rsnvme<N>n<nsid>`).
static CONTROLLER_INDEX: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);

/// BAR0 must at least hold the registers and the first doorbell; the admin
/// queue doorbells' real extent is checked once CAP.DSTRD is known.
const MIN_BAR_LEN: usize = offset::DOORBELLS + 4;

/// The kernel's page size as a shift (`PAGE_SHIFT`).
const PAGE_SHIFT: u32 = kernel::bindings::PAGE_SHIFT;

/// Most namespaces the driver looks at: one Active Namespace ID list.
const MAX_NAMESPACES: usize = 1024;

/// Probe failures that tests inject with the `fault` module parameter.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    /// Interrupt vector allocation is refused.
    IrqVectors,
    /// DMA memory for the admin queue cannot be had.
    DmaAlloc,
    /// The controller is never told to enable, so never becomes ready.
    NeverReady,
    /// Identify Controller is never submitted to the device.
    IdentifyTimeout,
    /// I/O commands are never announced to the device, so they time out.
    IoTimeout,
}

impl Fault {
    fn current(pdev: &PciDevice) -> Self {
        match param::fault() {
            0 => Self::None,
            1 => Self::IrqVectors,
            2 => Self::DmaAlloc,
            3 => Self::NeverReady,
            4 => Self::IdentifyTimeout,
            5 => Self::IoTimeout,
            other => {
                dev_warn!(pdev, "ignoring unknown fault={other}\n");
                Self::None
            }
        }
    }
}

/// A usable namespace.
pub(crate) struct Namespace {
    pub(crate) nsid: u32,
    pub(crate) blocks: u64,
    pub(crate) lba_shift: u32,
}

/// A controller that has been enabled; shut down when dropped.
struct LiveController {
    regs: Arc<Registers>,
}

impl Drop for LiveController {
    fn drop(&mut self) {
        if let Err(e) = self.regs.shutdown() {
            dev_warn!(&self.regs.pdev, "shutdown failed ({e:?}), resetting\n");
            // Nothing more can be done if the reset fails too; it logged.
            let _ = self.regs.disable();
        }
        if let Ok(csts) = self.regs.csts() {
            dev_info!(&self.regs.pdev, "controller shut down, {csts}\n");
        }
    }
}

/// One NVMe controller bound to this driver.
///
/// Fields drop in declaration order, which undoes probe in reverse: shut
/// the controller down (so it stops all DMA), free its interrupt handler
/// and vectors, free the admin queue memory, unmap and release BAR0,
/// disable the device and drop the device reference.
pub(crate) struct Controller {
    /// Removing a disk waits for its I/O, so disks go first.
    disks: KVec<Disk<IoShared>>,
    _live: LiveController,
    _io_irqs: KVec<IrqRegistration<QueueIrq>>,
    io: Option<Arc<TagSet<IoShared>>>,
    _irq: IrqRegistration<AdminQueue>,
    _vectors: IrqVectors,
    admin: Arc<AdminQueue>,
    _regs: Arc<Registers>,
    pub(crate) id: KBox<IdentifyController>,
    pub(crate) namespaces: KVec<Namespace>,
    /// I/O queue pairs the controller granted, and how many are used.
    pub(crate) io_granted: u32,
    pub(crate) io_queues: u32,
    _region: Region,
    _enabled: EnabledDevice,
    pdev: PciDevice,
}

/// Maps an NVMe status to the kernel error a failed command returns.
fn status_error(kind: StatusKind) -> Error {
    match kind {
        StatusKind::InvalidOpcode | StatusKind::InvalidField | StatusKind::InvalidNamespace => {
            EINVAL
        }
        StatusKind::AccessDenied => EACCES,
        _ => EIO,
    }
}

/// Runs one admin command; `what` names it in error messages. A timeout
/// resets the controller, so that the command can no longer write to memory
/// the caller is about to free.
fn admin_command(
    regs: &Registers,
    admin: &AdminQueue,
    cmd: Command,
    what: &str,
    ring: bool,
) -> Result<Completion> {
    let pdev = &regs.pdev;
    let cqe = match admin.submit_and_wait(cmd, ring) {
        Ok(cqe) => cqe,
        Err(e) if e == etimedout() => {
            dev_err!(
                pdev,
                "{what} timed out after {ADMIN_TIMEOUT_MS} ms; resetting the controller\n"
            );
            // If the reset fails too, it logged why; the caller fails
            // either way.
            let _ = regs.disable();
            return Err(etimedout());
        }
        Err(e) => {
            dev_err!(pdev, "{what} could not be submitted: {e:?}\n");
            return Err(e);
        }
    };
    let status = cqe.status();
    if !status.is_success() {
        dev_err!(pdev, "{what} failed: {status}\n");
        return Err(status_error(status.kind()));
    }
    Ok(cqe)
}

/// Admin commands during probe, with the identify buffer they share.
struct Bringup<'a> {
    regs: &'a Registers,
    admin: &'a AdminQueue,
    buf: CoherentArray<u8>,
    page: KBox<[u8; IDENTIFY_DATA_SIZE]>,
    fault: Fault,
}

impl Bringup<'_> {
    /// Runs one admin command, see [`admin_command`].
    fn command(&self, cmd: Command, what: &str, ring: bool) -> Result<Completion> {
        admin_command(self.regs, self.admin, cmd, what, ring)
    }

    /// Runs Identify with `cns` and `nsid` and copies the result to `page`.
    fn identify(&mut self, cns: Cns, nsid: u32, what: &str) -> Result {
        let ring = !(self.fault == Fault::IdentifyTimeout && cns == Cns::Controller);
        self.command(
            Command::identify(cns, nsid, self.buf.dma_handle()),
            what,
            ring,
        )?;
        self.buf.read_into(&mut self.page[..])
    }

    /// Identifies every active namespace and keeps the usable ones.
    fn namespaces(&mut self, id: &IdentifyController) -> Result<KVec<Namespace>> {
        let pdev = &self.regs.pdev;
        let mut nsids = KVec::new();
        if self
            .identify(Cns::ActiveNsList, 0, "Identify Active Namespace List")
            .is_ok()
        {
            for nsid in active_namespaces(&self.page).take(MAX_NAMESPACES) {
                nsids.push(nsid, GFP_KERNEL)?;
            }
        } else {
            // Controllers before NVMe 1.1 lack the list: try 1..=NN.
            let nn = id.namespace_count().min(MAX_NAMESPACES as u32);
            dev_warn!(
                pdev,
                "no active namespace list; trying namespaces 1..={nn}\n"
            );
            for nsid in 1..=nn {
                nsids.push(nsid, GFP_KERNEL)?;
            }
        }

        let mut namespaces = KVec::new();
        for &nsid in nsids.iter() {
            self.identify(Cns::Namespace, nsid, "Identify Namespace")?;
            let ns = IdentifyNamespace::parse(&self.page);
            match ns.usable_lba(PAGE_SHIFT) {
                Ok(lba_shift) => namespaces.push(
                    Namespace {
                        nsid,
                        blocks: ns.size_blocks(),
                        lba_shift,
                    },
                    GFP_KERNEL,
                )?,
                Err(e) => dev_warn!(pdev, "namespace {nsid} skipped: {e}\n"),
            }
        }
        if namespaces.is_empty() {
            dev_warn!(pdev, "no usable namespaces\n");
        }
        Ok(namespaces)
    }

    /// Asks for one I/O queue pair per online CPU (Set Features, Number of
    /// Queues) and returns how many pairs the controller granted.
    fn negotiate_queues(&self) -> u32 {
        let wanted = u16::try_from(cpu::num_online()).unwrap_or(u16::MAX);
        let cmd = Command::set_features_num_queues(wanted, wanted);
        match self.command(cmd, "Set Features (Number of Queues)", true) {
            Ok(cqe) => {
                // NSQA in bits 15:0, NCQA in bits 31:16, both zero-based.
                let sq = (cqe.result() & 0xffff) + 1;
                let cq = (cqe.result() >> 16) + 1;
                sq.min(cq).min(wanted.into())
            }
            Err(_) => {
                dev_warn!(&self.regs.pdev, "continuing with the admin queue only\n");
                0
            }
        }
    }
}

impl Controller {
    /// Takes over the controller at `pdev` and brings it to ready: reset,
    /// admin queue, interrupt, enable, identify, queue count.
    pub(crate) fn probe(pdev: PciDevice) -> Result<Self> {
        let fault = Fault::current(&pdev);
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
        let (cap, page_shift) = read_capabilities(&pdev, &bar)?;
        let regs = Arc::new(
            Registers {
                pdev: pdev.clone(),
                bar,
                cap,
            },
            GFP_KERNEL,
        )?;

        regs.disable().inspect_err(|_| {
            dev_err!(&pdev, "controller did not reset\n");
        })?;
        if fault == Fault::DmaAlloc {
            dev_err!(
                &pdev,
                "cannot allocate the admin queue: ENOMEM (injected)\n"
            );
            return Err(ENOMEM);
        }
        let admin = AdminQueue::new(&regs).inspect_err(|e| {
            dev_err!(&pdev, "cannot allocate the admin queue: {e:?}\n");
        })?;
        let (asq, acq) = admin.registers();
        let depth = u32::from(ADMIN_DEPTH);
        regs.bar
            .write32(offset::AQA, aqa(depth, depth).ok_or(EINVAL)?)?;
        regs.bar.write64(offset::ASQ, asq)?;
        regs.bar.write64(offset::ACQ, acq)?;

        if fault == Fault::IrqVectors {
            dev_err!(
                &pdev,
                "cannot allocate interrupt vectors: ENOSPC (injected)\n"
            );
            return Err(ENOSPC);
        }
        let vectors = IrqVectors::alloc(&pdev, 1, 1).inspect_err(|e| {
            dev_err!(&pdev, "cannot allocate interrupt vectors: {e:?}\n");
        })?;
        let irq =
            IrqRegistration::request(&vectors, 0, admin.clone(), c"rsnvme").inspect_err(|e| {
                dev_err!(&pdev, "cannot register the admin interrupt: {e:?}\n");
            })?;

        let cc = Cc::for_enable(page_shift).ok_or(EINVAL)?;
        // Injected: write the configuration without EN, so RDY never comes.
        let cc = if fault == Fault::NeverReady {
            cc.disabled()
        } else {
            cc
        };
        regs.enable(cc).inspect_err(|_| {
            dev_err!(&pdev, "controller did not become ready\n");
        })?;
        let live = LiveController { regs: regs.clone() };

        let mut bringup = Bringup {
            regs: &regs,
            admin: &admin,
            buf: CoherentArray::zeroed(&pdev, IDENTIFY_DATA_SIZE)?,
            page: KBox::new([0; IDENTIFY_DATA_SIZE], GFP_KERNEL)?,
            fault,
        };
        bringup.identify(Cns::Controller, 0, "Identify Controller")?;
        let id = KBox::new(IdentifyController::parse(&bringup.page), GFP_KERNEL)?;
        id.validate().map_err(|e| {
            dev_err!(&pdev, "unusable Identify Controller data: {e}\n");
            ENODEV
        })?;
        let namespaces = bringup.namespaces(&id)?;
        let wanted = bringup.negotiate_queues();

        // Interrupts again, now one vector for the admin queue and one per
        // I/O queue, spread over the CPUs; with a single vector, one I/O
        // queue shares it with the admin queue.
        drop(irq);
        drop(vectors);
        let vectors = IrqVectors::alloc_spread(&pdev, 1, wanted + 1, 1).inspect_err(|e| {
            dev_err!(&pdev, "cannot allocate interrupt vectors: {e:?}\n");
        })?;
        let irq = IrqRegistration::request(&vectors, 0, admin.clone(), c"rsnvme")?;
        let spread = vectors.count() > 1;
        let count = if spread {
            wanted.min(vectors.count() - 1)
        } else {
            wanted.min(1)
        };

        let mut io_irqs = KVec::new();
        let mut io = None;
        let mut disks = KVec::new();
        if count > 0 {
            let depth = io_queue_depth(cap.max_queue_entries(), MAX_IO_DEPTH);
            let mut queues = KVec::new();
            for qid in 1..=count as u16 {
                let vector = if spread { qid } else { 0 };
                let queue = IoQueue::new(&regs, qid, depth, vector)?;
                let (create_cq, create_sq) = queue.create_commands().ok_or(EINVAL)?;
                bringup.command(create_cq, "Create I/O Completion Queue", true)?;
                bringup.command(create_sq, "Create I/O Submission Queue", true)?;
                queues.push(queue, GFP_KERNEL)?;
            }
            let page_size = 1u32 << page_shift;
            let ring = fault != Fault::IoTimeout;
            let shared = IoShared::new(regs.clone(), queues, page_size, spread.then_some(1), ring)?;
            let set = Arc::new(
                TagSet::new(shared, count, u32::from(depth) - 1, IO_TIMEOUT_MS)?,
                GFP_KERNEL,
            )?;
            for (index, queue) in set.data().queues().iter().enumerate() {
                let handler = Arc::new(
                    QueueIrq {
                        set: set.clone(),
                        index: index as u32,
                    },
                    GFP_KERNEL,
                )?;
                io_irqs.push(
                    IrqRegistration::request(&vectors, queue.vector.into(), handler, c"rsnvme-io")?,
                    GFP_KERNEL,
                )?;
            }
            let index = CONTROLLER_INDEX.fetch_add(1, core::sync::atomic::Ordering::Relaxed);
            for ns in namespaces.iter() {
                let limits = limits(&id, cap, page_shift, ns.lba_shift);
                let sectors = ns.blocks.checked_shl(ns.lba_shift - 9).unwrap_or(u64::MAX);
                let data = Arc::new(
                    io::Namespace {
                        nsid: ns.nsid,
                        lba_shift: ns.lba_shift,
                    },
                    GFP_KERNEL,
                )?;
                match Disk::add(
                    &set,
                    data,
                    &limits,
                    format_args!("rsnvme{}n{}", index, ns.nsid),
                    sectors,
                    &pdev,
                ) {
                    Ok(disk) => disks.push(disk, GFP_KERNEL)?,
                    Err(e) => dev_err!(&pdev, "namespace {}: cannot add disk: {e:?}\n", ns.nsid),
                }
            }
            io = Some(set);
        }
        let io_queues = count;
        let io_granted = wanted;
        drop(bringup);

        let ctrl = Self {
            disks,
            _live: live,
            _io_irqs: io_irqs,
            io,
            _irq: irq,
            _vectors: vectors,
            admin,
            _regs: regs,
            id,
            namespaces,
            io_granted,
            io_queues,
            _region: region,
            _enabled: enabled,
            pdev,
        };
        ctrl.report(cap);
        Ok(ctrl)
    }

    /// Logs what the controller is and what it offers.
    fn report(&self, cap: Cap) {
        let kind = match self._vectors.kind() {
            IrqKind::MsiX => "MSI-X",
            IrqKind::Msi => "MSI",
            IrqKind::Intx => "INTx",
        };
        let mdts = match self.id.max_transfer_shift(cap.mps_min_shift()) {
            Some(shift) if shift < 64 => 1u64 << shift,
            _ => 0,
        };
        dev_info!(
            &self.pdev,
            "model \"{}\" serial \"{}\" firmware \"{}\": {} I/O queue pairs granted, \
             {} used, {} namespaces, max transfer {} bytes (0: no limit), {} x{}\n",
            self.id.model(),
            self.id.serial(),
            self.id.firmware(),
            self.io_granted,
            self.io_queues,
            self.namespaces.len(),
            mdts,
            kind,
            self._vectors.count()
        );
        for ns in self.namespaces.iter() {
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

    /// The value of sysfs attribute `index` of
    /// [`crate::sys::sysfs::ATTRIBUTE_NAMES`].
    pub(crate) fn attribute(&self, index: usize) -> AttributeValue<'_> {
        match index {
            0 => AttributeValue::Text(self.id.model()),
            1 => AttributeValue::Text(self.id.serial()),
            2 => AttributeValue::Text(self.id.firmware()),
            3 => AttributeValue::Number(self.io_granted),
            _ => AttributeValue::Text(""),
        }
    }

    /// Hands the controller back: removes its disks (waiting for their
    /// I/O), deletes the I/O queues; dropping the fields then shuts the
    /// controller down and releases everything.
    pub(crate) fn remove(mut self) {
        dev_info!(&self.pdev, "unbinding\n");
        if let Some(set) = &self.io {
            if self._regs.csts().is_err() {
                // The device is gone: nothing will complete by itself.
                io::fail_and_cancel(set, "controller is gone");
            }
        }
        drop(core::mem::take(&mut self.disks));
        if let Some(set) = &self.io {
            if !set.data().failed() {
                for queue in set.data().queues() {
                    // A failure was logged; the shutdown that follows
                    // deletes the remaining queues anyway.
                    if self.delete_queue(queue).is_err() {
                        break;
                    }
                }
            }
        }
    }

    /// Deletes an I/O queue pair on the controller, SQ first.
    fn delete_queue(&self, queue: &IoQueue) -> Result {
        let (delete_sq, delete_cq) = queue.delete_commands();
        admin_command(
            &self._regs,
            &self.admin,
            delete_sq,
            "Delete I/O Submission Queue",
            true,
        )?;
        admin_command(
            &self._regs,
            &self.admin,
            delete_cq,
            "Delete I/O Completion Queue",
            true,
        )?;
        Ok(())
    }
}

/// Queue limits for a namespace of `1 << lba_shift`-byte blocks.
fn limits(id: &IdentifyController, cap: Cap, page_shift: u32, lba_shift: u32) -> Limits {
    let page_size = 1u32 << page_shift;
    // One PRP list page; longer transfers are split by the block layer.
    let mut max_bytes = prp::max_transfer_bytes(page_size, (page_size / 8) as usize);
    if let Some(shift) = id.max_transfer_shift(cap.mps_min_shift()) {
        if shift < 64 {
            max_bytes = max_bytes.min(1u64 << shift);
        }
    }
    // Read and Write count blocks in 16 bits.
    max_bytes = max_bytes.min(65536u64 << lba_shift);
    let max_hw_sectors = u32::try_from(max_bytes >> 9).unwrap_or(u32::MAX);
    Limits {
        logical_block_size: 1 << lba_shift,
        max_hw_sectors,
        max_segments: MAX_SEGMENTS as u16,
        virt_boundary_mask: page_size as usize - 1,
        // PRP entries must be dword aligned.
        dma_alignment: 3,
        write_cache: id.volatile_write_cache(),
        max_discard_sectors: if id.supports_dsm() { u32::MAX } else { 0 },
        max_write_zeroes_sectors: if id.supports_write_zeroes() {
            65536 << (lba_shift - 9)
        } else {
            0
        },
    }
}

/// The value of one sysfs attribute.
pub(crate) enum AttributeValue<'a> {
    Text(&'a str),
    Number(u32),
}

impl core::fmt::Display for AttributeValue<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Text(s) => f.write_str(s),
            Self::Number(n) => write!(f, "{n}"),
        }
    }
}

/// Reads and logs CAP, VS and CSTS, checks the driver can work with the
/// controller, and returns CAP with the memory page shift to use.
fn read_capabilities(pdev: &PciDevice, bar: &Bar) -> Result<(Cap, u32)> {
    let csts = crate::spec::regs::Csts(bar.read32(offset::CSTS)?);
    if csts.is_all_ones() {
        dev_err!(pdev, "controller does not respond (CSTS reads all ones)\n");
        return Err(ENODEV);
    }
    let cap = Cap(bar.read64(offset::CAP)?);
    let vs = Version(bar.read32(offset::VS)?);
    dev_info!(
        pdev,
        "NVMe controller {:04x}:{:04x}, BAR0 {} bytes\n",
        pdev.vendor_id(),
        pdev.device_id(),
        bar.len()
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
    // The admin SQ tail and CQ head doorbells, CAP.DSTRD apart.
    let admin_doorbells_end = offset::DOORBELLS + 2 * cap.doorbell_stride();
    if bar.len() < admin_doorbells_end {
        dev_err!(
            pdev,
            "BAR0 is {} bytes, too short for doorbells {} bytes apart\n",
            bar.len(),
            cap.doorbell_stride()
        );
        return Err(ENODEV);
    }
    if csts.fatal() {
        dev_warn!(pdev, "controller reports a fatal status (CSTS.CFS)\n");
    }
    Ok((cap, page_shift))
}
