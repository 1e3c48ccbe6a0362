// SPDX-License-Identifier: GPL-2.0

//! Rust driver for the Intel Volume Management Device (VMD).
//!
//! A VMD is a PCIe endpoint that hides a whole PCI domain behind it: the
//! domain's config space sits in BAR0 (CFGBAR, ECAM), its memory windows in
//! BAR2 and BAR4 (MEMBAR1/2), and its devices' MSIs are remapped onto the
//! VMD's own MSI-X vectors.  See Documentation/vmd_rs.rst.

use core::sync::atomic::{
    AtomicBool,
    Ordering, //
};

use kernel::{
    bindings,
    debugfs,
    device::{
        Bound,
        Core, //
    },
    io::{
        register::Array,
        Io, //
    },
    new_mutex,
    pci,
    prelude::*,
    str::CString,
    sync::{
        Arc,
        Mutex, //
    }, //
};

#[path = "../../../../rust/kernel_ext/mod.rs"]
mod kernel_ext;

mod ecam;
mod features;
mod layout;
mod msi;
mod regs;

use ecam::Ecam;
use features::Features;
use kernel_ext::{
    msi_parent::MsiParent,
    param::WordParam,
    pci_driver::PmDriver,
    pci_ext::{
        find_capability,
        set_dma_mask_64_or_32,
        xen_domain,
        EnabledDevice, //
    },
    pci_host::{
        close_bridge_windows,
        BusDevice,
        DomainNr,
        HostBridge,
        HostBridgeConfig,
        Window, //
    },
};
use layout::{
    Buses,
    MsiMode,
    RemapSetting, //
};
use msi::{
    Handlers,
    Remap, //
};

/// `msi_remap=`: how child MSIs reach the CPU.
static MSI_REMAP: WordParam = WordParam::new(&[c"auto", c"on", c"off"], 0);
module_word_param!(
    MSI_REMAP,
    "msi_remap",
    "auto: as the part and firmware allow (default); on: remap through the VMD's vectors; off: bypass (28C0/28C1 on bare metal only)"
);

/// `irq_affinity=`: whether a child interrupt meant for some CPUs rides a
/// vector handled on one of them.
static IRQ_AFFINITY: WordParam = WordParam::new(&[c"on", c"off"], 0);
module_word_param!(
    IRQ_AFFINITY,
    "irq_affinity",
    "on: an NVMe queue's interrupt rides a VMD vector handled on a CPU of its affinity where one is (default); off: the C driver's choice"
);

/// BAR numbers of the VMD's own resources.
const CFGBAR: u32 = 0;
const MEMBAR1: u32 = 2;
const MEMBAR2: u32 = 4;

/// "SHDW": a hypervisor's vendor capability with the host's MEMBAR addresses.
const VSCAP_SHDW: u32 = 0x5348_4457;

/// Declares the supported parts once: the PCI ID table and [`PARTS`].
macro_rules! vmd_parts {
    ($($device:literal => $features:expr,)*) => {
        /// Every part the C driver of Linux 7.3 supports, in its table's order.
        const PARTS: &[(u32, Features)] = &[$(($device, $features),)*];

        kernel::pci_device_table!(
            PCI_TABLE,
            <VmdDriver as pci::Driver>::IdInfo,
            [$((pci::DeviceId::from_id(pci::Vendor::INTEL, $device), $features),)*]
        );
    };
}

vmd_parts! {
    0x201d => Features::MEMBAR_SHADOW_VSCAP,
    0x28c0 => Features::MEMBAR_SHADOW
        .with(Features::BUS_RESTRICTIONS)
        .with(Features::CAN_BYPASS_MSI_REMAP),
    0x28c1 => Features::MEMBAR_SHADOW
        .with(Features::CAN_BYPASS_MSI_REMAP)
        .with(Features::USE_BIOS_INFO),
    0x467f => Features::CLIENT,
    0x4c3d => Features::CLIENT,
    0xa77f => Features::CLIENT,
    0x7d0b => Features::CLIENT.with(Features::INTERRUPT_QUIRK),
    0xad0b => Features::CLIENT.with(Features::INTERRUPT_QUIRK),
    0x9a0b => Features::CLIENT,
    0xb60b => Features::CLIENT,
    0xb06f => Features::CLIENT,
    0xb07f => Features::CLIENT,
    0xd70b => Features::CLIENT,
    0xd73b => Features::CLIENT,
}

