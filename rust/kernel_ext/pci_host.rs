// SPDX-License-Identifier: GPL-2.0

//! A PCI root bus on an emulated domain, with config accessors in Rust.
//!
//! C header: [`include/linux/pci.h`](srctree/include/linux/pci.h)
//!
//! A driver that exposes a PCI hierarchy of its own (a VMD) creates a
//! [`RootBus`] with its [`ConfigOps`], scans it and adds its devices. The
//! bus, its domain number and the resources it was given live as long as
//! the [`RootBus`]; dropping it stops and removes every device below it
//! first, so the accessors are never called on freed state.

use core::{
    marker::PhantomPinned,
    ptr::{
        self,
        NonNull, //
    },
};

use kernel::{
    bindings,
    device::Bound,
    error::to_result,
    ffi::{
        c_int,
        c_uint,
        c_ulong,
        c_void, //
    },
    pci,
    prelude::*,
    types::Opaque, //
};

use crate::kernel_ext::bindings as ext;

/// `PCIBIOS_DEVICE_NOT_FOUND`, what an accessor returns for an address
/// outside the bus.
const PCIBIOS_DEVICE_NOT_FOUND: c_int = 0x86;
/// `PCIBIOS_BAD_REGISTER_NUMBER`.
const PCIBIOS_BAD_REGISTER_NUMBER: c_int = 0x87;

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

/// What a [`RootBus`] is made of.
pub(crate) struct RootBusConfig {
    /// First and last bus number.
    pub(crate) buses: (u8, u8),
    /// The memory windows.
    pub(crate) windows: [Window; 2],
    /// Children's MSIs go through the parent device's MSI domain (as if the
    /// bus were not there) rather than a domain of the driver's.
    pub(crate) parent_msi_domain: bool,
    /// Give the bus the same native-control grants (_OSC) as the parent's.
    pub(crate) copy_host_bridge_flags: bool,
    /// Name of the parent device's sysfs link to the root bus.
    pub(crate) link_name: &'static CStr,
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
/// - `pdev` holds a reference to the parent `struct pci_dev`.
/// - Once `bus` is non-null it is the root bus created on `raw`, which it
///   points into, and stays valid until [`Drop`] removes it.
/// - `raw.sysdata.domain` is a domain number this bus owns.
#[pin_data(PinnedDrop)]
pub(crate) struct RootBus<T: ConfigOps> {
    #[pin]
    raw: Opaque<Raw>,
    #[pin]
    ops: T,
    pdev: NonNull<bindings::pci_dev>,
    bus: *mut bindings::pci_bus,
    link_name: &'static CStr,
    bars: [usize; 2],
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: The raw pointers are to kernel objects that may be used from any
// thread; `T` is `Sync` and the PCI core serialises its own use of `raw`.
unsafe impl<T: ConfigOps + Send> Send for RootBus<T> {}
// SAFETY: See above; `&RootBus` only reads `raw` and calls `T` through `&T`.
unsafe impl<T: ConfigOps> Sync for RootBus<T> {}

impl<T: ConfigOps> RootBus<T> {
    /// Creates the root bus (not scanned yet) for `pdev`, with `ops` as its
    /// config accessors.
    pub(crate) fn new(
        pdev: &pci::Device<Bound>,
        ops: impl PinInit<T, Error>,
        config: RootBusConfig,
    ) -> Result<Pin<KBox<Self>>> {
        let raw_pdev = ptr::from_ref(pdev).cast::<bindings::pci_dev>().cast_mut();
        // SAFETY: `pci::Device` is a transparent wrapper of `struct pci_dev`,
        // so `raw_pdev` points to the valid `struct pci_dev` `pdev` stands
        // for; the reference taken here is dropped in `Drop`.
        unsafe { bindings::pci_dev_get(raw_pdev) };
        let link_name = config.link_name;
        let bars = [config.windows[0].bar, config.windows[1].bar];
        let this = KBox::pin_init(
            try_pin_init!(Self {
                raw: Opaque::zeroed(),
                ops <- ops,
                // INVARIANT: a reference was taken above.
                pdev: NonNull::new(raw_pdev).ok_or(EINVAL)?,
                bus: ptr::null_mut(),
                link_name,
                bars,
                _pin: PhantomPinned,
            }),
            GFP_KERNEL,
        );
        let mut this = match this {
            Ok(this) => this,
            Err(e) => {
                // SAFETY: Takes back the reference taken above.
                unsafe { bindings::pci_dev_put(raw_pdev) };
                return Err(e);
            }
        };
        // SAFETY: Nothing below moves `*this`: `create` only fills in fields
        // in place and hands out pointers into the pinned `raw`.
        unsafe { this.as_mut().get_unchecked_mut().create(&config) }?;
        Ok(this)
    }

