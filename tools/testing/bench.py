#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""`make bench`: vmd_rs against the C driver and against no VMD at all.

Three configurations on the same QEMU, guest shape (4 vCPUs, 1 GiB) and
NVMe drives (four per place, QEMU's null-co backend): direct (the drives on
root ports of the q35 root complex), C (vmd.ko) and rust (vmd_rs.ko), the
VMD ones with a 201D (remap) and a 28C0 (bypass; vmd_rs also msi_remap=on)
in one boot.  fio runs a job per CPU, pinned, a fixed number of I/Os.
Rounds are interleaved (direct, C, rust, direct, ...); the table shows
medians, the spread (min-max) and the ratios.

Besides IOPS and latency: the share of NVMe completions whose hard
interrupt ran on a CPU that submits to its queue ("local"), and the
function-call IPIs per I/O.

Guest instructions per I/O, a measure that depends far less on the
host's speed than IOPS: boots of their own (two per configuration by
default, so that the table shows how far they agree) under QEMU's
insn_count plugin (qemu/insn_count.c), where guest/insn_io.c runs each
workload five times between marks; the median of the five.  The table has
the kernel's instructions per I/O; a VMD configuration's minus direct's is
what the VMD driver adds to the I/O path (in remap mode: its interrupt
path, and for C the completions it sends to other CPUs).