/// The driver.
struct VmdDriver;

/// A bound VMD.
struct Vmd<'bound> {
    pdev: &'bound pci::Device<Bound>,
    features: Features,
    /// The domain; taken and torn down in `unbind`, as vmd.c's remove
    /// does, so that it goes while the PCI core holds the VMD awake for
    /// remove and before the VMD's MSI mode is restored.
    bus: Pin<KBox<Mutex<Domain<'bound>>>>,
    /// Remap mode: the VMD's vectors and their handlers, freed after the
    /// domain (its irq domain and children) is gone.
    vectors: Option<Handlers<'bound>>,
    /// debugfs: "info" here, "vectors" (remap mode) in the remap domain.
    _info: Pin<KBox<debugfs::File<Summary>>>,
    _dir: debugfs::Dir,
    /// Memory decoding and bus mastering, off again last.
    _enabled: EnabledDevice<'bound>,
}

/// What debugfs "info" shows: the VMD as probe set it up.
struct Summary {
    device: u16,
    domain: i32,
    features: Features,
    mode: MsiMode,
    guest: bool,
    buses: Buses,
    /// CPU start, end and CPU minus bus address of MEMBAR1/2's windows.
    windows: [(u64, u64, u64); 2],
    /// The second root bus, if the registers describe one: its layout.
    bus1: Option<Bus1>,
    /// Whether that root bus came up.
    bus1_up: AtomicBool,
}

impl Summary {
    fn show(&self, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        writeln!(f, "device: 8086:{:04x}", self.device)?;
        writeln!(f, "domain: {:04x}", self.domain)?;
        writeln!(f, "features: {:#x}", self.features.bits())?;
        writeln!(
            f,
            "mode: {}",
            match (self.mode, self.guest) {
                (MsiMode::Bypass, _) => "bypass",
                (MsiMode::Remap, false) => "remap",
                (MsiMode::Remap, true) => "remap (guest)",
            }
        )?;
        writeln!(f, "buses: {:02x}-{:02x}", self.buses.start, self.buses.end)?;
        let bus1 = self.bus1.filter(|_| self.bus1_up.load(Ordering::Relaxed));
        let mut windows = [self.windows.map(|(s, e, _)| (s, e)), [(0, 0); 2]];
        if let Some(bus1) = &bus1 {
            windows = bus1.windows;
            let [r0, r1] = bus1.roots;
            writeln!(
                f,
                "root buses: {:02x} ({:02x}-{:02x}), {:02x} ({:02x}-{:02x})",
                r0.number, r0.below.0, r0.below.1, r1.number, r1.below.0, r1.below.1
            )?;
        }
        let buses = if bus1.is_some() { 2 } else { 1 };
        for (b, bus_windows) in windows.iter().take(buses).enumerate() {
            for (i, (start, end)) in bus_windows.iter().enumerate() {
                writeln!(
                    f,
                    "{}membar{}: {:#x}-{:#x} offset {:#x}",
                    ["", "bus1 "][b],
                    i + 1,
                    start,
                    end,
                    self.windows[i].2
                )?;
            }
        }
        Ok(())
    }
}

/// The VMD's domain: config space through CFGBAR, MSIs through its vectors.
type VmdBus<'bound> = HostBridge<'bound, Arc<Ecam>, Remap>;

