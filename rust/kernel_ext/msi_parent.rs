// SPDX-License-Identifier: GPL-2.0

//! An MSI parent irq domain whose interrupts the driver implements.
//!
//! C headers: [`include/linux/msi.h`](srctree/include/linux/msi.h),
//! [`include/linux/irqdomain.h`](srctree/include/linux/irqdomain.h)
//!
//! A bus whose devices' MSIs do not reach the CPU as they are — a host
//! bridge that remaps them onto its own vectors, for one — needs an MSI
//! parent irq domain of its own: the per-device MSI domains of the bus's
//! devices sit on it (found by its bus token), and each child interrupt is
//! one of its interrupts. [`MsiParent`] is that domain; the driver's
//! [`MsiParentOps`] decides what a child interrupt is: its data, its
//! hardware IRQ number, the message the child writes, and what enabling and
//! disabling it means. The driver raises a child interrupt with
//! [`ChildIrq::handle`] from its own hard interrupt handler.

use core::{
    marker::PhantomPinned,
    ptr::{
        self,
        NonNull, //
    },
};

use kernel::{
    bindings,
    cpumask::Cpumask,
    ffi::{
        c_int,
        c_uint,
        c_void, //
    },
    prelude::*,
    types::Opaque, //
};

use crate::kernel_ext::bindings as ext;

/// What the domain knows about a child when it allocates one of its
/// interrupts.
#[derive(Clone, Copy)]
pub(crate) struct MsiChild<'a> {
    /// The child's class code (`class << 8 | prog-if`, as `pci_dev.class`).
    pub(crate) class: u32,
    /// The child's bus number.
    pub(crate) bus: u8,
    /// The child's device and function number.
    pub(crate) devfn: u8,
    /// The CPUs the interrupt is meant for, if its driver asked (managed
    /// affinity, as NVMe's queues have).
    pub(crate) affinity: Option<&'a Cpumask>,
}

/// Moves Linux IRQ `irq` (not a managed one) to the `n`-th online CPU,
/// counting round: a way to spread a device's vectors over the CPUs.
/// Returns that CPU. (No affinity hint: `free_irq()` warns about one left
/// set. On x86 without interrupt remapping an MSI moves when it next fires:
/// until then its affinity and effective affinity show the old CPUs.)
pub(crate) fn set_affinity_nth_online_cpu(irq: u32, n: u32) -> Result<u32> {
    // SAFETY: Any number is accepted (an IRQ without a descriptor fails).
    let cpu = unsafe { ext::kernel_ext_irq_set_affinity_nth_online(irq, n) };
    u32::try_from(cpu).map_err(|_| Error::from_errno(cpu))
}

/// Whether CPU `cpu` is online.
pub(crate) fn cpu_online(cpu: u32) -> bool {
    // SAFETY: Any number is accepted.
    unsafe { ext::kernel_ext_cpu_online(cpu) }
}

/// The contents of a `struct msi_msg`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MsiMessage {
    /// Low 32 bits of the address.
    pub(crate) address_lo: u32,
    /// High 32 bits of the address.
    pub(crate) address_hi: u32,
    /// The data written.
    pub(crate) data: u32,
}

/// A child interrupt of an [`MsiParent`], handed to the driver when it is
/// allocated.
///
/// Not `Clone`: the driver keeps it in its [`MsiParentOps::Irq`], which the
/// domain drops when it frees the interrupt.
#[derive(Debug)]
pub(crate) struct ChildIrq(c_uint);

impl ChildIrq {
    /// The Linux IRQ number.
    pub(crate) fn irq(&self) -> u32 {
        self.0
    }

    /// Waits until the child interrupt's hard handler runs on no CPU,
    /// taking and releasing its descriptor's lock: whatever the irq core did
    /// under that lock before (an MSI message written, say) is done. Any
    /// context but the interrupt's own handler.
    pub(crate) fn synchronize(&self) {
        // SAFETY: Any number is accepted (one without a descriptor returns
        // at once).
        unsafe { bindings::synchronize_hardirq(self.0) };
    }

