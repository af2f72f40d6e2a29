// SPDX-License-Identifier: GPL-2.0

//! Submission Queue Entries (NVMe Base Specification 2.0, "Submission Queue
//! Entry").
//!
//! [`Command`] is the 64-byte entry the host writes into a submission queue.
//! Its fields hold little-endian wire values, so a `Command` can be copied
//! verbatim into DMA memory; the getters return CPU-endian values. The
//! constructors cover the admin commands the driver sends (NVMe Base
//! Specification 2.0, "Admin Command Set") and the NVM command set I/O
//! commands (NVM Command Set Specification 1.0). The C equivalents are
//! `struct nvme_command` and friends in `include/linux/nvme.h`.
//!
//! Counts that the wire encodes zero-based (queue sizes, block counts, range
//! counts) are taken as ordinary one-based counts, and the constructor
//! returns `None` when the count is outside the legal range, so no caller can
//! encode an underflowed value. Block and range counts use a type wide enough
//! for the largest legal value (65536 blocks, 256 ranges); queue sizes are
//! `u16` like the ring depth in [`super::queue`], so at most 65535 entries.

/// Opcodes, as `include/linux/nvme.h` names them in `enum nvme_admin_opcode`
/// and `enum nvme_opcode`.
pub(crate) mod opcode {
    /// Admin command set opcodes.
    pub(crate) mod admin {
        /// Delete I/O Submission Queue.
        pub(crate) const DELETE_IO_SQ: u8 = 0x00;
        /// Create I/O Submission Queue.
        pub(crate) const CREATE_IO_SQ: u8 = 0x01;
        /// Delete I/O Completion Queue.
        pub(crate) const DELETE_IO_CQ: u8 = 0x04;
        /// Create I/O Completion Queue.
        pub(crate) const CREATE_IO_CQ: u8 = 0x05;
        /// Identify.
        pub(crate) const IDENTIFY: u8 = 0x06;
        /// Abort.
        pub(crate) const ABORT: u8 = 0x08;
        /// Set Features.
        pub(crate) const SET_FEATURES: u8 = 0x09;
        /// Get Log Page.
        pub(crate) const GET_LOG_PAGE: u8 = 0x02;
        /// Asynchronous Event Request.
        pub(crate) const ASYNC_EVENT_REQUEST: u8 = 0x0c;
        /// Doorbell Buffer Config.
        pub(crate) const DBBUF_CONFIG: u8 = 0x7c;
    }

    /// NVM command set I/O opcodes.
    pub(crate) mod nvm {
        /// Flush.
        pub(crate) const FLUSH: u8 = 0x00;
        /// Write.
        pub(crate) const WRITE: u8 = 0x01;
        /// Read.
        pub(crate) const READ: u8 = 0x02;
        /// Compare.
        pub(crate) const COMPARE: u8 = 0x05;
        /// Write Zeroes.
        pub(crate) const WRITE_ZEROES: u8 = 0x08;
        /// Dataset Management.
        pub(crate) const DATASET_MANAGEMENT: u8 = 0x09;
    }
}

/// Feature Identifier of the Number of Queues feature.
const FEATURE_NUMBER_OF_QUEUES: u32 = 0x07;

/// Feature Identifier of the Asynchronous Event Configuration feature.
const FEATURE_ASYNC_EVENT_CONFIG: u32 = 0x0b;

/// Physically Contiguous (PC) bit of CDW11 in the queue creation commands.
const QUEUE_PHYSICALLY_CONTIGUOUS: u32 = 1 << 0;

/// Interrupts Enabled (IEN) bit of CDW11 in Create I/O Completion Queue.
const CQ_INTERRUPTS_ENABLED: u32 = 1 << 1;

/// Force Unit Access (FUA) bit of CDW12 in Read and Write.
const RW_FORCE_UNIT_ACCESS: u32 = 1 << 30;

/// Attribute - Deallocate (AD) bit of CDW11 in Dataset Management.
const DSM_ATTRIBUTE_DEALLOCATE: u32 = 1 << 2;