    /// Fills in `raw` and creates the bus on it.
    fn create(&mut self, config: &RootBusConfig) -> Result {
        let raw = self.raw.get();
        let pdev = self.pdev.as_ptr();

        // SAFETY: `raw` is valid for writes (it is ours, zeroed, pinned), and
        // `pdev` is a valid `struct pci_dev` by the type invariant.
        unsafe {
            (*raw).ops.read = Some(Self::read_cb);
            (*raw).ops.write = Some(Self::write_cb);
            (*raw).sysdata.vmd_dev = pdev;
            (*raw).sysdata.node = ext::vmd_rs_pcibus_to_node((*pdev).bus);

            let res = &mut (*raw).resources;
            res[0].name = c"VMD CFGBAR".as_char_ptr();
            res[0].start = config.buses.0.into();
            res[0].end = config.buses.1.into();
            res[0].flags = (bindings::IORESOURCE_BUS | bindings::IORESOURCE_PCI_FIXED) as c_ulong;
            for (i, w) in config.windows.iter().enumerate() {
                let bar = &mut (*pdev).resource[w.bar];
                let r = &mut res[i + 1];
                r.name = w.name.as_char_ptr();
                r.start = w.start;
                r.end = bar.end;
                // A window below 4 GiB takes 32-bit BARs: not a 64-bit one.
                r.flags = bar.flags & !(bindings::IORESOURCE_SIZEALIGN as c_ulong);
                if bar.end >> 32 == 0 {
                    r.flags &= !(bindings::IORESOURCE_MEM_64 as c_ulong);
                }
                r.parent = bar;
            }
        }

        // SAFETY: Plain call; the range is what emulated domains may use.
        let domain =
            unsafe { bindings::pci_bus_find_emul_domain_nr(0, 0x10000, c_int::MAX as u32) };
        to_result(domain)?;
        // SAFETY: `raw` is valid for writes.
        unsafe { (*raw).sysdata.domain = domain };

        let mut list = bindings::list_head::default();
        // SAFETY: `list` is a valid `list_head`; the resources live in the
        // pinned `raw` as long as the bus (they are its windows).
        let bus = unsafe {
            ext::vmd_rs_init_list_head(&mut list);
            let res = &mut (*raw).resources;
            bindings::pci_add_resource(&mut list, &mut res[0]);
            bindings::pci_add_resource_offset(&mut list, &mut res[1], config.windows[0].offset);
            bindings::pci_add_resource_offset(&mut list, &mut res[2], config.windows[1].offset);
            bindings::pci_create_root_bus(
                &raw mut (*pdev).dev,
                config.buses.0.into(),
                &mut (*raw).ops,
                (&raw mut (*raw).sysdata).cast::<c_void>(),
                &mut list,
            )
        };
        if bus.is_null() {
            // SAFETY: The list holds what was added above; the domain is ours.
            unsafe {
                bindings::pci_free_resource_list(&mut list);
                bindings::pci_bus_release_emul_domain_nr(domain);
            }
            return Err(ENODEV);
        }
        // INVARIANT: `bus` is the root bus created on `raw`.
        self.bus = bus;

        // SAFETY: `bus` and `pdev` are valid; the host bridge of a root bus
        // is `bus->bridge`, embedded in a `struct pci_host_bridge`.
        unsafe {
            if config.copy_host_bridge_flags {
                // Only what the OS may control on the physical bus above.
                let from = bindings::pci_find_host_bridge((*pdev).bus);
                let to = kernel::container_of!((*bus).bridge, bindings::pci_host_bridge, dev);
                (*to).set_native_pcie_hotplug((*from).native_pcie_hotplug());
                (*to).set_native_shpc_hotplug((*from).native_shpc_hotplug());
                (*to).set_native_aer((*from).native_aer());
                (*to).set_native_pme((*from).native_pme());
                (*to).set_native_ltr((*from).native_ltr());
                (*to).set_native_dpc((*from).native_dpc());
            }
            // Children's MSIs: through the parent's domain (bypass).
            if config.parent_msi_domain {
                let d = ext::vmd_rs_dev_get_msi_domain(&raw const (*pdev).dev);
                ext::vmd_rs_dev_set_msi_domain(&raw mut (*bus).dev, d);
            }
            // The parent's BARs list the windows as their children.
            for (i, w) in config.windows.iter().enumerate() {
                (*pdev).resource[w.bar].child = &mut (*raw).resources[i + 1];
            }
            // Best effort, as the C driver: a missing link costs nothing else.
            let _ = bindings::sysfs_create_link(
                &raw mut (*pdev).dev.kobj,
                &raw mut (*bus).dev.kobj,
                self.link_name.as_char_ptr(),
            );
        }
        Ok(())
    }

