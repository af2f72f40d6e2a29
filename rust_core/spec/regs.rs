// SPDX-License-Identifier: GPL-2.0

//! Controller registers (NVMe Base Specification 2.0, section 3.1).
//!
//! Each register is a newtype over its raw value with named accessors, so
//! callers never shift and mask by hand.

use core::fmt;

/// Register offsets in BAR0.
pub(crate) mod offset {
    /// Controller Capabilities, 64 bits.
    pub(crate) const CAP: usize = 0x00;
    /// Version, 32 bits.
    pub(crate) const VS: usize = 0x08;
    /// Controller Configuration, 32 bits.
    pub(crate) const CC: usize = 0x14;
    /// Controller Status, 32 bits.
    pub(crate) const CSTS: usize = 0x1c;
    /// Admin Queue Attributes, 32 bits.
    pub(crate) const AQA: usize = 0x24;
    /// Admin Submission Queue base address, 64 bits.
    pub(crate) const ASQ: usize = 0x28;
    /// Admin Completion Queue base address, 64 bits.
    pub(crate) const ACQ: usize = 0x30;
    /// First doorbell register.
    pub(crate) const DOORBELLS: usize = 0x1000;
}

/// Extracts `width` bits of `value` starting at bit `shift`.
const fn bits(value: u64, shift: u32, width: u32) -> u64 {
    (value >> shift) & ((1u64 << width) - 1)
}

/// Controller Capabilities (CAP).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Cap(pub(crate) u64);

impl Cap {
    /// Maximum entries in one I/O queue (MQES is zero-based).
    pub(crate) const fn max_queue_entries(self) -> u32 {
        bits(self.0, 0, 16) as u32 + 1
    }

    /// Whether queues must be physically contiguous (CQR).
    pub(crate) const fn contiguous_queues_required(self) -> bool {
        bits(self.0, 16, 1) != 0
    }

    /// Worst-case time for CSTS.RDY to follow CC.EN, in milliseconds (TO).
    pub(crate) const fn timeout_ms(self) -> u32 {
        bits(self.0, 24, 8) as u32 * 500
    }

    /// Doorbell stride exponent (DSTRD): registers are `4 << DSTRD` apart.
    pub(crate) const fn doorbell_stride_shift(self) -> u32 {
        bits(self.0, 32, 4) as u32
    }

    /// Distance between two doorbell registers, in bytes.
    pub(crate) const fn doorbell_stride(self) -> usize {
        4 << self.doorbell_stride_shift()
    }

    /// Command sets supported (CSS bit field).
    pub(crate) const fn command_sets(self) -> u8 {
        bits(self.0, 37, 8) as u8
    }

    /// Whether the NVM command set is supported (CSS bit 0).
    pub(crate) const fn supports_nvm(self) -> bool {
        self.command_sets() & 1 != 0
    }

    /// Smallest memory page size the controller supports, as a shift.
    pub(crate) const fn mps_min_shift(self) -> u32 {
        12 + bits(self.0, 48, 4) as u32
    }

    /// Largest memory page size the controller supports, as a shift.
    pub(crate) const fn mps_max_shift(self) -> u32 {
        12 + bits(self.0, 52, 4) as u32
    }

    /// Whether a Controller Memory Buffer is supported (CMBS).
    pub(crate) const fn cmb_supported(self) -> bool {
        bits(self.0, 57, 1) != 0
    }

    /// Chooses the memory page size shift for CC.MPS: the host page size if
    /// the controller supports it, else the largest size below it that the
    /// controller supports. `None` if MPSMIN exceeds the host page size.
    pub(crate) const fn page_shift_for(self, host_page_shift: u32) -> Option<u32> {
        if self.mps_min_shift() > host_page_shift {
            None
        } else if self.mps_max_shift() < host_page_shift {
            Some(self.mps_max_shift())
        } else {
            Some(host_page_shift)
        }
    }
}

impl fmt::Display for Cap {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CAP {:#018x}: MQES {} CQR {} TO {} ms DSTRD {} MPSMIN {} MPSMAX {} CSS {:#04x} CMBS {}",
            self.0,
            self.max_queue_entries(),
            u8::from(self.contiguous_queues_required()),
            self.timeout_ms(),
            self.doorbell_stride_shift(),
            1u64 << self.mps_min_shift(),
            1u64 << self.mps_max_shift(),
            self.command_sets(),
            u8::from(self.cmb_supported()),
        )
    }
}

/// Version (VS).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Version(pub(crate) u32);

