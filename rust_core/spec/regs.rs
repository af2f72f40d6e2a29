// SPDX-License-Identifier: GPL-2.0

//! Controller registers (NVMe Base Specification 2.0, section 3.1).
//!
//! Each register is declared once with [`register!`]: its offset in BAR0,
//! its width and its fields as bit ranges. The declaration makes a newtype
//! over the raw value that implements [`Register`], so the transport reads
//! and writes it by type (`regs.read::<Cc>()`) and never pairs an offset
//! with a type by hand. Fields get getters (and, where the host writes
//! them, `with_*` setters); the meaning of a field value (CAP.TO in
//! milliseconds, CC for enabling) is spelt out in methods beside it.

use core::fmt;

/// A controller register of BAR0.
pub(crate) trait Register: Copy {
    /// Offset of the register in BAR0.
    const OFFSET: usize;
    /// The raw value: `u32` or `u64`, the register's width.
    type Raw: Copy;
    /// The register holding `raw`.
    fn from_raw(raw: Self::Raw) -> Self;
    /// The raw value to write.
    fn raw(self) -> Self::Raw;
}

/// Mask of the low `width` bits, for `width` in 1..=64.
pub(crate) const fn low_bits(width: u32) -> u64 {
    if width >= 64 {
        u64::MAX
    } else {
        (1u64 << width) - 1
    }
}

