// SPDX-License-Identifier: GPL-2.0

//! Asynchronous events (NVMe Base Specification 2.0, "Asynchronous Event
//! Request command"): what the completion of an Asynchronous Event
//! Request reports, and the SMART / Health critical warning bits.

use core::fmt;

/// Log Page Identifiers of the pages events name.
pub(crate) const LOG_SMART: u8 = 0x02;
/// Changed Namespace List.
pub(crate) const LOG_CHANGED_NAMESPACES: u8 = 0x04;

/// The SMART / Health critical warnings that raise an event (Asynchronous
/// Event Configuration bits 4:0: spare, temperature, reliability,
/// read-only, volatile memory backup).
const CONFIG_SMART_WARNINGS: u32 = 0x1f;

/// The notices the driver handles, as OAES (Identify Controller) and the
/// Asynchronous Event Configuration both place them: Namespace Attribute
/// Notices.
const NOTICE_NAMESPACE_ATTRIBUTES: u32 = 1 << 8;

/// The Asynchronous Event Configuration to set: the critical warnings,
/// and the notices the controller supports (`oaes`) that the driver
/// handles.
pub(crate) fn event_config(oaes: u32) -> u32 {
    CONFIG_SMART_WARNINGS | (oaes & NOTICE_NAMESPACE_ATTRIBUTES)
}

/// What one Asynchronous Event Request completion (its Dword 0) reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Event(pub(crate) u32);

/// The kinds of events the driver acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum EventKind {
    /// SMART / Health status: a critical warning came on.
    Health,
    /// Notice: Namespace Attribute Changed.
    NamespaceChanged,
    /// Anything else; the log page it names is read to clear it.
    Other,
}

impl Event {
    /// Asynchronous Event Type, bits 2:0.
    pub(crate) fn event_type(self) -> u8 {
        (self.0 & 0x7) as u8
    }

    /// Asynchronous Event Information, bits 15:8.
    pub(crate) fn info(self) -> u8 {
        (self.0 >> 8) as u8
    }

    /// Log Page Identifier to read to clear the event, bits 23:16.
    pub(crate) fn log_page(self) -> u8 {
        (self.0 >> 16) as u8
    }

    /// What the event is about.
    pub(crate) fn kind(self) -> EventKind {
        match (self.event_type(), self.info()) {
            (1, _) => EventKind::Health,
            (2, 0) => EventKind::NamespaceChanged,
            _ => EventKind::Other,
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "type {} info {:#04x} log page {:#04x}",
            self.event_type(),
            self.info(),
            self.log_page()
        )
    }
}

/// The Critical Warning field (byte 0) of the SMART / Health log page,
/// shown as the names of the bits that are set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct CriticalWarning(pub(crate) u8);

impl fmt::Display for CriticalWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const BITS: [&str; 6] = [
            "available spare below threshold",
            "temperature out of range",
            "reliability degraded",
            "read-only",
            "volatile memory backup failed",
            "persistent memory region read-only",
        ];
        write!(f, "{:#04x}", self.0)?;
        let mut sep = ": ";
        for (bit, name) in BITS.iter().enumerate() {
            if self.0 & (1 << bit) != 0 {
                write!(f, "{sep}{name}")?;
                sep = ", ";
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::ToString;

    #[test]
    fn decodes_events() {
        // QEMU's Namespace Attribute Changed: notice, info 0, log 04h.
        let ns = Event(0x0004_0002);
        assert_eq!(ns.kind(), EventKind::NamespaceChanged);
        assert_eq!(ns.log_page(), LOG_CHANGED_NAMESPACES);
        assert_eq!(ns.to_string(), "type 2 info 0x00 log page 0x04");
        // SMART: temperature threshold, log 02h.
        let smart = Event(0x0002_0101);
        assert_eq!(smart.kind(), EventKind::Health);
        assert_eq!((smart.info(), smart.log_page()), (1, LOG_SMART));
        // Firmware activation starting: a notice the driver only clears.
        assert_eq!(Event(0x0003_0102).kind(), EventKind::Other);
        assert_eq!(Event(0x0001_0000).kind(), EventKind::Other);
    }

    #[test]
    fn configures_what_the_controller_has() {
        assert_eq!(event_config(0x100), 0x11f);
        assert_eq!(event_config(0), 0x1f);
        // Firmware activation and others are not asked for.
        assert_eq!(event_config(0x300), 0x11f);
    }

    #[test]
    fn names_warning_bits() {
        assert_eq!(CriticalWarning(0).to_string(), "0x00");
        assert_eq!(
            CriticalWarning(0x03).to_string(),
            "0x03: available spare below threshold, temperature out of range"
        );
        assert_eq!(
            CriticalWarning(0x28).to_string(),
            "0x28: read-only, persistent memory region read-only"
        );
    }
}