/// Controller or Namespace Structure (CNS) values for Identify.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Cns {
    /// Identify Namespace data structure for the given NSID.
    Namespace = 0x00,
    /// Identify Controller data structure.
    Controller = 0x01,
    /// Active namespace IDs greater than the given NSID.
    ActiveNsList = 0x02,
    /// Namespace Identification Descriptor list for the given NSID.
    NsDescriptors = 0x03,
    /// I/O Command Set specific Identify Controller data structure, for
    /// the command set CDW11.CSI names; [`Command::identify`] leaves CSI
    /// 0, the NVM Command Set.
    NvmController = 0x06,
}

/// One Submission Queue Entry.
///
/// # Invariants
///
/// Every multi-byte field holds its little-endian wire value, so the memory
/// of a `Command` is exactly the 64 bytes the controller reads.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct Command {
    /// Opcode (CDW0 bits 7:0).
    opcode: u8,
    /// Fused operation and PRP or SGL selection (CDW0 bits 15:8); always 0,
    /// meaning a non-fused command that uses PRPs.
    flags: u8,
    /// Command Identifier (CDW0 bits 31:16).
    cid: u16,
    /// Namespace Identifier.
    nsid: u32,
    /// Command Dword 2.
    cdw2: u32,
    /// Command Dword 3.
    cdw3: u32,
    /// Metadata Pointer.
    mptr: u64,
    /// PRP Entry 1.
    prp1: u64,
    /// PRP Entry 2.
    prp2: u64,
    /// Command Dword 10.
    cdw10: u32,
    /// Command Dword 11.
    cdw11: u32,
    /// Command Dword 12.
    cdw12: u32,
    /// Command Dword 13.
    cdw13: u32,
    /// Command Dword 14.
    cdw14: u32,
    /// Command Dword 15.
    cdw15: u32,
}

const _: () = assert!(core::mem::size_of::<Command>() == 64);

impl Command {
    /// Creates a command with the given opcode and every other field zero.
    fn with_opcode(opcode: u8) -> Self {
        Self {
            opcode,
            ..Self::default()
        }
    }

    /// Builds Identify (admin opcode 0x06) returning one 4 KiB data structure
    /// to `prp1`.
    ///
    /// For [`Cns::Namespace`] `nsid` names the namespace; for
    /// [`Cns::ActiveNsList`] the list starts after `nsid`; for
    /// [`Cns::Controller`] pass 0. A `prp1` with a page offset also needs
    /// [`Command::set_prps`].
    pub(crate) fn identify(cns: Cns, nsid: u32, prp1: u64) -> Self {
        Self {
            nsid: nsid.to_le(),
            prp1: prp1.to_le(),
            cdw10: u32::from(cns as u8).to_le(),
            ..Self::with_opcode(opcode::admin::IDENTIFY)
        }
    }

    /// Builds Set Features (admin opcode 0x09) for Number of Queues (FID 0x07).
    ///
    /// Takes the number of I/O submission and completion queues wanted (one
    /// or more each) and encodes them zero-based; a count of 0 is sent as 1.
    pub(crate) fn set_features_num_queues(nsqr: u16, ncqr: u16) -> Self {
        let nsqr = u32::from(nsqr.saturating_sub(1));
        let ncqr = u32::from(ncqr.saturating_sub(1));
        Self {
            cdw10: FEATURE_NUMBER_OF_QUEUES.to_le(),
            cdw11: (ncqr << 16 | nsqr).to_le(),
            ..Self::with_opcode(opcode::admin::SET_FEATURES)
        }
    }

    /// Builds Set Features (admin opcode 0x09) for Asynchronous Event
    /// Configuration (FID 0x0B): which SMART / Health critical warnings
    /// (bits 7:0) and notices (bits 8 and up) raise an event.
    pub(crate) fn set_features_async_events(config: u32) -> Self {
        Self {
            cdw10: FEATURE_ASYNC_EVENT_CONFIG.to_le(),
            cdw11: config.to_le(),
            ..Self::with_opcode(opcode::admin::SET_FEATURES)
        }
    }

    /// Encodes CDW10 of the queue creation commands: zero-based size and QID.
    ///
    /// Returns `None` for fewer than 2 entries (the minimum queue size) or for
    /// queue 0, which is the admin queue.
    fn queue_size_and_id(qid: u16, entries: u16) -> Option<u32> {
        if qid == 0 || entries < 2 {
            return None;
        }
        Some(u32::from(entries - 1) << 16 | u32::from(qid))
    }

