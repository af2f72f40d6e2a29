// SPDX-License-Identifier: GPL-2.0

//! NVMe protocol definitions: pure data types with no kernel dependency.
//!
//! Everything here follows the NVM Express Base Specification 2.0 and is
//! unit tested on the host with `cargo test`.

#![deny(unsafe_code)]
// Like include/linux/nvme.h, these definitions cover the protocol rather
// than only what the driver uses today; the host tests exercise every item.
#![cfg_attr(MODULE, allow(dead_code))]

pub(crate) mod command;
pub(crate) mod completion;
pub(crate) mod event;
pub(crate) mod identify;
pub(crate) mod limits;
pub(crate) mod nsid;
pub(crate) mod passthru;
pub(crate) mod prp;
pub(crate) mod queue;
pub(crate) mod regs;
pub(crate) mod words;
