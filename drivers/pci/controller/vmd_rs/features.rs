// SPDX-License-Identifier: GPL-2.0

//! The VMD parts this driver supports and how they differ.

/// Behaviour that differs between VMD parts, one bit a difference.
///
/// The values match `enum vmd_features` in the C driver so that a
/// `dev_info!` of the raw value reads the same in both drivers' logs.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(crate) struct Features(u32);

impl Features {
    /// VMLOCK bit 1 enables MEMBAR2 shadow registers with the host's MEMBAR addresses.
    pub(crate) const MEMBAR_SHADOW: Self = Self(1 << 0);
    /// VMCAP/VMCONFIG restrict the bus numbers to start at 0, 128 or 224.
    pub(crate) const BUS_RESTRICTIONS: Self = Self(1 << 1);
    /// The host's MEMBAR addresses sit in a vendor-specific capability ("SHDW").
    pub(crate) const MEMBAR_SHADOW_VSCAP: Self = Self(1 << 2);
    /// MSI-X vector 0 is kept for the VMD itself, not used for child interrupts.
    pub(crate) const OFFSET_FIRST_VECTOR: Self = Self(1 << 3);
    /// Child MSIs may bypass the VMD and go straight to the CPU.
    pub(crate) const CAN_BYPASS_MSI_REMAP: Self = Self(1 << 4);
    /// Firmware leaves ASPM and LTR of the children unset: the driver sets them.
    pub(crate) const BIOS_PM_QUIRK: Self = Self(1 << 5);
    /// Firmware stores the bus start and shadow registers in MEMBAR2 (28C1).
    pub(crate) const USE_BIOS_INFO: Self = Self(1 << 6);
    /// Interrupt ordering erratum (MTL016, ARL004): read from the child
    /// before handling its interrupt.
    pub(crate) const INTERRUPT_QUIRK: Self = Self(1 << 7);

    /// What every client (laptop/desktop) part has.
    pub(crate) const CLIENT: Self = Self::MEMBAR_SHADOW_VSCAP
        .with(Self::BUS_RESTRICTIONS)
        .with(Self::OFFSET_FIRST_VECTOR)
        .with(Self::BIOS_PM_QUIRK);

    /// The union of `self` and `other`.
    pub(crate) const fn with(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }

    /// Whether every bit of `other` is in `self`.
    pub(crate) const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The raw bits, as the C driver's `driver_data`.
    pub(crate) const fn bits(self) -> u32 {
        self.0
    }
}