Writes bench-results/<date>/results.{json,csv} and chart.png, prints the
table.  The kernel is the bench flavour (no lockdep, kmemleak, ...)."""

import argparse
import csv
import datetime
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import machines  # noqa: E402
import vmtest  # noqa: E402

ROOT = vmtest.ROOT
CACHE = vmtest.CACHE
WORKLOADS = ["1-qd1", "1-qd32", "4-qd1", "4-qd32"]
CPUS = 4
# What the plugin counts: the kernel's and user space's instructions.
COUNTS = ("kinsn", "uinsn")


def build_module():
    """vmd_rs.ko for the bench kernel, built in a copy of the tree so that
    the debug build in the tree stays as it is."""
    src = os.path.join(CACHE, "bench-build")
    os.makedirs(src, exist_ok=True)
    # The KUnit suites are compiled in as child modules of the files they
    # test (tools/testing/kunit).
    for item in ("Kbuild", "drivers", "rust", os.path.join("tools", "testing", "kunit")):
        dst = os.path.join(src, item)
        if os.path.isdir(dst):
            shutil.rmtree(dst)
        elif os.path.exists(dst):
            os.remove(dst)
        if os.path.isdir(os.path.join(ROOT, item)):
            shutil.copytree(os.path.join(ROOT, item), dst)
        else:
            shutil.copy(os.path.join(ROOT, item), dst)
    kdir = vmtest.kdir("bench")
    env = dict(os.environ)
    # Where provision.sh puts bindgen, as the Makefile's PATH has it.
    env["PATH"] = os.pathsep.join([os.path.join(CACHE, "tools", "bin"),
                                   os.path.expanduser("~/.cargo/bin"), env["PATH"]])
    subprocess.run(["make", "-s", "-C", kdir, "LLVM=-19", f"M={src}", "modules"],
                   check=True, env=env)
    return os.path.join(src, "vmd_rs.ko"), kdir


def build_c(src, out, *flags):
    """Compiles tools/testing/`src` into bench-build/`out`; returns its path."""
    path = os.path.join(CACHE, "bench-build", out)
    subprocess.run(["cc", "-O2", "-Wall", *flags, "-o", path, os.path.join(HERE, src)],
                   check=True)
    return path


def build_plugin():
    """QEMU's insn_count plugin, against the plugin API of the QEMU in the
    cache (its build keeps qemu-plugin.h)."""
    glib = subprocess.run(["pkg-config", "--cflags", "glib-2.0"], capture_output=True,
                          text=True, check=True).stdout.split()
    return build_c(os.path.join("qemu", "insn_count.c"), "insn_count.so", "-shared", "-fPIC",
                   *glib, "-I" + os.path.join(CACHE, "qemu", "current"))


def split_name(name):
    """(mode, workload) of `<mode>-<disks>-qd<N>`; the mode has a dash inside."""
    parts = name.split("-")
    return "-".join(parts[:-2]), "-".join(parts[-2:])


def plugin_args(kdir):
    """The insn_count plugin's image= argument for the bench kernel (the
    count boots run without KASLR): where the image starts and ends."""
    image = {}
    with open(os.path.join(kdir, "System.map")) as fh:
        for line in fh:
            addr, _, sym = line.split()[:3]
            if sym in ("_text", "_end"):
                image[sym] = addr
    return f"image=0x{image['_text']}:0x{image['_end']}"


def insn_per_io(outdir, counts):
    """{mode: {workload: {"kinsn": .., "uinsn": ..}}}: kernel and user
    instructions per I/O of each workload, from the plugin's counts at
    insn_io's marks, the median over the workload's runs."""
    with open(counts) as fh:
        at = {int(f[0]): [int(x) for x in f[1:]] for f in map(str.split, fh)}
    runs = {}
    with open(os.path.join(outdir, "marks")) as fh:
        for label, name, ios in map(str.split, fh):
            start, end = at[int(label)], at[int(label) + 1]
            runs.setdefault(name, []).append([(e - s) / int(ios) for s, e in zip(start, end)])
    out = {}
    for name, per_io in runs.items():
        mode, wl = split_name(name)
        out.setdefault(mode, {})[wl] = {k: med([r[i] for r in per_io])
                                        for i, k in enumerate(COUNTS)}
    return out


def read_interrupts(lines):
    """{name: [count per CPU]} of /proc/interrupts lines."""
    out = {}
    for line in lines[1:]:
        f = line.split()
        if not f:
            continue
        counts = []
        for x in f[1:CPUS + 1]:
            if not x.isdigit():
                break
            counts.append(int(x))
        out[f[0].rstrip(":")] = counts
    return out


def irq_metrics(path, ios):
    """Local share and IPIs per I/O of one fio run (bench.sh's irq-<name>
    file)."""
    with open(path) as fh:
        text = fh.read()
    before, rest = text.split("-- after\n")
    after, queues = rest.split("-- queues\n")
    b, a = read_interrupts(before.splitlines()), read_interrupts(after.splitlines())
    delta = {k: [y - x for x, y in zip(b.get(k, []), v)] for k, v in a.items()}
    # The CPUs submitting to each counted interrupt (a VMD vector may
    # carry more than one queue).
    submitters = {}
    for line in queues.splitlines():
        _, cpus, counted = line.split()
        submitters.setdefault(counted, set()).update(
            c for r in cpus.split(",")
            for c in range(int(r.split("-")[0]), int(r.split("-")[-1]) + 1))
    local = total = 0
    for counted, cpus in submitters.items():
        d = delta.get(counted, [])
        local += sum(n for c, n in enumerate(d) if c in cpus)
        total += sum(d)
    return {
        "local": local / total if total else None,
        "ipi_per_io": sum(delta.get("CAL", [])) / ios if ios else None,
    }


def text_size(ko):
    out = subprocess.run(["size", "-A", ko], capture_output=True, text=True,
                         check=True).stdout
    return sum(int(line.split()[1]) for line in out.splitlines()
               if line.startswith(".text"))


def guest_run(config, ko, args, name, **kw):
    """Boots a configuration's machine and runs bench.sh with `args` after
    the driver's name; returns (Result, whether the guest passed)."""
    drv = {"direct": "none", "C": "vmd", "rust": "vmd_rs"}[config]
    machine = machines.BENCH_DIRECT if config == "direct" else machines.BENCH_VMD
    res = vmtest.run(os.path.join(HERE, "guest", "bench.sh"), args=[drv, *args],
                     name=f"{name} {config}", flavour="bench", machine=machine,
                     timeout=1800, keep=True, ko=ko, cpus=CPUS,
                     log=os.path.join(CACHE, "logs", f"{name}-{config}.log"), **kw)
    ok = res.tests and all(t[1] for t in res.tests) and not res.timed_out
    if not ok:
        print(f"# {name} {config}: the guest reported a failure, see its log", flush=True)
    return res, ok


def count_boot(config, ko, plugin, insn_io, args):
    """One boot of a configuration under the insn_count plugin (`args`: its
    arguments for the kernel); returns {mode: {workload: instructions per
    I/O}} ({} if the guest failed)."""
    counts = os.path.join(CACHE, "logs", f"insn-{config}.txt")
    # nohz=off: whether an idle CPU stops its tick (and restarts it) follows
    # the host's timing; three boots' 1-qd1 counts spread 5% with it, 0.5%
    # without.
    res, ok = guest_run(config, ko, ["1", insn_io], "bench-count", append="nokaslr nohz=off",
                        qemu_opts=f"-plugin {plugin},out={counts},{args}")
    try:
        return insn_per_io(res.outdir, counts) if ok else {}
    finally:
        shutil.rmtree(res.outdir, ignore_errors=True)


