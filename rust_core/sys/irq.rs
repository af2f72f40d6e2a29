// SPDX-License-Identifier: GPL-2.0

//! PCI interrupt vectors and their handlers (`pci_alloc_irq_vectors` in
//! include/linux/pci.h, `request_irq` in include/linux/interrupt.h).
//!
//! A handler is registered together with a counted reference to the data
//! it uses and one to the vectors it is on, and dropping the
//! [`IrqRegistration`] unregisters it (waiting for a running handler to
//! finish) before either reference goes away: the handler's data outlives
//! `free_irq`, and the vectors are freed (`pci_free_irq_vectors`) only
//! once the last registration on them is gone, in whatever order their
//! owners drop them.

use super::bindings;
use super::compat;
use super::pci::PciDevice;
use core::ffi::{c_int, c_void, CStr};
use kernel::alloc::flags::GFP_KERNEL;
use kernel::error::{to_result, Error, Result};
use kernel::sync::Arc;

pub(crate) use super::irq_types::{IrqHandler, IrqKind, IrqReturn, IrqVectors};

/// Interrupt vectors allocated for a PCI device; freed when dropped.
///
/// # Invariants
///
/// `pci_alloc_irq_vectors_affinity` allocated `count` vectors for `pdev`:
/// only [`IrqVectors::alloc`] makes one.
pub(super) struct Allocation {
    pub(super) pdev: PciDevice,
    pub(super) count: u32,
}

impl Drop for Allocation {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        // Freeing them may change the command register (INTx masking):
        // under the device's control lock.
        let _control = self.pdev.control();
        // SAFETY: The vectors were allocated for this device (type
        // invariant), and no handler is left on them: every
        // `IrqRegistration` holds a reference to this allocation and frees
        // its handler before letting it go.
        unsafe { bindings::pci_free_irq_vectors(self.pdev.as_raw()) };
    }
}

impl IrqVectors {
    /// Allocates between `min` and `max` vectors, trying MSI-X, then MSI,
    /// then INTx. With `spread = Some(pre)`, all vectors but the first
    /// `pre` are spread over the CPUs (managed affinity), so that each I/O
    /// queue's vector fires on the CPUs that use it.
    #[allow(unsafe_code)]
    pub(crate) fn alloc(pdev: &PciDevice, min: u32, max: u32, spread: Option<u32>) -> Result<Self> {
        let mut affd = bindings::irq_affinity::default();
        let (flags, affd) = match spread {
            Some(pre) => {
                affd.pre_vectors = pre;
                (
                    bindings::RSNVME_PCI_IRQ_ALL_TYPES | bindings::RSNVME_PCI_IRQ_AFFINITY,
                    core::ptr::from_mut(&mut affd),
                )
            }
            None => (bindings::RSNVME_PCI_IRQ_ALL_TYPES, core::ptr::null_mut()),
        };
        // Enabling MSI or MSI-X masks INTx in the command register: under
        // the device's control lock.
        let control = pdev.control();
        // SAFETY: The device is valid by `PciDevice`'s invariant; `affd` is
        // null (no spreading) or points to a descriptor read during the
        // call.
        let ret = unsafe {
            bindings::pci_alloc_irq_vectors_affinity(pdev.as_raw(), min, max, flags, affd)
        };
        drop(control);
        let count = u32::try_from(ret).map_err(|_| Error::from_errno(ret))?;
        // INVARIANT: The call succeeded with `count` vectors.
        let alloc = Allocation {
            pdev: pdev.clone(),
            count,
        };
        Ok(Self {
            alloc: Arc::new(alloc, GFP_KERNEL)?,
        })
    }

    /// The Linux IRQ number of vector `index`.
    #[allow(unsafe_code)]
    fn irq(&self, index: u32) -> Result<c_int> {
        // SAFETY: The device is valid; `pci_irq_vector` checks `index`.
        let irq = unsafe { bindings::pci_irq_vector(self.alloc.pdev.as_raw(), index) };
        to_result(irq).map(|()| irq)
    }
}

/// A registered interrupt handler; freed on drop, before its data and the
/// vectors it is on can go (its `Drop` runs before its fields are dropped,
/// whatever their order).
///
/// # Invariants
///
/// `handler` is registered on `irq`, a vector of `_vectors`, with
/// `request_threaded_irq`, with its address as the cookie, until `drop`.
pub(crate) struct IrqRegistration<T: IrqHandler> {
    irq: c_int,
    handler: Arc<T>,
    _vectors: Arc<Allocation>,
}

impl<T: IrqHandler> IrqRegistration<T> {
    /// Registers `handler` for vector `index` of `vectors`. Handlers are
    /// registered as shared: an INTx line may be shared with other devices,
    /// and with a single vector the admin and I/O queues share it.
    #[allow(unsafe_code)]
    pub(crate) fn request(
        vectors: &IrqVectors,
        index: u32,
        handler: Arc<T>,
        name: &'static CStr,
    ) -> Result<Self> {
        let irq = vectors.irq(index)?;
        // IRQF_SHARED is a small flag constant; it fits any width.
        let flags = bindings::IRQF_SHARED as kernel::ffi::c_ulong;
        let cookie = core::ptr::from_ref::<T>(&handler)
            .cast_mut()
            .cast::<c_void>();
        // SAFETY: `trampoline::<T>` accepts the cookie passed here, which
        // points to the `T` in `handler`; `handler` keeps it alive until
        // `drop` frees the IRQ. `name` is static.
        to_result(unsafe {
            bindings::request_threaded_irq(
                u32::try_from(irq)?,
                Some(trampoline::<T>),
                None,
                flags,
                compat::char_ptr(name),
                cookie,
            )
        })?;
        // INVARIANT: The handler was registered with `cookie` as its data,
        // on a vector of `_vectors`.
        Ok(Self {
            irq,
            handler,
            _vectors: vectors.alloc.clone(),
        })
    }
}

impl<T: IrqHandler> Drop for IrqRegistration<T> {
    #[allow(unsafe_code)]
    fn drop(&mut self) {
        let cookie = core::ptr::from_ref::<T>(&self.handler)
            .cast_mut()
            .cast::<c_void>();
        // SAFETY: By the type invariant the handler is registered on `irq`
        // with `cookie`, and `_vectors` keeps the vector allocated.
        // `free_irq` waits for a running handler, so `handler` is not used
        // after this returns; only then are `handler` and `_vectors`
        // dropped.
        unsafe { bindings::free_irq(self.irq as u32, cookie) };
    }
}

/// The C-callable interrupt handler for `T`.
///
/// # Safety
///
/// `data` must be the cookie of a live [`IrqRegistration<T>`].
#[allow(unsafe_code)]
unsafe extern "C" fn trampoline<T: IrqHandler>(
    _irq: c_int,
    data: *mut c_void,
) -> bindings::irqreturn_t {
    // SAFETY: By this function's safety requirements `data` points to a `T`
    // that the registration keeps alive; only shared access is made.
    let handler = unsafe { &*data.cast_const().cast::<T>() };
    handler.handle_irq().raw()
}