/// The domain until unbind takes it. A type of its own keeps the symbols
/// of the generic code around it within objtool's name length.
struct Domain<'bound>(Option<Pin<KBox<VmdBus<'bound>>>>);

/// Where firmware describes a child: the companion under the VMD's own at
/// (relative bus << 24 | devfn << 16 | 0x8000ffff), as vmd.c looks it up;
/// none beyond bus 31.
fn acpi_address(bus: u8, devfn: u8) -> Option<u64> {
    (bus <= 31).then(|| (u32::from(bus) << 24 | u32::from(devfn) << 16 | 0x8000_ffff).into())
}

impl Vmd<'_> {
    /// Tears the domain down, if it is still there, then turns remapping
    /// back on: some firmware does not on a soft reboot.
    fn remove_domain(&self) {
        let bus = self.bus.lock().0.take();
        if bus.is_some() {
            drop(bus);
            set_msi_remapping(self.pdev, self.features, true);
        }
    }
}

/// Only if unbind did not run: the driver core could not store the data
/// probe made.
impl Drop for Vmd<'_> {
    fn drop(&mut self) {
        self.remove_domain();
    }
}

/// Turns remapping of child MSIs on or off (VMCONFIG), where the part has
/// the switch: 28C1's firmware sets it and Linux leaves it alone.
fn set_msi_remapping(pdev: &pci::Device<Bound>, features: Features, enable: bool) {
    if features.contains(Features::USE_BIOS_INFO) {
        return;
    }
    pdev.config_space()
        .update(regs::VMCONFIG, |r| r.with_msi_remap_disable(!enable));
}

/// Client platforms' firmware leaves power management of the devices
/// behind the VMD to the OS: give them the platform's LTR (if firmware set
/// none) and enable every link power state.
fn bios_pm_quirk(dev: &BusDevice<'_>) {
    /// 3145728 ns: the maximum the platform needs (value 0x3, scale 4).
    const LTR: u32 = 0x1003;
    if let Some(pos) = dev.find_ext_capability(bindings::PCI_EXT_CAP_ID_LTR) {
        let reg = pos + bindings::PCI_LTR_MAX_SNOOP_LAT as u16;
        // Firmware's own value wins.
        if dev
            .read_config_dword(reg)
            .is_some_and(|v| v & (bindings::PCI_LTR_VALUE_MASK | bindings::PCI_LTR_SCALE_MASK) == 0)
        {
            // Max snoop latency in the low word, max no-snoop in the high.
            dev.write_config_dword(reg, LTR << 16 | LTR);
            dev_info!(dev.as_dev(), "VMD: Default LTR value set by driver\n");
        }
    }
    dev.enable_link_pm();
}

/// A client VMD's second root bus (bus range 3).
#[derive(Clone, Copy)]
struct Bus1 {
    /// The root buses.
    roots: [layout::RootBus; 2],
    /// Each root bus's part of the MEMBAR1 and MEMBAR2 child windows.
    windows: [[(u64, u64); 2]; 2],
}

/// What probe learns from the hardware before it creates the domain.
struct Layout {
    buses: Buses,
    /// First and last CPU address of the children's windows in MEMBAR1
    /// and MEMBAR2.
    windows: [(u64, u64); 2],
    /// CPU minus bus address of the MEMBAR1 and MEMBAR2 windows.
    offsets: [u64; 2],
    /// Start of the child window in MEMBAR2.
    membar2_window: u64,
    mode: MsiMode,
    /// The second root bus, if the VMD has one the registers describe.
    bus1: Option<Bus1>,
}

impl Layout {
    /// A non-zero offset means a passthrough guest's view of the VMD.
    fn in_guest(&self) -> bool {
        self.offsets != [0, 0]
    }
}

