#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""`make shell`: a machine of machines.py booted with a VMD driver loaded and
an interactive shell in the guest (virtme-ng's console), the QEMU monitor
on a unix socket of the host.

    make shell                          # machine "default", vmd_rs
    make shell MACHINE=mixed DRIVER=vmd # any machine, the C driver

The guest's /proc, /sys and the host's file system (read-only; the run
directory printed at start is writable) are there as in the tests; `exit`
or Ctrl-D powers it off."""

import os
import shlex
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import machines  # noqa: E402
import vmtest  # noqa: E402


def main():
    name = os.environ.get("MACHINE") or "default"
    driver = os.environ.get("DRIVER") or "vmd_rs"
    machine = machines.MACHINES.get(name)
    if machine is None or not hasattr(machine, "vmds"):
        names = " ".join(n for n, m in machines.MACHINES.items() if hasattr(m, "vmds"))
        sys.exit(f"make shell: no machine {name!r} with VMDs; one of: {names}")
    if driver not in ("vmd_rs", "vmd"):
        sys.exit(f"make shell: DRIVER={driver!r}: vmd_rs or vmd")
    if not sys.stdin.isatty():
        sys.exit("make shell: needs a terminal")

    rundir = tempfile.mkdtemp(prefix="vmd-rs-shell-", dir=os.environ.get("TMPDIR", "/tmp"))
    imgdir = tempfile.mkdtemp(prefix="vmd-rs-img-", dir="/dev/shm")
    monitor = os.path.join(rundir, "monitor.sock")
    qmp = os.path.join(rundir, "qmp.sock")
    ko = os.path.join(rundir, "vmd_rs.ko")
    shutil.copy(os.path.join(vmtest.ROOT, "vmd_rs.ko"), ko)
    load = f"insmod {shlex.quote(ko)}" if driver == "vmd_rs" else "modprobe vmd"
    # Loaded first, then the shell: its prompt comes once the VMDs are bound.
    # virtme-ng's --exec console is no terminal of the guest's: a shell
    # without job control (no Ctrl-Z; Ctrl-C ends the VM).
    guest = (f"{load}; echo; echo '{driver} bound to:';"
             f" ls /sys/bus/pci/drivers/{driver} | grep '^0000:'; echo;"
             " exec bash --norc -i")
    qemu = vmtest.default_qemu()
    opts = vmtest.qemu_firmware_opts(qemu) + [
        vmtest.TCG_ACCEL["single"], machine.qemu_opts(imgdir),
        f"-monitor unix:{monitor},server=on,wait=off",
        f"-qmp unix:{qmp},server=on,wait=off"]
    cmd = [
        "vng", "--run", vmtest.kdir(), "--disable-kvm", "--disable-microvm",
        "--cpus", "2", "--memory", "2G", "--rwdir", rundir,
        "--rodir", "/lib/udev/rules.d=" + os.path.join(HERE, "guest", "udev"),
        "--user", "root",
        "--append", " ".join(filter(None, ["modprobe.blacklist=vmd", machine.append])),
        "--qemu", qemu, "--qemu-opts", " ".join(opts),
        "--exec", guest,
    ]
    print(f"machine {name} ({', '.join(f'{v.name} {v.device_id:04X}' for v in machine.vmds)}),"
          f" driver {driver}; run directory {rundir}")
    print(f"QEMU monitor (HMP), from another terminal of the host:\n"
          f"    python3 {os.path.join(HERE, 'monitor.py')} {monitor}\n"
          f"  e.g. 'info pci', 'qom-set vmd0 flood-count 1000', 'device_del vmd0d0';"
          f" QMP at {qmp}.\nBooting (TCG: about half a minute)...", flush=True)
    env = dict(os.environ)
    env["PATH"] = os.path.join(vmtest.CACHE, "venv", "bin") + os.pathsep + env["PATH"]
    try:
        return subprocess.call(cmd, cwd=vmtest.ROOT, env=env)
    finally:
        shutil.rmtree(imgdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
