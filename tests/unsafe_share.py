#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""How much of rust_core/ may not contain `unsafe`: the share of its Rust
lines in files under `#![deny(unsafe_code)]` (the file's own attribute, or
its directory's mod.rs), without the generated bindings.

Printed four ways: all lines; all lines without `#[cfg(test)]` modules;
code lines (no blank or comment lines); code lines without test modules.

Usage: tests/unsafe_share.py [RUST_CORE_DIR]
"""

import sys
from pathlib import Path

DENY = "#![deny(unsafe_code)]"


def denied(path):
    if DENY in path.read_text():
        return True
    parent = path.parent / "mod.rs"
    return parent != path and parent.exists() and DENY in parent.read_text()


def code(lines):
    return [l for l in lines if l.strip() and not l.strip().startswith("//")]


def shares(root):
    """{measure: (lines under deny, all lines)} and {file: lines, denied}."""
    sums = {"all lines": [0, 0], "without tests": [0, 0], "code lines": [0, 0],
            "code lines without tests": [0, 0]}
    files = {}
    for path in sorted(root.rglob("*.rs")):
        if path.name == "bindings_generated.rs" or "target" in path.parts:
            continue
        text = path.read_text()
        cut = text.find("#[cfg(test)]")
        notest = text[:cut] if cut >= 0 else text
        lines, nt = text.splitlines(), notest.splitlines()
        d = denied(path)
        files[str(path.relative_to(root))] = (len(lines), d)
        for key, n in (("all lines", len(lines)), ("without tests", len(nt)),
                       ("code lines", len(code(lines))),
                       ("code lines without tests", len(code(nt)))):
            sums[key][1] += n
            sums[key][0] += n if d else 0
    return {k: tuple(v) for k, v in sums.items()}, files


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else
                Path(__file__).resolve().parent.parent / "rust_core")
    sums, files = shares(root)
    for name, (lines, d) in files.items():
        print(f"{lines:6d} {'deny ' if d else 'UNSAFE'} {name}")
    for key, (d, t) in sums.items():
        print(f"deny(unsafe_code) share, {key}: {d} of {t} ({100 * d / t:.1f}%)")


if __name__ == "__main__":
    main()
