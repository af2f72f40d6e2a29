// SPDX-License-Identifier: GPL-2.0

//! The safe half of the interrupt abstraction (see `irq.rs`): the trait a
//! driver implements to handle interrupts, and the types it sees.

#![deny(unsafe_code)]

use super::bindings;
use super::irq::Allocation;
use kernel::sync::Arc;

/// The kind of interrupts a device got.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum IrqKind {
    /// MSI-X: one message per vector.
    MsiX,
    /// MSI.
    Msi,
    /// The legacy INTx line, possibly shared with other devices.
    Intx,
}

/// What an interrupt handler reports.
pub(crate) enum IrqReturn {
    /// The interrupt was not for this handler.
    None,
    /// The interrupt was handled.
    Handled,
}

impl IrqReturn {
    /// The C value.
    pub(super) fn raw(self) -> bindings::irqreturn_t {
        match self {
            Self::None => bindings::irqreturn_IRQ_NONE,
            Self::Handled => bindings::irqreturn_IRQ_HANDLED,
        }
    }
}

/// Code run in hard interrupt context when a vector fires.
pub(crate) trait IrqHandler: Send + Sync {
    /// Handles one interrupt; must not sleep.
    fn handle_irq(&self) -> IrqReturn;
}

/// Interrupt vectors allocated for a PCI device; freed once this and every
/// [`IrqRegistration`](super::irq::IrqRegistration) on them are dropped.
pub(crate) struct IrqVectors {
    pub(super) alloc: Arc<Allocation>,
}

impl IrqVectors {
    /// Number of vectors allocated.
    pub(crate) fn count(&self) -> u32 {
        self.alloc.count
    }

    /// The kind of interrupts in use.
    pub(crate) fn kind(&self) -> IrqKind {
        let pdev = &self.alloc.pdev;
        if pdev.msix_enabled() {
            IrqKind::MsiX
        } else if pdev.msi_enabled() {
            IrqKind::Msi
        } else {
            IrqKind::Intx
        }
    }
}