    /// Runs the child interrupt's flow handler, with interrupts off: from
    /// any context, as `generic_handle_irq_safe()` allows.
    pub(crate) fn handle(&self) {
        // A number reused by then is a spurious call of that interrupt.
        // SAFETY: Any number, any context: the descriptor is looked up with
        // interrupts off (an RCU read side its freeing waits for).
        unsafe { bindings::generic_handle_irq_safe(self.0) };
    }
}

/// The driver's part of an [`MsiParent`].
///
/// `'static`: the domain's callbacks reach it for as long as the domain
/// lives, which a leaked [`MsiParent`] makes forever.
pub(crate) trait MsiParentOps: Send + Sync + 'static {
    /// The driver's data for one child interrupt.
    type Irq: Send + Sync;

    /// Sets up an interrupt for `child`: the hardware IRQ number the domain
    /// shows for it, and the driver's data. May sleep.
    fn alloc(&self, child: &MsiChild<'_>, irq: ChildIrq) -> Result<(u64, Self::Irq)>;

    /// The CPU a child interrupt's handler runs on (that of the parent's
    /// interrupt it rides), if the driver knows: its effective affinity.
    fn effective_cpu(&self, _irq: &Self::Irq) -> Option<u32> {
        None
    }

    /// Sends `irq` to CPUs of `mask` if it can (the irq core's
    /// `irq_set_affinity`, managed affinity and CPU hotplug call it, in
    /// atomic context): the CPU its handler runs on from now on, whose
    /// message [`MsiParentOps::compose_msg`] then gives. The domain's
    /// children have affinity only if `MSI_FLAG_NO_AFFINITY` is not
    /// required.
    fn set_affinity(&self, _irq: &Self::Irq, _mask: &Cpumask) -> Result<Option<u32>> {
        Err(EINVAL)
    }

    /// Frees an interrupt `alloc` set up (by dropping it, unless the driver
    /// has more to do). May sleep.
    fn free(&self, irq: Self::Irq) {
        drop(irq);
    }

    /// The message the child writes to raise `irq`. Called from the irq
    /// core, possibly in atomic context.
    fn compose_msg(&self, irq: &Self::Irq) -> MsiMessage;

    /// The child interrupt is enabled (started up or unmasked in software).
    /// Atomic context.
    fn enable(&self, irq: &Self::Irq);

    /// The child interrupt is disabled or shut down. Atomic context.
    fn disable(&self, irq: &Self::Irq);
}

/// How an [`MsiParent`] is set up.
pub(crate) struct MsiParentConfig {
    /// Name of the irq chip, and of the irq domain with `id`: "<name>-<id>".
    pub(crate) name: &'static CStr,
    /// Number in the irq domain's name: one per instance.
    pub(crate) id: i32,
    /// Prefix of the per-device MSI domains' names.
    pub(crate) prefix: &'static CStr,
    /// Bus token of the irq domain, by which the per-device MSI domains of
    /// the children find it.
    pub(crate) bus_token: bindings::irq_domain_bus_token,
    /// Size of the domain's linear map of hardware IRQ numbers (beyond it,
    /// a tree).
    pub(crate) size: u32,
    /// `MSI_FLAG_*` the per-device domains may have.
    pub(crate) supported_flags: u32,
    /// `MSI_FLAG_*` they must have.
    pub(crate) required_flags: u32,
}

/// An irq domain with the fwnode it was created with, both ours: removed
/// and freed when dropped.
///
/// # Invariants
///
/// The domain is valid and its fwnode was allocated for it alone.
struct IrqDomain(NonNull<bindings::irq_domain>);

impl Drop for IrqDomain {
    fn drop(&mut self) {
        let domain = self.0.as_ptr();
        // SAFETY: The domain is valid (type invariant).
        let fwnode = unsafe { (*domain).fwnode };
        // SAFETY: Ours; its owner drops it once no child interrupt is left
        // (the bus using it was removed first).
        unsafe { bindings::irq_domain_remove(domain) };
        // SAFETY: Allocated for the domain alone (type invariant), which is
        // gone.
        unsafe { bindings::irq_domain_free_fwnode(fwnode) };
    }
}

