// SPDX-License-Identifier: GPL-2.0

//! Config space of the VMD domain: ECAM in CFGBAR.

use kernel::{
    io::Io,
    pci,
    prelude::*, //
};

use crate::{
    kernel_ext::{
        pci_host::ConfigOps,
        sync::RawSpinLockIrq, //
    },
    layout::Buses,
    new_raw_spinlock_irq,
};

/// CFGBAR and the lock that serialises its use.
///
/// Owns no borrow: the vector handlers that flush through it and the host
/// bridge's accessors may be reached until unbind, after which the mapping
/// is revoked and every access reads as absent.
#[pin_data]
pub(crate) struct Ecam {
    cfgbar: pci::DevresBar,
    buses: Buses,
    /// Some VMDs deadlock the CPU on concurrent config accesses: all go
    /// through this lock, the domain reset's included.
    #[pin]
    lock: RawSpinLockIrq<()>,
}

impl Ecam {
    /// ECAM over `cfgbar` for the domain's `buses`.
    pub(crate) fn new(cfgbar: pci::DevresBar, buses: Buses) -> impl PinInit<Self, Error> {
        try_pin_init!(Self {
            cfgbar,
            buses,
            lock <- new_raw_spinlock_irq!((), "vmd_rs_cfg"),
        })
    }

    fn access(&self, off: usize, len: u8, value: Option<u32>) -> Option<u32> {
        let guard = self.cfgbar.try_access()?;
        let bar: &pci::Bar<'_> = &guard;
        let _guard = self.lock.lock();
        // The VMD turns config writes into posted writes: reading back makes
        // them complete before the write returns, as callers expect.
        match (len, value) {
            (1, Some(v)) => bar.try_write8(v as u8, off).ok()?,
            (2, Some(v)) => bar.try_write16(v as u16, off).ok()?,
            (4, Some(v)) => bar.try_write32(v, off).ok()?,
            _ => {}
        }
        match len {
            1 => bar.try_read8(off).ok().map(u32::from),
            2 => bar.try_read16(off).ok().map(u32::from),
            4 => bar.try_read32(off).ok(),
            _ => None,
        }
    }
}

impl ConfigOps for Ecam {
    fn read(&self, bus: u8, devfn: u8, reg: u16, len: u8) -> Option<u32> {
        let off = self.buses.cfg_offset(bus, devfn, reg, len)?;
        self.access(off, len, None)
    }

    fn write(&self, bus: u8, devfn: u8, reg: u16, len: u8, value: u32) -> bool {
        match self.buses.cfg_offset(bus, devfn, reg, len) {
            Some(off) => self.access(off, len, Some(value)).is_some(),
            None => false,
        }
    }
}
