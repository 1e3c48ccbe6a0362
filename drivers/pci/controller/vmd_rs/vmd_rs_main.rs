// SPDX-License-Identifier: GPL-2.0

//! Rust driver for the Intel Volume Management Device (VMD).
//!
//! A VMD is a PCIe endpoint that hides a whole PCI domain behind it: the
//! domain's config space sits in BAR0 (CFGBAR, ECAM), its memory windows in
//! BAR2 and BAR4 (MEMBAR1/2), and its devices' MSIs are remapped onto the
//! VMD's own MSI-X vectors.  See Documentation/vmd_rs.rst.

use kernel::{
    device::Core,
    io::Io,
    pci,
    prelude::*, //
};

mod features;

use features::Features;

/// BAR numbers of the VMD's own resources.
const CFGBAR: u32 = 0;

/// ECAM gives every bus 1 MiB of config space.
const ECAM_BUS_SHIFT: u32 = 20;

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

/// Per-device state (none yet: probe refuses until the VMD domain exists).
struct Vmd;

impl pci::Driver for VmdDriver {
    type IdInfo = Features;
    type Data<'bound> = Vmd;

    const ID_TABLE: pci::IdTable<Self::IdInfo> = &PCI_TABLE;

    fn probe<'bound>(
        pdev: &'bound pci::Device<Core<'_>>,
        info: Option<&'bound Self::IdInfo>,
    ) -> impl PinInit<Self::Data<'bound>, Error> + 'bound {
        let features = *info.ok_or(ENODEV)?;

        pdev.enable_device_mem()?;
        let cfgbar = pdev.iomap_region(CFGBAR, c"vmd_rs")?;
        let buses = cfgbar.size() >> ECAM_BUS_SHIFT;
        dev_info!(
            pdev,
            "VMD {:04x}: features {:#x}, CFGBAR {} KiB ({} buses), vendor/device {:08x}\n",
            pdev.device_id(),
            features.bits(),
            cfgbar.size() >> 10,
            buses,
            cfgbar.try_read32(0).unwrap_or(!0),
        );
        dev_info!(
            pdev,
            "MSI remap bypass {}\n",
            if features.contains(Features::CAN_BYPASS_MSI_REMAP) {
                "possible"
            } else {
                "impossible"
            }
        );
        dev_info!(
            pdev,
            "VMD domain support is not implemented yet: not binding\n"
        );
        Err::<Vmd, Error>(ENODEV)
    }
}

kernel::module_pci_driver! {
    type: VmdDriver,
    name: "vmd_rs",
    authors: ["The vmd_rs developers"],
    description: "Intel Volume Management Device driver (Rust)",
    license: "GPL v2",
}

#[kunit_tests(vmd_rs_parts)]
mod tests {
    use super::*;

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
