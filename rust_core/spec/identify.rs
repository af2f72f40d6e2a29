// SPDX-License-Identifier: GPL-2.0

//! Identify data structures (NVMe Base Specification 2.0, "Identify command";
//! NVM Command Set Specification 1.0, "Identify Namespace data structure").
//!
//! Each structure is parsed from the 4 KiB page the controller returned by
//! reading little-endian fields at their byte offsets; nothing is transmuted
//! and no read can go out of bounds. The C equivalents are `struct
//! nvme_id_ctrl` and `struct nvme_id_ns` in `include/linux/nvme.h`.

use core::fmt;

use super::regs::Version;

/// Size of every Identify data structure, in bytes.
pub(crate) const IDENTIFY_DATA_SIZE: usize = 4096;

/// Reads `N` bytes at `offset`, or zeros if they lie outside `page`.
fn read_array<const N: usize>(page: &[u8], offset: usize) -> [u8; N] {
    offset
        .checked_add(N)
        .and_then(|end| page.get(offset..end))
        .and_then(|bytes| <[u8; N]>::try_from(bytes).ok())
        .unwrap_or([0; N])
}

/// Reads the byte at `offset`, or 0 if it lies outside `page`.
fn read_u8(page: &[u8], offset: usize) -> u8 {
    page.get(offset).copied().unwrap_or(0)
}

/// Reads a little-endian `u16` at `offset`, or 0 if outside `page`.
fn read_u16(page: &[u8], offset: usize) -> u16 {
    u16::from_le_bytes(read_array(page, offset))
}

/// Reads a little-endian `u32` at `offset`, or 0 if outside `page`.
fn read_u32(page: &[u8], offset: usize) -> u32 {
    u32::from_le_bytes(read_array(page, offset))
}

/// Reads a little-endian `u64` at `offset`, or 0 if outside `page`.
fn read_u64(page: &[u8], offset: usize) -> u64 {
    u64::from_le_bytes(read_array(page, offset))
}

/// A fixed-width, space-padded ASCII string from an Identify structure.
///
/// Parsing drops trailing spaces and NULs and replaces every other byte that
/// is not printable ASCII with `?`, so the kept bytes are always valid text
/// and [`AsciiField::as_str`] needs neither allocation nor a fallible step
/// at the call site.
#[derive(Clone, Copy)]
struct AsciiField<const N: usize> {
    /// The field with non-printable bytes replaced by `?`.
    bytes: [u8; N],
    /// Length of the field without its trailing padding.
    len: usize,
    /// Length of the field without trailing NULs (spaces kept).
    padded_len: usize,
}

impl<const N: usize> AsciiField<N> {
    /// Sanitises the raw field.
    fn parse(raw: [u8; N]) -> Self {
        let len = raw
            .iter()
            .rposition(|&b| b != b' ' && b != 0)
            .map_or(0, |last| last.saturating_add(1));
        let padded_len = raw
            .iter()
            .rposition(|&b| b != 0)
            .map_or(0, |last| last.saturating_add(1));
        let mut bytes = raw;
        for byte in bytes.iter_mut() {
            if !matches!(*byte, 0x20..=0x7e) {
                *byte = b'?';
            }
        }
        Self {
            bytes,
            len,
            padded_len,
        }
    }

    /// The text with its trailing spaces, as the C driver's sysfs shows
    /// it; `"?"` if it were somehow not valid UTF-8.
    fn as_padded_str(&self) -> &str {
        self.bytes
            .get(..self.padded_len)
            .and_then(|bytes| core::str::from_utf8(bytes).ok())
            .unwrap_or("?")
    }

    /// The trimmed text; `"?"` if it were somehow not valid UTF-8.
    fn as_str(&self) -> &str {
        self.bytes
            .get(..self.len)
            .and_then(|bytes| core::str::from_utf8(bytes).ok())
            .unwrap_or("?")
    }
}

/// Supported queue entry sizes, as powers of two (SQES or CQES).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct EntrySizes {
    /// Required, and smallest, entry size as a shift (bits 3:0).
    pub(crate) required_shift: u8,
    /// Largest entry size as a shift (bits 7:4).
    pub(crate) max_shift: u8,
}

impl EntrySizes {
    /// Decodes the SQES or CQES byte.
    fn from_raw(raw: u8) -> Self {
        Self {
            required_shift: raw & 0xf,
            max_shift: raw >> 4,
        }
    }

    /// Whether entries of `1 << shift` bytes are allowed.
    pub(crate) fn allows(self, shift: u8) -> bool {
        self.required_shift <= shift && shift <= self.max_shift
    }
}

/// Entry size shift of a submission queue entry ([`super::command::Command`]).
const SQ_ENTRY_SHIFT: u8 = 6;

/// Entry size shift of a completion queue entry
/// ([`super::completion::Completion`]).
const CQ_ENTRY_SHIFT: u8 = 4;

/// Reasons an Identify Controller structure is unusable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum IdentifyError {
    /// SQES does not allow 64-byte submission queue entries.
    UnusableSqEntrySize {
        /// The raw SQES byte.
        sqes: u8,
    },
    /// CQES does not allow 16-byte completion queue entries.
    UnusableCqEntrySize {
        /// The raw CQES byte.
        cqes: u8,
    },
}

impl fmt::Display for IdentifyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnusableSqEntrySize { sqes } => write!(
                f,
                "SQES {sqes:#04x} does not allow 64-byte submission queue entries"
            ),
            Self::UnusableCqEntrySize { cqes } => write!(
                f,
                "CQES {cqes:#04x} does not allow 16-byte completion queue entries"
            ),
        }
    }
}

