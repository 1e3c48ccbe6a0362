#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""QEMU, with virtme-ng's virtio devices made to survive guest sleep.

Linux freezes a virtio device for system sleep and resets it: virtio-9p
has no freeze/restore, so the root file system is gone on resume, and the
virtio-serial ports that carry the guest command's output and exit code
stop passing data.  Behind a PCIe root port, with No_Soft_Reset in its PM
capability (x-pcie-pm-no-soft-reset), a virtio device is left alone by
virtio_pci_suspend and kept as it is by QEMU through D3hot.  This moves
each such `-device` onto a root port of its own with that bit set, then
runs the real QEMU ($VMD_RS_QEMU) with the other arguments unchanged.

Usage (what vmtest.py does): vng --qemu sleep_safe_virtio.py, VMD_RS_QEMU=<qemu>
"""

import os
import sys

# Root port chassis numbers the test machines do not use.
CHASSIS = 200
DEVICES = ("virtio-9p-pci", "virtio-serial-pci")


def rewrite(args):
    out = []
    n = 0
    i = 0
    while i < len(args):
        a = args[i]
        if a == "-device" and i + 1 < len(args) and args[i + 1].split(",")[0] in DEVICES:
            port = f"vmdrsport{n}"
            out += ["-device", f"pcie-root-port,id={port},bus=pcie.0,chassis={CHASSIS + n}",
                    "-device", f"{args[i + 1]},bus={port},x-pcie-pm-no-soft-reset=on"]
            n += 1
            i += 2
            continue
        out.append(a)
        i += 1
    return out


def main():
    qemu = os.environ["VMD_RS_QEMU"]
    os.execv(qemu, [qemu] + rewrite(sys.argv[1:]))


if __name__ == "__main__":
    main()
