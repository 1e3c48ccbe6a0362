#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Boots the test kernel under virtme-ng, runs one guest-side test script and
reports its KTAP results plus any kernel complaint found in the guest's log.

Every run is bounded by a timeout.  A run fails on BUG:, WARNING:, Oops,
lockdep, KASAN or kmemleak reports even when the test's own checks passed.

Usage: vmtest.py [--qemu BIN] [--qemu-opts OPTS] [--append ARGS]
                 [--timeout S] [--memory M] [--cpus N] script [args...]
"""

import argparse
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))
CACHE = os.environ.get("VMD_RS_CACHE", os.path.expanduser("~/.cache/vmd-rs"))

# Kernel log lines that mean the kernel complained.
COMPLAINTS = [
    re.compile(p)
    for p in (
        r"\bBUG:",
        r"\bWARNING:",
        r"\bOops\b",
        r"Kernel panic",
        r"possible circular locking",
        r"possible recursive locking",
        r"inconsistent lock state",
        r"lockdep",
        r"INFO: (task|rcu)",
        r"KASAN",
        r"UBSAN",
        r"unreferenced object",
        r"\brust_panic\b|panicked at",
        r"general protection fault",
        r"DMAR: \[DMA (Read|Write)",
        r"DMAR: DRHD: handling fault",
    )
]
# Boot noise under TCG that is not a complaint about the code under test.
BENIGN = [
    re.compile(p)
    for p in (
        r"lockdep: .*disabled",
        r"Lock dependency validator",
        r"KASAN: .*(initialized|enabled)",
        r"kasan: KernelAddressSanitizer initialized",
        r"this kernel was built with CONFIG_KASAN",
    )
]


@dataclass
class Result:
    """One VM run: each KTAP test's verdict and what the kernel said."""

    name: str
    tests: list = field(default_factory=list)  # (name, ok, diagnostics)
    complaints: list = field(default_factory=list)
    rc: int = -1
    timed_out: bool = False
    seconds: float = 0.0
    output: str = ""
    outdir: str = ""

    @property
    def ok(self):
        return (
            self.rc == 0
            and not self.timed_out
            and not self.complaints
            and self.tests
            and all(ok for _, ok, _ in self.tests)
        )


def kdir(flavour="debug"):
    path = os.path.join(CACHE, "kernel", flavour)
    if not os.path.exists(os.path.join(path, ".vmd-rs-built")):
        sys.exit(f"no {flavour} test kernel in {path}: run 'make check' or 'make run'")
    return os.path.realpath(path)


def default_qemu():
    path = os.path.join(CACHE, "qemu", "current", "qemu-system-x86_64")
    return path if os.path.exists(path) else None


def qemu_firmware_opts(qemu):
    """A QEMU run from its build tree needs -L for each firmware directory."""
    if not qemu:
        return []
    opts = []
    for d in (
        os.path.join(os.path.dirname(qemu), "pc-bios"),
        "/usr/share/seabios",
        "/usr/lib/ipxe/qemu",
        os.path.join(CACHE, "qemu", "firmware"),
    ):
        if os.path.isdir(d):
            opts += ["-L", d]
    return opts


def parse_ktap(text):
    """Top-level KTAP results: [(name, ok, [diagnostic lines])]."""
    tests = []
    diag = []
    for line in text.splitlines():
        m = re.match(r"^(not ok|ok) \d+ (.*?)(\s+#\s*(SKIP|TODO).*)?$", line)
        if m:
            ok = m.group(1) == "ok"
            if m.group(4) == "SKIP":
                ok = False  # a skipped check is not a pass
            tests.append((m.group(2), ok, diag))
            diag = []
        elif line.startswith("# "):
            diag.append(line[2:])
    return tests


def find_complaints(text):
    found = []
    for line in text.splitlines():
        if any(b.search(line) for b in BENIGN):
            continue
        if any(c.search(line) for c in COMPLAINTS):
            found.append(line.strip())
    return found