/// An MSI parent irq domain with the driver's child interrupts.
///
/// # Invariants
///
/// - `domain` is the irq domain created on `self` (once every field before
///   it was initialised), with `chip`, `domain_ops` and `parent_ops` as its
///   callbacks; [`None`] only while `self` is dropped.
/// - The chip data of each interrupt of the domain is a `KBox<T::Irq>`
///   from `domain_alloc`, freed by `domain_free`.
#[pin_data(PinnedDrop)]
pub(crate) struct MsiParent<T: MsiParentOps> {
    #[pin]
    ops: T,
    #[pin]
    chip: Opaque<bindings::irq_chip>,
    #[pin]
    domain_ops: Opaque<bindings::irq_domain_ops>,
    #[pin]
    parent_ops: Opaque<ext::msi_parent_ops>,
    domain: Option<IrqDomain>,
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: The raw pointers are to kernel objects usable from any thread;
// `T` is `Send`.
unsafe impl<T: MsiParentOps> Send for MsiParent<T> {}
// SAFETY: Shared access only reads fields set before the domain exists;
// `T` is `Sync`.
unsafe impl<T: MsiParentOps> Sync for MsiParent<T> {}

impl<T: MsiParentOps> MsiParent<T> {
    /// Creates the irq domain the children's MSI domains will sit on, with
    /// `ops` for their interrupts.
    pub(crate) fn new(
        ops: impl PinInit<T, Error>,
        config: MsiParentConfig,
    ) -> impl PinInit<Self, Error> {
        try_pin_init!(&this in Self {
            ops <- ops,
            chip: Opaque::new(bindings::irq_chip {
                name: config.name.as_char_ptr(),
                irq_compose_msi_msg: Some(Self::compose_msi_msg),
                irq_set_affinity: Some(Self::set_affinity),
                ..Default::default()
            }),
            domain_ops: Opaque::new(bindings::irq_domain_ops {
                alloc: Some(Self::domain_alloc),
                free: Some(Self::domain_free),
                ..Default::default()
            }),
            parent_ops: Opaque::new(ext::msi_parent_ops {
                supported_flags: config.supported_flags,
                required_flags: config.required_flags,
                bus_select_token: config.bus_token,
                bus_select_mask: ext::MATCH_PCI_MSI,
                prefix: config.prefix.as_char_ptr(),
                init_dev_msi_info: Some(Self::init_dev_msi_info),
                ..Default::default()
            }),
            // C gets pointers into `Self` from here on, once what they
            // reach is there.
            // SAFETY: The fields above are initialised; `this` is pinned.
            domain: unsafe { Self::create_domain(this, &config) }?,
            _pin: PhantomPinned,
        }? Error)
    }

    /// The irq domain on `this`.
    ///
    /// # Safety
    ///
    /// `this` is pinned, with every field before `domain` initialised; it
    /// removes the domain when dropped.
    unsafe fn create_domain(
        this: NonNull<Self>,
        config: &MsiParentConfig,
    ) -> Result<Option<IrqDomain>> {
        // SAFETY: `this` is valid: only field addresses are taken.
        let (domain_ops, parent_ops) = unsafe {
            (
                (*this.as_ptr()).domain_ops.get(),
                (*this.as_ptr()).parent_ops.get(),
            )
        };
        // SAFETY: Plain call; the name is copied.
        let fwnode = unsafe {
            bindings::__irq_domain_alloc_fwnode(
                bindings::IRQCHIP_FWNODE_NAMED_ID,
                config.id,
                config.name.as_char_ptr(),
                ptr::null_mut(),
                ptr::null_mut(),
            )
        };
        if fwnode.is_null() {
            return Err(ENOMEM);
        }
        let mut info = bindings::irq_domain_info {
            fwnode,
            size: config.size,
            ops: domain_ops,
            host_data: this.as_ptr().cast::<c_void>(),
            ..Default::default()
        };
        // SAFETY: `info` and `parent_ops` are valid; `parent_ops` and the
        // callbacks it and `domain_ops` name live as long as the domain
        // (`drop` removes it first).
        let domain = unsafe { ext::msi_create_parent_irq_domain(&mut info, parent_ops) };
        let Some(domain) = NonNull::new(domain) else {
            // SAFETY: The fwnode is unused.
            unsafe { bindings::irq_domain_free_fwnode(fwnode) };
            return Err(ENOMEM);
        };
        // INVARIANT: the domain is created on `this`, with its own fwnode.
        Ok(Some(IrqDomain(domain)))
    }

