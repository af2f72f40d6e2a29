// SPDX-License-Identifier: GPL-2.0

//! A request as the controller sees it: its data DMA-mapped and described
//! by PRP1, PRP2 and, for longer transfers, a PRP list page (NVMe Base
//! Specification 2.0, section 4.1.1), and its command sent on a queue.
//! Shared by the I/O queues and the admin queue.

#![deny(unsafe_code)]

use crate::queue::QueuePair;
use crate::spec::command::{command_id, Command};
use crate::spec::prp::{self, PrpError, Segment};
use crate::spec::words::WordSink;
use crate::sys::blk::{BlkStatus, Operations, Request};
use crate::sys::dmapool::{DmaPool, PoolBlock};
use crate::sys::pci::PciDevice;
use crate::sys::print::{dev_err, dev_warn};
use kernel::error::code::{EBUSY, ENOMEM};
use kernel::sync::Arc;

/// A request's data described for the controller.
pub(crate) struct Prps {
    pub(crate) prp1: u64,
    pub(crate) prp2: u64,
    /// The PRP list, for a request that needs one; it must stay allocated
    /// until the request ends.
    pub(crate) list: Option<PoolBlock>,
}

/// DMA-maps `rq`'s data for `pdev` and describes it with PRPs of
/// `page_size` bytes, taking a list page from `pool` when two entries are
/// not enough. On error nothing stays allocated, but the mapping may
/// remain: the caller unmaps the request ([`Request::dma_unmap`]).
pub(crate) fn map_prps<T: Operations>(
    rq: &mut Request<T>,
    pdev: &PciDevice,
    pool: &Arc<DmaPool>,
    page_size: u32,
) -> Result<Prps, BlkStatus> {
    // Out of mapping space (bounce buffers) for now: blk-mq retries
    // later. A request the mapping rejects would fail every time.
    rq.dma_map(pdev).map_err(|e| {
        if e == ENOMEM {
            BlkStatus::Resource
        } else {
            dev_err!(pdev, "cannot map a request for DMA: {e:?}\n");
            BlkStatus::IoError
        }
    })?;
    // Most requests fit in PRP1 and PRP2; only longer ones need a list.
    match prp::build(rq.dma_segments().map(segment), page_size, &mut []) {
        Ok(prps) => {
            return Ok(Prps {
                prp1: prps.prp1,
                prp2: prps.prp2_value(0),
                list: None,
            })
        }
        Err(PrpError::TooLong) => {}
        Err(e) => {
            dev_err!(pdev, "cannot describe a request with PRPs: {e}\n");
            return Err(BlkStatus::IoError);
        }
    }
    let mut page = pool.alloc_atomic().ok_or(BlkStatus::Resource)?;
    let prps = prp::build(rq.dma_segments().map(segment), page_size, &mut page).map_err(|e| {
        dev_err!(pdev, "cannot describe a request with PRPs: {e}\n");
        BlkStatus::IoError
    })?;
    Ok(Prps {
        prp1: prps.prp1,
        prp2: prps.prp2_value(page.dma_handle()),
        list: Some(page),
    })
}

/// Starts `rq` and sends it as `cmd` (whose command identifier this sets
/// from the tag and start number) on `queue`, ringing the doorbell now if
/// `last`. `lost` (fault injection) names a command from user space that
/// is started but kept from the device, so that it stalls. If the queue
/// refuses it, `release` frees what the request held and the status says
/// why (a full queue: try again later), unless a cancel claimed the
/// request meanwhile, which then ends it.
pub(crate) fn send<T: Operations>(
    pdev: &PciDevice,
    queue: &QueuePair,
    rq: &mut Request<T>,
    mut cmd: Command,
    last: bool,
    lost: Option<&str>,
    release: impl FnOnce(&mut Request<T>),
) -> BlkStatus {
    let sequence = rq.start();
    cmd.set_cid(command_id(rq.tag(), sequence));
    if let Some(what) = lost {
        dev_warn!(
            pdev,
            "{what} command {:#04x} from user space not sent (injected)\n",
            cmd.opcode()
        );
        return BlkStatus::Ok;
    }
    match queue.submit(cmd, last) {
        Ok(()) => BlkStatus::Ok,
        // Whoever claimed it (a cancel) ends it; blk-mq must not.
        Err(_) if !rq.claim() => BlkStatus::Ok,
        Err(e) => {
            release(rq);
            // A full queue frees up as commands complete: try again.
            if e == EBUSY {
                BlkStatus::Resource
            } else {
                BlkStatus::IoError
            }
        }
    }
}

/// A mapped segment as [`prp::build`] takes it.
fn segment((addr, len): (u64, u32)) -> Segment {
    Segment { addr, len }
}

/// A DMA pool block takes PRP lists and DSM ranges word by word, with
/// volatile writes, and is never borrowed as memory the device may read.
impl WordSink for PoolBlock {
    fn capacity(&self) -> usize {
        self.words()
    }

    fn put(&mut self, index: usize, word: u64) -> bool {
        self.write_word(index, word)
    }
}
