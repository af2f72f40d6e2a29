// SPDX-License-Identifier: GPL-2.0

//! A namespace's block-layer limits from what the controller reports:
//! discard (Dataset Management) and Write Zeroes sizes from the NVM Command
//! Set Identify Controller structure, physical block, minimum and optimal
//! I/O sizes from Identify Namespace and AWUPF. The C driver computes the
//! same in `nvme_config_discard`, `nvme_update_disk_info` and
//! `nvme_init_non_mdts_limits` (drivers/nvme/host/core.c).

use super::command::DsmRange;
use super::identify::{IdentifyControllerNvm, WriteSizes};
use super::words::WordSink;

/// Most ranges one Dataset Management command can carry (NR is 8 bits,
/// zero-based).
pub(crate) const MAX_DSM_RANGES: u16 = 256;

/// Bytes of one range in a Dataset Management range list.
const DSM_RANGE_BYTES: u32 = 16;

/// Logical blocks in one Write Zeroes command (NLB is 16 bits, zero-based).
const MAX_WRITE_ZEROES_BLOCKS: u64 = 65536;

/// Converts `blocks` of `1 << lba_shift` bytes to 512-byte sectors, capped
/// at `u32::MAX` (the block layer's limits are 32-bit sector counts; a
/// block below 512 bytes, which no disk has, also gives `u32::MAX`).
fn blocks_to_sectors(blocks: u64, lba_shift: u32) -> u32 {
    let Some(shift) = lba_shift.checked_sub(9).filter(|&s| s < 64) else {
        return u32::MAX;
    };
    if blocks > u64::MAX >> shift {
        return u32::MAX;
    }
    u32::try_from(blocks << shift).unwrap_or(u32::MAX)
}

/// Discard limits of a namespace's queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DiscardLimits {
    /// Most 512-byte sectors in one discard request (0: no discard).
    pub(crate) max_sectors: u32,
    /// Most ranges (one per bio) in one discard request.
    pub(crate) max_ranges: u16,
}

/// The discard limits for a namespace of `1 << lba_shift`-byte blocks:
/// none unless `dsm` (ONCS says Dataset Management is supported). A
/// request may be as long as the smaller of DMRSL and DMSL allow (so each
/// of its ranges is within DMRSL), and have as many ranges as DMRL allows
/// (256 if it says nothing) and a range list of `page_size` bytes holds.
pub(crate) fn discard(
    dsm: bool,
    nvm: &IdentifyControllerNvm,
    lba_shift: u32,
    page_size: u32,
) -> DiscardLimits {
    let page_ranges = u16::try_from(page_size / DSM_RANGE_BYTES).unwrap_or(u16::MAX);
    let max_ranges = nvm
        .dsm_ranges()
        .map_or(MAX_DSM_RANGES, u16::from)
        .min(MAX_DSM_RANGES)
        .min(page_ranges)
        .max(1);
    if !dsm {
        return DiscardLimits {
            max_sectors: 0,
            max_ranges,
        };
    }
    let blocks = match (nvm.dsm_range_blocks(), nvm.dsm_blocks()) {
        (Some(range), Some(total)) => Some(u64::from(range).min(total)),
        (Some(range), None) => Some(u64::from(range)),
        (None, Some(total)) => Some(total),
        (None, None) => None,
    };
    DiscardLimits {
        max_sectors: blocks.map_or(u32::MAX, |b| blocks_to_sectors(b, lba_shift)),
        max_ranges,
    }
}

/// The most 512-byte sectors in one Write Zeroes request for a namespace
/// of `1 << lba_shift`-byte blocks: 0 unless `supported` (ONCS), else what
/// one command can name (65536 blocks), within WZSL if the controller
/// reports it (`mps_min_shift` is CAP.MPSMIN as a shift).
pub(crate) fn write_zeroes_sectors(
    supported: bool,
    nvm: &IdentifyControllerNvm,
    mps_min_shift: u32,
    lba_shift: u32,
) -> u32 {
    if !supported {
        return 0;
    }
    let mut blocks = MAX_WRITE_ZEROES_BLOCKS;
    if let Some(shift) = nvm.write_zeroes_shift(mps_min_shift) {
        // A limit below one block leaves no Write Zeroes at all.
        let limit = shift
            .checked_sub(lba_shift)
            .and_then(|s| 1u64.checked_shl(s))
            .unwrap_or(if shift < lba_shift { 0 } else { u64::MAX });
        blocks = blocks.min(limit);
    }
    blocks_to_sectors(blocks, lba_shift)
}