/// The fields of the Identify Controller data structure (CNS 01h) that the
/// driver uses.
#[derive(Clone, Copy)]
pub(crate) struct IdentifyController {
    /// PCI Vendor ID (VID).
    vid: u16,
    /// PCI Subsystem Vendor ID (SSVID).
    ssvid: u16,
    /// Serial Number (SN).
    serial: AsciiField<20>,
    /// Model Number (MN).
    model: AsciiField<40>,
    /// SN and MN as the controller sent them, for the namespaces' fallback
    /// WWID (which shows their bytes in hex).
    raw_serial: [u8; 20],
    raw_model: [u8; 40],
    /// Firmware Revision (FR).
    firmware: AsciiField<8>,
    /// Maximum Data Transfer Size (MDTS).
    mdts: u8,
    /// Controller ID (CNTLID).
    cntlid: u16,
    /// Version (VER).
    ver: u32,
    /// RTD3 Entry Latency (RTD3E), in microseconds: how long a shutdown
    /// may take; 0 if not reported.
    rtd3e: u32,
    /// Optional Asynchronous Events Supported (OAES).
    oaes: u32,
    /// Optional Admin Command Support (OACS).
    oacs: u16,
    /// Abort Command Limit (ACL), zero-based.
    acl: u8,
    /// Submission Queue Entry Size (SQES).
    sqes: u8,
    /// Completion Queue Entry Size (CQES).
    cqes: u8,
    /// Number of Namespaces (NN).
    nn: u32,
    /// Optional NVM Command Support (ONCS).
    oncs: u16,
    /// Volatile Write Cache (VWC).
    vwc: u8,
    /// Atomic Write Unit Power Fail (AWUPF), in logical blocks, zero-based.
    awupf: u16,
    /// NVM Subsystem NVMe Qualified Name (SUBNQN), empty before NVMe 1.2.1.
    subnqn: AsciiField<256>,
}

impl IdentifyController {
    /// Parses the structure from the page Identify returned.
    pub(crate) fn parse(page: &[u8; IDENTIFY_DATA_SIZE]) -> Self {
        Self {
            vid: read_u16(page, 0),
            ssvid: read_u16(page, 2),
            serial: AsciiField::parse(read_array(page, 4)),
            model: AsciiField::parse(read_array(page, 24)),
            raw_serial: read_array(page, 4),
            raw_model: read_array(page, 24),
            firmware: AsciiField::parse(read_array(page, 64)),
            mdts: read_u8(page, 77),
            cntlid: read_u16(page, 78),
            ver: read_u32(page, 80),
            rtd3e: read_u32(page, 88),
            oaes: read_u32(page, 92),
            oacs: read_u16(page, 256),
            acl: read_u8(page, 258),
            sqes: read_u8(page, 512),
            cqes: read_u8(page, 513),
            nn: read_u32(page, 516),
            oncs: read_u16(page, 520),
            vwc: read_u8(page, 525),
            awupf: read_u16(page, 528),
            subnqn: AsciiField::parse(read_array(page, 768)),
        }
    }

    /// Serial number, model number and firmware revision with their
    /// trailing spaces, as the C driver shows them in sysfs.
    pub(crate) fn padded_strings(&self) -> (&str, &str, &str) {
        (
            self.serial.as_padded_str(),
            self.model.as_padded_str(),
            self.firmware.as_padded_str(),
        )
    }

    /// How many Abort commands may be outstanding at once (ACL + 1).
    pub(crate) fn abort_limit(&self) -> u32 {
        u32::from(self.acl) + 1
    }

    /// The NVM Subsystem NQN; empty if the controller does not report one.
    pub(crate) fn subsystem_nqn(&self) -> &str {
        self.subnqn.as_str()
    }

    /// Checks that the controller can use the entry sizes this driver uses.
    pub(crate) fn validate(&self) -> Result<(), IdentifyError> {
        if !self.sq_entry_sizes().allows(SQ_ENTRY_SHIFT) {
            return Err(IdentifyError::UnusableSqEntrySize { sqes: self.sqes });
        }
        if !self.cq_entry_sizes().allows(CQ_ENTRY_SHIFT) {
            return Err(IdentifyError::UnusableCqEntrySize { cqes: self.cqes });
        }
        Ok(())
    }

    /// PCI Vendor ID.
    pub(crate) fn vendor_id(&self) -> u16 {
        self.vid
    }

    /// PCI Subsystem Vendor ID.
    pub(crate) fn subsystem_vendor_id(&self) -> u16 {
        self.ssvid
    }

    /// Serial number, trimmed, with non-printable bytes shown as `?`.
    pub(crate) fn serial(&self) -> &str {
        self.serial.as_str()
    }

    /// Model number, trimmed, with non-printable bytes shown as `?`.
    pub(crate) fn model(&self) -> &str {
        self.model.as_str()
    }

    /// Serial number and model number, raw.
    pub(crate) fn raw_serial_model(&self) -> (&[u8; 20], &[u8; 40]) {
        (&self.raw_serial, &self.raw_model)
    }

    /// Firmware revision, trimmed, with non-printable bytes shown as `?`.
    pub(crate) fn firmware(&self) -> &str {
        self.firmware.as_str()
    }

