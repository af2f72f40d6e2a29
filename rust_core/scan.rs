// SPDX-License-Identifier: GPL-2.0

//! Namespaces: which ones the controller has (Identify Active Namespace
//! List, Identify Namespace, the Namespace Identification Descriptor
//! list), at bring-up and again on a rescan, which turns namespaces that
//! appeared into disks, removes the disks of those that went away and
//! changes the capacity of those that were resized, without rebinding
//! (what the C driver's `nvme_scan_work` does).

#![deny(unsafe_code)]

use crate::admin::{AdminQueue, UserData};
use crate::ctrl::Ctrl;
use crate::fault;
use crate::generic::{self, Generic};
use crate::mgmt::Handle;
use crate::ns::{Namespace, NamespaceSet, NsDisk};
use crate::registers::Registers;
use crate::spec::command::{Cns, Command};
use crate::spec::completion::Completion;
use crate::spec::identify::{
    active_namespaces, IdentifyController, IdentifyControllerNvm, IdentifyNamespace,
    IDENTIFY_DATA_SIZE,
};
use crate::spec::limits;
use crate::spec::nsid::NamespaceIds;
use crate::spec::prp;
use crate::spec::regs::{Cap, Version};
use crate::state::State;
use crate::sys::blk::{Disk, DiskGroups, Limits, TagSet, MAX_SEGMENTS};
use crate::sys::dma::CoherentArray;
use crate::sys::misc::MiscDevice;
use crate::sys::pci::PciDevice;
use crate::sys::print::{dev_info, dev_warn};
use crate::sys::time::{etimedout, msleep, Deadline};
use crate::sys::uring::{Queued, UringCmd};
use core::cell::Cell;
use kernel::alloc::{flags::GFP_KERNEL, KBox, KVec};
use kernel::error::{
    code::{EIO, ENODEV},
    Error, Result,
};
use kernel::new_mutex;
use kernel::prelude::*;
use kernel::sync::{Arc, Mutex};

/// Most namespaces the driver looks at: one Active Namespace ID list.
pub(crate) const MAX_NAMESPACES: usize = 1024;

/// The kernel's page size as a shift (`PAGE_SHIFT`).
const PAGE_SHIFT: u32 = kernel::bindings::PAGE_SHIFT;

/// Runs one admin command and fails unless it succeeded; the second
/// argument names it for messages.
pub(crate) type Run<'a> = &'a dyn Fn(Command, &str) -> Result;

/// Identify commands about namespaces, with the DMA buffer they share.
pub(crate) struct Identifier {
    pdev: PciDevice,
    buf: CoherentArray<u8>,
    page: KBox<[u8; IDENTIFY_DATA_SIZE]>,
    /// The controller's version (the VS register), which says which
    /// identifiers it reports where.
    vs: Version,
}

impl Identifier {
    /// A buffer for the controller `regs` maps.
    pub(crate) fn new(regs: &Registers) -> Result<Self> {
        Ok(Self {
            pdev: regs.pdev().clone(),
            buf: CoherentArray::zeroed(regs.pdev(), IDENTIFY_DATA_SIZE)?,
            page: KBox::new([0; IDENTIFY_DATA_SIZE], GFP_KERNEL)?,
            vs: regs.read()?,
        })
    }

    /// Runs Identify with `cns` and `nsid` and copies the result to `page`.
    fn identify(&mut self, run: Run<'_>, cns: Cns, nsid: u32, what: &str) -> Result {
        run(Command::identify(cns, nsid, self.buf.dma_handle()), what)?;
        self.buf.read_into(&mut self.page[..])
    }

    /// The active namespace IDs, in increasing order.
    pub(crate) fn active_list(&mut self, run: Run<'_>) -> Result<KVec<u32>> {
        self.identify(run, Cns::ActiveNsList, 0, "Identify Active Namespace List")?;
        let mut nsids = KVec::new();
        for nsid in active_namespaces(&self.page).take(MAX_NAMESPACES) {
            nsids.push(nsid, GFP_KERNEL)?;
        }
        Ok(nsids)
    }