/// Declares a register (in the manner of nova-core's `register!`):
///
/// ```text
/// register!(
///     /// Controller Configuration.
///     Cc @ 0x14: u32 {
///         /// Enable.
///         0:0 en => with_en;
///         /// I/O Submission Queue Entry Size.
///         19:16 iosqes => with_iosqes;
///     }
/// );
/// ```
///
/// makes `struct Cc(u32)` implementing [`Register`] with offset 0x14, a
/// getter per field returning the field's bits (`hi:lo`, inclusive) shifted
/// down, and a `with_*` builder for fields the host writes, which masks the
/// value to the field's width.
macro_rules! register {
    (
        $(#[$meta:meta])*
        $name:ident @ $offset:literal : $raw:ty {
            $(
                $(#[$fmeta:meta])*
                $hi:literal : $lo:literal $field:ident $(=> $setter:ident)? ;
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, Debug)]
        pub(crate) struct $name(pub(crate) $raw);

        impl Register for $name {
            const OFFSET: usize = $offset;
            type Raw = $raw;

            fn from_raw(raw: $raw) -> Self {
                Self(raw)
            }

            fn raw(self) -> $raw {
                self.0
            }
        }

        // Not every field is read by the driver; all are host tested.
        #[allow(dead_code)]
        impl $name {
            $(
                $(#[$fmeta])*
                pub(crate) const fn $field(self) -> $raw {
                    // The mask is at most as wide as the register, so the
                    // cast back to it keeps every bit.
                    ((self.0 as u64 >> $lo) & low_bits($hi - $lo + 1)) as $raw
                }

                $(
                    #[doc = concat!("This value with `", stringify!($field), "` set to `value` (masked to the field).")]
                    pub(crate) const fn $setter(self, value: $raw) -> Self {
                        let mask = low_bits($hi - $lo + 1) << $lo;
                        let bits = (value as u64) << $lo & mask;
                        Self(((self.0 as u64 & !mask) | bits) as $raw)
                    }
                )?
            )*
        }
    };
}

/// Offset in BAR0 of the first doorbell register.
pub(crate) const DOORBELLS: usize = 0x1000;

register!(
    /// Controller Capabilities (CAP).
    Cap @ 0x00: u64 {
        /// Maximum Queue Entries Supported, zero-based.
        15:0 mqes;
        /// Contiguous Queues Required.
        16:16 cqr;
        /// Timeout, in 500 ms units.
        31:24 to;
        /// Doorbell Stride: registers are `4 << DSTRD` bytes apart.
        35:32 dstrd;
        /// NVM Subsystem Reset Supported: the NSSR register works.
        36:36 nssrs;
        /// Command Sets Supported.
        44:37 css;
        /// Memory Page Size Minimum: `2 ^ (12 + MPSMIN)` bytes.
        51:48 mpsmin;
        /// Memory Page Size Maximum: `2 ^ (12 + MPSMAX)` bytes.
        55:52 mpsmax;
        /// Controller Memory Buffer Supported.
        57:57 cmbs;
        /// Controller Ready With Media Support (CRMS.CRWMS): CRTO is there.
        59:59 crwms;
    }
);

register!(
    /// Version (VS).
    Version @ 0x08: u32 {
        /// Major version number.
        31:16 mjr;
        /// Minor version number.
        15:8 mnr;
        /// Tertiary version number.
        7:0 ter;
    }
);

register!(
    /// Controller Configuration (CC).
    Cc @ 0x14: u32 {
        /// Enable.
        0:0 en => with_en;
        /// I/O Command Set Selected.
        6:4 css => with_css;
        /// Memory Page Size: `2 ^ (12 + MPS)` bytes.
        10:7 mps => with_mps;
        /// Arbitration Mechanism Selected.
        13:11 ams => with_ams;
        /// Shutdown Notification.
        15:14 shn => with_shn;
        /// I/O Submission Queue Entry Size, as a power of two.
        19:16 iosqes => with_iosqes;
        /// I/O Completion Queue Entry Size, as a power of two.
        23:20 iocqes => with_iocqes;
    }
);

register!(
    /// Controller Status (CSTS).
    Csts @ 0x1c: u32 {
        /// Ready.
        0:0 rdy;
        /// Controller Fatal Status.
        1:1 cfs;
        /// Shutdown Status.
        3:2 shst;
        /// NVM Subsystem Reset Occurred; the host writes 1 to clear it.
        4:4 nssro => with_nssro;
    }
);

register!(
    /// NVM Subsystem Reset (NSSR): writing [`Nssr::RESET_VALUE`] resets
    /// the whole NVM subsystem, every controller in it included.
    Nssr @ 0x20: u32 {
        /// NVM Subsystem Reset Control.
        31:0 nssrc => with_nssrc;
    }
);

register!(
    /// Controller Ready Timeouts (CRTO), NVMe 2.0 and later.
    Crto @ 0x68: u32 {
        /// Controller Ready With Media Timeout, in 500 ms units.
        15:0 crwmt;
        /// Controller Ready Independent of Media Timeout, in 500 ms units.
        31:16 crimt;
    }
);

register!(
    /// Admin Queue Attributes (AQA).
    Aqa @ 0x24: u32 {
        /// Admin Submission Queue Size, zero-based.
        11:0 asqs => with_asqs;
        /// Admin Completion Queue Size, zero-based.
        27:16 acqs => with_acqs;
    }
);

register!(
    /// Admin Submission Queue Base Address (ASQ), page aligned.
    Asq @ 0x28: u64 {}
);

register!(
    /// Admin Completion Queue Base Address (ACQ), page aligned.
    Acq @ 0x30: u64 {}
);

impl Crto {
    /// How long the controller may take to become ready with its media
    /// (CRWMT), in milliseconds.
    pub(crate) const fn ready_with_media_ms(self) -> u32 {
        self.crwmt() * 500
    }
}

impl Cap {
    /// Maximum entries in one I/O queue (MQES is zero-based).
    pub(crate) const fn max_queue_entries(self) -> u32 {
        self.mqes() as u32 + 1
    }

    /// Whether queues must be physically contiguous (CQR).
    pub(crate) const fn contiguous_queues_required(self) -> bool {
        self.cqr() != 0
    }

    /// Worst-case time for CSTS.RDY to follow CC.EN, in milliseconds (TO).
    pub(crate) const fn timeout_ms(self) -> u32 {
        self.to() as u32 * 500
    }

    /// Whether the controller has the CRTO register (CAP.CRMS.CRWMS).
    pub(crate) const fn has_ready_timeouts(self) -> bool {
        self.crwms() != 0
    }

    /// Doorbell stride exponent (DSTRD): registers are `4 << DSTRD` apart.
    pub(crate) const fn doorbell_stride_shift(self) -> u32 {
        self.dstrd() as u32
    }

    /// Distance between two doorbell registers, in bytes.
    pub(crate) const fn doorbell_stride(self) -> usize {
        4 << self.doorbell_stride_shift()
    }

    /// Command sets supported (CSS bit field).
    pub(crate) const fn command_sets(self) -> u8 {
        self.css() as u8
    }

    /// Whether the NVM command set is supported (CSS bit 0).
    pub(crate) const fn supports_nvm(self) -> bool {
        self.command_sets() & 1 != 0
    }

    /// Smallest memory page size the controller supports, as a shift.
    pub(crate) const fn mps_min_shift(self) -> u32 {
        12 + self.mpsmin() as u32
    }

    /// Largest memory page size the controller supports, as a shift.
    pub(crate) const fn mps_max_shift(self) -> u32 {
        12 + self.mpsmax() as u32
    }

    /// Whether the controller can reset its NVM subsystem through NSSR
    /// (CAP.NSSRS). The register came with NVMe 1.1, so Linux's C driver
    /// also asks for VS 1.1 or later.
    pub(crate) const fn subsystem_reset_supported(self, vs: Version) -> bool {
        self.nssrs() != 0 && vs.is_at_least(1, 1)
    }

    /// Whether a Controller Memory Buffer is supported (CMBS).
    pub(crate) const fn cmb_supported(self) -> bool {
        self.cmbs() != 0
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

    /// Bytes of BAR0 the admin queue's two doorbells need, CAP.DSTRD
    /// apart after [`DOORBELLS`].
    pub(crate) const fn admin_doorbells_end(self) -> usize {
        DOORBELLS + 2 * self.doorbell_stride()
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

impl Version {
    /// Major version number (MJR).
    pub(crate) const fn major(self) -> u16 {
        self.mjr() as u16
    }

    /// Minor version number (MNR).
    pub(crate) const fn minor(self) -> u8 {
        self.mnr() as u8
    }

    /// Tertiary version number (TER).
    pub(crate) const fn tertiary(self) -> u8 {
        self.ter() as u8
    }

    /// Whether this is NVMe `major`.`minor` or later.
    pub(crate) const fn is_at_least(self, major: u16, minor: u8) -> bool {
        self.major() > major || (self.major() == major && self.minor() >= minor)
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

/// CC.SHN value for a normal shutdown.
const SHN_NORMAL: u32 = 1;
/// CC.IOSQES: 64-byte submission queue entries.
const IOSQES_64: u32 = 6;
/// CC.IOCQES: 16-byte completion queue entries.
const IOCQES_16: u32 = 4;

impl Cc {
    /// The configuration the driver enables a controller with: the NVM
    /// command set, round-robin arbitration, memory pages of
    /// `1 << page_shift` bytes and 64-byte SQ / 16-byte CQ entries.
    /// `None` if `page_shift` is outside the 4 KiB..128 MiB range CC.MPS
    /// can express.
    pub(crate) const fn for_enable(page_shift: u32) -> Option<Self> {
        if page_shift < 12 || page_shift > 27 {
            return None;
        }
        Some(
            Self(0)
                .with_en(1)
                .with_mps(page_shift - 12)
                .with_iosqes(IOSQES_64)
                .with_iocqes(IOCQES_16),
        )
    }

    /// Whether EN is set.
    pub(crate) const fn enabled(self) -> bool {
        self.en() != 0
    }

    /// This value with EN cleared.
    pub(crate) const fn disabled(self) -> Self {
        self.with_en(0)
    }

    /// This value with SHN requesting a normal shutdown.
    pub(crate) const fn with_normal_shutdown(self) -> Self {
        self.with_shn(SHN_NORMAL)
    }
}

impl Nssr {
    /// The value that starts an NVM Subsystem Reset: "NVMe" in ASCII.
    /// Any other value written to NSSR does nothing.
    pub(crate) const RESET_VALUE: u32 = 0x4e56_4d65;

    /// The register value that resets the NVM subsystem.
    pub(crate) const fn reset() -> Self {
        Self(0).with_nssrc(Self::RESET_VALUE)
    }
}

impl Aqa {
    /// Admin Queue Attributes for admin queues of the given sizes; `None`
    /// unless both are within 2..=4096 entries.
    pub(crate) const fn for_sizes(sq_entries: u32, cq_entries: u32) -> Option<Self> {
        if sq_entries < 2 || sq_entries > 4096 || cq_entries < 2 || cq_entries > 4096 {
            return None;
        }
        Some(Self(0).with_asqs(sq_entries - 1).with_acqs(cq_entries - 1))
    }
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

impl Csts {
    /// The value read from a device that is gone (all ones).
    pub(crate) const fn is_all_ones(self) -> bool {
        self.0 == u32::MAX
    }

    /// Ready (RDY).
    pub(crate) const fn ready(self) -> bool {
        self.rdy() != 0
    }

    /// Controller Fatal Status (CFS).
    pub(crate) const fn fatal(self) -> bool {
        self.cfs() != 0
    }

    /// Whether an NVM Subsystem Reset occurred since the host last
    /// cleared CSTS.NSSRO.
    pub(crate) const fn subsystem_reset_occurred(self) -> bool {
        self.nssro() != 0
    }

    /// The value that, written to CSTS, clears NSSRO and nothing else
    /// (the register's other fields are read-only).
    pub(crate) const fn clear_subsystem_reset_occurred() -> Self {
        Self(0).with_nssro(1)
    }

    /// Shutdown Status (SHST).
    pub(crate) const fn shutdown_status(self) -> ShutdownStatus {
        match self.shst() {
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
        assert!(!cap.has_ready_timeouts());
        assert!(Cap(QEMU_CAP | 1 << 59).has_ready_timeouts());
    }

    #[test]
    fn subsystem_reset_support() {
        let vs14 = Version(0x0001_0400);
        // QEMU 7.2 leaves CAP.NSSRS clear.
        assert!(!Cap(QEMU_CAP).subsystem_reset_supported(vs14));
        assert_eq!(Cap(QEMU_CAP).nssrs(), 0);
        let cap = Cap(QEMU_CAP | 1 << 36);
        assert_eq!(cap.nssrs(), 1);
        assert!(cap.subsystem_reset_supported(vs14));
        assert!(cap.subsystem_reset_supported(Version(0x0001_0100)));
        // NVMe 1.0 has no NSSR register, whatever CAP says.
        assert!(!cap.subsystem_reset_supported(Version(0x0001_0000)));
        // Neighbours (DSTRD, CSS) do not count.
        assert!(!Cap(0xf << 32 | 0xff << 37).subsystem_reset_supported(vs14));
    }

    #[test]
    fn nssr_encodes() {
        assert_eq!(Nssr::OFFSET, 0x20);
        assert_eq!(core::mem::size_of::<<Nssr as Register>::Raw>(), 4);
        assert_eq!(Nssr::reset().raw(), 0x4e56_4d65);
        assert_eq!(&Nssr::RESET_VALUE.to_be_bytes(), b"NVMe");
    }

    #[test]
    fn crto_fields() {
        let crto = Crto(0x0028_00f0);
        assert_eq!(crto.ready_with_media_ms(), 0xf0 * 500);
        assert_eq!(crto.crimt(), 0x28);
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
        assert!(vs.is_at_least(1, 2));
        assert!(vs.is_at_least(2, 0));
        assert!(!vs.is_at_least(2, 1));
        assert!(Version(0x0001_0200).is_at_least(1, 2));
        assert!(!Version(0x0001_0100).is_at_least(1, 2));
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
        assert_eq!(Aqa::for_sizes(32, 32), Some(Aqa(0x001f_001f)));
        assert_eq!(Aqa::for_sizes(2, 4096), Some(Aqa(0x0fff_0001)));
        assert_eq!(Aqa::for_sizes(1, 32), None);
        assert_eq!(Aqa::for_sizes(32, 4097), None);
    }

    #[test]
    fn offsets_and_widths() {
        assert_eq!(Cap::OFFSET, 0x00);
        assert_eq!(Version::OFFSET, 0x08);
        assert_eq!(Cc::OFFSET, 0x14);
        assert_eq!(Csts::OFFSET, 0x1c);
        assert_eq!(Aqa::OFFSET, 0x24);
        assert_eq!(Asq::OFFSET, 0x28);
        assert_eq!(Acq::OFFSET, 0x30);
        assert_eq!(core::mem::size_of::<<Cap as Register>::Raw>(), 8);
        assert_eq!(core::mem::size_of::<<Cc as Register>::Raw>(), 4);
        assert_eq!(core::mem::size_of::<<Asq as Register>::Raw>(), 8);
        assert_eq!(Cc::from_raw(0x46_0001).raw(), 0x46_0001);
    }

    #[test]
    fn fields_get_and_set() {
        // Each field of CC, set on its own, lands at its bit position.
        let c = Cc(0);
        assert_eq!(c.with_en(1).0, 1);
        assert_eq!(c.with_css(7).0, 7 << 4);
        assert_eq!(c.with_mps(0xf).0, 0xf << 7);
        assert_eq!(c.with_ams(7).0, 7 << 11);
        assert_eq!(c.with_shn(3).0, 3 << 14);
        assert_eq!(c.with_iosqes(0xf).0, 0xf << 16);
        assert_eq!(c.with_iocqes(0xf).0, 0xf << 20);
        // Values wider than the field are masked, neighbours untouched.
        assert_eq!(Cc(u32::MAX).with_shn(0).0, u32::MAX & !(3 << 14));
        assert_eq!(c.with_en(2).0, 0);
        assert_eq!(c.with_mps(0x1f).0, 0xf << 7);
        // Getters shift down and mask.
        let cc = Cc(0x0046_4201);
        assert_eq!(
            (cc.en(), cc.mps(), cc.shn(), cc.iosqes(), cc.iocqes()),
            (1, 4, 1, 6, 4)
        );
        let cap = Cap(u64::MAX);
        assert_eq!(
            (cap.mqes(), cap.to(), cap.dstrd(), cap.css()),
            (0xffff, 0xff, 0xf, 0xff)
        );
        assert_eq!(Csts(0b1110).shst(), 3);
        assert_eq!(Aqa(0x0fff_0001).acqs(), 0xfff);
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
        assert!(Csts(0x10).subsystem_reset_occurred());
        assert!(!Csts(0x2f).subsystem_reset_occurred());
        assert_eq!(Csts::clear_subsystem_reset_occurred().0, 0x10);
        assert_eq!(Csts::clear_subsystem_reset_occurred().raw(), 1 << 4);
        assert_eq!(
            format!("{}", Csts(9)),
            "CSTS 0x00000009: RDY 1 CFS 0 SHST 2"
        );
    }
}
