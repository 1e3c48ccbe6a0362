// SPDX-License-Identifier: GPL-2.0

//! A PCI root bus on an emulated domain, with config accessors in Rust.
//!
//! C header: [`include/linux/pci.h`](srctree/include/linux/pci.h)
//!
//! A driver that exposes a PCI hierarchy of its own creates a
//! [`RootBus`] with its [`ConfigOps`], scans it and adds its devices. The
//! bus, its domain number and the resources it was given live as long as
//! the [`RootBus`]; dropping it stops and removes every device below it
//! first, so the accessors are never called on freed state.

use core::{
    marker::PhantomPinned,
    ptr, //
};

use kernel::{
    bindings,
    device::{
        Bound,
        Core, //
    },
    error::to_result,
    ffi::{
        c_int,
        c_uint,
        c_ulong,
        c_void, //
    },
    pci,
    prelude::*,
    sync::Arc,
    types::Opaque, //
};

use crate::kernel_ext::{
    bindings as ext,
    msi_remap::{
        MsiRemap,
        RemapOps, //
    },
};

use acpi_hook::AcpiHook;

/// What an accessor returns for an address outside the bus.
const PCIBIOS_DEVICE_NOT_FOUND: c_int = bindings::PCIBIOS_DEVICE_NOT_FOUND as c_int;
/// What an accessor returns for arguments out of range.
const PCIBIOS_BAD_REGISTER_NUMBER: c_int = bindings::PCIBIOS_BAD_REGISTER_NUMBER as c_int;

/// Config space accessors of a root bus.
///
/// Called by the PCI core under its raw `pci_lock`, possibly from atomic
/// context: implementations must not sleep.
pub(crate) trait ConfigOps: Sync {
    /// Reads `len` (1, 2 or 4) bytes at `reg` of function `devfn` on bus
    /// number `bus`; [`None`] if there is no such place.
    fn read(&self, bus: u8, devfn: u8, reg: u16, len: u8) -> Option<u32>;

    /// Writes `len` (1, 2 or 4) bytes; `false` if there is no such place.
    fn write(&self, bus: u8, devfn: u8, reg: u16, len: u8, value: u32) -> bool;
}

/// Accessors shared with other users of config space (an interrupt path).
impl<T: ConfigOps + Send> ConfigOps for Arc<T> {
    fn read(&self, bus: u8, devfn: u8, reg: u16, len: u8) -> Option<u32> {
        T::read(self, bus, devfn, reg, len)
    }

    fn write(&self, bus: u8, devfn: u8, reg: u16, len: u8, value: u32) -> bool {
        T::write(self, bus, devfn, reg, len, value)
    }
}

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

/// The ACPI companion lookup hook of linux/pci-acpi.h, which declares it
/// with CONFIG_ACPI only; every use of it and of the ACPI calls its lookup
/// makes is in here.
#[cfg(CONFIG_ACPI)]
mod acpi_hook {
    use core::{
        ptr,
        sync::atomic::{
            AtomicPtr,
            Ordering, //
        },
    };

    use kernel::bindings;

    use super::{
        ConfigOps,
        RemapOps,
        RootBus, //
    };
    use crate::kernel_ext::bindings as ext;

    /// The `pci_ops` of the root bus whose scan holds the hook: only that
    /// bus's devices are looked up, by the `companion` of its type.
    static OPS: AtomicPtr<bindings::pci_ops> = AtomicPtr::new(ptr::null_mut());

    /// The hook, held for the scan of one root bus and released when
    /// dropped: only its holder may clear it.
    pub(super) struct AcpiHook(());

    impl AcpiHook {
        /// Takes the hook for the `RootBus<T, R>` whose accessors are `ops`;
        /// [`None`] if another scan holds it (it is global and exclusive).
        pub(super) fn take<T: ConfigOps, R: RemapOps>(ops: *mut bindings::pci_ops) -> Option<Self> {
            // SAFETY: `companion` is a valid hook for as long as it is set,
            // and it is cleared only by the `AcpiHook` made below.
            if unsafe { ext::pci_acpi_set_companion_lookup_hook(Some(companion::<T, R>)) } != 0 {
                return None;
            }
            OPS.store(ops, Ordering::Release);
            Some(Self(()))
        }
    }