/// Reads the host's MEMBAR addresses from the "SHDW" capability, if any.
fn vscap_shadow(pdev: &pci::Device<Bound>) -> Result<Option<[u64; 2]>> {
    let Some(pos) = find_capability(pdev, bindings::PCI_CAP_ID_VNDR as u8) else {
        return Ok(None);
    };
    let pos = usize::from(pos);
    let config = pdev.config_space();
    if config.try_read32(pos + 4)? != VSCAP_SHDW {
        return Ok(None);
    }
    let quad = |off: usize| -> Result<u64> {
        Ok(u64::from(config.try_read32(pos + off)?)
            | (u64::from(config.try_read32(pos + off + 4)?) << 32))
    };
    Ok(Some([quad(8)?, quad(16)?]))
}

impl VmdDriver {
    /// Reads bus numbers, shadow registers and MSI capability as the part's
    /// features say they are found.
    fn layout(pdev: &pci::Device<Bound>, features: Features) -> Result<Layout> {
        let config = pdev.config_space();
        let cfgbar_size = pdev.resource_len(CFGBAR)?;
        let bars = [pdev.resource_start(MEMBAR1)?, pdev.resource_start(MEMBAR2)?];
        let lens = [pdev.resource_len(MEMBAR1)?, pdev.resource_len(MEMBAR2)?];
        let membar2_window = layout::membar2_window(features);
        let mut windows = [(0, 0); 2];
        for (i, skip) in [0, membar2_window].into_iter().enumerate() {
            windows[i] = layout::child_window(bars[i], lens[i], skip).ok_or_else(|| {
                if lens[i] == 0 {
                    // The PCI core also empties a BAR it could not place.
                    dev_err!(
                        pdev,
                        "MEMBAR{} (BAR{}) is not implemented or could not be assigned\n",
                        i + 1,
                        i * 2 + 2
                    );
                } else {
                    dev_err!(
                        pdev,
                        "MEMBAR{} of {} bytes at {:#x} leaves no window for child devices\n",
                        i + 1,
                        lens[i],
                        bars[i]
                    );
                }
                ENODEV
            })?;
        }
        // A VMD that is gone (surprise removal, a dead link) reads all-ones.
        let gone = |reg: &str| {
            dev_err!(pdev, "{} reads all-ones: the VMD does not respond\n", reg);
            ENODEV
        };
        let mut start = 0;
        let mut shadow = None;
        let mut two_roots = false;

        if features.contains(Features::USE_BIOS_INFO) {
            // Firmware's own registers in MEMBAR2; mapped only while read.
            let bar4 = pdev.iomap_region_sized::<{ regs::MEMBAR2_REGS_END }>(MEMBAR2, c"vmd_rs")?;
            let half = |i| u64::from(bar4.read(regs::BIOS_SHADOW::at(i)).value().get());
            let phys = [half(0) | half(1) << 32, half(2) | half(3) << 32];
            start = bar4.read(regs::BIOS_BASE_ID).bus().get() as u8;
            // A zero shadow register means firmware left no address.
            shadow = Some([
                if phys[0] != 0 { phys[0] } else { bars[0] },
                if phys[1] != 0 { phys[1] } else { bars[1] },
            ]);
        } else if features.contains(Features::MEMBAR_SHADOW) {
            let vmlock = config.read(regs::VMLOCK);
            if vmlock.into_raw() == u32::MAX {
                return Err(gone("VMLOCK"));
            }
            if vmlock.membar2_shadow().into() {
                let bar4 =
                    pdev.iomap_region_sized::<{ regs::MEMBAR2_REGS_END }>(MEMBAR2, c"vmd_rs")?;
                let half = |i| u64::from(bar4.read(regs::MB2_SHADOW::at(i)).value().get());
                shadow = Some([half(0) | half(1) << 32, half(2) | half(3) << 32]);
            }
        } else if features.contains(Features::MEMBAR_SHADOW_VSCAP) {
            shadow = vscap_shadow(pdev)?;
        }

        if features.contains(Features::BUS_RESTRICTIONS) {
            let vmcap = config.read(regs::VMCAP);
            if vmcap.into_raw() == u16::MAX {
                return Err(gone("VMCAP"));
            }
            if vmcap.bus_restrict().into() {
                let vmconfig = config.read(regs::VMCONFIG);
                if vmconfig.into_raw() == u16::MAX {
                    return Err(gone("VMCONFIG"));
                }
                let range = vmconfig.bus_range().get() as u8;
                start = layout::bus_start_from_vmconfig(range).ok_or_else(|| {
                    dev_err!(pdev, "unknown bus offset setting {}\n", range);
                    ENODEV
                })?;
                two_roots = range == layout::BUS_RANGE_TWO_ROOT_BUSES
                    && features.contains(Features::CLIENT);
            }
        }

        let absolute = features.contains(Features::USE_BIOS_INFO);
        let buses = Buses::new(start, cfgbar_size, absolute).ok_or_else(|| {
            dev_err!(
                pdev,
                "CFGBAR of {} bytes holds no bus of a domain starting at {:#x}\n",
                cfgbar_size,
                start
            );
            ENODEV
        })?;
        let mut offsets = [0, 0];
        if let Some(phys) = shadow {
            for i in 0..2 {
                // Garbage here would put the children's BARs anywhere.
                if !layout::shadow_plausible(phys[i], lens[i]) {
                    dev_err!(
                        pdev,
                        "shadow register reports {:#x} for MEMBAR{}: not where a {}-byte BAR can be\n",
                        phys[i],
                        i + 1,
                        lens[i]
                    );
                    return Err(ENODEV);
                }
                offsets[i] = layout::window_offset(bars[i], phys[i]);
            }
        }
        let bus1 = if two_roots {
            Self::bus1(pdev, &buses, windows, bars)
        } else {
            None
        };
        let mut layout = Layout {
            buses: if bus1.is_some() {
                buses.with_second_root()
            } else {
                buses
            },
            windows,
            offsets,
            membar2_window,
            mode: MsiMode::Remap,
            bus1,
        };
        let setting = RemapSetting::from_index(MSI_REMAP.get());
        // Under Xen, Xen owns the interrupt controller: child MSIs written
        // by Linux would not work, the VMD's own vectors do.
        let can_bypass = features.contains(Features::CAN_BYPASS_MSI_REMAP) && !xen_domain();
        // 28C1: firmware sets the mode and Linux leaves VMCONFIG alone.
        let fixed = if features.contains(Features::USE_BIOS_INFO) {
            let vmconfig = config.read(regs::VMCONFIG);
            if vmconfig.into_raw() == u16::MAX {
                return Err(gone("VMCONFIG"));
            }
            Some(if vmconfig.msi_remap_disable().into() {
                MsiMode::Bypass
            } else {
                MsiMode::Remap
            })
        } else {
            None
        };
        layout.mode =
            layout::msi_mode(setting, can_bypass, layout.in_guest(), fixed).ok_or_else(|| {
                dev_err!(
                    pdev,
                    "msi_remap={}, but {}: not binding\n",
                    ["auto", "on", "off"][MSI_REMAP.get().min(2)],
                    match fixed {
                        Some(MsiMode::Bypass) => "firmware set this VMD's child MSIs to bypass it",
                        Some(MsiMode::Remap) => "firmware set this VMD to remap child MSIs",
                        None if !can_bypass => "this part cannot bypass MSI remapping",
                        None => "a passthrough guest's VMD must remap child MSIs",
                    }
                );
                ENODEV
            })?;
        Ok(layout)
    }

