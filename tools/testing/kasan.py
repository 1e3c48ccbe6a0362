#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""`make kasan`: make check's riskiest cases on the kasan flavour of the test
kernel (the debug kernel plus generic KASAN), which make check cannot
afford: the hostile-hardware matrix, load cycles and teardown under load,
each driver; and boots with no VMD device at all, which show whether a
KASAN report is the rig's or ours.  Prints one line per test and, last,
`N passed, N failed`; exits non-zero on any failure.

Usage: kasan.py [-k SUBSTRING] [-j JOBS] [--plain N] [--cycles N]
"""

import argparse
import os
import shutil
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import check  # noqa: E402
import machines  # noqa: E402
import vmtest  # noqa: E402


def build_module(r):
    """vmd_rs.ko for the kasan kernel, built in a copy of the sources: the
    tree's own build is the debug kernel's.  Returns its path or None."""
    out = os.path.join(vmtest.CACHE, "kasan-module")
    os.makedirs(out, exist_ok=True)
    # Sources only: the tree's objects were built for the debug kernel.
    products = shutil.ignore_patterns("*.o", ".*.cmd", "*.ko", "*.mod", "*.mod.c")
    for f in ("Kbuild", "drivers", "rust"):
        src, dst = os.path.join(ROOT, f), os.path.join(out, f)
        if os.path.isdir(src):
            shutil.rmtree(dst, ignore_errors=True)
            shutil.copytree(src, dst, ignore=products)
        else:
            shutil.copy(src, dst)
    ok = r.command("build: vmd_rs.ko compiles against the kasan kernel",
                   ["make", "--no-print-directory", "-C", vmtest.kdir("kasan"),
                    "LLVM=-19", f"M={out}", "modules"])
    return os.path.join(out, "vmd_rs.ko") if ok else None


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-k", dest="pattern", help="run only the tests whose name has this")
    ap.add_argument("-j", dest="jobs", type=int, default=2, help="VMs at a time")
    ap.add_argument("--plain", type=int, default=3,
                    help="boots with no VMD device (default 3)")
    ap.add_argument("--cycles", type=int, default=5,
                    help="insmod/fio/rmmod cycles per driver (default 5)")
    a = ap.parse_args()
    r = check.Runner(a.pattern)
    start = time.monotonic()
    ko = build_module(r)
    if not ko:
        return r.finish("make kasan", start, a.jobs)
    P = vmtest.Part
    # No intel-vmd device, no VMD driver, 5-level paging (TCG's CPU has
    # LA57): the early-boot KASAN report of vmtest.KNOWN_UPSTREAM.  It
    # needs an interrupt inside a window of identify_cpu(), so it may miss
    # a boot; it must come in one of them.
    early = [f"kasan: no VMD, 5-level paging, boot {i}" for i in range(1, a.plain + 1)]
    for name in early:
        r.vm(name, "early_kasan.sh", timeout=900, flavour="kasan", lockdep_off_by_known=True)
    # The rest with 4-level paging, where that window does not exist, so
    # that lockdep stays on for the whole boot.  Slow under TCG: without
    # slub_debug, the matrix took 1695 s, 5 cycles and a teardown round per
    # driver 2983 s (December 2026).
    kw = {"flavour": "kasan", "ko": ko, "append": "no5lvl", "slub_debug": True}
    r.boot("kasan: hostile", [
        P("kasan: matrix", "matrix.sh", ["vmd_rs"]),
        P("kasan: matrix", "matrix.sh", ["vmd"]),
    ], machine=machines.HOSTILE, timeout=5400, **kw)
    r.boot("kasan: pair", [
        P(f"kasan: vmd_rs {a.cycles} cycles", "cycles.sh", ["vmd_rs", str(a.cycles)]),
        P(f"kasan: C driver {a.cycles} cycles", "cycles.sh", ["vmd", str(a.cycles)]),
        P("kasan: teardown", "teardown.sh", ["vmd_rs", str(check.TEARDOWN_ROUNDS)]),
        P("kasan: teardown", "teardown.sh", ["vmd", str(check.TEARDOWN_ROUNDS)]),
    ], machine=machines.PAIR, timeout=3600 + a.cycles * 600, **kw)
    r.run_boots(a.jobs)
    seen = [n for n in early if n in r.boot_results and any(
        "wild-memory-access" in k for k in r.boot_results[n].known)]
    if any(n in r.boot_results for n in early):
        r.result(f"kasan: the early-boot report comes with no VMD ({len(seen)} of "
                 f"{len(early)} boots)", bool(seen))
    return r.finish("make kasan", start, a.jobs)


if __name__ == "__main__":
    sys.exit(main())