def boot(config, ko, runtime):
    """One boot of a configuration; returns {mode: measurements}."""
    res, _ = guest_run(config, ko, [str(runtime)], "bench")
    out = {}
    for f in sorted(os.listdir(res.outdir)):
        path = os.path.join(res.outdir, f)
        if f.startswith("misc-"):
            with open(path) as fh:
                m = json.load(fh)
            out.setdefault(m["mode"], {}).update(
                probe_ms=m["probe_ns"] / 1e6 if m["probe_ns"] else None,
                cfg_reads_per_s=m["cfg_reads_per_s"])
        elif f.startswith("fio-"):
            mode, wl = split_name(f[4:-5])
            with open(path) as fh:
                try:
                    j = json.load(fh)
                except ValueError:
                    continue
            read = j["jobs"][0]["read"]
            pct = read["clat_ns"].get("percentile", {})
            out.setdefault(mode, {})[wl] = {
                "iops": read["iops"],
                "p50_us": pct.get("50.000000", 0) / 1000,
                "p99_us": pct.get("99.000000", 0) / 1000,
                **irq_metrics(os.path.join(res.outdir, f"irq-{f[4:-5]}"),
                              read["total_ios"]),
            }
    shutil.rmtree(res.outdir, ignore_errors=True)
    return out


# Rows: (row name, the mode each configuration has it under).
ROWS = [
    ("remap 201D", {"direct": "direct", "C": "remap-201d", "rust": "remap-201d"}),
    ("bypass 28C0", {"direct": "direct", "C": "bypass-28c0", "rust": "bypass-28c0"}),
    ("remap 28C0 (msi_remap=on)", {"direct": "direct", "rust": "remap-28c0"}),
]


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def spread(xs):
    xs = [x for x in xs if x is not None]
    return (min(xs), max(xs)) if xs else (None, None)


def metrics(wl):
    """The metrics a workload reports."""
    return {"probe": ["probe_ms"], "cfg": ["cfg_reads_per_s"]}.get(
        wl, ["iops", "p50_us", "p99_us", "local", "ipi_per_io"])


def value(one_round, cfg, mode, wl, k):
    """Metric `k` of workload `wl` in one round's `cfg` boot, `mode` of it."""
    m = one_round.get(cfg, {}).get(mode) or {}
    if wl in ("probe", "cfg"):
        return m.get(k)
    return (m.get(wl) or {}).get(k)


def summarize(rounds):
    """Medians and spreads per row, workload, metric and configuration."""
    table = []
    for row, modes in ROWS:
        for wl in WORKLOADS + ["probe", "cfg"]:
            entry = {"row": row, "workload": wl}
            for cfg in ("direct", "C", "rust"):
                mode = modes.get(cfg)
                if mode is None or (wl == "probe" and cfg == "direct"):
                    continue
                vals = {k: [value(r, cfg, mode, wl, k) for r in rounds] for k in metrics(wl)}
                entry[cfg] = {k: {"median": med(v), "spread": spread(v)}
                              for k, v in vals.items() if any(x is not None for x in v)}
            table.append(entry)
    return table


NAMES = {"iops": "IOPS", "p50_us": "p50 us", "p99_us": "p99 us", "probe_ms": "probe ms",
         "cfg_reads_per_s": "cfg/s", "local": "local", "ipi_per_io": "IPI/IO"}
# Digits after the point, where not 0.
DIGITS = {"local": 3, "ipi_per_io": 3}


def ratio(a, b):
    return a / b if a and b else None


def fmt(x, nd=0):
    return "-" if x is None else f"{x:.{nd}f}"


def print_table(table, stream=sys.stdout):
    head = (f"{'row':<26} {'load':<7} {'metric':<9} {'direct':>22} {'C':>22} "
            f"{'rust':>22} {'rust/C':>7} {'rust/dir':>8} {'C/dir':>6}")
    print(head, file=stream)
    print("-" * len(head), file=stream)
    for e in table:
        for k in metrics(e["workload"]):
            cells = []
            meds = {}
            for cfg in ("direct", "C", "rust"):
                v = e.get(cfg, {}).get(k)
                if v is None:
                    cells.append(f"{'':>22}")
                    continue
                meds[cfg] = v["median"]
                lo, hi = v["spread"]
                nd = DIGITS.get(k, 0)
                cells.append(f"{fmt(v['median'], nd)} [{fmt(lo, nd)}-{fmt(hi, nd)}]".rjust(22))
            print(f"{e['row']:<26} {e['workload']:<7} {NAMES[k]:<9} {' '.join(cells)} "
                  f"{fmt(ratio(meds.get('rust'), meds.get('C')), 3):>7} "
                  f"{fmt(ratio(meds.get('rust'), meds.get('direct')), 3):>8} "
                  f"{fmt(ratio(meds.get('C'), meds.get('direct')), 3):>6}", file=stream)


