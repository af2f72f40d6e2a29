// SPDX-License-Identifier: GPL-2.0

//! Completion Queue Entries and their status (NVMe Base Specification 2.0,
//! "Completion Queue Entry" and "Status Field Definition").
//!
//! [`Completion`] is the 16-byte entry the controller posts; [`Status`] is its
//! 15-bit status field, and [`StatusKind`] sorts the status codes the driver
//! tells apart into a few classes that map onto kernel errors. The C
//! equivalents are `struct nvme_completion` and the `NVME_SC_*` values in
//! `include/linux/nvme.h`.

use core::fmt;

/// Status Code Type (SCT) values.
mod sct {
    /// Generic Command Status.
    pub(super) const GENERIC: u8 = 0x0;
    /// Media and Data Integrity Errors.
    pub(super) const MEDIA: u8 = 0x2;
    /// Path Related Status.
    pub(super) const PATH: u8 = 0x3;
}

/// Path Related Status codes (SCT 3).
mod path {
    /// Command Aborted By Host.
    pub(super) const HOST_ABORTED: u8 = 0x71;
}

/// Generic Command Status codes (SCT 0).
mod generic {
    /// Successful Completion.
    pub(super) const SUCCESS: u8 = 0x00;
    /// Invalid Command Opcode.
    pub(super) const INVALID_OPCODE: u8 = 0x01;
    /// Invalid Field in Command.
    pub(super) const INVALID_FIELD: u8 = 0x02;
    /// Data Transfer Error.
    pub(super) const DATA_TRANSFER_ERROR: u8 = 0x04;
    /// Internal Error.
    pub(super) const INTERNAL_ERROR: u8 = 0x06;
    /// Command Abort Requested.
    pub(super) const ABORT_REQUESTED: u8 = 0x07;
    /// Command Aborted due to SQ Deletion.
    pub(super) const ABORTED_SQ_DELETION: u8 = 0x08;
    /// Invalid Namespace or Format.
    pub(super) const INVALID_NAMESPACE_OR_FORMAT: u8 = 0x0b;
    /// LBA Out of Range.
    pub(super) const LBA_OUT_OF_RANGE: u8 = 0x80;
    /// Capacity Exceeded.
    pub(super) const CAPACITY_EXCEEDED: u8 = 0x81;
    /// Namespace Not Ready.
    pub(super) const NAMESPACE_NOT_READY: u8 = 0x82;
}

/// Media and Data Integrity Error codes (SCT 2).
mod media {
    /// Write Fault.
    pub(super) const WRITE_FAULT: u8 = 0x80;
    /// Unrecovered Read Error.
    pub(super) const UNRECOVERED_READ_ERROR: u8 = 0x81;
    /// Access Denied.
    pub(super) const ACCESS_DENIED: u8 = 0x86;
}

/// One Completion Queue Entry.
///
/// # Invariants
///
/// Every field holds its little-endian wire value, so the memory of a
/// `Completion` is exactly the 16 bytes the controller wrote.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct Completion {
    /// Command specific result (DW0).
    result: u32,
    /// Command specific DW1.
    dw1: u32,
    /// Submission Queue Head Pointer.
    sq_head: u16,
    /// Submission Queue Identifier.
    sq_id: u16,
    /// Command Identifier.
    cid: u16,
    /// Phase Tag (bit 0) and Status (bits 15:1).
    status: u16,
}

const _: () = assert!(core::mem::size_of::<Completion>() == 16);

impl Completion {
    /// Creates an entry from the 16 bytes read out of the completion queue.
    pub(crate) fn from_bytes(bytes: [u8; 16]) -> Self {
        let [r0, r1, r2, r3, d0, d1, d2, d3, h0, h1, q0, q1, c0, c1, s0, s1] = bytes;
        // INVARIANT: native-endian loads keep the wire bytes unchanged.
        Self {
            result: u32::from_ne_bytes([r0, r1, r2, r3]),
            dw1: u32::from_ne_bytes([d0, d1, d2, d3]),
            sq_head: u16::from_ne_bytes([h0, h1]),
            sq_id: u16::from_ne_bytes([q0, q1]),
            cid: u16::from_ne_bytes([c0, c1]),
            status: u16::from_ne_bytes([s0, s1]),
        }
    }