    /// The PCI domain number of the bus.
    pub(crate) fn domain(&self) -> i32 {
        // SAFETY: `raw` is initialised; `domain` is not written after `new`.
        unsafe { (*self.raw.get()).sysdata.domain }
    }

    /// Scans the bus for devices, configures them and adds them to the
    /// system: what a host bridge driver's probe does after creating it.
    ///
    /// `between_scan_and_assign` runs after the scan, before resources are
    /// assigned (a VMD resets its domain there).
    pub(crate) fn scan_and_add(&self, between_scan_and_assign: impl FnOnce(&T)) {
        let bus = self.bus;
        // SAFETY: `bus` is the valid root bus (type invariant); the rescan
        // lock serialises with sysfs rescan and removal.
        unsafe {
            bindings::pci_lock_rescan_remove();
            bindings::pci_scan_child_bus(bus);
        }
        between_scan_and_assign(&self.ops);
        // SAFETY: As above. The child bus lists are stable under the lock.
        unsafe {
            // A secondary bus reset below the first root port with devices
            // resets the whole hierarchy (the root ports are not in firmware's
            // view, so this is the driver's job).
            let head = &raw mut (*bus).children;
            let mut pos = (*head).next;
            while pos != head {
                let child = kernel::container_of!(pos, bindings::pci_bus, node);
                let devs = &raw mut (*child).devices;
                if (*devs).next != devs {
                    let dev = kernel::container_of!((*devs).next, bindings::pci_dev, bus_list);
                    let _ = bindings::pci_reset_bus(dev);
                    break;
                }
                pos = (*pos).next;
            }
            bindings::pci_assign_unassigned_bus_resources(bus);
            // The root bus is not PCIe; its root ports are.
            let mut pos = (*head).next;
            while pos != head {
                let child = kernel::container_of!(pos, bindings::pci_bus, node);
                bindings::pcie_bus_configure_settings(child);
                pos = (*pos).next;
            }
            // Drivers bind below here: pciehp takes the rescan lock itself.
            bindings::pci_unlock_rescan_remove();
            bindings::pci_bus_add_devices(bus);
        }
    }

    /// Recovers the `RootBus` of a bus created by [`RootBus::new`].
    ///
    /// # Safety
    ///
    /// `bus` must be a bus below a live `RootBus<T>`.
    unsafe fn from_bus<'a>(bus: *mut bindings::pci_bus) -> &'a Self {
        // SAFETY: Every bus below the root bus shares its sysdata, which is
        // `raw.sysdata` of the `RootBus<T>` the caller vouches for.
        unsafe {
            let raw =
                kernel::container_of!((*bus).sysdata.cast::<bindings::pci_sysdata>(), Raw, sysdata);
            &*kernel::container_of!(raw.cast::<Opaque<Raw>>(), Self, raw)
        }
    }

    /// Decodes the arguments of a `pci_ops` accessor.
    ///
    /// # Safety
    ///
    /// `bus` must be a bus below a live `RootBus<T>`, valid for the call.
    unsafe fn decode<'a>(
        bus: *mut bindings::pci_bus,
        devfn: c_uint,
        reg: c_int,
        len: c_int,
    ) -> Result<(&'a T, u8, u8, u16, u8), c_int> {
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
impl<T: ConfigOps> PinnedDrop for RootBus<T> {
    fn drop(self: Pin<&mut Self>) {
        let pdev = self.pdev.as_ptr();
        let bus = self.bus;
        // SAFETY: `pdev` is valid (we hold a reference); `bus`, if set, is the
        // root bus created on `raw`: its devices are stopped and removed
        // before the accessors and resources go away.
        unsafe {
            if !bus.is_null() {
                // Unbinding drivers (pciehp's IRQ thread) may need the rescan
                // lock: take it only once they are gone, for the removal.
                bindings::pci_stop_root_bus(bus);
                bindings::sysfs_remove_link(
                    &raw mut (*pdev).dev.kobj,
                    self.link_name.as_char_ptr(),
                );
                bindings::pci_lock_rescan_remove();
                bindings::pci_remove_root_bus(bus);
                bindings::pci_unlock_rescan_remove();
                for bar in self.bars {
                    (*pdev).resource[bar].child = ptr::null_mut();
                }
                bindings::pci_bus_release_emul_domain_nr((*self.raw.get()).sysdata.domain);
            }
            bindings::pci_dev_put(pdev);
        }
    }
}