    impl Drop for AcpiHook {
        fn drop(&mut self) {
            // SAFETY: `self` stands for the hook `take` set: it is ours to
            // clear (which waits for running lookups).
            unsafe { ext::pci_acpi_clear_companion_lookup_hook() };
            OPS.store(ptr::null_mut(), Ordering::Release);
        }
    }

    /// The ACPI companion of a device below the `RootBus<T, R>` holding the
    /// hook: the parent device's companion's child at the address the
    /// driver's [`RootBusConfig::acpi_address`] gives.
    ///
    /// # Safety
    ///
    /// `pdev` is a valid PCI device being added (the ACPI core's contract).
    unsafe extern "C" fn companion<T: ConfigOps, R: RemapOps>(
        pdev: *mut bindings::pci_dev,
    ) -> *mut bindings::acpi_device {
        // SAFETY: `pdev` is valid for the call (the caller's guarantee), and
        // so is the bus it is on.
        let (bus, devfn) = unsafe { ((*pdev).bus, (*pdev).devfn) };
        // Ours if it is the bus being scanned with the hook.
        // SAFETY: As above: `bus` is valid.
        if !ptr::eq(unsafe { (*bus).ops }, OPS.load(Ordering::Acquire)) {
            return ptr::null_mut();
        }
        // SAFETY: `bus` is valid, and so (being ours) are its host bridge,
        // the bridge's root bus and parent device while the device is added.
        let (number, root_number, parent) = unsafe {
            let bridge = bindings::pci_find_host_bridge(bus);
            ((*bus).number, (*(*bridge).bus).number, (*bridge).dev.parent)
        };
        // SAFETY: `bus` is below the root bus holding the hook, whose
        // `RootBus<T, R>` took it (so `companion::<T, R>` is the hook) in
        // `scan_and_add`, and is live until that releases it.
        let this = unsafe { RootBus::<'_, T, R>::from_bus(bus) };
        let address = this
            .acpi_address
            .and_then(|address| address(number.wrapping_sub(root_number), devfn as u8));
        let Some(address) = address else {
            return ptr::null_mut();
        };
        // SAFETY: `parent`, the root bus's parent device, is valid (see
        // above); its companion is an ACPI device or null, which the lookup
        // accepts.
        unsafe {
            bindings::acpi_find_child_device(ext::kernel_ext_acpi_companion(parent), address, false)
        }
    }
}

/// Without CONFIG_ACPI there is no hook, and no firmware companion to find.
#[cfg(not(CONFIG_ACPI))]
mod acpi_hook {
    use kernel::bindings;

    use super::{
        ConfigOps,
        RemapOps, //
    };

    /// Never held: there is nothing to hold.
    pub(super) enum AcpiHook {}

    impl AcpiHook {
        /// [`None`], always.
        pub(super) fn take<T: ConfigOps, R: RemapOps>(
            _ops: *mut bindings::pci_ops,
        ) -> Option<Self> {
            None
        }
    }
}

/// A device below a [`RootBus`], during [`RootBus::for_each_device`] (the
/// bus list is locked: the `*_locked` PCI calls apply).
pub(crate) struct BusDevice<'a>(&'a Opaque<bindings::pci_dev>);

