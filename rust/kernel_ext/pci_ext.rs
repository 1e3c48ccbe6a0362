// SPDX-License-Identifier: GPL-2.0

//! PCI device helpers the kernel crate of 7.3 lacks.
//!
//! C header: [`include/linux/pci.h`](srctree/include/linux/pci.h)
//!
//! Not host-bridge code: what any PCI driver may need at probe (a device
//! enable undone on unbind, a DMA mask with a fallback, a bounded
//! capability lookup) and the platform question of running under Xen.

use core::ptr;

use kernel::{
    bindings,
    device::{
        Bound,
        Core, //
    },
    pci,
    prelude::*, //
};

use crate::kernel_ext::bindings as ext;

/// The `struct pci_dev` of `pdev`, for the C calls the kernel crate does
/// not wrap: `pci::Device` is a transparent wrapper of it.
pub(crate) fn raw_pci_dev(pdev: &pci::Device<Bound>) -> *mut bindings::pci_dev {
    ptr::from_ref(pdev).cast::<bindings::pci_dev>().cast_mut()
}

/// A PCI device with memory decoding and bus mastering on, turned off
/// again when dropped (what `pcim_enable_device` gives a C driver): the
/// kernel crate's `enable_device_mem` has no counterpart, so a driver that
/// binds repeatedly would pile up enable counts and leave its device
/// mastering the bus after unbind.
pub(crate) struct EnabledDevice<'a> {
    pdev: &'a pci::Device<Bound>,
}

impl<'a> EnabledDevice<'a> {
    /// Enables memory decoding and bus mastering.
    pub(crate) fn new(pdev: &'a pci::Device<Core<'_>>) -> Result<Self> {
        pdev.enable_device_mem()?;
        pdev.set_master();
        Ok(Self { pdev })
    }
}

impl Drop for EnabledDevice<'_> {
    fn drop(&mut self) {
        let raw = raw_pci_dev(self.pdev);
        // SAFETY: The device is valid: `self` borrows it.
        unsafe { bindings::pci_clear_master(raw) };
        // SAFETY: As above; `new` enabled it, once.
        unsafe { bindings::pci_disable_device(raw) };
    }
}

/// Gives `pdev` the widest DMA mask the platform takes (64, else 32 bits).
///
/// A device that hides a PCI hierarchy may do no DMA of its own while its
/// children's DMA carries its requester ID: the IOMMU maps it with this
/// device's mask.
pub(crate) fn set_dma_mask_64_or_32(pdev: &pci::Device<Core<'_>>) -> Result {
    use kernel::dma::{
        Device as _,
        DmaMask, //
    };
    // SAFETY: Called from probe, before anything maps DMA for the device.
    unsafe {
        pdev.dma_set_mask_and_coherent(DmaMask::new::<64>())
            .or_else(|_| pdev.dma_set_mask_and_coherent(DmaMask::new::<32>()))
    }
}

/// Offset of standard capability `id` in `pdev`'s config space, if it has
/// it. The walk gives up after 48 entries, so a looping list from broken
/// or hostile hardware cannot hang the caller.
pub(crate) fn find_capability(pdev: &pci::Device<Bound>, id: u8) -> Option<u8> {
    // SAFETY: `pdev` is a valid `struct pci_dev`.
    let pos = unsafe { bindings::pci_find_capability(raw_pci_dev(pdev), id.into()) };
    (pos != 0).then_some(pos)
}

/// Whether the kernel runs as a Xen guest (dom0 included): Xen, not
/// Linux, programs the interrupt controller then.
pub(crate) fn xen_domain() -> bool {
    // SAFETY: Reads a variable set at boot.
    unsafe { ext::kernel_ext_xen_domain() }
}

/// Number of MSI-X vectors `pdev`'s capability offers, if it has one.
pub(crate) fn msix_vec_count(pdev: &pci::Device<Bound>) -> Option<u32> {
    // SAFETY: `pdev` is a valid `struct pci_dev`.
    let count = unsafe { bindings::pci_msix_vec_count(raw_pci_dev(pdev)) };
    u32::try_from(count).ok()
}
