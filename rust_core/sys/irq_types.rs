// SPDX-License-Identifier: GPL-2.0

//! The safe half of the interrupt abstraction (see `irq.rs`): the trait a
//! driver implements to handle interrupts, and the types it sees.

#![deny(unsafe_code)]

use super::bindings;

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