impl BusDevice<'_> {
    fn raw(&self) -> *mut bindings::pci_dev {
        self.0.get()
    }

    /// The generic device, for messages.
    pub(crate) fn as_dev(&self) -> &kernel::device::Device {
        // SAFETY: `dev` is embedded in the valid `struct pci_dev`, which
        // outlives `self`.
        unsafe { kernel::device::Device::from_raw(&raw mut (*self.raw()).dev) }
    }

    /// Offset of extended capability `id`, if the device has it.
    pub(crate) fn find_ext_capability(&self, id: u32) -> Option<u16> {
        // SAFETY: The device is valid.
        let pos = unsafe { bindings::pci_find_ext_capability(self.raw(), id as c_int) };
        (pos != 0).then_some(pos)
    }

    /// Reads a config dword.
    pub(crate) fn read_config_dword(&self, offset: u16) -> Option<u32> {
        let mut v = 0;
        // SAFETY: The device is valid, `v` valid for writes.
        let ret = unsafe { bindings::pci_read_config_dword(self.raw(), offset.into(), &mut v) };
        (ret == 0).then_some(v)
    }

    /// Writes a config dword.
    pub(crate) fn write_config_dword(&self, offset: u16, value: u32) -> bool {
        // SAFETY: The device is valid.
        unsafe { bindings::pci_write_config_dword(self.raw(), offset.into(), value) == 0 }
    }

    /// Puts the device in D0 and enables every link power state (ASPM,
    /// L1 substates, clock PM) its link supports.
    pub(crate) fn enable_link_pm(&self) {
        // SAFETY: The device is valid and the bus semaphore is held, as the
        // `_locked` variants require.
        unsafe {
            bindings::pci_set_power_state_locked(self.raw(), ext::PCI_D0);
            bindings::pci_enable_link_state_locked(self.raw(), ext::PCIE_LINK_STATE_ALL);
        }
    }
}

/// A memory window of the root bus, carved out of one of the parent
/// device's BARs.
pub(crate) struct Window {
    /// The parent device's BAR the window lies in.
    pub(crate) bar: usize,
    /// First CPU address of the window (inclusive).
    pub(crate) start: u64,
    /// CPU address minus bus address.
    pub(crate) offset: u64,
    /// Its name in /proc/iomem.
    pub(crate) name: &'static CStr,
}

/// A PCI domain number from the range of emulated domains (0x10000 and
/// up, clear of ACPI's segment numbers), released when dropped.
pub(crate) struct DomainNr(c_int);

impl DomainNr {
    /// Allocates the lowest free emulated domain number.
    pub(crate) fn new() -> Result<Self> {
        // SAFETY: Plain call; the range is what emulated domains may use.
        let nr = unsafe { bindings::pci_bus_find_emul_domain_nr(0, 0x10000, c_int::MAX as u32) };
        to_result(nr)?;
        Ok(Self(nr))
    }

    /// The number.
    pub(crate) fn get(&self) -> i32 {
        self.0
    }
}

impl Drop for DomainNr {
    fn drop(&mut self) {
        // SAFETY: The number was allocated in `new` and is released once.
        unsafe { bindings::pci_bus_release_emul_domain_nr(self.0) };
    }
}

/// What a [`RootBus`] is made of.
pub(crate) struct RootBusConfig {
    /// First and last bus number.
    pub(crate) buses: (u8, u8),
    /// The memory windows.
    pub(crate) windows: [Window; 2],
    /// Give the bus the same native-control grants (_OSC) as the parent's.
    pub(crate) copy_host_bridge_flags: bool,
    /// Look up the devices' ACPI companions under the parent's while they
    /// are scanned and added (firmware may describe them there): the
    /// address (`_ADR`) of a device's companion, from its bus number
    /// relative to the root bus and its devfn; [`None`] if it has none.
    /// Without CONFIG_ACPI there are none.
    pub(crate) acpi_address: Option<fn(u8, u8) -> Option<u64>>,
    /// Name of the parent device's sysfs link to the root bus.
    pub(crate) link_name: &'static CStr,
    /// Name of the bus number resource in /proc/iomem.
    pub(crate) bus_name: &'static CStr,
    /// Fills in the arch's sysdata fields beyond the domain and NUMA node
    /// (which [`RootBus`] sets), given the parent device: x86 looks up
    /// there the device whose requester ID the bus's DMA and MSIs carry.
    pub(crate) fill_sysdata: fn(&mut bindings::pci_sysdata, *mut bindings::pci_dev),
}

/// The C structures the PCI core points into: they must not move.
#[repr(C)]
struct Raw {
    sysdata: bindings::pci_sysdata,
    ops: bindings::pci_ops,
    resources: [bindings::resource; 3],
}