    /// The driver's ops.
    pub(crate) fn ops(&self) -> &T {
        &self.ops
    }

    /// The irq domain, to become the child bus's MSI domain.
    pub(crate) fn irq_domain(&self) -> *mut bindings::irq_domain {
        self.domain
            .as_ref()
            .map_or(ptr::null_mut(), |d| d.0.as_ptr())
    }

    /// The `MsiParent` of an interrupt of our domain.
    ///
    /// # Safety
    ///
    /// `domain` is the domain of an `MsiParent<T>`.
    unsafe fn of<'b>(domain: *mut bindings::irq_domain) -> &'b Self {
        // SAFETY: Its `host_data` is the `MsiParent` it was created on,
        // which outlives it (the caller's guarantee).
        unsafe { &*(*domain).host_data.cast::<Self>() }
    }

    /// `irq_domain_ops.alloc`: the driver's data for each interrupt.
    ///
    /// # Safety
    ///
    /// Called by the irq core on our domain, with `arg` the MSI alloc info.
    unsafe extern "C" fn domain_alloc(
        domain: *mut bindings::irq_domain,
        virq: c_uint,
        nr_irqs: c_uint,
        arg: *mut c_void,
    ) -> c_int {
        // SAFETY: `domain` is ours (the caller's guarantee).
        let this = unsafe { Self::of(domain) };
        let info = arg.cast::<bindings::msi_alloc_info_t>();
        // SAFETY: The MSI core passes the alloc info of a PCI child's MSI
        // descriptor (the caller's guarantee).
        let pdev = unsafe { ext::kernel_ext_msi_desc_to_pci_dev((*info).desc) };
        // SAFETY: The descriptor is valid; its affinity, if any, lives as
        // long as the descriptor, beyond this call.
        let affinity = unsafe { ext::kernel_ext_msi_desc_affinity((*info).desc) };
        // SAFETY: `pdev` is the valid child device allocating interrupts;
        // `affinity` is null or a valid cpumask (see above).
        let child = unsafe {
            MsiChild {
                class: (*pdev).class,
                bus: (*(*pdev).bus).number,
                devfn: (*pdev).devfn as u8,
                affinity: (!affinity.is_null()).then(|| Cpumask::from_raw(affinity)),
            }
        };
        for i in 0..nr_irqs {
            let boxed = this
                .ops
                .alloc(&child, ChildIrq(virq + i))
                .and_then(|(hwirq, irq)| {
                    match KBox::new_uninit(GFP_KERNEL) {
                        Ok(b) => Ok((hwirq, KBox::write(b, irq))),
                        Err(_) => {
                            // Allocated by the driver: freed by it too.
                            this.ops.free(irq);
                            Err(ENOMEM)
                        }
                    }
                });
            let (hwirq, irq) = match boxed {
                Ok(irq) => irq,
                Err(e) => {
                    // SAFETY: Frees the `i` interrupts set up so far.
                    unsafe { Self::domain_free(domain, virq, i) };
                    return e.to_errno();
                }
            };
            let cpu = this.ops.effective_cpu(&irq);
            // SAFETY: `virq + i` is being allocated in our domain; the chip
            // lives as long as the domain, the chip data (type invariant)
            // as long as the interrupt.
            unsafe {
                bindings::irq_domain_set_info(
                    domain,
                    virq + i,
                    hwirq as bindings::irq_hw_number_t,
                    this.chip.get(),
                    KBox::into_raw(irq).cast::<c_void>(),
                    Some(bindings::handle_untracked_irq),
                    ptr::null_mut(),
                    ptr::null(),
                )
            };
            if let Some(cpu) = cpu {
                // SAFETY: `virq + i` was just set up in our domain.
                let data = unsafe { bindings::irq_domain_get_irq_data(domain, virq + i) };
                // SAFETY: `data` is that interrupt's, valid; any `cpu` is
                // accepted.
                unsafe { ext::kernel_ext_irq_data_set_effective_cpu(data, cpu) };
            }
        }
        0
    }

