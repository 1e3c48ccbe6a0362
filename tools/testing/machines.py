# SPDX-License-Identifier: GPL-2.0
"""The emulated machines the VMD tests run on: which intel-vmd devices,
with what behind them, and what a driver is expected to make of each.

A machine turns into QEMU options (for vmtest.py) and a manifest, one line
per VMD, that the guest-side tests read."""

import os

# What vmd.c in Linux 7.3 makes of each device ID.
BYPASS_CAPABLE = {0x28C0, 0x28C1}
CLIENT = {0x467F, 0x4C3D, 0xA77F, 0x7D0B, 0xAD0B, 0x9A0B, 0xB60B, 0xB06F,
          0xB07F, 0xD70B, 0xD73B}


class Vmd:
    """One intel-vmd device and its children."""

    def __init__(self, name, slot, device_id, nvme=1, bus_start=0, shadow=False,
                 hotplug_port=False, props="", null=False):
        self.name = name
        self.slot = slot
        self.device_id = device_id
        self.nvme = nvme
        self.bus_start = bus_start
        self.shadow = shadow
        self.hotplug_port = hotplug_port
        self.props = props
        # NVMe on QEMU's null-co block driver (reads return zeroes, writes
        # vanish): no host disk in the measurements.
        self.null = null

    @property
    def bdf(self):
        return f"0000:00:{self.slot:02x}.0"

    def expected_mode(self, msi_remap="auto"):
        """remap, bypass, or refused (vmd_rs's msi_remap=off where the
        VMD cannot bypass, or =on on a 28C1 whose firmware, the model's
        default, set bypass: Linux does not change a 28C1's mode)."""
        if self.device_id not in BYPASS_CAPABLE or self.shadow:
            return "refused" if msi_remap == "off" else "remap"
        if msi_remap == "on":
            return "refused" if self.device_id == 0x28C1 else "remap"
        return "bypass"

    def _port(self, imgdir, port, drive, chassis, slot, size, extra=""):
        """A root port on the VMD's bus and a drive (sparse file) for an NVMe."""
        return [f"-device pcie-root-port,id={port},bus={self.name},"
                f"chassis={chassis},slot={slot},addr=0x{slot:x}{extra}",
                drive_opt(imgdir, drive, size, self.null)]

    def qemu_opts(self, imgdir, chassis):
        o = [f"-device intel-vmd,id={self.name},bus=pcie.0,addr=0x{self.slot:x},"
             f"device-id=0x{self.device_id:x},bus-start={self.bus_start},"
             f"shadow={'on' if self.shadow else 'off'}{self.props}"]
        for i in range(self.nvme):
            o += self._port(imgdir, f"{self.name}rp{i}", f"{self.name}d{i}", chassis, i,
                            512 << 20)
            o.append(f"-device nvme,bus={self.name}rp{i},serial={self.name}n{i},"
                     f"drive={self.name}d{i}")
            chassis += 1
        if self.hotplug_port:
            # Empty: the NVMe for its drive is hot-added by the test.
            o += self._port(imgdir, f"{self.name}hp", f"{self.name}hpd", chassis, 31,
                            256 << 20, ",hotplug=on")
            chassis += 1
        return o, chassis

    def manifest(self, msi_remap="auto"):
        return (f"{self.name} {self.bdf} {self.device_id:04x} {self.nvme} "
                f"{self.bus_start} {int(self.shadow)} "
                f"{self.expected_mode(msi_remap)} "
                f"{1 if self.device_id in CLIENT else 0} "
                f"{int(self.hotplug_port)}")


def drive_opt(imgdir, drive, size, null=False):
    """A drive for an NVMe: a sparse file, or QEMU's null-co."""
    if null:
        return f"-blockdev driver=null-co,node-name={drive},size={size},read-zeroes=on"
    img = os.path.join(imgdir, f"{drive}.img")
    with open(img, "wb") as fh:
        fh.truncate(size)
    return f"-drive if=none,id={drive},file={img},format=raw"


class Direct:
    """NVMe drives on root ports of the q35 root complex: no VMD."""

    def __init__(self, nvme):
        self.name = "direct"
        self.nvme = nvme
        self.append = ""

    def qemu_opts(self, imgdir):
        o = []
        for i in range(self.nvme):
            o += [f"-device pcie-root-port,id=drp{i},bus=pcie.0,chassis={40 + i},"
                  f"slot={i},addr=0x{0x18 + i:x}",
                  drive_opt(imgdir, f"dd{i}", 1 << 30, null=True),
                  f"-device nvme,bus=drp{i},serial=direct{i},drive=dd{i}"]
        return " ".join(o)

    def manifest(self, msi_remap="auto"):
        return f"direct - - {self.nvme} 0 0 direct 0 0\n"