    /// Reads where a client VMD's second root bus is (bus range 3). If the
    /// registers do not describe one that fits, the VMD is used as Linux
    /// 7.3 does (one root bus), with a message.
    fn bus1(
        pdev: &pci::Device<Bound>,
        buses: &Buses,
        windows: [(u64, u64); 2],
        bars: [u64; 2],
    ) -> Option<Bus1> {
        let config = pdev.config_space();
        let ranges = [
            config.read(regs::BUSRANGE0).value().get(),
            config.read(regs::BUSRANGE1).value().get(),
        ];
        let offsets = [
            u64::from(config.read(regs::BUS1_MEMBAR1_OFFSET).value().get()),
            u64::from(config.read(regs::BUS1_MEMBAR2_OFFSET_LO).value().get())
                | u64::from(config.read(regs::BUS1_MEMBAR2_OFFSET_HI).value().get()) << 32,
        ];
        let roots = match layout::two_root_buses(buses, ranges) {
            Ok(roots) => roots,
            Err(why) => {
                dev_warn!(
                    pdev,
                    "second root bus left out: BUSRANGE0 {:#06x}, BUSRANGE1 {:#06x}: {}\n",
                    ranges[0],
                    ranges[1],
                    why
                );
                return None;
            }
        };
        let mut split = [[(0, 0); 2]; 2];
        for i in 0..2 {
            let at = bars[i].checked_add(offsets[i]);
            let Some(parts) = at.and_then(|at| layout::split_window(windows[i], at)) else {
                dev_warn!(
                    pdev,
                    "second root bus left out: its MEMBAR{} offset {:#x} is not inside the child window {:#x}-{:#x}\n",
                    i + 1,
                    offsets[i],
                    windows[i].0,
                    windows[i].1
                );
                return None;
            };
            split[0][i] = parts[0];
            split[1][i] = parts[1];
        }
        Some(Bus1 {
            roots,
            windows: split,
        })
    }
}

