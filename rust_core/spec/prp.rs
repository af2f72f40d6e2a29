// SPDX-License-Identifier: GPL-2.0

//! Physical Region Page entries for one data transfer (NVMe Base
//! Specification 2.0, section 4.1.1).
//!
//! PRP Entry 1 points at the first byte of the data, which may sit anywhere
//! in its page. Every further page starts on a memory page boundary; one such
//! page goes directly into PRP Entry 2, more go into a PRP List whose address
//! PRP Entry 2 then holds. This module builds those entries from the DMA
//! segments of a block-layer request whose queue sets `virt_boundary` to the
//! page size minus one, so the segments join into one run of whole pages.
//! Only a single PRP List page is supported; the list is never chained.

use super::words::WordSink;
use core::fmt;

/// One DMA-mapped piece of the transfer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Segment {
    /// Bus address of the first byte.
    pub(crate) addr: u64,
    /// Length in bytes.
    pub(crate) len: u32,
}

/// What PRP Entry 2 has to describe.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Prp2 {
    /// The data fits in the page PRP Entry 1 points into; PRP Entry 2 is 0.
    None,
    /// The data ends in this second page, whose address is PRP Entry 2.
    Page(u64),
    /// PRP Entry 2 must hold the address of the PRP List, whose first
    /// `entries` entries were filled in.
    List {
        /// Number of list entries written.
        entries: usize,
    },
}

/// The data pointer of one command.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Prps {
    /// PRP Entry 1: the first byte of the data.
    pub(crate) prp1: u64,
    /// What PRP Entry 2 describes.
    pub(crate) prp2: Prp2,
}

impl Prps {
    /// The value for PRP Entry 2, given the bus address of the list page.
    pub(crate) fn prp2_value(&self, list_addr: u64) -> u64 {
        match self.prp2 {
            Prp2::None => 0,
            Prp2::Page(addr) => addr,
            Prp2::List { .. } => list_addr,
        }
    }
}

/// Reasons a segment list cannot be described with PRPs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PrpError {
    /// There are no segments.
    Empty,
    /// A segment has length 0.
    ZeroLength {
        /// Index of the segment.
        segment: usize,
    },
    /// A segment breaks the page contract: one other than the first does not
    /// start on a page boundary, one other than the last does not end on
    /// one, or the first does not start on a dword boundary.
    Misaligned {
        /// Index of the segment.
        segment: usize,
    },
    /// A segment ends beyond the 64-bit address space.
    Overflow {
        /// Index of the segment.
        segment: usize,
    },
    /// The pages do not fit in one PRP List.
    TooLong,
    /// The page size is not a power of two from 4 KiB to 64 KiB.
    InvalidPageSize,
}

impl fmt::Display for PrpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("no data segments"),
            Self::ZeroLength { segment } => write!(f, "segment {segment} has length 0"),
            Self::Misaligned { segment } => {
                write!(f, "segment {segment} is not aligned to the page boundary")
            }
            Self::Overflow { segment } => {
                write!(f, "segment {segment} ends beyond the address space")
            }
            Self::TooLong => f.write_str("transfer needs more than one PRP list page"),
            Self::InvalidPageSize => f.write_str("invalid memory page size"),
        }
    }
}

/// Smallest memory page size accepted.
const MIN_PAGE_SIZE: u32 = 4096;

/// Largest memory page size accepted.
const MAX_PAGE_SIZE: u32 = 65536;

