#!/usr/bin/env python3
"""Prints benchmark E's table (markdown) from bench/container/run.sh's result files:
one row per transport and release: wall time of the deploy, the image step's time and
bytes sent per host (min-max), and the release's docker-archive size.

Usage: bench/container/table.py RESULT.json...
"""
import json
import sys


def mb(n):
    return f"{n / 1e6:.2f} MB" if n >= 10_000 else f"{n} B"


def main(paths):
    rows = [json.load(open(p)) for p in paths]
    rows.sort(key=lambda r: (r["via"], r["release"]))
    print("| via | release | hosts | deploy wall | image step per host | bytes sent per host | archive |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        hosts = r["hosts"].values()
        ms = sorted(h["ms"] for h in hosts)
        sent = sorted(h["bytes"] for h in hosts)
        bad = [h["status"] for h in hosts if h["status"] not in ("changed", "ok")]
        spread = mb(sent[0]) if sent[0] == sent[-1] else f"{mb(sent[0])}–{mb(sent[-1])}"
        print(
            f"| {r['via']} | {r['release']} | {len(ms)}{' (' + ', '.join(bad) + ')' if bad else ''} "
            f"| {r['wall_s']:.1f} s | {ms[0] / 1000:.1f}–{ms[-1] / 1000:.1f} s | {spread} "
            f"| {mb(r['archive_bytes'])} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
