/*
 * Intel Volume Management Device (VMD) emulation
 *
 * Copyright (c) 2026 The vmd_rs developers
 *
 * This work is licensed under the terms of the GNU GPL, version 2 or later.
 * See the COPYING file in the top-level directory.
 *
 * A VMD is a PCIe root complex integrated endpoint that hides a whole PCIe
 * hierarchy from firmware and the OS's ordinary enumeration:
 *
 *  - BAR0 (CFGBAR) is an ECAM window onto a private PCIe root bus,
 *  - BAR2 (MEMBAR1) and BAR4 (MEMBAR2) are windows onto that bus's memory
 *    space; BAR4 also holds the VMD's own MSI-X table, PBA and, on some
 *    parts, shadow registers,
 *  - MSI writes from the private bus are remapped onto the VMD's own MSI-X
 *    vectors (or, on parts that can bypass remapping, forwarded unchanged),
 *  - child DMA leaves through the VMD's own bus-master address space, under
 *    the VMD's requester ID.
 *
 * Devices plug into the private bus with bus=<id of the intel-vmd device>:
 *
 *   -device intel-vmd,id=vmd0,device-id=0x28c0
 *   -device pcie-root-port,id=rp0,bus=vmd0,chassis=1,slot=1
 *   -device nvme,bus=rp0,serial=vmd0n0,drive=d0
 *
 * A client part with bus1=on has a second private root bus, <id>.1, as
 * Arrow Lake's VMD does for the PCH's ports (bus restriction value 3).
 *
 * The behaviour each device ID selects follows drivers/pci/controller/vmd.c
 * of Linux 7.3; see docs in the vmd_rs tree for the properties.
 *
 * For testing drivers against broken hardware the model can also misbehave
 * ("hostile" properties: all-ones registers, a surprise removal, a looping
 * capability list, garbage shadow registers, injected and flooded MSIs,
 * seeded corruption of reads).  None of it changes anything unless set.
 */

#include "qemu/osdep.h"
#include "qapi/error.h"
#include "qapi/visitor.h"
#include "qemu/bswap.h"
#include "qemu/log.h"
#include "qemu/module.h"
#include "qemu/timer.h"
#include "qemu/units.h"
#include "exec/address-spaces.h"
#include "hw/pci/msix.h"
#include "hw/pci/pci.h"
#include "hw/pci/pci_bridge.h"
#include "hw/pci/pci_bus.h"
#include "hw/pci/pci_device.h"
#include "hw/pci/pci_host.h"
#include "hw/pci/pcie.h"
#include "hw/qdev-properties.h"
#include "hw/sysbus.h"
#include "migration/vmstate.h"
#include "qom/object.h"
#include "system/cpus.h"
#include "system/runstate.h"
#include "trace.h"

#define TYPE_INTEL_VMD          "intel-vmd"
#define TYPE_INTEL_VMD_HOST     "intel-vmd-host"
#define TYPE_INTEL_VMD_BUS      "intel-vmd-bus"

OBJECT_DECLARE_SIMPLE_TYPE(IntelVMDState, INTEL_VMD)
OBJECT_DECLARE_SIMPLE_TYPE(IntelVMDHost, INTEL_VMD_HOST)

#define VMD_CFGBAR              0
#define VMD_MEMBAR1             2
#define VMD_MEMBAR2             4

/* Config space registers */
#define VMD_REG_VMCAP           0x40
#define VMD_REG_VMCAP_LEN       2
#define VMD_VMCAP_BUS_RESTRICT  0x1
#define VMD_REG_VMCONFIG        0x44
#define VMD_REG_VMCONFIG_LEN    2
#define VMD_VMCONFIG_REMAP_DIS  0x2     /* MSI remapping disabled (bypass) */
#define VMD_VMCONFIG_BUS_SHIFT  8       /* bits 9:8: bus start 0/128/224 */
#define VMD_VMCONFIG_BUS_MAX    3       /* 3: 224, and bus 1 at 225 */
#define VMD_VMCONFIG_BUS_TWO    3
#define VMD_REG_VMLOCK          0x70
#define VMD_REG_VMLOCK_LEN      4
#define VMD_VMLOCK_MB2_SHADOW   0x2
/*
 * bus1: each root bus's range of buses below its ports (start 7:0, end
 * 15:8), and where bus 1's windows start in MEMBAR1 and MEMBAR2.
 */
#define VMD_REG_BUSRANGE0       0xc8
#define VMD_REG_BUSRANGE1       0xcc
#define VMD_REG_MEMBAR1_OFS     0xd0
#define VMD_REG_MEMBAR2_OFS     0xd8
#define VMD_BUS1_NUMBER         0x80    /* bus 1's ports' primary bus */
#define VMD_BUS1_ECAM           1       /* bus 1's root bus in CFGBAR */

/* Capabilities, placed clear of the VMD registers above */
#define VMD_MSIX_CAP            0x80
#define VMD_EXP_CAP             0x8c            /* ends before BUSRANGE0 */
#define VMD_VSCAP               0xe0
#define VMD_VSCAP_LEN           24
#define VMD_VSCAP_SHDW          0x53484457      /* "SHDW" */

/* MEMBAR2 layout */
#define VMD_MSIX_TABLE          0x0
#define VMD_MSIX_PBA            0x1000
#define VMD_MB2_REGS            0x2000
#define VMD_MB2_SHADOW_SIZE     0x10            /* 28C0: two addresses */
#define VMD_28C1_SHADOW_MEMBAR1 0x2818
#define VMD_28C1_SHADOW_MEMBAR2 0x2820
#define VMD_28C1_BASE_ID        0x2840
#define VMD_28C1_REGS_SIZE      (0x30d0 - VMD_MB2_REGS)

/* Child MSIs: 0xfee00000 | vector << 12 */
#define VMD_MSI_BASE            0xfee00000ULL
#define VMD_MSI_SIZE            0x100000ULL
#define VMD_MSI_VECTORS         (VMD_MSI_SIZE >> 12)

/* Hostile properties: defaults that mean "behave" */
#define VMD_VMCONFIG_BUS_AUTO   0xff            /* from bus-start */
#define VMD_CFG_ONES_BUS_NONE   0x100
#define VMD_FUZZ_RATE_MAX       1000000         /* parts per million */
#define VMD_FLOOD_INTERVAL_US   1000
#define VMD_FAKE_RID            0xffff          /* inject-msi, flood */

/* What a device ID changes, as vmd.c in Linux 7.3 encodes it. */
typedef struct IntelVMDPart {
    uint16_t device_id;
    bool bus_restrict;      /* VMCAP/VMCONFIG bus start */
    bool vmlock_shadow;     /* VMLOCK + MEMBAR2 0x2000 shadow registers */
    bool vscap_shadow;      /* "SHDW" vendor capability */
    bool can_bypass;        /* VMCONFIG remap-disable bit writable */
    bool bios_info;         /* 28C1: BAR4 registers, absolute ECAM bus */
    bool client;            /* vector 0 reserved, 17 vectors */
} IntelVMDPart;

static const IntelVMDPart intel_vmd_parts[] = {
    { .device_id = 0x201d, .vscap_shadow = true },
    { .device_id = 0x28c0, .bus_restrict = true, .vmlock_shadow = true,
      .can_bypass = true },
    { .device_id = 0x28c1, .can_bypass = true, .bios_info = true },
#define VMD_CLIENT(id) \
    { .device_id = (id), .bus_restrict = true, .vscap_shadow = true, \
      .client = true }
    VMD_CLIENT(0x467f), VMD_CLIENT(0x4c3d), VMD_CLIENT(0xa77f),
    VMD_CLIENT(0x7d0b), VMD_CLIENT(0xad0b), VMD_CLIENT(0x9a0b),
    VMD_CLIENT(0xb60b), VMD_CLIENT(0xb06f), VMD_CLIENT(0xb07f),
    VMD_CLIENT(0xd70b), VMD_CLIENT(0xd73b),
#undef VMD_CLIENT
};

struct IntelVMDHost {
    PCIHostState parent_obj;

    IntelVMDState *vmd;
    bool bus1;                      /* the second root bus's host */
    char bus_path[32];
};

struct IntelVMDState {
    PCIDevice parent_obj;

    const IntelVMDPart *part;
    IntelVMDHost host;
    PCIBus *bus;
    IntelVMDHost host1;             /* bus1 */
    PCIBus *bus1;

    /* The private bus's own address spaces */
    MemoryRegion bus_mem;
    MemoryRegion bus_io;
    AddressSpace bus_as;            /* only with fuzz-seed */

