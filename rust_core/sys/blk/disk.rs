// SPDX-License-Identifier: GPL-2.0

//! A tag set's disks: the gendisk, its block device operations and its
//! sysfs attribute groups.

use super::*;

/// The block device operations of a `T` tag set's disks: the owner (the
/// module stays loaded while a disk is open), the driver's ioctls, and the
/// release of the disk's data once the gendisk itself is freed.
///
/// A disk's `private_data` holds an `Arc<T::Disk>` from [`Disk::add`]
/// until `free_disk`: an open block device keeps its gendisk, so an ioctl
/// on a file opened before the disk was deleted still finds the data.
struct DiskOps<T: Operations>(PhantomData<T>);

// Every member is an `unsafe` callback of the C side or its helper.
#[allow(unsafe_code)]
impl<T: Operations> DiskOps<T> {
    const TABLE: bindings::block_device_operations = {
        // SAFETY: All zeroes is a valid table with no callbacks.
        let mut fops: bindings::block_device_operations =
            unsafe { MaybeUninit::zeroed().assume_init() };
        fops.owner = (&raw const __this_module).cast_mut();
        fops.ioctl = Some(Self::ioctl);
        fops.free_disk = Some(Self::free_disk);
        fops
    };

    /// The data of `disk`.
    ///
    /// # Safety
    ///
    /// `disk` must be a live gendisk that [`Disk::add`] added for `T`.
    unsafe fn data<'a>(disk: *const bindings::gendisk) -> &'a T::Disk {
        // SAFETY: By the requirements `private_data` holds the
        // `Arc<T::Disk>` that `Disk::add` leaked, released only by
        // `free_disk` once the gendisk is no longer used.
        unsafe { &*(*disk).private_data.cast_const().cast::<T::Disk>() }
    }

    /// `block_device_operations.ioctl`: the ioctls the block layer does
    /// not handle itself.
    ///
    /// # Safety
    ///
    /// Called by the block layer for an open block device of a disk
    /// added by [`Disk::add`] for `T`.
    unsafe extern "C" fn ioctl(
        bdev: *mut bindings::block_device,
        _mode: bindings::blk_mode_t,
        cmd: c_uint,
        arg: kernel::ffi::c_ulong,
    ) -> c_int {
        // SAFETY: The open block device holds a reference to its disk,
        // one of `T`'s by the requirements. Its partition number, in the
        // low byte of its flags (`bdev_partno`, inline in C), never
        // changes.
        let (data, partno) = unsafe {
            let flags = addr_of!((*bdev).__bd_flags.counter).read_volatile();
            (Self::data((*bdev).bd_disk), flags & 0xff)
        };
        match data.ioctl(cmd, arg, partno != 0) {
            Ok(v) => c_int::try_from(v).unwrap_or(c_int::MAX),
            Err(e) => e.to_errno(),
        }
    }

    /// `block_device_operations.free_disk`: drops the disk's data.
    ///
    /// # Safety
    ///
    /// Called once by `disk_release` for a disk [`Disk::add`] added.
    unsafe extern "C" fn free_disk(disk: *mut bindings::gendisk) {
        // SAFETY: `private_data` holds the `Arc` that `Disk::add` leaked;
        // nothing uses the gendisk any more.
        drop(unsafe { Arc::from_raw((*disk).private_data.cast_const().cast::<T::Disk>()) });
    }

    /// The data of the disk whose device is `dev`.
    ///
    /// # Safety
    ///
    /// `dev` must be the device of a live disk added by [`Disk::add`] for
    /// `T` (`disk_to_dev`).
    unsafe fn of_device<'a>(dev: *mut bindings::device) -> &'a T::Disk {
        // SAFETY: A disk's device is the `bd_device` of its whole-disk
        // block device (`dev_to_bdev`), which names the disk.
        unsafe {
            let bdev = dev
                .byte_sub(core::mem::offset_of!(bindings::block_device, bd_device))
                .cast::<bindings::block_device>();
            Self::data((*bdev).bd_disk)
        }
    }

    /// `show` of attribute `I` of a disk.
    ///
    /// # Safety
    ///
    /// Called by sysfs for an attribute of [`DiskGroups<T>`] on a disk
    /// added with them, with a page buffer.
    unsafe extern "C" fn show<const I: usize>(
        dev: *mut bindings::device,
        _attr: *mut bindings::device_attribute,
        buf: *mut kernel::ffi::c_char,
    ) -> isize {
        // SAFETY: The attribute exists only while the disk is added
        // (`del_gendisk` removes it, waiting for this call), so the disk
        // and its data are live.
        let data = unsafe { Self::of_device(dev) };
        // SAFETY: `buf` is this `show`'s page buffer.
        unsafe { crate::sys::sysfs::emit::<T::Disk, I>(data, buf) }
    }