/// A namespace's physical block size and I/O sizes, in bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BlockSizes {
    /// The smallest unit written without a read-modify-write and
    /// atomically across a power failure.
    pub(crate) physical: u32,
    /// The smallest preferred I/O (the preferred write granularity).
    pub(crate) io_min: u32,
    /// The optimal I/O size (0: not reported).
    pub(crate) io_opt: u32,
    /// The unit discards are sized and aligned in: the preferred
    /// deallocate granularity, or one block if it is not reported or does
    /// not fit in 32 bits.
    pub(crate) discard_granularity: u32,
}

/// The block sizes of a namespace of `1 << lba_shift`-byte blocks that
/// reports `sizes`, on a controller whose AWUPF covers `ctrl_atomic`
/// blocks: the preferred write granularity, but no larger than the atomic
/// write unit, is the physical block (file systems take a physical block
/// write to be atomic), as the C driver has it; discards go in units of
/// the preferred deallocate granularity, as Linux 6.13 and later have it.
pub(crate) fn block_sizes(sizes: WriteSizes, ctrl_atomic: u32, lba_shift: u32) -> BlockSizes {
    let bs = 1u32.checked_shl(lba_shift).unwrap_or(0);
    let atomic = bs.saturating_mul(sizes.atomic.unwrap_or(ctrl_atomic));
    let preferred = bs.saturating_mul(sizes.preferred);
    BlockSizes {
        physical: preferred.min(atomic).max(bs),
        io_min: preferred.max(bs),
        io_opt: bs.saturating_mul(sizes.optimal),
        discard_granularity: bs.checked_mul(sizes.deallocate).unwrap_or(bs).max(bs),
    }
}

