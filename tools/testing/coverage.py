#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""`make coverage`: how much of vmd.c (Linux 7.3) the C driver's cases of
make check reach, measured with gcov on the coverage flavour of the test
kernel (the debug kernel with CONFIG_GCOV_KERNEL, counters in vmd.o only).

Each boot runs the C driver's parts of a make check boot, then copies
vmd.o's counts out of the guest (guest/gcov_collect.sh); lcov merges them
and genhtml writes an HTML report.  Prints the test results, the line,
function and branch figures and every line never reached, grouped by
function; the same goes to <cache>/coverage/summary.txt, the report to
<cache>/coverage/html/index.html.  The last line is `N passed, N failed`
for the boots' tests (the figures are a measurement, not a test).

Usage: coverage.py [-k SUBSTRING] [-j JOBS]
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import check  # noqa: E402
import machines  # noqa: E402
import vmtest  # noqa: E402

OUT = os.path.join(vmtest.CACHE, "coverage")


def boots(r):
    """make check's C driver parts, each boot ending with the collection."""
    P = vmtest.Part
    collect = P("coverage", "gcov_collect.sh")
    kw = dict(flavour="coverage", keep=True)
    r.boot("coverage: mixed", [
        P("kmemleak", "host_bridge_leak.sh", ["vmd"]),
        P("C driver on mixed", "vmd_cases.sh", ["vmd", "--hot-remove", "1"]),
        collect], machine=machines.MIXED, timeout=1500, lockdep_off_by_known=True, **kw)
    r.boot("coverage: scarce", [P("C driver on scarce", "vmd_cases.sh", ["vmd", "--no-reload"]),
                      collect], machine=machines.SCARCE, timeout=900, **kw)
    r.boot("coverage: iommu", [P("C driver on iommu", "vmd_cases.sh", ["vmd", "--no-reload"]),
                     collect], machine=machines.IOMMU, timeout=900, **kw)
    r.boot("coverage: pair", [P("C driver suspend/resume", "suspend.sh", ["vmd"]),
                    P("teardown", "teardown.sh", ["vmd", "1"]),
                    collect], machine=machines.PAIR, sleep=True, timeout=1200, **kw)
    r.boot("coverage: hostile", [P("matrix", "matrix.sh", ["vmd"]),
                       P("matrix", "matrix_runtime.sh", ["vmd", "no-unbind-flood"]),
                       collect], machine=machines.HOSTILE, timeout=1200, **kw)
    r.boot("coverage: faults", [P("faults", "faults.sh", ["vmd", str(check.FAULT_STRIDE)]),
                      collect], machine=machines.FAULTS, timeout=1200, **kw)


def lcov(*args):
    subprocess.run(["lcov", "--quiet", "--rc", "lcov_branch_coverage=1", *args], check=True,
                   stdout=subprocess.DEVNULL)


def capture(kdir, gcov_tool, name, gcda):
    """An lcov tracefile of one boot's counts."""
    work = os.path.join(OUT, "boots", name)
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    shutil.copy(os.path.join(kdir, "drivers", "pci", "controller", "vmd.gcno"), work)
    shutil.copy(gcda, os.path.join(work, "vmd.gcda"))
    info = os.path.join(OUT, f"{name}.info")
    lcov("--capture", "--directory", work, "--base-directory", kdir,
         "--gcov-tool", gcov_tool, "--output-file", info)
    return info


def summarise(info):
    """Figures and the unreached lines of vmd.c, from a tracefile."""
    src, lines, fns, fn_hits, branches = None, {}, [], {}, [0, 0]
    with open(info) as fh:
        for line in fh:
            key, _, val = line.strip().partition(":")
            if key == "SF" and val.endswith("/vmd.c"):
                src = val
            elif src is None:
                continue
            elif key == "DA":
                n, count = val.split(",")[:2]
                lines[int(n)] = lines.get(int(n), 0) + int(count)
            elif key == "FN":
                n, fn = val.split(",", 1)
                fns.append((int(n), fn))
            elif key == "FNDA":
                count, fn = val.split(",", 1)
                fn_hits[fn] = fn_hits.get(fn, 0) + int(count)
            elif key == "BRDA":
                taken = val.split(",")[3]
                branches[0] += 1
                branches[1] += taken not in ("-", "0")
            elif key == "end_of_record":
                break
    text = open(src).read().splitlines() if src and os.path.exists(src) else []
    fns.sort()

    def function_of(n):
        name = "?"
        for start, fn in fns:
            if start <= n:
                name = fn
        return name

    out = []
    hit = sum(1 for c in lines.values() if c)
    fhit = sum(1 for _, fn in fns if fn_hits.get(fn, 0))
    out.append(f"vmd.c: lines {hit}/{len(lines)} ({100 * hit / max(len(lines), 1):.1f}%), "
               f"functions {fhit}/{len(fns)}, "
               f"branches {branches[1]}/{branches[0]} "
               f"({100 * branches[1] / max(branches[0], 1):.1f}%)")
    out.append("lines never reached (vmd.c line: source), by function:")
    last = None
    for n in sorted(k for k, c in lines.items() if not c):
        fn = function_of(n)
        if fn != last:
            out.append(f"  {fn}{'' if fn_hits.get(fn, 0) else ' (never called)'}:")
            last = fn
        code = text[n - 1].strip() if 0 < n <= len(text) else ""
        out.append(f"    {n}: {code}")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("-k", dest="pattern", help="run only the tests whose name has this")
    ap.add_argument("-j", dest="jobs", type=int, default=2, help="VMs at a time")
    a = ap.parse_args()
    r = check.Runner(a.pattern)
    start = time.monotonic()
    boots(r)
    r.run_boots(a.jobs)

    kdir = vmtest.kdir("coverage")
    os.makedirs(OUT, exist_ok=True)
    # lcov runs gcov; clang's counters need LLVM's gcov.
    gcov_tool = os.path.join(OUT, "llvm-gcov")
    with open(gcov_tool, "w") as fh:
        fh.write('#!/bin/sh\nexec llvm-cov-19 gcov "$@"\n')
    os.chmod(gcov_tool, 0o755)
    infos = []
    for name, res in sorted(r.boot_results.items()):
        gcda = os.path.join(res.outdir, "vmd.gcda")
        if os.path.exists(gcda):
            infos.append(capture(kdir, gcov_tool, re.sub(r"\W", "_", name), gcda))
        shutil.rmtree(res.outdir, ignore_errors=True)
    if not infos:
        r.result("coverage: counts from at least one boot", False, "no vmd.gcda")
        return r.finish("make coverage", start, a.jobs)
    total = os.path.join(OUT, "total.info")
    lcov(*[x for i in infos for x in ("--add-tracefile", i)], "--output-file", total)
    subprocess.run(["genhtml", "--quiet", "--branch-coverage", "--output-directory",
                    os.path.join(OUT, "html"), total], check=True, stdout=subprocess.DEVNULL)
    summary = [f"boots: {', '.join(sorted(r.boot_results))}"] + summarise(total)
    with open(os.path.join(OUT, "summary.txt"), "w") as fh:
        fh.write("\n".join(summary) + "\n")
    for line in summary:
        print(f"# {line}")
    print(f"# report: {os.path.join(OUT, 'html', 'index.html')}")
    return r.finish("make coverage", start, a.jobs)


if __name__ == "__main__":
    sys.exit(main())
