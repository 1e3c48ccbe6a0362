#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Boots the test kernel under virtme-ng, runs one guest-side test script and
reports its KTAP results plus any kernel complaint found in the guest's log.

Every run is bounded by a timeout.  A run fails on BUG:, WARNING:, Oops,
lockdep, KASAN or kmemleak reports even when the test's own checks passed.

Usage: vmtest.py [--qemu BIN] [--qemu-opts OPTS] [--append ARGS]
                 [--timeout S] [--memory M] [--cpus N] [--machine NAME]
                 [--flavour debug|bench] [--ko KO] [--tcg single|multi]
                 [--post-mortem] script [args...]
"""

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field

import machines

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
        r"suspicious RCU usage",
        r"INFO: (task|rcu)",
        r"KASAN",
        r"UBSAN",
        r"unreferenced object",
        r"\brust_panic\b|panicked at",
        r"general protection fault",
        r"DMAR: \[DMA (Read|Write)",
        r"DMAR: DRHD: handling fault",
        r"nobody cared",
        r"Disabling IRQ #",
        r"trying to register non-static key",
        r"kmemleak: Kernel memory leak detector disabled",
    )
]

# NVMe giving up on a command: a complaint too, but on machines whose
# hardware is hostile by design (Machine.nvme_errors), where it is a
# possible outcome, not a defect.
NVME_ERRORS = re.compile(r"nvme nvme\d+: .*(timeout|reset controller|completion polled)")
# Boot noise under TCG that is not a complaint about the code under test.
BENIGN = [
    re.compile(p)
    for p in (
        r"lockdep: .*disabled",
        r"RCU lockdep checking is enabled",
        r"Lock dependency validator",
        r"KASAN: .*(initialized|enabled)",
        r"kasan: KernelAddressSanitizer initialized",
        r"this kernel was built with CONFIG_KASAN",
    )
]


# Reports from upstream code that every boot doing the same thing gets,
# whatever the driver: (complaint, a line that must follow within 40 lines,
# why it is known[, what the boot's log must also have for it to be known]).
KNOWN_UPSTREAM = [
    (re.compile(r"WARNING: possible circular locking dependency detected"),
     re.compile(r"pciehp_configure_device.*\n(?:.*\n){0,3}.*pci_rescan_remove_lock"
                r"|pci_rescan_remove_lock.*\n(?:.*\n){0,12}.*reset_lock", re.M),
     "pciehp hot-add in 7.3: pci_rescan_remove_lock vs ctrl->reset_lock "
     "(upstream_pciehp.sh shows it on a plain q35 root port)"),
    (re.compile(r"BUG: KASAN: wild-memory-access in do_raw_spin_lock"),
     re.compile(r"handle_edge_irq.*\n(?:.*\n){0,30}.*identify_cpu"),
     "x86 7.3, KASAN with 5-level paging: an interrupt while identify_cpu() "
     "has boot_cpu_data's capabilities cleared, LA57 with them (kasan.py "
     "shows it with no VMD; its other boots run with no5lvl)"),
    # Only where a failure was injected into register_irq_proc(): a
    # /proc/irq file missing for any other reason is not this report.
    (re.compile(r"WARNING: .* remove_proc_entry"),
     re.compile(r"unregister_irq_proc"),
     "kernel/irq/proc.c in 7.3: register_irq_proc() ignores a failed "
     "/proc/irq/<n>/ file, unregister_irq_proc() removes it anyway "
     "(upstream_irq_proc.sh shows it with pcieport, no VMD)",
     re.compile(r"FAULT_INJECTION: forcing a failure(?:.*\n){1,40}?.*register_irq_proc", re.M)),
]


# kmemleak reports of known leaks, upstream's but the last: (a line of the
# object's report, why it is known, what the boot's log must have for it
# to be known).  Not
# the module's frames: kmemleak names an unloaded module's addresses after
# whatever module is loaded there when it reports.
KNOWN_LEAKS = [
    # vmd_rs puts its host bridges: only where the C driver bound a VMD (its
    # bind message; vmd_rs's says "vmd_rs ..."), and boots without it must
    # show none.
    (re.compile(r"pci_create_root_bus|resource_list_create_entry"),
     "pci_remove_root_bus() only device_del()s the host bridge (since v5.8), "
     "and vmd.c never puts it: its windows, name and the bridge leak on every "
     "unbind (host_bridge_leak.sh shows it in a boot of the C driver alone)",
     re.compile(r"\] vmd [0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]: Bound to PCI domain")),
    # make coverage's kernel only (gcov): every unload of a profiled
    # module (vmd.ko; make coverage runs no vmd_rs) leaks its records.  No
    # log line is needed: the frames exist only with CONFIG_GCOV_KERNEL.
    (re.compile(r"llvm_gcov_init\+|llvm_gcda_emit_function\+|llvm_gcda_emit_arcs\+"),
     "clang's gcov in 7.3 (kernel/gcov/clang.c) kzallocs a module's gcov_info "
     "and function records in llvm_gcov_init(); on unload the module notifier "
     "unlinks them and keeps a copy (gcov_persist) but never frees them",
     re.compile(r"")),
    (re.compile(r"dev_set_name\+.*\n.*pci_setup_device\+"),
     "7.3's pci_scan_device() kfree()s a device whose header type is unknown "
     "without its name (matrix: a child with an undefined header type, either "
     "driver)",
     re.compile(r"unknown header type [0-9a-f]+, ignoring device")),
    # Not upstream's: kmemleak_plant.sh's own; "clear" after its report
    # did not always keep its objects out of the boot's final scan.
    (re.compile(r"kmemleak_plant\.\."),
     "kmemleak_plant.ko leaks them on purpose (kmemleak_plant.sh)",
     re.compile(r"kmemleak_plant: \d+ objects of \d+ bytes leaked on purpose")),
]


def split_kmemleak(text, log):
    """The kmemleak report's objects that are not KNOWN_LEAKS in a boot
    whose kernel log is `log`, and the known ones, each a list of reports."""
    unknown, known = [], []
    for block in re.split(r"(?m)^(?=unreferenced object )", text):
        if not block.startswith("unreferenced object "):
            continue
        why = next((w for p, w, r in KNOWN_LEAKS if p.search(block) and r.search(log)), None)
        if why:
            known.append(f"{block.splitlines()[0].strip()} [known: {why}]")
        else:
            unknown.append(block)
    return unknown, known


@dataclass
class Part:
    """One guest script of a boot that runs several in turn (see run_parts).
    Its KTAP results are named `label: <test>`."""

    label: str
    script: str
    args: list = field(default_factory=list)
    msi_remap: str = "auto"


@dataclass
class Result:
    """One VM run: each KTAP test's verdict and what the kernel said."""

    name: str
    tests: list = field(default_factory=list)  # (name, ok, diagnostics)
    complaints: list = field(default_factory=list)
    known: list = field(default_factory=list)
    rc: int = -1
    timed_out: bool = False
    seconds: float = 0.0
    output: str = ""
    outdir: str = ""
    ktap: str = ""
    post_mortem: str = ""
    # Results named by their part's label (run_parts), not by the boot's.
    parts: bool = False
    # Checks of the whole boot: (name, ok, diagnostics), named by the boot.
    boot_checks: list = field(default_factory=list)
    # A boot whose recorded outcome is a crash (run_parts' `crash`) had it.
    crashed_as_recorded: bool = False

    @property
    def ok(self):
        return (
            self.rc == 0
            and not self.timed_out
            and not self.complaints
            and self.tests
            and all(ok for _, ok, _ in self.tests + self.boot_checks)
        )


