#!/usr/bin/env python3
"""List Rust functions over 80 lines and files over 500 lines under src/ (or the paths
given), test modules excluded: the size limits of docs/style (functions under ~80 lines,
files under ~500). A file saying why it is longer (a line containing "size:" in a comment)
is listed with that reason.

Usage: scripts/sizes.py [--max-fn N] [--max-file N] [PATH...]
"""
import argparse
import os
import re
import sys

FN = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+(\w+)")
TEST_MOD = re.compile(r"^\s*#\[cfg\(test\)\]")


def code_lines(lines):
    """The lines before a `#[cfg(test)] mod`: what the limits apply to."""
    for i, line in enumerate(lines):
        if TEST_MOD.match(line) and i + 1 < len(lines) and "mod " in lines[i + 1]:
            return lines[:i]
    return lines


def functions(lines):
    """(name, first line, length) of each fn, by brace matching from its signature."""
    out = []
    for i, line in enumerate(lines):
        m = FN.match(line)
        if not m:
            continue
        depth, opened = 0, False
        for j in range(i, len(lines)):
            text = re.sub(r'"(\\.|[^"\\])*"', '""', lines[j].split("//")[0])
            text = re.sub(r"'(\\.|[^'\\])'", "''", text)
            for c in text:
                if c == "{":
                    depth, opened = depth + 1, True
                elif c == "}":
                    depth -= 1
            if not opened and text.rstrip().endswith(";"):
                break  # a declaration without a body
            if opened and depth <= 0:
                out.append((m.group(6), i + 1, j - i + 1))
                break
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-fn", type=int, default=80)
    ap.add_argument("--max-file", type=int, default=500)
    ap.add_argument("paths", nargs="*", default=["src"])
    args = ap.parse_args()
    files = []
    for p in args.paths:
        if os.path.isfile(p):
            files.append(p)
        for root, _, names in os.walk(p):
            files += [os.path.join(root, n) for n in names if n.endswith(".rs")]
    found = 0
    for path in sorted(files):
        if os.path.basename(path) == "tests.rs":
            continue
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
        code = code_lines(lines)
        why = next((l.split("size:", 1)[1].strip() for l in lines if re.match(r"\s*//.*size:", l)), None)
        if len(code) > args.max_file:
            found += 1
            note = f"  (says why: {why})" if why else ""
            print(f"file {path}: {len(code)} lines{note}")
        for name, start, length in functions(code):
            if length > args.max_fn:
                found += 1
                print(f"fn   {path}:{start} {name}: {length} lines")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
