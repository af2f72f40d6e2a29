// SPDX-License-Identifier: GPL-2.0

//! The NVMe passthrough ioctls of the kernel's user API
//! (`include/uapi/linux/nvme_ioctl.h`): their numbers, the layout of
//! `struct nvme_passthru_cmd` and `struct nvme_passthru_cmd64` parsed by
//! offset, and the checks a command from user space must pass before it
//! is sent (data direction against the opcode, no metadata, which
//! commands need `CAP_SYS_ADMIN`).

use super::command::{opcode, Command};

/// `_IOC(dir, 'N', nr, size)` as `include/uapi/asm-generic/ioctl.h`
/// encodes it: direction in bits 31:30, size in 29:16, type in 15:8.
const fn ioc(dir: u32, nr: u32, size: u32) -> u32 {
    (dir << 30) | (size << 16) | ((b'N' as u32) << 8) | nr
}

/// `_IOC_WRITE | _IOC_READ`: the kernel reads and writes the argument.
const IOC_READ_WRITE: u32 = 3;
/// `_IOC_WRITE`: user space writes the argument, the kernel reads it.
const IOC_WRITE: u32 = 1;

/// Size of `struct nvme_passthru_cmd`.
pub(crate) const PASSTHRU_SIZE: usize = 72;
/// Size of `struct nvme_passthru_cmd64`.
pub(crate) const PASSTHRU64_SIZE: usize = 80;
/// Size of `struct nvme_user_io`.
pub(crate) const USER_IO_SIZE: usize = 48;

/// `NVME_IOCTL_ID`: the namespace ID of a namespace device.
pub(crate) const IOCTL_ID: u32 = ioc(0, 0x40, 0);
/// `NVME_IOCTL_ADMIN_CMD`: an admin command, 32-bit result.
pub(crate) const IOCTL_ADMIN_CMD: u32 = ioc(IOC_READ_WRITE, 0x41, PASSTHRU_SIZE as u32);
/// `NVME_IOCTL_SUBMIT_IO`: a read or write from `struct nvme_user_io`.
pub(crate) const IOCTL_SUBMIT_IO: u32 = ioc(IOC_WRITE, 0x42, USER_IO_SIZE as u32);
/// `NVME_IOCTL_IO_CMD`: an I/O command, 32-bit result.
pub(crate) const IOCTL_IO_CMD: u32 = ioc(IOC_READ_WRITE, 0x43, PASSTHRU_SIZE as u32);
/// `NVME_IOCTL_RESET`: reset the controller.
pub(crate) const IOCTL_RESET: u32 = ioc(0, 0x44, 0);
/// `NVME_IOCTL_SUBSYS_RESET`: NVM subsystem reset.
pub(crate) const IOCTL_SUBSYS_RESET: u32 = ioc(0, 0x45, 0);
/// `NVME_IOCTL_RESCAN`: rescan the namespaces.
pub(crate) const IOCTL_RESCAN: u32 = ioc(0, 0x46, 0);
/// `NVME_IOCTL_ADMIN64_CMD`: an admin command, 64-bit result.
pub(crate) const IOCTL_ADMIN64_CMD: u32 = ioc(IOC_READ_WRITE, 0x47, PASSTHRU64_SIZE as u32);
/// `NVME_IOCTL_IO64_CMD`: an I/O command, 64-bit result.
pub(crate) const IOCTL_IO64_CMD: u32 = ioc(IOC_READ_WRITE, 0x48, PASSTHRU64_SIZE as u32);

/// Size of `struct nvme_uring_cmd`, the command in a 128-byte SQE.
pub(crate) const URING_CMD_SIZE: usize = 72;
/// `NVME_URING_CMD_IO`: an I/O command through io_uring.
pub(crate) const URING_CMD_IO: u32 = ioc(IOC_READ_WRITE, 0x80, URING_CMD_SIZE as u32);
/// `NVME_URING_CMD_IO_VEC`: the same, with the buffer given as an iovec
/// array.
pub(crate) const URING_CMD_IO_VEC: u32 = ioc(IOC_READ_WRITE, 0x81, URING_CMD_SIZE as u32);
/// Most iovecs a vectored command may name (`UIO_MAXIOV`).
pub(crate) const MAX_IOVECS: u32 = 1024;

/// Where the result field lives in the two structures.
pub(crate) const RESULT_OFFSET: usize = 68;
/// Where the 64-bit result lives in `struct nvme_passthru_cmd64`.
pub(crate) const RESULT64_OFFSET: usize = 72;