    /* What children's DMA sees: the VMD's DMA path plus the MSI window */
    MemoryRegion dma_root;
    MemoryRegion dma_enable;
    MemoryRegion dma_blocked;       /* below dma_enable: what it stops */
    bool dma_blocked_seen;          /* traced since the gate last closed */
    MemoryRegion msi_window;
    AddressSpace dma_as;

    /* BARs */
    MemoryRegion cfgbar;
    MemoryRegion membar1;           /* container */
    MemoryRegion membar1_window;    /* alias into bus_mem, or fuzz I/O */
    MemoryRegion membar1_gone;      /* all-ones while removed */
    MemoryRegion membar2;           /* container */
    MemoryRegion membar2_window;    /* alias into bus_mem, or fuzz I/O */
    MemoryRegion membar2_regs;
    MemoryRegion membar2_gone;      /* all-ones while removed */

    /* Properties */
    uint16_t device_id;
    uint64_t cfgbar_size;
    uint64_t membar1_size;
    uint64_t membar2_size;
    uint32_t vectors;
    uint8_t bus_start;
    bool shadow;
    bool two_buses;                 /* bus1 */
    uint16_t busrange0;
    uint16_t busrange1;
    uint32_t bus1_membar1_ofs;
    uint64_t bus1_membar2_ofs;
    uint64_t host_membar1;
    uint64_t host_membar2;
    OnOffAuto bios_bypass;

    /* Hostile properties */
    bool vmcap_ones;
    bool vmconfig_ones;
    bool vmlock_ones;
    uint8_t vmconfig_bus;
    bool membar1_unplaced;
    uint16_t cfg_ones_bus;
    uint16_t bad_header_bus;
    bool cap_loop;
    uint64_t shadow_raw1;
    uint64_t shadow_raw2;
    bool msix;
    uint64_t fuzz_seed;
    uint32_t fuzz_rate;
    uint32_t fuzz_after;

    /* Hostile run-time state */
    bool removed;
    bool membar1_shown;             /* membar1-unplaced: BAR2 visible */
    uint32_t membar1_wmask;
    uint8_t cap_loop_at;            /* the next pointer that loops, or 0 */
    uint64_t fuzz_state;
    uint64_t fuzz_reads;
    QEMUTimer *flood_timer;
    uint32_t flood_vector;
    uint32_t flood_interval;        /* microseconds */
    uint32_t flood_left;
};

/*
 * The private root bus numbers itself from the VMD's bus start; the second
 * one is the number its ports report as their primary bus.
 */
static int intel_vmd_bus_num(PCIBus *bus)
{
    IntelVMDHost *host = INTEL_VMD_HOST(BUS(bus)->parent);

    return host->bus1 ? VMD_BUS1_NUMBER : host->vmd->bus_start;
}

static void intel_vmd_bus_class_init(ObjectClass *klass, void *data)
{
    PCIBusClass *pbc = PCI_BUS_CLASS(klass);

    pbc->bus_num = intel_vmd_bus_num;
}

static const char *intel_vmd_host_root_bus_path(PCIHostState *host_bridge,
                                                PCIBus *rootbus)
{
    IntelVMDHost *host = INTEL_VMD_HOST(host_bridge);
    PCIDevice *pdev = PCI_DEVICE(host->vmd);

    /* Unique per VMD: the VMD's own address, then the private bus. */
    snprintf(host->bus_path, sizeof(host->bus_path), "%02x:%02x.%x-vmd:%02x",
             pci_dev_bus_num(pdev), PCI_SLOT(pdev->devfn),
             PCI_FUNC(pdev->devfn), pci_bus_num(rootbus));
    return host->bus_path;
}

static void intel_vmd_host_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIHostBridgeClass *hc = PCI_HOST_BRIDGE_CLASS(klass);

    hc->root_bus_path = intel_vmd_host_root_bus_path;
    dc->fw_name = "pci";
    /* Reason: internal part of the intel-vmd device */
    dc->user_creatable = false;
}

static bool intel_vmd_remapping(IntelVMDState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    return !s->part->can_bypass ||
           !(pci_get_word(pdev->config + VMD_REG_VMCONFIG) &
             VMD_VMCONFIG_REMAP_DIS);
}

/*
 * fuzz-seed: a reproducible fraction of reads returns garbage.  splitmix64
 * gives the same sequence for the same seed; every read after the first
 * fuzz-after draws one number, a corrupted read a few more.
 */
static uint64_t intel_vmd_fuzz_next(IntelVMDState *s)
{
    uint64_t z = (s->fuzz_state += 0x9e3779b97f4a7c15ULL);

    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static uint64_t intel_vmd_fuzz(IntelVMDState *s, const char *where,
                               hwaddr addr, uint64_t val, unsigned size)
{
    uint64_t bad, r;

    if (!s->fuzz_seed || !s->fuzz_rate) {
        return val;
    }
    if (++s->fuzz_reads <= s->fuzz_after ||
        intel_vmd_fuzz_next(s) % VMD_FUZZ_RATE_MAX >= s->fuzz_rate) {
        return val;
    }
    r = intel_vmd_fuzz_next(s);
    switch (r % 5) {
    case 0:     /* one bit flipped */
        bad = val ^ (1ULL << ((r >> 8) % (size * 8)));
        break;
    case 1:     /* random bits flipped */
        bad = val ^ intel_vmd_fuzz_next(s);
        break;
    case 2:
        bad = ~0ULL;
        break;
    case 3:
        bad = 0;
        break;
    default:
        bad = intel_vmd_fuzz_next(s);
        break;
    }
    bad &= MAKE_64BIT_MASK(0, size * 8);
    trace_intel_vmd_fuzz(where, addr, size, val, bad);
    return bad;
}

/*
 * Where the windows sit on the private bus: the BARs' host physical
 * addresses.  On bare metal those are the BARs as programmed; in shadow
 * (passthrough guest) mode they are the host's, reported by the shadow
 * registers, and differ from what the guest sees.
 */
static uint64_t intel_vmd_host_addr(IntelVMDState *s, int bar)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    pcibus_t addr;

    if (s->shadow) {
        return bar == VMD_MEMBAR1 ? s->host_membar1 : s->host_membar2;
    }
    addr = pci_get_bar_addr(pdev, bar);
    return addr == PCI_BAR_UNMAPPED ? 0 : addr;
}

static void intel_vmd_set_window(MemoryRegion *alias, uint64_t addr)
{
    /* Each change re-renders the memory map: only on a real move. */
    if (alias->alias_offset != addr) {
        memory_region_set_alias_offset(alias, addr);
    }
}

static void intel_vmd_update_windows(IntelVMDState *s)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    /* With fuzz-seed the windows are I/O regions that look it up. */
    if (s->membar1_size && !s->fuzz_seed) {
        intel_vmd_set_window(&s->membar1_window,
                             intel_vmd_host_addr(s, VMD_MEMBAR1));
    }
    if (s->membar2_size && !s->fuzz_seed) {
        intel_vmd_set_window(&s->membar2_window,
                             intel_vmd_host_addr(s, VMD_MEMBAR2));
    }
    /* Child DMA follows the VMD's own Bus Master Enable. */
    memory_region_set_enabled(&s->dma_enable,
                              (pci_get_word(pdev->config + PCI_COMMAND) &
                               PCI_COMMAND_MASTER) && pdev->enabled &&
                              !s->removed);
    s->dma_blocked_seen = false;
}

/*
 * Child DMA while the gate is closed: it reaches no memory, as on a real
 * part, and the first access after the gate closed is traced.
 */
static MemTxResult intel_vmd_dma_blocked(IntelVMDState *s, hwaddr addr,
                                         bool write)
{
    if (!s->dma_blocked_seen) {
        s->dma_blocked_seen = true;
        trace_intel_vmd_dma_blocked(DEVICE(s)->id ?: "",
                                    write ? "write to" : "read of", addr);
    }
    return MEMTX_DECODE_ERROR;
}

static MemTxResult intel_vmd_dma_blocked_read(void *opaque, hwaddr addr,
                                              uint64_t *val, unsigned size,
                                              MemTxAttrs attrs)
{
    *val = ~0ULL;
    return intel_vmd_dma_blocked(opaque, addr, false);
}

static MemTxResult intel_vmd_dma_blocked_write(void *opaque, hwaddr addr,
                                               uint64_t val, unsigned size,
                                               MemTxAttrs attrs)
{
    return intel_vmd_dma_blocked(opaque, addr, true);
}

static const MemoryRegionOps intel_vmd_dma_blocked_ops = {
    .read_with_attrs = intel_vmd_dma_blocked_read,
    .write_with_attrs = intel_vmd_dma_blocked_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 1,
        .max_access_size = 8,
    },
};

