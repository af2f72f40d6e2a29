// SPDX-License-Identifier: GPL-2.0

//! rsnvme: an NVMe PCI block driver whose device logic is written in Rust.
//!
//! The C shim (`c_shim/rsnvme_shim.c`) owns the `struct pci_driver` and
//! forwards probe and remove to [`ffi`]. From there on everything is Rust:
//!
//! - [`spec`]: NVMe wire and register definitions, pure and host tested.
//! - `sys`: the thin layer over kernel C APIs (PCI, MMIO, DMA, IRQ,
//!   blk-mq, sysfs); the only place with `unsafe` besides [`ffi`].
//! - The driver, safe Rust on top of `sys` (`#![deny(unsafe_code)]`):
//!   `registers` (typed register access, reset/enable/shutdown), `queue`
//!   (one queue pair), `admin` (admin commands), `io` (the blk-mq driver),
//!   `controller` (bring-up in steps and teardown), `mgmt` (the
//!   controller's character device, ioctls and sysfs for nvme-cli), `ns`
//!   (a namespace disk's sysfs and ioctls), `scan` (namespaces at
//!   bring-up and on a rescan), `fault` (fault injection
//!   for tests) and `tables` (the C tables of the character device and
//!   the disks).
//!
//! The whole crate denies `unsafe_code`: only items marked
//! `#[allow(unsafe_code)]`, all in `sys` and [`ffi`], may hold `unsafe`.
//!
//! Kbuild builds this crate with `--cfg MODULE`; `cargo test` builds only the
//! pure parts on the host.

#![cfg_attr(not(MODULE), allow(dead_code))]
#![deny(unsafe_code)]

pub mod spec;
mod state;

#[cfg(MODULE)]
mod admin;
#[cfg(MODULE)]
mod controller;
#[cfg(MODULE)]
mod ctrl;
#[cfg(MODULE)]
mod data;
#[cfg(MODULE)]
mod fault;
#[cfg(MODULE)]
pub mod ffi;
#[cfg(MODULE)]
mod generic;
#[cfg(MODULE)]
mod io;
#[cfg(MODULE)]
mod mgmt;
#[cfg(MODULE)]
mod ns;
#[cfg(MODULE)]
mod queue;
#[cfg(MODULE)]
mod registers;
#[cfg(MODULE)]
mod scan;
#[cfg(MODULE)]
mod start;
#[cfg(MODULE)]
mod sys;
#[cfg(MODULE)]
mod tables;
