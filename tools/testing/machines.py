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
                 hotplug_port=False, props="", null=False, case=None, bus1_nvme=None):
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
        # A hostile-hardware case (Case) this VMD is, if any.
        self.case = case
        # A second root bus (intel-vmd's bus1, <name>.1) with this many NVMe
        # on ports of their own, and the hotplug port, if any, there too.
        self.bus1_nvme = bus1_nvme

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

    def _port(self, imgdir, port, drive, chassis, slot, size, extra="", bus=None):
        """A root port on the VMD's bus and a drive (sparse file) for an NVMe."""
        return [f"-device pcie-root-port,id={port},bus={bus or self.name},"
                f"chassis={chassis},slot={slot},addr=0x{slot:x}{extra}",
                drive_opt(imgdir, drive, size, self.null)]

    def qemu_opts(self, imgdir, chassis):
        bus1 = ",bus1=on" if self.bus1_nvme is not None else ""
        o = [f"-device intel-vmd,id={self.name},bus=pcie.0,addr=0x{self.slot:x},"
             f"device-id=0x{self.device_id:x},bus-start={self.bus_start},"
             f"shadow={'on' if self.shadow else 'off'}{bus1}{self.props}"]
        # Ports, drives and serials: <name>rp0, <name>d0, <name>n0; on bus 1
        # <name>b1rp0, ...
        ports = [(self.name, "", i, i) for i in range(self.nvme)]
        ports += [(f"{self.name}.1", "b1", i, 8 + i) for i in range(self.bus1_nvme or 0)]
        for bus, b, i, slot in ports:
            port, drive = f"{self.name}{b}rp{i}", f"{self.name}{b}d{i}"
            o += self._port(imgdir, port, drive, chassis, slot, 512 << 20, bus=bus)
            o.append(f"-device nvme,bus={port},serial={self.name}{b}n{i},drive={drive}")
            chassis += 1
        if self.hotplug_port:
            # Empty: the NVMe for its drive is hot-added by the test.
            bus = self.name if self.bus1_nvme is None else f"{self.name}.1"
            o += self._port(imgdir, f"{self.name}hp", f"{self.name}hpd", chassis, 31,
                            256 << 20, ",hotplug=on", bus=bus)
            chassis += 1
        return o, chassis

    def manifest(self, msi_remap="auto"):
        return (f"{self.name} {self.bdf} {self.device_id:04x} {self.nvme} "
                f"{self.bus_start} {int(self.shadow)} "
                f"{self.expected_mode(msi_remap)} "
                f"{1 if self.device_id in CLIENT else 0} "
                f"{int(self.hotplug_port)}"
                + (f" {self.case.manifest()}" if self.case else ""))


def drive_opt(imgdir, drive, size, null=False):
    """A drive for an NVMe: a sparse file, or QEMU's null-co."""
    if null:
        return f"-blockdev driver=null-co,node-name={drive},size={size},read-zeroes=on"
    img = os.path.join(imgdir, f"{drive}.img")
    with open(img, "wb") as fh:
        fh.truncate(size)
    return f"-drive if=none,id={drive},file={img},format=raw"


class Direct:
    """NVMe drives on root ports of the q35 root complex: no VMD.  On
    QEMU's null-co (make bench) or, with `null=False`, on files that keep
    what is written (nvme_cycles.sh verifies it)."""

    def __init__(self, nvme, null=True, name="direct"):
        self.name = name
        self.nvme = nvme
        self.null = null
        self.append = ""

    def qemu_opts(self, imgdir):
        o = []
        for i in range(self.nvme):
            o += [f"-device pcie-root-port,id=drp{i},bus=pcie.0,chassis={40 + i},"
                  f"slot={i},addr=0x{0x18 + i:x}",
                  drive_opt(imgdir, f"dd{i}", 1 << 30, null=self.null),
                  f"-device nvme,bus=drp{i},serial=direct{i},drive=dd{i}"]
        return " ".join(o)

    def manifest(self, msi_remap="auto"):
        return f"direct - - {self.nvme} 0 0 direct 0 0\n"