def run(script, args=(), name=None, qemu=None, qemu_opts="", append="",
        timeout=600, memory="2G", cpus=2, flavour="debug", log=None):
    """Boots the VM, runs `script` in it and returns a Result."""
    name = name or os.path.basename(script)
    res = Result(name=name)
    outdir = tempfile.mkdtemp(prefix="vmd-rs-vm-", dir=os.environ.get("TMPDIR", "/tmp"))
    res.outdir = outdir
    qemu = qemu or default_qemu()
    guest_cmd = " ".join(
        shlex.quote(a)
        for a in ["bash", os.path.join(HERE, "guest", "wrap.sh"), outdir, script, *args]
    )
    cmd = [
        "vng", "--run", kdir(flavour), "--disable-kvm", "--disable-microvm",
        "--cpus", str(cpus), "--memory", memory, "--rwdir", outdir,
        "--verbose", "--user", "root",
        "--append", ("modprobe.blacklist=vmd " + append).strip(),
        "--exec", guest_cmd,
    ]
    if qemu:
        cmd += ["--qemu", qemu]
    opts = " ".join(shlex.quote(o) for o in qemu_firmware_opts(qemu))
    if qemu_opts:
        opts = (opts + " " + qemu_opts).strip()
    if opts:
        cmd += ["--qemu-opts", opts]
    env = dict(os.environ)
    env["PATH"] = os.path.join(CACHE, "venv", "bin") + os.pathsep + env["PATH"]
    start = time.monotonic()
    try:
        p = subprocess.run(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=timeout, text=True, errors="replace")
        res.rc = p.returncode
        res.output = p.stdout
    except subprocess.TimeoutExpired as e:
        res.timed_out = True
        out = e.stdout or b""
        res.output = out.decode(errors="replace") if isinstance(out, bytes) else out
    res.seconds = time.monotonic() - start

    def read(f):
        try:
            with open(os.path.join(outdir, f), errors="replace") as fh:
                return fh.read()
        except OSError:
            return ""

    ktap = read("ktap")
    res.tests = parse_ktap(ktap if ktap else res.output)
    # The console (--verbose) has the whole kernel log even when the guest
    # died before saving dmesg; kmemleak's report is only in its file.
    kernel_log = res.output + "\n" + read("dmesg") + "\n" + read("kmemleak")
    res.complaints = sorted(set(find_complaints(kernel_log)))
    if log:
        with open(log, "w") as fh:
            fh.write(f"$ {shlex.join(cmd)}\n{res.output}\n--- dmesg ---\n{read('dmesg')}\n"
                     f"--- kmemleak ---\n{read('kmemleak')}\n")
    return res


def report(res, stream=sys.stdout):
    """Prints a run's results as KTAP; returns (passed, failed)."""
    passed = failed = 0
    for tname, ok, diag in res.tests:
        if not ok:
            for d in diag:
                print(f"    # {d}", file=stream)
        print(f"    {'ok' if ok else 'not ok'} - {res.name}: {tname}", file=stream)
        passed += ok
        failed += not ok
    clean = not res.complaints and not res.timed_out and res.rc == 0 and res.tests
    for c in res.complaints[:20]:
        print(f"    # kernel: {c}", file=stream)
    if res.timed_out:
        print(f"    # timed out after {res.seconds:.0f} s", file=stream)
    elif res.rc != 0:
        print(f"    # guest exit status {res.rc}", file=stream)
    if not res.tests:
        print("    # no KTAP result came back", file=stream)
    print(f"    {'ok' if clean else 'not ok'} - {res.name}: VM clean "
          f"(no kernel complaint, exit 0, {res.seconds:.0f} s)", file=stream)
    passed += bool(clean)
    failed += not clean
    return passed, failed


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--qemu")
    ap.add_argument("--qemu-opts", default="")
    ap.add_argument("--append", default="")
    ap.add_argument("--timeout", type=int, default=600)
    ap.add_argument("--memory", default="2G")
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--flavour", default="debug")
    ap.add_argument("--log")
    ap.add_argument("script")
    ap.add_argument("args", nargs="*")
    a = ap.parse_args()
    res = run(a.script, a.args, qemu=a.qemu, qemu_opts=a.qemu_opts, append=a.append,
              timeout=a.timeout, memory=a.memory, cpus=a.cpus, flavour=a.flavour,
              log=a.log)
    passed, failed = report(res)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