    /// Builds Create I/O Completion Queue (admin opcode 0x05) for a physically
    /// contiguous queue of `entries` entries at `prp1`.
    ///
    /// Returns `None` if `entries` is below 2 or `qid` is 0.
    pub(crate) fn create_io_cq(
        qid: u16,
        entries: u16,
        prp1: u64,
        vector: u16,
        irq_enabled: bool,
    ) -> Option<Self> {
        let ien = if irq_enabled {
            CQ_INTERRUPTS_ENABLED
        } else {
            0
        };
        Some(Self {
            prp1: prp1.to_le(),
            cdw10: Self::queue_size_and_id(qid, entries)?.to_le(),
            cdw11: (u32::from(vector) << 16 | ien | QUEUE_PHYSICALLY_CONTIGUOUS).to_le(),
            ..Self::with_opcode(opcode::admin::CREATE_IO_CQ)
        })
    }

    /// Builds Create I/O Submission Queue (admin opcode 0x01) for a physically
    /// contiguous, medium priority queue of `entries` entries at `prp1` that
    /// completes into queue `cqid`.
    ///
    /// Returns `None` if `entries` is below 2 or `qid` is 0.
    pub(crate) fn create_io_sq(qid: u16, entries: u16, prp1: u64, cqid: u16) -> Option<Self> {
        Some(Self {
            prp1: prp1.to_le(),
            cdw10: Self::queue_size_and_id(qid, entries)?.to_le(),
            cdw11: (u32::from(cqid) << 16 | QUEUE_PHYSICALLY_CONTIGUOUS).to_le(),
            ..Self::with_opcode(opcode::admin::CREATE_IO_SQ)
        })
    }

    /// Builds Delete I/O Submission Queue (admin opcode 0x00).
    pub(crate) fn delete_io_sq(qid: u16) -> Self {
        Self {
            cdw10: u32::from(qid).to_le(),
            ..Self::with_opcode(opcode::admin::DELETE_IO_SQ)
        }
    }

    /// Builds Abort (admin opcode 0x08) for command `cid` of submission
    /// queue `sqid`.
    pub(crate) fn abort(sqid: u16, cid: u16) -> Self {
        Self {
            cdw10: (u32::from(sqid) | (u32::from(cid) << 16)).to_le(),
            ..Self::with_opcode(opcode::admin::ABORT)
        }
    }

    /// Builds Asynchronous Event Request (admin opcode 0x0C): completed
    /// by the controller when it has an event to report.
    pub(crate) fn async_event_request() -> Self {
        Self::with_opcode(opcode::admin::ASYNC_EVENT_REQUEST)
    }

    /// Builds Get Log Page (admin opcode 0x02) of log `lid` for all
    /// namespaces, `len` bytes (a multiple of 4, at least 4, within one
    /// memory page) to `prp1`, and clears the event it reports (Retain
    /// Asynchronous Event not set). `None` for a length out of range.
    pub(crate) fn get_log_page(lid: u8, len: u32, prp1: u64) -> Option<Self> {
        if len < 4 || len % 4 != 0 || len > 4096 {
            return None;
        }
        // NUMD, zero-based dwords: lower half in CDW10 bits 31:16.
        let numd = len / 4 - 1;
        Some(Self {
            nsid: u32::MAX.to_le(),
            prp1: prp1.to_le(),
            cdw10: (u32::from(lid) | (numd << 16)).to_le(),
            ..Self::with_opcode(opcode::admin::GET_LOG_PAGE)
        })
    }

    /// Builds Doorbell Buffer Config (admin opcode 0x7C): the shadow
    /// doorbell buffer at `shadow` and the event index buffer at
    /// `event_index`, each one page-aligned memory page (NVMe Base
    /// Specification 2.0, section 5.8).
    pub(crate) fn doorbell_buffer_config(shadow: u64, event_index: u64) -> Self {
        Self {
            prp1: shadow.to_le(),
            prp2: event_index.to_le(),
            ..Self::with_opcode(opcode::admin::DBBUF_CONFIG)
        }
    }