/// Builds the PRP entries for `segments`, using pages of `page_size` bytes.
///
/// `list` is the PRP List page, typically `page_size / 8` entries, only
/// ever written ([`WordSink`]). Entries are written to it in little-endian
/// order from the start; they matter only
/// when the result is [`Prp2::List`], but leading entries may be overwritten
/// whatever the outcome. Transfers of at most [`max_transfer_bytes`] always
/// fit.
pub(crate) fn build<L: WordSink + ?Sized>(
    segments: impl IntoIterator<Item = Segment>,
    page_size: u32,
    list: &mut L,
) -> Result<Prps, PrpError> {
    if !page_size.is_power_of_two() || !(MIN_PAGE_SIZE..=MAX_PAGE_SIZE).contains(&page_size) {
        return Err(PrpError::InvalidPageSize);
    }
    let page_size = u64::from(page_size);
    let page_mask = page_size - 1;
    let mut segments = segments.into_iter().enumerate().peekable();
    let first = segments.peek().ok_or(PrpError::Empty)?.1;
    if first.addr & 0x3 != 0 {
        return Err(PrpError::Misaligned { segment: 0 });
    }
    // The page PRP Entry 1 points into; every other page goes to PRP Entry 2
    // or the list.
    let first_page = first.addr & !page_mask;
    let mut extra_pages = 0usize;
    let mut second_page = 0u64;

    while let Some((index, segment)) = segments.next() {
        let last = segments.peek().is_none();
        if segment.len == 0 {
            return Err(PrpError::ZeroLength { segment: index });
        }
        let end = segment
            .addr
            .checked_add(u64::from(segment.len))
            .ok_or(PrpError::Overflow { segment: index })?;
        let starts_aligned = segment.addr & page_mask == 0;
        let ends_aligned = end & page_mask == 0;
        if (index > 0 && !starts_aligned) || (!last && !ends_aligned) {
            return Err(PrpError::Misaligned { segment: index });
        }

        let mut page = segment.addr & !page_mask;
        if index == 0 {
            page = match first_page.checked_add(page_size) {
                Some(next) => next,
                None => continue,
            };
        }
        while page < end {
            if extra_pages == 0 {
                second_page = page;
            }
            if !list.put(extra_pages, page.to_le()) && extra_pages >= 1 {
                return Err(PrpError::TooLong);
            }
            extra_pages += 1;
            page = match page.checked_add(page_size) {
                Some(next) => next,
                None => break,
            };
        }
    }

    let prp2 = match extra_pages {
        0 => Prp2::None,
        1 => Prp2::Page(second_page),
        entries => Prp2::List { entries },
    };
    Ok(Prps {
        prp1: first.addr,
        prp2,
    })
}