# The flavours with lockdep, kmemleak and slub_debug on (not bench's).
DEBUG_FLAVOURS = {"debug", "kasan", "coverage"}


def kdir(flavour="debug"):
    path = os.path.join(CACHE, "kernel", flavour)
    if not os.path.exists(os.path.join(path, ".vmd-rs-built")):
        sys.exit(f"no {flavour} test kernel in {path}: run 'make check' or 'make run'")
    return os.path.realpath(path)


# All vCPUs on one TCG thread.  With QEMU 10.0's default multi-threaded TCG
# a halted vCPU now and then sleeps on with a deliverable interrupt pending in
# its local APIC (IRR set, PPR below it, the vCPU's interrupt_request empty,
# seen with gdb): the guest stalls until some other event wakes the CPU, with
# either VMD driver.  In one thread this never showed (2 x 80 bind cycles
# where multi-threaded TCG stalled twice in 60), and on a 2-core host it is
# faster too.  `--tcg multi` brings the default back.
TCG_ACCEL = {"single": "-accel tcg,thread=single", "multi": "-accel tcg,thread=multi"}


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


def plan_check(text):
    """None if the first KTAP plan (1..N) of `text` matches its number of
    top-level results, else what is wrong: a script that dies half way
    must not pass on the results it printed."""
    m = re.search(r"^1\.\.(\d+)$", text, re.M)
    if not m:
        return "no KTAP plan"
    got = len(re.findall(r"^(?:not ok|ok) \d+ ", text, re.M))
    want = int(m.group(1))
    return None if got == want else f"KTAP plan of {want}, {got} results"


