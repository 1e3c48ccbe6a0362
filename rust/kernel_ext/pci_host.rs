// SPDX-License-Identifier: GPL-2.0

//! A PCI host bridge whose config space a driver provides in Rust.
//!
//! C header: [`include/linux/pci.h`](srctree/include/linux/pci.h)
//!
//! The `pci_host_bridge` + `pci_host_probe()` model: the bridge is
//! allocated with a private area ([`pci_alloc_host_bridge`]) that holds
//! everything the PCI core keeps pointers to (sysdata, the bus and window
//! resources), its `pci_ops` are a static table per [`ConfigOps`] type, and
//! the bridge is scanned, assigned and added as `pci_host_probe()` does,
//! with the driver's hooks between those steps.
//!
//! The private area lives as long as the bridge's `struct device`, which
//! every bus and device below it keeps a reference to: a `pci_dev`
//! reference that outlives the removal can still make config cycles, and
//! they find the accessors revoked (`PCIBIOS_DEVICE_NOT_FOUND`), not freed
//! memory. The driver's [`ConfigOps`] stay in the [`HostBridge`], which
//! publishes them to the private area only once it is fully initialised
//! and revokes them (waiting for running accessors) after the removal.
//!
//! [`pci_alloc_host_bridge`]: srctree/drivers/pci/probe.c

use core::{
    marker::{
        PhantomData,
        PhantomPinned, //
    },
    mem::{
        self,
        ManuallyDrop, //
    },
    ops::RangeInclusive,
    ptr::{
        self,
        NonNull, //
    },
    sync::atomic::{
        AtomicI32,
        AtomicPtr,
        AtomicU8,
        Ordering, //
    },
};

use kernel::{
    bindings,
    device::{
        self,
        Bound, //
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
    sync::{
        rcu,
        Arc, //
    },
    types::Opaque, //
};

use crate::kernel_ext::{
    bindings as ext,
    devres_ext::Backstop,
    msi_parent::{
        MsiParent,
        MsiParentOps, //
    },
    pci_ext::raw_pci_dev,
};

use acpi_hook::AcpiHook;

/// What an accessor returns for an address outside the bus, or once the
/// accessors are revoked.
const PCIBIOS_DEVICE_NOT_FOUND: c_int = bindings::PCIBIOS_DEVICE_NOT_FOUND as c_int;
/// What an accessor returns for arguments out of range.
const PCIBIOS_BAD_REGISTER_NUMBER: c_int = bindings::PCIBIOS_BAD_REGISTER_NUMBER as c_int;

/// How many memory windows a root bus of a [`HostBridge`] takes.
pub(crate) const MAX_WINDOWS: usize = 4;

/// How many root buses a [`HostBridge`] can have in its domain.
pub(crate) const MAX_ROOT_BUSES: usize = 2;

/// Config space accessors of a host bridge's buses.
///
/// Called by the PCI core under its raw `pci_lock`, possibly from atomic
/// context: implementations must not sleep.
///
/// `'static`: the accessors can be reached until the bridge is torn down,
/// which for a leaked [`HostBridge`] is at unbind, whatever `'a` it had.
pub(crate) trait ConfigOps: Sync + 'static {
    /// Reads `len` (1, 2 or 4) bytes at `reg` of function `devfn` on bus
    /// number `bus`; [`None`] if there is no such place.
    fn read(&self, bus: u8, devfn: u8, reg: u16, len: u8) -> Option<u32>;

    /// Writes `len` (1, 2 or 4) bytes; `false` if there is no such place.
    fn write(&self, bus: u8, devfn: u8, reg: u16, len: u8, value: u32) -> bool;
}

/// Closes the I/O, memory and prefetchable windows of every PCI-to-PCI
/// bridge on `buses`, found through `ops` (not the PCI core's view), as
/// firmware does before it hands a hierarchy over: for a host bridge whose
/// hierarchy no firmware set up, before resources are assigned.
pub(crate) fn close_bridge_windows(ops: &impl ConfigOps, buses: RangeInclusive<u8>) {
    const HEADER_TYPE: u16 = bindings::PCI_HEADER_TYPE as u16;
    const CLASS_DEVICE: u16 = bindings::PCI_CLASS_DEVICE as u16;
    const IO_BASE: u16 = bindings::PCI_IO_BASE as u16;
    const IO_BASE_UPPER16: u16 = bindings::PCI_IO_BASE_UPPER16 as u16;
    const MEMORY_BASE: u16 = bindings::PCI_MEMORY_BASE as u16;
    const PREF_MEMORY_BASE: u16 = bindings::PCI_PREF_MEMORY_BASE as u16;
    const PREF_BASE_UPPER32: u16 = bindings::PCI_PREF_BASE_UPPER32 as u16;
    const PREF_LIMIT_UPPER32: u16 = bindings::PCI_PREF_LIMIT_UPPER32 as u16;
    for bus in buses {
        for dev in 0..32u8 {
            let hdr = match ops.read(bus, dev << 3, HEADER_TYPE, 1) {
                None | Some(0xff) => continue,
                Some(hdr) => hdr,
            };
            let functions = if hdr & bindings::PCI_HEADER_TYPE_MFD != 0 {
                8
            } else {
                1
            };
            for devfn in (0..functions).map(|f| dev << 3 | f) {
                let is_bridge = ops
                    .read(bus, devfn, HEADER_TYPE, 1)
                    .map(|h| h & bindings::PCI_HEADER_TYPE_MASK)
                    == Some(bindings::PCI_HEADER_TYPE_BRIDGE)
                    && ops.read(bus, devfn, CLASS_DEVICE, 2)
                        == Some(bindings::PCI_CLASS_BRIDGE_PCI);
                if !is_bridge {
                    continue;
                }
                // I/O: disable the upper half first, then close the window.
                ops.write(bus, devfn, IO_BASE_UPPER16, 4, 0x0000_ffff);
                ops.write(bus, devfn, IO_BASE, 2, 0x00f0);
                ops.write(bus, devfn, IO_BASE_UPPER16, 4, 0);
                // Memory, then prefetchable memory.
                ops.write(bus, devfn, MEMORY_BASE, 4, 0x0000_fff0);
                ops.write(bus, devfn, PREF_LIMIT_UPPER32, 4, 0);
                ops.write(bus, devfn, PREF_MEMORY_BASE, 4, 0x0000_fff0);
                ops.write(bus, devfn, PREF_BASE_UPPER32, 4, 0xffff_ffff);
            }
        }
    }
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

    use super::Private;
    use crate::kernel_ext::bindings as ext;

    /// The host bridge whose scan holds the hook: only its devices are
    /// looked up.
    static BRIDGE: AtomicPtr<bindings::pci_host_bridge> = AtomicPtr::new(ptr::null_mut());

    /// The hook, held for the scan of one host bridge and released when
    /// dropped: only its holder may clear it.
    pub(super) struct AcpiHook(());

    impl AcpiHook {
        /// Takes the hook for `bridge`, a [`super::HostBridge`]'s; [`None`]
        /// if another scan holds it (it is global and exclusive).
        pub(super) fn take(bridge: *mut bindings::pci_host_bridge) -> Option<Self> {
            // SAFETY: `companion` is a valid hook for as long as it is set,
            // and it is cleared only by the `AcpiHook` made below.
            if unsafe { ext::pci_acpi_set_companion_lookup_hook(Some(companion)) } != 0 {
                return None;
            }
            BRIDGE.store(bridge, Ordering::Release);
            Some(Self(()))
        }
    }

    impl Drop for AcpiHook {
        fn drop(&mut self) {
            // SAFETY: `self` stands for the hook `take` set: it is ours to
            // clear (which waits for running lookups).
            unsafe { ext::pci_acpi_clear_companion_lookup_hook() };
            BRIDGE.store(ptr::null_mut(), Ordering::Release);
        }
    }

    /// The ACPI companion of a device below the host bridge holding the
    /// hook: the bridge parent's companion's child at the address the
    /// driver's [`super::HostBridgeConfig::acpi_address`] gives.
    ///
    /// # Safety
    ///
    /// `pdev` is a valid PCI device being added (the ACPI core's contract).
    unsafe extern "C" fn companion(pdev: *mut bindings::pci_dev) -> *mut bindings::acpi_device {
        // SAFETY: `pdev` is valid for the call (the caller's guarantee), and
        // so is the bus it is on.
        let (bus, devfn) = unsafe { ((*pdev).bus, (*pdev).devfn) };
        // SAFETY: As above: `bus` is valid, and so is its host bridge.
        let bridge = unsafe { bindings::pci_find_host_bridge(bus) };
        if !ptr::eq(bridge, BRIDGE.load(Ordering::Acquire)) {
            return ptr::null_mut();
        }
        // SAFETY: The bridge holds the hook: a `HostBridge` made it, so its
        // private area is a `Private`; it, its root bus and its parent are
        // valid while its devices are added.
        let (private, number, root_number, parent) = unsafe {
            (
                Private::of(bridge),
                (*bus).number,
                (*(*bridge).bus).number,
                (*bridge).dev.parent,
            )
        };
        let address = private
            .acpi_address
            .and_then(|address| address(number.wrapping_sub(root_number), devfn as u8));
        let Some(address) = address else {
            return ptr::null_mut();
        };
        // SAFETY: `parent` is valid (see above); its companion is an ACPI
        // device or null, which the lookup accepts.
        unsafe {
            bindings::acpi_find_child_device(ext::kernel_ext_acpi_companion(parent), address, false)
        }
    }
}