    /// Builds Delete I/O Completion Queue (admin opcode 0x04).
    pub(crate) fn delete_io_cq(qid: u16) -> Self {
        Self {
            cdw10: u32::from(qid).to_le(),
            ..Self::with_opcode(opcode::admin::DELETE_IO_CQ)
        }
    }

    /// Builds a Read or Write style command: SLBA in CDW10 and CDW11, the
    /// zero-based block count in CDW12.
    ///
    /// Returns `None` unless `nlb` is in `1..=65536`.
    fn block_range(opcode: u8, nsid: u32, slba: u64, nlb: u32, cdw12_flags: u32) -> Option<Self> {
        let nlb = u16::try_from(nlb.checked_sub(1)?).ok()?;
        Some(Self {
            nsid: nsid.to_le(),
            cdw10: (slba as u32).to_le(),
            cdw11: ((slba >> 32) as u32).to_le(),
            cdw12: (cdw12_flags | u32::from(nlb)).to_le(),
            ..Self::with_opcode(opcode)
        })
    }

    /// Builds Read (I/O opcode 0x02) of `nlb` blocks starting at `slba`.
    ///
    /// The data pointer is set afterwards with [`Command::set_prps`]. Returns
    /// `None` unless `nlb` is in `1..=65536`.
    pub(crate) fn read(nsid: u32, slba: u64, nlb: u32, fua: bool) -> Option<Self> {
        let fua = if fua { RW_FORCE_UNIT_ACCESS } else { 0 };
        Self::block_range(opcode::nvm::READ, nsid, slba, nlb, fua)
    }

    /// Builds Write (I/O opcode 0x01) of `nlb` blocks starting at `slba`.
    ///
    /// The data pointer is set afterwards with [`Command::set_prps`]. Returns
    /// `None` unless `nlb` is in `1..=65536`.
    pub(crate) fn write(nsid: u32, slba: u64, nlb: u32, fua: bool) -> Option<Self> {
        let fua = if fua { RW_FORCE_UNIT_ACCESS } else { 0 };
        Self::block_range(opcode::nvm::WRITE, nsid, slba, nlb, fua)
    }

    /// Builds Flush (I/O opcode 0x00) of the volatile write cache.
    pub(crate) fn flush(nsid: u32) -> Self {
        Self {
            nsid: nsid.to_le(),
            ..Self::with_opcode(opcode::nvm::FLUSH)
        }
    }

    /// Builds Write Zeroes (I/O opcode 0x08) of `nlb` blocks starting at
    /// `slba`.
    ///
    /// Returns `None` unless `nlb` is in `1..=65536`.
    pub(crate) fn write_zeroes(nsid: u32, slba: u64, nlb: u32) -> Option<Self> {
        Self::block_range(opcode::nvm::WRITE_ZEROES, nsid, slba, nlb, 0)
    }

    /// Builds Dataset Management (I/O opcode 0x09) that deallocates the
    /// `ranges` [`DsmRange`] entries stored at `prp1`.
    ///
    /// Returns `None` unless `ranges` is in `1..=256`.
    pub(crate) fn dsm_deallocate(nsid: u32, ranges: u16, prp1: u64) -> Option<Self> {
        let nr = u8::try_from(ranges.checked_sub(1)?).ok()?;
        Some(Self {
            nsid: nsid.to_le(),
            prp1: prp1.to_le(),
            cdw10: u32::from(nr).to_le(),
            cdw11: DSM_ATTRIBUTE_DEALLOCATE.to_le(),
            ..Self::with_opcode(opcode::nvm::DATASET_MANAGEMENT)
        })
    }

    /// Builds a command from user space (passthrough): opcode, namespace
    /// and `dwords` CDW2, CDW3 and CDW10 to CDW15; no metadata pointer,
    /// PRPs set later.
    pub(crate) fn passthru(opcode: u8, nsid: u32, dwords: [u32; 8]) -> Self {
        let [cdw2, cdw3, cdw10, cdw11, cdw12, cdw13, cdw14, cdw15] = dwords;
        Self {
            nsid: nsid.to_le(),
            cdw2: cdw2.to_le(),
            cdw3: cdw3.to_le(),
            cdw10: cdw10.to_le(),
            cdw11: cdw11.to_le(),
            cdw12: cdw12.to_le(),
            cdw13: cdw13.to_le(),
            cdw14: cdw14.to_le(),
            cdw15: cdw15.to_le(),
            ..Self::with_opcode(opcode)
        }
    }

