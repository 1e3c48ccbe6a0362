#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""`make soak`: the long runs that do not fit in make check's time: many
load/IO/unload cycles of each driver, many unbinds under IO (teardown.sh)
and hot-removals of a child under IO (vmd_cases.sh),
the seeded hostile hardware of fuzz.sh over many seeds, every
allocation of a bind failed in turn (faults.sh), and bind cycles under
multi-threaded TCG with and without VMDs, with tables of what each
driver's boots ended in.  Prints one
line per test and, last, `N passed, N failed`; exits non-zero on any
failure.

Usage: soak.py [-k SUBSTRING] [-j JOBS] [--cycles N] [--teardown N] [--seeds N]
               [--hot-remove N] [--mttcg N]
"""

import argparse
import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check  # noqa: E402
import machines  # noqa: E402
import vmtest  # noqa: E402


def print_fuzz_table(fuzz, results, what="fuzz", unit="seeds"):
    """Per driver: how many seeds (boots) ended in a panic, oops, WARN, hang
    or leak, and which seeds failed at all."""
    kinds = {
        "panic": ("Kernel panic", "rust_panic", "panicked at"),
        "oops": ("Oops", "BUG:", "general protection fault"),
        "WARN": ("WARNING:",),
        "leak": ("unreferenced object",),
    }
    print(f"# {what}: {unit} with ...  panic  oops  WARN  hang  leak  failed {unit}")
    for drv in ("vmd_rs", "vmd"):
        counts = dict.fromkeys(list(kinds) + ["hang"], 0)
        failed = []
        for seed, d, name in fuzz:
            res = results.get(name)
            if d != drv or res is None:
                continue
            for k, pats in kinds.items():
                counts[k] += any(p in c for c in res.complaints for p in pats)
            counts["hang"] += res.timed_out or any(
                not ok and "within" in t for t, ok, _ in res.tests)
            if not res.ok:
                failed.append(str(seed))
        print(f"# {what}: {drv:<15} " + "  ".join(f"{counts[k]:>4}" for k in
              ("panic", "oops", "WARN", "hang", "leak")) + "  " + (" ".join(failed) or "-"))


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-k", dest="pattern", help="run only the tests whose name has this")
    ap.add_argument("-j", dest="jobs", type=int, default=2, help="VMs at a time")
    ap.add_argument("--cycles", type=int, default=200,
                    help="insmod/fio/rmmod cycles per driver (default 200)")
    ap.add_argument("--teardown", type=int, default=20,
                    help="unbinds under IO per VMD and driver (default 20)")
    ap.add_argument("--hot-remove", type=int, default=20,
                    help="hot-removals of a child under IO per VMD and driver (default 20)")
    ap.add_argument("--seeds", type=int, default=50,
                    help="fuzz seeds per driver (default 50: seeds 1 to 50)")
    ap.add_argument("--mttcg", type=int, default=100,
                    help="bind cycles under multi-threaded TCG, with and without "
                         "VMDs (default 100)")
    a = ap.parse_args()
    r = check.Runner(a.pattern)
    start = time.monotonic()
    if not r.command("build: vmd_rs.ko compiles with no warning",
                     ["make", "--no-print-directory", "modules"]):
        print(f"{r.passed} passed, {r.failed} failed")
        return 1
    # A 28C0 in bypass and a 201D remapping: both MSI paths, every cycle.
    # About 9 s a cycle under TCG, twice that with slub_debug.
    timeout = 600 + a.cycles * 40
    for drv, label in (("vmd_rs", "vmd_rs"), ("vmd", "C driver")):
        r.vm(f"soak: {label} {a.cycles} cycles", "cycles.sh", args=[drv, str(a.cycles)],
             machine=machines.PAIR, timeout=timeout, slub_debug=True)
    for drv, label in (("vmd_rs", "vmd_rs"), ("vmd", "C driver")):
        r.boot(f"soak: teardown ({label})", [
            vmtest.Part("soak: teardown", "teardown.sh", [drv, str(a.teardown)])],
            machine=machines.PAIR, timeout=600 + a.teardown * 120, slub_debug=True)
    # A child NVMe hot-removed under IO and hot-added again, per MSI mode;
    # last in its boot (vmd_cases.sh: the first hot-add trips lockdep).
    for drv, label in (("vmd_rs", "vmd_rs"), ("vmd", "C driver")):
        r.vm(f"soak: hot-remove ({label})", "vmd_cases.sh",
             args=[drv, "--no-reload", "--hot-remove", str(a.hot_remove)],
             machine=machines.HOTPLUG, timeout=900 + a.hot_remove * 120, slub_debug=True)
    # Multi-threaded TCG stalls now and then (testing.rst): the same bind
    # and IO cycles with vmd_rs on the PAIR and with no VMD at all, each
    # with a post-mortem if it stalls, say whose the stall is.
    r.vm(f"soak: no VMD, {a.mttcg} cycles, multi-threaded TCG", "nvme_cycles.sh",
         args=["nvme", str(a.mttcg)], machine=machines.NO_VMD, timeout=600 + a.mttcg * 30,
         tcg="multi", post_mortem=True)
    r.vm(f"soak: vmd_rs {a.mttcg} cycles, multi-threaded TCG", "cycles.sh",
         args=["vmd_rs", str(a.mttcg)], machine=machines.PAIR, timeout=600 + a.mttcg * 30,
         tcg="multi", post_mortem=True)
    # Seeded hostile hardware, a boot per seed and driver, so that a
    # complaint is the driver's whose boot it is.
    fuzz = []
    for seed in range(1, a.seeds + 1):
        for drv in ("vmd_rs", "vmd"):
            name = f"soak: fuzz seed {seed} ({drv})"
            fuzz.append((seed, drv, name))
            r.boot(name, [vmtest.Part(name, "fuzz.sh", [drv])],
                   machine=machines.fuzz(seed), timeout=600)
    # Every allocation of a bind failed in turn (faults.sh), a boot per
    # driver: the C driver's probe error paths leak (H2).
    faults = []
    for drv in ("vmd_rs", "vmd"):
        name = f"soak: faults ({drv})"
        faults.append(("faults", drv, name))
        r.boot(name, [vmtest.Part(name, "faults.sh", [drv])],
               machine=machines.FAULTS, timeout=3600)
    r.run_boots(a.jobs)
    # Only the tables whose boots ran (-k may leave some out).
    if any(name in r.boot_results for _, _, name in fuzz):
        print_fuzz_table(fuzz, r.boot_results)
    if any(name in r.boot_results for _, _, name in faults):
        print_fuzz_table(faults, r.boot_results, "faults", "boots")
    return r.finish("make soak", start, a.jobs)


if __name__ == "__main__":
    sys.exit(main())
