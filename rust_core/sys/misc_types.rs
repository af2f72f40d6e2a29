// SPDX-License-Identifier: GPL-2.0

//! The safe half of the misc character devices (see `misc.rs`): the trait
//! a device's files are served by, and the formatting of its name.

#![deny(unsafe_code)]

use super::bindings;
use super::sysfs_types::Attributes;
use super::uring::{Queued, UringCmd};
use core::fmt::{self, Write};
use kernel::error::Result;

/// What a misc device's files do: its ioctls.
pub(crate) trait FileOps: Attributes + Send + Sync {
    /// Handles ioctl `cmd` with argument `arg` (a user address or a
    /// number); returns what the ioctl returns, or an error.
    fn ioctl(&self, cmd: u32, arg: usize) -> Result<isize>;
}

/// What a misc device's files do with io_uring commands
/// (`IORING_OP_URING_CMD`), beyond their ioctls.
pub(crate) trait UringFileOps: FileOps {
    /// Starts command `cmd`: returns [`Queued`] once it went out with a
    /// request (it is completed when that ends), or the error io_uring
    /// completes it with.
    fn uring_cmd(&self, cmd: UringCmd<'_>) -> Result<Queued>;
}

/// Formats into a fixed buffer, keeping a terminating NUL.
pub(super) struct NameBuf<'a> {
    buf: &'a mut [u8; 32],
    len: usize,
}

impl<'a> NameBuf<'a> {
    /// Writes into `buf` from its start.
    pub(super) fn new(buf: &'a mut [u8; 32]) -> Self {
        Self { buf, len: 0 }
    }
}

impl Write for NameBuf<'_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        for &b in s.as_bytes() {
            // Keep the last byte for the NUL.
            if self.len + 1 >= self.buf.len() {
                return Err(fmt::Error);
            }
            *self.buf.get_mut(self.len).ok_or(fmt::Error)? = b;
            self.len += 1;
        }
        Ok(())
    }
}

/// The file operations of a [`MiscDevice<T>`] whose files also take
/// io_uring commands, and poll for them (`IORING_SETUP_IOPOLL`).
pub(crate) const fn file_operations_uring<T: UringFileOps>() -> bindings::file_operations {
    let mut fops = super::misc::file_operations::<T>();
    fops.uring_cmd = Some(super::misc::uring_cmd::<T>);
    fops.uring_cmd_iopoll = Some(super::uring::iopoll);
    fops
}