/// Without CONFIG_ACPI there is no hook, and no firmware companion to find.
#[cfg(not(CONFIG_ACPI))]
mod acpi_hook {
    use kernel::bindings;

    /// Never held: there is nothing to hold.
    pub(super) enum AcpiHook {}

    impl AcpiHook {
        /// [`None`], always.
        pub(super) fn take(_bridge: *mut bindings::pci_host_bridge) -> Option<Self> {
            None
        }
    }
}

/// A device below a [`HostBridge`], during [`HostBridge::for_each_device`]
/// (the bus list is locked: the `*_locked` PCI calls apply).
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

    /// Vendor and device ID.
    // Only the KUnit suite's user asks yet.
    #[cfg_attr(not(CONFIG_KUNIT = "y"), allow(dead_code))]
    pub(crate) fn ids(&self) -> (u16, u16) {
        // SAFETY: The device is valid.
        unsafe { ((*self.raw()).vendor, (*self.raw()).device) }
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

/// A memory window of a host bridge.
pub(crate) struct Window<'a> {
    /// First and last CPU address (inclusive).
    start: u64,
    end: u64,
    /// CPU address minus bus address.
    offset: u64,
    flags: c_ulong,
    /// Its name in /proc/iomem.
    name: &'static CStr,
    /// The resource the window is carved out of: the window is linked
    /// below it while the bridge is registered.
    within: Option<NonNull<bindings::resource>>,
    _within: PhantomData<&'a bindings::resource>,
}

impl<'a> Window<'a> {
    /// CPU addresses `start` to `end` (inclusive) of BAR `bar` of `pdev`,
    /// with the BAR's flags (without the 64-bit flag if the window lies below
    /// 4 GiB: it then takes 32-bit BARs); linked below the BAR.
    pub(crate) fn in_bar(
        pdev: &'a pci::Device<Bound>,
        bar: u32,
        (start, end): (u64, u64),
        offset: u64,
        name: &'static CStr,
    ) -> Result<Self> {
        if bar >= bindings::PCI_STD_NUM_BARS {
            return Err(EINVAL);
        }
        // SAFETY: `pdev` is valid (borrowed for `'a`), and so is its BAR's
        // resource, which the window borrows for `'a`: only its address is
        // taken.
        let res = unsafe { &raw mut (*raw_pci_dev(pdev)).resource[bar as usize] };
        // SAFETY: As above: `res` is valid for reads.
        let (bar_start, bar_end, bar_flags) = unsafe { ((*res).start, (*res).end, (*res).flags) };
        if start < bar_start || start > end || end > bar_end {
            return Err(EINVAL);
        }
        let mut flags = bar_flags & !(bindings::IORESOURCE_SIZEALIGN as c_ulong);
        if end >> 32 == 0 {
            flags &= !(bindings::IORESOURCE_MEM_64 as c_ulong);
        }
        Ok(Self {
            start,
            end,
            offset,
            flags,
            name,
            within: NonNull::new(res),
            _within: PhantomData,
        })
    }

    /// A memory window on its own, from `start` to `end` (inclusive), in no
    /// other resource.
    // Only the KUnit suite's user asks yet.
    #[cfg_attr(not(CONFIG_KUNIT = "y"), allow(dead_code))]
    pub(crate) fn memory(start: u64, end: u64, offset: u64, name: &'static CStr) -> Result<Self> {
        if start > end {
            return Err(EINVAL);
        }
        Ok(Self {
            start,
            end,
            offset,
            flags: bindings::IORESOURCE_MEM as c_ulong,
            name,
            within: None,
            _within: PhantomData,
        })
    }
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

/// One root bus of a [`HostBridge`]: what its `pci_host_bridge` is made of.
pub(crate) struct HostBridgeConfig<'a> {
    /// The root bus's number and the last bus number below it.
    pub(crate) buses: (u8, u8),
    /// Name of the bus number resource.
    pub(crate) bus_name: &'static CStr,
    /// The memory windows, at most [`MAX_WINDOWS`].
    pub(crate) windows: KVec<Window<'a>>,
    /// The buses' DMA and MSIs carry the requester ID of the parent, which
    /// must be a PCI device (x86 finds it in the arch's sysdata of the
    /// buses: `pci_real_dma_dev()`). The bridge device holds a reference to
    /// its parent for as long as the sysdata can be read.
    pub(crate) dma_alias_parent: bool,
    /// Give the bridge the native-control grants (_OSC) of this device's
    /// host bridge, not all of them.
    pub(crate) grants_of: Option<&'a pci::Device<Bound>>,
    /// Look up the devices' ACPI companions under the parent's while they
    /// are scanned and added (firmware may describe them there): the
    /// address (`_ADR`) of a device's companion, from its bus number
    /// relative to this root bus and its devfn; [`None`] if it has none.
    /// Without CONFIG_ACPI there are none. (Two root buses of a domain
    /// under one companion would give their devices the same addresses.)
    pub(crate) acpi_address: Option<fn(u8, u8) -> Option<u64>>,
    /// Name of the parent device's sysfs link to the root bus, if any.
    pub(crate) link_name: Option<&'static CStr>,
    /// Reset the secondary bus below the first root port with devices after
    /// the scan: the root ports are not in firmware's view, so resetting
    /// the hierarchy is the driver's job.
    pub(crate) reset_after_scan: bool,
}