/// A PCI root bus on a new emulated domain.
///
/// # Invariants
///
/// - Once `bus` is non-null it is the root bus created on `raw`, which it
///   points into, and stays valid until [`Drop`] removes it.
/// - `raw.sysdata.domain` is `domain`'s number.
/// - The bus's devices take their MSIs from `remap`'s domain if there is
///   one, which therefore lives until the bus is removed.
#[pin_data(PinnedDrop)]
pub(crate) struct RootBus<'a, T: ConfigOps, R: RemapOps> {
    #[pin]
    raw: Opaque<Raw>,
    #[pin]
    ops: T,
    /// The parent device: bound to its driver for `'a`, which outlives
    /// `self`, so no reference count of our own keeps it.
    pdev: &'a pci::Device<Bound>,
    bus: *mut bindings::pci_bus,
    link_name: &'static CStr,
    bars: [usize; 2],
    remap: Option<Pin<KBox<MsiRemap<'a, R>>>>,
    domain: DomainNr,
    acpi_address: Option<fn(u8, u8) -> Option<u64>>,
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: The raw pointers are to kernel objects that may be used from any
// thread; `T` is `Sync` and the PCI core serialises its own use of `raw`.
unsafe impl<T: ConfigOps + Send, R: RemapOps> Send for RootBus<'_, T, R> {}
// SAFETY: See above; `&RootBus` only reads `raw` and calls `T` through `&T`.
unsafe impl<T: ConfigOps, R: RemapOps> Sync for RootBus<'_, T, R> {}

impl<'a, T: ConfigOps, R: RemapOps> RootBus<'a, T, R> {
    /// Creates the root bus (not scanned yet) for `pdev` on `domain`, with
    /// `ops` as its config accessors. Its devices' MSIs go through `remap`,
    /// or with [`None`] through the parent device's MSI domain, as if the
    /// bus were not there.
    pub(crate) fn new(
        pdev: &'a pci::Device<Bound>,
        domain: DomainNr,
        ops: impl PinInit<T, Error>,
        config: RootBusConfig,
        remap: Option<Pin<KBox<MsiRemap<'a, R>>>>,
    ) -> Result<Pin<KBox<Self>>> {
        let link_name = config.link_name;
        let bars = [config.windows[0].bar, config.windows[1].bar];
        let this = KBox::pin_init(
            try_pin_init!(Self {
                raw: Opaque::zeroed(),
                ops <- ops,
                pdev,
                bus: ptr::null_mut(),
                link_name,
                bars,
                remap,
                domain,
                acpi_address: config.acpi_address,
                _pin: PhantomPinned,
            }),
            GFP_KERNEL,
        );
        let mut this = this?;
        // SAFETY: Nothing below moves `*this`: `create` only fills in fields
        // in place and hands out pointers into the pinned `raw`.
        unsafe { this.as_mut().get_unchecked_mut().create(&config) }?;
        Ok(this)
    }