    /// `irq_domain_ops.free`.
    ///
    /// # Safety
    ///
    /// Called by the irq core on our domain for interrupts `domain_alloc`
    /// set up.
    unsafe extern "C" fn domain_free(
        domain: *mut bindings::irq_domain,
        virq: c_uint,
        nr_irqs: c_uint,
    ) {
        // SAFETY: `domain` is ours (the caller's guarantee).
        let this = unsafe { Self::of(domain) };
        for i in 0..nr_irqs {
            // SAFETY: `virq + i` belongs to our domain.
            let data = unsafe { bindings::irq_domain_get_irq_data(domain, virq + i) };
            if data.is_null() {
                continue;
            }
            // SAFETY: `data` is valid; its chip data is ours or null.
            let irq = unsafe { (*data).chip_data.cast::<T::Irq>() };
            if irq.is_null() {
                continue;
            }
            // The levels above are reset: a `set_affinity` from now on finds
            // no chip. One that found ours before is done once the
            // descriptor's lock has been taken and released.
            // SAFETY: Any number is accepted.
            unsafe { bindings::synchronize_hardirq(virq + i) };
            // SAFETY: `data` is valid (see above); the irq core is done with
            // it.
            unsafe { bindings::irq_domain_reset_irq_data(data) };
            // SAFETY: `irq` came from `KBox::into_raw` in `domain_alloc`
            // (type invariant); the interrupt no longer refers to it.
            this.ops
                .free(KBox::into_inner(unsafe { KBox::from_raw(irq) }));
        }
    }

    /// `irq_chip.irq_compose_msi_msg` of our level.
    ///
    /// # Safety
    ///
    /// `data` is an interrupt of our domain, `msg` valid for writes.
    unsafe extern "C" fn compose_msi_msg(
        data: *mut bindings::irq_data,
        msg: *mut bindings::msi_msg,
    ) {
        // SAFETY: `data` is ours: its domain is, and its chip data is the
        // driver's (type invariant).
        let (this, irq) = unsafe {
            (
                Self::of((*data).domain),
                &*(*data).chip_data.cast::<T::Irq>(),
            )
        };
        let m = this.ops.compose_msg(irq);
        // SAFETY: `msg` is valid for writes (the caller's guarantee).
        unsafe { ext::kernel_ext_msi_msg_set(msg, m.address_lo, m.address_hi, m.data) };
    }

    /// `irq_chip.irq_set_affinity` of our level; the MSI core writes the
    /// new message after it.
    ///
    /// # Safety
    ///
    /// `data` is an interrupt of our domain, `mask` a valid cpumask.
    unsafe extern "C" fn set_affinity(
        data: *mut bindings::irq_data,
        mask: *const bindings::cpumask,
        _force: bool,
    ) -> c_int {
        // SAFETY: As in `compose_msi_msg`; `mask` is valid for the call.
        let (this, irq, mask) = unsafe {
            (
                Self::of((*data).domain),
                &*(*data).chip_data.cast::<T::Irq>(),
                Cpumask::from_raw(mask),
            )
        };
        match this.ops.set_affinity(irq, mask) {
            Ok(cpu) => {
                if let Some(cpu) = cpu {
                    // SAFETY: `data` is valid; any `cpu` is accepted.
                    unsafe { ext::kernel_ext_irq_data_set_effective_cpu(data, cpu) };
                }
                bindings::IRQ_SET_MASK_OK as c_int
            }
            Err(e) => e.to_errno(),
        }
    }