/// Which way a command moves data, from opcode bits 1:0 (NVMe Base
/// Specification 2.0, "Opcodes for Admin Commands").
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Direction {
    /// No data.
    None,
    /// Host to controller (the command writes to the controller).
    ToDevice,
    /// Controller to host (the command reads from the controller).
    FromDevice,
}

/// Why a passthrough command from user space is refused (`EINVAL`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PassthruError {
    /// The structure is shorter than its ioctl says.
    Short,
    /// Flags (fused operation, SGLs) are set; none are supported.
    Flags,
    /// A metadata buffer is given; not supported.
    Metadata,
    /// Opcode bits 1:0 are 11b (bidirectional), not supported.
    Bidirectional,
    /// A data length for an opcode that transfers no data.
    DataWithoutDirection,
    /// The data length exceeds what one command may move.
    TooLong,
    /// A data length with no buffer address.
    NoBuffer,
    /// `NVME_IOCTL_SUBMIT_IO` with an opcode other than Write, Read or
    /// Compare.
    Opcode,
}

/// A passthrough command as user space gave it, checked.
#[derive(Clone, Copy)]
pub(crate) struct Passthru {
    /// The command to send (command identifier and PRPs still to set).
    pub(crate) command: Command,
    /// User address of the data buffer.
    pub(crate) addr: u64,
    /// Length of the data buffer in bytes (0: no data).
    pub(crate) data_len: u32,
    /// Direction the data moves.
    pub(crate) direction: Direction,
    /// Timeout in milliseconds; 0 for the driver's default.
    pub(crate) timeout_ms: u32,
}

fn u32_at(raw: &[u8], offset: usize) -> u32 {
    let mut b = [0u8; 4];
    if let Some(src) = raw.get(offset..offset + 4) {
        b.copy_from_slice(src);
    }
    u32::from_le_bytes(b)
}

fn u64_at(raw: &[u8], offset: usize) -> u64 {
    let mut b = [0u8; 8];
    if let Some(src) = raw.get(offset..offset + 8) {
        b.copy_from_slice(src);
    }
    u64::from_le_bytes(b)
}

/// The direction opcode bits 1:0 give, or `None` for bidirectional.
pub(crate) fn direction(op: u8) -> Option<Direction> {
    match op & 3 {
        0 => Some(Direction::None),
        1 => Some(Direction::ToDevice),
        2 => Some(Direction::FromDevice),
        _ => None,
    }
}

/// Parses and checks `struct nvme_passthru_cmd` (or the first 72 bytes of
/// `struct nvme_passthru_cmd64`, which share the layout) in `raw`, for a
/// transfer of at most `max_len` bytes.
pub(crate) fn parse(raw: &[u8], max_len: u32) -> Result<Passthru, PassthruError> {
    if raw.len() < PASSTHRU_SIZE {
        return Err(PassthruError::Short);
    }
    let op = raw.first().copied().unwrap_or(0);
    let flags = raw.get(1).copied().unwrap_or(0);
    if flags != 0 {
        return Err(PassthruError::Flags);
    }
    let metadata = u64_at(raw, 16);
    let metadata_len = u32_at(raw, 32);
    if metadata != 0 || metadata_len != 0 {
        return Err(PassthruError::Metadata);
    }
    let addr = u64_at(raw, 24);
    let data_len = u32_at(raw, 36);
    let dir = direction(op).ok_or(PassthruError::Bidirectional)?;
    if data_len != 0 {
        if dir == Direction::None {
            return Err(PassthruError::DataWithoutDirection);
        }
        if data_len > max_len {
            return Err(PassthruError::TooLong);
        }
        if addr == 0 {
            return Err(PassthruError::NoBuffer);
        }
    }
    let command = Command::passthru(
        op,
        u32_at(raw, 4),
        [
            u32_at(raw, 8),
            u32_at(raw, 12),
            u32_at(raw, 40),
            u32_at(raw, 44),
            u32_at(raw, 48),
            u32_at(raw, 52),
            u32_at(raw, 56),
            u32_at(raw, 60),
        ],
    );
    Ok(Passthru {
        command,
        addr,
        data_len,
        direction: if data_len == 0 { Direction::None } else { dir },
        timeout_ms: u32_at(raw, 64),
    })
}

