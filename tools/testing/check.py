#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""`make check`: builds vmd_rs (warnings are errors), runs clippy and
rustfmt, then the VM tests.  Prints one line per test and, last,
`N passed, N failed`; exits non-zero on any failure.

Usage: check.py [-k SUBSTRING] [--list]
"""

import argparse
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import machines  # noqa: E402
import vmtest  # noqa: E402

# The 14 VMD device IDs of Linux 7.3's vmd.c: an oracle independent of the
# driver's own table.
VMD_IDS = ["201D", "28C0", "28C1", "467F", "4C3D", "A77F", "7D0B", "AD0B",
           "9A0B", "B60B", "B06F", "B07F", "D70B", "D73B"]


class Runner:
    def __init__(self, pattern):
        self.pattern = pattern
        self.passed = 0
        self.failed = 0

    def wanted(self, name):
        return not self.pattern or self.pattern in name

    def result(self, name, ok, detail=""):
        if not ok and detail:
            for line in detail.rstrip().splitlines()[-30:]:
                print(f"    # {line}")
        print(f"{'ok' if ok else 'not ok'} - {name}", flush=True)
        if ok:
            self.passed += 1
        else:
            self.failed += 1

    def command(self, name, cmd):
        if not self.wanted(name):
            return True
        p = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, errors="replace")
        self.result(name, p.returncode == 0, p.stdout)
        return p.returncode == 0

    def vm(self, name, script, **kw):
        """One VM boot; each of its KTAP tests and its cleanliness count."""
        if not self.wanted(name):
            return
        logdir = os.path.join(vmtest.CACHE, "logs")
        os.makedirs(logdir, exist_ok=True)
        log = os.path.join(logdir, re.sub(r"[^A-Za-z0-9_.-]", "_", name) + ".log")
        res = vmtest.run(os.path.join(HERE, "guest", script), name=name, log=log, **kw)
        p, f = vmtest.report(res)
        if f:
            print(f"    # full log: {log}")
        self.passed += p
        self.failed += f


def modinfo_aliases():
    p = subprocess.run(["/sbin/modinfo", "-F", "alias", os.path.join(ROOT, "vmd_rs.ko")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    got = sorted(p.stdout.split())
    want = sorted(f"pci:v00008086d0000{i}sv*sd*bc*sc*i*" for i in VMD_IDS)
    missing = sorted(set(want) - set(got))
    extra = sorted(set(got) - set(want))
    return p.returncode == 0 and not missing and not extra, \
        f"missing: {missing}\nunexpected: {extra}\n{p.stdout}"


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-k", dest="pattern", help="run only the tests whose name has this")
    a = ap.parse_args()
    r = Runner(a.pattern)
    start = time.monotonic()
    make = ["make", "--no-print-directory"]

    # Clippy first: the plain build after it leaves the .ko that is tested.
    r.command("clippy: no lint in vmd_rs", make + ["clippy"])
    built = r.command("build: vmd_rs.ko compiles with no warning", make + ["modules"])
    r.command("rustfmt: sources formatted as the kernel's .rustfmt.toml says",
              make + ["rustfmtcheck"])
    if r.wanted("modinfo"):
        ok, detail = modinfo_aliases() if built else (False, "no module")
        r.result("modinfo: the 14 VMD device aliases", ok, detail)

    if built:
        r.vm("module load/unload", "module_load.sh", timeout=300)
        r.vm("vmd_rs decodes like the C driver", "rs_decode.sh", machine=machines.MIXED,
             timeout=600)
        # Few VMD vectors: children share them, on the vectors the C
        # driver would pick.
        r.vm("vmd_rs decodes like the C driver, few vectors", "rs_decode.sh",
             machine=machines.SCARCE, timeout=600)
        # The C driver's cases, run with vmd_rs: the same outcomes, plus
        # vmd_rs's debugfs.
        r.vm("vmd_rs on scarce", "vmd_cases.sh", args=["vmd_rs", "--no-reload"],
             machine=machines.SCARCE, timeout=900)
        r.vm("vmd_rs on mixed", "vmd_cases.sh", args=["vmd_rs"], machine=machines.MIXED,
             timeout=900)
        r.vm("vmd_rs on iommu", "vmd_cases.sh", args=["vmd_rs", "--no-reload"],
             machine=machines.IOMMU, timeout=900)
        # msi_remap=on: remapped on the bypass-capable parts too; off: bypass
        # where possible, refused (with a message) where not.
        r.vm("vmd_rs msi_remap=on", "vmd_cases.sh",
             args=["vmd_rs", "--no-reload", "msi_remap=on"], machine=machines.BYPASS,
             msi_remap="on", timeout=900)
        r.vm("vmd_rs msi_remap=off", "vmd_cases.sh",
             args=["vmd_rs", "--no-reload", "msi_remap=off"], machine=machines.PAIR,
             msi_remap="off", timeout=600)
        # 50 insmod/fio/rmmod cycles in one boot on a 28C0 (bypass) and a
        # 201D (remapped), then sysfs unbind/bind while idle.
        r.vm("vmd_rs 50 cycles", "cycles.sh", args=["vmd_rs", "50"], machine=machines.PAIR,
             timeout=1500)
        # System sleep: suspend to idle with pm_test=devices, then IO.
        r.vm("vmd_rs suspend/resume", "suspend.sh", args=["vmd_rs"], machine=machines.PAIR,
             sleep=True, timeout=600)
    elif r.wanted("module load/unload"):
        r.result("module load/unload: not run, the module did not build", False)

    # The emulated VMD, proven by the in-tree C driver.
    # Reloading under the vIOMMU loses a 28C0 child's first DMA (its
    # namespace reads as zeros) with the C driver: under investigation, so
    # the reload case runs on the machine without an IOMMU.
    r.vm("C driver on mixed", "vmd_cases.sh", args=["vmd"], machine=machines.MIXED,
         timeout=900)
    r.vm("C driver on scarce", "vmd_cases.sh", args=["vmd", "--no-reload"],
         machine=machines.SCARCE, timeout=900)
    r.vm("C driver suspend/resume", "suspend.sh", args=["vmd"], machine=machines.PAIR,
         sleep=True, timeout=600)
    r.vm("C driver on iommu", "vmd_cases.sh", args=["vmd", "--no-reload"],
         machine=machines.IOMMU, timeout=900)

    print(f"# make check took {time.monotonic() - start:.0f} s")
    print(f"{r.passed} passed, {r.failed} failed")
    return 0 if r.failed == 0 and r.passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