def lockdep_check(read, nparts, known, may_end_off, off_by_known=False):
    """None if lockdep was still checking after every part (the guest's
    debug_locks.<i>), else what is wrong.  The last part may end with it
    off only where `may_end_off` (a boot whose last case is the known
    pciehp hot-add), with a known report and lockdep on before the hot-add
    (debug_locks.<i>.hotadd).  With `off_by_known` (a boot that exists to
    reproduce a known report), any known report may have turned it off."""
    for i in range(nparts):
        v = read(f"debug_locks.{i}").strip() or "no record (the guest did not get there)"
        if v == "1" or (v == "0" and off_by_known and known):
            continue
        if i == nparts - 1 and may_end_off and known and \
                read(f"debug_locks.{i}.hotadd").strip() == "1":
            continue
        return f"debug_locks after part {i}: {v}"
    return None


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


def find_complaints(text, known=None, nvme_errors=False):
    """Complaint lines of a kernel log; those of KNOWN_UPSTREAM reports go
    to `known` (a list) instead.  NVMe's timeouts and resets count unless
    `nvme_errors`."""
    found = []
    lines = text.splitlines()
    skip_until = -1
    for i, line in enumerate(lines):
        if any(b.search(line) for b in BENIGN):
            continue
        if not any(c.search(line) for c in COMPLAINTS) and \
                (nvme_errors or not NVME_ERRORS.search(line)):
            continue
        if i <= skip_until:
            continue
        window = "\n".join(lines[i:i + 40])
        for pattern, context, why, *requires in KNOWN_UPSTREAM:
            if pattern.search(line) and context.search(window) and \
                    all(r.search(text) for r in requires):
                if known is not None:
                    known.append(f"{line.strip()} [known upstream: {why}]")
                # The rest of that report is the same known issue.
                skip_until = i + 40
                break
        else:
            found.append(line.strip())
    return found


def shutdown_checks(expect, qemu_log):
    """Tests of the VMDs shutdown.sh left bound in bypass mode (lines
    "<vmd> <driver>" of `expect`): in the model's trace of VMCONFIG writes,
    remapping was turned off (the bind) and the last write turned it back
    on (the driver's shutdown, in the poweroff that ends the boot)."""
    writes = re.findall(r"intel_vmd_vmconfig (\S+): VMCONFIG 0x([0-9a-f]+) -> 0x([0-9a-f]+)",
                        qemu_log)
    tests = []
    for line in expect.splitlines():
        vmd, drv = line.split()
        mine = [(int(old, 16), int(new, 16)) for i, old, new in writes if i == vmd]
        ok = any(new & 2 for _, new in mine) and bool(mine) and not mine[-1][1] & 2
        tests.append((f"shutdown: {vmd}: remapping back on when the guest powered off ({drv})",
                      ok, [f"VMCONFIG writes of {vmd}: " +
                           (", ".join(f"{o:#06x}->{n:#06x}" for o, n in mine) or "none")]))
    return tests