    /// `attribute_group.is_visible` of [`DiskGroups<T>`]: asks the disk's
    /// data whether attribute number `n` exists.
    ///
    /// # Safety
    ///
    /// Called by sysfs while `device_add_disk` creates the groups of a
    /// disk that [`Disk::add`] adds for `T`.
    unsafe extern "C" fn is_visible(
        kobj: *mut bindings::kobject,
        attr: *mut bindings::attribute,
        n: c_int,
    ) -> bindings::umode_t {
        // SAFETY: The kobject is the `kobj` of the disk's device.
        let data = unsafe {
            let dev = kobj
                .byte_sub(core::mem::offset_of!(bindings::device, kobj))
                .cast::<bindings::device>();
            Self::of_device(dev)
        };
        match usize::try_from(n) {
            // SAFETY: `attr` is the attribute sysfs asks about.
            Ok(index) if data.visible(index) => unsafe { (*attr).mode },
            _ => 0,
        }
    }
}

/// Builds the read-only (0444) attribute `name` of the disks of a `T` tag
/// set, attribute number `I` of `T::Disk`'s, for a [`DiskGroups<T>`].
pub(crate) const fn disk_attribute<T: Operations, const I: usize>(
    name: &'static CStr,
) -> bindings::device_attribute {
    crate::sys::sysfs::read_only(name, DiskOps::<T>::show::<I>)
}

/// An attribute group of `attrs` (a NULL-terminated array whose entry
/// number `I` is [`disk_attribute::<T, I>`]) whose attributes `T::Disk`
/// may hide ([`Attributes::visible`]).
pub(crate) const fn disk_group<T: Operations>(
    attrs: *const *const bindings::attribute,
) -> bindings::attribute_group {
    let mut group = crate::sys::sysfs::group(attrs);
    compat::set_is_visible(&mut group, DiskOps::<T>::is_visible);
    group
}

/// The sysfs attribute groups of a `T` tag set's disks, which come and go
/// with each disk.
///
/// # Invariants
///
/// `groups` is a NULL-terminated array of groups made by
/// [`disk_group::<T>`] whose attributes at index `I` are
/// [`disk_attribute::<T, I>`], all living as long as the module.
pub(crate) struct DiskGroups<T: Operations> {
    groups: *const *const bindings::attribute_group,
    _p: PhantomData<T>,
}

#[allow(unsafe_code)]
// SAFETY: The groups are read-only data for the kernel.
unsafe impl<T: Operations> Sync for DiskGroups<T> {}

impl<T: Operations> DiskGroups<T> {
    /// Wraps `groups`.
    ///
    /// # Safety
    ///
    /// `groups` must satisfy the type invariant.
    #[allow(unsafe_code)]
    pub(crate) const unsafe fn new(groups: *const *const bindings::attribute_group) -> Self {
        // INVARIANT: By the requirements.
        Self {
            groups,
            _p: PhantomData,
        }
    }
}

/// Lockdep class of the disks' queues.
#[allow(unsafe_code)]
static DISK_KEY: Static<UnsafeCell<bindings::lock_class_key>> =
    // SAFETY: A lock class key is zero-initialised static data.
    Static(UnsafeCell::new(unsafe {
            MaybeUninit::zeroed().assume_init()
        }));

/// A registered disk; removed (after its I/O drains) on drop.
///
/// # Invariants
///
/// `disk` was allocated by `__blk_mq_alloc_disk` and added with
/// `device_add_disk`; it is deleted and put on drop.
pub(crate) struct Disk<T: Operations> {
    disk: NonNull<bindings::gendisk>,
    /// Read by requests through `queuedata` until the disk is gone.
    data: Arc<T::Disk>,
    /// The capacity last set, in 512-byte sectors.
    sectors: AtomicU64,
    /// The tag set the disk's queue uses, freed only after the disk.
    _set: Arc<TagSet<T>>,
}

#[allow(unsafe_code)]
// SAFETY: The gendisk is reference counted and its functions may be called
// from any thread.
unsafe impl<T: Operations> Send for Disk<T> {}
#[allow(unsafe_code)]
// SAFETY: `&Disk` gives the data (`Sync`), an atomic and
// `set_capacity_and_notify`, which takes the block device's size lock.
unsafe impl<T: Operations> Sync for Disk<T> {}

