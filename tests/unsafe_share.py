#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""How much of rust_core/ may not contain `unsafe`.

The crate root has `#![deny(unsafe_code)]`, so the compiler rejects
`unsafe` everywhere except in the items marked `#[allow(unsafe_code)]`
(and files with an inner `#![allow(... unsafe_code ...)]`: the generated
bindings' wrapper). This counts the lines those marks cover: an allowed
item from the comments, doc comments and attributes right above it to
its last line. Every other line is one where the compiler refuses
`unsafe`.

Printed four ways each: all lines; all lines without `#[cfg(test)]`
modules; code lines (no blank or comment lines); code lines without test
modules. First by item (the lines the compiler refuses `unsafe` in), then
by file (files with no allowed item at all), the measure used before the
crate root denied `unsafe` code.

Usage: tests/unsafe_share.py [RUST_CORE_DIR]
"""

import re
import sys
from pathlib import Path

ALLOW = "#[allow(unsafe_code)]"
ROOT_DENY = "#![deny(unsafe_code)]"


def code(lines):
    return [l for l in lines if l.strip() and not l.strip().startswith("//")]


def indent(line):
    return len(line) - len(line.lstrip())


def bare(line):
    """`line` without string literals and a trailing comment."""
    line = re.sub(r'c?"(?:[^"\\]|\\.)*"', '""', line)
    cut = line.find("//")
    return line[:cut] if cut >= 0 else line


def item_end(lines, start):
    """The last line of the item whose first line is `start`: where its
    brackets close again on a line ending in `}` or `;` (rustfmt layout)."""
    depth = 0
    for i in range(start, len(lines)):
        text = bare(lines[i]).rstrip()
        depth += sum(text.count(c) for c in "([{") - sum(text.count(c) for c in ")]}")
        if depth <= 0 and text.endswith(("}", ";")):
            return i
    return len(lines) - 1


def allowed_lines(lines):
    """Which of `lines` belong to an item marked `#[allow(unsafe_code)]`."""
    marked = [False] * len(lines)
    for i, line in enumerate(lines):
        if line.strip() != ALLOW:
            continue
        ind = indent(line)
        first = i
        while first > 0 and indent(lines[first - 1]) == ind and \
                lines[first - 1].strip().startswith(("//", "#[")):
            first -= 1
        item = i + 1
        while item < len(lines) and lines[item].strip().startswith(("//", "#[")):
            item += 1
        for k in range(first, item_end(lines, item) + 1):
            marked[k] = True
    return marked


def file_allows(text):
    """Whether the whole file is allowed `unsafe` (an inner allow)."""
    for attr in re.findall(r"#!\[allow\((.*?)\)\]", text, re.S):
        if re.search(r"\bunsafe_code\b", attr):
            return True
    return False


def shares(root):
    """({measure: (lines where unsafe is refused, all lines)} by item,
    the same by file, {file: (lines, allowed lines)})."""
    keys = ("all lines", "without tests", "code lines", "code lines without tests")
    by_item = {k: [0, 0] for k in keys}
    by_file = {k: [0, 0] for k in keys}
    files = {}
    denied_crate = ROOT_DENY in (root / "rsnvme_core.rs").read_text().splitlines()
    for path in sorted(root.rglob("*.rs")):
        if path.name == "bindings_generated.rs" or "target" in path.parts:
            continue
        text = path.read_text()
        lines = text.splitlines()
        cut = text.find("#[cfg(test)]")
        ntest = len((text[:cut] if cut >= 0 else text).splitlines())
        marked = [True] * len(lines) if (file_allows(text) or not denied_crate) \
            else allowed_lines(lines)
        files[str(path.relative_to(root))] = (len(lines), sum(marked))
        clean = not any(marked)
        for key, rows in (("all lines", range(len(lines))), ("without tests", range(ntest))):
            for measure, ok in ((by_item, lambda r: not marked[r]), (by_file, lambda r: clean)):
                measure[key][1] += len(rows)
                measure[key][0] += sum(1 for r in rows if ok(r))
                ckey = "code lines" + ("" if key == "all lines" else " without tests")
                crows = [r for r in rows if lines[r].strip() and
                         not lines[r].strip().startswith("//")]
                measure[ckey][1] += len(crows)
                measure[ckey][0] += sum(1 for r in crows if ok(r))
    return ({k: tuple(v) for k, v in by_item.items()},
            {k: tuple(v) for k, v in by_file.items()}, files)


def main():
    root = Path(sys.argv[1] if len(sys.argv) > 1 else
                Path(__file__).resolve().parent.parent / "rust_core")
    by_item, by_file, files = shares(root)
    print("  lines  allowed unsafe  file")
    for name, (lines, allowed) in files.items():
        print(f"{lines:7d} {allowed:15d}  {name}")
    for label, sums in (("by item", by_item), ("by file", by_file)):
        for key, (d, t) in sums.items():
            print(f"unsafe refused ({label}), {key}: {d} of {t} ({100 * d / t:.1f}%)")


if __name__ == "__main__":
    main()