class HostMonitor(threading.Thread):
    """Serves the guest's requests for QEMU monitor commands (hotplug):
    the guest writes req-<part>-<n> into the shared directory, the answer
    goes to done-<part>-<n>."""

    def __init__(self, outdir, sock):
        super().__init__(daemon=True)
        self.outdir = outdir
        self.sock = sock
        self.stop = threading.Event()

    def hmp(self, *cmds):
        """Runs monitor commands in one session; a command may be a
        (command, cpu index) pair.  Returns the answer, or all of them
        with their commands when there are several."""
        answers = []
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(30)
            s.connect(self.sock)
            f = s.makefile("rw")
            f.readline()  # greeting
            reqs = [{"execute": "qmp_capabilities"}]
            for c in cmds:
                c, cpu = c if isinstance(c, tuple) else (c, None)
                args = {"command-line": c}
                if cpu is not None:
                    args["cpu-index"] = cpu
                reqs.append({"execute": "human-monitor-command", "arguments": args})
            for req in reqs:
                f.write(json.dumps(req) + "\n")
                f.flush()
                while True:
                    reply = json.loads(f.readline())
                    if "return" in reply or "error" in reply:
                        break
                answers.append(str(reply.get("return", reply.get("error"))))
        if len(cmds) == 1:
            return answers[-1]
        return "\n".join(f"(qemu) {c}\n{a}" for c, a in zip(cmds, answers[1:]))

    def post_mortem(self, cpus):
        """What the vCPUs were doing: registers, local APIC state and the
        top of each stack, for a guest that stopped making progress."""
        cmds = ["info status"]
        for i in range(cpus):
            cmds += [("info registers", i), ("info lapic", i), ("x/32gx $esp", i)]
        try:
            return self.hmp(*cmds)
        except (OSError, ValueError) as e:
            return f"post mortem failed: {e}"

    def run(self):
        # Requests are named req-<part>-<n> (vmd_lib.sh's host_monitor),
        # answered in that order.
        done = set()
        while not self.stop.wait(0.5):
            reqs = sorted(
                (tuple(int(x) for x in f.split("-")[1:]), f)
                for f in os.listdir(self.outdir)
                if re.fullmatch(r"req-\d+-\d+", f) and f not in done)
            for key, req in reqs:
                with open(os.path.join(self.outdir, req)) as fh:
                    cmd = fh.read().strip()
                try:
                    answer = str(self.hmp(cmd))
                except (OSError, ValueError) as e:
                    answer = f"error: {e}"
                # Whole or not at all: the guest polls for the file.
                tag = req[len("req-"):]
                tmp = os.path.join(self.outdir, f".done-{tag}")
                with open(tmp, "w") as fh:
                    fh.write(answer + "\n")
                os.rename(tmp, os.path.join(self.outdir, f"done-{tag}"))
                done.add(req)


def run(script, args=(), name=None, msi_remap="auto", **kw):
    """Boots the VM, runs `script` in it and returns a Result.

    With a `machine` (see machines.py), the VM gets its VMDs and NVMe
    drives, the guest script gets the machine's manifest as its first
    argument after `args`, and the guest may ask for monitor commands.
    Other keywords: see run_parts."""
    name = name or os.path.basename(script)
    res = run_parts([Part(None, script, list(args), msi_remap)], name=name, **kw)
    res.parts = False
    return res