    /// Sets the Command Identifier that the completion will echo.
    pub(crate) fn set_cid(&mut self, cid: u16) {
        self.cid = cid.to_le();
    }

    /// Sets both PRP entries of the data pointer.
    pub(crate) fn set_prps(&mut self, prp1: u64, prp2: u64) {
        self.prp1 = prp1.to_le();
        self.prp2 = prp2.to_le();
    }

    /// Opcode.
    pub(crate) fn opcode(&self) -> u8 {
        self.opcode
    }

    /// Command Identifier.
    pub(crate) fn cid(&self) -> u16 {
        u16::from_le(self.cid)
    }

    /// Namespace Identifier.
    pub(crate) fn nsid(&self) -> u32 {
        u32::from_le(self.nsid)
    }

    /// PRP Entry 1.
    pub(crate) fn prp1(&self) -> u64 {
        u64::from_le(self.prp1)
    }

    /// PRP Entry 2.
    pub(crate) fn prp2(&self) -> u64 {
        u64::from_le(self.prp2)
    }

    /// Command Dword 10.
    pub(crate) fn cdw10(&self) -> u32 {
        u32::from_le(self.cdw10)
    }

    /// Command Dword 11.
    pub(crate) fn cdw11(&self) -> u32 {
        u32::from_le(self.cdw11)
    }

    /// Command Dword 12.
    pub(crate) fn cdw12(&self) -> u32 {
        u32::from_le(self.cdw12)
    }

    /// Command Dword 13.
    pub(crate) fn cdw13(&self) -> u32 {
        u32::from_le(self.cdw13)
    }

    /// Command Dword 14.
    pub(crate) fn cdw14(&self) -> u32 {
        u32::from_le(self.cdw14)
    }

    /// Command Dword 15.
    pub(crate) fn cdw15(&self) -> u32 {
        u32::from_le(self.cdw15)
    }

    /// The 64 bytes of the entry in wire order.
    pub(crate) fn to_bytes(self) -> [u8; 64] {
        let wire = [self.opcode, self.flags]
            .into_iter()
            .chain(self.cid().to_le_bytes())
            .chain(self.nsid().to_le_bytes())
            .chain(u32::from_le(self.cdw2).to_le_bytes())
            .chain(u32::from_le(self.cdw3).to_le_bytes())
            .chain(u64::from_le(self.mptr).to_le_bytes())
            .chain(self.prp1().to_le_bytes())
            .chain(self.prp2().to_le_bytes())
            .chain(self.cdw10().to_le_bytes())
            .chain(self.cdw11().to_le_bytes())
            .chain(self.cdw12().to_le_bytes())
            .chain(self.cdw13().to_le_bytes())
            .chain(self.cdw14().to_le_bytes())
            .chain(self.cdw15().to_le_bytes());
        let mut bytes = [0u8; 64];
        for (byte, value) in bytes.iter_mut().zip(wire) {
            *byte = value;
        }
        bytes
    }
}

/// One range of a Dataset Management command's range list.
///
/// # Invariants
///
/// Every field holds its little-endian wire value.
#[repr(C)]
#[derive(Clone, Copy, Default)]
pub(crate) struct DsmRange {
    /// Context Attributes; always 0.
    attributes: u32,
    /// Length in logical blocks (a plain count, not zero-based).
    nlb: u32,
    /// Starting LBA.
    slba: u64,
}

const _: () = assert!(core::mem::size_of::<DsmRange>() == 16);

impl DsmRange {
    /// Creates a range of `nlb` logical blocks starting at `slba`.
    pub(crate) fn new(slba: u64, nlb: u32) -> Self {
        Self {
            attributes: 0,
            nlb: nlb.to_le(),
            slba: slba.to_le(),
        }
    }

    /// The 16 bytes of the range in wire order.
    pub(crate) fn to_bytes(self) -> [u8; 16] {
        let wire = u32::from_le(self.attributes)
            .to_le_bytes()
            .into_iter()
            .chain(u32::from_le(self.nlb).to_le_bytes())
            .chain(u64::from_le(self.slba).to_le_bytes());
        let mut bytes = [0u8; 16];
        for (byte, value) in bytes.iter_mut().zip(wire) {
            *byte = value;
        }
        bytes
    }
}