class PlainHotplug:
    """An empty hotplug-capable root port of q35's own root complex and no
    VMD (upstream_pciehp.sh hot-adds an NVMe there): what pciehp does
    without any VMD driver."""

    name = "plain-hotplug"
    # failslab's cache filter refuses a merged cache (upstream_irq_proc.sh).
    append = "slab_nomerge"
    nvme_errors = False
    hotplug_last = True

    def qemu_opts(self, imgdir):
        return " ".join([
            "-device pcie-root-port,id=qhp,bus=pcie.0,chassis=60,slot=0,addr=0x1c,hotplug=on",
            drive_opt(imgdir, "qhpd", 256 << 20),
            # Native hotplug, as for the VMDs' ports (Machine.qemu_opts).
            "-global ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off"])

    def manifest(self, msi_remap="auto"):
        return ""


class Machine:
    def __init__(self, name, vmds, extra="", append="", nvme_errors=False):
        self.name = name
        self.vmds = vmds
        self.extra = extra
        self.append = append
        # NVMe timeouts and resets are a possible outcome, not a complaint.
        self.nvme_errors = nvme_errors

    @property
    def hotplug_last(self):
        """vmd_cases.sh ends with a hot-add here, and 7.3's pciehp trips
        lockdep on it (vmtest.KNOWN_UPSTREAM): lockdep may end the boot off."""
        return any(v.hotplug_port for v in self.vmds)

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
    Vmd("vmd1", 0x11, 0x201D, hotplug_port=True),           # remapped
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

# Child DMA with the VMD's Bus Master Enable clear, under the vIOMMU
# (bus_master.sh): the NVMe's timeout and recovery are the outcome.
BUS_MASTER = Machine("bus-master", [Vmd("vmd0", 0x10, 0x28C0)],
                     extra="-device intel-iommu,intremap=on,device-iotlb=off",
                     append="intel_iommu=on", nvme_errors=True)

# The parts and layouts whose children's MSIs may bypass the VMD.
BYPASS = Machine("bypass", [
    Vmd("vmd0", 0x10, 0x28C0, nvme=2, hotplug_port=True),
    Vmd("vmd3", 0x13, 0x28C0, bus_start=128),
    Vmd("vmd7", 0x17, 0x28C1),
])