    /// An entry the driver makes up for a command that will not complete
    /// (the controller was reset): status `status`, all else zero.
    pub(crate) fn with_status(status: Status) -> Self {
        // INVARIANT: Stored as the wire value, the phase bit clear.
        Self {
            status: (status.0 << 1).to_le(),
            ..Self::default()
        }
    }

    /// An entry with `status`, DW0 `result` and DW1 `dw1`, for a command
    /// whose completion was kept in parts.
    pub(crate) fn with_result(status: Status, result: u32, dw1: u32) -> Self {
        Self {
            result: result.to_le(),
            dw1: dw1.to_le(),
            ..Self::with_status(status)
        }
    }

    /// Command specific result (DW0).
    pub(crate) fn result(&self) -> u32 {
        u32::from_le(self.result)
    }

    /// Command specific DW1.
    pub(crate) fn dw1(&self) -> u32 {
        u32::from_le(self.dw1)
    }

    /// How far the controller has consumed the submission queue (SQHD).
    pub(crate) fn sq_head(&self) -> u16 {
        u16::from_le(self.sq_head)
    }

    /// Submission queue the command came from (SQID).
    pub(crate) fn sq_id(&self) -> u16 {
        u16::from_le(self.sq_id)
    }

    /// Command Identifier of the completed command.
    pub(crate) fn cid(&self) -> u16 {
        u16::from_le(self.cid)
    }

    /// Phase Tag (P), which flips each time the controller wraps the queue.
    pub(crate) fn phase(&self) -> bool {
        u16::from_le(self.status) & 1 != 0
    }

    /// Status field (bits 15:1 of the last word).
    pub(crate) fn status(&self) -> Status {
        Status(u16::from_le(self.status) >> 1)
    }
}

/// Classes of completion status that the driver tells apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StatusKind {
    /// Successful Completion.
    Success,
    /// Invalid Command Opcode.
    InvalidOpcode,
    /// Invalid Field in Command.
    InvalidField,
    /// Invalid Namespace or Format.
    InvalidNamespace,
    /// LBA Out of Range.
    LbaOutOfRange,
    /// Capacity Exceeded.
    CapacityExceeded,
    /// Namespace Not Ready.
    NamespaceNotReady,
    /// Command Abort Requested, or Command Aborted due to SQ Deletion.
    Aborted,
    /// Data Transfer Error.
    DataTransferError,
    /// Internal Error.
    InternalError,
    /// Write Fault.
    WriteFault,
    /// Unrecovered Read Error.
    UnrecoveredReadError,
    /// Access Denied.
    AccessDenied,
    /// Command Aborted By Host: the driver ended the command itself (the
    /// controller was reset or is gone).
    HostAborted,
    /// Any status not listed above.
    Other,
}

impl StatusKind {
    /// Short lower-case description for log messages.
    pub(crate) fn description(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::InvalidOpcode => "invalid opcode",
            Self::InvalidField => "invalid field",
            Self::InvalidNamespace => "invalid namespace or format",
            Self::LbaOutOfRange => "LBA out of range",
            Self::CapacityExceeded => "capacity exceeded",
            Self::NamespaceNotReady => "namespace not ready",
            Self::Aborted => "aborted",
            Self::DataTransferError => "data transfer error",
            Self::InternalError => "internal error",
            Self::WriteFault => "write fault",
            Self::UnrecoveredReadError => "unrecovered read error",
            Self::AccessDenied => "access denied",
            Self::HostAborted => "aborted by the host",
            Self::Other => "other error",
        }
    }
}

/// The 15-bit Status field of a completion, shifted down to bit 0.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Status(pub(crate) u16);

impl Status {
    /// Command Aborted By Host, as the driver records it for a command it
    /// ends itself.
    pub(crate) const HOST_ABORTED: Status =
        Status(((sct::PATH as u16) << 8) | path::HOST_ABORTED as u16);

    /// Status Code (SC).
    pub(crate) fn code(self) -> u8 {
        self.0 as u8
    }

