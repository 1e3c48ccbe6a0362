// SPDX-License-Identifier: GPL-2.0

//! KUnit tests of drivers/pci/controller/vmd_rs/layout.rs, compiled into
//! vmd_rs.ko as a child module of that file; they run when the module loads.

use kernel::prelude::*;

#[kunit_tests(vmd_rs_layout)]
mod tests {
    use super::super::*;

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
    fn second_root_bus() {
        let b = Buses::new(224, 32 * MIB, false).unwrap();
        // Firmware's split after the two root buses' own.
        assert_eq!(
            two_root_buses(&b, [0xf0e2, 0xfff1]),
            Ok([
                RootBus {
                    number: 224,
                    below: (0xe2, 0xf0)
                },
                RootBus {
                    number: BUS1_NUMBER,
                    below: (0xf1, 0xff)
                }
            ])
        );
        // The other way round is as good.
        assert_eq!(
            two_root_buses(&b, [0xfff1, 0xf0e2]).map(|r| r[1].below),
            Ok((0xe2, 0xf0))
        );
        // Ending before starting, on a root bus's own number, overlapping.
        assert!(two_root_buses(&b, [0xe2f0, 0xfff1]).is_err());
        assert!(two_root_buses(&b, [0xf0e1, 0xfff1]).is_err());
        assert!(two_root_buses(&b, [0xf0e2, 0xffe8]).is_err());
        // Past the CFGBAR's last bus.
        let small = Buses::new(224, 16 * MIB, false).unwrap();
        assert!(two_root_buses(&small, [0xe8e2, 0xf0e9]).is_err());

        // Root bus 80 is CFGBAR's second bus, which has no other name.
        let two = b.with_second_root();
        assert_eq!(two.cfg_offset(BUS1_NUMBER, 0x40, 0x18, 4), Some(0x14_0018));
        assert_eq!(two.cfg_offset(225, 0, 0, 4), None);
        assert_eq!(two.cfg_offset(224, 0, 0, 4), Some(0));
        assert_eq!(two.cfg_offset(0xf1, 0, 0, 4), Some(0x11 << 20));
        assert_eq!(b.cfg_offset(BUS1_NUMBER, 0, 0, 4), None);

        // Windows split where bus 1's starts; both parts non-empty.
        assert_eq!(
            split_window((0x1000, 0x1fff), 0x1800),
            Some([(0x1000, 0x17ff), (0x1800, 0x1fff)])
        );
        assert_eq!(split_window((0x1000, 0x1fff), 0x1000), None);
        assert_eq!(split_window((0x1000, 0x1fff), 0x2000), None);
        assert_eq!(
            split_window((0x1000, 0x1fff), 0x1fff),
            Some([(0x1000, 0x1ffe), (0x1fff, 0x1fff)])
        );
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
        assert_eq!(pick_vector(&[5, 0, 0, 0], 0, false, |_| true), 0);
        assert_eq!(pick_vector(&[5, 2, 1, 3], 0, true, |_| true), 2);
        assert_eq!(pick_vector(&[5, 1, 1, 1], 0, true, |_| true), 1);
        // Client part: vector 0 is the VMD's, 1 the shared one.
        assert_eq!(pick_vector(&[0, 0, 0], 1, false, |_| true), 1);
        assert_eq!(pick_vector(&[0, 9, 4, 2], 1, true, |_| true), 3);
        // Only one usable vector: everybody shares it.
        assert_eq!(pick_vector(&[0, 7], 1, true, |_| true), 1);
        assert_eq!(pick_vector(&[3], 0, true, |_| true), 0);
        // Near the interrupt's CPUs first, least-loaded among those.
        assert_eq!(pick_vector(&[0, 3, 1, 2], 0, true, |i| i == 1 || i == 3), 3);
        // None near: the least-loaded of all.
        assert_eq!(pick_vector(&[0, 3, 1, 2], 0, true, |_| false), 2);
        // Not NVMe: the first usable vector, near or not.
        assert_eq!(pick_vector(&[0, 3, 1, 2], 1, false, |i| i == 3), 1);
    }
}
