// SPDX-License-Identifier: GPL-2.0

//! Where things are: bus numbers, config space offsets and memory windows.
//!
//! Pure arithmetic, kept apart from the hardware so that KUnit checks it.

use kernel::prelude::*;

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
/// both mean 224, as in the C driver).
pub(crate) fn bus_start_from_vmconfig(bus_range: u8) -> Option<u8> {
    match bus_range {
        0 => Some(0),
        1 => Some(128),
        2 | 3 => Some(224),
        _ => None,
    }
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
            cfgbar_size,
        })
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
        if bus < self.start || bus > self.end || reg > 0xfff {
            return None;
        }
        let ecam_bus = if self.absolute { bus } else { bus - self.start };
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
/// usable vector; everything else shares the first usable vector.
pub(crate) fn pick_vector(loads: &[u32], first: usize, nvme: bool) -> usize {
    if !nvme || loads.len() <= first + 1 {
        return first;
    }
    let mut best = first + 1;
    for (i, load) in loads.iter().enumerate().skip(first + 1) {
        if *load < loads[best] {
            best = i;
        }
    }
    best
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

#[kunit_tests(vmd_rs_layout)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn bus_start_decode() {
        assert_eq!(bus_start_from_vmconfig(0), Some(0));
        assert_eq!(bus_start_from_vmconfig(1), Some(128));
        assert_eq!(bus_start_from_vmconfig(2), Some(224));
        assert_eq!(bus_start_from_vmconfig(3), Some(224));
        assert_eq!(bus_start_from_vmconfig(4), None);
    }

    #[test]
    fn bus_ranges() {
        assert_eq!(Buses::new(0, 32 * MIB, false).unwrap().end, 31);
        assert_eq!(Buses::new(128, 32 * MIB, false).unwrap().end, 159);
        // 224 + 32 buses would pass 255: clamped.
        let b = Buses::new(224, 32 * MIB, false).unwrap();
        assert_eq!((b.start, b.end, b.count()), (224, 255, 32));
        assert_eq!(Buses::new(0, 256 * MIB, false).unwrap().count(), 256);
        // Less than one bus of CFGBAR.
        assert!(Buses::new(0, MIB / 2, false).is_none());
        // 28C1: absolute numbers, so bus 224 needs a 225 MiB CFGBAR.
        assert!(Buses::new(224, 32 * MIB, true).is_none());
        assert_eq!(Buses::new(0, 32 * MIB, true).unwrap().end, 31);
    }

    #[test]
    fn ecam_offsets() {
        let b = Buses::new(128, 32 * MIB, false).unwrap();
        assert_eq!(b.cfg_offset(128, 0, 0, 4), Some(0));
        assert_eq!(b.cfg_offset(129, 0x08, 0x10, 4), Some(0x10_8010));
        assert_eq!(b.cfg_offset(127, 0, 0, 4), None);
        assert_eq!(b.cfg_offset(160, 0, 0, 4), None);
        assert_eq!(b.cfg_offset(128, 0, 0x1000, 1), None);
        // The very last dword of CFGBAR is reachable.
        assert_eq!(
            b.cfg_offset(159, 0xff, 0xffc, 4),
            Some(32 * MIB as usize - 4)
        );
        let abs = Buses::new(0, 32 * MIB, true).unwrap();
        assert_eq!(abs.cfg_offset(3, 0, 0, 4), Some(3 << 20));
    }

    #[test]
    fn windows() {
        assert_eq!(membar2_window(Features::MEMBAR_SHADOW_VSCAP), 0x2000);
        assert_eq!(membar2_window(Features::MEMBAR_SHADOW), 0x2010);
        assert_eq!(
            membar2_window(Features::MEMBAR_SHADOW.with(Features::USE_BIOS_INFO)),
            0x30d0
        );
        assert_eq!(window_offset(0xf000_0000, 0xf000_0004), 0);
        assert_eq!(window_offset(0xf000_0000, 0xc000_0000), 0x3000_0000);
        // A host address above the guest's: the offset wraps.
        assert_eq!(
            window_offset(0x1_0000_0000, 0x40_0000_000c),
            0x1_0000_0000u64.wrapping_sub(0x40_0000_0000)
        );
        assert_eq!(
            child_window(0xf000_0000, 0x100_0000, 0),
            Some((0xf000_0000, 0xf0ff_ffff))
        );
        assert_eq!(
            child_window(0xf000_0000, 0x4000, 0x2010),
            Some((0xf000_2010, 0xf000_3fff))
        );
        // Not implemented, nothing left after the registers, past the end.
        assert_eq!(child_window(0, 0, 0), None);
        assert_eq!(child_window(0xf000_0000, 0x2000, 0x2000), None);
        assert_eq!(child_window(u64::MAX - 0xfff, 0x2000, 0), None);
        assert!(shadow_plausible(0xc000_0000, 0x200_0000));
        assert!(shadow_plausible(0x40_0000_000c, 0x400_0000));
        assert!(!shadow_plausible(u64::MAX, 0x80_0000));
        assert!(!shadow_plausible(0xfff, 0x10_0000));
        assert!(!shadow_plausible(0xc000_0000, 0));
        // The last place a 32 MiB BAR can be.
        assert!(shadow_plausible(0xffff_ffff_fe00_0000, 0x200_0000));
    }

    #[test]
    fn msi_modes() {
        use MsiMode::*;
        use RemapSetting::*;
        // auto: the C driver's choice, or what firmware fixed.
        assert_eq!(msi_mode(Auto, true, false, None), Some(Bypass));
        assert_eq!(msi_mode(Auto, true, true, None), Some(Remap));
        assert_eq!(msi_mode(Auto, false, false, None), Some(Remap));
        assert_eq!(msi_mode(Auto, true, false, Some(Bypass)), Some(Bypass));
        assert_eq!(msi_mode(Auto, true, false, Some(Remap)), Some(Remap));
        assert_eq!(msi_mode(Auto, true, true, Some(Bypass)), None);
        // on: possible unless firmware fixed bypass.
        assert_eq!(msi_mode(On, true, false, None), Some(Remap));
        assert_eq!(msi_mode(On, false, true, None), Some(Remap));
        assert_eq!(msi_mode(On, true, false, Some(Bypass)), None);
        // off: only where bypass is.
        assert_eq!(msi_mode(Off, true, false, None), Some(Bypass));
        assert_eq!(msi_mode(Off, true, true, None), None);
        assert_eq!(msi_mode(Off, false, false, None), None);
        assert_eq!(msi_mode(Off, true, false, Some(Remap)), None);
        assert_eq!(RemapSetting::from_index(0), Auto);
        assert_eq!(RemapSetting::from_index(1), On);
        assert_eq!(RemapSetting::from_index(2), Off);
    }

    #[test]
    fn vector_choice() {
        // Server part: vector 0 shared by non-NVMe, NVMe spread from 1.
        assert_eq!(pick_vector(&[5, 0, 0, 0], 0, false), 0);
        assert_eq!(pick_vector(&[5, 2, 1, 3], 0, true), 2);
        assert_eq!(pick_vector(&[5, 1, 1, 1], 0, true), 1);
        // Client part: vector 0 is the VMD's, 1 the shared one.
        assert_eq!(pick_vector(&[0, 0, 0], 1, false), 1);
        assert_eq!(pick_vector(&[0, 9, 4, 2], 1, true), 3);
        // Only one usable vector: everybody shares it.
        assert_eq!(pick_vector(&[0, 7], 1, true), 1);
        assert_eq!(pick_vector(&[3], 0, true), 0);
    }
}
