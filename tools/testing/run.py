#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""`make run`: boots the test VM (a 28C0 whose children's MSIs bypass it,
with two NVMe, and a 201D that remaps them, with one), loads vmd_rs, shows
what it bound to, and powers off."""

import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import machines  # noqa: E402
import vmtest  # noqa: E402


def main():
    res = vmtest.run(os.path.join(HERE, "guest", "show.sh"), name="make run", timeout=300,
                     machine=machines.PAIR)
    # Show what the guest printed, without the kernel console noise.
    sys.stdout.write(res.ktap or res.output)
    passed, failed = vmtest.report(res)
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
