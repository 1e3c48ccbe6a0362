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

use features::{
    Features,
    PARTS, //
};

/// BAR numbers of the VMD's own resources.
const CFGBAR: u32 = 0;

/// ECAM gives every bus 1 MiB of config space.
const ECAM_BUS_SHIFT: u32 = 20;

kernel::pci_device_table!(
    PCI_TABLE,
    <VmdDriver as pci::Driver>::IdInfo,
    [
        (pci::DeviceId::from_id(pci::Vendor::INTEL, PARTS[0].device as u32), PARTS[0].features),
        (pci::DeviceId::from_id(pci::Vendor::INTEL, PARTS[1].device as u32), PARTS[1].features),
        (pci::DeviceId::from_id(pci::Vendor::INTEL, PARTS[2].device as u32), PARTS[2].features),
        (pci::DeviceId::from_id(pci::Vendor::INTEL, PARTS[3].device as u32), PARTS[3].features),
        (pci::DeviceId::from_id(pci::Vendor::INTEL, PARTS[4].device as u32), PARTS[4].features),
        (pci::DeviceId::from_id(pci::Vendor::INTEL, PARTS[5].device as u32), PARTS[5].features),
        (pci::DeviceId::from_id(pci::Vendor::INTEL, PARTS[6].device as u32), PARTS[6].features),
        (pci::DeviceId::from_id(pci::Vendor::INTEL, PARTS[7].device as u32), PARTS[7].features),
        (pci::DeviceId::from_id(pci::Vendor::INTEL, PARTS[8].device as u32), PARTS[8].features),
        (pci::DeviceId::from_id(pci::Vendor::INTEL, PARTS[9].device as u32), PARTS[9].features),
        (pci::DeviceId::from_id(pci::Vendor::INTEL, PARTS[10].device as u32), PARTS[10].features),
        (pci::DeviceId::from_id(pci::Vendor::INTEL, PARTS[11].device as u32), PARTS[11].features),
        (pci::DeviceId::from_id(pci::Vendor::INTEL, PARTS[12].device as u32), PARTS[12].features),
        (pci::DeviceId::from_id(pci::Vendor::INTEL, PARTS[13].device as u32), PARTS[13].features),
    ]
);

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
        dev_info!(pdev, "VMD domain support is not implemented yet: not binding\n");
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