/* removed: the BARs read all-ones, child DMA stops (as if the link is down) */
static void intel_vmd_update_removed(IntelVMDState *s)
{
    memory_region_transaction_begin();
    if (s->membar1_size) {
        memory_region_set_enabled(&s->membar1_gone, s->removed);
    }
    if (s->membar2_size) {
        memory_region_set_enabled(&s->membar2_gone, s->removed);
    }
    intel_vmd_update_windows(s);
    memory_region_transaction_commit();
}

/* membar1-unplaced: BAR2 reads as unimplemented until it is shown. */
static void intel_vmd_show_membar1(IntelVMDState *s, bool shown)
{
    PCIDevice *pdev = PCI_DEVICE(s);

    if (shown && !s->membar1_shown) {
        trace_intel_vmd_membar1_shown(s->membar1_size);
    }
    s->membar1_shown = shown;
    pci_set_long(pdev->wmask + pci_bar(pdev, VMD_MEMBAR1),
                 shown ? s->membar1_wmask : 0);
}

/* The bytes of [addr, addr + len) that fall in register [reg, reg + size) */
static uint32_t intel_vmd_reg_bytes(uint32_t addr, int len, uint32_t reg,
                                    uint32_t size)
{
    uint32_t mask = 0;

    for (int i = 0; i < len; i++) {
        if (addr + i >= reg && addr + i < reg + size) {
            mask |= 0xffU << (i * 8);
        }
    }
    return mask;
}

static uint32_t intel_vmd_read_config(PCIDevice *pdev, uint32_t addr, int len)
{
    IntelVMDState *s = INTEL_VMD(pdev);
    uint32_t val = pci_default_read_config(pdev, addr, len);
    uint32_t loop;

    if (s->removed) {
        return MAKE_64BIT_MASK(0, len * 8);
    }
    if (s->vmcap_ones) {
        val |= intel_vmd_reg_bytes(addr, len, VMD_REG_VMCAP,
                                   VMD_REG_VMCAP_LEN);
    }
    if (s->vmconfig_ones) {
        val |= intel_vmd_reg_bytes(addr, len, VMD_REG_VMCONFIG,
                                   VMD_REG_VMCONFIG_LEN);
    }
    if (s->vmlock_ones) {
        val |= intel_vmd_reg_bytes(addr, len, VMD_REG_VMLOCK,
                                   VMD_REG_VMLOCK_LEN);
    }
    /*
     * cap-loop: the guest sees the last next pointer lead back to the
     * first capability.  Only the guest's view loops: QEMU's own list walks
     * (pci_find_capability) read pdev->config, which stays acyclic.
     */
    if (s->cap_loop_at) {
        loop = intel_vmd_reg_bytes(addr, len, s->cap_loop_at, 1);
        if (loop) {
            val = (val & ~loop) |
                  ((pdev->config[PCI_CAPABILITY_LIST] *
                    0x01010101U) & loop);
        }
    }
    return val;
}

static void intel_vmd_write_config(PCIDevice *pdev, uint32_t addr,
                                   uint32_t val, int len)
{
    IntelVMDState *s = INTEL_VMD(pdev);
    uint16_t vmconfig = pci_get_word(pdev->config + VMD_REG_VMCONFIG);

    if (s->removed) {
        return;
    }
    pci_default_write_config(pdev, addr, val, len);
    /* The MSI mode as the OS leaves it, e.g. at shutdown (tests). */
    if (pci_get_word(pdev->config + VMD_REG_VMCONFIG) != vmconfig) {
        trace_intel_vmd_vmconfig(DEVICE(s)->id ?: "", vmconfig,
                                 pci_get_word(pdev->config + VMD_REG_VMCONFIG));
    }
    /*
     * membar1-unplaced: firmware sizes and places every BAR before it turns
     * on memory decoding, so BAR2 appears with the first Memory Space
     * Enable after reset.
     */
    if (s->membar1_unplaced && !s->membar1_shown &&
        (pci_get_word(pdev->config + PCI_COMMAND) & PCI_COMMAND_MEMORY)) {
        intel_vmd_show_membar1(s, true);
    }
    intel_vmd_update_windows(s);
}

/* CFGBAR: ECAM, 1 MiB a bus */
static PCIDevice *intel_vmd_ecam_device(IntelVMDState *s, hwaddr addr)
{
    unsigned int bus = addr >> 20;
    uint8_t devfn = (addr >> 12) & 0xff;

    PCIDevice *dev;

    /* 28C1 indexes ECAM by absolute bus number, the others from the start. */
    if (!s->part->bios_info) {
        bus += s->bus_start;
    }
    /* cfg-ones-bus: that bus reads all-ones, as if nothing were there. */
    if (bus > 0xff || bus == s->cfg_ones_bus) {
        return NULL;
    }
    if (!s->bus1) {
        return pci_find_device(s->bus, bus, devfn);
    }
    /* The second root bus answers in CFGBAR's second bus. */
    if (bus == s->bus_start + VMD_BUS1_ECAM) {
        return pci_find_device(s->bus1, VMD_BUS1_NUMBER, devfn);
    }
    dev = pci_find_device(s->bus, bus, devfn);
    return dev ? dev : pci_find_device(s->bus1, bus, devfn);
}

static uint64_t intel_vmd_cfg_read(void *opaque, hwaddr addr, unsigned size)
{
    IntelVMDState *s = opaque;
    PCIDevice *dev;
    uint64_t val;

    if (s->removed) {
        return ~0ULL;
    }
    dev = intel_vmd_ecam_device(s, addr);
    if (!dev) {
        val = MAKE_64BIT_MASK(0, size * 8);
    } else {
        hwaddr reg = addr & 0xfff;

        val = pci_host_config_read_common(dev, reg, pci_config_size(dev), size);
        /* bad-header-bus: a header type no PCI specification defines. */
        if (pci_dev_bus_num(dev) == s->bad_header_bus &&
            reg <= PCI_HEADER_TYPE && PCI_HEADER_TYPE < reg + size) {
            unsigned int shift = (PCI_HEADER_TYPE - reg) * 8;

            val = (val & ~(0xffULL << shift)) | (0x7fULL << shift);
        }
    }
    return intel_vmd_fuzz(s, "cfgbar", addr, val, size);
}

static void intel_vmd_cfg_write(void *opaque, hwaddr addr, uint64_t val,
                                unsigned size)
{
    IntelVMDState *s = opaque;
    PCIDevice *dev;

    if (s->removed) {
        return;
    }
    dev = intel_vmd_ecam_device(s, addr);
    if (!dev) {
        return;
    }
    pci_host_config_write_common(dev, addr & 0xfff, pci_config_size(dev),
                                 val, size);
}

static const MemoryRegionOps intel_vmd_cfg_ops = {
    .read = intel_vmd_cfg_read,
    .write = intel_vmd_cfg_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 1,
        .max_access_size = 4,
    },
};

/*
 * fuzz-seed: the windows as I/O regions in front of the private bus, so
 * that their reads can be corrupted.  Without fuzz-seed they are aliases.
 */
static MemTxResult intel_vmd_window_read(IntelVMDState *s, int bar,
                                         hwaddr addr, uint64_t *data,
                                         unsigned size, MemTxAttrs attrs)
{
    uint8_t buf[8] = { 0 };
    MemTxResult res;

    res = address_space_read(&s->bus_as, intel_vmd_host_addr(s, bar) + addr,
                             attrs, buf, size);
    *data = intel_vmd_fuzz(s, bar == VMD_MEMBAR1 ? "membar1" : "membar2",
                           addr, ldn_le_p(buf, size), size);
    return res;
}

static MemTxResult intel_vmd_window_write(IntelVMDState *s, int bar,
                                          hwaddr addr, uint64_t data,
                                          unsigned size, MemTxAttrs attrs)
{
    uint8_t buf[8];

    stn_le_p(buf, size, data);
    return address_space_write(&s->bus_as,
                               intel_vmd_host_addr(s, bar) + addr, attrs,
                               buf, size);
}

static MemTxResult intel_vmd_membar1_read(void *opaque, hwaddr addr,
                                          uint64_t *data, unsigned size,
                                          MemTxAttrs attrs)
{
    return intel_vmd_window_read(opaque, VMD_MEMBAR1, addr, data, size,
                                 attrs);
}

static MemTxResult intel_vmd_membar1_write(void *opaque, hwaddr addr,
                                           uint64_t data, unsigned size,
                                           MemTxAttrs attrs)
{
    return intel_vmd_window_write(opaque, VMD_MEMBAR1, addr, data, size,
                                  attrs);
}

