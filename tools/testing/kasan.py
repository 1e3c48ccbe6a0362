#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""`make kasan`: make check's riskiest cases on the kasan flavour of the test
kernel (the debug kernel plus generic KASAN): the hostile-hardware matrix,
load cycles and teardown under load, each driver, as make check runs them
there, but with slub_debug and more cycles; and boots with no VMD device at
all, which show whether a KASAN report is the rig's or ours.  Prints one line per test and, last,
`N passed, N failed`; exits non-zero on any failure.

Usage: kasan.py [-k SUBSTRING] [-j JOBS] [--plain N] [--cycles N]
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-k", dest="pattern", help="run only the tests whose name has this")
    ap.add_argument("-j", dest="jobs", type=int, default=2, help="VMs at a time")
    ap.add_argument("--plain", type=int, default=3,
                    help="boots with no VMD device (default 3)")
    ap.add_argument("--cycles", type=int, default=20,
                    help="insmod/fio/rmmod cycles per driver (default 20)")
    a = ap.parse_args()
    r = check.Runner(a.pattern)
    start = time.monotonic()
    ko = check.build_kasan_module(r)
    if not ko:
        return r.finish("make kasan", start, a.jobs)
    # No intel-vmd device, no VMD driver, 5-level paging (TCG's CPU has
    # LA57): the early-boot KASAN report of vmtest.KNOWN_UPSTREAM.  It
    # needs an interrupt inside a window of identify_cpu(), so it may miss
    # a boot; it must come in one of them.
    early = [f"kasan: no VMD, 5-level paging, boot {i}" for i in range(1, a.plain + 1)]
    for name in early:
        r.vm(name, "early_kasan.sh", timeout=900, flavour="kasan", lockdep_off_by_known=True)
    # The rest with 4-level paging, and slub_debug, which make check's
    # share of these boots goes without.
    check.kasan_boots(r, ko, a.cycles, slub_debug=True)
    r.run_boots(a.jobs)
    seen = [n for n in early if n in r.boot_results and any(
        "wild-memory-access" in k for k in r.boot_results[n].known)]
    if any(n in r.boot_results for n in early):
        r.result(f"kasan: the early-boot report comes with no VMD ({len(seen)} of "
                 f"{len(early)} boots)", bool(seen))
    return r.finish("make kasan", start, a.jobs)


if __name__ == "__main__":
    sys.exit(main())