/// Bits of an I/O command identifier that hold the request's tag; the
/// bits above hold a generation number of the tag's use, so that a
/// completion meant for an earlier use of the same tag is recognised (as
/// the C driver's `nvme_cid` does).
pub(crate) const TAG_BITS: u32 = 12;

/// The command identifier of tag `tag` in its use number `sequence` (of
/// which the low four bits are kept).
pub(crate) fn command_id(tag: u32, sequence: u8) -> u16 {
    let generation = u32::from(sequence) & 0xf;
    ((generation << TAG_BITS) | (tag & ((1 << TAG_BITS) - 1))) as u16
}

/// The tag and the generation a command identifier carries.
pub(crate) fn split_command_id(cid: u16) -> (u32, u8) {
    let cid = u32::from(cid);
    (cid & ((1 << TAG_BITS) - 1), (cid >> TAG_BITS) as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Joins eight rows of eight bytes into one 64-byte entry.
    fn sqe(rows: [[u8; 8]; 8]) -> [u8; 64] {
        let mut out = [0u8; 64];
        for (i, byte) in rows.iter().flatten().enumerate() {
            out[i] = *byte;
        }
        out
    }

    /// Eight zero bytes.
    const Z: [u8; 8] = [0; 8];

    #[test]
    fn abort() {
        let cmd = Command::abort(3, 0x1abc);
        assert_eq!(cmd.opcode(), opcode::admin::ABORT);
        // CDW10: SQID in bits 15:0, CID in bits 31:16.
        assert_eq!(&cmd.to_bytes()[40..44], &[0x03, 0x00, 0xbc, 0x1a]);
    }

    #[test]
    fn async_events_and_log_pages() {
        let aer = Command::async_event_request();
        assert_eq!(aer.opcode(), 0x0c);
        assert_eq!(aer.to_bytes()[1..], [0u8; 63][..]);
        let log = Command::get_log_page(0x04, 4096, 0x1000).unwrap();
        assert_eq!(log.opcode(), 0x02);
        assert_eq!(log.nsid(), u32::MAX);
        assert_eq!(log.cdw10(), 0x04 | (1023 << 16));
        assert_eq!(&log.to_bytes()[24..32], &0x1000u64.to_le_bytes());
        assert_eq!(
            Command::get_log_page(0x02, 512, 0).unwrap().cdw10(),
            0x02 | (127 << 16)
        );
        assert!(Command::get_log_page(0x02, 0, 0).is_none());
        assert!(Command::get_log_page(0x02, 6, 0).is_none());
        assert!(Command::get_log_page(0x02, 8192, 0).is_none());
        let aec = Command::set_features_async_events(0x11f);
        assert_eq!(
            (aec.opcode(), aec.cdw10(), aec.cdw11()),
            (0x09, 0x0b, 0x11f)
        );
    }

    #[test]
    fn command_ids_carry_a_generation() {
        assert_eq!(command_id(5, 0), 0x0005);
        assert_eq!(command_id(5, 1), 0x1005);
        assert_eq!(command_id(0xfff, 0x1f), 0xffff);
        // Only four bits of the sequence are kept; the tag never spills.
        assert_eq!(command_id(0x1005, 0x21), 0x1005);
        assert_eq!(split_command_id(0x1005), (5, 1));
        for seq in 0..=255u8 {
            let (tag, gen) = split_command_id(command_id(200, seq));
            assert_eq!((tag, gen), (200, seq & 0xf));
        }
        assert_ne!(command_id(7, 3), command_id(7, 4));
    }

    #[test]
    fn identify_controller() {
        let mut cmd = Command::identify(Cns::Controller, 0, 0x1234_5000);
        cmd.set_cid(0x0102);
        let want = sqe([
            [0x06, 0x00, 0x02, 0x01, 0x00, 0x00, 0x00, 0x00], // Opcode, CID, NSID.
            Z,                                                // CDW2, CDW3.
            Z,                                                // MPTR.
            [0x00, 0x50, 0x34, 0x12, 0x00, 0x00, 0x00, 0x00], // PRP1.
            Z,                                                // PRP2.
            [0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00], // CDW10 CNS 1, CDW11.
            Z,                                                // CDW12, CDW13.
            Z,                                                // CDW14, CDW15.
        ]);
        assert_eq!(cmd.to_bytes(), want);
        assert_eq!(cmd.opcode(), opcode::admin::IDENTIFY);
        assert_eq!(cmd.cid(), 0x0102);
        assert_eq!(cmd.prp1(), 0x1234_5000);
    }

    #[test]
    fn identify_namespace_and_list() {
        let cmd = Command::identify(Cns::Namespace, 1, 0xabc0_0000_1000);
        let want = sqe([
            [0x06, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00],
            Z,
            Z,
            [0x00, 0x10, 0x00, 0x00, 0xc0, 0xab, 0x00, 0x00],
            Z,
            Z,
            Z,
            Z,
        ]);
        assert_eq!(cmd.to_bytes(), want);
        let cmd = Command::identify(Cns::ActiveNsList, 0, 0x2000);
        assert_eq!(cmd.to_bytes()[40], 0x02);
        assert_eq!(cmd.nsid(), 0);
    }

    #[test]
    fn set_features_number_of_queues() {
        let cmd = Command::set_features_num_queues(4, 2);
        let want = sqe([
            [0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
            Z,
            Z,
            Z,
            Z,
            [0x07, 0x00, 0x00, 0x00, 0x03, 0x00, 0x01, 0x00], // FID 7, NSQR 3, NCQR 1.
            Z,
            Z,
        ]);
        assert_eq!(cmd.to_bytes(), want);
        // Zero counts saturate to one queue each; the maximum stays below the
        // reserved 0xffff.
        assert_eq!(Command::set_features_num_queues(0, 0).cdw11(), 0);
        assert_eq!(
            Command::set_features_num_queues(u16::MAX, u16::MAX).cdw11(),
            0xfffe_fffe
        );
    }

    #[test]
    fn create_io_cq() {
        let cmd = Command::create_io_cq(1, 1024, 0x8765_4000, 3, true).unwrap();
        let want = sqe([
            [0x05, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
            Z,
            Z,
            [0x00, 0x40, 0x65, 0x87, 0x00, 0x00, 0x00, 0x00], // PRP1.
            Z,
            [0x01, 0x00, 0xff, 0x03, 0x03, 0x00, 0x03, 0x00], // QID 1, QSIZE 1023; PC, IEN, IV 3.
            Z,
            Z,
        ]);
        assert_eq!(cmd.to_bytes(), want);
        let polled = Command::create_io_cq(2, 2, 0x1000, 0, false).unwrap();
        assert_eq!(polled.cdw10(), 0x0001_0002);
        assert_eq!(polled.cdw11(), 0x0000_0001);
        assert!(Command::create_io_cq(1, 1, 0x1000, 0, true).is_none());
        assert!(Command::create_io_cq(1, 0, 0x1000, 0, true).is_none());
        assert!(Command::create_io_cq(0, 64, 0x1000, 0, true).is_none());
    }

    #[test]
    fn create_io_sq() {
        let cmd = Command::create_io_sq(3, 0xffff, 0x1_0000_0000, 3).unwrap();
        let want = sqe([
            [0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
            Z,
            Z,
            [0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00], // PRP1.
            Z,
            [0x03, 0x00, 0xfe, 0xff, 0x01, 0x00, 0x03, 0x00], // QID 3, QSIZE 0xfffe; PC, CQID 3.
            Z,
            Z,
        ]);
        assert_eq!(cmd.to_bytes(), want);
        assert!(Command::create_io_sq(1, 1, 0x1000, 1).is_none());
        assert!(Command::create_io_sq(0, 2, 0x1000, 0).is_none());
    }

    #[test]
    fn delete_queues() {
        let sq = Command::delete_io_sq(7);
        let want = sqe([
            [0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
            Z,
            Z,
            Z,
            Z,
            [0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
            Z,
            Z,
        ]);
        assert_eq!(sq.to_bytes(), want);
        let cq = Command::delete_io_cq(0x0102);
        let want = sqe([
            [0x04, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
            Z,
            Z,
            Z,
            Z,
            [0x02, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00],
            Z,
            Z,
        ]);
        assert_eq!(cq.to_bytes(), want);
    }

    #[test]
    fn read_with_fua() {
        let mut cmd = Command::read(1, 0x0123_4567_89ab_cdef, 8, true).unwrap();
        cmd.set_cid(0xbeef);
        cmd.set_prps(0x1_2345_6200, 0x1_2345_7000);
        let want = sqe([
            [0x02, 0x00, 0xef, 0xbe, 0x01, 0x00, 0x00, 0x00],
            Z,
            Z,
            [0x00, 0x62, 0x45, 0x23, 0x01, 0x00, 0x00, 0x00], // PRP1.
            [0x00, 0x70, 0x45, 0x23, 0x01, 0x00, 0x00, 0x00], // PRP2.
            [0xef, 0xcd, 0xab, 0x89, 0x67, 0x45, 0x23, 0x01], // SLBA.
            [0x07, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00], // NLB 7, FUA.
            Z,
        ]);
        assert_eq!(cmd.to_bytes(), want);
        assert_eq!(cmd.opcode(), opcode::nvm::READ);
        assert_eq!(cmd.prp2(), 0x1_2345_7000);
        assert_eq!(cmd.cdw12(), 0x4000_0007);
        assert_eq!((cmd.cdw13(), cmd.cdw14(), cmd.cdw15()), (0, 0, 0));
    }

    #[test]
    fn write_without_fua() {
        let cmd = Command::write(2, 0x1000, 65536, false).unwrap();
        let want = sqe([
            [0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00],
            Z,
            Z,
            Z,
            Z,
            [0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00], // SLBA.
            [0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00], // NLB 0xffff.
            Z,
        ]);
        assert_eq!(cmd.to_bytes(), want);
    }

    #[test]
    fn block_counts_out_of_range() {
        assert!(Command::read(1, 0, 0, false).is_none());
        assert!(Command::read(1, 0, 65537, false).is_none());
        assert!(Command::write(1, 0, 0, true).is_none());
        assert!(Command::write(1, 0, u32::MAX, true).is_none());
        assert!(Command::write_zeroes(1, 0, 0).is_none());
        assert!(Command::dsm_deallocate(1, 0, 0x1000).is_none());
        assert!(Command::dsm_deallocate(1, 257, 0x1000).is_none());
        assert_eq!(Command::read(1, 0, 1, false).unwrap().cdw12(), 0);
    }

    #[test]
    fn write_zeroes() {
        let cmd = Command::write_zeroes(1, 0xffff_ffff_0000_0001, 16).unwrap();
        let want = sqe([
            [0x08, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00],
            Z,
            Z,
            Z,
            Z,
            [0x01, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff], // SLBA.
            [0x0f, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00], // NLB 15.
            Z,
        ]);
        assert_eq!(cmd.to_bytes(), want);
    }

    #[test]
    fn flush() {
        let cmd = Command::flush(0xffff_ffff);
        let want = sqe([
            [0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff],
            Z,
            Z,
            Z,
            Z,
            Z,
            Z,
            Z,
        ]);
        assert_eq!(cmd.to_bytes(), want);
    }

    #[test]
    fn dsm_deallocate() {
        let cmd = Command::dsm_deallocate(1, 256, 0x4000).unwrap();
        let want = sqe([
            [0x09, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00],
            Z,
            Z,
            [0x00, 0x40, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00], // PRP1.
            Z,
            [0xff, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00], // NR 255, AD.
            Z,
            Z,
        ]);
        assert_eq!(cmd.to_bytes(), want);
        assert_eq!(Command::dsm_deallocate(1, 1, 0).unwrap().cdw10(), 0);
    }

    #[test]
    fn dsm_range() {
        let range = DsmRange::new(0x0102_0304_0506_0708, 0x10);
        let want = [
            0x00, 0x00, 0x00, 0x00, // Context attributes.
            0x10, 0x00, 0x00, 0x00, // Length in blocks.
            0x08, 0x07, 0x06, 0x05, 0x04, 0x03, 0x02, 0x01, // SLBA.
        ];
        assert_eq!(range.to_bytes(), want);
    }

    #[test]
    fn default_is_zero() {
        assert_eq!(Command::default().to_bytes(), [0u8; 64]);
    }
}