static MemTxResult intel_vmd_membar2_read(void *opaque, hwaddr addr,
                                          uint64_t *data, unsigned size,
                                          MemTxAttrs attrs)
{
    return intel_vmd_window_read(opaque, VMD_MEMBAR2, addr, data, size,
                                 attrs);
}

static MemTxResult intel_vmd_membar2_write(void *opaque, hwaddr addr,
                                           uint64_t data, unsigned size,
                                           MemTxAttrs attrs)
{
    return intel_vmd_window_write(opaque, VMD_MEMBAR2, addr, data, size,
                                  attrs);
}

static const MemoryRegionOps intel_vmd_membar1_fuzz_ops = {
    .read_with_attrs = intel_vmd_membar1_read,
    .write_with_attrs = intel_vmd_membar1_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 1,
        .max_access_size = 8,
    },
    .impl = {
        .min_access_size = 1,
        .max_access_size = 8,
    },
};

static const MemoryRegionOps intel_vmd_membar2_fuzz_ops = {
    .read_with_attrs = intel_vmd_membar2_read,
    .write_with_attrs = intel_vmd_membar2_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 1,
        .max_access_size = 8,
    },
    .impl = {
        .min_access_size = 1,
        .max_access_size = 8,
    },
};

/* removed: what is left of a BAR reads all-ones and ignores writes */
static uint64_t intel_vmd_gone_read(void *opaque, hwaddr addr, unsigned size)
{
    return ~0ULL;
}

static void intel_vmd_gone_write(void *opaque, hwaddr addr, uint64_t val,
                                 unsigned size)
{
}

static const MemoryRegionOps intel_vmd_gone_ops = {
    .read = intel_vmd_gone_read,
    .write = intel_vmd_gone_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 1,
        .max_access_size = 8,
    },
};

/* MEMBAR2 registers after the MSI-X PBA */
static uint64_t intel_vmd_shadow_value(IntelVMDState *s, int bar)
{
    PCIDevice *pdev = PCI_DEVICE(s);
    uint64_t raw = bar == VMD_MEMBAR1 ? s->shadow_raw1 : s->shadow_raw2;

    /* shadow-raw1/2: what a broken hypervisor or firmware reports */
    if (raw) {
        return raw;
    }
    /* What the BAR register holds: the address and its type bits. */
    return intel_vmd_host_addr(s, bar) |
           (pci_get_long(pdev->config + pci_bar(pdev, bar)) &
            ~PCI_BASE_ADDRESS_MEM_MASK);
}

static uint64_t intel_vmd_mb2_read(void *opaque, hwaddr addr, unsigned size)
{
    IntelVMDState *s = opaque;
    PCIDevice *pdev = PCI_DEVICE(s);
    hwaddr reg = (addr + VMD_MB2_REGS) & ~7ULL;
    unsigned shift = (addr & 7) * 8;
    uint64_t val = 0;

    if (s->part->vmlock_shadow) {
        bool en = pci_get_long(pdev->config + VMD_REG_VMLOCK) &
                  VMD_VMLOCK_MB2_SHADOW;

        /* Without the enable bit the shadow registers read 0. */
        if (en && reg == VMD_MB2_REGS) {
            val = intel_vmd_shadow_value(s, VMD_MEMBAR1);
        } else if (en && reg == VMD_MB2_REGS + 8) {
            val = intel_vmd_shadow_value(s, VMD_MEMBAR2);
        }
    } else if (s->part->bios_info) {
        if (reg == VMD_28C1_SHADOW_MEMBAR1) {
            val = intel_vmd_shadow_value(s, VMD_MEMBAR1);
        } else if (reg == VMD_28C1_SHADOW_MEMBAR2) {
            val = intel_vmd_shadow_value(s, VMD_MEMBAR2);
        } else if (reg == VMD_28C1_BASE_ID) {
            /* Segment 0, the bus start, device 0, function 0 */
            val = (uint64_t)s->bus_start << 8;
        }
    }
    if (size < 8) {
        val = (val >> shift) & MAKE_64BIT_MASK(0, size * 8);
    }
    return intel_vmd_fuzz(s, "membar2", addr + VMD_MB2_REGS, val, size);
}

static void intel_vmd_mb2_write(void *opaque, hwaddr addr, uint64_t val,
                                unsigned size)
{
    qemu_log_mask(LOG_GUEST_ERROR,
                  "intel-vmd: write to read-only MEMBAR2 register 0x%"
                  HWADDR_PRIx "\n", addr + VMD_MB2_REGS);
}

static const MemoryRegionOps intel_vmd_mb2_ops = {
    .read = intel_vmd_mb2_read,
    .write = intel_vmd_mb2_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 4,
        .max_access_size = 8,
    },
};

/* A child MSI that names VMD vector @vector, remapping on */
static void intel_vmd_remap_msi(IntelVMDState *s, uint16_t rid,
                                unsigned int vector)
{
    if (vector >= s->vectors) {
        trace_intel_vmd_msi_bad_vector(rid, vector, s->vectors);
        qemu_log_mask(LOG_GUEST_ERROR,
                      "intel-vmd: child MSI to vector %u of %u\n",
                      vector, s->vectors);
        return;
    }
    trace_intel_vmd_msi_remap(rid, vector);
    msix_notify(PCI_DEVICE(s), vector);
}

/*
 * Child MSIs.  With remapping, the write names a VMD vector in the APIC
 * destination ID field and raises that vector; without, it goes on
 * unchanged as a message from the VMD.
 */
static MemTxResult intel_vmd_msi_write(void *opaque, hwaddr addr,
                                       uint64_t val, unsigned size,
                                       MemTxAttrs attrs)
{
    IntelVMDState *s = opaque;
    PCIDevice *pdev = PCI_DEVICE(s);

    if (s->removed) {
        trace_intel_vmd_msi_removed(attrs.requester_id, VMD_MSI_BASE + addr);
        return MEMTX_OK;
    }
    if (!intel_vmd_remapping(s)) {
        trace_intel_vmd_msi_bypass(attrs.requester_id, VMD_MSI_BASE + addr,
                                   val);
        attrs.requester_id = pci_requester_id(pdev);
        address_space_stl_le(pci_get_address_space(pdev),
                             VMD_MSI_BASE + addr, val, attrs, NULL);
        return MEMTX_OK;
    }
    intel_vmd_remap_msi(s, attrs.requester_id, (addr >> 12) & 0xff);
    return MEMTX_OK;
}

static MemTxResult intel_vmd_msi_read(void *opaque, hwaddr addr,
                                      uint64_t *val, unsigned size,
                                      MemTxAttrs attrs)
{
    *val = 0;
    return MEMTX_OK;
}

static const MemoryRegionOps intel_vmd_msi_ops = {
    .read_with_attrs = intel_vmd_msi_read,
    .write_with_attrs = intel_vmd_msi_write,
    .endianness = DEVICE_LITTLE_ENDIAN,
    .valid = {
        .min_access_size = 4,
        .max_access_size = 4,
    },
};

/*
 * inject-msi and flood-count: as if a child wrote 0xfee00000 | vector << 12.
 * Only remapping has a VMD vector to raise: in bypass mode such a message
 * would not concern the VMD, and it is dropped.
 */
static void intel_vmd_fake_msi(IntelVMDState *s, unsigned int vector)
{
    if (s->removed) {
        trace_intel_vmd_msi_removed(VMD_FAKE_RID,
                                    VMD_MSI_BASE | (uint64_t)vector << 12);
        return;
    }
    if (!intel_vmd_remapping(s)) {
        trace_intel_vmd_fake_msi_bypass(vector);
        return;
    }
    intel_vmd_remap_msi(s, VMD_FAKE_RID, vector);
}

static void intel_vmd_flood_tick(void *opaque)
{
    IntelVMDState *s = opaque;

    if (!s->flood_left) {
        return;
    }
    s->flood_left--;
    intel_vmd_fake_msi(s, s->flood_vector);
    if (s->flood_left) {
        timer_mod(s->flood_timer, qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL) +
                  (int64_t)s->flood_interval * SCALE_US);
    } else {
        trace_intel_vmd_flood_done(s->flood_vector);
    }
}

static AddressSpace *intel_vmd_child_as(PCIBus *bus, void *opaque, int devfn)
{
    IntelVMDState *s = opaque;

    return &s->dma_as;
}

static const PCIIOMMUOps intel_vmd_iommu_ops = {
    .get_address_space = intel_vmd_child_as,
};

/* Legacy interrupts do not cross a VMD. */
static void intel_vmd_set_irq(void *opaque, int irq_num, int level)
{
}

static int intel_vmd_map_irq(PCIDevice *pdev, int pin)
{
    return pin;
}