/// A host bridge's private area (`pci_host_bridge.private`): what the PCI
/// core and the accessors reach through the bridge, for as long as the
/// bridge's `struct device` lives.
#[repr(C)]
struct Private {
    /// What `bus->sysdata` of every bus below points at.
    sysdata: Opaque<bindings::pci_sysdata>,
    /// The owner's `ConfigOps`, set before the bridge is registered; null
    /// once the owner has revoked them.
    ops: AtomicPtr<c_void>,
    acpi_address: Option<fn(u8, u8) -> Option<u64>>,
    /// The bus number resource, then the windows.
    resources: Opaque<[bindings::resource; 1 + MAX_WINDOWS]>,
    /// Bit `i`: window `i` is linked below the resource it is carved out of.
    linked: AtomicU8,
}

// A `Private` fits the private area's alignment.
const _: () = assert!(mem::align_of::<Private>() <= mem::align_of::<bindings::pci_host_bridge>());

impl Private {
    /// The private area of `bridge`.
    ///
    /// # Safety
    ///
    /// `bridge` is a valid host bridge allocated by [`HostBridge`], whose
    /// private area holds an initialised `Private`.
    unsafe fn of<'b>(bridge: *mut bindings::pci_host_bridge) -> &'b Self {
        // SAFETY: The caller's guarantee; the area lives with the bridge.
        unsafe { &*Self::area(bridge) }
    }

    /// The address of `bridge`'s private area.
    ///
    /// # Safety
    ///
    /// `bridge` is valid, allocated with a private area of a `Private`'s size.
    unsafe fn area(bridge: *mut bindings::pci_host_bridge) -> *mut Self {
        // SAFETY: The caller's guarantee: only the address is taken.
        unsafe { (*bridge).private.as_mut_ptr().cast::<Self>() }
    }

    /// The private area of the host bridge of `bus`.
    ///
    /// # Safety
    ///
    /// `bus` is a valid bus below a host bridge made by [`HostBridge`].
    unsafe fn of_bus<'b>(bus: *mut bindings::pci_bus) -> &'b Self {
        // SAFETY: `bus` is valid; every bus below the bridge shares its
        // sysdata, the `sysdata` field of its `Private`.
        let sysdata = unsafe { (*bus).sysdata.cast::<Opaque<bindings::pci_sysdata>>() };
        // SAFETY: As above; the bridge, and with it its private area, lives
        // while a bus below it does.
        unsafe { &*kernel::container_of!(sysdata, Self, sysdata) }
    }

    /// Window `i`'s resource (`i` counted from the bus number resource).
    fn resource(&self, i: usize) -> *mut bindings::resource {
        self.resources
            .get()
            .cast::<bindings::resource>()
            .wrapping_add(i)
    }
}

/// The static `pci_ops` of the host bridges whose accessors are a `T`.
struct Accessors<T>(PhantomData<T>);

impl<T: ConfigOps> Accessors<T> {
    const OPS: bindings::pci_ops = bindings::pci_ops {
        add_bus: None,
        remove_bus: None,
        map_bus: None,
        read: Some(Self::read),
        write: Some(Self::write),
    };

    /// Runs `f` on the published accessors of `bus`'s bridge and its
    /// decoded arguments, under RCU (which their revocation waits for).
    ///
    /// # Safety
    ///
    /// `bus` is a valid bus below a host bridge made by [`HostBridge`] with
    /// accessors of type `T`.
    unsafe fn with(
        bus: *mut bindings::pci_bus,
        devfn: c_uint,
        reg: c_int,
        len: c_int,
        f: impl FnOnce(&T, u8, u8, u16, u8) -> c_int,
    ) -> c_int {
        let (Ok(devfn), Ok(reg), Ok(len)) =
            (u8::try_from(devfn), u16::try_from(reg), u8::try_from(len))
        else {
            return PCIBIOS_BAD_REGISTER_NUMBER;
        };
        let _rcu = rcu::read_lock();
        // SAFETY: The caller's guarantee.
        let (private, number) = unsafe { (Private::of_bus(bus), (*bus).number) };
        let ops = private.ops.load(Ordering::Acquire).cast::<T>();
        if ops.is_null() {
            return PCIBIOS_DEVICE_NOT_FOUND;
        }
        // SAFETY: A non-null pointer is the owner's pinned `T` (`HostBridge`'s
        // invariant), which it revokes and then waits for RCU readers such
        // as this one before it goes.
        f(unsafe { &*ops }, number, devfn, reg, len)
    }

    /// `pci_ops.read`: forwards to [`ConfigOps::read`].
    ///
    /// # Safety
    ///
    /// `bus` must be a bus below a host bridge made by [`HostBridge`] with
    /// accessors of type `T`, and `value` valid for writes, as the PCI core
    /// guarantees for the `pci_ops` it was given.
    unsafe extern "C" fn read(
        bus: *mut bindings::pci_bus,
        devfn: c_uint,
        reg: c_int,
        len: c_int,
        value: *mut u32,
    ) -> c_int {
        let read = |ops: &T, bus, devfn, reg, len| match ops.read(bus, devfn, reg, len) {
            Some(v) => {
                // SAFETY: `value` is valid for writes by the `pci_ops` contract.
                unsafe { *value = v };
                0
            }
            None => PCIBIOS_DEVICE_NOT_FOUND,
        };
        // SAFETY: Our caller's guarantee is `with`'s requirement.
        unsafe { Self::with(bus, devfn, reg, len, read) }
    }

