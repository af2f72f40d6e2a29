// SPDX-License-Identifier: GPL-2.0

//! Namespace identifiers: the Namespace Identification Descriptor list
//! (NVMe Base Specification 2.0, Identify CNS 03h), the EUI64 and NGUID
//! fields of Identify Namespace that older controllers report instead,
//! and the text Linux shows for them under `/sys/block/<disk>/` (`wwid`,
//! `eui`, `nguid`, `uuid`), in the formats of the C driver's
//! `drivers/nvme/host/sysfs.c`, so that udev's `/dev/disk/by-id` links
//! and nvme-cli see the same values with either driver.

use super::regs::Version;
use core::fmt;

/// Namespace Identifier Type (NIDT) values and the lengths (NIDL) the
/// specification fixes for them.
const NIDT_EUI64: u8 = 1;
const NIDT_NGUID: u8 = 2;
const NIDT_UUID: u8 = 3;
const NIDT_CSI: u8 = 4;
const NIDL_EUI64: u8 = 8;
const NIDL_NGUID: u8 = 16;
const NIDL_UUID: u8 = 16;
const NIDL_CSI: u8 = 1;

/// Bytes before each descriptor's identifier: NIDT, NIDL, two reserved.
const DESCRIPTOR_HEADER: usize = 4;

/// A descriptor whose length is not the one its type requires; the walk
/// stops there, keeping what came before (as the C driver does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BadDescriptor {
    /// The type.
    pub(crate) nidt: u8,
    /// The length the controller gave.
    pub(crate) nidl: u8,
}

impl fmt::Display for BadDescriptor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "identifier type {} with bogus length {}",
            self.nidt, self.nidl
        )
    }
}

/// The identifiers of one namespace; all-zero values mean "not reported".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct NamespaceIds {
    /// IEEE Extended Unique Identifier.
    pub(crate) eui64: [u8; 8],
    /// Namespace Globally Unique Identifier.
    pub(crate) nguid: [u8; 16],
    /// Namespace UUID.
    pub(crate) uuid: [u8; 16],
    /// Command Set Identifier, if reported.
    pub(crate) csi: Option<u8>,
}

/// Copies `N` bytes at `at` of `page`; `None` if they lie outside it.
fn bytes_at<const N: usize>(page: &[u8], at: usize) -> Option<[u8; N]> {
    let end = at.checked_add(N)?;
    page.get(at..end)
        .and_then(|bytes| <[u8; N]>::try_from(bytes).ok())
}

impl NamespaceIds {
    /// Parses a Namespace Identification Descriptor list. The walk ends
    /// at a zero length, at a descriptor that would run past the page, or
    /// at a known type with the wrong length (returned, to be reported);
    /// unknown types are skipped.
    pub(crate) fn from_descriptors(page: &[u8]) -> (Self, Option<BadDescriptor>) {
        let mut ids = Self::default();
        let mut pos = 0usize;
        while let Some(body) = pos.checked_add(DESCRIPTOR_HEADER) {
            if body > page.len() {
                break;
            }
            let nidt = page.get(pos).copied().unwrap_or(0);
            let nidl = page.get(pos + 1).copied().unwrap_or(0);
            if nidl == 0 || body + usize::from(nidl) > page.len() {
                break;
            }
            let expected = match nidt {
                NIDT_EUI64 => Some(NIDL_EUI64),
                NIDT_NGUID => Some(NIDL_NGUID),
                NIDT_UUID => Some(NIDL_UUID),
                NIDT_CSI => Some(NIDL_CSI),
                _ => None,
            };
            if expected.is_some_and(|len| len != nidl) {
                return (ids, Some(BadDescriptor { nidt, nidl }));
            }
            match nidt {
                NIDT_EUI64 => ids.eui64 = bytes_at(page, body).unwrap_or_default(),
                NIDT_NGUID => ids.nguid = bytes_at(page, body).unwrap_or_default(),
                NIDT_UUID => ids.uuid = bytes_at(page, body).unwrap_or_default(),
                NIDT_CSI => ids.csi = page.get(body).copied(),
                _ => {}
            }
            pos = body + usize::from(nidl);
        }
        (ids, None)
    }

    /// Whether a controller of `version` has the descriptor list (NVMe
    /// 1.3 and later).
    pub(crate) fn has_descriptor_list(version: Version) -> bool {
        (version.major(), version.minor()) >= (1, 3)
    }