    /// Largest transfer as a shift of its size in bytes, or `None` if the
    /// controller sets no limit.
    ///
    /// MDTS counts in units of the smallest memory page size, passed as
    /// `mps_min_shift` (from CAP.MPSMIN). The result can exceed any size the
    /// host would issue; callers take the minimum with their own limit. A
    /// sum that overflows `u32` is also reported as `None`, as it limits
    /// nothing.
    pub(crate) fn max_transfer_shift(&self, mps_min_shift: u32) -> Option<u32> {
        if self.mdts == 0 {
            return None;
        }
        u32::from(self.mdts).checked_add(mps_min_shift)
    }

    /// Optional Asynchronous Events Supported bit field.
    pub(crate) fn optional_async_events(&self) -> u32 {
        self.oaes
    }

    /// Controller ID.
    pub(crate) fn controller_id(&self) -> u16 {
        self.cntlid
    }

    /// Version the controller reports in Identify (0 before NVMe 1.2).
    pub(crate) fn version(&self) -> Version {
        Version(self.ver)
    }

    /// Optional Admin Command Support bit field.
    pub(crate) fn optional_admin_commands(&self) -> u16 {
        self.oacs
    }

    /// Whether the controller supports Doorbell Buffer Config (OACS bit 8).
    pub(crate) fn supports_doorbell_buffer_config(&self) -> bool {
        self.oacs & (1 << 8) != 0
    }

    /// Supported submission queue entry sizes.
    pub(crate) fn sq_entry_sizes(&self) -> EntrySizes {
        EntrySizes::from_raw(self.sqes)
    }

    /// Supported completion queue entry sizes.
    pub(crate) fn cq_entry_sizes(&self) -> EntrySizes {
        EntrySizes::from_raw(self.cqes)
    }

    /// RTD3 Entry Latency: how long a normal shutdown may take, in
    /// microseconds (0: not reported).
    pub(crate) fn shutdown_latency_us(&self) -> u32 {
        self.rtd3e
    }

    /// Largest namespace ID the controller may use.
    pub(crate) fn namespace_count(&self) -> u32 {
        self.nn
    }

    /// Optional NVM Command Support bit field.
    pub(crate) fn optional_nvm_commands(&self) -> u16 {
        self.oncs
    }

    /// Whether Dataset Management is supported (ONCS bit 2).
    pub(crate) fn supports_dsm(&self) -> bool {
        self.oncs & (1 << 2) != 0
    }

    /// Whether Write Zeroes is supported (ONCS bit 3).
    pub(crate) fn supports_write_zeroes(&self) -> bool {
        self.oncs & (1 << 3) != 0
    }

    /// Whether a volatile write cache is present (VWC bit 0).
    pub(crate) fn volatile_write_cache(&self) -> bool {
        self.vwc & 1 != 0
    }

    /// Blocks that every namespace writes atomically across a power
    /// failure (AWUPF + 1), unless its own NAWUPF says otherwise.
    pub(crate) fn atomic_write_blocks(&self) -> u32 {
        u32::from(self.awupf) + 1
    }
}

/// The I/O Command Set specific Identify Controller data structure for the
/// NVM Command Set (CNS 06h, CSI 00h; NVM Command Set Specification 1.0,
/// "I/O Command Set Specific Identify Controller Data Structure"): the
/// controller's limits for Verify, Write Zeroes, Write Uncorrectable and
/// Dataset Management. A field of 0 sets no limit; a controller that does
/// not know the structure is treated as all zeroes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct IdentifyControllerNvm {
    /// Verify Size Limit (VSL), as a power of two in CAP.MPSMIN units.
    vsl: u8,
    /// Write Zeroes Size Limit (WZSL), as a power of two in CAP.MPSMIN units.
    wzsl: u8,
    /// Write Uncorrectable Size Limit (WUSL), as VSL.
    wusl: u8,
    /// Dataset Management Ranges Limit (DMRL): ranges per command.
    dmrl: u8,
    /// Dataset Management Range Size Limit (DMRSL): blocks per range.
    dmrsl: u32,
    /// Dataset Management Size Limit (DMSL): blocks per command.
    dmsl: u64,
}

impl IdentifyControllerNvm {
    /// Parses the structure from the page Identify returned.
    pub(crate) fn parse(page: &[u8; IDENTIFY_DATA_SIZE]) -> Self {
        Self {
            vsl: read_u8(page, 0),
            wzsl: read_u8(page, 1),
            wusl: read_u8(page, 2),
            dmrl: read_u8(page, 3),
            dmrsl: read_u32(page, 4),
            dmsl: read_u64(page, 8),
        }
    }

    /// Largest Write Zeroes as a power of two of its size in bytes, given
    /// CAP.MPSMIN as `mps_min_shift`; `None` if there is no limit (or it
    /// is beyond any size a shift can hold).
    pub(crate) fn write_zeroes_shift(&self, mps_min_shift: u32) -> Option<u32> {
        if self.wzsl == 0 {
            return None;
        }
        u32::from(self.wzsl).checked_add(mps_min_shift)
    }

    /// Most ranges in one Dataset Management command; `None`: no limit
    /// beyond the command's 256.
    pub(crate) fn dsm_ranges(&self) -> Option<u8> {
        (self.dmrl != 0).then_some(self.dmrl)
    }

    /// Most logical blocks in one Dataset Management range; `None`: no
    /// limit beyond the field's 32 bits.
    pub(crate) fn dsm_range_blocks(&self) -> Option<u32> {
        (self.dmrsl != 0).then_some(self.dmrsl)
    }