def run_parts(parts, name, qemu=None, qemu_opts="", append="", timeout=600,
              memory="1G", cpus=2, flavour="debug", log=None, machine=None,
              keep=False, post_mortem=False, ko=None, tcg="single", sleep=False,
              lockdep_off_by_known=False, slub_debug=False, crash=None):
    """Boots the VM once and runs each Part's script in turn; returns a
    Result whose tests are named `label: <test>`.

    Between two parts the guest unloads the VMD drivers (a test of its own)
    and clears the kernel log, so each part starts as after a boot; the
    complaints of the whole boot are checked once.  With a `machine`, each
    part gets the machine's manifest (for its msi_remap) as its first
    argument after the part's first.  `ko` is the vmd_rs.ko the guest loads
    (the tree's by default); `tcg` picks the TCG threading (see TCG_ACCEL).
    With `sleep`, the guest's virtio devices (file systems, console) survive
    system sleep (see qemu/sleep_safe_virtio.py).  With `post_mortem`, QEMU
    logs CPU resets (a triple fault's registers) and a timed-out guest's
    registers and stacks go to the log.  `lockdep_off_by_known`: see
    lockdep_check.  With `slub_debug`, every slab object has red zones,
    poisoning, sanity checks and its owner's stack (slub_debug=FZPU), so
    that a write past an allocation or after a free shows; under TCG that
    more than doubles the time to the test script (81 s to 191 s, with
    another VM running), so make check boots without it and make soak and
    make kasan with it.  `crash` is (test name, regex) for a boot whose
    recorded outcome is a kernel crash (the C driver's, in a boot of its
    own): the test passes if the kernel log matches, the complaints before
    the crash still count, and the checks of a boot that ran to its end
    (plans, lockdep, kmemleak) do not apply."""
    res = Result(name=name, parts=True)
    outdir = tempfile.mkdtemp(prefix="vmd-rs-vm-", dir=os.environ.get("TMPDIR", "/tmp"))
    res.outdir = outdir
    qemu = qemu or default_qemu()
    # The guest loads this copy: the host may rebuild the module meanwhile.
    ko = ko or os.path.join(ROOT, "vmd_rs.ko")
    if os.path.exists(ko):
        shutil.copy(ko, os.path.join(outdir, "vmd_rs.ko"))
    # And these scripts: bash reads a script as it runs it, so an edit on
    # the host would change a running guest's script under its feet.
    guest = os.path.join(outdir, "guest")
    shutil.copytree(os.path.join(HERE, "guest"), guest)
    monitor = None
    imgdir = None
    plan = []
    for i, part in enumerate(parts):
        args = list(part.args)
        if machine is not None:
            manifest = os.path.join(outdir, f"manifest.{i}")
            with open(manifest, "w") as fh:
                fh.write(machine.manifest(part.msi_remap))
            args = args[:1] + [manifest] + args[1:]
        # A path, or the name of one of guest/'s scripts (run from the copy).
        script = os.path.abspath(part.script)
        if not os.path.exists(script) or os.path.dirname(script) == os.path.join(HERE, "guest"):
            script = os.path.join(guest, os.path.basename(part.script))
        plan.append(shlex.join([script, *args]))
    with open(os.path.join(outdir, "plan"), "w") as fh:
        fh.write("".join(line + "\n" for line in plan))
    if machine is not None:
        # NVMe backing files on tmpfs: host disk noise stays out.
        imgdir = tempfile.mkdtemp(prefix="vmd-rs-img-", dir="/dev/shm")
        sock = os.path.join(outdir, "qmp.sock")
        qemu_opts = " ".join(filter(None, [
            machine.qemu_opts(imgdir), f"-qmp unix:{sock},server=on,wait=off",
            qemu_opts]))
        if post_mortem:
            qemu_opts += f" -d cpu_reset,guest_errors -D {outdir}/qemu-debug.log"
        # The model's VMCONFIG writes (shutdown.sh), blocked child DMA
        # (bus_master.sh) and Slot Control writes (leds.sh) as it took them, to the -D file (qemu-debug.log with
        # post_mortem, else qemu.log).
        qemu_opts += " -trace intel_vmd_vmconfig -trace intel_vmd_dma_blocked"
        if getattr(machine, "hotplug_last", False):
            qemu_opts += " -trace pcie_cap_slot_write_config"
        if not post_mortem:
            qemu_opts += f" -D {outdir}/qemu.log"
        append = " ".join(filter(None, [machine.append, append]))
        monitor = HostMonitor(outdir, sock)
        monitor.start()
    guest_cmd = " ".join(
        shlex.quote(a)
        for a in ["bash", os.path.join(guest, "wrap.sh"), outdir,
                  os.path.join(outdir, "plan")]
    )
    cmd = [
        "vng", "--run", kdir(flavour), "--disable-kvm", "--disable-microvm",
        "--cpus", str(cpus), "--memory", memory, "--rwdir", outdir,
        # udev with only the rules the tests need (guest/udev): the host's
        # cost ~110 s of every boot under TCG.
        "--rodir", "/lib/udev/rules.d=" + os.path.join(HERE, "guest", "udev"),
        "--verbose", "--user", "root",
        "--append", " ".join(filter(None, [
            "modprobe.blacklist=vmd",
            "slub_debug=FZPU" if slub_debug else "", append])),
        "--exec", guest_cmd,
    ]
    env = dict(os.environ)
    if sleep:
        env["VMD_RS_QEMU"] = qemu
        cmd += ["--qemu", os.path.join(HERE, "qemu", "sleep_safe_virtio.py")]
    elif qemu:
        cmd += ["--qemu", qemu]
    opts = " ".join(shlex.quote(o) for o in qemu_firmware_opts(qemu))
    opts = (opts + " " + TCG_ACCEL[tcg]).strip()
    if qemu_opts:
        opts = (opts + " " + qemu_opts).strip()
    if opts:
        cmd += ["--qemu-opts", opts]
    env["PATH"] = os.path.join(CACHE, "venv", "bin") + os.pathsep + env["PATH"]
    start = time.monotonic()
    # A session of its own, so that a timeout kills QEMU too, not just vng.
    # The console goes to a file as it comes: `tail -f` it to watch a run.
    console = os.path.join(outdir, "console")
    with open(console, "w") as out:
        p = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                             stdout=out, stderr=subprocess.STDOUT,
                             start_new_session=True)
        try:
            res.rc = p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            res.timed_out = True
            if monitor and post_mortem:
                res.post_mortem = monitor.post_mortem(cpus)
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
    with open(console, errors="replace") as fh:
        res.output = fh.read()
    res.seconds = time.monotonic() - start
    if monitor:
        monitor.stop.set()
    if imgdir:
        shutil.rmtree(imgdir, ignore_errors=True)

    def read(f):
        try:
            with open(os.path.join(outdir, f), errors="replace") as fh:
                return fh.read()
        except OSError:
            return ""

    ktap = ""
    for i, part in enumerate(parts):
        text = read(f"ktap.{i}")
        ktap += text
        if len(parts) == 1:
            # A guest that died early may have printed results to the console only.
            tests = parse_ktap(text if text else res.output)
        else:
            tests = parse_ktap(text) or [("ran", False, ["no KTAP result from this part"])]
            tests += parse_ktap(read(f"ktap.{i}.after"))
        prefix = f"{part.label}: " if part.label else ""
        res.tests += [(prefix + t, ok, diag) for t, ok, diag in tests]
        # A part that printed nothing has failed above already.
        bad_plan = plan_check(text or res.output) if text or len(parts) == 1 else None
        if bad_plan:
            res.tests.append((f"{prefix}{os.path.basename(part.script)} ran its whole plan",
                              False, [bad_plan]))
    # The console (--verbose) has the whole kernel log even when the guest
    # died before saving dmesg; kmemleak's report is only in its file.  The
    # KTAP diagnostics on the console (lines "# ...") quote the log: the
    # kernel's own lines are the ones that count.
    console = "\n".join(line for line in res.output.splitlines()
                        if not re.match(r"\s*#", line))
    leaks, known_leaks = split_kmemleak(read("kmemleak"), console + "\n" + read("dmesg"))
    res.known += known_leaks
    kernel_log = console + "\n" + read("dmesg") + "\n" + "".join(leaks)
    m = crash[1].search(kernel_log) if crash else None
    if m:
        # The crash's own report, and what came after it, is the outcome.
        kernel_log = kernel_log[:kernel_log.rfind("\n", 0, m.start()) + 1]
        res.tests = [t for t in res.tests if not t[0].endswith("ran its whole plan")]
        res.rc = 0
        res.crashed_as_recorded = True
    if crash:
        res.tests.append((crash[0], bool(m), [f"recorded crash: {crash[1].pattern}"]
                          if not m else [m.group(0).splitlines()[0].strip()]))
    res.tests += shutdown_checks(read("shutdown.expect"),
                                 read("qemu.log") + read("qemu-debug.log"))
    # Before a later part, wrap.sh unloads the driver: its remove, not its
    # shutdown, would turn remapping back on.
    if any(os.path.basename(p.script) == "shutdown.sh" for p in parts[:-1]):
        res.tests.append(("shutdown: shutdown.sh is the boot's last part", False, []))
    res.complaints = sorted(set(find_complaints(
        kernel_log, res.known, nvme_errors=getattr(machine, "nvme_errors", False))))
    if flavour in DEBUG_FLAVOURS and not m:
        bad_lockdep = lockdep_check(read, len(parts), res.known,
                                    getattr(machine, "hotplug_last", False), lockdep_off_by_known)
        res.boot_checks.append(("lockdep live at the end of every part (debug_locks = 1)",
                                not bad_lockdep, [bad_lockdep] if bad_lockdep else []))
        state = read("kmemleak.state").strip() or "no record (the guest did not get there)"
        res.boot_checks.append(("kmemleak on for the final scan", state == "on",
                                [f"kmemleak: {state}"]))
    res.ktap = ktap
    if log:
        with open(log, "w") as fh:
            fh.write(f"$ {shlex.join(cmd)}\n{res.output}\n--- ktap ---\n{ktap}\n"
                     f"--- dmesg ---\n{read('dmesg')}\n"
                     f"--- kmemleak ---\n{read('kmemleak')}\n"
                     f"--- kmemleak at boot (cleared, not checked) ---\n{read('kmemleak.boot')}\n"
                     f"--- times (s since boot, part, result) ---\n{read('times')}\n")
            if post_mortem:
                fh.write(f"--- post mortem ---\n{res.post_mortem}\n"
                         f"--- qemu -d ---\n{read('qemu-debug.log')[-200000:]}\n")
    if not keep:
        shutil.rmtree(outdir, ignore_errors=True)
    return res