    /// Fills in `raw` and creates the bus on it.
    fn create(&mut self, config: &RootBusConfig) -> Result {
        let raw = self.raw.get();
        let pdev = raw_pci_dev(self.pdev);

        // SAFETY: `pdev` is valid (borrowed for `'a`), and so is its bus.
        let node = unsafe { ext::kernel_ext_pcibus_to_node((*pdev).bus) };
        let mut resources = [bindings::resource {
            name: config.bus_name.as_char_ptr(),
            start: config.buses.0.into(),
            end: config.buses.1.into(),
            flags: (bindings::IORESOURCE_BUS | bindings::IORESOURCE_PCI_FIXED) as c_ulong,
            ..Default::default()
        }; 3];
        for (i, w) in config.windows.iter().enumerate() {
            // SAFETY: `pdev` is valid (borrowed for `'a`): only the address of
            // one of its resources is taken.
            let bar = unsafe { &raw mut (*pdev).resource[w.bar] };
            // SAFETY: As above: `bar` is valid for reads.
            let (end, bar_flags) = unsafe { ((*bar).end, (*bar).flags) };
            let mut flags = bar_flags & !(bindings::IORESOURCE_SIZEALIGN as c_ulong);
            // A window below 4 GiB takes 32-bit BARs: not a 64-bit one.
            if end >> 32 == 0 {
                flags &= !(bindings::IORESOURCE_MEM_64 as c_ulong);
            }
            resources[i + 1] = bindings::resource {
                name: w.name.as_char_ptr(),
                start: w.start,
                end,
                flags,
                parent: bar,
                ..Default::default()
            };
        }
        let mut sysdata = bindings::pci_sysdata::default();
        (config.fill_sysdata)(&mut sysdata, pdev);
        sysdata.domain = self.domain.get();
        sysdata.node = node;
        let value = Raw {
            sysdata,
            ops: bindings::pci_ops {
                read: Some(Self::read_cb),
                write: Some(Self::write_cb),
                ..Default::default()
            },
            resources,
        };
        // INVARIANT: `raw.sysdata.domain` is `domain`'s number.
        // SAFETY: `raw` is ours, pinned and valid for writes; nothing points
        // into it yet.
        unsafe { raw.write(value) };
        // SAFETY: As above: only field addresses are taken.
        let (res, ops, sysdata) = unsafe {
            (
                (&raw mut (*raw).resources).cast::<bindings::resource>(),
                &raw mut (*raw).ops,
                &raw mut (*raw).sysdata,
            )
        };

        let mut list = bindings::list_head::default();
        // SAFETY: `list` is valid for writes.
        unsafe { bindings::INIT_LIST_HEAD(&mut list) };
        // SAFETY: `list` is an initialised list; the resources live in the
        // pinned `raw` as long as the bus (they become its windows).
        unsafe {
            bindings::pci_add_resource(&mut list, res);
            bindings::pci_add_resource_offset(
                &mut list,
                res.wrapping_add(1),
                config.windows[0].offset,
            );
            bindings::pci_add_resource_offset(
                &mut list,
                res.wrapping_add(2),
                config.windows[1].offset,
            );
        }
        // SAFETY: `pdev` is valid (borrowed for `'a`); the accessors and sysdata
        // live in the pinned `raw` until `Drop` has removed the bus.
        let bus = unsafe {
            bindings::pci_create_root_bus(
                &raw mut (*pdev).dev,
                config.buses.0.into(),
                ops,
                sysdata.cast::<c_void>(),
                &mut list,
            )
        };
        if bus.is_null() {
            // SAFETY: The list holds what was added above, and nothing else
            // took it.
            unsafe { bindings::pci_free_resource_list(&mut list) };
            return Err(ENODEV);
        }
        // INVARIANT: `bus` is the root bus created on `raw`.
        self.bus = bus;

        if config.copy_host_bridge_flags {
            // SAFETY: `pdev` is valid, and so is its bus, which has a host
            // bridge.
            let from = unsafe { bindings::pci_find_host_bridge((*pdev).bus) };
            // SAFETY: `bus` is a valid root bus: its `bridge` is the `dev` of
            // its `struct pci_host_bridge`.
            let to =
                unsafe { kernel::container_of!((*bus).bridge, bindings::pci_host_bridge, dev) };
            // Only what the OS may control on the physical bus above.
            // SAFETY: `from` and `to` are valid; `to` is ours, and nothing
            // below it is scanned yet.
            unsafe {
                (*to).set_native_pcie_hotplug((*from).native_pcie_hotplug());
                (*to).set_native_shpc_hotplug((*from).native_shpc_hotplug());
                (*to).set_native_aer((*from).native_aer());
                (*to).set_native_pme((*from).native_pme());
                (*to).set_native_ltr((*from).native_ltr());
                (*to).set_native_dpc((*from).native_dpc());
            }
        }
        // Children's MSIs: remapped, or through the parent's domain.
        let domain = match &self.remap {
            Some(remap) => remap.irq_domain(),
            // SAFETY: `pdev` is valid (borrowed for `'a`).
            None => unsafe { ext::kernel_ext_dev_get_msi_domain(&raw const (*pdev).dev) },
        };
        // SAFETY: `bus` is valid; the domain outlives it (type invariant).
        unsafe { ext::kernel_ext_dev_set_msi_domain(&raw mut (*bus).dev, domain) };
        // The parent's BARs list the windows as their children.
        for (i, w) in config.windows.iter().enumerate() {
            // SAFETY: `pdev` is valid; `Drop` unlinks the windows before they
            // go.
            unsafe { (*pdev).resource[w.bar].child = res.wrapping_add(i + 1) };
        }
        // Best effort, as the C driver: a missing link costs nothing else.
        // SAFETY: `pdev` and `bus` are valid; `Drop` removes the link.
        let _ = unsafe {
            bindings::sysfs_create_link(
                &raw mut (*pdev).dev.kobj,
                &raw mut (*bus).dev.kobj,
                self.link_name.as_char_ptr(),
            )
        };
        Ok(())
    }