    /// Most logical blocks in all ranges of one Dataset Management
    /// command together; `None`: no limit.
    pub(crate) fn dsm_blocks(&self) -> Option<u64> {
        (self.dmsl != 0).then_some(self.dmsl)
    }

    /// Verify and Write Uncorrectable size limits (raw VSL and WUSL).
    pub(crate) fn verify_and_uncorrectable_limits(&self) -> (u8, u8) {
        (self.vsl, self.wusl)
    }
}

/// The write sizes a namespace reports, in logical blocks: what the block
/// layer's physical block size, minimum and optimal I/O size come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct WriteSizes {
    /// Namespace Preferred Write Granularity (NPWG + 1); 1 unless NSFEAT
    /// bit 4 says the field is valid.
    pub(crate) preferred: u32,
    /// Namespace Optimal Write Size (NOWS + 1); 0 if not reported.
    pub(crate) optimal: u32,
    /// Blocks written atomically across a power failure: NAWUPF + 1 if
    /// NSFEAT bit 1 says the namespace reports it (and it is not 0), 1
    /// if the atomic boundaries have an offset (NABO, which the block
    /// layer cannot describe), else `None`: the controller's AWUPF holds.
    pub(crate) atomic: Option<u32>,
    /// The preferred deallocate granularity and alignment: the larger of
    /// NPDG + 1 and NPDA + 1 if NSFEAT bit 4 says they are valid, else 1.
    pub(crate) deallocate: u32,
}

/// One LBA Format entry (LBAF) of Identify Namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LbaFormat {
    /// Metadata bytes per logical block (MS).
    pub(crate) metadata_size: u16,
    /// Logical block size as a shift (LBADS).
    pub(crate) lba_shift: u8,
    /// Relative Performance (RP), 0 being best.
    pub(crate) relative_performance: u8,
}

impl LbaFormat {
    /// Decodes the raw 32-bit entry.
    fn from_raw(raw: u32) -> Self {
        Self {
            metadata_size: raw as u16,
            lba_shift: (raw >> 16) as u8,
            relative_performance: ((raw >> 24) & 0x3) as u8,
        }
    }
}

/// Number of LBA Format entries in Identify Namespace.
const LBA_FORMATS: usize = 64;

/// Offset of the first LBA Format entry.
const LBA_FORMAT_OFFSET: usize = 128;

/// Smallest logical block size the driver accepts, as a shift (512 bytes).
const MIN_LBA_SHIFT: u8 = 9;

/// Reasons a namespace cannot be exposed as a block device.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NamespaceError {
    /// The namespace size is zero: it is inactive.
    Inactive,
    /// FLBAS selects a format beyond the formats the namespace reports.
    NoFormat {
        /// Format index from FLBAS.
        index: u8,
        /// Number of formats reported (NLBAF + 1).
        count: u16,
    },
    /// The logical block is smaller than 512 bytes.
    BlockTooSmall {
        /// LBADS of the format.
        lba_shift: u8,
    },
    /// The logical block is larger than the memory page.
    BlockLargerThanPage {
        /// LBADS of the format.
        lba_shift: u8,
        /// The memory page size as a shift.
        page_shift: u32,
    },
    /// The format carries metadata, which the driver does not support yet.
    Metadata {
        /// Metadata bytes per logical block.
        metadata_size: u16,
    },
}

impl fmt::Display for NamespaceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Inactive => f.write_str("namespace size is zero"),
            Self::NoFormat { index, count } => write!(
                f,
                "LBA format {index} selected but only {count} formats reported"
            ),
            Self::BlockTooSmall { lba_shift } => write!(
                f,
                "LBA data size shift {lba_shift} is below {MIN_LBA_SHIFT} (512 bytes)"
            ),
            Self::BlockLargerThanPage {
                lba_shift,
                page_shift,
            } => write!(
                f,
                "LBA data size shift {lba_shift} is above the page size shift {page_shift}"
            ),
            Self::Metadata { metadata_size } => write!(
                f,
                "LBA format with {metadata_size} metadata bytes is not supported"
            ),
        }
    }
}

/// The fields of the Identify Namespace data structure (CNS 00h) that the
/// driver uses.
#[derive(Clone, Copy)]
pub(crate) struct IdentifyNamespace {
    /// Namespace Size in logical blocks (NSZE).
    nsze: u64,
    /// Namespace Capacity in logical blocks (NCAP).
    ncap: u64,
    /// Namespace Utilization in logical blocks (NUSE).
    nuse: u64,
    /// Namespace Features (NSFEAT).
    nsfeat: u8,
    /// Number of LBA Formats, zero-based (NLBAF).
    nlbaf: u8,
    /// Formatted LBA Size (FLBAS).
    flbas: u8,
    /// Metadata Capabilities (MC).
    mc: u8,
    /// Deallocate Logical Block Features (DLFEAT).
    dlfeat: u8,
    /// Namespace Atomic Write Unit Power Fail (NAWUPF), zero-based.
    nawupf: u16,
    /// Namespace Atomic Boundary Offset (NABO).
    nabo: u16,
    /// Namespace Preferred Write Granularity (NPWG), zero-based.
    npwg: u16,
    /// Namespace Preferred Deallocate Granularity (NPDG), zero-based.
    npdg: u16,
    /// Namespace Preferred Deallocate Alignment (NPDA), zero-based.
    npda: u16,
    /// Namespace Optimal Write Size (NOWS), zero-based.
    nows: u16,
    /// Namespace Globally Unique Identifier (NGUID), NVMe 1.2 and later.
    nguid: [u8; 16],
    /// IEEE Extended Unique Identifier (EUI64), NVMe 1.1 and later.
    eui64: [u8; 8],
    /// LBA Format entries (LBAF0 to LBAF63), raw.
    lbaf: [u32; LBA_FORMATS],
}

