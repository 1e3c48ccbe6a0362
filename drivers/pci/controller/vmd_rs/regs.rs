// SPDX-License-Identifier: GPL-2.0

//! VMD registers: in the VMD's own config space and in MEMBAR2.

use kernel::io::register;

register! {
    /// VMD capabilities.
    pub(crate) VMCAP(u16) @ 0x40 {
        /// The bus numbers may be restricted (see [`VMCONFIG::bus_range`]).
        0:0 bus_restrict;
    }

    /// VMD configuration, as firmware left it.
    pub(crate) VMCONFIG(u16) @ 0x44 {
        /// Bus numbers start at 0, 128 or 224 (2 and 3).
        9:8 bus_range;
        /// Child MSIs bypass remapping (parts that can bypass only).
        1:1 msi_remap_disable;
    }

    /// VMD lock register.
    pub(crate) VMLOCK(u32) @ 0x70 {
        /// MEMBAR2 shadow registers hold the host's MEMBAR addresses.
        1:1 membar2_shadow;
    }

    /// Client parts with a second root bus (bus range 3): the buses
    /// firmware numbered below the first root bus's ports.
    pub(crate) BUSRANGE0(u16) @ 0xc8 {
        15:0 value;
    }

    /// The same for the second root bus.
    pub(crate) BUSRANGE1(u16) @ 0xcc {
        15:0 value;
    }

    /// Offset in MEMBAR1 where the second root bus's window starts.
    pub(crate) BUS1_MEMBAR1_OFFSET(u32) @ 0xd0 {
        31:0 value;
    }

    /// Offset in MEMBAR2 where the second root bus's window starts: low half.
    pub(crate) BUS1_MEMBAR2_OFFSET_LO(u32) @ 0xd8 {
        31:0 value;
    }

    /// High half.
    pub(crate) BUS1_MEMBAR2_OFFSET_HI(u32) @ 0xdc {
        31:0 value;
    }
}

// MEMBAR2 registers.  MMIO regions guarantee 32-bit alignment only, so the
// 64-bit registers are read as two halves (they do not change under us).
register! {
    /// 28C0-style shadows of the host physical addresses of MEMBAR1 (0, 1)
    /// and MEMBAR2 (2, 3), low half first.
    pub(crate) MB2_SHADOW(u32)[4] @ 0x2000 {
        31:0 value;
    }

    /// 28C1: the same, stored by firmware.
    pub(crate) BIOS_SHADOW(u32)[4] @ 0x2818 {
        31:0 value;
    }

    /// 28C1: the base of the requester-ID hiding range.
    pub(crate) BIOS_BASE_ID(u32) @ 0x2840 {
        /// Bus number of the first bus of the domain.
        15:8 bus;
    }
}

/// The part of MEMBAR2 that holds the registers this driver reads (a power
/// of two, as MMIO regions need for 64-bit accesses).
pub(crate) const MEMBAR2_REGS_END: usize = 0x4000;
