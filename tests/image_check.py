#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Checks NVMe image files byte by byte after a QEMU run.

The guest writes a seeded pattern (`pattern` in tests/guest/lib.sh): every
16-byte record is the decimal number SEED * 10^8 + (its byte offset / 16),
then a newline, with a 7-digit SEED. A record that was written to the wrong
place, is left over from another run or belongs to another namespace (each
is seeded differently) does not match, and `describe` says what it is.

A layout is a list of (start, length, seed) segments in bytes; seed None
means zeroes. Bytes no segment covers must be zero too.

Usage: tests/image_check.py IMAGE START:LENGTH:SEED|zero ...
       (sizes in bytes, or with a K or M suffix); exits 1 on a difference.
"""

import hashlib
import os
import re
import sys

RECORD = 16
MIB = 1 << 20


def pattern(seed, start, length):
    """The pattern bytes for [start, start + length) of a disk."""
    if not 1000000 <= seed <= 9999999:
        raise ValueError(f"seed {seed} does not have 7 digits")
    if start % RECORD or length % RECORD:
        raise ValueError(f"range {start}+{length} is not made of whole records")
    base = seed * 10**8 + start // RECORD
    return "".join([f"{base + i}\n" for i in range(length // RECORD)]).encode()


def expected(layout, size):
    """The whole disk as the layout describes it."""
    out = bytearray(size)
    for start, length, seed in layout:
        if start + length > size:
            raise ValueError(f"segment {start}+{length} beyond the disk ({size})")
        if seed is not None:
            out[start:start + length] = pattern(seed, start, length)
    return bytes(out)


def md5(data):
    return hashlib.md5(data).hexdigest()


def mib_md5s(data):
    """md5 of every MiB, as the guest's mib_sums prints them."""
    return [md5(data[i:i + MIB]) for i in range(0, len(data), MIB)]


def describe(record, offset):
    """What a 16-byte record found at `offset` is."""
    m = re.fullmatch(rb"(\d{7})(\d{8})\n", record)
    if m:
        seed, index = int(m[1]), int(m[2])
        where = "" if index * RECORD == offset else f", misplaced from byte {index * RECORD}"
        return f"pattern record of seed {seed}{where}"
    if record == bytes(len(record)):
        return "zeroes"
    return f"unknown data {record!r}"


def compare(got, want, base=0):
    """Differences between two byte strings, as one line ('' if none):
    the first differing record, what it holds and how many records differ."""
    if got == want:
        return ""
    if len(got) != len(want):
        return f"size {len(got)}, want {len(want)}"
    bad = [i for i in range(0, len(want), RECORD)
           if got[i:i + RECORD] != want[i:i + RECORD]]
    first = bad[0]
    return (f"{len(bad)} of {len(want) // RECORD} records differ, first at byte "
            f"{base + first}: {describe(got[first:first + RECORD], base + first)} "
            f"({got[first:first + RECORD]!r}), want {want[first:first + RECORD]!r}")


def check_image(path, layout, size=None):
    """Problems found comparing the image with the layout (empty: none),
    one line per differing segment or gap."""
    with open(path, "rb") as f:
        got = f.read()
    size = size if size is not None else len(got)
    if len(got) != size:
        return [f"{path}: {len(got)} bytes, want {size}"]
    want = expected(layout, size)
    if got == want:
        return []
    problems = []
    edges = sorted({0, size} | {s for s, _, _ in layout} | {s + n for s, n, _ in layout})
    for a, b in zip(edges, edges[1:]):
        diff = compare(got[a:b], want[a:b], a)
        if diff:
            seed = next((s for s0, n, s in layout if s0 <= a < s0 + n), None)
            kind = f"pattern of seed {seed}" if seed is not None else "zeroes"
            problems.append(f"bytes [{a}, {b}) should be {kind}: {diff}")
    return problems


def is_hole(path, start, length):
    """True when the image file has no data in [start, start + length)
    (holes punched by discards with QEMU's discard=unmap)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        data = os.lseek(fd, start, os.SEEK_DATA)
    except OSError:  # ENXIO: no data after start
        return True
    finally:
        os.close(fd)
    return data >= start + length


def selftest():
    """The checker itself: (name, ok) pairs proving it finds what it must."""
    layout = [(0, 8192, 1234567), (8192, 4096, None), (12288, 4096, 7654321)]
    good = expected(layout, 16384)
    out = []
    swapped = bytearray(good)
    swapped[512:1024], swapped[1024:1536] = good[1024:1536], good[512:1024]
    d = compare(bytes(swapped), good)
    out.append(("finds two swapped sectors", "misplaced from byte 1024" in d))
    stale = bytearray(good)
    stale[4096:4112] = pattern(1234568, 4096, 16)
    out.append(("finds a record of another seed",
                "seed 1234568" in compare(bytes(stale), good)))
    flipped = bytearray(good)
    flipped[9000] = 1
    out.append(("finds one changed byte in zeroes",
                "1 of 256 records differ, first at byte 8992" in compare(
                    bytes(flipped[8192:12288]), good[8192:12288], 8192)))
    out.append(("pattern matches the guest's seq output",
                pattern(1234567, 32, 32) == b"123456700000002\n123456700000003\n"))
    return out


def _size(text):
    mult = {"K": 1 << 10, "M": MIB}.get(text[-1:].upper(), 1)
    return int(text[:-1] if mult > 1 else text) * mult


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        return 2
    layout = []
    for seg in argv[2:]:
        start, length, seed = seg.split(":")
        layout.append((_size(start), _size(length), None if seed == "zero" else int(seed)))
    problems = check_image(argv[1], layout)
    for p in problems:
        print(p)
    print("OK" if not problems else f"{len(problems)} differences")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
