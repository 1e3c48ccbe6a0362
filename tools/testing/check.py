#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""`make check`: builds vmd_rs (warnings are errors), runs clippy and
rustfmt, then the VM tests.  Prints one line per test and, last,
`N passed, N failed`; exits non-zero on any failure.

Usage: check.py [-k SUBSTRING] [-j JOBS]
"""

import argparse
import concurrent.futures
import io
import os
import re
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
sys.path.insert(0, HERE)
import machines  # noqa: E402
import vmtest  # noqa: E402

# Load cycles in make check; make soak runs 200.
CHECK_CYCLES = 10
# Unbinds under IO per VMD and driver in make check; make soak runs 20.
TEARDOWN_ROUNDS = 1
# Hot-removals of a child under IO per hotplug port and driver (mixed);
# make soak runs 20.
HOT_REMOVE_ROUNDS = 3
# make check fails every FAULT_STRIDE-th allocation of a bind; make soak each.
FAULT_STRIDE = 7

# What vmd.c 7.3.4 was seen to do when MSIs arrive through its unbind (H1):
# its remove frees the vectors' SRCU structures before devres frees their
# handlers, and the next MSI's demux faults in SRCU's read side.
H1_CRASH = re.compile(r"(?:BUG: unable to handle page fault|general protection fault)"
                      r"(?:.*\n){1,12}?.*RIP: \S*srcu\S*(?:.*\n){1,30}?.*vmd_irq\+\S* \[vmd\]")

# The 14 VMD device IDs of Linux 7.3's vmd.c: an oracle independent of the
# driver's own table.
VMD_IDS = ["201D", "28C0", "28C1", "467F", "4C3D", "A77F", "7D0B", "AD0B",
           "9A0B", "B60B", "B06F", "B07F", "D70B", "D73B"]


class Runner:
    def __init__(self, pattern):
        self.pattern = pattern
        self.passed = 0
        self.failed = 0
        self.boots = []
        self.vm_seconds = 0.0
        # Each boot's vmtest.Result, by boot name.
        self.boot_results = {}
        self.lock = threading.Lock()

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

    def boot(self, name, parts, timeout, **kw):
        """One VM boot that runs `parts` (vmtest.Part, labelled with the
        test names) in turn; queued, run by run_boots.  `timeout` is the
        whole boot's."""
        parts = [p for p in parts if self.wanted(p.label)]
        if parts:
            self.boots.append((name, parts, timeout, kw))

    def vm(self, name, script, args=(), msi_remap="auto", timeout=600, **kw):
        """A boot of one script."""
        self.boot(name, [vmtest.Part(name, script, list(args), msi_remap)], timeout, **kw)

    def _run_boot(self, boot):
        name, parts, timeout, kw = boot
        logdir = os.path.join(vmtest.CACHE, "logs")
        os.makedirs(logdir, exist_ok=True)
        log = os.path.join(logdir, re.sub(r"[^A-Za-z0-9_.-]", "_", name) + ".log")
        res = vmtest.run_parts(parts, name=name, log=log, timeout=timeout, **kw)
        out = io.StringIO()
        p, f = vmtest.report(res, stream=out)
        if f:
            print(f"    # full log: {log}", file=out)
        with self.lock:
            sys.stdout.write(out.getvalue())
            sys.stdout.flush()
            self.passed += p
            self.failed += f
            self.vm_seconds += res.seconds
            self.boot_results[name] = res

    def finish(self, what, start, jobs):
        """Prints the VM seconds, the wall time and, last, the count;
        returns the exit code."""
        print(f"# {len(self.boots)} VM boots: {self.vm_seconds:.0f} VM seconds summed, "
              f"{jobs} at a time")
        print(f"# {what} took {time.monotonic() - start:.0f} s")
        print(f"{self.passed} passed, {self.failed} failed")
        return 0 if self.failed == 0 and self.passed > 0 else 1

    def run_boots(self, jobs):
        """Runs the queued boots, `jobs` at a time (each VM is one TCG
        thread), longest timeout first."""
        boots = sorted(self.boots, key=lambda b: -b[2])
        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs) as pool:
            for fut in [pool.submit(self._run_boot, b) for b in boots]:
                fut.result()


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
    ap.add_argument("-j", dest="jobs", type=int, default=2,
                    help="VMs at a time (default 2: each is one TCG thread)")
    a = ap.parse_args()
    r = Runner(a.pattern)
    start = time.monotonic()
    make = ["make", "--no-print-directory"]

    # Clippy first: the plain build after it leaves the .ko that is tested.
    r.command("clippy: no lint in vmd_rs", make + ["clippy"])
    built = r.command("build: vmd_rs.ko compiles with no warning", make + ["modules"])
    r.command("rustfmt: sources formatted as the kernel's .rustfmt.toml says",
              make + ["rustfmtcheck"])
    plant = r.command("build: kmemleak_plant.ko, a module that leaks on purpose",
                      make + ["kmemleak-plant"])
    if r.wanted("modinfo"):
        ok, detail = modinfo_aliases() if built else (False, "no module")
        r.result("modinfo: the 14 VMD device aliases", ok, detail)

    P = vmtest.Part
    if built:
        # With no VMD in the machine: kmemleak's check can fail; the reports
        # vmtest.KNOWN_UPSTREAM lets through: a WARN after a failed
        # allocation in request_irq(), and, last (it turns lockdep off),
        # pciehp's.
        r.boot("module load/unload", [
            P("module load/unload", "module_load.sh"),
            *([P("kmemleak", "kmemleak_plant.sh")] if plant else []),
            P("upstream irq proc", "upstream_irq_proc.sh"),
            P("upstream pciehp", "upstream_pciehp.sh"),
        ], machine=machines.PLAIN_HOTPLUG, timeout=500)
        # A machine's scripts share a boot and take turns (the guest unloads
        # the drivers between them).  mixed boots twice, a driver each, so
        # that the two boots balance; each ends with its hot-add (the first
        # pciehp hot-add of a boot trips lockdep, a known upstream report,
        # vmtest.KNOWN_UPSTREAM, and turns it off).
        r.boot("mixed, vmd_rs", [
            P("kmemleak", "host_bridge_leak.sh", ["vmd_rs"]),
            P("leds", "leds.sh", ["vmd_rs"]),
            P("affinity", "affinity.sh", ["vmd_rs"]),
            P("vmd_rs decodes like the C driver", "rs_decode.sh"),
            # The C driver's cases, run with vmd_rs: the same outcomes, plus
            # vmd_rs's debugfs.
            P("vmd_rs on mixed", "vmd_cases.sh",
              ["vmd_rs", "--hot-remove", str(HOT_REMOVE_ROUNDS)]),
        ], machine=machines.MIXED, timeout=1500)
        r.boot("mixed, C driver", [
            P("kmemleak", "host_bridge_leak.sh", ["vmd"]),
            P("leds", "leds.sh", ["vmd"]),
            P("affinity", "affinity.sh", ["vmd"]),
            P("C driver on mixed", "vmd_cases.sh", ["vmd", "--hot-remove", str(HOT_REMOVE_ROUNDS)]),
        ], machine=machines.MIXED, timeout=1200)
        # Four CPUs, a remapping VMD: its NVMe queue interrupts near their
        # CPUs with more CPUs than two.
        r.boot("affinity, 4 CPUs", [
            P("affinity, 4 CPUs", "affinity.sh", ["vmd_rs"]),
            P("affinity, 4 CPUs", "affinity.sh", ["vmd"]),
        ], machine=machines.PAIR, cpus=4, timeout=900)
        # Arrow Lake's second root bus: both root buses with vmd_rs, the
        # first only with the C driver (Linux 7.3); system sleep included.
        # vmd_rs last: its hot-add on the second root bus trips pciehp's
        # known lockdep report.
        r.boot("second root bus", [
            P("second root bus", "bus1.sh", ["vmd"]),
            P("second root bus", "bus1.sh", ["vmd_rs"]),
        ], machine=machines.BUS1, sleep=True, timeout=900)
        # Few VMD vectors: children share them, on the vectors the C
        # driver would pick.
        r.boot("scarce", [
            P("vmd_rs decodes like the C driver, few vectors", "rs_decode.sh"),
            P("vmd_rs on scarce", "vmd_cases.sh", ["vmd_rs", "--no-reload"]),
            P("C driver on scarce", "vmd_cases.sh", ["vmd", "--no-reload"]),
        ], machine=machines.SCARCE, timeout=1500)
        # Under the vIOMMU a second bind in one boot DMAs through stale
        # translations with either driver: 7.3's intel-iommu frees the VMD
        # domain's IOTLB cache tag when a VMD child is removed (testing.rst),
        # so each driver gets a boot of its own here and reloads run on
        # machines without an IOMMU.
        r.boot("iommu, vmd_rs", [P("vmd_rs on iommu", "vmd_cases.sh", ["vmd_rs", "--no-reload"])],
               machine=machines.IOMMU, timeout=900)
        r.boot("iommu, C driver", [P("C driver on iommu", "vmd_cases.sh", ["vmd", "--no-reload"])],
               machine=machines.IOMMU, timeout=900)
        # Child DMA with the VMD's bus mastering off never reaches memory.
        for drv, who in (("vmd_rs", "vmd_rs"), ("vmd", "C driver")):
            r.boot(f"bus master, {who}", [P("bus master", "bus_master.sh", [drv])],
                   machine=machines.BUS_MASTER, timeout=600)
        # msi_remap=on: remapped on the bypass-capable parts too.
        r.vm("vmd_rs msi_remap=on", "vmd_cases.sh",
             args=["vmd_rs", "--no-reload", "msi_remap=on"], machine=machines.BYPASS,
             msi_remap="on", timeout=900)
        # One VMD per MSI mode, in a VM whose virtio devices survive sleep:
        # msi_remap=off (bypass where possible, refused with a message where
        # not); insmod/fio/rmmod cycles (make soak has 200), then sysfs
        # unbind/bind while idle; system sleep (suspend to idle with
        # pm_test=devices, then IO) with either driver.
        r.boot("pair", [
            P("vmd_rs msi_remap=off", "vmd_cases.sh", ["vmd_rs", "--no-reload", "msi_remap=off"],
              msi_remap="off"),
            P(f"vmd_rs {CHECK_CYCLES} cycles", "cycles.sh", ["vmd_rs", str(CHECK_CYCLES)]),
            P("vmd_rs suspend/resume", "suspend.sh", ["vmd_rs"]),
            P("C driver suspend/resume", "suspend.sh", ["vmd"]),
            # Last: the poweroff that ends the boot runs its shutdown.
            P("shutdown", "shutdown.sh", ["vmd"]),
        ], machine=machines.PAIR, sleep=True, timeout=1800)
        # Teardown under load: each VMD unbound while fio runs on all its
        # namespaces, then the driver unloaded under IO; both MSI modes.
        # Last, vmd_rs left bound for the poweroff (shutdown.sh).
        r.boot("teardown", [
            P("teardown", "teardown.sh", ["vmd_rs", str(TEARDOWN_ROUNDS)]),
            P("teardown", "teardown.sh", ["vmd", str(TEARDOWN_ROUNDS)]),
            P("shutdown", "shutdown.sh", ["vmd_rs"]),
        ], machine=machines.PAIR, timeout=1500)
        # Hostile hardware: a VMD a case (machines.HOSTILE), each driver in
        # turn; vmd_rs must refuse with one clear line or bind and degrade,
        # the C driver must do what it was seen to do.
        r.boot("hostile", [
            P("matrix", "matrix.sh", ["vmd_rs"]),
            P("matrix", "matrix.sh", ["vmd"]),
        ], machine=machines.HOSTILE, timeout=1200)
        # What starts while a driver is bound: an MSI flood, a bad vector,
        # MSIs through unbinds, surprise removal under IO.  MSIs through an
        # unbind bring the C driver's kernel down (H1): a boot of its own.
        r.boot("runtime", [
            P("matrix", "matrix_runtime.sh", ["vmd_rs"]),
            P("matrix", "matrix_runtime.sh", ["vmd", "no-unbind-flood"]),
        ], machine=machines.RUNTIME, timeout=900)
        r.boot("runtime, C driver, H1", [
            P("matrix", "matrix_runtime.sh", ["vmd", "unbind-flood"]),
        ], machine=machines.RUNTIME, timeout=600, crash=(
            "matrix: MSI flood on vector 0 through an unbind: the kernel goes down "
            "in vmd_irq on freed SRCU data, as recorded (vmd)", H1_CRASH))
        # Seeded hostile hardware: corrupted config and MMIO reads, fixed
        # seeds, two VMDs each, in one boot (make soak runs 50 per driver).
        seeds = " ".join(map(str, machines.FUZZ_SEEDS))
        r.boot("fuzz", [
            P(f"fuzz: seeds {seeds}", "fuzz.sh", ["vmd_rs"]),
            P(f"fuzz: seeds {seeds}", "fuzz.sh", ["vmd"]),
        ], machine=machines.fuzz(*machines.FUZZ_SEEDS), timeout=1200)
        # Two CPUs at once (multi-threaded TCG): config reads on one, a
        # remapped child's interrupts freed and allocated on the other, an
        # MSI flood and IO, each driver; a stall gets a post-mortem.
        r.boot("mttcg: races", [
            P("mttcg: races", "smp_race.sh", ["vmd_rs", "60"]),
            P("mttcg: races", "smp_race.sh", ["vmd", "60"]),
        ], machine=machines.PAIR, timeout=900, tcg="multi", post_mortem=True)
        # Failed allocations in bind, every FAULT_STRIDE-th step (make soak
        # runs them all, a boot per driver).
        r.boot("faults", [
            P("faults", "faults.sh", ["vmd_rs", str(FAULT_STRIDE)]),
            P("faults", "faults.sh", ["vmd", str(FAULT_STRIDE)]),
        ], machine=machines.FAULTS, timeout=1200)
    else:
        if r.wanted("module load/unload"):
            r.result("module load/unload: not run, the module did not build", False)
        # The C driver's cases need no vmd_rs.
        r.boot("mixed, C driver", [P("C driver on mixed", "vmd_cases.sh", ["vmd"])],
               machine=machines.MIXED, timeout=1500)
        r.boot("scarce", [P("C driver on scarce", "vmd_cases.sh", ["vmd", "--no-reload"])],
               machine=machines.SCARCE, timeout=900)
        r.boot("iommu, C driver", [P("C driver on iommu", "vmd_cases.sh", ["vmd", "--no-reload"])],
               machine=machines.IOMMU, timeout=900)
        r.boot("pair", [P("C driver suspend/resume", "suspend.sh", ["vmd"])],
               machine=machines.PAIR, sleep=True, timeout=600)

    r.run_boots(a.jobs)
    return r.finish("make check", start, a.jobs)


if __name__ == "__main__":
    sys.exit(main())