static const IntelVMDPart *intel_vmd_find_part(uint16_t device_id)
{
    for (size_t i = 0; i < ARRAY_SIZE(intel_vmd_parts); i++) {
        if (intel_vmd_parts[i].device_id == device_id) {
            return &intel_vmd_parts[i];
        }
    }
    return NULL;
}

static bool intel_vmd_check_props(IntelVMDState *s, Error **errp)
{
    uint64_t regs_end = VMD_MB2_REGS;

    if (!is_power_of_2(s->cfgbar_size) || s->cfgbar_size < 16 ||
        s->cfgbar_size > 256 * MiB) {
        error_setg(errp, "cfgbar-size must be a power of 2 from 16 B to "
                   "256 MiB");
        return false;
    }
    /* 0: BAR2 not implemented */
    if (s->membar1_size && (!is_power_of_2(s->membar1_size) ||
                            s->membar1_size < 4 * KiB ||
                            s->membar1_size > 2 * GiB)) {
        error_setg(errp, "membar1-size must be 0 or a power of 2 from 4 KiB "
                   "to 2 GiB");
        return false;
    }
    if (s->membar1_unplaced && !s->membar1_size) {
        error_setg(errp, "membar1-unplaced needs a MEMBAR1");
        return false;
    }
    if (s->part->vmlock_shadow) {
        regs_end += VMD_MB2_SHADOW_SIZE;
    } else if (s->part->bios_info) {
        regs_end += VMD_28C1_REGS_SIZE;
    }
    /* 0: BAR4 not implemented, and with it no MSI-X */
    if (s->membar2_size && (!is_power_of_2(s->membar2_size) ||
                            s->membar2_size <= regs_end)) {
        error_setg(errp, "membar2-size must be 0 or a power of 2 above 0x%"
                   PRIx64, regs_end);
        return false;
    }
    if (s->bus_start != 0 && s->bus_start != 128 && s->bus_start != 224) {
        error_setg(errp, "bus-start must be 0, 128 or 224");
        return false;
    }
    if (s->bus_start && !s->part->bus_restrict && !s->part->bios_info) {
        error_setg(errp, "device-id 0x%04x has no bus restrictions: "
                   "bus-start must be 0", s->device_id);
        return false;
    }
    if (s->vmconfig_bus != VMD_VMCONFIG_BUS_AUTO) {
        if (!s->part->bus_restrict) {
            error_setg(errp, "device-id 0x%04x has no bus restrictions: "
                       "no vmconfig-bus", s->device_id);
            return false;
        }
        if (s->vmconfig_bus > VMD_VMCONFIG_BUS_MAX) {
            error_setg(errp, "vmconfig-bus must be from 0 to %d",
                       VMD_VMCONFIG_BUS_MAX);
            return false;
        }
    }
    if (s->two_buses) {
        uint64_t buses = s->cfgbar_size >> 20;

        if (!s->part->client || s->bus_start != 224) {
            error_setg(errp, "bus1 needs a client part and bus-start=224");
            return false;
        }
        if (buses < 4 || !s->membar1_size || !s->membar2_size) {
            error_setg(errp, "bus1 needs a CFGBAR of 4 buses or more and "
                       "both MEMBARs");
            return false;
        }
        /* Firmware's split: half the buses after the root buses each. */
        if (!s->busrange0 && !s->busrange1) {
            unsigned int first = s->bus_start + 2;
            unsigned int last = s->bus_start + MIN(buses, 32) - 1;
            unsigned int mid = first + (last - first + 1) / 2 - 1;

            s->busrange0 = first | mid << 8;
            s->busrange1 = (mid + 1) | last << 8;
        }
        if (!s->bus1_membar1_ofs) {
            s->bus1_membar1_ofs = s->membar1_size / 2;
        }
        if (!s->bus1_membar2_ofs) {
            s->bus1_membar2_ofs = s->membar2_size / 2;
        }
    } else if (s->busrange0 || s->busrange1 || s->bus1_membar1_ofs ||
               s->bus1_membar2_ofs) {
        error_setg(errp, "busrange0/1 and bus1-membar1/2-offset need bus1");
        return false;
    }
    if (s->vectors < 1 || s->vectors > 256) {
        error_setg(errp, "vectors must be from 1 to 256");
        return false;
    }
    /* The windows must decode somewhere sane; shadow-raw1/2 need not. */
    if (s->shadow &&
        ((s->membar1_size && (s->host_membar1 & (s->membar1_size - 1) ||
                              s->host_membar1 + s->membar1_size > 4 * GiB)) ||
         (s->membar2_size && s->host_membar2 & (s->membar2_size - 1)))) {
        error_setg(errp, "host-membar1 must be aligned and below 4 GiB, "
                   "host-membar2 aligned");
        return false;
    }
    if (s->cfg_ones_bus > VMD_CFG_ONES_BUS_NONE ||
        s->bad_header_bus > VMD_CFG_ONES_BUS_NONE) {
        error_setg(errp, "cfg-ones-bus and bad-header-bus must be bus "
                   "numbers, or 0x%x for none", VMD_CFG_ONES_BUS_NONE);
        return false;
    }
    if (s->fuzz_rate > VMD_FUZZ_RATE_MAX) {
        error_setg(errp, "fuzz-rate is in parts per million: at most %d",
                   VMD_FUZZ_RATE_MAX);
        return false;
    }
    return true;
}

/*
 * A private root bus on its own host bridge, QOM child @child of the VMD
 * (@bus1: the second), named @name.  Children find the bus by that name
 * (bus=<id>), but as the QOM child of that name, the bus would make the
 * partial QOM path "<id>" ambiguous, and qom-set <id> ... (the run-time
 * triggers below) would find nothing: the bus is the host's QOM child
 * "bus", named <id>.
 */
static PCIBus *intel_vmd_root_bus(IntelVMDState *s, IntelVMDHost *host,
                                  bool bus1, const char *child,
                                  const char *name, Error **errp)
{
    PCIBus *bus;

    object_initialize_child(OBJECT(s), child, host, TYPE_INTEL_VMD_HOST);
    host->vmd = s;
    host->bus1 = bus1;
    bus = pci_root_bus_new(DEVICE(host), "bus", &s->bus_mem, &s->bus_io, 0,
                           TYPE_INTEL_VMD_BUS);
    g_free(BUS(bus)->name);
    BUS(bus)->name = g_strdup(name);
    PCI_HOST_BRIDGE(host)->bus = bus;
    pci_bus_irqs(bus, intel_vmd_set_irq, s, PCI_NUM_PINS);
    pci_bus_map_irqs(bus, intel_vmd_map_irq);
    if (!sysbus_realize(SYS_BUS_DEVICE(host), errp)) {
        return NULL;
    }
    return bus;
}