    /// Identifies namespace `nsid` (a failure or an unusable namespace
    /// is reported). `ETIMEDOUT` if the controller stopped answering.
    pub(crate) fn namespace(&mut self, run: Run<'_>, nsid: u32) -> Result<Found> {
        match self.identify(run, Cns::Namespace, nsid, "Identify Namespace") {
            Ok(()) => {}
            Err(e) if e == etimedout() => return Err(e),
            Err(e) => {
                dev_warn!(
                    &self.pdev,
                    "namespace {nsid} skipped: Identify failed ({e:?})\n"
                );
                return Ok(Found::Failed);
            }
        }
        let ns = IdentifyNamespace::parse(&self.page);
        let lba_shift = match ns.usable_lba(PAGE_SHIFT) {
            Ok(shift) => shift,
            Err(e) => {
                dev_warn!(&self.pdev, "namespace {nsid} skipped: {e}\n");
                return Ok(Found::Unusable);
            }
        };
        let ids = self.namespace_ids(run, nsid, &ns)?;
        Ok(Found::Usable(Namespace {
            nsid,
            blocks: ns.size_blocks(),
            lba_shift,
            write_sizes: ns.write_sizes(),
            ids,
        }))
    }

    /// The identifiers of namespace `nsid`, whose Identify Namespace data
    /// is `ns`: from its Namespace Identification Descriptor list where
    /// the controller has one, else (or for what the list lacks) from
    /// Identify Namespace, as the C driver takes them. A list that cannot
    /// be read is reported and done without.
    fn namespace_ids(
        &mut self,
        run: Run<'_>,
        nsid: u32,
        ns: &IdentifyNamespace,
    ) -> Result<NamespaceIds> {
        let mut ids = NamespaceIds::default();
        if NamespaceIds::has_descriptor_list(self.vs) {
            match self.identify(run, Cns::NsDescriptors, nsid, "Identify Descriptor List") {
                Ok(()) => {
                    let (found, bad) = NamespaceIds::from_descriptors(&self.page[..]);
                    if let Some(bad) = bad {
                        dev_warn!(&self.pdev, "namespace {nsid}: {bad}\n");
                    }
                    ids = found;
                }
                Err(e) if e == etimedout() => return Err(e),
                Err(e) => dev_warn!(
                    &self.pdev,
                    "namespace {nsid}: no identification descriptors ({e:?})\n"
                ),
            }
        }
        ids.fill_from_identify(self.vs, ns.eui64(), ns.nguid());
        Ok(ids)
    }
}

/// What identifying a namespace found.
pub(crate) enum Found {
    /// A namespace that can back a disk.
    Usable(Namespace),
    /// One that cannot (inactive, unsupported format).
    Unusable,
    /// Identify failed: nothing is known (a rescan keeps its disk).
    Failed,
}

/// What a namespace's disk is made from, beyond the namespace.
pub(crate) struct DiskParams {
    pub(crate) pdev: PciDevice,
    pub(crate) id: IdentifyController,
    /// The NVM Command Set limits (all zero if the controller has none).
    pub(crate) nvm: IdentifyControllerNvm,
    pub(crate) cap: Cap,
    /// The memory page size used with the controller, as a shift.
    pub(crate) page_shift: u32,
    /// The largest DMA mapping that works well.
    pub(crate) dma_limit: usize,
    /// The controller number the disks are named after.
    pub(crate) number: u32,
    /// The sysfs attribute groups of every disk.
    pub(crate) groups: &'static DiskGroups<Ctrl>,
    /// Registers a namespace's generic character device.
    pub(crate) register_generic: generic::RegisterFn,
}

/// A namespace's disk and its generic character device (none if it could
/// not be registered, which was reported). Dropping it removes the
/// device (no new opens; open files reach the controller through its
/// management handle), then the disk, waiting for its I/O.
pub(crate) struct NsDevices {
    _generic: Option<MiscDevice<Generic>>,
    disk: Disk<Ctrl>,
}