impl Version {
    /// Major version number (MJR).
    pub(crate) const fn major(self) -> u16 {
        (self.0 >> 16) as u16
    }

    /// Minor version number (MNR).
    pub(crate) const fn minor(self) -> u8 {
        (self.0 >> 8) as u8
    }

    /// Tertiary version number (TER).
    pub(crate) const fn tertiary(self) -> u8 {
        self.0 as u8
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "VS {:#010x}: NVMe {}.{}.{}",
            self.0,
            self.major(),
            self.minor(),
            self.tertiary()
        )
    }
}

/// Controller Configuration (CC).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Cc(pub(crate) u32);

impl Cc {
    /// Enable (EN).
    const EN: u32 = 1;
    /// Shutdown Notification (SHN) field mask.
    const SHN_MASK: u32 = 3 << 14;
    /// SHN value for a normal shutdown.
    const SHN_NORMAL: u32 = 1 << 14;

    /// The configuration the driver enables a controller with: the NVM
    /// command set, round-robin arbitration, memory pages of
    /// `1 << page_shift` bytes and 64-byte SQ / 16-byte CQ entries.
    /// `None` if `page_shift` is outside the 4 KiB..128 MiB range CC.MPS
    /// can express.
    pub(crate) const fn for_enable(page_shift: u32) -> Option<Self> {
        if page_shift < 12 || page_shift > 27 {
            return None;
        }
        let mps = (page_shift - 12) << 7;
        let iosqes = 6 << 16;
        let iocqes = 4 << 20;
        Some(Self(Self::EN | mps | iosqes | iocqes))
    }

    /// Whether EN is set.
    pub(crate) const fn enabled(self) -> bool {
        self.0 & Self::EN != 0
    }

    /// This value with EN cleared.
    pub(crate) const fn disabled(self) -> Self {
        Self(self.0 & !Self::EN)
    }

    /// This value with SHN requesting a normal shutdown.
    pub(crate) const fn with_normal_shutdown(self) -> Self {
        Self((self.0 & !Self::SHN_MASK) | Self::SHN_NORMAL)
    }
}

/// Admin Queue Attributes (AQA) for admin queues of the given sizes;
/// `None` unless both are within 2..=4096 entries.
pub(crate) const fn aqa(sq_entries: u32, cq_entries: u32) -> Option<u32> {
    if sq_entries < 2 || sq_entries > 4096 || cq_entries < 2 || cq_entries > 4096 {
        return None;
    }
    Some((cq_entries - 1) << 16 | (sq_entries - 1))
}

/// Shutdown status in CSTS.SHST.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ShutdownStatus {
    /// Normal operation, no shutdown requested.
    Normal = 0,
    /// Shutdown processing is under way.
    Occurring,
    /// Shutdown processing is complete.
    Complete,
    /// The reserved value 3.
    Reserved,
}

/// Controller Status (CSTS).
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct Csts(pub(crate) u32);

impl Csts {
    /// The value read from a device that is gone (all ones).
    pub(crate) const fn is_all_ones(self) -> bool {
        self.0 == u32::MAX
    }

    /// Ready (RDY).
    pub(crate) const fn ready(self) -> bool {
        self.0 & 1 != 0
    }

    /// Controller Fatal Status (CFS).
    pub(crate) const fn fatal(self) -> bool {
        self.0 & 2 != 0
    }

    /// Shutdown Status (SHST).
    pub(crate) const fn shutdown_status(self) -> ShutdownStatus {
        match (self.0 >> 2) & 3 {
            0 => ShutdownStatus::Normal,
            1 => ShutdownStatus::Occurring,
            2 => ShutdownStatus::Complete,
            _ => ShutdownStatus::Reserved,
        }
    }
}