static void intel_vmd_realize(PCIDevice *pdev, Error **errp)
{
    IntelVMDState *s = INTEL_VMD(pdev);
    const char *name = DEVICE(pdev)->id;
    uint8_t *conf = pdev->config;
    MemoryRegion *bm_root;
    uint8_t cap;

    s->part = intel_vmd_find_part(s->device_id);
    if (!s->part) {
        error_setg(errp, "device-id 0x%04x is not a VMD Linux 7.3 knows",
                   s->device_id);
        return;
    }
    if (!s->vectors) {
        s->vectors = s->part->client ? 17 : 32;
    }
    if (!intel_vmd_check_props(s, errp)) {
        return;
    }
    if (!name || !*name) {
        error_setg(errp, "intel-vmd needs an id: it names the private bus");
        return;
    }
    /* The MSI-X table lives in BAR4. */
    if (!s->msix || !s->membar2_size) {
        s->vectors = 0;
    }

    pci_config_set_device_id(conf, s->device_id);
    pci_config_set_class(conf, PCI_CLASS_STORAGE_RAID);
    pci_set_word(conf + VMD_REG_VMCAP,
                 s->part->bus_restrict ? VMD_VMCAP_BUS_RESTRICT : 0);
    if (s->part->can_bypass) {
        pci_set_word(pdev->wmask + VMD_REG_VMCONFIG, VMD_VMCONFIG_REMAP_DIS);
    }
    pci_set_long(conf + VMD_REG_VMLOCK,
                 s->part->vmlock_shadow && s->shadow ?
                 VMD_VMLOCK_MB2_SHADOW : 0);
    if (s->two_buses) {
        /* As firmware left them; the hostile properties may disagree. */
        pci_set_word(conf + VMD_REG_BUSRANGE0, s->busrange0);
        pci_set_word(conf + VMD_REG_BUSRANGE1, s->busrange1);
        pci_set_long(conf + VMD_REG_MEMBAR1_OFS, s->bus1_membar1_ofs);
        pci_set_quad(conf + VMD_REG_MEMBAR2_OFS, s->bus1_membar2_ofs);
    }

    if (pcie_endpoint_cap_init(pdev, VMD_EXP_CAP) < 0) {
        error_setg(errp, "intel-vmd: cannot add the PCIe capability");
        return;
    }
    if (s->part->vscap_shadow && s->shadow) {
        /* What a hypervisor emulates for a passed-through VMD */
        if (pci_add_capability(pdev, PCI_CAP_ID_VNDR, VMD_VSCAP,
                               VMD_VSCAP_LEN, errp) < 0) {
            return;
        }
        pci_set_byte(conf + VMD_VSCAP + 2, VMD_VSCAP_LEN);
        pci_set_long(conf + VMD_VSCAP + 4, VMD_VSCAP_SHDW);
        pci_set_quad(conf + VMD_VSCAP + 8, s->shadow_raw1 ? s->shadow_raw1 :
                     s->host_membar1 | PCI_BASE_ADDRESS_MEM_TYPE_32);
        pci_set_quad(conf + VMD_VSCAP + 16, s->shadow_raw2 ? s->shadow_raw2 :
                     s->host_membar2 | PCI_BASE_ADDRESS_MEM_TYPE_64);
    }

    /* The private bus and its address spaces */
    memory_region_init(&s->bus_mem, OBJECT(s), "intel-vmd-bus-mem",
                       UINT64_MAX);
    memory_region_init(&s->bus_io, OBJECT(s), "intel-vmd-bus-io", 64 * KiB);
    s->bus = intel_vmd_root_bus(s, &s->host, false, "host", name, errp);
    if (!s->bus) {
        return;
    }
    /* bus1: the second root bus shares the address spaces and remapping. */
    if (s->two_buses) {
        g_autofree char *name1 = g_strdup_printf("%s.1", name);

        s->bus1 = intel_vmd_root_bus(s, &s->host1, true, "host1", name1,
                                     errp);
        if (!s->bus1) {
            return;
        }
    }
    if (s->fuzz_seed) {
        address_space_init(&s->bus_as, &s->bus_mem, "intel-vmd-bus-mem");
    }

    /*
     * Children's DMA: through what the VMD itself reaches (the IOMMU's
     * address space for the VMD's requester ID, if any), gated by the
     * VMD's Bus Master Enable, with the MSI window on top.
     */
    bm_root = pci_device_iommu_address_space(pdev)->root;
    memory_region_init(&s->dma_root, OBJECT(s), "intel-vmd-dma", UINT64_MAX);
    memory_region_init_alias(&s->dma_enable, OBJECT(s), "intel-vmd-dma-bme",
                             bm_root, 0, memory_region_size(bm_root));
    memory_region_set_enabled(&s->dma_enable, false);
    memory_region_add_subregion_overlap(&s->dma_root, 0, &s->dma_enable, 0);
    memory_region_init_io(&s->dma_blocked, OBJECT(s), &intel_vmd_dma_blocked_ops,
                          s, "intel-vmd-dma-blocked", UINT64_MAX);
    memory_region_add_subregion_overlap(&s->dma_root, 0, &s->dma_blocked, -1);
    memory_region_init_io(&s->msi_window, OBJECT(s), &intel_vmd_msi_ops, s,
                          "intel-vmd-msi", VMD_MSI_SIZE);
    /*
     * A child may signal an MSI from inside a config write that came in
     * through our CFGBAR (a root port's command-completed event does): that
     * is not the re-entrancy the guard protects against.
     */
    s->msi_window.disable_reentrancy_guard = true;
    memory_region_add_subregion_overlap(&s->dma_root, VMD_MSI_BASE,
                                        &s->msi_window, 1);
    address_space_init(&s->dma_as, &s->dma_root, "intel-vmd-dma");
    pci_setup_iommu(s->bus, &intel_vmd_iommu_ops, s);
    if (s->bus1) {
        pci_setup_iommu(s->bus1, &intel_vmd_iommu_ops, s);
    }

    /* BAR0: ECAM */
    memory_region_init_io(&s->cfgbar, OBJECT(s), &intel_vmd_cfg_ops, s,
                          "intel-vmd-cfgbar", s->cfgbar_size);
    pci_register_bar(pdev, VMD_CFGBAR, PCI_BASE_ADDRESS_SPACE_MEMORY |
                     PCI_BASE_ADDRESS_MEM_TYPE_64 |
                     PCI_BASE_ADDRESS_MEM_PREFETCH, &s->cfgbar);

    /* BAR2: a window onto the private bus */
    if (s->membar1_size) {
        memory_region_init(&s->membar1, OBJECT(s), "intel-vmd-membar1",
                           s->membar1_size);
        if (s->fuzz_seed) {
            memory_region_init_io(&s->membar1_window, OBJECT(s),
                                  &intel_vmd_membar1_fuzz_ops, s,
                                  "intel-vmd-membar1-fuzz", s->membar1_size);
        } else {
            memory_region_init_alias(&s->membar1_window, OBJECT(s),
                                     "intel-vmd-membar1-window", &s->bus_mem,
                                     0, s->membar1_size);
        }
        memory_region_add_subregion(&s->membar1, 0, &s->membar1_window);
        memory_region_init_io(&s->membar1_gone, OBJECT(s),
                              &intel_vmd_gone_ops, s,
                              "intel-vmd-membar1-removed", s->membar1_size);
        memory_region_set_enabled(&s->membar1_gone, false);
        memory_region_add_subregion_overlap(&s->membar1, 0, &s->membar1_gone,
                                            1);
        pci_register_bar(pdev, VMD_MEMBAR1, PCI_BASE_ADDRESS_SPACE_MEMORY,
                         &s->membar1);
        if (s->membar1_unplaced) {
            /* Hidden until shown: nothing to check on an incoming BAR2 */
            s->membar1_wmask = pci_get_long(pdev->wmask +
                                            pci_bar(pdev, VMD_MEMBAR1));
            pci_set_long(pdev->cmask + pci_bar(pdev, VMD_MEMBAR1), 0);
            intel_vmd_show_membar1(s, false);
        }
    }

    /* BAR4: MSI-X table and PBA, registers, then the window */
    if (s->membar2_size) {
        memory_region_init(&s->membar2, OBJECT(s), "intel-vmd-membar2",
                           s->membar2_size);
        if (s->fuzz_seed) {
            memory_region_init_io(&s->membar2_window, OBJECT(s),
                                  &intel_vmd_membar2_fuzz_ops, s,
                                  "intel-vmd-membar2-fuzz", s->membar2_size);
        } else {
            memory_region_init_alias(&s->membar2_window, OBJECT(s),
                                     "intel-vmd-membar2-window", &s->bus_mem,
                                     0, s->membar2_size);
        }
        memory_region_add_subregion_overlap(&s->membar2, 0,
                                            &s->membar2_window, -1);
        if (s->part->vmlock_shadow || s->part->bios_info) {
            memory_region_init_io(&s->membar2_regs, OBJECT(s),
                                  &intel_vmd_mb2_ops, s,
                                  "intel-vmd-membar2-regs",
                                  s->part->bios_info ? VMD_28C1_REGS_SIZE :
                                  VMD_MB2_SHADOW_SIZE);
            memory_region_add_subregion(&s->membar2, VMD_MB2_REGS,
                                        &s->membar2_regs);
        }
        memory_region_init_io(&s->membar2_gone, OBJECT(s),
                              &intel_vmd_gone_ops, s,
                              "intel-vmd-membar2-removed", s->membar2_size);
        memory_region_set_enabled(&s->membar2_gone, false);
        memory_region_add_subregion_overlap(&s->membar2, 0, &s->membar2_gone,
                                            1);
        pci_register_bar(pdev, VMD_MEMBAR2, PCI_BASE_ADDRESS_SPACE_MEMORY |
                         PCI_BASE_ADDRESS_MEM_TYPE_64, &s->membar2);
    }
    if (s->vectors) {
        if (msix_init(pdev, s->vectors, &s->membar2, VMD_MEMBAR2,
                      VMD_MSIX_TABLE, &s->membar2, VMD_MEMBAR2, VMD_MSIX_PBA,
                      VMD_MSIX_CAP, errp) < 0) {
            return;
        }
        for (unsigned int i = 0; i < s->vectors; i++) {
            msix_vector_use(pdev, i);
        }
    }

    /* cap-loop: the last capability's next pointer, as the guest sees it */
    if (s->cap_loop) {
        cap = conf[PCI_CAPABILITY_LIST];
        while (conf[cap + PCI_CAP_LIST_NEXT]) {
            cap = conf[cap + PCI_CAP_LIST_NEXT];
        }
        s->cap_loop_at = cap + PCI_CAP_LIST_NEXT;
    }

    s->flood_timer = timer_new_ns(QEMU_CLOCK_VIRTUAL, intel_vmd_flood_tick,
                                  s);
    s->fuzz_state = s->fuzz_seed;
    intel_vmd_update_removed(s);
}