impl pci::Driver for VmdDriver {
    type IdInfo = Features;
    type Data<'bound> = Vmd<'bound>;

    const ID_TABLE: pci::IdTable<Self::IdInfo> = &PCI_TABLE;

    fn probe<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
        info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        let features = *info.ok_or(ENODEV)?;

        let enabled = EnabledDevice::new(pdev)?;
        let layout = Self::layout(pdev, features)?;
        dev_info!(
            pdev,
            "VMD {:04x}: features {:#x}, buses {:02x}-{:02x}, MEMBAR2 window at +{:#x}, \
             offsets {:#x}/{:#x} ({}), MSI {}\n",
            pdev.device_id(),
            features.bits(),
            layout.buses.start,
            layout.buses.end,
            layout.membar2_window,
            layout.offsets[0],
            layout.offsets[1],
            ["bare metal", "guest"][usize::from(layout.in_guest())],
            ["remap", "bypass"][layout.mode as usize]
        );
        set_dma_mask_64_or_32(pdev).inspect_err(|_| dev_err!(pdev, "no usable DMA mask\n"))?;
        let cfgbar = pdev.iomap_region(CFGBAR, c"vmd_rs")?.into_devres()?;
        // One root bus with the whole windows, or two with a part each: the
        // bus numbers and MEMBAR1/2 windows of each.
        let (roots, n) = match &layout.bus1 {
            Some(b) => (
                [0, 1].map(|i| ((b.roots[i].number, b.roots[i].below.1), b.windows[i])),
                2,
            ),
            None => (
                [((layout.buses.start, layout.buses.end), layout.windows); 2],
                1,
            ),
        };
        let bound: &'bound pci::Device<Bound> = pdev;
        let mut configs = KVec::with_capacity(n, GFP_KERNEL)?;
        for (r, &(buses, part)) in roots[..n].iter().enumerate() {
            let mut windows = KVec::with_capacity(2, GFP_KERNEL)?;
            for (i, bar) in [MEMBAR1, MEMBAR2].into_iter().enumerate() {
                let name = [
                    [c"VMD MEMBAR1", c"VMD MEMBAR2"],
                    [c"VMD MEMBAR1 BUS1", c"VMD MEMBAR2 BUS1"],
                ][r][i];
                windows.push(
                    Window::in_bar(bound, bar, part[i], layout.offsets[i], name)?,
                    GFP_KERNEL,
                )?;
            }
            configs.push(
                HostBridgeConfig {
                    buses,
                    bus_name: [c"VMD CFGBAR", c"VMD CFGBAR BUS1"][r],
                    windows,
                    // The children's DMA and MSIs carry the VMD's requester
                    // ID (x86: `pci_real_dma_dev`, `is_vmd`).
                    dma_alias_parent: true,
                    // _OSC grants of the real host bridge, not a hypervisor's.
                    grants_of: (!layout.in_guest()).then_some(bound),
                    // vmd.c's numbering relative to bus 0's start; what
                    // firmware calls the second root bus's devices is not
                    // known, and relative to their own root bus they would
                    // take the first's companions.
                    acpi_address: (r == 0).then_some(acpi_address as fn(u8, u8) -> Option<u64>),
                    link_name: Some([c"domain", c"domain1"][r]),
                    // The root ports are not in firmware's view: resetting the
                    // hierarchy is the driver's job.
                    reset_after_scan: true,
                },
                GFP_KERNEL,
            )?;
        }
        let ecam = Arc::pin_init(Ecam::new(cfgbar, layout.buses), GFP_KERNEL)?;
        // Allocated before the domain exists: nothing may fail after it
        // does, with the MSI mode set for it.
        let slot = KBox::pin_init(new_mutex!(Domain(None)), GFP_KERNEL)?;
        // The domain number first: it names the irq domain (H6).
        let domain = DomainNr::new()?;
        let dir = debugfs::Dir::new(&CString::try_from_fmt(fmt!(
            "vmd_rs-{}",
            pdev.as_ref().name()
        ))?);
        let summary = Summary {
            device: pdev.device_id(),
            domain: domain.get(),
            features,
            mode: layout.mode,
            guest: layout.in_guest(),
            buses: layout.buses,
            windows: [0, 1].map(|i| (layout.windows[i].0, layout.windows[i].1, layout.offsets[i])),
            bus1: layout.bus1,
            bus1_up: AtomicBool::new(false),
        };
        let info = KBox::pin_init(
            dir.read_callback_file(c"info", Ok::<_, Error>(summary), &Summary::show),
            GFP_KERNEL,
        )?;
        let (remap, vectors) = match layout.mode {
            MsiMode::Remap => {
                let first_vector = features.contains(Features::OFFSET_FIRST_VECTOR);
                let flush = features.contains(Features::INTERRUPT_QUIRK);
                let affinity = IRQ_AFFINITY.get() == 0;
                let (remap, vectors) =
                    Remap::new(pdev, &ecam, first_vector.into(), flush, affinity, &dir)?;
                let config = remap.config(domain.get());
                let remap =
                    KBox::pin_init(MsiParent::new(Ok::<_, Error>(remap), config), GFP_KERNEL)?;
                set_msi_remapping(pdev, features, true);
                (Some(remap), Some(vectors))
            }
            MsiMode::Bypass => {
                set_msi_remapping(pdev, features, false);
                (None, None)
            }
        };
        let pm_quirk = features.contains(Features::BIOS_PM_QUIRK);
        let bus1 = layout.bus1;
        let bus = KBox::pin_init(
            HostBridge::new(
                bound.as_ref(),
                domain,
                Ok::<_, Error>(ecam),
                configs,
                remap,
                // Stale windows from a previous owner would collide with the
                // new layout. Through the accessors, under their lock (vmd.c
                // writes CFGBAR directly, without its lock).
                // Each root bus's own buses only: the other's devices may be
                // probing already.
                move |ecam, (root, last)| match bus1
                    .and_then(|b| b.roots.into_iter().find(|r| r.number == root))
                {
                    Some(r) => {
                        close_bridge_windows(ecam, root..=root);
                        close_bridge_windows(ecam, r.below.0..=r.below.1);
                    }
                    None => close_bridge_windows(ecam, root..=last),
                },
                move |dev| {
                    if pm_quirk {
                        bios_pm_quirk(dev)
                    }
                },
            ),
            GFP_KERNEL,
        )
        .inspect_err(|_| set_msi_remapping(pdev, features, true))?;
        if let Some(bus1) = &layout.bus1 {
            info.bus1_up
                .store(bus.root_bus_result(1).is_ok(), Ordering::Relaxed);
            match bus.root_bus_result(1) {
                Ok(()) => dev_info!(
                    pdev,
                    "Second root bus {:02x} (buses {:02x}-{:02x}) beside {:02x} ({:02x}-{:02x})\n",
                    bus1.roots[1].number,
                    bus1.roots[1].below.0,
                    bus1.roots[1].below.1,
                    bus1.roots[0].number,
                    bus1.roots[0].below.0,
                    bus1.roots[0].below.1
                ),
                Err(e) => dev_err!(
                    pdev,
                    "can't create the second root bus ({:?}): the devices behind it stay hidden\n",
                    e
                ),
            }
        }
        match bus.msi_parent().map(|m| m.ops().vectors()) {
            Some((n, irq)) => dev_info!(
                pdev,
                "Bound to PCI domain {:04x}, child MSIs remapped onto {} vectors (IRQ {}+)\n",
                bus.domain(),
                n,
                irq
            ),
            None => dev_info!(
                pdev,
                "Bound to PCI domain {:04x}, child MSIs bypass the VMD\n",
                bus.domain()
            ),
        }
        slot.lock().0 = Some(bus);
        Ok(Vmd {
            pdev: bound,
            features,
            bus: slot,
            vectors,
            _info: info,
            _dir: dir,
            _enabled: enabled,
        })
    }

    /// Tears the domain down in remove, in vmd.c's order: its devices and
    /// root bus, then the irq domain (`HostBridge` and `MsiParent` drop in
    /// that order), then the MSI mode. The PCI core holds a runtime PM
    /// reference for remove only; the vectors, like vmd.c's devm IRQs, go
    /// afterwards with the driver data.
    fn unbind<'bound>(_dev: &'bound pci::Device<Core<'_>>, this: Pin<&Vmd<'bound>>) {
        this.remove_domain();
    }
}