    /// Status Code Type (SCT).
    pub(crate) fn code_type(self) -> u8 {
        ((self.0 >> 8) & 0x7) as u8
    }

    /// More (M): further information is in the Error Information log page.
    pub(crate) fn more(self) -> bool {
        self.0 & (1 << 13) != 0
    }

    /// Do Not Retry (DNR): the same command would fail again.
    pub(crate) fn do_not_retry(self) -> bool {
        self.0 & (1 << 14) != 0
    }

    /// Whether the command completed successfully.
    pub(crate) fn is_success(self) -> bool {
        self.kind() == StatusKind::Success
    }

    /// Sorts the status code into a [`StatusKind`].
    pub(crate) fn kind(self) -> StatusKind {
        match (self.code_type(), self.code()) {
            (sct::GENERIC, generic::SUCCESS) => StatusKind::Success,
            (sct::GENERIC, generic::INVALID_OPCODE) => StatusKind::InvalidOpcode,
            (sct::GENERIC, generic::INVALID_FIELD) => StatusKind::InvalidField,
            (sct::GENERIC, generic::DATA_TRANSFER_ERROR) => StatusKind::DataTransferError,
            (sct::GENERIC, generic::INTERNAL_ERROR) => StatusKind::InternalError,
            (sct::GENERIC, generic::ABORT_REQUESTED | generic::ABORTED_SQ_DELETION) => {
                StatusKind::Aborted
            }
            (sct::GENERIC, generic::INVALID_NAMESPACE_OR_FORMAT) => StatusKind::InvalidNamespace,
            (sct::GENERIC, generic::LBA_OUT_OF_RANGE) => StatusKind::LbaOutOfRange,
            (sct::GENERIC, generic::CAPACITY_EXCEEDED) => StatusKind::CapacityExceeded,
            (sct::GENERIC, generic::NAMESPACE_NOT_READY) => StatusKind::NamespaceNotReady,
            (sct::MEDIA, media::WRITE_FAULT) => StatusKind::WriteFault,
            (sct::MEDIA, media::UNRECOVERED_READ_ERROR) => StatusKind::UnrecoveredReadError,
            (sct::MEDIA, media::ACCESS_DENIED) => StatusKind::AccessDenied,
            (sct::PATH, path::HOST_ABORTED) => StatusKind::HostAborted,
            _ => StatusKind::Other,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "SCT {:#x} SC {:#04x} ({})",
            self.code_type(),
            self.code(),
            self.kind().description()
        )?;
        if self.more() {
            f.write_str(" More")?;
        }
        if self.do_not_retry() {
            f.write_str(" DNR")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CQE as the controller writes it, with the given last word.
    fn cqe(status_word: [u8; 2]) -> Completion {
        Completion::from_bytes([
            0x78,
            0x56,
            0x34,
            0x12, // DW0: result.
            0x00,
            0x00,
            0x00,
            0x00, // DW1.
            0x05,
            0x00,
            0x01,
            0x00, // SQ head 5, SQ ID 1.
            0x2a,
            0x00,
            status_word[0],
            status_word[1], // CID 42, status.
        ])
    }

    /// A CQE with phase 1 and the given SCT and SC.
    fn cqe_status(sct: u8, sc: u8) -> Completion {
        let word = (u16::from(sct) << 9) | (u16::from(sc) << 1) | 1;
        cqe(word.to_le_bytes())
    }

    #[test]
    fn host_aborted() {
        let s = Status::HOST_ABORTED;
        assert_eq!((s.code_type(), s.code()), (3, 0x71));
        assert_eq!(s.kind(), StatusKind::HostAborted);
        assert!(!s.do_not_retry());
        let cqe = Completion::with_status(s);
        assert_eq!(cqe.status(), s);
        assert!(!cqe.phase());
        assert_eq!((cqe.cid(), cqe.result()), (0, 0));
    }

    #[test]
    fn success_fields() {
        let c = cqe([0x01, 0x00]);
        assert_eq!(c.result(), 0x1234_5678);
        assert_eq!(c.dw1(), 0);
        assert_eq!(c.sq_head(), 5);
        assert_eq!(c.sq_id(), 1);
        assert_eq!(c.cid(), 42);
        assert!(c.phase());
        assert!(c.status().is_success());
        assert_eq!(c.status().kind(), StatusKind::Success);
        assert_eq!(format!("{}", c.status()), "SCT 0x0 SC 0x00 (success)");
    }

    #[test]
    fn phase_clear() {
        let c = cqe([0x00, 0x00]);
        assert!(!c.phase());
        assert!(c.status().is_success());
        assert!(!Completion::default().phase());
    }

    #[test]
    fn phase_does_not_leak_into_status() {
        // SC 0x02 with phase 0 and with phase 1.
        assert_eq!(cqe([0x04, 0x00]).status(), Status(0x0002));
        assert_eq!(cqe([0x05, 0x00]).status(), Status(0x0002));
    }

    #[test]
    fn mapped_statuses() {
        let table = [
            (0x0, 0x01, StatusKind::InvalidOpcode),
            (0x0, 0x02, StatusKind::InvalidField),
            (0x0, 0x04, StatusKind::DataTransferError),
            (0x0, 0x06, StatusKind::InternalError),
            (0x0, 0x07, StatusKind::Aborted),
            (0x0, 0x08, StatusKind::Aborted),
            (0x0, 0x0b, StatusKind::InvalidNamespace),
            (0x0, 0x80, StatusKind::LbaOutOfRange),
            (0x0, 0x81, StatusKind::CapacityExceeded),
            (0x0, 0x82, StatusKind::NamespaceNotReady),
            (0x2, 0x80, StatusKind::WriteFault),
            (0x2, 0x81, StatusKind::UnrecoveredReadError),
            (0x2, 0x86, StatusKind::AccessDenied),
            // Unlisted codes, and listed codes under another type.
            (0x0, 0x03, StatusKind::Other),
            (0x1, 0x02, StatusKind::Other),
            (0x1, 0x00, StatusKind::Other),
            (0x2, 0x00, StatusKind::Other),
            (0x2, 0x82, StatusKind::Other),
            (0x7, 0xff, StatusKind::Other),
        ];
        for (sct, sc, kind) in table {
            let status = cqe_status(sct, sc).status();
            assert_eq!(status.code_type(), sct);
            assert_eq!(status.code(), sc);
            assert_eq!(status.kind(), kind, "SCT {sct:#x} SC {sc:#x}");
            assert!(!status.is_success());
            assert!(!status.do_not_retry());
            assert!(!status.more());
        }
    }

    #[test]
    fn lba_out_of_range_bytes() {
        // Status field 0x4080 (DNR, SC 0x80) shifted up, phase 1: 0x8101.
        let status = cqe([0x01, 0x81]).status();
        assert_eq!(status, Status(0x4080));
        assert_eq!(status.kind(), StatusKind::LbaOutOfRange);
        assert!(status.do_not_retry());
        assert!(!status.more());
    }

    #[test]
    fn dnr_and_more() {
        // SCT 2, SC 0x81, More and DNR: status field 0x6281, phase 0.
        let c = cqe([0x02, 0xc5]);
        assert!(!c.phase());
        let status = c.status();
        assert_eq!(status, Status(0x6281));
        assert_eq!(status.kind(), StatusKind::UnrecoveredReadError);
        assert!(status.do_not_retry());
        assert!(status.more());
        assert_eq!(
            format!("{status}"),
            "SCT 0x2 SC 0x81 (unrecovered read error) More DNR"
        );
    }

    #[test]
    fn display_invalid_field() {
        assert_eq!(
            format!("{}", Status(0x0002)),
            "SCT 0x0 SC 0x02 (invalid field)"
        );
        assert_eq!(
            format!("{}", Status(0x4102)),
            "SCT 0x1 SC 0x02 (other error) DNR"
        );
    }

    #[test]
    fn success_with_more_is_still_success() {
        // A successful status with More set (as Get Log Page may report).
        assert!(Status(0x2000).is_success());
        assert!(!Status(0x0100).is_success());
    }
}