static void intel_vmd_exit(PCIDevice *pdev)
{
    IntelVMDState *s = INTEL_VMD(pdev);

    timer_free(s->flood_timer);
    msix_uninit(pdev, &s->membar2, &s->membar2);
    if (s->fuzz_seed) {
        address_space_destroy(&s->bus_as);
    }
    address_space_destroy(&s->dma_as);
}

static void intel_vmd_reset(DeviceState *dev)
{
    IntelVMDState *s = INTEL_VMD(dev);
    PCIDevice *pdev = PCI_DEVICE(dev);
    uint16_t vmconfig = 0;
    bool bypass;

    /* What firmware leaves in VMCONFIG: the bus start and the MSI mode. */
    if (s->part->bus_restrict) {
        if (s->vmconfig_bus != VMD_VMCONFIG_BUS_AUTO) {
            vmconfig |= s->vmconfig_bus << VMD_VMCONFIG_BUS_SHIFT;
        } else if (s->two_buses) {
            vmconfig |= VMD_VMCONFIG_BUS_TWO << VMD_VMCONFIG_BUS_SHIFT;
        } else {
            vmconfig |= (s->bus_start == 0 ? 0 : s->bus_start == 128 ? 1 : 2)
                        << VMD_VMCONFIG_BUS_SHIFT;
        }
    }
    /*
     * Linux never writes 28C1's VMCONFIG: firmware picks its mode, which
     * by default matches what the driver will choose (bypass on bare metal).
     */
    bypass = s->bios_bypass == ON_OFF_AUTO_ON ||
             (s->bios_bypass == ON_OFF_AUTO_AUTO && s->part->bios_info &&
              !s->shadow);
    if (s->part->can_bypass && bypass) {
        vmconfig |= VMD_VMCONFIG_REMAP_DIS;
    }
    pci_set_word(pdev->config + VMD_REG_VMCONFIG, vmconfig);

    /* Hostile state starts over; a removed VMD stays removed. */
    if (s->membar1_unplaced) {
        intel_vmd_show_membar1(s, false);
    }
    s->fuzz_state = s->fuzz_seed;
    s->fuzz_reads = 0;
    s->flood_left = 0;
    timer_del(s->flood_timer);
    intel_vmd_update_windows(s);
}

/*
 * bus1: firmware numbers the buses below both root buses' ports from
 * BUSRANGE0/1, one bus a port, and the ports on bus 1 report bus 0x80 as
 * their primary bus.  Once the ports themselves are reset (the exit phase
 * follows every hold phase of a system reset).
 */
static void intel_vmd_number_ports(PCIBus *bus, uint8_t primary,
                                   uint16_t range)
{
    unsigned int next = range & 0xff, end = range >> 8;

    for (int devfn = 0; devfn < ARRAY_SIZE(bus->devices); devfn++) {
        PCIDevice *dev = bus->devices[devfn];

        if (!dev || !IS_PCI_BRIDGE(dev) || next > end) {
            continue;
        }
        pci_set_byte(dev->config + PCI_PRIMARY_BUS, primary);
        pci_set_byte(dev->config + PCI_SECONDARY_BUS, next);
        pci_set_byte(dev->config + PCI_SUBORDINATE_BUS, next);
        next++;
    }
}

static void intel_vmd_reset_exit(Object *obj, ResetType type)
{
    IntelVMDState *s = INTEL_VMD(obj);

    if (s->bus1) {
        intel_vmd_number_ports(s->bus, s->bus_start, s->busrange0);
        intel_vmd_number_ports(s->bus1, VMD_BUS1_NUMBER, s->busrange1);
    }
}

/* Run-time (QOM) properties */
static bool intel_vmd_get_removed(Object *obj, Error **errp)
{
    return INTEL_VMD(obj)->removed;
}

static void intel_vmd_set_removed(Object *obj, bool value, Error **errp)
{
    IntelVMDState *s = INTEL_VMD(obj);

    if (s->removed == value) {
        return;
    }
    s->removed = value;
    trace_intel_vmd_removed(value);
    if (DEVICE(obj)->realized) {
        /*
         * From the monitor, while vCPUs run: a vCPU's TLB keeps pointing
         * into the old memory map until it takes the flush TCG queues for
         * it, but QEMU 10.0's iotlb_to_section() looks its entries up in
         * the new map (an assertion, seen once under IO).  Paused, every
         * vCPU takes the flush before it runs again.
         */
        bool running = runstate_is_running();

        if (running) {
            pause_all_vcpus();
        }
        intel_vmd_update_removed(s);
        if (running) {
            resume_all_vcpus();
        }
    }
}

static bool intel_vmd_visit_vector(Visitor *v, const char *name,
                                     uint32_t *vector, Error **errp)
{
    if (!visit_type_uint32(v, name, vector, errp)) {
        return false;
    }
    if (*vector >= VMD_MSI_VECTORS) {
        error_setg(errp, "%s: a child MSI names vectors 0 to %llu", name,
                   VMD_MSI_VECTORS - 1);
        return false;
    }
    return true;
}

static void intel_vmd_set_inject_msi(Object *obj, Visitor *v,
                                     const char *name, void *opaque,
                                     Error **errp)
{
    IntelVMDState *s = INTEL_VMD(obj);
    uint32_t vector;

    if (!intel_vmd_visit_vector(v, name, &vector, errp)) {
        return;
    }
    if (!DEVICE(obj)->realized) {
        error_setg(errp, "%s is a run-time trigger (qom-set)", name);
        return;
    }
    trace_intel_vmd_inject_msi(vector);
    intel_vmd_fake_msi(s, vector);
}

static void intel_vmd_get_flood_vector(Object *obj, Visitor *v,
                                       const char *name, void *opaque,
                                       Error **errp)
{
    visit_type_uint32(v, name, &INTEL_VMD(obj)->flood_vector, errp);
}

static void intel_vmd_set_flood_vector(Object *obj, Visitor *v,
                                       const char *name, void *opaque,
                                       Error **errp)
{
    uint32_t vector;

    if (intel_vmd_visit_vector(v, name, &vector, errp)) {
        INTEL_VMD(obj)->flood_vector = vector;
    }
}

static void intel_vmd_get_flood_interval(Object *obj, Visitor *v,
                                         const char *name, void *opaque,
                                         Error **errp)
{
    visit_type_uint32(v, name, &INTEL_VMD(obj)->flood_interval, errp);
}

static void intel_vmd_set_flood_interval(Object *obj, Visitor *v,
                                         const char *name, void *opaque,
                                         Error **errp)
{
    uint32_t us;

    if (!visit_type_uint32(v, name, &us, errp)) {
        return;
    }
    if (us < 1 || us > 1000000) {
        error_setg(errp, "%s must be from 1 to 1000000 (us)", name);
        return;
    }
    INTEL_VMD(obj)->flood_interval = us;
}

static void intel_vmd_get_flood_count(Object *obj, Visitor *v,
                                      const char *name, void *opaque,
                                      Error **errp)
{
    visit_type_uint32(v, name, &INTEL_VMD(obj)->flood_left, errp);
}

static void intel_vmd_set_flood_count(Object *obj, Visitor *v,
                                      const char *name, void *opaque,
                                      Error **errp)
{
    IntelVMDState *s = INTEL_VMD(obj);
    uint32_t count;

    if (!visit_type_uint32(v, name, &count, errp)) {
        return;
    }
    if (!DEVICE(obj)->realized) {
        error_setg(errp, "%s is a run-time trigger (qom-set)", name);
        return;
    }
    /* A new count replaces a flood under way; 0 stops it. */
    s->flood_left = count;
    trace_intel_vmd_flood(s->flood_vector, count, s->flood_interval);
    if (count) {
        timer_mod(s->flood_timer, qemu_clock_get_ns(QEMU_CLOCK_VIRTUAL));
    } else {
        timer_del(s->flood_timer);
    }
}

static void intel_vmd_instance_init(Object *obj)
{
    INTEL_VMD(obj)->flood_interval = VMD_FLOOD_INTERVAL_US;
}

static int intel_vmd_post_load(void *opaque, int version_id)
{
    IntelVMDState *s = opaque;

    if (s->membar1_unplaced) {
        intel_vmd_show_membar1(s, s->membar1_shown);
    }
    /* Also puts the windows where the incoming BARs say. */
    intel_vmd_update_removed(s);
    return 0;
}