def report(res, stream=sys.stdout):
    """Prints a run's results as KTAP; returns (passed, failed)."""
    passed = failed = 0
    prefix = "" if res.parts else f"{res.name}: "
    named = [(prefix + t, ok, diag) for t, ok, diag in res.tests] + \
        [(f"{res.name}: {c}", ok, diag) for c, ok, diag in res.boot_checks]
    for tname, ok, diag in named:
        if not ok:
            for d in diag:
                print(f"    # {d}", file=stream)
        print(f"    {'ok' if ok else 'not ok'} - {tname}", file=stream)
        passed += ok
        failed += not ok
    clean = not res.complaints and not res.timed_out and res.rc == 0 and res.tests
    for c in res.complaints[:20]:
        print(f"    # kernel: {c}", file=stream)
    for k in sorted(set(res.known)):
        print(f"    # kernel: {k}", file=stream)
    if res.timed_out:
        print(f"    # timed out after {res.seconds:.0f} s", file=stream)
    elif res.rc != 0:
        print(f"    # guest exit status {res.rc}", file=stream)
    if not res.tests:
        print("    # no KTAP result came back", file=stream)
    what = ("no other kernel complaint before the recorded crash"
            if res.crashed_as_recorded else "no kernel complaint, exit 0")
    print(f"    {'ok' if clean else 'not ok'} - {res.name}: VM clean "
          f"({what}, {res.seconds:.0f} s)", file=stream)
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
    ap.add_argument("--memory", default="1G")
    ap.add_argument("--cpus", type=int, default=2)
    ap.add_argument("--flavour", default="debug")
    ap.add_argument("--log")
    ap.add_argument("--machine", choices=sorted(machines.MACHINES),
                    help="boot with this machine's VMDs (see machines.py)")
    ap.add_argument("--msi-remap", default="auto")
    ap.add_argument("--post-mortem", action="store_true",
                    help="log CPU resets; dump registers of a timed-out guest")
    ap.add_argument("--ko", help="the vmd_rs.ko the guest loads (default: the tree's)")
    ap.add_argument("--tcg", choices=sorted(TCG_ACCEL), default="single",
                    help="TCG threading (default: single, see TCG_ACCEL)")
    ap.add_argument("--sleep", action="store_true",
                    help="keep the guest's virtio devices (9p, serial) across system sleep")
    ap.add_argument("script")
    ap.add_argument("args", nargs="*")
    a = ap.parse_args()
    res = run(a.script, a.args, qemu=a.qemu, qemu_opts=a.qemu_opts, append=a.append,
              timeout=a.timeout, memory=a.memory, cpus=a.cpus, flavour=a.flavour,
              log=a.log, machine=machines.MACHINES.get(a.machine),
              msi_remap=a.msi_remap, post_mortem=a.post_mortem, ko=a.ko,
              tcg=a.tcg, sleep=a.sleep)
    passed, failed = report(res)
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