    /// Takes EUI64 and NGUID from Identify Namespace where the descriptor
    /// list gave none and the controller's `version` has the field (EUI64
    /// since NVMe 1.1, NGUID since 1.2).
    pub(crate) fn fill_from_identify(&mut self, version: Version, eui64: [u8; 8], nguid: [u8; 16]) {
        let v = (version.major(), version.minor());
        if v >= (1, 1) && self.eui64 == [0; 8] {
            self.eui64 = eui64;
        }
        if v >= (1, 2) && self.nguid == [0; 16] {
            self.nguid = nguid;
        }
    }

    /// Whether `eui` is shown: the namespace has an EUI64.
    pub(crate) fn has_eui64(&self) -> bool {
        self.eui64 != [0; 8]
    }

    /// Whether `nguid` is shown: the namespace has an NGUID.
    pub(crate) fn has_nguid(&self) -> bool {
        self.nguid != [0; 16]
    }

    /// Whether `uuid` is shown: the namespace has a UUID, or an NGUID to
    /// show in its place.
    pub(crate) fn has_uuid_or_nguid(&self) -> bool {
        self.uuid != [0; 16] || self.has_nguid()
    }

    /// What `uuid` shows: the UUID, or the NGUID if there is none (the C
    /// driver's compatibility rule).
    pub(crate) fn uuid_or_nguid(&self) -> Uuid<'_> {
        if self.uuid != [0; 16] {
            Uuid(&self.uuid)
        } else {
            Uuid(&self.nguid)
        }
    }
}

/// 16 bytes in UUID form, `%pU` in the kernel's printf: lowercase hex,
/// bytes in order, dashes after bytes 4, 6, 8 and 10.
pub(crate) struct Uuid<'a>(pub(crate) &'a [u8; 16]);

impl fmt::Display for Uuid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Bytes in lowercase hex separated by spaces, `%*ph`.
pub(crate) struct SpacedHex<'a>(pub(crate) &'a [u8]);

impl fmt::Display for SpacedHex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, b) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(" ")?;
            }
            write!(f, "{b:02x}")?;
        }
        Ok(())
    }
}

/// Bytes in lowercase hex with no separator, `%*phN`.
struct Hex<'a>(&'a [u8]);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

/// `bytes` without trailing spaces and NULs.
fn trim_padding(bytes: &[u8]) -> &[u8] {
    let len = bytes
        .iter()
        .rposition(|&b| b != b' ' && b != 0)
        .map_or(0, |last| last + 1);
    bytes.get(..len).unwrap_or(&[])
}

/// A namespace's World Wide Identifier as the `wwid` attribute shows it:
/// `uuid.<UUID>`, else `eui.<NGUID>`, else `eui.<EUI64>`, else one built
/// from the controller's PCI vendor ID, serial and model numbers (their
/// bytes in hex, padding dropped) and the NSID.
pub(crate) struct Wwid<'a> {
    pub(crate) ids: &'a NamespaceIds,
    pub(crate) vendor_id: u16,
    pub(crate) serial: &'a [u8],
    pub(crate) model: &'a [u8],
    pub(crate) nsid: u32,
}