    /// The PCI domain number of the bus.
    pub(crate) fn domain(&self) -> i32 {
        self.domain.get()
    }

    /// The remapping domain of the children's MSIs, if they are remapped.
    pub(crate) fn remap(&self) -> Option<&MsiRemap<'a, R>> {
        self.remap.as_deref()
    }

    /// Scans the bus for devices, configures them and adds them to the
    /// system: what a host bridge driver's probe does after creating it.
    ///
    /// `between_scan_and_assign` runs after the scan, before resources are
    /// assigned (the driver may reset the hierarchy there); `after_assign` on every
    /// device once resources are assigned.
    ///
    /// Returns the error of the secondary bus reset below the first root
    /// port with devices, if that failed; the devices are added regardless.
    pub(crate) fn scan_and_add(
        &self,
        between_scan_and_assign: impl FnOnce(&T),
        after_assign: impl FnMut(&BusDevice<'_>),
    ) -> Result {
        let bus = self.bus;
        // Held to the end: scanning and adding the devices look companions
        // up. If another driver holds the hook, go without.
        let _hook = if self.acpi_address.is_some() {
            // SAFETY: `raw` is ours and valid: only a field's address is
            // taken.
            let ops = unsafe { &raw mut (*self.raw.get()).ops };
            AcpiHook::take::<T, R>(ops)
        } else {
            None
        };
        // SAFETY: Takes a mutex we do not hold; released below.
        unsafe { bindings::pci_lock_rescan_remove() };
        // SAFETY: `bus` is the valid root bus (type invariant); the rescan
        // lock we hold serialises with sysfs rescan and removal.
        unsafe { bindings::pci_scan_child_bus(bus) };
        between_scan_and_assign(&self.ops);
        // A secondary bus reset below the first root port with devices
        // resets the whole hierarchy (the root ports are not in firmware's
        // view, so this is the driver's job).
        let mut reset = Ok(());
        let reset_first = |child: *mut bindings::pci_bus| {
            // SAFETY: `child` is a valid bus: only a field's address is taken.
            let devs = unsafe { &raw mut (*child).devices };
            // SAFETY: `devs` is the bus's device list, valid and stable under
            // the rescan lock.
            let first = unsafe { (*devs).next };
            if first == devs {
                return true;
            }
            // SAFETY: `first` is the `bus_list` node of a device on the list.
            let dev = unsafe { kernel::container_of!(first, bindings::pci_dev, bus_list) };
            // SAFETY: `dev` is a valid, scanned device below our root bus.
            reset = to_result(unsafe { bindings::pci_reset_bus(dev) });
            false
        };
        // SAFETY: We hold the rescan lock.
        unsafe { self.for_each_child_bus(reset_first) };
        // SAFETY: As for the scan.
        unsafe { bindings::pci_assign_unassigned_bus_resources(bus) };
        self.for_each_device(after_assign);
        // The root bus is not PCIe; its root ports are.
        let configure = |child: *mut bindings::pci_bus| {
            // SAFETY: `child` is a valid, scanned bus below our root bus.
            unsafe { bindings::pcie_bus_configure_settings(child) };
            true
        };
        // SAFETY: We hold the rescan lock.
        unsafe { self.for_each_child_bus(configure) };
        // Drivers bind below here: pciehp takes the rescan lock itself.
        // SAFETY: Taken above.
        unsafe { bindings::pci_unlock_rescan_remove() };
        // SAFETY: `bus` is valid, its devices scanned and configured.
        unsafe { bindings::pci_bus_add_devices(bus) };
        reset
    }

    /// Runs `f` on each bus directly below the root bus, until it returns
    /// `false`.
    ///
    /// # Safety
    ///
    /// The caller holds the rescan lock: the list of child buses is stable.
    unsafe fn for_each_child_bus(&self, mut f: impl FnMut(*mut bindings::pci_bus) -> bool) {
        // SAFETY: `bus` is valid (type invariant): only a field's address is
        // taken.
        let head = unsafe { &raw mut (*self.bus).children };
        // SAFETY: `head` is the bus's list of child buses, valid and stable
        // (the caller's guarantee).
        let mut pos = unsafe { (*head).next };
        while pos != head {
            // SAFETY: `pos` is the `node` of a bus on that list.
            let child = unsafe { kernel::container_of!(pos, bindings::pci_bus, node) };
            if !f(child) {
                return;
            }
            // SAFETY: As above: `pos` is a node of the list.
            pos = unsafe { (*pos).next };
        }
    }

    /// Runs `f` on every device below the root bus, with the bus list
    /// locked, as `pci_walk_bus` does.
    pub(crate) fn for_each_device<F: FnMut(&BusDevice<'_>)>(&self, mut f: F) {
        /// # Safety
        ///
        /// `data` is the `F` below; `pdev` a device of the walked bus.
        unsafe extern "C" fn visit<F: FnMut(&BusDevice<'_>)>(
            pdev: *mut bindings::pci_dev,
            data: *mut c_void,
        ) -> c_int {
            // SAFETY: `pdev` is a device of the walked bus (the caller's
            // guarantee), valid for the call: the walk holds the bus semaphore.
            let dev = BusDevice(unsafe { &*pdev.cast::<Opaque<bindings::pci_dev>>() });
            // SAFETY: `data` is the `F` below (the caller's guarantee), which
            // the walk does not touch.
            let f = unsafe { &mut *data.cast::<F>() };
            f(&dev);
            0
        }
        // SAFETY: `bus` is valid (type invariant); `f` outlives the walk.
        unsafe {
            bindings::pci_walk_bus(
                self.bus,
                Some(visit::<F>),
                ptr::from_mut(&mut f).cast::<c_void>(),
            )
        };
    }

    /// Recovers the `RootBus` of a bus created by [`RootBus::new`].
    ///
    /// # Safety
    ///
    /// `bus` must be a bus below a live `RootBus<T>`.
    unsafe fn from_bus<'b>(bus: *mut bindings::pci_bus) -> &'b Self
    where
        Self: 'b,
    {
        // SAFETY: `bus` is valid (the caller's guarantee).
        let sysdata = unsafe { (*bus).sysdata.cast::<bindings::pci_sysdata>() };
        // SAFETY: Every bus below the root bus shares its sysdata, which is
        // `raw.sysdata` of the `RootBus<T>` the caller vouches for.
        let raw = unsafe { kernel::container_of!(sysdata, Raw, sysdata) };
        // SAFETY: `raw` is the `raw` field of that live `RootBus<T>`.
        unsafe { &*kernel::container_of!(raw.cast::<Opaque<Raw>>(), Self, raw) }
    }

    /// Decodes the arguments of a `pci_ops` accessor.
    ///
    /// # Safety
    ///
    /// `bus` must be a bus below a live `RootBus<T>`, valid for the call.
    unsafe fn decode<'b>(
        bus: *mut bindings::pci_bus,
        devfn: c_uint,
        reg: c_int,
        len: c_int,
    ) -> Result<(&'b T, u8, u8, u16, u8), c_int>
    where
        Self: 'b,
    {
        // SAFETY: The caller vouches for `bus`: the PCI core calls `pci_ops`
        // only on buses below the root bus, which lives as long as its
        // `RootBus`.
        let (this, number) = unsafe { (Self::from_bus(bus), (*bus).number) };
        match (u8::try_from(devfn), u16::try_from(reg), u8::try_from(len)) {
            (Ok(devfn), Ok(reg), Ok(len)) => Ok((&this.ops, number, devfn, reg, len)),
            _ => Err(PCIBIOS_BAD_REGISTER_NUMBER),
        }
    }

    /// `pci_ops.read`: forwards to [`ConfigOps::read`].
    ///
    /// # Safety
    ///
    /// `bus` must be a bus below a live `RootBus<T>` and `value` valid for
    /// writes, as the PCI core guarantees for `pci_ops`.
    unsafe extern "C" fn read_cb(
        bus: *mut bindings::pci_bus,
        devfn: c_uint,
        reg: c_int,
        len: c_int,
        value: *mut u32,
    ) -> c_int {
        // SAFETY: Our caller's guarantee is `decode`'s requirement.
        let (ops, bus, devfn, reg, len) = match unsafe { Self::decode(bus, devfn, reg, len) } {
            Ok(args) => args,
            Err(e) => return e,
        };
        match ops.read(bus, devfn, reg, len) {
            Some(v) => {
                // SAFETY: `value` is valid for writes by the `pci_ops` contract.
                unsafe { *value = v };
                0
            }
            None => PCIBIOS_DEVICE_NOT_FOUND,
        }
    }

    /// `pci_ops.write`: forwards to [`ConfigOps::write`].
    ///
    /// # Safety
    ///
    /// `bus` must be a bus below a live `RootBus<T>`, as the PCI core
    /// guarantees for `pci_ops`.
    unsafe extern "C" fn write_cb(
        bus: *mut bindings::pci_bus,
        devfn: c_uint,
        reg: c_int,
        len: c_int,
        value: u32,
    ) -> c_int {
        // SAFETY: Our caller's guarantee is `decode`'s requirement.
        let (ops, bus, devfn, reg, len) = match unsafe { Self::decode(bus, devfn, reg, len) } {
            Ok(args) => args,
            Err(e) => return e,
        };
        if ops.write(bus, devfn, reg, len, value) {
            0
        } else {
            PCIBIOS_DEVICE_NOT_FOUND
        }
    }
}