impl fmt::Display for Csts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "CSTS {:#010x}: RDY {} CFS {} SHST {}",
            self.0,
            u8::from(self.ready()),
            u8::from(self.fatal()),
            self.shutdown_status() as u8
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// CAP as QEMU 7.2 emulates it: MQES 0x7ff, CQR, TO 0xf, CSS 0xc1,
    /// MPSMAX 4, and CMBS when a CMB is configured.
    const QEMU_CAP: u64 = 0x7ff | 1 << 16 | 0xf << 24 | 0xc1 << 37 | 4 << 52;

    #[test]
    fn cap_decodes_qemu_values() {
        let cap = Cap(QEMU_CAP);
        assert_eq!(cap.max_queue_entries(), 2048);
        assert!(cap.contiguous_queues_required());
        assert_eq!(cap.timeout_ms(), 7500);
        assert_eq!(cap.doorbell_stride_shift(), 0);
        assert_eq!(cap.doorbell_stride(), 4);
        assert_eq!(cap.command_sets(), 0xc1);
        assert!(cap.supports_nvm());
        assert_eq!(cap.mps_min_shift(), 12);
        assert_eq!(cap.mps_max_shift(), 16);
        assert!(!cap.cmb_supported());
        assert!(Cap(QEMU_CAP | 1 << 57).cmb_supported());
    }

    #[test]
    fn cap_extreme_fields() {
        let cap = Cap(u64::MAX);
        assert_eq!(cap.max_queue_entries(), 65536);
        assert_eq!(cap.timeout_ms(), 255 * 500);
        assert_eq!(cap.doorbell_stride(), 4 << 15);
        assert_eq!(cap.mps_min_shift(), 27);
        assert_eq!(cap.mps_max_shift(), 27);
        let zero = Cap(0);
        assert_eq!(zero.max_queue_entries(), 1);
        assert_eq!(zero.timeout_ms(), 0);
        assert!(!zero.supports_nvm());
    }

    #[test]
    fn page_shift_choice() {
        // MPSMIN 4 KiB, MPSMAX 64 KiB: the host page size wins.
        assert_eq!(Cap(QEMU_CAP).page_shift_for(12), Some(12));
        assert_eq!(Cap(QEMU_CAP).page_shift_for(14), Some(14));
        // MPSMAX 4 KiB on a 64 KiB-page host: fall back to 4 KiB.
        assert_eq!(Cap(0).page_shift_for(16), Some(12));
        // MPSMIN 8 KiB on a 4 KiB-page host: unusable.
        assert_eq!(Cap(1 << 48 | 1 << 52).page_shift_for(12), None);
    }

    #[test]
    fn cap_display() {
        let s = format!("{}", Cap(QEMU_CAP));
        assert_eq!(
            s,
            "CAP 0x004018200f0107ff: MQES 2048 CQR 1 TO 7500 ms DSTRD 0 \
             MPSMIN 4096 MPSMAX 65536 CSS 0xc1 CMBS 0"
        );
    }

    #[test]
    fn version_decodes() {
        let vs = Version(0x0001_0400);
        assert_eq!((vs.major(), vs.minor(), vs.tertiary()), (1, 4, 0));
        assert_eq!(format!("{vs}"), "VS 0x00010400: NVMe 1.4.0");
        let vs = Version(0x0002_0001);
        assert_eq!((vs.major(), vs.minor(), vs.tertiary()), (2, 0, 1));
    }

    #[test]
    fn cc_encodes() {
        // EN, MPS 0 (4 KiB), IOSQES 6, IOCQES 4: what Linux writes too.
        let cc = Cc::for_enable(12).unwrap();
        assert_eq!(cc.0, 0x0046_0001);
        assert!(cc.enabled());
        assert_eq!(Cc::for_enable(16).unwrap().0, 0x0046_0201);
        assert_eq!(Cc::for_enable(11), None);
        assert_eq!(Cc::for_enable(28), None);
        assert_eq!(cc.disabled().0, 0x0046_0000);
        assert!(!cc.disabled().enabled());
        assert_eq!(cc.with_normal_shutdown().0, 0x0046_4001);
        assert_eq!(Cc(0xc000).with_normal_shutdown().0, 0x4000);
    }

    #[test]
    fn aqa_encodes() {
        assert_eq!(aqa(32, 32), Some(0x001f_001f));
        assert_eq!(aqa(2, 4096), Some(0x0fff_0001));
        assert_eq!(aqa(1, 32), None);
        assert_eq!(aqa(32, 4097), None);
    }

    #[test]
    fn csts_decodes() {
        assert!(Csts(1).ready());
        assert!(!Csts(1).fatal());
        assert!(Csts(2).fatal());
        assert_eq!(Csts(0).shutdown_status(), ShutdownStatus::Normal);
        assert_eq!(Csts(4).shutdown_status(), ShutdownStatus::Occurring);
        assert_eq!(Csts(8).shutdown_status(), ShutdownStatus::Complete);
        assert_eq!(Csts(12).shutdown_status(), ShutdownStatus::Reserved);
        assert!(Csts(u32::MAX).is_all_ones());
        assert_eq!(
            format!("{}", Csts(9)),
            "CSTS 0x00000009: RDY 1 CFS 0 SHST 2"
        );
    }
}