# A hotplug port on a VMD per MSI mode: hot-removals under IO (make soak).
HOTPLUG = Machine("hotplug", [
    Vmd("vmd0", 0x10, 0x28C0, nvme=1, hotplug_port=True),
    Vmd("vmd1", 0x11, 0x201D, hotplug_port=True),
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

class Case:
    """A hostile-hardware case: what a VMD does wrong, what vmd_rs must make
    of it and what the C driver was seen to make of it.

    `rs` is "refused:<ERE>" (not bound, exactly one error line from vmd_rs
    for the VMD, matching the ERE) or "bound:<N>" (bound, with a domain in
    which N NVMe namespaces appear).  `c` is the C driver's outcome as
    matrix.sh words it ("refused -19 without a message", "bound, 1 disk",
    ...): a change in either driver shows as a failure."""

    def __init__(self, name, rs, c, why):
        self.name = name
        self.rs = rs
        self.c = c
        self.why = why

    def manifest(self):
        # After the nine fields every manifest line has: "|"-separated.
        return "|".join((self.name, self.rs, self.c))


def _hostile(slot, name, device_id, props, rs, c, why, nvme=1, **kw):
    return Vmd(f"vmd{slot:x}", slot, device_id, nvme=nvme,
               props=",cfgbar-size=4M,membar1-size=8M,membar2-size=1M" + props,
               case=Case(name, rs, c, why), **kw)


# The hostile-hardware matrix (matrix.sh): a VMD a case, both drivers in
# turn.  Small BARs, so that eighteen VMDs fit the 32-bit MMIO hole.
HOSTILE = Machine("hostile", [
    _hostile(0x10, "healthy 201D", 0x201D, "", "bound:1", "bound, 1 disk",
             "the control case: nothing wrong"),
    _hostile(0x11, "MEMBAR1 not implemented", 0x201D, ",membar1-size=0",
             "refused:MEMBAR1 .*not implemented", "bound, 0 disks",
             "BAR2 reads 0: no flags, length 0"),
    _hostile(0x12, "MEMBAR2 not implemented", 0x201D, ",membar2-size=0",
             "refused:MEMBAR2 .*not implemented", "refused without a message",
             "BAR4 reads 0, so there is no MSI-X table either"),
    _hostile(0x13, "MEMBAR1 too small for the children", 0x201D, ",membar1-size=4K",
             "bound:0", "bound, 0 disks", "the NVMe's 16 KiB BAR cannot be placed"),
    _hostile(0x14, "VMCAP all-ones", 0x28C0, ",vmcap-ones=on",
             "refused:VMCAP .*all-ones", "bound, 1 disk", "a VMD that is gone, or a dead link"),
    _hostile(0x15, "VMCONFIG all-ones", 0x28C0, ",vmconfig-ones=on",
             "refused:VMCONFIG .*all-ones", "refused without a message", "as above"),
    _hostile(0x16, "VMLOCK all-ones", 0x28C0, ",vmlock-ones=on",
             "refused:VMLOCK .*all-ones", "refused without a message", "as above"),
    _hostile(0x17, "reserved bus restriction 3", 0x28C0, ",vmconfig-bus=3",
             "bound:1", "bound, 1 disk", "VMCONFIG bits 9:8 = 3, which Linux 7.3 reads as 224",
             bus_start=224),
    _hostile(0x18, "CFGBAR below 1 MiB", 0x201D, ",cfgbar-size=64K",
             "refused:CFGBAR of 65536 bytes", "refused -12 without a message", "no whole bus of ECAM"),
    _hostile(0x19, "config reads all-ones on the children's bus", 0x201D,
             ",cfg-ones-bus=1", "bound:0", "bound, 0 disks", "the NVMe cannot be enumerated"),
    _hostile(0x1a, "config reads all-ones on the root bus", 0x201D,
             ",cfg-ones-bus=0", "bound:0", "bound, 0 disks", "no root port can be enumerated"),
    _hostile(0x1b, "capability list loops", 0x201D, ",cap-loop=on",
             "bound:1", "bound, 1 disk", "the search for the SHDW capability must end"),
    _hostile(0x1c, "SHDW capability with garbage addresses", 0x201D,
             ",shadow-raw1=0xffffffffffffffff,shadow-raw2=0xfff",
             "refused:shadow .*MEMBAR1", "bound, 0 disks", "offsets that wrap", shadow=True),
    _hostile(0x1d, "no MSI-X, remapping part", 0x201D, ",msix=off",
             "refused:no MSI-X capability", "refused without a message",
             "a 201D cannot bypass: no vector, no child MSI"),
    _hostile(0x1e, "no MSI-X, bypass", 0x28C0, ",msix=off",
             "bound:1", "bound, 1 disk", "bypass needs no VMD vector"),
    _hostile(0x0e, "MEMBAR1 the platform cannot place", 0x201D,
             ",membar1-size=2G,membar1-unplaced=on", "refused:MEMBAR1 .*could not be assigned", "bound, 0 disks",
             "a 2 GiB BAR2 that firmware left alone and the 32-bit hole cannot hold"),
    _hostile(0x0f, "one MSI-X vector, client part", 0x9A0B, ",vectors=1",
             "refused:MSI-X vectors: none left", "refused -34 without a message",
             "vector 0 is the VMD's own: none left for children"),
    _hostile(0x0d, "a child with an undefined header type", 0x201D, ",bad-header-bus=1",
             "bound:0", "bound, 0 disks",
             "the PCI core ignores the NVMe (and leaks its name: vmtest.KNOWN_LEAKS)"),
])

# Arrow Lake's second root bus (bus range 3, bus1.sh): an NVMe behind each
# root bus and a hotplug port on the second; then the registers that
# describe it wrong, where vmd_rs keeps the first root bus and says why.
BUS1 = Machine("bus1", [
    Vmd("vmd0", 0x10, 0xAD0B, bus_start=224, bus1_nvme=1, hotplug_port=True),
    Vmd("vmd1", 0x11, 0xAD0B, bus_start=224, bus1_nvme=1,
        props=",busrange0=0xf0e2,busrange1=0xffe8",
        case=Case("overlapping bus ranges", "bound:1", "bound, 1 disk",
                  "BUSRANGE0 e2-f0 and BUSRANGE1 e8-ff share buses")),
    Vmd("vmd2", 0x12, 0xAD0B, bus_start=224, bus1_nvme=1,
        props=",bus1-membar1-offset=0x4000000",
        case=Case("MEMBAR1 offset past the BAR", "bound:1", "bound, 1 disk",
                  "bus 1's MEMBAR1 window would start 64 MiB into a 32 MiB BAR")),
])

# What goes wrong while a driver is bound (matrix_runtime.sh): one healthy
# 201D, which the test floods, feeds a bad vector and surprise-removes.
RUNTIME = Machine("runtime", [Vmd("vmd10", 0x10, 0x201D)])


def fuzz(*seeds, rate=5000):
    """Seeded hostile hardware (fuzz.sh): for each seed, a remapping 201D
    and a bypassing 28C0 that corrupt `rate` parts per million of the
    config and MMIO reads through their BARs, reproducibly from it.  NVMe
    gives up on a controller in seconds, not a minute."""
    vmds = []
    for i, seed in enumerate(seeds):
        props = f",fuzz-seed={seed},fuzz-rate={rate}"
        vmds += [Vmd(f"seed{seed}r", 0x10 + 2 * i, 0x201D, props=props),
                 Vmd(f"seed{seed}b", 0x11 + 2 * i, 0x28C0, props=props)]
    return Machine("fuzz-" + "-".join(map(str, seeds)), vmds,
                   append="nvme_core.io_timeout=5 nvme_core.admin_timeout=5", nvme_errors=True)


# Failed allocations in bind (faults.sh): one VMD per MSI mode, one NVMe
# each, and 4 vectors on the remapping one: each vector costs ~28
# allocations (its irq descriptor, sysfs and debugfs files, the handler).
FAULTS = Machine("faults", [
    Vmd("vmd0", 0x10, 0x28C0),                              # bypass
    Vmd("vmd1", 0x11, 0x201D, props=",vectors=4"),          # remapped
])

# The seeds make check runs, in one boot (make soak runs many more, a boot
# each).
FUZZ_SEEDS = (1, 2, 3)

PLAIN_HOTPLUG = PlainHotplug()

# make bench: the same NVMe count and backing with and without VMDs.
BENCH_VMD = Machine("bench-vmd", [
    Vmd("vmd0", 0x10, 0x28C0, nvme=4, null=True),
    Vmd("vmd1", 0x11, 0x201D, nvme=4, null=True),
])
BENCH_DIRECT = Direct(4)
# The PAIR machine's three NVMe, without its VMDs (nvme_cycles.sh).
NO_VMD = Direct(3, null=False, name="no-vmd")

MACHINES = {m.name: m for m in (DEFAULT, MIXED, IOMMU, BUS_MASTER, BYPASS, HOTPLUG, PAIR, BUS1,
                                SCARCE, HOSTILE,
                                RUNTIME, FAULTS, BENCH_VMD, BENCH_DIRECT, PLAIN_HOTPLUG,
                                NO_VMD)}
