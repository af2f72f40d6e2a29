// SPDX-License-Identifier: GPL-2.0

//! NVMe protocol definitions: pure data types with no kernel dependency.
//!
//! Everything here follows the NVM Express Base Specification 2.0 and is
//! unit tested on the host with `cargo test`.

#![deny(unsafe_code)]

pub(crate) mod regs;