impl IdentifyNamespace {
    /// Parses the structure from the page Identify returned.
    pub(crate) fn parse(page: &[u8; IDENTIFY_DATA_SIZE]) -> Self {
        let mut lbaf = [0u32; LBA_FORMATS];
        for (index, format) in lbaf.iter_mut().enumerate() {
            *format = read_u32(page, LBA_FORMAT_OFFSET + 4 * index);
        }
        Self {
            nsze: read_u64(page, 0),
            ncap: read_u64(page, 8),
            nuse: read_u64(page, 16),
            nsfeat: read_u8(page, 24),
            nlbaf: read_u8(page, 25),
            flbas: read_u8(page, 26),
            mc: read_u8(page, 27),
            dlfeat: read_u8(page, 33),
            nawupf: read_u16(page, 36),
            nabo: read_u16(page, 42),
            npwg: read_u16(page, 64),
            npdg: read_u16(page, 68),
            npda: read_u16(page, 70),
            nows: read_u16(page, 72),
            nguid: read_array(page, 104),
            eui64: read_array(page, 120),
            lbaf,
        }
    }

    /// Size of the namespace in logical blocks.
    pub(crate) fn size_blocks(&self) -> u64 {
        self.nsze
    }

    /// Capacity of the namespace in logical blocks.
    pub(crate) fn capacity_blocks(&self) -> u64 {
        self.ncap
    }

    /// Logical blocks currently allocated.
    pub(crate) fn utilization_blocks(&self) -> u64 {
        self.nuse
    }

    /// Namespace Features bit field.
    pub(crate) fn features(&self) -> u8 {
        self.nsfeat
    }

    /// Metadata Capabilities bit field.
    pub(crate) fn metadata_capabilities(&self) -> u8 {
        self.mc
    }

    /// Deallocate Logical Block Features bit field.
    pub(crate) fn deallocate_features(&self) -> u8 {
        self.dlfeat
    }

    /// The write and deallocate sizes the namespace reports (NSFEAT bits 1
    /// and 4, NAWUPF, NABO, NPWG, NOWS, NPDG, NPDA).
    pub(crate) fn write_sizes(&self) -> WriteSizes {
        // NSFEAT bit 1: NAWUN, NAWUPF and NACWU are valid; bit 4: NPWG,
        // NPWA, NPDG, NPDA and NOWS are.
        let atomics = self.nsfeat & (1 << 1) != 0;
        let optimal_io = self.nsfeat & (1 << 4) != 0;
        let atomic = if self.nabo != 0 {
            Some(1)
        } else if atomics && self.nawupf != 0 {
            Some(u32::from(self.nawupf) + 1)
        } else {
            None
        };
        WriteSizes {
            preferred: if optimal_io {
                u32::from(self.npwg) + 1
            } else {
                1
            },
            optimal: if optimal_io && self.nows != 0 {
                u32::from(self.nows) + 1
            } else {
                0
            },
            atomic,
            // One granularity for the block layer's discards, which must
            // be both a multiple of NPDG and aligned to NPDA: the larger.
            deallocate: if optimal_io {
                (u32::from(self.npdg) + 1).max(u32::from(self.npda) + 1)
            } else {
                1
            },
        }
    }

    /// NGUID, as the controller sent it (all zeroes: none).
    pub(crate) fn nguid(&self) -> [u8; 16] {
        self.nguid
    }

    /// EUI64, as the controller sent it (all zeroes: none).
    pub(crate) fn eui64(&self) -> [u8; 8] {
        self.eui64
    }

    /// Whether the namespace is active (its size is not zero).
    pub(crate) fn is_active(&self) -> bool {
        self.nsze != 0
    }

    /// Index of the format in use: FLBAS bits 3:0, extended by bits 6:5.
    pub(crate) fn format_index(&self) -> u8 {
        (self.flbas & 0xf) | ((self.flbas >> 5) & 0x3) << 4
    }

    /// Whether metadata is transferred at the end of each block (FLBAS bit 4).
    pub(crate) fn extended_lba(&self) -> bool {
        self.flbas & (1 << 4) != 0
    }

    /// The format in use, or `None` if FLBAS selects a format beyond NLBAF.
    pub(crate) fn lba_format(&self) -> Option<LbaFormat> {
        let index = self.format_index();
        if index > self.nlbaf {
            return None;
        }
        self.lbaf
            .get(usize::from(index))
            .map(|&raw| LbaFormat::from_raw(raw))
    }

    /// Checks that the namespace can back a block device with pages of
    /// `1 << page_shift` bytes, and returns its logical block size shift.
    pub(crate) fn usable_lba(&self, page_shift: u32) -> Result<u32, NamespaceError> {
        if !self.is_active() {
            return Err(NamespaceError::Inactive);
        }
        let format = self.lba_format().ok_or(NamespaceError::NoFormat {
            index: self.format_index(),
            count: u16::from(self.nlbaf) + 1,
        })?;
        let lba_shift = format.lba_shift;
        if lba_shift < MIN_LBA_SHIFT {
            return Err(NamespaceError::BlockTooSmall { lba_shift });
        }
        if u32::from(lba_shift) > page_shift {
            return Err(NamespaceError::BlockLargerThanPage {
                lba_shift,
                page_shift,
            });
        }
        if format.metadata_size != 0 {
            return Err(NamespaceError::Metadata {
                metadata_size: format.metadata_size,
            });
        }
        Ok(u32::from(lba_shift))
    }
}