impl PmDriver for VmdDriver {
    /// Leaves the VMD as firmware expects it after a soft reboot or kexec:
    /// remapping on. The domain stays (H5: the C driver removes the irq
    /// domain here, under its children's live interrupt mappings).
    fn shutdown<'bound>(_dev: &'bound pci::Device<Core<'_>>, this: Pin<&Vmd<'bound>>) {
        set_msi_remapping(this.pdev, this.features, true);
    }

    /// The VMD's vector handlers go while CPUs go offline (their vectors
    /// would all move to the boot CPU).
    fn suspend<'bound>(_dev: &'bound pci::Device<Core<'_>>, this: Pin<&Vmd<'bound>>) -> Result {
        if let Some(vectors) = &this.vectors {
            vectors.free();
        }
        Ok(())
    }

    /// Firmware may have reset VMCONFIG: the mode is set again, then the
    /// handlers come back.
    fn resume<'bound>(_dev: &'bound pci::Device<Core<'_>>, this: Pin<&Vmd<'bound>>) -> Result {
        set_msi_remapping(this.pdev, this.features, this.vectors.is_some());
        match &this.vectors {
            Some(vectors) => vectors.request(),
            None => Ok(()),
        }
    }
}

kernel::module_driver! {
    <T>, kernel_ext::pci_driver::Adapter<T>, {
    type: VmdDriver,
    name: "vmd_rs",
    authors: ["The vmd_rs developers"],
    description: "Intel Volume Management Device driver (Rust)",
    license: "GPL v2",
}}

// The KUnit suite, with the project's other tests.
#[path = "../../../../tools/testing/kunit/vmd_rs_parts.rs"]
mod kunit;