#[pinned_drop]
impl<T: ConfigOps, R: RemapOps> PinnedDrop for RootBus<'_, T, R> {
    fn drop(self: Pin<&mut Self>) {
        let pdev = raw_pci_dev(self.pdev);
        let bus = self.bus;
        // Its devices, it and then its host bridge go before the accessors
        // and resources.
        if !bus.is_null() {
            // SAFETY: `bus` is the root bus created on `raw` (type invariant).
            let host_bridge = unsafe { (*bus).bridge };
            // Unbinding drivers (pciehp's IRQ thread) may need the rescan
            // lock: take it only once they are gone, for the removal.
            // SAFETY: As above.
            unsafe { bindings::pci_stop_root_bus(bus) };
            // SAFETY: `pdev` is valid (borrowed for `'a`); the link is
            // `create`'s, if it made one.
            unsafe {
                bindings::sysfs_remove_link(&raw mut (*pdev).dev.kobj, self.link_name.as_char_ptr())
            };
            // SAFETY: Takes a mutex we do not hold; released below.
            unsafe { bindings::pci_lock_rescan_remove() };
            // SAFETY: `bus` is our root bus, stopped; the rescan lock is held.
            unsafe { bindings::pci_remove_root_bus(bus) };
            // SAFETY: Taken above.
            unsafe { bindings::pci_unlock_rescan_remove() };
            // `pci_remove_root_bus()` only `device_del()`s the host bridge
            // (since 9885440b16b8, v5.8; devres puts the devm-allocated
            // bridges of `pci_host_probe()`): whoever called
            // `pci_create_root_bus()` owns the last reference, and without
            // this put the bridge and its windows leak on every removal.
            // SAFETY: That reference is ours, put once.
            unsafe { bindings::put_device(host_bridge) };
            for bar in self.bars {
                // SAFETY: `pdev` is valid; the windows `create` linked to its
                // BARs go with `self`.
                unsafe { (*pdev).resource[bar].child = ptr::null_mut() };
            }
        }
    }
}
