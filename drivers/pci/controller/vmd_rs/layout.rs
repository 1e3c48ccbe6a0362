// SPDX-License-Identifier: GPL-2.0

//! Where things are: bus numbers, config space offsets and memory windows.
//!
//! Pure arithmetic, kept apart from the hardware so that KUnit checks it.

use crate::features::Features;

/// ECAM gives every bus 1 MiB of config space.
pub(crate) const ECAM_BUS_SHIFT: u32 = 20;

/// Start of the child window in MEMBAR2: after the VMD's MSI-X table and PBA.
const MEMBAR2_WINDOW: u64 = 0x2000;
/// 28C0-style shadow registers (two 64-bit addresses) at the window's start.
const MEMBAR2_SHADOW_SIZE: u64 = 16;
/// 28C1 keeps firmware registers in MEMBAR2 up to here.
const MEMBAR2_WINDOW_28C1: u64 = 0x30d0;

/// The first bus number of the VMD domain, from VMCONFIG bits 9:8.
///
/// Returns [`None`] for a value Linux does not know (none is left: 2 and 3
/// both mean 224, as in the C driver; on client parts 3 also means a
/// second root bus, see [`two_root_buses`]).
pub(crate) fn bus_start_from_vmconfig(bus_range: u8) -> Option<u8> {
    match bus_range {
        0 => Some(0),
        1 => Some(128),
        2 | 3 => Some(224),
        _ => None,
    }
}

/// VMCONFIG's bus range value with which a client part has a second root
/// bus (Arrow Lake's, for the PCH's ports).
pub(crate) const BUS_RANGE_TWO_ROOT_BUSES: u8 = 3;

/// The second root bus's number: the primary bus its root ports report.
pub(crate) const BUS1_NUMBER: u8 = 0x80;

/// Where the second root bus's config space is in CFGBAR: its second bus.
const BUS1_ECAM: u8 = 1;

/// A root bus of a domain with two.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RootBus {
    /// Its own number.
    pub(crate) number: u8,
    /// The first and last bus below its ports.
    pub(crate) below: (u8, u8),
}

/// The two root buses, from BUSRANGE0/1 (start in bits 7:0, end in 15:8:
/// the buses firmware numbered below each root bus's ports) of a domain of
/// `buses` whose first two are the root buses' own.
///
/// The second root bus is numbered as its ports report it (0x80), so that
/// the PCI core finds their primary bus number right and keeps firmware's
/// numbering. Returns what is inconsistent otherwise.
pub(crate) fn two_root_buses(
    buses: &Buses,
    ranges: [u16; 2],
) -> core::result::Result<[RootBus; 2], &'static str> {
    let [(s0, e0), (s1, e1)] = ranges.map(|r| ((r & 0xff) as u8, (r >> 8) as u8));
    if s0 > e0 || s1 > e1 {
        return Err("a bus range ends before it starts");
    }
    let first = u16::from(buses.start) + 2;
    if u16::from(s0.min(s1)) < first || e0.max(e1) > buses.end {
        return Err("a bus range is outside the CFGBAR's buses after the two root buses");
    }
    if s0 <= e1 && s1 <= e0 {
        return Err("the bus ranges overlap");
    }
    Ok([
        RootBus {
            number: buses.start,
            below: (s0, e0),
        },
        RootBus {
            number: BUS1_NUMBER,
            below: (s1, e1),
        },
    ])
}

/// A child window split at CPU address `at` into the first root bus's part
/// (below) and the second's; [`None`] unless both parts are non-empty.
pub(crate) fn split_window((start, end): (u64, u64), at: u64) -> Option<[(u64, u64); 2]> {
    (at > start && at <= end).then(|| [(start, at - 1), (at, end)])
}

/// The bus numbers of a VMD domain and how they map onto CFGBAR.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Buses {
    /// First bus number of the domain.
    pub(crate) start: u8,
    /// Last bus number of the domain (inclusive).
    pub(crate) end: u8,
    /// Whether CFGBAR is indexed by absolute bus number (28C1) rather than
    /// from `start`.
    absolute: bool,
    /// Whether the domain's second bus is a second root bus, numbered
    /// [`BUS1_NUMBER`].
    second_root: bool,
    /// Size of CFGBAR in bytes.
    cfgbar_size: u64,
}

impl Buses {
    /// The domain's buses for a CFGBAR of `cfgbar_size` bytes.
    ///
    /// Returns [`None`] when CFGBAR cannot hold a single bus, or, for
    /// absolute ECAM indexing, not even the first bus of the domain.
    pub(crate) fn new(start: u8, cfgbar_size: u64, absolute: bool) -> Option<Self> {
        let cfg_buses = cfgbar_size >> ECAM_BUS_SHIFT;
        let first_ecam = if absolute { u64::from(start) } else { 0 };
        if cfg_buses <= first_ecam {
            return None;
        }
        let last = if absolute {
            cfg_buses - 1
        } else {
            u64::from(start) + cfg_buses - 1
        };
        Some(Self {
            start,
            end: last.min(0xff) as u8,
            absolute,
            second_root: false,
            cfgbar_size,
        })
    }

    /// The same domain with its second bus a second root bus, known by
    /// [`BUS1_NUMBER`] (and no longer by its own number).
    pub(crate) fn with_second_root(self) -> Self {
        Self {
            second_root: true,
            ..self
        }
    }

    /// Number of buses in the domain.
    pub(crate) fn count(&self) -> u32 {
        u32::from(self.end) - u32::from(self.start) + 1
    }