class Machine:
    def __init__(self, name, vmds, extra="", append=""):
        self.name = name
        self.vmds = vmds
        self.extra = extra
        self.append = append

    def qemu_opts(self, imgdir):
        # An IOMMU must exist before the devices whose DMA it translates.
        opts = [self.extra] if self.extra else []
        chassis = 1
        for v in self.vmds:
            o, chassis = v.qemu_opts(imgdir, chassis)
            opts += o
        if any(v.hotplug_port for v in self.vmds):
            # q35's ACPI hotplug would keep native PCIe hotplug from the OS
            # (_OSC), and VMD domains copy the host bridge's grant.
            opts.append("-global ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off")
        return " ".join(opts)

    def manifest(self, msi_remap="auto"):
        return "".join(v.manifest(msi_remap) + "\n" for v in self.vmds)


# The default machine of `make run`: one 28C0 with two root ports and an
# NVMe behind each.
DEFAULT = Machine("default", [Vmd("vmd0", 0x10, 0x28C0, nvme=2)])

# Most cases in one boot: every mode and layout the C driver distinguishes.
MIXED = Machine("mixed", [
    Vmd("vmd0", 0x10, 0x28C0, nvme=2, hotplug_port=True),  # bare metal bypass
    Vmd("vmd1", 0x11, 0x201D),                              # remapped
    Vmd("vmd2", 0x12, 0x9A0B),                              # client
    Vmd("vmd3", 0x13, 0x28C0, bus_start=128),
    Vmd("vmd4", 0x14, 0x467F, bus_start=224),
    Vmd("vmd5", 0x15, 0x28C0, shadow=True),                 # passthrough guest
    Vmd("vmd6", 0x16, 0x201D, shadow=True),
    Vmd("vmd7", 0x17, 0x28C1),                              # BIOS info in BAR4
])

# Child DMA and MSIs through a vIOMMU with interrupt remapping.
IOMMU = Machine("iommu", [
    Vmd("vmd0", 0x10, 0x28C0),
    Vmd("vmd1", 0x11, 0x201D),
    Vmd("vmd2", 0x12, 0x7D0B),                              # MTL016 flush
], extra="-device intel-iommu,intremap=on,device-iotlb=off",
    append="intel_iommu=on")

# The parts and layouts whose children's MSIs may bypass the VMD.
BYPASS = Machine("bypass", [
    Vmd("vmd0", 0x10, 0x28C0, nvme=2, hotplug_port=True),
    Vmd("vmd3", 0x13, 0x28C0, bus_start=128),
    Vmd("vmd7", 0x17, 0x28C1),
])

# One VMD per MSI mode, for cycles and sleep.
PAIR = Machine("pair", [
    Vmd("vmd0", 0x10, 0x28C0, nvme=2),
    Vmd("vmd1", 0x11, 0x201D),
])

# Fewer VMD vectors than the children want: ports and NVMe queues share
# them, and which child lands on which vector is the vector policy's doing.
# One NVMe per VMD, so the outcome does not depend on probe order.
SCARCE = Machine("scarce", [
    Vmd("vmd1", 0x11, 0x201D, props=",vectors=1"),  # everything on vector 0
    Vmd("vmd2", 0x12, 0x201D, props=",vectors=3"),  # 3 NVMe queues on 1 and 2
    Vmd("vmd4", 0x14, 0x467F, props=",vectors=2"),  # client: everything on 1
    Vmd("vmd5", 0x15, 0x9A0B, props=",vectors=4"),  # client: NVMe on 2 and 3
])

# make bench: the same NVMe count and backing with and without VMDs.
BENCH_VMD = Machine("bench-vmd", [
    Vmd("vmd0", 0x10, 0x28C0, nvme=4, null=True),
    Vmd("vmd1", 0x11, 0x201D, nvme=4, null=True),
])
BENCH_DIRECT = Direct(4)

MACHINES = {m.name: m for m in (DEFAULT, MIXED, IOMMU, BYPASS, PAIR, SCARCE, BENCH_VMD, BENCH_DIRECT)}