/// Fills a Dataset Management range list in `list` (64-bit words, as a
/// DMA pool block takes them, only ever written) with `ranges` (starting
/// LBA, blocks) and zeroes the rest of it, so a controller that reads more
/// than NR says finds no stale ranges. Returns the number of ranges, or
/// `None` if there are none, more than `max_ranges` or more than `list`
/// holds.
pub(crate) fn fill_dsm_ranges<L: WordSink + ?Sized>(
    list: &mut L,
    ranges: impl IntoIterator<Item = (u64, u32)>,
    max_ranges: u16,
) -> Option<u16> {
    let mut count: u16 = 0;
    let mut next = 0usize;
    for (slba, nlb) in ranges {
        if count >= max_ranges.min(MAX_DSM_RANGES) {
            return None;
        }
        let bytes = DsmRange::new(slba, nlb).to_bytes();
        for half in bytes.chunks_exact(8) {
            let word = <[u8; 8]>::try_from(half).ok()?;
            // The list is little-endian bytes; the CPU stores the word in
            // its own order, so take the bytes as they are.
            if !list.put(next, u64::from_ne_bytes(word)) {
                return None;
            }
            next += 1;
        }
        count += 1;
    }
    list.zero_from(next);
    (count > 0).then_some(count)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spec::identify::{IdentifyControllerNvm, IDENTIFY_DATA_SIZE};

    /// An NVM Identify Controller structure with the given limits.
    fn nvm(wzsl: u8, dmrl: u8, dmrsl: u32, dmsl: u64) -> IdentifyControllerNvm {
        let mut page = [0u8; IDENTIFY_DATA_SIZE];
        page[0] = 7; // VSL.
        page[1] = wzsl;
        page[3] = dmrl;
        page[4..8].copy_from_slice(&dmrsl.to_le_bytes());
        page[8..16].copy_from_slice(&dmsl.to_le_bytes());
        IdentifyControllerNvm::parse(&page)
    }

    #[test]
    fn nvm_fields() {
        let id = nvm(3, 128, 0x0102_0304, 0x0a0b_0c0d_0e0f_1011);
        assert_eq!(id.write_zeroes_shift(12), Some(15));
        assert_eq!(id.dsm_ranges(), Some(128));
        assert_eq!(id.dsm_range_blocks(), Some(0x0102_0304));
        assert_eq!(id.dsm_blocks(), Some(0x0a0b_0c0d_0e0f_1011));
        assert_eq!(id.verify_and_uncorrectable_limits(), (7, 0));
        let none = IdentifyControllerNvm::default();
        assert_eq!(none.write_zeroes_shift(12), None);
        assert_eq!(none.dsm_ranges(), None);
        assert_eq!(none.dsm_range_blocks(), None);
        assert_eq!(none.dsm_blocks(), None);
    }

    #[test]
    fn discard_without_limits() {
        let none = IdentifyControllerNvm::default();
        let want = DiscardLimits {
            max_sectors: u32::MAX,
            max_ranges: 256,
        };
        assert_eq!(discard(true, &none, 9, 4096), want);
        assert_eq!(discard(true, &none, 12, 4096), want);
        assert_eq!(discard(false, &none, 9, 4096).max_sectors, 0);
        // A smaller page holds fewer ranges.
        assert_eq!(discard(true, &none, 9, 1024).max_ranges, 64);
        assert_eq!(discard(true, &none, 9, 8).max_ranges, 1);
    }

    #[test]
    fn discard_qemu_7_2() {
        // QEMU 7.2 reports DMRSL only: its largest request (2 GiB - 512)
        // in blocks of the namespace with the largest blocks.
        let id = nvm(0, 0, 4_194_303, 0);
        assert_eq!(discard(true, &id, 9, 4096).max_sectors, 4_194_303);
        assert_eq!(discard(true, &id, 9, 4096).max_ranges, 256);
        let id = nvm(0, 0, 524_287, 0);
        assert_eq!(discard(true, &id, 12, 4096).max_sectors, 4_194_296);
    }

    #[test]
    fn discard_with_limits() {
        // DMSL smaller than DMRSL limits the request.
        let id = nvm(0, 16, 1000, 300);
        assert_eq!(
            discard(true, &id, 9, 4096),
            DiscardLimits {
                max_sectors: 300,
                max_ranges: 16
            }
        );
        // DMSL alone.
        assert_eq!(discard(true, &nvm(0, 0, 0, 10), 12, 4096).max_sectors, 80);
        // A range size beyond 32-bit sectors is no limit.
        let id = nvm(0, 1, u32::MAX, 0);
        assert_eq!(
            discard(true, &id, 12, 4096),
            DiscardLimits {
                max_sectors: u32::MAX,
                max_ranges: 1
            }
        );
        assert_eq!(
            discard(true, &nvm(0, 0, 0, u64::MAX), 12, 4096).max_sectors,
            u32::MAX
        );
    }

    #[test]
    fn write_zeroes() {
        let none = IdentifyControllerNvm::default();
        assert_eq!(write_zeroes_sectors(true, &none, 12, 9), 65536);
        assert_eq!(write_zeroes_sectors(true, &none, 12, 12), 65536 * 8);
        assert_eq!(write_zeroes_sectors(false, &none, 12, 9), 0);
        // WZSL 3 with 4 KiB pages: 32 KiB.
        let id = nvm(3, 0, 0, 0);
        assert_eq!(write_zeroes_sectors(true, &id, 12, 9), 64);
        assert_eq!(write_zeroes_sectors(true, &id, 12, 12), 64);
        // A limit above the command's own changes nothing.
        let id = nvm(200, 0, 0, 0);
        assert_eq!(write_zeroes_sectors(true, &id, 12, 9), 65536);
        assert_eq!(
            write_zeroes_sectors(true, &nvm(255, 0, 0, 0), u32::MAX, 9),
            65536
        );
    }

    #[test]
    fn sector_conversion() {
        assert_eq!(blocks_to_sectors(1, 9), 1);
        assert_eq!(blocks_to_sectors(1, 12), 8);
        assert_eq!(blocks_to_sectors(u64::from(u32::MAX), 9), u32::MAX);
        assert_eq!(blocks_to_sectors(1 << 61, 12), u32::MAX);
        assert_eq!(blocks_to_sectors(u64::MAX, 12), u32::MAX);
        assert_eq!(blocks_to_sectors(1, 8), u32::MAX);
    }

    #[test]
    fn block_sizes_plain() {
        let plain = WriteSizes {
            preferred: 1,
            optimal: 0,
            atomic: None,
            deallocate: 1,
        };
        let want = BlockSizes {
            physical: 512,
            io_min: 512,
            io_opt: 0,
            discard_granularity: 512,
        };
        assert_eq!(block_sizes(plain, 1, 9), want);
    }

    #[test]
    fn block_sizes_reported() {
        // NPWG 8 blocks, NOWS 64 blocks, AWUPF 8 blocks: 4 KiB physical.
        let sizes = WriteSizes {
            preferred: 8,
            optimal: 64,
            atomic: None,
            deallocate: 8,
        };
        let want = BlockSizes {
            physical: 4096,
            io_min: 4096,
            io_opt: 32768,
            discard_granularity: 4096,
        };
        assert_eq!(block_sizes(sizes, 8, 9), want);
        // A smaller atomic unit limits the physical block, not io_min.
        assert_eq!(block_sizes(sizes, 1, 9).physical, 512);
        assert_eq!(block_sizes(sizes, 1, 9).io_min, 4096);
        // The namespace's own atomic unit wins over the controller's.
        let own = WriteSizes {
            atomic: Some(2),
            ..sizes
        };
        assert_eq!(block_sizes(own, 8, 9).physical, 1024);
        // Saturates instead of overflowing.
        let huge = WriteSizes {
            preferred: 65536,
            optimal: 65536,
            atomic: Some(65536),
            deallocate: 65536,
        };
        assert_eq!(block_sizes(huge, 65536, 16).physical, u32::MAX);
        // A deallocate granularity beyond 32 bits falls back to one block.
        assert_eq!(block_sizes(huge, 65536, 16).discard_granularity, 65536);
    }

    #[test]
    fn namespace_write_sizes() {
        let mut page = [0u8; IDENTIFY_DATA_SIZE];
        let parse = |page: &[u8; IDENTIFY_DATA_SIZE]| {
            crate::spec::identify::IdentifyNamespace::parse(page).write_sizes()
        };
        // With NSFEAT 0 none of these is valid.
        page[36] = 7; // NAWUPF: 8 blocks.
        page[64] = 3; // NPWG: 4 blocks.
        page[72] = 15; // NOWS: 16 blocks.
        page[68] = 7; // NPDG: 8 blocks.
        page[70] = 3; // NPDA: 4 blocks.
        assert_eq!(
            parse(&page),
            WriteSizes {
                preferred: 1,
                optimal: 0,
                atomic: None,
                deallocate: 1,
            }
        );
        page[24] = 0x12; // NSFEAT: atomics and optimal I/O fields.
        assert_eq!(
            parse(&page),
            WriteSizes {
                preferred: 4,
                optimal: 16,
                atomic: Some(8),
                deallocate: 8,
            }
        );
        page[70] = 15; // NPDA 16 blocks: the larger of the two wins.
        assert_eq!(parse(&page).deallocate, 16);
        page[70] = 3;
        page[42] = 1; // NABO: an offset the block layer cannot use.
        assert_eq!(parse(&page).atomic, Some(1));
        page[42] = 0;
        page[36] = 0; // NAWUPF 0: the controller's AWUPF holds.
        page[72] = 0; // NOWS 0: not reported.
        assert_eq!(
            parse(&page),
            WriteSizes {
                preferred: 4,
                optimal: 0,
                atomic: None,
                deallocate: 8,
            }
        );
    }

    #[test]
    fn controller_atomic_unit() {
        let mut page = [0u8; IDENTIFY_DATA_SIZE];
        let id = crate::spec::identify::IdentifyController::parse(&page);
        assert_eq!(id.atomic_write_blocks(), 1);
        page[528] = 0xff;
        page[529] = 0xff;
        let id = crate::spec::identify::IdentifyController::parse(&page);
        assert_eq!(id.atomic_write_blocks(), 65536);
    }

    #[test]
    fn dsm_list() {
        let mut list = [0xffff_ffff_ffff_ffffu64; 8];
        let ranges = [(0x0102_0304_0506_0708, 0x10), (0x20, 8)];
        assert_eq!(fill_dsm_ranges(&mut list, ranges, 256), Some(2));
        let bytes: Vec<u8> = list.iter().flat_map(|w| w.to_ne_bytes()).collect();
        let mut want = vec![0u8; 64];
        want[..16].copy_from_slice(&DsmRange::new(0x0102_0304_0506_0708, 0x10).to_bytes());
        want[16..32].copy_from_slice(&DsmRange::new(0x20, 8).to_bytes());
        assert_eq!(bytes, want);
    }

    #[test]
    fn dsm_list_limits() {
        let mut list = [0u64; 8];
        // Four ranges fit in 64 bytes, a fifth does not.
        let five = (0..5).map(|i| (i * 100, 1));
        assert_eq!(
            fill_dsm_ranges(&mut list, five.clone().take(4), 256),
            Some(4)
        );
        assert_eq!(fill_dsm_ranges(&mut list, five, 256), None);
        // No more than `max_ranges`.
        let two = [(0, 1), (10, 1)];
        assert_eq!(fill_dsm_ranges(&mut list, two, 1), None);
        assert_eq!(fill_dsm_ranges(&mut list, two, 2), Some(2));
        // None at all.
        assert_eq!(fill_dsm_ranges(&mut list, [], 256), None);
        // Never more than 256, however large the list.
        let mut big = vec![0u64; 1024];
        let many = (0..257).map(|i| (i, 1));
        assert_eq!(
            fill_dsm_ranges(&mut big[..], many.clone().take(256), 300),
            Some(256)
        );
        assert_eq!(fill_dsm_ranges(&mut big[..], many, 300), None);
    }
}