    /// Offset in CFGBAR of `len` bytes at `reg` of `devfn` on `bus`.
    ///
    /// Returns [`None`] unless the whole access lies in CFGBAR and in the
    /// domain. (The C driver refuses an access ending exactly at the end of
    /// CFGBAR; this does not.)
    pub(crate) fn cfg_offset(&self, bus: u8, devfn: u8, reg: u16, len: u8) -> Option<usize> {
        if reg > 0xfff {
            return None;
        }
        let ecam_bus = if self.second_root && bus == BUS1_NUMBER {
            BUS1_ECAM
        } else if bus < self.start
            || bus > self.end
            || (self.second_root && bus - self.start == BUS1_ECAM)
        {
            return None;
        } else if self.absolute {
            bus
        } else {
            bus - self.start
        };
        let offset =
            (u64::from(ecam_bus) << ECAM_BUS_SHIFT) | (u64::from(devfn) << 12) | u64::from(reg);
        if offset + u64::from(len) > self.cfgbar_size {
            return None;
        }
        usize::try_from(offset).ok()
    }
}

/// Where the child window starts in MEMBAR2.
pub(crate) fn membar2_window(features: Features) -> u64 {
    if features.contains(Features::USE_BIOS_INFO) {
        MEMBAR2_WINDOW_28C1
    } else if features.contains(Features::MEMBAR_SHADOW) {
        MEMBAR2_WINDOW + MEMBAR2_SHADOW_SIZE
    } else {
        MEMBAR2_WINDOW
    }
}

/// The offset between a window's CPU address and its bus address, given
/// the BAR's CPU address and the host physical address a shadow register
/// reports (low flag bits included, as the BAR register holds them).
///
/// Bus address = CPU address - offset, modulo 2^64, as `pci_add_resource_offset`
/// applies it; 0 on bare metal, where both addresses agree.
pub(crate) fn window_offset(cpu: u64, shadow: u64) -> u64 {
    cpu.wrapping_sub(shadow & !0xf)
}

/// The child window in a BAR at `start` of `len` bytes whose first `skip`
/// bytes are the VMD's own: its first and last CPU address.
///
/// Returns [`None`] when nothing is left for children (an unimplemented
/// BAR has length 0) or the BAR would end past the address space.
pub(crate) fn child_window(start: u64, len: u64, skip: u64) -> Option<(u64, u64)> {
    if len <= skip {
        return None;
    }
    Some((start.checked_add(skip)?, start.checked_add(len - 1)?))
}

/// Whether `shadow` (a shadow register, low flag bits included) can be
/// the host's address of a BAR of `len` bytes: BARs are naturally aligned.
pub(crate) fn shadow_plausible(shadow: u64, len: u64) -> bool {
    len.is_power_of_two() && (shadow & !0xf) & (len - 1) == 0
}

/// The vector a new child interrupt should use, given how many children
/// each vector already serves.
///
/// Vectors before `first` are the VMD's own. NVMe controllers, whose
/// queues want their own vectors, get the least-loaded one after the first
/// usable vector, among those `near` the CPUs the interrupt is for if any
/// is; everything else shares the first usable vector. With `near` always
/// true, this is vmd.c's choice.
pub(crate) fn pick_vector(
    loads: &[u32],
    first: usize,
    nvme: bool,
    near: impl Fn(usize) -> bool,
) -> usize {
    if !nvme || loads.len() <= first + 1 {
        return first;
    }
    let least = |ok: &dyn Fn(usize) -> bool| {
        let candidates = loads.iter().enumerate().skip(first + 1);
        // The first of equally loaded ones, as vmd.c.
        candidates
            .filter(|(i, _)| ok(*i))
            .min_by_key(|(_, l)| **l)
            .map(|(i, _)| i)
    };
    least(&near)
        .or_else(|| least(&|_| true))
        .unwrap_or(first + 1)
}

/// How child MSIs reach the CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum MsiMode {
    /// Through the VMD's own vectors, demultiplexed by the driver.
    Remap,
    /// Straight to the CPU.
    Bypass,
}

/// The `msi_remap=` module parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RemapSetting {
    /// As the C driver: bypass where the part can and is not a guest's.
    Auto,
    /// Always remap (published measurements favour it with many drives).
    On,
    /// Always bypass; impossible on some parts and in guests.
    Off,
}

impl RemapSetting {
    /// From the parameter's word index (auto, on, off).
    pub(crate) fn from_index(i: usize) -> Self {
        match i {
            1 => Self::On,
            2 => Self::Off,
            _ => Self::Auto,
        }
    }
}

/// The MSI mode for a VMD, or [`None`] if the setting asks for what the VMD
/// cannot do. A passthrough guest's VMD must remap: the host's interrupt
/// remapping does not know the children. `fixed` is the mode firmware set
/// where Linux may not change it (28C1).
pub(crate) fn msi_mode(
    setting: RemapSetting,
    can_bypass: bool,
    in_guest: bool,
    fixed: Option<MsiMode>,
) -> Option<MsiMode> {
    let bypass = can_bypass && !in_guest;
    let wanted = match setting {
        // vmd.c assumes bypass on 28C1 whatever firmware set.
        RemapSetting::Auto => fixed.unwrap_or(if bypass {
            MsiMode::Bypass
        } else {
            MsiMode::Remap
        }),
        RemapSetting::On => MsiMode::Remap,
        RemapSetting::Off => MsiMode::Bypass,
    };
    if (wanted == MsiMode::Bypass && !bypass) || fixed.is_some_and(|f| f != wanted) {
        return None;
    }
    Some(wanted)
}

// The KUnit suite, with the project's other tests.
#[path = "../../../../tools/testing/kunit/vmd_rs_layout.rs"]
mod kunit;