def write_csv(table, path):
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["row", "workload", "metric", "config", "median", "min", "max"])
        for e in table:
            for cfg in ("direct", "C", "rust"):
                for k, v in e.get(cfg, {}).items():
                    w.writerow([e["row"], e["workload"], k, cfg, v["median"], *v["spread"]])


def chart(table, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("# no matplotlib: no chart", flush=True)
        return
    rows = [e for e in table if e["workload"] in WORKLOADS]
    labels = [f"{e['row']}\n{e['workload']}" for e in rows]
    fig, ax = plt.subplots(figsize=(max(8, len(rows) * 0.9), 5))
    width = 0.27
    for i, cfg in enumerate(("direct", "C", "rust")):
        ys, lo, hi = [], [], []
        for e in rows:
            v = e.get(cfg, {}).get("iops")
            m = v["median"] if v else 0
            ys.append(m)
            lo.append(m - v["spread"][0] if v else 0)
            hi.append(v["spread"][1] - m if v else 0)
        ax.bar([x + (i - 1) * width for x in range(len(rows))], ys, width,
               yerr=[lo, hi], label=cfg, capsize=2)
    ax.set_xticks(range(len(rows)))
    ax.set_xticklabels(labels, fontsize=7)
    ax.set_ylabel("4k random read IOPS (median, min-max)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def summarize_counts(count_rounds):
    """Per row and workload: each configuration's kernel and user
    instructions per I/O in every count boot."""
    table = []
    for row, modes in ROWS:
        for wl in WORKLOADS:
            entry = {"row": row, "workload": wl}
            for cfg, mode in modes.items():
                for k in COUNTS:
                    vals = [((r.get(cfg) or {}).get(mode) or {}).get(wl, {}).get(k)
                            for r in count_rounds]
                    vals = [v for v in vals if v is not None]
                    if vals:
                        entry.setdefault(cfg, {})[k] = vals
            table.append(entry)
    return table


def print_counts(table, stream=sys.stdout):
    """The kernel's instructions per I/O of each count boot, their spread
    ((max - min) / median), and the differences of the medians: what each
    VMD driver adds to direct's and rust's difference to C's."""
    head = (f"{'row':<26} {'load':<7} {'direct':>22} {'C':>22} {'rust':>22} "
            f"{'C-dir':>7} {'rust-dir':>8} {'rust-C':>7}")
    print(head, file=stream)
    print("-" * len(head), file=stream)
    for e in table:
        cells, meds = [], {}
        for cfg in ("direct", "C", "rust"):
            vals = e.get(cfg, {}).get("kinsn")
            if not vals:
                cells.append(f"{'':>22}")
                continue
            meds[cfg] = med(vals)
            rel = (max(vals) - min(vals)) / meds[cfg] if meds[cfg] else 0
            cells.append(f"{' '.join(f'{v:.0f}' for v in vals)} ({rel:.1%})".rjust(22))
        diffs = [fmt(meds[a] - meds[b]) if a in meds and b in meds else "-"
                 for a, b in (("C", "direct"), ("rust", "direct"), ("rust", "C"))]
        print(f"{e['row']:<26} {e['workload']:<7} {' '.join(cells)} {diffs[0]:>7} "
              f"{diffs[1]:>8} {diffs[2]:>7}", file=stream)


RATIOS = [("rust", "C"), ("rust", "direct"), ("C", "direct")]


def round_ratios(rounds):
    """Per row, workload, metric and ratio: the ratio in each round (the
    configurations of a round ran back to back)."""
    out = {}
    for row, modes in ROWS:
        for wl in WORKLOADS + ["probe", "cfg"]:
            for k in metrics(wl):
                for a, b in RATIOS:
                    if a not in modes or b not in modes or (wl == "probe" and b == "direct"):
                        continue
                    rs = [ratio(value(r, a, modes[a], wl, k), value(r, b, modes[b], wl, k))
                          for r in rounds]
                    rs = [x for x in rs if x is not None]
                    if rs:
                        out[(row, wl, NAMES[k], f"{a}/{b}")] = rs
    return out


def compare(dirs):
    """Prints, for two result directories, each ratio's median and per-round
    min-max in both, and whether each run's median lies in the other's
    range.  Returns 0."""
    runs = []
    for d in dirs:
        with open(os.path.join(d, "results.json")) as fh:
            runs.append(round_ratios(json.load(fh)["rounds"]))
    a, b = runs
    head = (f"{'row':<26} {'load':<7} {'metric':<9} {'ratio':<12} "
            f"{'run A':>22} {'run B':>22}  agree")
    print(f"# A: {dirs[0]}\n# B: {dirs[1]}\n# ratio: median [min-max] of the per-round ratios")
    print(head)
    print("-" * len(head))
    agree = total = 0
    for key in a:
        if key not in b:
            continue
        ma, mb = med(a[key]), med(b[key])
        ok = min(a[key]) <= mb <= max(a[key]) and min(b[key]) <= ma <= max(b[key])
        total += 1
        agree += ok
        cell = [f"{m:.3f} [{min(x):.3f}-{max(x):.3f}]".rjust(22)
                for m, x in ((ma, a[key]), (mb, b[key]))]
        print(f"{key[0]:<26} {key[1]:<7} {key[2]:<9} {key[3]:<12} {cell[0]} {cell[1]}  "
              f"{'yes' if ok else 'NO'}")
    print(f"# {agree} of {total} ratios: each run's median inside the other's per-round range")
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--runtime", type=int, default=4, help="seconds per fio run")
    ap.add_argument("--count-rounds", type=int, default=2,
                    help="boots per configuration under the insn_count plugin")
    ap.add_argument("--out", default=os.path.join(ROOT, "bench-results"))
    ap.add_argument("--compare", nargs=2, metavar="DIR",
                    help="compare the ratios of two earlier runs (no new run)")
    a = ap.parse_args()
    if a.compare:
        return compare(a.compare)

    start = time.monotonic()
    ko, kdir = build_module()
    sizes = {"vmd.ko": text_size(os.path.join(kdir, "drivers/pci/controller/vmd.ko")),
             "vmd_rs.ko": text_size(ko)}
    rounds = []
    for r in range(a.rounds):
        this = {}
        for cfg in ("direct", "C", "rust"):
            print(f"# round {r + 1}/{a.rounds}: {cfg}", flush=True)
            this[cfg] = boot(cfg, ko, a.runtime)
        rounds.append(this)
    insn_io = build_c(os.path.join("guest", "insn_io.c"), "insn_io", "-pthread")
    plugin = build_plugin()
    args = plugin_args(kdir)
    count_rounds = []
    for r in range(a.count_rounds):
        this = {}
        for cfg in ("direct", "C", "rust"):
            print(f"# instruction count {r + 1}/{a.count_rounds}: {cfg}", flush=True)
            this[cfg] = count_boot(cfg, ko, plugin, insn_io, args)
        count_rounds.append(this)
    table = summarize(rounds)
    counts = summarize_counts(count_rounds)

    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
    out = os.path.join(a.out, stamp)
    os.makedirs(out, exist_ok=True)
    meta = {"date": stamp, "host": platform.node(), "cpus": os.cpu_count(),
            "rounds": a.rounds, "runtime_s": a.runtime, "text_bytes": sizes,
            "kernel": os.path.basename(kdir)}
    with open(os.path.join(out, "results.json"), "w") as fh:
        json.dump({"meta": meta, "rounds": rounds, "table": table,
                   "count_rounds": count_rounds, "counts": counts}, fh, indent=1)
    write_csv(table, os.path.join(out, "results.csv"))
    chart(table, os.path.join(out, "chart.png"))
    print(f"# {meta}")
    print(f"# .text bytes: vmd.ko {sizes['vmd.ko']}, vmd_rs.ko {sizes['vmd_rs.ko']}")
    print("# medians [min-max] over the rounds; probe ms: module load until every "
          "namespace exists (one load for both VMDs); cfg/s: whole config spaces "
          "read through sysfs per second (each NVMe and its port)")
    print_table(table)
    print("# guest kernel instructions per I/O (insn_count plugin), each count boot, "
          "(max - min) / median; C-dir, rust-dir: what each driver adds to the I/O "
          "path (in remap mode its interrupt path), rust-C: rust's difference (medians)")
    print_counts(counts)
    print(f"# results in {out} ({time.monotonic() - start:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