impl core::ops::Deref for NsDevices {
    type Target = Disk<Ctrl>;

    fn deref(&self) -> &Disk<Ctrl> {
        &self.disk
    }
}

/// The disks of a controller's namespaces, or `None` once the controller
/// is being removed.
type DiskList = Option<KVec<Arc<NsDevices>>>;

/// The namespaces a controller serves as disks, and their rescan.
#[pin_data]
pub(crate) struct Namespaces {
    params: DiskParams,
    regs: Arc<Registers>,
    admin: Arc<AdminQueue>,
    set: Arc<TagSet<Ctrl>>,
    mgmt: Arc<Handle>,
    /// Held for a whole rescan, so one runs at a time and remove waits.
    #[pin]
    disks: Mutex<DiskList>,
}

impl Namespaces {
    /// Adds a disk for each of `namespaces` (one that cannot be added is
    /// reported and left out); their ioctls go through `mgmt`.
    pub(crate) fn new(
        params: DiskParams,
        regs: Arc<Registers>,
        admin: Arc<AdminQueue>,
        set: Arc<TagSet<Ctrl>>,
        mgmt: Arc<Handle>,
        namespaces: &[Namespace],
    ) -> Result<Arc<Self>> {
        let this = Arc::pin_init(
            pin_init!(Self {
                params,
                regs,
                admin,
                set,
                mgmt,
                disks <- new_mutex!(Some(KVec::new()), "rsnvme_namespaces"),
            }),
            GFP_KERNEL,
        )?;
        {
            let mut guard = this.disks.lock();
            if let Some(disks) = Option::as_mut(&mut guard) {
                for ns in namespaces {
                    if let Some(disk) = this.add_disk(ns) {
                        disks.push(disk, GFP_KERNEL)?;
                    }
                }
            }
        }
        Ok(this)
    }

    /// The disk of namespace `ns` and its generic device; `None`
    /// (reported) if the disk cannot be added.
    fn add_disk(&self, ns: &Namespace) -> Option<Arc<NsDevices>> {
        let p = &self.params;
        let limits = queue_limits(&p.id, &p.nvm, p.cap, p.page_shift, ns, p.dma_limit);
        let name = format_args!("rsnvme{}n{}", p.number, ns.nsid);
        let data = match Arc::new(NsDisk::new(*ns, &p.id, self.mgmt.clone()), GFP_KERNEL) {
            Ok(data) => data,
            Err(_) => {
                dev_warn!(&p.pdev, "namespace {}: no memory for its disk\n", ns.nsid);
                return None;
            }
        };
        let groups = p.groups;
        match Disk::add(
            &self.set,
            &**self.set.data(),
            data,
            &limits,
            name,
            ns.sectors(),
            &p.pdev,
            groups,
        ) {
            Ok(disk) => match Arc::new(
                NsDevices {
                    _generic: self.add_generic(ns),
                    disk,
                },
                GFP_KERNEL,
            ) {
                Ok(disk) => Some(disk),
                Err(_) => {
                    dev_warn!(&p.pdev, "namespace {}: no memory for its disk\n", ns.nsid);
                    None
                }
            },
            Err(e) => {
                dev_warn!(&p.pdev, "namespace {}: cannot add disk: {e:?}\n", ns.nsid);
                None
            }
        }
    }

    /// The generic character device `/dev/rsng<N>n<nsid>` of namespace
    /// `ns`; `None` (reported) if it cannot be registered.
    fn add_generic(&self, ns: &Namespace) -> Option<MiscDevice<Generic>> {
        let p = &self.params;
        let registered = Arc::new(Generic::new(*ns, self.mgmt.clone()), GFP_KERNEL)
            .map_err(Error::from)
            .and_then(|data| {
                (p.register_generic)(&p.pdev, format_args!("rsng{}n{}", p.number, ns.nsid), data)
            });
        match registered {
            Ok(dev) => Some(dev),
            Err(e) => {
                dev_warn!(
                    &p.pdev,
                    "namespace {}: cannot add generic device: {e:?}\n",
                    ns.nsid
                );
                None
            }
        }
    }