impl<T: Operations> Disk<T> {
    /// Creates and registers a disk named `name` of `sectors` 512-byte
    /// sectors on `set`, with `parent` as its parent device and `groups`
    /// as its sysfs attributes. Its queue joins the set through `gate`,
    /// quiesced if the set's queues are (their unquiesce lifts it too).
    #[allow(unsafe_code, clippy::too_many_arguments)]
    pub(crate) fn add(
        set: &Arc<TagSet<T>>,
        gate: &dyn QuiesceGate,
        data: Arc<T::Disk>,
        limits: &Limits,
        name: fmt::Arguments<'_>,
        sectors: u64,
        parent: &PciDevice,
        groups: &'static DiskGroups<T>,
    ) -> Result<Self> {
        let mut lim = limits.to_raw();
        let queuedata = core::ptr::from_ref::<T::Disk>(&data).cast_mut().cast();
        let mut disk = core::ptr::null_mut();
        gate.settled(&mut |quiesced| {
            // SAFETY: `set` is allocated; `lim` is read during the call;
            // the key is static; `data` outlives the queue (held below).
            disk = unsafe {
                bindings::__blk_mq_alloc_disk(set.as_ptr(), &mut lim, queuedata, DISK_KEY.0.get())
            };
            if quiesced && !disk.is_null() && (disk as usize) < (-4095isize) as usize {
                // SAFETY: A fresh gendisk, with its queue.
                unsafe { bindings::blk_mq_quiesce_queue((*disk).queue) };
            }
        });
        if disk.is_null() || (disk as usize) >= (-4095isize) as usize {
            return Err(Error::from_errno(disk as isize as c_int));
        }
        // SAFETY: `disk` is a fresh gendisk owned here.
        unsafe {
            (*disk).fops = &DiskOps::<T>::TABLE;
            let mut w = NameWriter {
                buf: &mut (*disk).disk_name,
                len: 0,
            };
            if fmt::write(&mut w, name).is_err() {
                bindings::put_disk(disk);
                return Err(EINVAL);
            }
            bindings::set_capacity(disk, sectors);
            // Released by `free_disk` once the disk was added, else below.
            let private = Arc::into_raw(data.clone());
            (*disk).private_data = private.cast_mut().cast();
            // The groups are `T`'s, by the type invariant of `DiskGroups`.
            let ret = bindings::device_add_disk(parent.as_device(), disk, groups.groups.cast_mut());
            if ret != 0 {
                // Not added: `put_disk` does not call `free_disk`.
                bindings::put_disk(disk);
                drop(Arc::from_raw(private));
                return Err(Error::from_errno(ret));
            }
        }
        // INVARIANT: Allocated and added above.
        Ok(Self {
            // SAFETY: Checked non-null above.
            disk: unsafe { NonNull::new_unchecked(disk) },
            data,
            sectors: AtomicU64::new(sectors),
            _set: set.clone(),
        })
    }
}

impl<T: Operations> Disk<T> {
    /// Where the driver allocates requests of its own on the disk's queue.
    #[allow(unsafe_code)]
    pub(crate) fn requests(&self) -> super::Requests<'_, T> {
        // SAFETY: An added disk's queue is a queue of `T`'s tag set and
        // lives as long as the disk.
        unsafe { super::Requests::from_raw((*self.disk.as_ptr()).queue) }
    }

    /// The disk's data.
    pub(crate) fn data(&self) -> &Arc<T::Disk> {
        &self.data
    }

    /// The capacity last set, in 512-byte sectors.
    pub(crate) fn capacity(&self) -> u64 {
        self.sectors.load(Ordering::Relaxed)
    }

    /// Flushes the disk's volatile write cache, as a flush request on its
    /// queue that the driver serves like any other (`blkdev_issue_flush`:
    /// nothing is sent if the disk has no write cache), and waits for it.
    #[allow(unsafe_code)]
    pub(crate) fn flush(&self) -> Result {
        // SAFETY: The disk is added, by the type invariant, so its whole
        // block device `part0` exists until it is deleted on drop.
        let ret = unsafe { bindings::blkdev_issue_flush((*self.disk.as_ptr()).part0) };
        if ret == 0 {
            Ok(())
        } else {
            Err(Error::from_errno(ret))
        }
    }

    /// Changes the capacity to `sectors` 512-byte sectors and tells user
    /// space (a `RESIZE=1` change uevent), as a revalidation does.
    #[allow(unsafe_code)]
    pub(crate) fn set_capacity(&self, sectors: u64) {
        self.sectors.store(sectors, Ordering::Relaxed);
        // SAFETY: The disk is added, by the type invariant.
        unsafe { bindings::set_capacity_and_notify(self.disk.as_ptr(), sectors) };
    }
}

impl<T: Operations> Drop for Disk<T> {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // SAFETY: By the type invariant the disk was added; `del_gendisk`
        // waits for its in-flight requests, then it is put once.
        unsafe {
            bindings::del_gendisk(self.disk.as_ptr());
            bindings::put_disk(self.disk.as_ptr());
        }
    }
}
