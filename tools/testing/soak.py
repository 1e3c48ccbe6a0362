#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""`make soak`: the long runs that do not fit in make check's time: many
load/IO/unload cycles of each driver.  Prints one line per test and, last,
`N passed, N failed`; exits non-zero on any failure.

Usage: soak.py [-k SUBSTRING] [-j JOBS] [--cycles N]
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check  # noqa: E402
import machines  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-k", dest="pattern", help="run only the tests whose name has this")
    ap.add_argument("-j", dest="jobs", type=int, default=2, help="VMs at a time")
    ap.add_argument("--cycles", type=int, default=200,
                    help="insmod/fio/rmmod cycles per driver (default 200)")
    a = ap.parse_args()
    r = check.Runner(a.pattern)
    start = time.monotonic()
    if not r.command("build: vmd_rs.ko compiles with no warning",
                     ["make", "--no-print-directory", "modules"]):
        print(f"{r.passed} passed, {r.failed} failed")
        return 1
    # A 28C0 in bypass and a 201D remapping: both MSI paths, every cycle.
    # About 9 s a cycle under TCG.
    timeout = 300 + a.cycles * 20
    for drv, label in (("vmd_rs", "vmd_rs"), ("vmd", "C driver")):
        r.vm(f"soak: {label} {a.cycles} cycles", "cycles.sh", args=[drv, str(a.cycles)],
             machine=machines.PAIR, timeout=timeout)
    nboots = r.run_boots(a.jobs)
    print(f"# {nboots} VM boots: {r.vm_seconds:.0f} VM seconds summed, {a.jobs} at a time")
    print(f"# make soak took {time.monotonic() - start:.0f} s")
    print(f"{r.passed} passed, {r.failed} failed")
    return 0 if r.failed == 0 and r.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