    /// Flushes the volatile write cache of every disk (before a shutdown),
    /// as flush requests on their queues, without holding the list while
    /// they run. `EIO` if one failed; `ENOMEM` if the disks could not be
    /// listed.
    pub(crate) fn flush(&self) -> Result {
        let mut disks = KVec::new();
        if let Some(list) = self.disks.lock().as_ref() {
            for disk in list.iter() {
                disks.push(disk.clone(), GFP_KERNEL)?;
            }
        }
        let mut result = Ok(());
        for disk in disks.iter() {
            if let Err(e) = disk.flush() {
                dev_warn!(
                    self.regs.pdev(),
                    "namespace {}: flush failed: {e:?}\n",
                    disk.data().namespace().nsid
                );
                result = Err(EIO);
            }
        }
        result
    }

    /// Takes the disks away for good (remove), waiting for a rescan in
    /// progress; dropping them removes them, waiting for their I/O.
    pub(crate) fn take_all(&self) -> KVec<Arc<NsDevices>> {
        self.disks.lock().take().unwrap_or_default()
    }

    /// Rescans the namespaces (`NVME_IOCTL_RESCAN`, a Namespace Attribute
    /// Changed event): disks for namespaces that appeared, none for those
    /// that went away or became unusable, a new capacity for those that
    /// were resized; a namespace whose block size or identifiers changed
    /// is another namespace: its disk is removed and added again. The
    /// Identify commands are admin requests: during a reset they wait for
    /// it; one the reset takes back fails the rescan, which then changes
    /// nothing; a timeout resets the controller.
    pub(crate) fn rescan(&self) -> Result {
        let mut guard = self.disks.lock();
        if guard.is_none() {
            return Err(ENODEV);
        }
        let pdev = &self.params.pdev;
        // Set when a command could not run at all (taken back by a reset,
        // the controller dead or removed): then nothing is changed.
        let stopped = Cell::new(None);
        let run = |cmd: Command, what: &str| -> Result {
            let cqe = self
                .admin
                .execute(cmd)
                .inspect_err(|&e| stopped.set(Some(e)))?;
            if cqe.status().is_success() {
                Ok(())
            } else {
                dev_warn!(pdev, "rescan: {what} failed: {}\n", cqe.status());
                Err(EIO)
            }
        };
        let mut identifier = Identifier::new(&self.regs)?;
        let nsids = identifier.active_list(&run)?;
        // Usable namespaces, and those Identify failed for (kept as they
        // are).
        let mut found = KVec::new();
        let mut unknown = KVec::new();
        for &nsid in nsids.iter() {
            match identifier.namespace(&run, nsid)? {
                Found::Usable(ns) => found.push(ns, GFP_KERNEL)?,
                Found::Unusable => {}
                Found::Failed => unknown.push(nsid, GFP_KERNEL)?,
            }
            if let Some(e) = stopped.get() {
                return Err(e);
            }
        }

        if fault::rescan_waits() {
            // The list is let go meanwhile, as a suspend reads it.
            drop(guard);
            self.wait_until_not_live();
            guard = self.disks.lock();
        }
        // `Option::as_mut` through the guard (7.3's guard has a pinning
        // `as_mut` of its own).
        let disks = Option::as_mut(&mut guard).ok_or(ENODEV)?;

        // Disks whose namespace is gone, unusable or another one now go;
        // the others are kept for the new list. Room for every list is
        // taken before the old one is, so no push below allocates (and
        // none fails).
        let mut kept = KVec::with_capacity(disks.len(), GFP_KERNEL)?;
        let mut gone = KVec::with_capacity(disks.len(), GFP_KERNEL)?;
        let mut new = KVec::with_capacity(found.len() + unknown.len(), GFP_KERNEL)?;
        for disk in core::mem::take(disks) {
            let old = *disk.data().namespace();
            let same = found.iter().any(|ns| {
                ns.nsid == old.nsid && ns.lba_shift == old.lba_shift && ns.ids == old.ids
            });
            if unknown.contains(&old.nsid) {
                new.push(disk, GFP_KERNEL)?;
            } else if same {
                kept.push(Some(disk), GFP_KERNEL)?;
            } else {
                dev_info!(pdev, "rescan: namespace {} removed\n", old.nsid);
                gone.push(disk, GFP_KERNEL)?;
            }
        }
        // Removed (waiting for their I/O) before a namespace with the same
        // ID gets a disk of the same name.
        drop(gone);

        for ns in found.iter() {
            let slot = kept.iter_mut().find(|d| {
                d.as_ref()
                    .is_some_and(|d| d.data().namespace().nsid == ns.nsid)
            });
            if let Some(disk) = slot.and_then(Option::take) {
                if disk.capacity() != ns.sectors() {
                    disk.set_capacity(ns.sectors());
                    dev_info!(
                        pdev,
                        "rescan: namespace {} resized to {} blocks of {} bytes\n",
                        ns.nsid,
                        ns.blocks,
                        1u32 << ns.lba_shift
                    );
                }
                new.push(disk, GFP_KERNEL)?;
            } else if let Some(disk) = self.add_disk(ns) {
                dev_info!(
                    pdev,
                    "rescan: namespace {} added: {} blocks of {} bytes\n",
                    ns.nsid,
                    ns.blocks,
                    1u32 << ns.lba_shift
                );
                new.push(disk, GFP_KERNEL)?;
            }
        }
        *disks = new;
        Ok(())
    }
}