/// Iterates over an Active Namespace ID list (CNS 02h).
///
/// Yields the NSIDs in order and stops at the first 0, after at most 1024
/// entries. The list must be strictly increasing, so an entry that is not
/// greater than the last one yielded is skipped, as is the broadcast value
/// `0xffffffff`, which never names a namespace. Every NSID therefore comes
/// out once and in increasing order.
pub(crate) fn active_namespaces(page: &[u8; IDENTIFY_DATA_SIZE]) -> impl Iterator<Item = u32> + '_ {
    let mut last = 0u32;
    page.chunks_exact(4)
        .map(|entry| <[u8; 4]>::try_from(entry).map_or(0, u32::from_le_bytes))
        .take_while(|&nsid| nsid != 0)
        .filter(move |&nsid| {
            if nsid <= last || nsid == u32::MAX {
                return false;
            }
            last = nsid;
            true
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Copies `bytes` into `page` at `offset`.
    fn put(page: &mut [u8; IDENTIFY_DATA_SIZE], offset: usize, bytes: &[u8]) {
        page[offset..offset + bytes.len()].copy_from_slice(bytes);
    }

    /// Stores `text` at `offset`, padded with spaces to `width` bytes.
    fn put_str(page: &mut [u8; IDENTIFY_DATA_SIZE], offset: usize, width: usize, text: &str) {
        page[offset..offset + width].fill(b' ');
        put(page, offset, text.as_bytes());
    }

    /// An Identify Controller page resembling what QEMU returns.
    fn qemu_controller() -> [u8; IDENTIFY_DATA_SIZE] {
        let mut page = [0u8; IDENTIFY_DATA_SIZE];
        put(&mut page, 0, &[0x36, 0x1b]); // VID 0x1b36.
        put(&mut page, 2, &[0xf4, 0x1a]); // SSVID 0x1af4.
        put_str(&mut page, 4, 20, "RSNVME0001");
        put_str(&mut page, 24, 40, "QEMU NVMe Ctrl");
        put_str(&mut page, 64, 8, "7.2.0");
        page[77] = 7; // MDTS.
        put(&mut page, 78, &[0x01, 0x00]); // CNTLID 1.
        put(&mut page, 80, &[0x00, 0x04, 0x01, 0x00]); // VER 1.4.0.
        put(&mut page, 256, &[0x0a, 0x00]); // OACS.
        page[512] = 0x66; // SQES.
        page[513] = 0x44; // CQES.
        put(&mut page, 516, &[0x00, 0x01, 0x00, 0x00]); // NN 256.
        put(&mut page, 520, &[0x5d, 0x01]); // ONCS 0x015d.
        page[525] = 0x07; // VWC.
        page
    }

    #[test]
    fn controller_fields() {
        let id = IdentifyController::parse(&qemu_controller());
        assert_eq!(id.vendor_id(), 0x1b36);
        assert_eq!(id.subsystem_vendor_id(), 0x1af4);
        assert_eq!(id.serial(), "RSNVME0001");
        assert_eq!(id.model(), "QEMU NVMe Ctrl");
        assert_eq!(id.firmware(), "7.2.0");
        assert_eq!(id.controller_id(), 1);
        assert_eq!(id.version().major(), 1);
        assert_eq!(id.version().minor(), 4);
        assert_eq!(id.optional_admin_commands(), 0x000a);
        assert_eq!(id.namespace_count(), 256);
        assert_eq!(id.shutdown_latency_us(), 0);
        let mut page = qemu_controller();
        put(&mut page, 88, &[0x40, 0x42, 0x0f, 0x00]); // RTD3E 1 s.
        assert_eq!(
            IdentifyController::parse(&page).shutdown_latency_us(),
            1_000_000
        );
        assert_eq!(id.optional_nvm_commands(), 0x015d);
        assert!(id.supports_dsm());
        assert!(id.supports_write_zeroes());
        assert!(id.volatile_write_cache());
        assert_eq!(
            id.sq_entry_sizes(),
            EntrySizes {
                required_shift: 6,
                max_shift: 6
            }
        );
        assert_eq!(
            id.cq_entry_sizes(),
            EntrySizes {
                required_shift: 4,
                max_shift: 4
            }
        );
        assert_eq!(id.validate(), Ok(()));
    }

    #[test]
    fn max_transfer() {
        let mut page = qemu_controller();
        let id = IdentifyController::parse(&page);
        // 2^7 pages of 4 KiB: 512 KiB.
        assert_eq!(id.max_transfer_shift(12), Some(19));
        page[77] = 0;
        assert_eq!(
            IdentifyController::parse(&page).max_transfer_shift(12),
            None
        );
        page[77] = 0xff;
        let id = IdentifyController::parse(&page);
        assert_eq!(id.max_transfer_shift(12), Some(267));
        assert_eq!(id.max_transfer_shift(u32::MAX), None);
    }

    #[test]
    fn optional_features_absent() {
        let mut page = qemu_controller();
        put(&mut page, 520, &[0x00, 0x00]);
        page[525] = 0x06;
        let id = IdentifyController::parse(&page);
        assert!(!id.supports_dsm());
        assert!(!id.supports_write_zeroes());
        assert!(!id.volatile_write_cache());
    }

    #[test]
    fn strings_are_sanitised() {
        let mut page = qemu_controller();
        // NUL padding instead of spaces.
        put(&mut page, 4, b"ABC");
        page[7..24].fill(0);
        // Control and non-ASCII bytes inside the text.
        put(&mut page, 24, b"A\x01B\xffC  ");
        page[31..64].fill(b' ');
        // A field of spaces only.
        page[64..72].fill(b' ');
        let id = IdentifyController::parse(&page);
        assert_eq!(id.serial(), "ABC");
        assert_eq!(id.model(), "A?B?C");
        assert_eq!(id.firmware(), "");
        // A NUL in the middle is not padding.
        put(&mut page, 4, b"AB\0CD");
        assert_eq!(IdentifyController::parse(&page).serial(), "AB?CD");
    }

    #[test]
    fn entry_size_validation() {
        let cases = [
            (0x66, 0x44, Ok(())),
            (0x76, 0x54, Ok(())),
            (
                0x77,
                0x44,
                Err(IdentifyError::UnusableSqEntrySize { sqes: 0x77 }),
            ),
            (
                0x55,
                0x44,
                Err(IdentifyError::UnusableSqEntrySize { sqes: 0x55 }),
            ),
            (
                0x00,
                0x44,
                Err(IdentifyError::UnusableSqEntrySize { sqes: 0x00 }),
            ),
            (
                0x66,
                0x33,
                Err(IdentifyError::UnusableCqEntrySize { cqes: 0x33 }),
            ),
            (
                0x66,
                0x45,
                Err(IdentifyError::UnusableCqEntrySize { cqes: 0x45 }),
            ),
        ];
        for (sqes, cqes, want) in cases {
            let mut page = qemu_controller();
            page[512] = sqes;
            page[513] = cqes;
            assert_eq!(IdentifyController::parse(&page).validate(), want);
        }
        assert_eq!(
            format!("{}", IdentifyError::UnusableSqEntrySize { sqes: 0x77 }),
            "SQES 0x77 does not allow 64-byte submission queue entries"
        );
        assert_eq!(
            format!("{}", IdentifyError::UnusableCqEntrySize { cqes: 0x33 }),
            "CQES 0x33 does not allow 16-byte completion queue entries"
        );
    }

    /// Raw LBA format entry.
    fn lbaf(metadata_size: u16, lba_shift: u8, rp: u8) -> u32 {
        u32::from(metadata_size) | u32::from(lba_shift) << 16 | u32::from(rp) << 24
    }

    /// An Identify Namespace page with QEMU's eight formats (512 and 4096
    /// byte blocks with 0, 8, 16 and 64 metadata bytes) and the given FLBAS.
    fn namespace(nsze: u64, flbas: u8) -> [u8; IDENTIFY_DATA_SIZE] {
        let mut page = [0u8; IDENTIFY_DATA_SIZE];
        put(&mut page, 0, &nsze.to_le_bytes());
        put(&mut page, 8, &nsze.to_le_bytes());
        put(&mut page, 16, &(nsze / 2).to_le_bytes());
        page[24] = 0x14; // NSFEAT.
        page[25] = 7; // NLBAF: eight formats.
        page[26] = flbas;
        page[27] = 0x03; // MC.
        page[33] = 0x09; // DLFEAT.
        let formats = [
            (0, 9),
            (8, 9),
            (16, 9),
            (64, 9),
            (0, 12),
            (8, 12),
            (16, 12),
            (64, 12),
        ];
        for (i, (ms, shift)) in formats.into_iter().enumerate() {
            put(&mut page, 128 + 4 * i, &lbaf(ms, shift, 0).to_le_bytes());
        }
        page
    }

    #[test]
    fn namespace_512() {
        let ns = IdentifyNamespace::parse(&namespace(0x20_0000, 0));
        assert!(ns.is_active());
        assert_eq!(ns.size_blocks(), 0x20_0000);
        assert_eq!(ns.capacity_blocks(), 0x20_0000);
        assert_eq!(ns.utilization_blocks(), 0x10_0000);
        assert_eq!(ns.features(), 0x14);
        assert_eq!(ns.metadata_capabilities(), 0x03);
        assert_eq!(ns.deallocate_features(), 0x09);
        assert_eq!(ns.format_index(), 0);
        assert!(!ns.extended_lba());
        assert_eq!(
            ns.lba_format(),
            Some(LbaFormat {
                metadata_size: 0,
                lba_shift: 9,
                relative_performance: 0
            })
        );
        assert_eq!(ns.usable_lba(12), Ok(9));
        assert_eq!(ns.nguid(), [0; 16]);
        assert_eq!(ns.eui64(), [0; 8]);
    }

    #[test]
    fn namespace_identifiers() {
        let mut page = namespace(0x20_0000, 0);
        let nguid: [u8; 16] = core::array::from_fn(|i| 0xa0 + i as u8);
        put(&mut page, 104, &nguid);
        put(&mut page, 120, &[1, 2, 3, 4, 5, 6, 7, 8]);
        let ns = IdentifyNamespace::parse(&page);
        assert_eq!(ns.nguid(), nguid);
        assert_eq!(ns.eui64(), [1, 2, 3, 4, 5, 6, 7, 8]);
    }

    #[test]
    fn namespace_4096_at_index_4() {
        let ns = IdentifyNamespace::parse(&namespace(0x4_0000, 4));
        assert_eq!(ns.format_index(), 4);
        assert_eq!(ns.lba_format().unwrap().lba_shift, 12);
        assert_eq!(ns.usable_lba(12), Ok(12));
    }

    #[test]
    fn namespace_with_metadata_rejected() {
        let ns = IdentifyNamespace::parse(&namespace(0x4_0000, 1));
        assert_eq!(
            ns.usable_lba(12),
            Err(NamespaceError::Metadata { metadata_size: 8 })
        );
        // Extended LBA format with 64 bytes of metadata.
        let ns = IdentifyNamespace::parse(&namespace(0x4_0000, 0x17));
        assert!(ns.extended_lba());
        assert_eq!(ns.format_index(), 7);
        assert_eq!(
            ns.usable_lba(12),
            Err(NamespaceError::Metadata { metadata_size: 64 })
        );
    }

    #[test]
    fn namespace_block_size_rejected() {
        let mut page = namespace(0x4_0000, 0);
        put(&mut page, 128, &lbaf(0, 8, 0).to_le_bytes());
        let ns = IdentifyNamespace::parse(&page);
        assert_eq!(
            ns.usable_lba(12),
            Err(NamespaceError::BlockTooSmall { lba_shift: 8 })
        );
        put(&mut page, 128, &lbaf(0, 13, 2).to_le_bytes());
        let ns = IdentifyNamespace::parse(&page);
        assert_eq!(ns.lba_format().unwrap().relative_performance, 2);
        assert_eq!(
            ns.usable_lba(12),
            Err(NamespaceError::BlockLargerThanPage {
                lba_shift: 13,
                page_shift: 12
            })
        );
        assert_eq!(ns.usable_lba(14), Ok(13));
    }

    #[test]
    fn inactive_namespace() {
        let ns = IdentifyNamespace::parse(&[0u8; IDENTIFY_DATA_SIZE]);
        assert!(!ns.is_active());
        assert_eq!(ns.usable_lba(12), Err(NamespaceError::Inactive));
        let ns = IdentifyNamespace::parse(&namespace(0, 0));
        assert_eq!(ns.usable_lba(12), Err(NamespaceError::Inactive));
    }

    #[test]
    fn format_index_beyond_nlbaf() {
        let ns = IdentifyNamespace::parse(&namespace(0x4_0000, 8));
        assert_eq!(ns.lba_format(), None);
        assert_eq!(
            ns.usable_lba(12),
            Err(NamespaceError::NoFormat { index: 8, count: 8 })
        );
        // FLBAS bits 6:5 extend the index; NLBAF 63 makes all 64 valid.
        let mut page = namespace(0x4_0000, 0x6f);
        page[25] = 63;
        put(&mut page, 128 + 4 * 63, &lbaf(0, 12, 1).to_le_bytes());
        let ns = IdentifyNamespace::parse(&page);
        assert_eq!(ns.format_index(), 63);
        assert_eq!(ns.usable_lba(12), Ok(12));
        // NLBAF beyond 63 does not reach past the table.
        page[25] = 0xff;
        assert_eq!(IdentifyNamespace::parse(&page).usable_lba(12), Ok(12));
    }

    #[test]
    fn namespace_error_display() {
        let cases = [
            (NamespaceError::Inactive, "namespace size is zero"),
            (
                NamespaceError::NoFormat { index: 8, count: 8 },
                "LBA format 8 selected but only 8 formats reported",
            ),
            (
                NamespaceError::BlockTooSmall { lba_shift: 8 },
                "LBA data size shift 8 is below 9 (512 bytes)",
            ),
            (
                NamespaceError::BlockLargerThanPage {
                    lba_shift: 13,
                    page_shift: 12,
                },
                "LBA data size shift 13 is above the page size shift 12",
            ),
            (
                NamespaceError::Metadata { metadata_size: 8 },
                "LBA format with 8 metadata bytes is not supported",
            ),
        ];
        for (error, text) in cases {
            assert_eq!(format!("{error}"), text);
        }
    }

    /// An Active Namespace ID list page holding `nsids`.
    fn ns_list(nsids: &[u32]) -> [u8; IDENTIFY_DATA_SIZE] {
        let mut page = [0u8; IDENTIFY_DATA_SIZE];
        for (i, nsid) in nsids.iter().enumerate() {
            put(&mut page, 4 * i, &nsid.to_le_bytes());
        }
        page
    }

    #[test]
    fn active_list_stops_at_zero() {
        let page = ns_list(&[1, 2, 3, 0, 5]);
        let got: Vec<u32> = active_namespaces(&page).collect();
        assert_eq!(got, [1, 2, 3]);
        assert_eq!(active_namespaces(&ns_list(&[])).count(), 0);
    }

    #[test]
    fn active_list_skips_out_of_order() {
        let page = ns_list(&[1, 3, 3, 2, 4, u32::MAX, 0x1000]);
        let got: Vec<u32> = active_namespaces(&page).collect();
        assert_eq!(got, [1, 3, 4, 0x1000]);
    }

    #[test]
    fn active_list_full_page() {
        let all: Vec<u32> = (1..=1024).collect();
        let page = ns_list(&all);
        let got: Vec<u32> = active_namespaces(&page).collect();
        assert_eq!(got, all);
    }
}