    /// `msi_parent_ops.init_dev_msi_info`: the per-device MSI chip tells the
    /// driver when an interrupt is enabled and disabled.
    ///
    /// # Safety
    ///
    /// Called by the MSI core with valid arguments.
    unsafe extern "C" fn init_dev_msi_info(
        dev: *mut bindings::device,
        domain: *mut bindings::irq_domain,
        real_parent: *mut bindings::irq_domain,
        info: *mut ext::msi_domain_info,
    ) -> bool {
        // SAFETY: Forwarded as received.
        if !unsafe { ext::msi_lib_init_dev_msi_info(dev, domain, real_parent, info) } {
            return false;
        }
        // SAFETY: `info` is valid (the caller's guarantee).
        let chip = unsafe { (*info).chip };
        // SAFETY: `chip` is the per-device chip template being set up, ours
        // to fill in before the MSI core creates the domain with it.
        unsafe {
            (*chip).irq_startup = Some(Self::irq_startup);
            (*chip).irq_shutdown = Some(Self::irq_disable);
            (*chip).irq_enable = Some(Self::irq_enable);
            (*chip).irq_disable = Some(Self::irq_disable);
        }
        true
    }

    /// The parent-level interrupt of a per-device one.
    ///
    /// # Safety
    ///
    /// `data` is a per-device MSI interrupt whose parent is ours.
    unsafe fn parent_of<'b>(data: *mut bindings::irq_data) -> (&'b Self, &'b T::Irq) {
        // SAFETY: `data`'s parent is an interrupt of ours (the caller's
        // guarantee), valid while `data` is.
        let parent = unsafe { (*data).parent_data };
        // SAFETY: As in `compose_msi_msg`.
        unsafe {
            (
                Self::of((*parent).domain),
                &*(*parent).chip_data.cast::<T::Irq>(),
            )
        }
    }

    /// `irq_chip.irq_enable` of the per-device chip.
    ///
    /// # Safety
    ///
    /// `data` is a per-device MSI interrupt whose parent is ours.
    unsafe extern "C" fn irq_enable(data: *mut bindings::irq_data) {
        // SAFETY: The irq core calls this on a per-device interrupt of ours.
        let (this, irq) = unsafe { Self::parent_of(data) };
        this.ops.enable(irq);
        // SAFETY: `data` is valid for the call; its chip is the MSI
        // library's, set up by `init_dev_msi_info`.
        let unmask = unsafe { (*(*data).chip).irq_unmask };
        if let Some(unmask) = unmask {
            // SAFETY: The chip's own callback, on an interrupt of the chip.
            unsafe { unmask(data) };
        }
    }

    /// `irq_chip.irq_startup`.
    ///
    /// # Safety
    ///
    /// As for [`Self::irq_enable`].
    unsafe extern "C" fn irq_startup(data: *mut bindings::irq_data) -> c_uint {
        // SAFETY: As for `irq_enable`.
        unsafe { Self::irq_enable(data) };
        0
    }

    /// `irq_chip.irq_disable` and `irq_shutdown`.
    ///
    /// # Safety
    ///
    /// As for [`Self::irq_enable`].
    unsafe extern "C" fn irq_disable(data: *mut bindings::irq_data) {
        // SAFETY: As in `irq_enable`: `data` and its chip are valid.
        let mask = unsafe { (*(*data).chip).irq_mask };
        if let Some(mask) = mask {
            // SAFETY: The chip's own callback, on an interrupt of the chip.
            unsafe { mask(data) };
        }
        // SAFETY: The irq core calls this on a per-device interrupt of ours.
        let (this, irq) = unsafe { Self::parent_of(data) };
        this.ops.disable(irq);
    }
}

#[pinned_drop]
impl<T: MsiParentOps> PinnedDrop for MsiParent<T> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: Not moved out of; the field is dropped in place.
        let this = unsafe { self.get_unchecked_mut() };
        // The domain goes (its children's interrupts are gone: the bus
        // using it was removed) before the ops its callbacks reach.
        this.domain = None;
    }
}
