// SPDX-License-Identifier: GPL-2.0

//! rsnvme: an NVMe PCI block driver whose device logic is written in Rust.
//!
//! The C shim (`c_shim/rsnvme_shim.c`) owns the `struct pci_driver` and
//! forwards probe and remove to [`ffi`]. From there on everything is Rust:
//!
//! - [`spec`]: NVMe wire and register definitions, pure and host tested.
//! - `sys`: the thin layer over kernel C APIs (PCI, MMIO, printing); the
//!   only place with `unsafe` besides [`ffi`].
//! - `driver`: controller logic, safe Rust on top of `sys`.
//!
//! Kbuild builds this crate with `--cfg MODULE`; `cargo test` builds only the
//! pure parts on the host.

#![cfg_attr(not(MODULE), allow(dead_code))]

pub mod spec;

#[cfg(MODULE)]
mod admin;
#[cfg(MODULE)]
mod controller;
#[cfg(MODULE)]
mod driver;
#[cfg(MODULE)]
pub mod ffi;
#[cfg(MODULE)]
mod io;
#[cfg(MODULE)]
mod sys;