impl fmt::Display for Wwid<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ids = self.ids;
        if ids.uuid != [0; 16] {
            return write!(f, "uuid.{}", Uuid(&ids.uuid));
        }
        if ids.has_nguid() {
            return write!(f, "eui.{}", Hex(&ids.nguid));
        }
        if ids.has_eui64() {
            return write!(f, "eui.{}", Hex(&ids.eui64));
        }
        write!(
            f,
            "nvme.{:04x}-{}-{}-{:08x}",
            self.vendor_id,
            Hex(trim_padding(self.serial)),
            Hex(trim_padding(self.model)),
            self.nsid
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    extern crate std;
    use std::string::ToString;
    use std::vec::Vec;

    fn descriptor(nidt: u8, id: &[u8]) -> Vec<u8> {
        let mut d = std::vec![nidt, id.len() as u8, 0, 0];
        d.extend_from_slice(id);
        d
    }

    fn page(descriptors: &[Vec<u8>]) -> Vec<u8> {
        let mut p: Vec<u8> = descriptors.concat();
        p.resize(4096, 0);
        p
    }

    const UUID: [u8; 16] = [
        0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd,
        0xef,
    ];

    #[test]
    fn parses_qemu_descriptor_list() {
        let eui = [0x52, 0x54, 0, 0x12, 0x34, 0x56, 0x78, 0x9a];
        let (ids, bad) = NamespaceIds::from_descriptors(&page(&[
            descriptor(NIDT_UUID, &UUID),
            descriptor(NIDT_EUI64, &eui),
            descriptor(NIDT_CSI, &[0]),
        ]));
        assert_eq!(bad, None);
        assert_eq!(ids.uuid, UUID);
        assert_eq!(ids.eui64, eui);
        assert_eq!(ids.nguid, [0; 16]);
        assert_eq!(ids.csi, Some(0));
    }

    #[test]
    fn skips_unknown_and_stops_at_bogus_length() {
        let (ids, bad) = NamespaceIds::from_descriptors(&page(&[
            descriptor(9, &[1, 2, 3]),
            descriptor(NIDT_UUID, &UUID),
            descriptor(NIDT_EUI64, &[1, 2, 3, 4]),
            descriptor(NIDT_NGUID, &[7; 16]),
        ]));
        assert_eq!(ids.uuid, UUID);
        assert_eq!(ids.eui64, [0; 8]);
        assert_eq!(ids.nguid, [0; 16]);
        assert_eq!(bad, Some(BadDescriptor { nidt: 1, nidl: 4 }));
    }

    #[test]
    fn stays_inside_the_page() {
        // A descriptor that runs past the end is not read.
        let mut p = std::vec![0u8; 4096];
        p[4088] = NIDT_NGUID;
        p[4089] = 16;
        p[0] = 9;
        p[1] = 252;
        // First (unknown) descriptor: 4 + 252 bytes; fill the page with
        // unknown ones up to the last, which overflows.
        let mut pos = 0;
        while pos + 256 <= 4088 {
            p[pos] = 9;
            p[pos + 1] = 252;
            pos += 256;
        }
        let (ids, bad) = NamespaceIds::from_descriptors(&p);
        assert_eq!((ids, bad), (NamespaceIds::default(), None));
        let (ids, _) = NamespaceIds::from_descriptors(&[NIDT_UUID, 16, 0]);
        assert_eq!(ids, NamespaceIds::default());
        let (ids, _) = NamespaceIds::from_descriptors(&[]);
        assert_eq!(ids, NamespaceIds::default());
    }

    #[test]
    fn identify_fills_what_the_list_lacked() {
        let v = |major: u32, minor: u32| Version((major << 16) | (minor << 8));
        let mut ids = NamespaceIds {
            eui64: [9; 8],
            ..Default::default()
        };
        ids.fill_from_identify(v(1, 4), [1; 8], [2; 16]);
        assert_eq!((ids.eui64, ids.nguid), ([9; 8], [2; 16]));
        let mut old = NamespaceIds::default();
        old.fill_from_identify(v(1, 1), [1; 8], [2; 16]);
        assert_eq!((old.eui64, old.nguid), ([1; 8], [0; 16]));
        let mut oldest = NamespaceIds::default();
        oldest.fill_from_identify(v(1, 0), [1; 8], [2; 16]);
        assert_eq!(oldest, NamespaceIds::default());
        assert!(!NamespaceIds::has_descriptor_list(v(1, 2)));
        assert!(NamespaceIds::has_descriptor_list(v(1, 3)));
        assert!(NamespaceIds::has_descriptor_list(v(2, 0)));
    }

    #[test]
    fn formats_as_the_c_driver() {
        assert_eq!(
            Uuid(&UUID).to_string(),
            "12345678-9abc-def0-0123-456789abcdef"
        );
        assert_eq!(SpacedHex(&[0, 0x11, 0xab, 0xff]).to_string(), "00 11 ab ff");
        let none = NamespaceIds::default();
        let wwid = |ids| {
            Wwid {
                ids,
                vendor_id: 0x1b36,
                serial: b"AB12                ",
                model: b"QEMU NVMe Ctrl\0\0",
                nsid: 2,
            }
            .to_string()
        };
        assert_eq!(
            wwid(&none),
            "nvme.1b36-41423132-51454d55204e564d65204374726c-00000002"
        );
        let eui = NamespaceIds {
            eui64: [1, 2, 3, 4, 5, 6, 7, 8],
            ..none
        };
        assert_eq!(wwid(&eui), "eui.0102030405060708");
        let nguid = NamespaceIds {
            nguid: [0xaa; 16],
            ..eui
        };
        assert_eq!(wwid(&nguid), "eui.aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
        assert_eq!(
            nguid.uuid_or_nguid().to_string(),
            "aaaaaaaa-aaaa-aaaa-aaaa-aaaaaaaaaaaa"
        );
        let uuid = NamespaceIds {
            uuid: UUID,
            ..nguid
        };
        assert_eq!(wwid(&uuid), "uuid.12345678-9abc-def0-0123-456789abcdef");
        assert_eq!(uuid.uuid_or_nguid().to_string(), Uuid(&UUID).to_string());
        assert!(!none.has_uuid_or_nguid() && !none.has_eui64() && !none.has_nguid());
        assert!(nguid.has_uuid_or_nguid() && eui.has_eui64());
    }
}