    /// `pci_ops.write`: forwards to [`ConfigOps::write`].
    ///
    /// # Safety
    ///
    /// `bus` must be a bus below a host bridge made by [`HostBridge`] with
    /// accessors of type `T`, as the PCI core guarantees for its `pci_ops`.
    unsafe extern "C" fn write(
        bus: *mut bindings::pci_bus,
        devfn: c_uint,
        reg: c_int,
        len: c_int,
        value: u32,
    ) -> c_int {
        let write = |ops: &T, bus, devfn, reg, len| {
            if ops.write(bus, devfn, reg, len, value) {
                0
            } else {
                PCIBIOS_DEVICE_NOT_FOUND
            }
        };
        // SAFETY: Our caller's guarantee is `with`'s requirement.
        unsafe { Self::with(bus, devfn, reg, len, write) }
    }
}

/// A PCI domain of an emulated host bridge, its root buses registered,
/// scanned and added: one, or up to [`MAX_ROOT_BUSES`] sharing the
/// domain, the config accessors and the MSI domain (a `pci_host_bridge`
/// each, as the PCI core has it).
///
/// # Invariants
///
/// - Each of `bridges` is null, or a registered host bridge this object
///   made, whose reference it holds; its private area is an initialised
///   [`Private`] whose `ops` points at `self.ops` or is null. The first
///   root bus's bridge holds the domain number.
/// - The bridges' buses take their MSIs from `msi`'s domain if there is
///   one, which therefore lives until the bridges are removed.
/// - While a bridge is non-null, a devres action of `parent` tears the
///   bridges down with `backstop`, should `self` outlive the binding
///   without being dropped (leaked).
#[pin_data(PinnedDrop)]
pub(crate) struct HostBridge<'a, T: ConfigOps, M: MsiParentOps> {
    #[pin]
    ops: T,
    parent: &'a device::Device<Bound>,
    msi: Option<Pin<KBox<MsiParent<M>>>>,
    link_names: [Option<&'static CStr>; MAX_ROOT_BUSES],
    domain_nr: i32,
    bridges: [AtomicPtr<bindings::pci_host_bridge>; MAX_ROOT_BUSES],
    /// Why a root bus after the first is not there (an errno, 0 if it is
    /// or was never asked for).
    errors: [AtomicI32; MAX_ROOT_BUSES],
    backstop: Backstop,
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: The bridge may be torn down from any thread; `T` is `Send`, and
// `MsiParent` is.
unsafe impl<T: ConfigOps + Send, M: MsiParentOps> Send for HostBridge<'_, T, M> {}
// SAFETY: `&HostBridge` reads fields and calls `T` through `&T` (`Sync`);
// the teardown through `&self` runs once for each bridge (its swap).
unsafe impl<T: ConfigOps, M: MsiParentOps> Sync for HostBridge<'_, T, M> {}

impl<'a, T: ConfigOps, M: MsiParentOps> HostBridge<'a, T, M> {
    /// Creates the root buses `configs` of `parent`'s domain `domain` with
    /// `ops` as their config accessors, scans them, assigns resources and
    /// adds their devices, as `pci_host_probe()` does, one root bus after
    /// the other. Their devices' MSIs go through `msi`, or with [`None`]
    /// through the parent's MSI domain, as if the bridge were not there.
    ///
    /// The first root bus must come up; one after it that cannot is left
    /// out (see [`HostBridge::root_bus_result`]) and the others stay.
    ///
    /// `after_scan` runs after each root bus's scan with its bus numbers,
    /// before resources are assigned (the driver may close stale windows
    /// there); `after_assign` on every device once resources are assigned.
    pub(crate) fn new(
        parent: &'a device::Device<Bound>,
        domain: DomainNr,
        ops: impl PinInit<T, Error> + 'a,
        configs: KVec<HostBridgeConfig<'a>>,
        msi: Option<Pin<KBox<MsiParent<M>>>>,
        after_scan: impl FnMut(&T, (u8, u8)) + 'a,
        after_assign: impl FnMut(&BusDevice<'_>) + 'a,
    ) -> impl PinInit<Self, Error> + 'a {
        let mut link_names = [None; MAX_ROOT_BUSES];
        for (name, config) in link_names.iter_mut().zip(configs.iter()) {
            *name = config.link_name;
        }
        let nr = domain.get();
        try_pin_init!(&this in Self {
            ops <- ops,
            parent,
            msi,
            link_names,
            domain_nr: nr,
            bridges: [const { AtomicPtr::new(ptr::null_mut()) }; MAX_ROOT_BUSES],
            errors: [const { AtomicI32::new(0) }; MAX_ROOT_BUSES],
            backstop: Backstop::new(Self::run_backstop),
            _pin: PhantomPinned,
            // Last: C gets pointers into `Self` only once the rest is there.
            _: {
                // SAFETY: Every field is initialised; `this` stays pinned
                // until `PinnedDrop` has torn the bridges down.
                unsafe { Self::probe(this, domain, configs, after_scan, after_assign) }?;
            },
        }? Error)
    }

    /// Registers the root buses, the first with the domain number.
    ///
    /// # Safety
    ///
    /// `this` is a pinned `Self` with every field initialised, dropped
    /// through `PinnedDrop` only. On error nothing of this remains.
    unsafe fn probe(
        this: NonNull<Self>,
        domain: DomainNr,
        configs: KVec<HostBridgeConfig<'a>>,
        mut after_scan: impl FnMut(&T, (u8, u8)),
        mut after_assign: impl FnMut(&BusDevice<'_>),
    ) -> Result {
        // SAFETY: The caller's guarantee: every field is initialised.
        let this_ref = unsafe { this.as_ref() };
        if configs.is_empty() || configs.len() > MAX_ROOT_BUSES {
            return Err(EINVAL);
        }
        // SAFETY: `backstop` is pinned in `this_ref`, whose teardown
        // `run_backstop` is (idempotent); `PinnedDrop` disarms it before
        // `self` goes, and the error path below does.
        unsafe { this_ref.backstop.arm(this_ref.parent) }?;
        let mut domain = Some(domain);
        for (i, config) in configs.into_iter().enumerate() {
            // SAFETY: The caller's guarantee; root buses are added in order.
            let added = unsafe {
                this_ref.add_root_bus(i, domain.take(), config, &mut after_scan, &mut after_assign)
            };
            match added {
                Ok(()) => {}
                Err(e) if i == 0 => {
                    this_ref.backstop.disarm(this_ref.parent);
                    return Err(e);
                }
                Err(e) => this_ref.errors[i].store(e.to_errno(), Ordering::Relaxed),
            }
        }
        Ok(())
    }

    /// Registers root bus `i` and does `pci_host_probe()`'s work; the first
    /// takes the domain number (a later one is in the same domain through
    /// its sysdata).
    ///
    /// # Safety
    ///
    /// As for [`HostBridge::probe`]; `bridges[..i]` are set (the first at
    /// least), `bridges[i]` is null, and `domain` is [`Some`] for `i == 0`
    /// only. On error nothing of root bus `i` remains.
    unsafe fn add_root_bus(
        &self,
        i: usize,
        domain: Option<DomainNr>,
        config: HostBridgeConfig<'a>,
        after_scan: &mut impl FnMut(&T, (u8, u8)),
        after_assign: &mut impl FnMut(&BusDevice<'_>),
    ) -> Result {
        if config.windows.len() > MAX_WINDOWS {
            return Err(EINVAL);
        }
        if (i == 0) != domain.is_some()
            || (i != 0 && self.bridges[0].load(Ordering::Acquire).is_null())
        {
            return Err(EINVAL);
        }
        // pci_register_host_bridge() merges a window into the next one when
        // they touch (same flags and offset) and releases it from its parent
        // resource, which a window in no other resource does not have.
        let merged_orphan = config.windows.windows(2).any(|w| {
            w[0].within.is_none()
                && w[0].end.checked_add(1) == Some(w[1].start)
                && (w[0].flags, w[0].offset) == (w[1].flags, w[1].offset)
        });
        if merged_orphan {
            return Err(EINVAL);
        }
        let dev = ptr::from_ref(self.parent)
            .cast::<bindings::device>()
            .cast_mut();
        let mut sysdata = bindings::pci_sysdata {
            domain: self.domain_nr,
            // SAFETY: `dev` is valid.
            node: unsafe { ext::kernel_ext_dev_to_node(dev) },
            ..Default::default()
        };
        // SAFETY: `sysdata` is valid for writes; `dev` is valid.
        if config.dma_alias_parent && !unsafe { ext::kernel_ext_sysdata_alias(&mut sysdata, dev) } {
            return Err(EINVAL);
        }
        // SAFETY: Plain allocation.
        let bridge = unsafe { bindings::pci_alloc_host_bridge(mem::size_of::<Private>()) };
        if bridge.is_null() {
            return Err(ENOMEM);
        }
        // The domain number goes with the first bridge: its release frees it,
        // after the last bus below it is gone. A later bridge has none (no
        // `release_fn` either: no module text may run after unload); one of
        // its devices held past the removal may outlive the number, harmless
        // as its buses are on no list any more.
        let domain = ManuallyDrop::new(domain);
        if let Some(domain) = domain.as_ref() {
            // SAFETY: `bridge` is ours, unregistered.
            unsafe { (*bridge).domain_nr = domain.get() };
        }
        let mut resources = [bindings::resource {
            name: config.bus_name.as_char_ptr(),
            start: config.buses.0.into(),
            end: config.buses.1.into(),
            flags: (bindings::IORESOURCE_BUS | bindings::IORESOURCE_PCI_FIXED) as c_ulong,
            ..Default::default()
        }; 1 + MAX_WINDOWS];
        for (i, w) in config.windows.iter().enumerate() {
            resources[i + 1] = bindings::resource {
                name: w.name.as_char_ptr(),
                start: w.start,
                end: w.end,
                flags: w.flags,
                // What it is carved out of, before it is linked there: the
                // PCI core releases a window it merges into the next, which
                // needs a parent.
                parent: w.within.map_or(ptr::null_mut(), NonNull::as_ptr),
                ..Default::default()
            };
        }
        let private = Private {
            sysdata: Opaque::new(sysdata),
            ops: AtomicPtr::new(ptr::from_ref(&self.ops).cast::<c_void>().cast_mut()),
            acpi_address: config.acpi_address,
            resources: Opaque::new(resources),
            linked: AtomicU8::new(0),
        };
        // SAFETY: `bridge` was allocated above with a private area of a
        // `Private`'s size and alignment; nothing else uses it yet.
        let area = unsafe { Private::area(bridge) };
        // SAFETY: As above: `area` is valid for writes.
        unsafe { area.write(private) };
        // SAFETY: As above: it now holds an initialised `Private`.
        let private = unsafe { Private::of(bridge) };

        // The PCI core never writes through `ops`.
        let ops: &'static bindings::pci_ops = &Accessors::<T>::OPS;
        // SAFETY: `bridge` is ours, unregistered; what it points at outlives
        // it: `dev` (bound for `'a`), the static ops, its own private area.
        unsafe {
            (*bridge).dev.parent = dev;
            (*bridge).sysdata = private.sysdata.get().cast::<c_void>();
            (*bridge).ops = ptr::from_ref(ops).cast_mut();
            (*bridge).busnr = config.buses.0.into();
        }
        if let Some(from) = config.grants_of {
            // SAFETY: `from` is valid, and so is its bus, which has a host
            // bridge.
            let from = unsafe { bindings::pci_find_host_bridge((*raw_pci_dev(from)).bus) };
            // Only what the OS may control on the physical bus above.
            // SAFETY: `from` is valid; `bridge` is ours and unregistered.
            unsafe {
                (*bridge).set_native_pcie_hotplug((*from).native_pcie_hotplug());
                (*bridge).set_native_shpc_hotplug((*from).native_shpc_hotplug());
                (*bridge).set_native_aer((*from).native_aer());
                (*bridge).set_native_pme((*from).native_pme());
                (*bridge).set_native_ltr((*from).native_ltr());
                (*bridge).set_native_dpc((*from).native_dpc());
            }
        }
        // The root bus takes the bridge's MSI domain: remapped, or the parent's.
        let msi_domain = match &self.msi {
            Some(msi) => msi.irq_domain(),
            // SAFETY: `dev` is valid.
            None => unsafe { ext::kernel_ext_dev_get_msi_domain(dev) },
        };
        // SAFETY: `bridge` is ours; the domain outlives it (type invariant).
        unsafe { ext::kernel_ext_dev_set_msi_domain(&raw mut (*bridge).dev, msi_domain) };
        // SAFETY: `bridge`'s window list is initialised; the resources live in
        // the private area as long as the bridge.
        unsafe {
            let windows = &raw mut (*bridge).windows;
            bindings::pci_add_resource(windows, private.resource(0));
            for (i, w) in config.windows.iter().enumerate() {
                bindings::pci_add_resource_offset(windows, private.resource(i + 1), w.offset);
            }
        }

        // Held to the end: scanning and adding the devices look companions
        // up. If another driver holds the hook, go without.
        let _hook = config.acpi_address.and_then(|_| AcpiHook::take(bridge));
        // A second reference for the error path below.
        // SAFETY: `bridge` is valid, its device initialised.
        unsafe { bindings::get_device(&raw mut (*bridge).dev) };
        // Held until the devices are configured: a rescan in between would
        // add them before the driver's hooks ran and resources were assigned.
        // SAFETY: Takes a mutex we do not hold; released below.
        unsafe { bindings::pci_lock_rescan_remove() };
        // SAFETY: `bridge` is fully set up; the rescan lock is held.
        let ret = to_result(unsafe { bindings::pci_scan_root_bus_bridge(bridge) });
        if let Err(e) = ret {
            // SAFETY: Taken above.
            unsafe { bindings::pci_unlock_rescan_remove() };
            // The hook must not name a bridge that is about to be freed.
            drop(_hook);
            // 7.3's pci_register_host_bridge() puts one reference too many
            // when the root bus's device_register() fails after the bridge's
            // device_add() succeeded: its `unregister:` path puts the
            // bridge, and the bus's release puts it again. The second
            // reference keeps the bridge for this look: a device that was
            // added has its private data, one that was not has none.
            // SAFETY: `bridge` is valid (the second reference).
            let added = unsafe { !(*bridge).dev.p.is_null() };
            // SAFETY: The second reference, put once.
            unsafe { bindings::put_device(&raw mut (*bridge).dev) };
            if !added {
                // SAFETY: Ours, the last: its release frees the window list,
                // the domain number if it has it, and the private area
                // (nothing in it needs dropping).
                unsafe { bindings::pci_free_host_bridge(bridge) };
            }
            return Err(e);
        }
        // SAFETY: The second reference, put once.
        unsafe { bindings::put_device(&raw mut (*bridge).dev) };
        // INVARIANT: `bridge` is registered, with our reference; the backstop
        // action is in place.
        self.bridges[i].store(bridge, Ordering::Release);
        // SAFETY: Registered: its root bus is valid.
        let bus = unsafe { (*bridge).bus };

        // Link each window below what it is carved out of, now that the PCI
        // core will not merge or move it: it shows in the resource tree and
        // conflicts are found there.
        let mut linked = 0u8;
        for (i, w) in config.windows.iter().enumerate() {
            let res = private.resource(i + 1);
            // SAFETY: `res` is valid; reading its flags is what the PCI core
            // does under the same rescan lock.
            if unsafe { (*res).flags } == 0 {
                continue;
            }
            if let Some(within) = w.within {
                // SAFETY: `within` is valid for `'a`; `res` lives with the
                // bridge, and teardown releases it before the bridge goes.
                if unsafe { bindings::insert_resource(within.as_ptr(), res) } == 0 {
                    linked |= 1 << i;
                }
            }
        }
        private.linked.store(linked, Ordering::Relaxed);

        after_scan(&self.ops, config.buses);
        if config.reset_after_scan {
            // SAFETY: We hold the rescan lock.
            if let Err(e) = unsafe { reset_first_root_port(bus) } {
                dev_warn!(
                    self.parent,
                    "can't reset the hierarchy below the root bus: {:?}; devices keep the state firmware left\n",
                    e
                );
            }
        }
        // SAFETY: As for the scan.
        unsafe { bindings::pci_assign_unassigned_bus_resources(bus) };
        // SAFETY: `bridge` is registered: its bus is valid.
        unsafe { walk_bus(bridge, after_assign) };
        // The root bus is not PCIe; its root ports are.
        let configure = |child: *mut bindings::pci_bus| {
            // SAFETY: `child` is a valid, scanned bus below our root bus.
            unsafe { bindings::pcie_bus_configure_settings(child) };
            true
        };
        // SAFETY: We hold the rescan lock.
        unsafe { for_each_child_bus(bus, configure) };
        // Drivers bind below here: pciehp takes the rescan lock itself.
        // SAFETY: Taken above.
        unsafe { bindings::pci_unlock_rescan_remove() };
        // SAFETY: `bus` is valid, its devices scanned and configured.
        unsafe { bindings::pci_bus_add_devices(bus) };
        if let Some(link) = config.link_name {
            // Best effort, as `pci_host_probe()` callers' links: a missing one
            // costs nothing else.
            // SAFETY: `dev` and `bus` are valid; the teardown removes the link.
            let _ = unsafe {
                bindings::sysfs_create_link(
                    &raw mut (*dev).kobj,
                    &raw mut (*bus).dev.kobj,
                    link.as_char_ptr(),
                )
            };
        }
        Ok(())
    }

    /// The PCI domain number of the bridge.
    pub(crate) fn domain(&self) -> i32 {
        self.domain_nr
    }

    /// The MSI parent domain of the children's MSIs, if the bridge has one.
    pub(crate) fn msi_parent(&self) -> Option<&MsiParent<M>> {
        self.msi.as_deref()
    }

    /// Whether root bus `i` (in the order [`HostBridge::new`] was given
    /// them) is there, or why it is not.
    pub(crate) fn root_bus_result(&self, i: usize) -> Result {
        match self.errors.get(i).map(|e| e.load(Ordering::Relaxed)) {
            None => Err(EINVAL),
            Some(0) if !self.bridges[i].load(Ordering::Acquire).is_null() => Ok(()),
            Some(0) => Err(ENODEV),
            Some(e) => Err(Error::from_errno(e)),
        }
    }

    /// Runs `f` on every device below the root buses, with each bus list
    /// locked in turn, as `pci_walk_bus` does.
    pub(crate) fn for_each_device<F: FnMut(&BusDevice<'_>)>(&self, mut f: F) {
        for bridge in &self.bridges {
            let bridge = bridge.load(Ordering::Acquire);
            if !bridge.is_null() {
                // SAFETY: `bridge` is registered (type invariant).
                unsafe { walk_bus(bridge, &mut f) };
            }
        }
    }

    /// The [`Backstop`]'s teardown: that of the `HostBridge` around it.
    ///
    /// # Safety
    ///
    /// `backstop` is the `backstop` field of a live `HostBridge<'a, T, M>`.
    unsafe fn run_backstop(backstop: *const Backstop) {
        // SAFETY: The caller's guarantee.
        let this = unsafe { &*kernel::container_of!(backstop, Self, backstop) };
        this.teardown();
    }

    /// Removes the root buses, last first; once only, whoever comes first
    /// (the owner's drop or the devres backstop).
    fn teardown(&self) {
        for i in (0..MAX_ROOT_BUSES).rev() {
            let bridge = self.bridges[i].swap(ptr::null_mut(), Ordering::AcqRel);
            if !bridge.is_null() {
                // SAFETY: Taken out of `bridges`: registered, with our
                // reference (type invariant), torn down once.
                unsafe { self.remove_root_bus(bridge, self.link_names[i]) };
            }
        }
    }

    /// Removes a bridge, its buses and devices, then revokes the accessors
    /// and unlinks the windows.
    ///
    /// # Safety
    ///
    /// `bridge` is one of ours, registered, with our reference, which this
    /// consumes; `link` the name its root bus was linked by.
    unsafe fn remove_root_bus(
        &self,
        bridge: *mut bindings::pci_host_bridge,
        link: Option<&'static CStr>,
    ) {
        let dev = ptr::from_ref(self.parent)
            .cast::<bindings::device>()
            .cast_mut();
        // SAFETY: `bridge` is registered, with our reference (type
        // invariant): it and its root bus are valid.
        let bus = unsafe { (*bridge).bus };
        // Unbinding drivers (pciehp's IRQ thread) may need the rescan lock:
        // take it only once they are gone, for the removal.
        // SAFETY: As above.
        unsafe { bindings::pci_stop_root_bus(bus) };
        if let Some(link) = link {
            // SAFETY: `dev` is valid; the link is `probe`'s, if it made one.
            unsafe { bindings::sysfs_remove_link(&raw mut (*dev).kobj, link.as_char_ptr()) };
        }
        // SAFETY: Takes a mutex we do not hold; released below.
        unsafe { bindings::pci_lock_rescan_remove() };
        // SAFETY: `bus` is our root bus, stopped; the rescan lock is held.
        unsafe { bindings::pci_remove_root_bus(bus) };
        // SAFETY: Taken above.
        unsafe { bindings::pci_unlock_rescan_remove() };
        // SAFETY: `bridge` is valid (our reference) and a `HostBridge`'s.
        let private = unsafe { Private::of(bridge) };
        // A `pci_dev` may outlive the removal and still make config cycles:
        // they find no accessors from here on, and running ones end first.
        private.ops.store(ptr::null_mut(), Ordering::Release);
        rcu::synchronize_rcu();
        let linked = private.linked.load(Ordering::Relaxed);
        for i in 0..MAX_WINDOWS {
            if linked & (1 << i) != 0 {
                // SAFETY: `probe` linked this resource, which nothing else
                // unlinks.
                unsafe { bindings::release_resource(private.resource(i + 1)) };
            }
        }
        // `pci_remove_root_bus()` only `device_del()`s the bridge (since
        // 9885440b16b8, v5.8): the allocator's reference is ours to put. The
        // bridge, with its private area and domain number, goes with the last
        // reference.
        // SAFETY: That reference is ours, put once.
        unsafe { bindings::pci_free_host_bridge(bridge) };
    }
}

/// Resets the secondary bus below the first root port of `bus` with devices.
///
/// # Safety
///
/// `bus` is a valid root bus; the caller holds the rescan lock.
unsafe fn reset_first_root_port(bus: *mut bindings::pci_bus) -> Result {
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
    // SAFETY: The caller's guarantee.
    unsafe { for_each_child_bus(bus, reset_first) };
    reset
}

/// Runs `f` on each bus directly below `bus`, until it returns `false`.
///
/// # Safety
///
/// `bus` is valid; the caller holds the rescan lock: the list of child
/// buses is stable.
unsafe fn for_each_child_bus(
    bus: *mut bindings::pci_bus,
    mut f: impl FnMut(*mut bindings::pci_bus) -> bool,
) {
    // SAFETY: `bus` is valid: only a field's address is taken.
    let head = unsafe { &raw mut (*bus).children };
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

/// Runs `f` on every device below `bridge`'s root bus, with the bus list
/// locked, as `pci_walk_bus` does.
///
/// # Safety
///
/// `bridge` is registered.
unsafe fn walk_bus<F: FnMut(&BusDevice<'_>)>(bridge: *mut bindings::pci_host_bridge, f: &mut F) {
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
    // SAFETY: `bridge` is registered (the caller's guarantee): its bus is
    // valid; `f` outlives the walk.
    unsafe {
        bindings::pci_walk_bus(
            (*bridge).bus,
            Some(visit::<F>),
            ptr::from_mut(f).cast::<c_void>(),
        )
    };
}

#[pinned_drop]
impl<T: ConfigOps, M: MsiParentOps> PinnedDrop for HostBridge<'_, T, M> {
    fn drop(self: Pin<&mut Self>) {
        if self.bridges[0].load(Ordering::Acquire).is_null() {
            return;
        }
        // The devres action is not needed any more; if it already ran, the
        // bridge is gone and `teardown` does nothing.
        self.backstop.disarm(self.parent);
        // The root buses with their devices and host bridges go before the
        // accessors (`ops`) and the MSI domain (`msi`), which drop after this.
        self.teardown();
    }
}

/// A second user of [`HostBridge`], with no hardware: a host bridge over a
/// config space held in memory, with one endpoint.
#[kunit_tests(kernel_ext_pci_host)]
mod tests {
    use core::sync::atomic::AtomicU32;

    use kernel::{
        bindings,
        device,
        error::from_err_ptr,
        prelude::*, //
    };

    use super::*;
    use crate::kernel_ext::msi_parent::{
        ChildIrq,
        MsiChild,
        MsiMessage, //
    };

    /// Red Hat's vendor ID with a device ID no driver claims.
    const VENDOR: u16 = 0x1b36;
    const DEVICE: u16 = 0xfffe;
    /// BAR 0's size.
    const BAR_SIZE: u32 = 0x1000;
    /// The window: CPU addresses no memory is at, bus addresses a 32-bit
    /// BAR takes.
    const WINDOW_CPU: u64 = 0x7f00_0000_0000;
    const WINDOW_BUS: u64 = 0x8000_0000;

    /// The number of the second root bus in the two-root-bus test.
    const OTHER_BUS: u8 = 5;

    /// Function 0 of bus 0 and of bus [`OTHER_BUS`]: a type 0 header, class
    /// "unassigned", a 4 KiB 32-bit memory BAR 0; the command register and
    /// interrupt line are writable.
    struct FakeConfig([[AtomicU32; 16]; 2]);

    impl FakeConfig {
        fn new() -> Self {
            let space = [const { [const { AtomicU32::new(0) }; 16] }; 2];
            for s in &space {
                s[0].store(
                    u32::from(DEVICE) << 16 | u32::from(VENDOR),
                    Ordering::Relaxed,
                );
                s[2].store(0xff00_0000, Ordering::Relaxed);
            }
            Self(space)
        }

        /// The function's config space, if `bus` and `devfn` name one.
        fn space(&self, bus: u8, devfn: u8) -> Option<&[AtomicU32; 16]> {
            match (bus, devfn) {
                (0, 0) => Some(&self.0[0]),
                (OTHER_BUS, 0) => Some(&self.0[1]),
                _ => None,
            }
        }

        /// Writable bits of each dword.
        fn writable(dword: usize) -> u32 {
            match dword {
                1 => 0x0000_ffff,
                4 => BAR_SIZE.wrapping_neg(),
                15 => 0x0000_00ff,
                _ => 0,
            }
        }
    }

    impl ConfigOps for FakeConfig {
        fn read(&self, bus: u8, devfn: u8, reg: u16, len: u8) -> Option<u32> {
            let space = self.space(bus, devfn)?;
            let shift = u32::from(reg % 4) * 8;
            let mask = match len {
                1 => 0xff,
                2 => 0xffff,
                _ => u32::MAX,
            };
            let dword = space
                .get(usize::from(reg / 4))
                .map_or(0, |d| d.load(Ordering::Relaxed));
            Some(dword >> shift & mask)
        }

        fn write(&self, bus: u8, devfn: u8, reg: u16, len: u8, value: u32) -> bool {
            let Some(space) = self.space(bus, devfn) else {
                return false;
            };
            let i = usize::from(reg / 4);
            let shift = u32::from(reg % 4) * 8;
            let mask = match len {
                1 => 0xff << shift,
                2 => 0xffff << shift,
                _ => u32::MAX,
            } & Self::writable(i);
            if let Some(d) = space.get(i) {
                let _ = d.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |old| {
                    Some(old & !mask | (value << shift) & mask)
                });
            }
            true
        }
    }

    /// Children's MSIs go through the parent's domain: no remapping.
    enum NoRemap {}

    impl MsiParentOps for NoRemap {
        type Irq = ();

        fn alloc(&self, _child: &MsiChild<'_>, _irq: ChildIrq) -> Result<(u64, ())> {
            match *self {}
        }

        fn compose_msg(&self, _irq: &()) -> MsiMessage {
            match *self {}
        }

        fn enable(&self, _irq: &()) {
            match *self {}
        }

        fn disable(&self, _irq: &()) {
            match *self {}
        }
    }

    /// A KUnit device named `name` to hang host bridges from, bound until
    /// the test ends.
    fn kunit_parent(name: &'static CStr) -> Result<&'static device::Device<Bound>> {
        // SAFETY: Called from a KUnit test, which `name` outlives.
        let raw =
            from_err_ptr(unsafe { ext::kernel_ext_kunit_device_register(name.as_char_ptr()) })?;
        // SAFETY: KUnit keeps the device registered, bound to its driver,
        // until the test ends, which the references given out do not outlive.
        Ok(unsafe { <device::Device>::from_raw(raw).as_bound() })
    }

    /// A root bus from `buses.0` to `buses.1` with a 1 MiB window at CPU
    /// address `cpu`, bus address `cpu - (WINDOW_CPU - WINDOW_BUS)`.
    fn root_bus(buses: (u8, u8), cpu: u64) -> Result<HostBridgeConfig<'static>> {
        let mut windows = KVec::new();
        windows.push(
            Window::memory(
                cpu,
                cpu + 0xf_ffff,
                WINDOW_CPU - WINDOW_BUS,
                c"kunit window",
            )?,
            GFP_KERNEL,
        )?;
        Ok(HostBridgeConfig {
            buses,
            bus_name: c"kunit bus",
            windows,
            dma_alias_parent: false,
            grants_of: None,
            acpi_address: None,
            link_name: None,
            reset_after_scan: false,
        })
    }

    /// A host bridge over a [`FakeConfig`] with root buses `buses`.
    fn fake_bridge(
        parent: &'static device::Device<Bound>,
        domain: DomainNr,
        buses: &[(u8, u8)],
    ) -> Result<Pin<KBox<HostBridge<'static, FakeConfig, NoRemap>>>> {
        let mut configs = KVec::new();
        for (i, &b) in buses.iter().enumerate() {
            configs.push(root_bus(b, WINDOW_CPU + ((i as u64) << 20))?, GFP_KERNEL)?;
        }
        KBox::pin_init(
            HostBridge::new(
                parent,
                domain,
                Ok::<_, Error>(FakeConfig::new()),
                configs,
                None,
                |_, _| {},
                |_| {},
            ),
            GFP_KERNEL,
        )
    }

    #[test]
    fn fake_endpoint_found_and_revoked_on_removal() -> Result {
        let parent = kunit_parent(c"kernel_ext_pci_host")?;
        let domain = DomainNr::new()?;
        let nr = domain.get();
        let bridge = fake_bridge(parent, domain, &[(0, 0)])?;
        let mut found = (0, (0, 0));
        bridge.for_each_device(|dev| found = (found.0 + 1, dev.ids()));
        assert_eq!(found, (1, (VENDOR, DEVICE)));

        // A reference that outlives the removal, as a careless user's would.
        // SAFETY: Plain lookup; the reference is put below.
        let pdev = unsafe { bindings::pci_get_domain_bus_and_slot(nr, 0, 0) };
        assert!(!pdev.is_null());
        let mut v = 0;
        // SAFETY: `pdev` is valid (our reference), `v` valid for writes.
        let ret = unsafe { bindings::pci_read_config_dword(pdev, 0, &mut v) };
        assert_eq!(ret, 0);
        assert_eq!(v, u32::from(DEVICE) << 16 | u32::from(VENDOR));
        // BAR 0 was sized and placed at the window's start, in bus addresses
        // in the BAR and CPU addresses in the resource.
        // SAFETY: As above.
        let ret = unsafe { bindings::pci_read_config_dword(pdev, 0x10, &mut v) };
        assert_eq!(ret, 0);
        assert_eq!(u64::from(v), WINDOW_BUS);
        // SAFETY: As above: `pdev` is valid.
        let bar = unsafe { &(*pdev).resource[0] };
        assert_eq!(
            (bar.start, bar.end),
            (WINDOW_CPU, WINDOW_CPU + u64::from(BAR_SIZE) - 1)
        );
        drop(bridge);
        // The accessors are revoked: the cycle fails instead of reaching them.
        // SAFETY: As above: the reference keeps `pdev`, its bus and the
        // bridge's private area alive.
        let ret = unsafe { bindings::pci_read_config_dword(pdev, 0, &mut v) };
        assert_eq!(ret, PCIBIOS_DEVICE_NOT_FOUND);
        assert_eq!(v, u32::MAX);
        // SAFETY: Ours, put once.
        unsafe { bindings::pci_dev_put(pdev) };
        // The last reference freed the bridge, and with it the domain number.
        assert_eq!(DomainNr::new()?.get(), nr);
        Ok(())
    }

    #[test]
    fn second_root_bus_in_the_domain() -> Result {
        let parent = kunit_parent(c"kernel_ext_pci_host_two")?;
        let domain = DomainNr::new()?;
        let nr = domain.get();
        let bridge = fake_bridge(parent, domain, &[(0, 0), (OTHER_BUS, OTHER_BUS)])?;
        assert!(bridge.root_bus_result(0).is_ok() && bridge.root_bus_result(1).is_ok());
        let mut found = 0;
        bridge.for_each_device(|_| found += 1);
        assert_eq!(found, 2);
        // The second root bus's endpoint, in the same domain.
        // SAFETY: Plain lookup; the reference is put below.
        let pdev = unsafe { bindings::pci_get_domain_bus_and_slot(nr, OTHER_BUS.into(), 0) };
        assert!(!pdev.is_null());
        // SAFETY: Ours, put once.
        unsafe { bindings::pci_dev_put(pdev) };
        drop(bridge);
        assert_eq!(DomainNr::new()?.get(), nr);

        // A second root bus the PCI core refuses (its number is taken) is
        // left out, with the reason; the first stays and goes as usual.
        let domain = DomainNr::new()?;
        let bridge = fake_bridge(parent, domain, &[(0, 0), (0, 0)])?;
        assert_eq!(bridge.root_bus_result(1), Err(EEXIST));
        let mut found = 0;
        bridge.for_each_device(|_| found += 1);
        assert_eq!(found, 1);
        drop(bridge);
        assert_eq!(DomainNr::new()?.get(), nr);
        Ok(())
    }
}