static bool intel_vmd_hostile_needed(void *opaque)
{
    IntelVMDState *s = opaque;

    return s->removed || s->membar1_unplaced || s->fuzz_seed ||
           s->flood_left;
}

static const VMStateDescription vmstate_intel_vmd_hostile = {
    .name = TYPE_INTEL_VMD "/hostile",
    .version_id = 1,
    .minimum_version_id = 1,
    .needed = intel_vmd_hostile_needed,
    .fields = (const VMStateField[]) {
        VMSTATE_BOOL(removed, IntelVMDState),
        VMSTATE_BOOL(membar1_shown, IntelVMDState),
        VMSTATE_UINT64(fuzz_state, IntelVMDState),
        VMSTATE_UINT64(fuzz_reads, IntelVMDState),
        VMSTATE_UINT32(flood_vector, IntelVMDState),
        VMSTATE_UINT32(flood_interval, IntelVMDState),
        VMSTATE_UINT32(flood_left, IntelVMDState),
        VMSTATE_TIMER_PTR(flood_timer, IntelVMDState),
        VMSTATE_END_OF_LIST()
    },
};

static const VMStateDescription vmstate_intel_vmd = {
    .name = TYPE_INTEL_VMD,
    .version_id = 1,
    .minimum_version_id = 1,
    .post_load = intel_vmd_post_load,
    .fields = (const VMStateField[]) {
        VMSTATE_PCI_DEVICE(parent_obj, IntelVMDState),
        VMSTATE_MSIX(parent_obj, IntelVMDState),
        VMSTATE_END_OF_LIST()
    },
    .subsections = (const VMStateDescription * const []) {
        &vmstate_intel_vmd_hostile,
        NULL
    },
};

static const Property intel_vmd_properties[] = {
    DEFINE_PROP_UINT16("device-id", IntelVMDState, device_id, 0x28c0),
    DEFINE_PROP_SIZE("cfgbar-size", IntelVMDState, cfgbar_size, 32 * MiB),
    DEFINE_PROP_SIZE("membar1-size", IntelVMDState, membar1_size, 32 * MiB),
    DEFINE_PROP_SIZE("membar2-size", IntelVMDState, membar2_size, 64 * MiB),
    DEFINE_PROP_UINT32("vectors", IntelVMDState, vectors, 0),
    DEFINE_PROP_UINT8("bus-start", IntelVMDState, bus_start, 0),
    DEFINE_PROP_BOOL("shadow", IntelVMDState, shadow, false),
    DEFINE_PROP_BOOL("bus1", IntelVMDState, two_buses, false),
    DEFINE_PROP_UINT16("busrange0", IntelVMDState, busrange0, 0),
    DEFINE_PROP_UINT16("busrange1", IntelVMDState, busrange1, 0),
    DEFINE_PROP_UINT32("bus1-membar1-offset", IntelVMDState, bus1_membar1_ofs,
                       0),
    DEFINE_PROP_UINT64("bus1-membar2-offset", IntelVMDState, bus1_membar2_ofs,
                       0),
    DEFINE_PROP_UINT64("host-membar1", IntelVMDState, host_membar1,
                       0xc0000000ULL),
    DEFINE_PROP_UINT64("host-membar2", IntelVMDState, host_membar2,
                       0x4000000000ULL),
    DEFINE_PROP_ON_OFF_AUTO("bios-msi-bypass", IntelVMDState, bios_bypass,
                            ON_OFF_AUTO_AUTO),
    /* Hostile hardware, fixed at creation */
    DEFINE_PROP_BOOL("vmcap-ones", IntelVMDState, vmcap_ones, false),
    DEFINE_PROP_BOOL("vmconfig-ones", IntelVMDState, vmconfig_ones, false),
    DEFINE_PROP_BOOL("vmlock-ones", IntelVMDState, vmlock_ones, false),
    DEFINE_PROP_UINT8("vmconfig-bus", IntelVMDState, vmconfig_bus,
                      VMD_VMCONFIG_BUS_AUTO),
    DEFINE_PROP_BOOL("membar1-unplaced", IntelVMDState, membar1_unplaced,
                     false),
    DEFINE_PROP_UINT16("cfg-ones-bus", IntelVMDState, cfg_ones_bus,
                       VMD_CFG_ONES_BUS_NONE),
    DEFINE_PROP_UINT16("bad-header-bus", IntelVMDState, bad_header_bus,
                       VMD_CFG_ONES_BUS_NONE),
    DEFINE_PROP_BOOL("cap-loop", IntelVMDState, cap_loop, false),
    DEFINE_PROP_UINT64("shadow-raw1", IntelVMDState, shadow_raw1, 0),
    DEFINE_PROP_UINT64("shadow-raw2", IntelVMDState, shadow_raw2, 0),
    DEFINE_PROP_BOOL("msix", IntelVMDState, msix, true),
    DEFINE_PROP_UINT64("fuzz-seed", IntelVMDState, fuzz_seed, 0),
    DEFINE_PROP_UINT32("fuzz-rate", IntelVMDState, fuzz_rate, 0),
    DEFINE_PROP_UINT32("fuzz-after", IntelVMDState, fuzz_after, 0),
};

static void intel_vmd_class_init(ObjectClass *klass, void *data)
{
    DeviceClass *dc = DEVICE_CLASS(klass);
    PCIDeviceClass *k = PCI_DEVICE_CLASS(klass);

    k->realize = intel_vmd_realize;
    k->exit = intel_vmd_exit;
    k->config_read = intel_vmd_read_config;
    k->config_write = intel_vmd_write_config;
    k->vendor_id = PCI_VENDOR_ID_INTEL;
    k->device_id = 0x28c0;
    k->class_id = PCI_CLASS_STORAGE_RAID;
    k->revision = 0;
    dc->desc = "Intel Volume Management Device";
    dc->vmsd = &vmstate_intel_vmd;
    device_class_set_legacy_reset(dc, intel_vmd_reset);
    RESETTABLE_CLASS(klass)->phases.exit = intel_vmd_reset_exit;
    device_class_set_props(dc, intel_vmd_properties);
    set_bit(DEVICE_CATEGORY_BRIDGE, dc->categories);
    /* Its private bus is not hot-unpluggable with it */
    dc->hotpluggable = false;

    /* Hostile hardware, at run time: qom-set <id> <property> <value> */
    object_class_property_add_bool(klass, "removed", intel_vmd_get_removed,
                                   intel_vmd_set_removed);
    object_class_property_set_description(klass, "removed",
        "surprise removal: all-ones reads, writes, MSIs and child DMA "
        "dropped");
    object_class_property_add(klass, "inject-msi", "uint32", NULL,
                              intel_vmd_set_inject_msi, NULL, NULL);
    object_class_property_set_description(klass, "inject-msi",
        "act as if a child wrote an MSI to 0xfee00000 | vector << 12");
    object_class_property_add(klass, "flood-vector", "uint32",
                              intel_vmd_get_flood_vector,
                              intel_vmd_set_flood_vector, NULL, NULL);
    object_class_property_set_description(klass, "flood-vector",
        "the vector flood-count raises");
    object_class_property_add(klass, "flood-interval", "uint32",
                              intel_vmd_get_flood_interval,
                              intel_vmd_set_flood_interval, NULL, NULL);
    object_class_property_set_description(klass, "flood-interval",
        "microseconds between the MSIs of a flood (default 1000)");
    object_class_property_add(klass, "flood-count", "uint32",
                              intel_vmd_get_flood_count,
                              intel_vmd_set_flood_count, NULL, NULL);
    object_class_property_set_description(klass, "flood-count",
        "start a flood of this many MSIs to flood-vector (0 stops it); "
        "reads what is left");
}

static const TypeInfo intel_vmd_types[] = {
    {
        .name          = TYPE_INTEL_VMD_BUS,
        .parent        = TYPE_PCIE_BUS,
        .class_init    = intel_vmd_bus_class_init,
    },
    {
        .name          = TYPE_INTEL_VMD_HOST,
        .parent        = TYPE_PCI_HOST_BRIDGE,
        .instance_size = sizeof(IntelVMDHost),
        .class_init    = intel_vmd_host_class_init,
    },
    {
        .name          = TYPE_INTEL_VMD,
        .parent        = TYPE_PCI_DEVICE,
        .instance_size = sizeof(IntelVMDState),
        .instance_init = intel_vmd_instance_init,
        .class_init    = intel_vmd_class_init,
        .interfaces = (InterfaceInfo[]) {
            { INTERFACE_PCIE_DEVICE },
            { }
        },
    },
};

DEFINE_TYPES(intel_vmd_types)