impl Namespaces {
    /// Fault injection ([`fault::rescan_waits`]): waits, at most 30 s,
    /// until the controller is no longer live (a reset or a suspend has
    /// begun), so that the disks change while it runs. The caller does
    /// not hold the list of disks: a suspend lists them first.
    fn wait_until_not_live(&self) {
        let pdev = &self.params.pdev;
        let io = self.set.data();
        dev_info!(pdev, "rescan: waiting for a reset or suspend (injected)\n");
        let deadline = Deadline::after_ms(30_000);
        while io.state_name() == State::Live.name() && !deadline.expired() {
            msleep(10);
        }
        dev_info!(
            pdev,
            "rescan: going on with the controller {} (injected)\n",
            io.state_name()
        );
    }

    /// The disk of namespace `nsid`, if it has one.
    fn disk(&self, nsid: u32) -> Option<Arc<NsDevices>> {
        self.disks
            .lock()
            .as_ref()?
            .iter()
            .find(|d| d.data().namespace().nsid == nsid)
            .cloned()
    }
}

impl NamespaceSet for Namespaces {
    fn user_io(&self, cmd: Command, data: Option<UserData>, timeout_ms: u32) -> Result<Completion> {
        // The disk is held, not the list: a rescan or remove meanwhile
        // removes it once the command is done.
        let disk = self.disk(cmd.nsid()).ok_or(EINVAL)?;
        self.set
            .data()
            .user_command(disk.requests(), cmd, data, timeout_ms)
    }

    fn uring_io(
        &self,
        cmd: Command,
        data: Option<UserData>,
        vectored: bool,
        timeout_ms: u32,
        uring: UringCmd<'_>,
    ) -> Result<Queued> {
        // The disk is held while the command is sent; then its request
        // holds the disk's queue, whose removal waits for it.
        let disk = self.disk(cmd.nsid()).ok_or(EINVAL)?;
        self.set
            .data()
            .uring_command(disk.requests(), cmd, data, vectored, timeout_ms, uring)
    }

    fn rescan(&self) -> Result {
        Namespaces::rescan(self)
    }
}

/// Queue limits for namespace `ns` of a controller that reported `id`
/// and `nvm`. `dma_limit` is the largest mapping the DMA layer handles
/// well (bounce buffers make it small).
fn queue_limits(
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