/// Parses and checks `struct nvme_uring_cmd` in `raw`, which has the
/// layout of `struct nvme_passthru_cmd` up to its timeout (the result
/// goes to the completion queue entry instead). For a `vectored`
/// command the address is that of an iovec array and the data length
/// counts its entries (at most [`MAX_IOVECS`]); the block layer checks
/// the bytes they cover against the queue's limits. Otherwise as
/// [`parse`], for at most `max_len` bytes.
pub(crate) fn parse_uring(
    raw: &[u8],
    max_len: u32,
    vectored: bool,
) -> Result<Passthru, PassthruError> {
    if raw.len() < URING_CMD_SIZE {
        return Err(PassthruError::Short);
    }
    let max_len = if vectored { MAX_IOVECS } else { max_len };
    parse(raw, max_len)
}

/// Parses and checks `struct nvme_user_io` (`NVME_IOCTL_SUBMIT_IO`) in
/// `raw`, for namespace `nsid` of `1 << lba_shift`-byte blocks and a
/// transfer of at most `max_len` bytes, into the Read, Write or Compare
/// command it describes. As in the C driver, `nblocks` is zero-based and
/// the metadata pointer is not used (the driver serves no namespace with
/// metadata).
pub(crate) fn parse_user_io(
    raw: &[u8],
    nsid: u32,
    lba_shift: u32,
    max_len: u32,
) -> Result<Passthru, PassthruError> {
    if raw.len() < USER_IO_SIZE {
        return Err(PassthruError::Short);
    }
    let op = raw.first().copied().unwrap_or(0);
    if raw.get(1).copied().unwrap_or(0) != 0 {
        return Err(PassthruError::Flags);
    }
    if !matches!(
        op,
        opcode::nvm::WRITE | opcode::nvm::READ | opcode::nvm::COMPARE
    ) {
        return Err(PassthruError::Opcode);
    }
    let control_nblocks = u32_at(raw, 2);
    let nblocks = control_nblocks >> 16;
    let control = control_nblocks & 0xffff;
    let len = (u64::from(nblocks) + 1)
        .checked_shl(lba_shift)
        .ok_or(PassthruError::TooLong)?;
    let data_len = u32::try_from(len)
        .ok()
        .filter(|&len| len <= max_len)
        .ok_or(PassthruError::TooLong)?;
    let addr = u64_at(raw, 16);
    if addr == 0 {
        return Err(PassthruError::NoBuffer);
    }
    let slba = u64_at(raw, 24);
    let command = Command::passthru(
        op,
        nsid,
        [
            0,
            0,
            slba as u32,
            (slba >> 32) as u32,
            nblocks | (control << 16),
            u32_at(raw, 32),
            u32_at(raw, 36),
            u32_at(raw, 40),
        ],
    );
    Ok(Passthru {
        command,
        addr,
        data_len,
        direction: direction(op).ok_or(PassthruError::Bidirectional)?,
        timeout_ms: 0,
    })
}

/// Whether an admin opcode is the driver's own business and refused from
/// user space: creating or deleting I/O queues and Doorbell Buffer Config
/// would change queues the driver owns behind its back, an Asynchronous
/// Event Request would stay outstanding until it timed out and reset the
/// controller, and an Abort could end a command the driver still waits
/// for (the driver sends its own, within the controller's limit).
pub(crate) fn admin_reserved(op: u8) -> bool {
    matches!(op, 0x00 | 0x01 | 0x04 | 0x05 | 0x08 | 0x0c | 0x7c)
}

