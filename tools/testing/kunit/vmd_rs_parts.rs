// SPDX-License-Identifier: GPL-2.0

//! KUnit tests of the part table in
//! drivers/pci/controller/vmd_rs/vmd_rs_main.rs, compiled into vmd_rs.ko as
//! a child module of that file; they run when the module loads.

use kernel::prelude::*;

#[kunit_tests(vmd_rs_parts)]
mod tests {
    use super::super::*;

    fn features_of(device: u32) -> Option<Features> {
        PARTS.iter().find(|(d, _)| *d == device).map(|(_, f)| *f)
    }

    #[test]
    fn fourteen_distinct_parts() {
        assert_eq!(PARTS.len(), 14);
        for (i, (a, _)) in PARTS.iter().enumerate() {
            assert!(PARTS[i + 1..].iter().all(|(b, _)| a != b));
        }
    }

    #[test]
    fn only_28c0_and_28c1_can_bypass() {
        for (device, features) in PARTS {
            assert_eq!(
                features.contains(Features::CAN_BYPASS_MSI_REMAP),
                *device == 0x28c0 || *device == 0x28c1
            );
        }
    }

    #[test]
    fn client_parts() {
        let client = features_of(0x9a0b).unwrap();
        assert!(client.contains(Features::OFFSET_FIRST_VECTOR));
        assert!(client.contains(Features::BIOS_PM_QUIRK));
        assert!(client.contains(Features::MEMBAR_SHADOW_VSCAP));
        assert!(!client.contains(Features::INTERRUPT_QUIRK));
        assert!(features_of(0x7d0b)
            .unwrap()
            .contains(Features::INTERRUPT_QUIRK));
        assert!(features_of(0xad0b)
            .unwrap()
            .contains(Features::INTERRUPT_QUIRK));
        assert_eq!(features_of(0x28c1).unwrap().bits(), 0x51);
        assert_eq!(features_of(0x28c0).unwrap().bits(), 0x13);
        assert_eq!(features_of(0x201d).unwrap().bits(), 0x04);
        assert_eq!(client.bits(), 0x2e);
    }
}