/// Largest transfer, in bytes, that [`build`] accepts for any start offset
/// with a list of `list_entries` entries.
///
/// The list adds `list_entries` pages to the one PRP Entry 1 points into (or
/// one page, through PRP Entry 2, with fewer than two list entries). A start
/// within a page can use part of one more page than whole pages of data
/// would, so the limit is one page less than the pages available.
pub(crate) fn max_transfer_bytes(page_size: u32, list_entries: usize) -> u64 {
    let pages = u64::try_from(list_entries.max(1)).unwrap_or(u64::MAX);
    pages.saturating_mul(u64::from(page_size))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PAGE: u32 = 4096;
    const P: u64 = PAGE as u64;

    /// A PRP list page for 4 KiB pages.
    fn list() -> [u64; 512] {
        [0; 512]
    }

    fn build_slice(segs: &[Segment], page: u32, list: &mut [u64]) -> Result<Prps, PrpError> {
        build(segs.iter().copied(), page, list)
    }

    fn seg(addr: u64, len: u32) -> Segment {
        Segment { addr, len }
    }

    #[test]
    fn single_page_aligned() {
        let mut list = list();
        let prps = build_slice(&[seg(0x10_0000, PAGE)], PAGE, &mut list).unwrap();
        assert_eq!(prps.prp1, 0x10_0000);
        assert_eq!(prps.prp2, Prp2::None);
        assert_eq!(prps.prp2_value(0xdead_0000), 0);
        assert_eq!(list[0], 0);
    }

    #[test]
    fn single_page_unaligned() {
        let mut list = list();
        let prps = build_slice(&[seg(0x10_0200, 512)], PAGE, &mut list).unwrap();
        assert_eq!(prps.prp1, 0x10_0200);
        assert_eq!(prps.prp2, Prp2::None);
        // Up to the very end of the page.
        let prps = build_slice(&[seg(0x10_0200, PAGE - 0x200)], PAGE, &mut list).unwrap();
        assert_eq!(prps.prp2, Prp2::None);
    }

    #[test]
    fn two_pages_aligned() {
        let mut list = list();
        let prps = build_slice(&[seg(0x10_0000, 2 * PAGE)], PAGE, &mut list).unwrap();
        assert_eq!(prps.prp1, 0x10_0000);
        assert_eq!(prps.prp2, Prp2::Page(0x10_1000));
        assert_eq!(prps.prp2_value(0xdead_0000), 0x10_1000);
        // The same pages as two scattered segments.
        let segs = [seg(0x10_0000, PAGE), seg(0x30_0000, PAGE)];
        let prps = build_slice(&segs, PAGE, &mut list).unwrap();
        assert_eq!(prps.prp2, Prp2::Page(0x30_0000));
    }

    #[test]
    fn unaligned_start_spanning_two_pages() {
        let mut list = list();
        let prps = build_slice(&[seg(0x10_0e00, 1024)], PAGE, &mut list).unwrap();
        assert_eq!(prps.prp1, 0x10_0e00);
        assert_eq!(prps.prp2, Prp2::Page(0x10_1000));
        // A whole page's worth from an offset also spans two pages.
        let prps = build_slice(&[seg(0x10_0200, PAGE)], PAGE, &mut list).unwrap();
        assert_eq!(prps.prp2, Prp2::Page(0x10_1000));
    }

    #[test]
    fn three_pages_use_list() {
        let mut list = list();
        let prps = build_slice(&[seg(0x10_0000, 3 * PAGE)], PAGE, &mut list).unwrap();
        assert_eq!(prps.prp1, 0x10_0000);
        assert_eq!(prps.prp2, Prp2::List { entries: 2 });
        assert_eq!(prps.prp2_value(0xdead_0000), 0xdead_0000);
        assert_eq!(u64::from_le(list[0]), 0x10_1000);
        assert_eq!(u64::from_le(list[1]), 0x10_2000);
        assert_eq!(list[2], 0);
    }

    #[test]
    fn scatter_list() {
        let mut list = list();
        let addrs = [0x7000_0000, 0x1234_5000, 0x9_8765_4000, 0x2000];
        let segs: Vec<Segment> = addrs.iter().map(|&a| seg(a, PAGE)).collect();
        let prps = build_slice(&segs, PAGE, &mut list).unwrap();
        assert_eq!(prps.prp1, addrs[0]);
        assert_eq!(prps.prp2, Prp2::List { entries: 3 });
        let entries: Vec<u64> = list[..3].iter().map(|&e| u64::from_le(e)).collect();
        assert_eq!(entries, addrs[1..]);
    }

    #[test]
    fn unaligned_first_and_short_last_segment() {
        let mut list = list();
        let segs = [
            seg(0x10_0800, 0x800),
            seg(0x20_0000, 2 * PAGE),
            seg(0x40_0000, 0x200),
        ];
        let prps = build_slice(&segs, PAGE, &mut list).unwrap();
        assert_eq!(prps.prp1, 0x10_0800);
        assert_eq!(prps.prp2, Prp2::List { entries: 3 });
        assert_eq!(u64::from_le(list[0]), 0x20_0000);
        assert_eq!(u64::from_le(list[1]), 0x20_1000);
        assert_eq!(u64::from_le(list[2]), 0x40_0000);
    }

    #[test]
    fn one_mebibyte() {
        let mut list = list();
        let prps = build_slice(&[seg(0x8000_0000, 1 << 20)], PAGE, &mut list).unwrap();
        assert_eq!(prps.prp2, Prp2::List { entries: 255 });
        for (i, &entry) in list[..255].iter().enumerate() {
            assert_eq!(u64::from_le(entry), 0x8000_0000 + (i as u64 + 1) * P);
        }
    }

    #[test]
    fn exactly_fits_and_one_page_too_many() {
        let mut list = list();
        // 513 pages: PRP Entry 1 plus all 512 list entries.
        let fits = 513 * PAGE;
        let prps = build_slice(&[seg(0x1_0000_0000, fits)], PAGE, &mut list).unwrap();
        assert_eq!(prps.prp2, Prp2::List { entries: 512 });
        assert_eq!(u64::from_le(list[511]), 0x1_0000_0000 + 512 * P);
        assert_eq!(
            build_slice(&[seg(0x1_0000_0000, fits + PAGE)], PAGE, &mut list),
            Err(PrpError::TooLong)
        );
        // The same length from an offset spans one page more.
        assert_eq!(
            build_slice(&[seg(0x1_0000_0200, fits)], PAGE, &mut list),
            Err(PrpError::TooLong)
        );
        // The advertised maximum fits from any dword offset.
        let max = u32::try_from(max_transfer_bytes(PAGE, list.len())).unwrap();
        assert_eq!(max, 512 * PAGE);
        for offset in [0, 4, 0x200, PAGE - 4] {
            let segs = [seg(0x1_0000_0000 + u64::from(offset), max)];
            assert!(
                build_slice(&segs, PAGE, &mut list).is_ok(),
                "offset {offset}"
            );
        }
    }

    #[test]
    fn small_lists() {
        // No list at all still allows PRP Entry 2 as a page.
        let prps = build_slice(&[seg(0x10_0000, 2 * PAGE)], PAGE, &mut []).unwrap();
        assert_eq!(prps.prp2, Prp2::Page(0x10_1000));
        assert_eq!(
            build_slice(&[seg(0x10_0000, 3 * PAGE)], PAGE, &mut []),
            Err(PrpError::TooLong)
        );
        let mut one = [0u64; 1];
        assert_eq!(
            build_slice(&[seg(0x10_0000, 3 * PAGE)], PAGE, &mut one),
            Err(PrpError::TooLong)
        );
        assert_eq!(max_transfer_bytes(PAGE, 0), P);
        assert_eq!(max_transfer_bytes(PAGE, 1), P);
        assert_eq!(max_transfer_bytes(PAGE, 2), 2 * P);
        assert_eq!(max_transfer_bytes(u32::MAX, usize::MAX), u64::MAX);
    }

    #[test]
    fn misaligned_segments() {
        let mut list = list();
        // Middle segment starting inside a page.
        let segs = [
            seg(0x10_0000, PAGE),
            seg(0x20_0200, PAGE - 0x200),
            seg(0x30_0000, PAGE),
        ];
        assert_eq!(
            build_slice(&segs, PAGE, &mut list),
            Err(PrpError::Misaligned { segment: 1 })
        );
        // First segment ending inside a page though more follow.
        let segs = [seg(0x10_0000, 0x200), seg(0x20_0000, PAGE)];
        assert_eq!(
            build_slice(&segs, PAGE, &mut list),
            Err(PrpError::Misaligned { segment: 0 })
        );
        // Middle segment ending inside a page.
        let segs = [
            seg(0x10_0000, PAGE),
            seg(0x20_0000, 0x200),
            seg(0x30_0000, PAGE),
        ];
        assert_eq!(
            build_slice(&segs, PAGE, &mut list),
            Err(PrpError::Misaligned { segment: 1 })
        );
        // First byte not dword aligned.
        assert_eq!(
            build_slice(&[seg(0x10_0002, 512)], PAGE, &mut list),
            Err(PrpError::Misaligned { segment: 0 })
        );
    }

    #[test]
    fn bad_inputs() {
        let mut list = list();
        assert_eq!(build_slice(&[], PAGE, &mut list), Err(PrpError::Empty));
        assert_eq!(
            build_slice(&[seg(0x10_0000, PAGE), seg(0x20_0000, 0)], PAGE, &mut list),
            Err(PrpError::ZeroLength { segment: 1 })
        );
        assert_eq!(
            build_slice(&[seg(u64::MAX - 0xfff, PAGE)], PAGE, &mut list),
            Err(PrpError::Overflow { segment: 0 })
        );
        for page_size in [0, 2048, 4095, 6144, 131072] {
            assert_eq!(
                build_slice(&[seg(0x10_0000, 512)], page_size, &mut list),
                Err(PrpError::InvalidPageSize)
            );
        }
    }

    #[test]
    fn top_of_address_space() {
        let mut list = list();
        // The last two pages of the address space, up to the last byte.
        let start = u64::MAX - 2 * P + 1;
        let prps = build_slice(&[seg(start, 2 * PAGE - 1)], PAGE, &mut list).unwrap();
        assert_eq!(prps.prp2, Prp2::Page(u64::MAX - P + 1));
        let prps = build_slice(&[seg(u64::MAX - P + 1, PAGE - 1)], PAGE, &mut list).unwrap();
        assert_eq!(prps.prp2, Prp2::None);
    }

    #[test]
    fn eight_kib_pages() {
        const PAGE8: u32 = 8192;
        let mut list = [0u64; 1024];
        let prps = build_slice(&[seg(0x10_0000, 2 * PAGE8)], PAGE8, &mut list).unwrap();
        assert_eq!(prps.prp2, Prp2::Page(0x10_2000));
        let segs = [seg(0x10_1000, 0x1000), seg(0x40_0000, 2 * PAGE8)];
        let prps = build_slice(&segs, PAGE8, &mut list).unwrap();
        assert_eq!(prps.prp1, 0x10_1000);
        assert_eq!(prps.prp2, Prp2::List { entries: 2 });
        assert_eq!(u64::from_le(list[0]), 0x40_0000);
        assert_eq!(u64::from_le(list[1]), 0x40_2000);
        // A 4 KiB-aligned middle segment is misaligned for 8 KiB pages.
        let segs = [seg(0x10_0000, PAGE8), seg(0x40_1000, PAGE8)];
        assert_eq!(
            build_slice(&segs, PAGE8, &mut list),
            Err(PrpError::Misaligned { segment: 1 })
        );
        assert_eq!(max_transfer_bytes(PAGE8, 1024), 1024 * 8192);
    }

    #[test]
    fn error_display() {
        assert_eq!(format!("{}", PrpError::Empty), "no data segments");
        assert_eq!(
            format!("{}", PrpError::Misaligned { segment: 2 }),
            "segment 2 is not aligned to the page boundary"
        );
        assert_eq!(
            format!("{}", PrpError::TooLong),
            "transfer needs more than one PRP list page"
        );
    }
}