/// Whether an admin command may be sent without `CAP_SYS_ADMIN`: only
/// Identify of the controller or a namespace, which user space needs to
/// form I/O commands and which reveals nothing sensitive (the C driver's
/// `nvme_cmd_allowed` for a controller device).
pub(crate) fn admin_allowed_unprivileged(cmd: &Command) -> bool {
    if cmd.opcode() != opcode::admin::IDENTIFY {
        return false;
    }
    // CNS, CDW10 bits 7:0: Namespace (00h), Controller (01h), I/O Command
    // Set specific Namespace (05h) and Controller (06h), I/O Command Set
    // Independent Namespace (08h).
    matches!(cmd.cdw10() & 0xff, 0x00 | 0x01 | 0x05 | 0x06 | 0x08)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(op: u8, addr: u64, len: u32) -> [u8; PASSTHRU64_SIZE] {
        let mut r = [0u8; PASSTHRU64_SIZE];
        r[0] = op;
        r[4..8].copy_from_slice(&7u32.to_le_bytes());
        r[24..32].copy_from_slice(&addr.to_le_bytes());
        r[36..40].copy_from_slice(&len.to_le_bytes());
        r[40..44].copy_from_slice(&0x1234u32.to_le_bytes());
        r[60..64].copy_from_slice(&0x5678u32.to_le_bytes());
        r[64..68].copy_from_slice(&1500u32.to_le_bytes());
        r
    }

    #[test]
    fn ioctl_numbers_match_the_uapi_header() {
        assert_eq!(IOCTL_ID, 0x4e40);
        assert_eq!(IOCTL_ADMIN_CMD, 0xc048_4e41);
        assert_eq!(IOCTL_SUBMIT_IO, 0x4030_4e42);
        assert_eq!(IOCTL_IO_CMD, 0xc048_4e43);
        assert_eq!(IOCTL_RESET, 0x4e44);
        assert_eq!(IOCTL_SUBSYS_RESET, 0x4e45);
        assert_eq!(IOCTL_RESCAN, 0x4e46);
        assert_eq!(IOCTL_ADMIN64_CMD, 0xc050_4e47);
        assert_eq!(IOCTL_IO64_CMD, 0xc050_4e48);
    }

    #[test]
    fn uring_numbers_match_the_uapi_header() {
        assert_eq!(URING_CMD_IO, 0xc048_4e80);
        assert_eq!(URING_CMD_IO_VEC, 0xc048_4e81);
    }

    #[test]
    fn parses_uring_commands() {
        let r = raw(0x02, 0x1000, 8192);
        let p = parse_uring(&r[..URING_CMD_SIZE], 8192, false).unwrap();
        assert_eq!(p.command.nsid(), 7);
        assert_eq!(p.data_len, 8192);
        assert_eq!(p.direction, Direction::FromDevice);
        assert_eq!(p.timeout_ms, 1500);
        assert_eq!(
            parse_uring(&r[..URING_CMD_SIZE], 4096, false).err(),
            Some(PassthruError::TooLong)
        );
        assert_eq!(
            parse_uring(&r[..URING_CMD_SIZE - 1], 8192, false).err(),
            Some(PassthruError::Short)
        );
        // Vectored: the length counts iovecs, whatever the byte limit.
        let v = raw(0x01, 0x1000, 3);
        let p = parse_uring(&v[..URING_CMD_SIZE], 0, true).unwrap();
        assert_eq!((p.data_len, p.direction), (3, Direction::ToDevice));
        let v = raw(0x01, 0x1000, MAX_IOVECS + 1);
        assert_eq!(
            parse_uring(&v[..URING_CMD_SIZE], u32::MAX, true).err(),
            Some(PassthruError::TooLong)
        );
    }

    #[test]
    fn parses_fields_by_offset() {
        let p = parse(&raw(0x06, 0x1000, 4096), 4096).unwrap();
        assert_eq!(p.command.opcode(), 0x06);
        assert_eq!(p.command.nsid(), 7);
        assert_eq!(p.command.cdw10(), 0x1234);
        assert_eq!(p.command.cdw15(), 0x5678);
        assert_eq!(p.addr, 0x1000);
        assert_eq!(p.data_len, 4096);
        assert_eq!(p.direction, Direction::FromDevice);
        assert_eq!(p.timeout_ms, 1500);
    }

    #[test]
    fn refuses_bad_input() {
        assert_eq!(parse(&[0; 71], 4096).err(), Some(PassthruError::Short));
        assert_eq!(
            parse(&raw(0x06, 0x1000, 8192), 4096).err(),
            Some(PassthruError::TooLong)
        );
        assert_eq!(
            parse(&raw(0x06, 0, 512), 4096).err(),
            Some(PassthruError::NoBuffer)
        );
        assert_eq!(
            parse(&raw(0x03, 0x1000, 512), 4096).err(),
            Some(PassthruError::Bidirectional)
        );
        assert_eq!(
            parse(&raw(0x08, 0x1000, 512), 4096).err(),
            Some(PassthruError::DataWithoutDirection)
        );
        let mut r = raw(0x06, 0x1000, 512);
        r[32] = 8;
        assert_eq!(parse(&r, 4096).err(), Some(PassthruError::Metadata));
        let mut r = raw(0x06, 0x1000, 512);
        r[1] = 0x40;
        assert_eq!(parse(&r, 4096).err(), Some(PassthruError::Flags));
        // No data: any direction, no buffer needed.
        assert_eq!(
            parse(&raw(0x0a, 0, 0), 4096).unwrap().direction,
            Direction::None
        );
        assert_eq!(
            parse(&raw(0x09, 0x1000, 512), 4096).unwrap().direction,
            Direction::ToDevice
        );
    }

    fn user_io(op: u8, nblocks: u16, addr: u64) -> [u8; USER_IO_SIZE] {
        let mut r = [0u8; USER_IO_SIZE];
        r[0] = op;
        r[2..4].copy_from_slice(&0x4000u16.to_le_bytes()); // control: FUA
        r[4..6].copy_from_slice(&nblocks.to_le_bytes());
        r[16..24].copy_from_slice(&addr.to_le_bytes());
        r[24..32].copy_from_slice(&0x1_2345_6789u64.to_le_bytes());
        r[32..36].copy_from_slice(&7u32.to_le_bytes());
        r[36..40].copy_from_slice(&0xabcdu32.to_le_bytes());
        r[40..42].copy_from_slice(&0x11u16.to_le_bytes());
        r[42..44].copy_from_slice(&0x22u16.to_le_bytes());
        r
    }

    #[test]
    fn parses_user_io() {
        let p = parse_user_io(&user_io(0x02, 7, 0x1000), 3, 9, 4096).unwrap();
        assert_eq!(p.command.opcode(), 0x02);
        assert_eq!(p.command.nsid(), 3);
        assert_eq!(p.command.cdw10(), 0x2345_6789);
        assert_eq!(p.command.cdw11(), 1);
        assert_eq!(p.command.cdw12(), 7 | 0x4000 << 16);
        assert_eq!(p.command.cdw13(), 7);
        assert_eq!(p.command.cdw14(), 0xabcd);
        assert_eq!(p.command.cdw15(), 0x11 | 0x22 << 16);
        assert_eq!((p.addr, p.data_len), (0x1000, 4096));
        assert_eq!(p.direction, Direction::FromDevice);
        let w = parse_user_io(&user_io(0x01, 0, 0x1000), 1, 12, 4096).unwrap();
        assert_eq!((w.direction, w.data_len), (Direction::ToDevice, 4096));
        let c = parse_user_io(&user_io(0x05, 0, 0x1000), 1, 12, 4096).unwrap();
        assert_eq!(c.direction, Direction::ToDevice);
    }

    #[test]
    fn refuses_bad_user_io() {
        let e = |r: &[u8], shift| parse_user_io(r, 1, shift, 1 << 20).err();
        assert_eq!(e(&[0; 47], 9), Some(PassthruError::Short));
        assert_eq!(e(&user_io(0x00, 0, 0x1000), 9), Some(PassthruError::Opcode));
        assert_eq!(e(&user_io(0x09, 0, 0x1000), 9), Some(PassthruError::Opcode));
        assert_eq!(e(&user_io(0x02, 0, 0), 9), Some(PassthruError::NoBuffer));
        // 65536 blocks of 4 KiB: 256 MiB.
        assert_eq!(
            e(&user_io(0x02, 0xffff, 0x1000), 12),
            Some(PassthruError::TooLong)
        );
        assert_eq!(
            e(&user_io(0x02, 0, 0x1000), 63),
            Some(PassthruError::TooLong)
        );
        let mut r = user_io(0x02, 0, 0x1000);
        r[1] = 1;
        assert_eq!(e(&r, 9), Some(PassthruError::Flags));
    }

    #[test]
    fn queue_management_is_reserved() {
        for op in [0x00, 0x01, 0x04, 0x05, 0x08, 0x0c, 0x7c] {
            assert!(admin_reserved(op));
        }
        for op in [0x02, 0x06, 0x09, 0x0a, 0x10, 0x11, 0x80, 0xc2] {
            assert!(!admin_reserved(op));
        }
    }

    #[test]
    fn unprivileged_only_identify() {
        let id_ctrl = parse(&raw(0x06, 0x1000, 4096), 4096).unwrap().command;
        // CDW10 0x1234: CNS 0x34 is not in the list.
        assert!(!admin_allowed_unprivileged(&id_ctrl));
        let mut r = raw(0x06, 0x1000, 4096);
        r[40..44].copy_from_slice(&1u32.to_le_bytes());
        assert!(admin_allowed_unprivileged(
            &parse(&r, 4096).unwrap().command
        ));
        let mut r = raw(0x02, 0x1000, 512);
        r[40..44].copy_from_slice(&1u32.to_le_bytes());
        assert!(!admin_allowed_unprivileged(
            &parse(&r, 4096).unwrap().command
        ));
    }
}
