// SPDX-License-Identifier: GPL-2.0

//! Child MSIs remapped onto the MSI-X vectors of the parent device.
//!
//! C headers: [`include/linux/msi.h`](srctree/include/linux/msi.h),
//! [`include/linux/irqdomain.h`](srctree/include/linux/irqdomain.h)
//!
//! A host bridge that hides a PCI hierarchy behind an endpoint may not let
//! its children's MSIs reach the CPU: their message names one of the
//! bridge's own MSI-X vectors, which it raises instead. [`MsiRemap`] is the
//! MSI parent irq domain for such a bus (with the bus token its user gives):
//! every child interrupt rides one vector,
//! chosen by [`RemapOps::pick_vector`], and the vector's hard interrupt
//! handler demultiplexes: it runs the handler of every enabled child
//! interrupt on the vector's list.
//!
//! The lists are published with RCU list primitives under a raw spinlock
//! and read under a per-vector SRCU in the vector's handler; a child
//! interrupt is freed only after the SRCU readers that may still see it are
//! gone.

use core::{
    fmt,
    marker::PhantomPinned,
    ptr::{
        self,
        NonNull, //
    },
    sync::atomic::{
        AtomicBool,
        Ordering, //
    },
};

use kernel::{
    bindings,
    debugfs::{
        Dir,
        File, //
    },
    device::Bound,
    error::to_result,
    ffi::{
        c_int,
        c_uint,
        c_ulong,
        c_void, //
    },
    new_srcu,
    pci,
    prelude::*,
    sync::Srcu,
    types::{
        Opaque,
        ScopeGuard, //
    }, //
};

use crate::{
    kernel_ext::{
        bindings as ext,
        pci_ext::raw_pci_dev,
        sync::RawSpinLockIrq, //
    },
    new_raw_spinlock_irq,
};

/// What the remapping domain knows about a child when it allocates one of
/// its interrupts.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Child {
    /// The child's class code (`class << 8 | prog-if`, as `pci_dev.class`).
    pub(crate) class: u32,
    /// The child's bus number.
    pub(crate) bus: u8,
    /// The child's device and function number.
    pub(crate) devfn: u8,
}

/// The driver's part of a remapping domain.
pub(crate) trait RemapOps: Send + Sync {
    /// The vector for a new interrupt of `child`; `loads[i]` is the number of
    /// child interrupts vector `i` carries. Called under a raw spinlock:
    /// must not sleep. An index out of range means the last vector.
    fn pick_vector(&self, child: &Child, loads: &[u32]) -> usize;

    /// Whether [`RemapOps::flush`] runs before each child handler.
    fn flushes(&self) -> bool {
        false
    }

    /// Runs in the vector's hard interrupt handler before the handler of an
    /// interrupt of `child`, if [`RemapOps::flushes`] said so when it was
    /// allocated (an erratum's workaround).
    fn flush(&self, _child: &Child) {}

    /// The message a child writes to raise vector `vector` of the parent:
    /// the bridge's own format. Called from the irq core, possibly in
    /// atomic context: must not sleep.
    fn compose_msg(&self, vector: u32) -> MsiMessage;
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

/// How a [`MsiRemap`] is set up.
pub(crate) struct RemapConfig<'a> {
    /// Vectors below this one are the parent's own: at least one more must
    /// be allocated for the children.
    pub(crate) first_vector: u32,
    /// Name of the irq chip, and of the irq domain with `id`: "<name>-<id>".
    pub(crate) name: &'static CStr,
    /// Number in the irq domain's name: one per instance.
    pub(crate) id: i32,
    /// Prefix of the per-device MSI domains' names.
    pub(crate) prefix: &'static CStr,
    /// Bus token of the irq domain, by which the per-device MSI domains of
    /// the children find it.
    pub(crate) bus_token: bindings::irq_domain_bus_token,
    /// Name of the vectors in /proc/interrupts.
    pub(crate) irq_name: &'static CStr,
    /// Where to show the vectors and their children ("vectors").
    pub(crate) debugfs: Option<&'a Dir>,
}

/// One child interrupt: the element of a vector's demux list.
struct Entry<'a, R: RemapOps> {
    /// Link in [`Line::list`]; written under [`MsiRemap::loads`]' lock.
    node: Opaque<bindings::list_head>,
    line: NonNull<Line<'a, R>>,
    virq: c_uint,
    /// On the list; changed under [`MsiRemap::loads`]' lock only.
    enabled: AtomicBool,
    /// The child, if the driver flushes before its handler.
    flush: Option<Child>,
}

/// One MSI-X vector of the parent device and the child interrupts on it.
///
/// # Invariants
///
/// `list` is an initialised list head of [`Entry::node`]s; `remap` points
/// to the [`MsiRemap`] that owns this line.
#[pin_data(PinnedDrop)]
struct Line<'a, R: RemapOps> {
    #[pin]
    srcu: Srcu,
    #[pin]
    list: Opaque<bindings::list_head>,
    index: usize,
    virq: c_uint,
    /// A handler is registered on `virq` with this line as cookie. Changed
    /// only by the owner's `&mut`-like paths: creation, suspend, resume and
    /// drop, which the driver core serialises.
    registered: AtomicBool,
    remap: NonNull<MsiRemap<'a, R>>,
    #[pin]
    _pin: PhantomPinned,
}

impl<'a, R: RemapOps> Line<'a, R> {
    /// Runs `f` on each entry linked into the list.
    ///
    /// # Safety
    ///
    /// The caller holds [`MsiRemap::loads`]' lock, or an SRCU read side of
    /// `srcu`: either way the entries it sees stay valid until it is done.
    unsafe fn for_each_entry(&self, mut f: impl FnMut(&Entry<'a, R>)) {
        let head = self.list.get();
        // The volatile reads are `list_for_each_entry_rcu`'s `READ_ONCE`:
        // the writers publish with `list_add_tail_rcu`.
        // SAFETY: `head` is an initialised list head (type invariant).
        let mut pos = unsafe { ptr::read_volatile(&raw const (*head).next) };
        while pos != head {
            // SAFETY: `pos` is the node of a linked entry, valid for the
            // walk (the caller's guarantee).
            let entry = unsafe {
                &*kernel::container_of!(
                    pos.cast::<Opaque<bindings::list_head>>(),
                    Entry<'a, R>,
                    node
                )
            };
            f(entry);
            // SAFETY: As above: `pos` is a valid, linked node.
            pos = unsafe { ptr::read_volatile(&raw const (*pos).next) };
        }
    }

    fn cookie(&self) -> *mut c_void {
        ptr::from_ref(self).cast_mut().cast::<c_void>()
    }

    /// Registers the demux handler, if it is not.
    fn request(&self, name: &'static CStr) -> Result {
        if self.registered.load(Ordering::Relaxed) {
            return Ok(());
        }
        // SAFETY: The handler and cookie stay valid until `free` or the
        // owner's drop frees the IRQ (before the line goes); the line is
        // fully initialised and pinned.
        to_result(unsafe {
            bindings::request_irq(
                self.virq,
                Some(MsiRemap::<'a, R>::demux),
                // Child handlers expect hard interrupt context.
                bindings::IRQF_NO_THREAD as c_ulong,
                name.as_char_ptr(),
                self.cookie(),
            )
        })?;
        self.registered.store(true, Ordering::Relaxed);
        Ok(())
    }

    /// Frees the demux handler, if registered; waits for a running one.
    fn free(&self) {
        if self.registered.swap(false, Ordering::Relaxed) {
            // SAFETY: Registered by `request` with this cookie.
            unsafe { bindings::free_irq(self.virq, self.cookie()) };
        }
    }
}

/// A line's handler goes before the line (and its SRCU struct, H1).
#[pinned_drop]
impl<'a, R: RemapOps> PinnedDrop for Line<'a, R> {
    fn drop(self: Pin<&mut Self>) {
        self.free();
    }
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

/// What the "vectors" debugfs file holds: the [`MsiRemap`] it shows, type
/// erased (debugfs data must be `'static`, the driver's types are not).
///
/// # Invariants
///
/// `remap` points to the `MsiRemap` whose `show` is `show`, which outlives
/// the file (it removes the file first when dropped).
struct View {
    remap: NonNull<c_void>,
    /// `MsiRemap::show` of `remap`'s type, whose `# Safety` asks for a live
    /// `MsiRemap` of that type: `remap` (type invariant).
    show: unsafe fn(NonNull<c_void>, &mut fmt::Formatter<'_>) -> fmt::Result,
}

// SAFETY: `MsiRemap` is `Sync`; `View` only reads it.
unsafe impl Send for View {}
// SAFETY: See above.
unsafe impl Sync for View {}

impl fmt::Debug for View {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: `remap` is live (type invariant).
        unsafe { (self.show)(self.remap, f) }
    }
}

/// An MSI parent irq domain that maps child interrupts onto the parent
/// device's MSI-X vectors.
///
/// # Invariants
///
/// - `lines.len()` vectors of `pdev` are allocated.
/// - `domain` is the irq domain created on `self` (once every field before
///   it was initialised), with `chip`, `domain_ops` and `parent_ops` as its
///   callbacks; [`None`] only while `self` is dropped.
/// - Each line's handler was registered once `ops` and `loads` were there.
#[pin_data(PinnedDrop)]
pub(crate) struct MsiRemap<'a, R: RemapOps> {
    ops: R,
    /// The parent device: bound to its driver for `'a`, which outlives
    /// `self` (and so its vectors and their handlers).
    pdev: &'a pci::Device<Bound>,
    /// Child interrupts per vector. The lock also serialises the writers of
    /// the demux lists.
    #[pin]
    loads: RawSpinLockIrq<KVec<u32>>,
    lines: KVec<Pin<KBox<Line<'a, R>>>>,
    #[pin]
    chip: Opaque<bindings::irq_chip>,
    #[pin]
    domain_ops: Opaque<bindings::irq_domain_ops>,
    #[pin]
    parent_ops: Opaque<ext::msi_parent_ops>,
    /// Taken in `drop`, after the lines, before the vectors go.
    domain: Option<IrqDomain>,
    irq_name: &'static CStr,
    /// The debugfs file showing `self`; removed first in `drop`.
    debugfs: Option<Pin<KBox<File<View>>>>,
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: The raw pointers are to kernel objects usable from any thread; the
// mutable state is behind the raw spinlock or atomic, and `R` is `Send`.
unsafe impl<'a, R: RemapOps> Send for MsiRemap<'a, R> {}
// SAFETY: Shared access only reads fields set before the domain exists, or
// goes through the lock; `R` is `Sync`.
unsafe impl<'a, R: RemapOps> Sync for MsiRemap<'a, R> {}
// SAFETY: As for `MsiRemap`: a `Line` is shared with its vector's handler.
unsafe impl<'a, R: RemapOps> Send for Line<'a, R> {}
// SAFETY: See above.
unsafe impl<'a, R: RemapOps> Sync for Line<'a, R> {}

impl<'a, R: RemapOps> MsiRemap<'a, R> {
    /// Allocates the MSI-X vectors of `pdev`, registers their handlers and
    /// creates the irq domain the children's MSI domains will sit on.
    pub(crate) fn new(
        pdev: &'a pci::Device<Bound>,
        ops: R,
        config: RemapConfig<'_>,
    ) -> Result<Pin<KBox<Self>>> {
        let raw_pdev = raw_pci_dev(pdev);
        // SAFETY: `raw_pdev` is the valid, bound `struct pci_dev` of `pdev`.
        let count = unsafe { bindings::pci_msix_vec_count(raw_pdev) };
        let count = u32::try_from(count).map_err(|_| {
            dev_err!(
                pdev.as_ref(),
                "no MSI-X capability: child MSIs cannot be remapped\n"
            );
            ENODEV
        })?;
        if count <= config.first_vector {
            dev_err!(
                pdev.as_ref(),
                "{} MSI-X vectors: none left for child devices\n",
                count
            );
            return Err(ENODEV);
        }
        // SAFETY: As above; the vectors are freed in `drop`, or by the guard.
        let n = unsafe {
            bindings::pci_alloc_irq_vectors(
                raw_pdev,
                config.first_vector + 1,
                count,
                bindings::PCI_IRQ_MSIX,
            )
        };
        let n = u32::try_from(n).map_err(|_| {
            let e = Error::from_errno(n);
            dev_err!(
                pdev.as_ref(),
                "cannot allocate {} to {} MSI-X vectors: {:?}\n",
                config.first_vector + 1,
                count,
                e
            );
            e
        })?;
        let vectors = ScopeGuard::new(|| {
            // SAFETY: Nothing uses the vectors allocated above yet.
            unsafe { bindings::pci_free_irq_vectors(raw_pdev) }
        });
        let mut loads = KVec::new();
        loads.resize(n as usize, 0, GFP_KERNEL)?;
        let (chip, parent_ops) = (Self::chip(config.name), Self::parent_ops(&config));
        let irq_name = config.irq_name;
        let this = KBox::pin_init(
            try_pin_init!(&this in Self {
                ops,
                pdev,
                loads <- new_raw_spinlock_irq!(loads, "msi_remap_lists"),
                chip: Opaque::new(chip),
                domain_ops: Opaque::new(Self::domain_ops()),
                parent_ops: Opaque::new(parent_ops),
                irq_name,
                // C gets pointers into `Self` from here on, once what they
                // reach is there: the handlers reach `ops` and `loads`, the
                // domain's callbacks everything before `lines`.
                // SAFETY: The fields above are initialised; `this` is pinned.
                lines: unsafe { Self::lines(this, pdev, n, irq_name) }?,
                // SAFETY: As above, with the lines.
                domain: unsafe { Self::create_domain(this, n, &config) }?,
                // SAFETY: As above: every field but this one is initialised.
                debugfs: unsafe { Self::debugfs_file(this, &config) }?,
                _pin: PhantomPinned,
            }? Error),
            GFP_KERNEL,
        )?;
        // `drop` frees the vectors from here on.
        vectors.dismiss();
        Ok(this)
    }

    /// One line per vector, its handler registered.
    ///
    /// # Safety
    ///
    /// `this` is pinned, with `ops` and `loads` initialised; it owns the
    /// lines returned.
    unsafe fn lines(
        this: NonNull<Self>,
        pdev: &'a pci::Device<Bound>,
        n: u32,
        irq_name: &'static CStr,
    ) -> Result<KVec<Pin<KBox<Line<'a, R>>>>> {
        let mut lines = KVec::with_capacity(n as usize, GFP_KERNEL)?;
        for index in 0..n {
            // SAFETY: `pdev` is bound and has `n` vectors (type invariant).
            let virq = unsafe { bindings::pci_irq_vector(raw_pci_dev(pdev), index) };
            let virq = c_uint::try_from(virq).map_err(|_| Error::from_errno(virq))?;
            let line = KBox::pin_init(
                try_pin_init!(Line {
                    srcu <- new_srcu!("msi_remap_srcu"),
                    // INVARIANT: initialised by `INIT_LIST_HEAD`.
                    list <- Opaque::ffi_init(|p| {
                        // SAFETY: `p` is valid for writes.
                        unsafe { bindings::INIT_LIST_HEAD(p) }
                    }),
                    index: index as usize,
                    virq,
                    registered: AtomicBool::new(false),
                    // INVARIANT: `this` owns the line (the caller's guarantee).
                    remap: this,
                    _pin: PhantomPinned,
                }? Error),
                GFP_KERNEL,
            )?;
            // Registered once pinned in place: a line dropped on an error
            // frees its handler first.
            line.request(irq_name)?;
            lines.push(line, GFP_KERNEL)?;
        }
        Ok(lines)
    }

    /// The MSI parent irq domain on `this`.
    ///
    /// # Safety
    ///
    /// `this` is pinned, with every field before `domain` initialised; it
    /// removes the domain when dropped.
    unsafe fn create_domain(
        this: NonNull<Self>,
        n: u32,
        config: &RemapConfig<'_>,
    ) -> Result<Option<IrqDomain>> {
        // SAFETY: `this` is valid: only field addresses are taken.
        let (domain_ops, parent_ops) = unsafe {
            (
                (*this.as_ptr()).domain_ops.get(),
                (*this.as_ptr()).parent_ops.get(),
            )
        };
        // SAFETY: Plain call; the name is copied. Named with the PCI domain,
        // known by now: one name per instance.
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
            size: n,
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

    /// The "vectors" debugfs file, if `config` asks for one.
    ///
    /// # Safety
    ///
    /// `this` is pinned and, but for `debugfs`, initialised; it removes the
    /// file first when dropped.
    unsafe fn debugfs_file(
        this: NonNull<Self>,
        config: &RemapConfig<'_>,
    ) -> Result<Option<Pin<KBox<File<View>>>>> {
        let Some(dir) = config.debugfs else {
            return Ok(None);
        };
        // INVARIANT: `this` removes the file first when dropped.
        let view = View {
            remap: this.cast(),
            show: Self::show,
        };
        Ok(Some(KBox::pin_init(
            dir.read_only_file(c"vectors", Ok::<_, Error>(view)),
            GFP_KERNEL,
        )?))
    }

    /// The chip of our level: it composes the message the children write.
    fn chip(name: &'static CStr) -> bindings::irq_chip {
        bindings::irq_chip {
            name: name.as_char_ptr(),
            irq_compose_msi_msg: Some(Self::compose_msi_msg),
            ..Default::default()
        }
    }

    /// The domain's callbacks.
    fn domain_ops() -> bindings::irq_domain_ops {
        bindings::irq_domain_ops {
            alloc: Some(Self::domain_alloc),
            free: Some(Self::domain_free),
            ..Default::default()
        }
    }

    /// What the per-device MSI domains below ours get.
    fn parent_ops(config: &RemapConfig<'_>) -> ext::msi_parent_ops {
        ext::msi_parent_ops {
            supported_flags: ext::MSI_GENERIC_FLAGS_MASK | ext::MSI_FLAG_PCI_MSIX,
            required_flags: ext::MSI_FLAG_USE_DEF_DOM_OPS | ext::MSI_FLAG_NO_AFFINITY,
            bus_select_token: config.bus_token,
            bus_select_mask: ext::MATCH_PCI_MSI,
            prefix: config.prefix.as_char_ptr(),
            init_dev_msi_info: Some(Self::init_dev_msi_info),
            ..Default::default()
        }
    }

    /// Writes each vector's IRQ and the child IRQs on it. How often they
    /// fired is the IRQ core's to count: the vectors' counts are in
    /// /proc/interrupts; the children's handlers run untracked.
    ///
    /// # Safety
    ///
    /// `this` points to a live `MsiRemap<'a, R>`.
    unsafe fn show(this: NonNull<c_void>, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SAFETY: The caller's guarantee.
        let this = unsafe { this.cast::<Self>().as_ref() };
        let Ok(loads) = this.loads() else {
            return writeln!(f, "out of memory");
        };
        // The lists may change between the two locks: leave room.
        let total = loads.iter().map(|l| *l as usize).sum::<usize>() + 8;
        let mut children: KVec<(usize, u32)> = match KVec::with_capacity(total, GFP_KERNEL) {
            Ok(v) => v,
            Err(_) => return writeln!(f, "out of memory"),
        };
        {
            // The list writers hold this lock: the lists are stable under it.
            let _guard = this.loads.lock();
            for line in this.lines.iter() {
                // Past the capacity the rest is left out.
                let mut add = |entry: &Entry<'a, R>| {
                    let _ = children.push_within_capacity((line.index, entry.virq));
                };
                // SAFETY: We hold the lock the list writers take.
                unsafe { line.for_each_entry(&mut add) };
            }
        }
        for line in this.lines.iter() {
            write!(
                f,
                "vector {}: irq {}, {} child irqs:",
                line.index, line.virq, loads[line.index]
            )?;
            for (_, virq) in children.iter().filter(|c| c.0 == line.index) {
                write!(f, " {virq}")?;
            }
            writeln!(f)?;
        }
        Ok(())
    }

    /// Frees the vector handlers (system sleep: CPUs go offline, and the
    /// handlers' vectors would pile up on the one left).
    pub(crate) fn suspend(&self) {
        for line in self.lines.iter() {
            line.free();
        }
    }

    /// Registers the vector handlers again after [`MsiRemap::suspend`].
    pub(crate) fn resume(&self) -> Result {
        for line in self.lines.iter() {
            line.request(self.irq_name)?;
        }
        Ok(())
    }

    /// The irq domain, to become the child bus's MSI domain.
    pub(crate) fn irq_domain(&self) -> *mut bindings::irq_domain {
        self.domain
            .as_ref()
            .map_or(ptr::null_mut(), |d| d.0.as_ptr())
    }

    /// Number of vectors.
    pub(crate) fn vectors(&self) -> usize {
        self.lines.len()
    }

    /// Linux IRQ number of vector `index`.
    pub(crate) fn vector_irq(&self, index: usize) -> Option<u32> {
        self.lines.get(index).map(|l| l.virq)
    }

    /// How many child interrupts each vector carries.
    pub(crate) fn loads(&self) -> Result<KVec<u32>> {
        // Allocated before the raw spinlock is taken: no allocation, not
        // even an atomic one, may happen under it.
        let mut copy = KVec::new();
        copy.resize(self.lines.len(), 0, GFP_KERNEL)?;
        for (to, from) in copy.iter_mut().zip(self.loads.lock().iter()) {
            *to = *from;
        }
        Ok(copy)
    }

    /// The vector handler: runs every enabled child interrupt of the line.
    ///
    /// # Safety
    ///
    /// `cookie` must be the `Line` the handler was registered with.
    unsafe extern "C" fn demux(_irq: c_int, cookie: *mut c_void) -> bindings::irqreturn_t {
        // SAFETY: The line outlives its handler registration.
        let line = unsafe { &*cookie.cast::<Line<'a, R>>() };
        // SAFETY: The owner outlives its lines' handlers.
        let remap = unsafe { line.remap.as_ref() };
        let _guard = line.srcu.read_lock();
        let handle = |entry: &Entry<'a, R>| {
            if let Some(child) = &entry.flush {
                remap.ops.flush(child);
            }
            // SAFETY: `entry.virq` is an interrupt of our domain, allocated
            // for as long as its entry lives.
            unsafe { bindings::generic_handle_irq(entry.virq) };
        };
        // SAFETY: We are in an SRCU read side of the line, which
        // `domain_free` waits for before it frees an entry.
        unsafe { line.for_each_entry(handle) };
        bindings::irqreturn::IRQ_HANDLED
    }

    /// `irq_domain_ops.alloc`: one entry per interrupt, on the vector the
    /// driver picks.
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
        // SAFETY: `domain` is ours (the caller's guarantee): its `host_data`
        // is the `MsiRemap` it was created on, which outlives it.
        let this = unsafe { &*(*domain).host_data.cast::<Self>() };
        let info = arg.cast::<bindings::msi_alloc_info_t>();
        // SAFETY: The MSI core passes the alloc info of a PCI child's MSI
        // descriptor (the caller's guarantee).
        let pdev = unsafe { ext::kernel_ext_msi_desc_to_pci_dev((*info).desc) };
        // SAFETY: `pdev` is the valid child device allocating interrupts.
        let child = unsafe {
            Child {
                class: (*pdev).class,
                bus: (*(*pdev).bus).number,
                devfn: (*pdev).devfn as u8,
            }
        };
        for i in 0..nr_irqs {
            let index = {
                let mut loads = this.loads.lock();
                let index = this.ops.pick_vector(&child, &loads).min(loads.len() - 1);
                // H3: every entry is counted exactly once, here, and
                // uncounted once in `domain_free`: the count cannot wrap.
                loads[index] += 1;
                index
            };
            let line = &this.lines[index];
            let entry = KBox::new(
                Entry {
                    node: Opaque::uninit(),
                    line: NonNull::from(&**line),
                    virq: virq + i,
                    enabled: AtomicBool::new(false),
                    flush: this.ops.flushes().then_some(child),
                },
                GFP_KERNEL,
            );
            let Ok(entry) = entry else {
                this.loads.lock()[index] -= 1;
                // SAFETY: Frees the `i` interrupts set up so far.
                unsafe { Self::domain_free(domain, virq, i) };
                return ENOMEM.to_errno();
            };
            let entry = KBox::into_raw(entry);
            // SAFETY: `entry` is valid and ours; its node is initialised
            // before it can be linked (in `irq_startup`, after this returns).
            unsafe { bindings::INIT_LIST_HEAD((*entry).node.get()) };
            // SAFETY: `virq + i` is being allocated in our domain; the chip,
            // entry and handler data live as long as the interrupt.
            unsafe {
                bindings::irq_domain_set_info(
                    domain,
                    virq + i,
                    line.virq as bindings::irq_hw_number_t,
                    this.chip.get(),
                    entry.cast::<c_void>(),
                    Some(bindings::handle_untracked_irq),
                    ptr::from_ref(this).cast_mut().cast::<c_void>(),
                    ptr::null(),
                )
            };
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
        // SAFETY: See `domain_alloc`.
        let this = unsafe { &*(*domain).host_data.cast::<Self>() };
        for i in 0..nr_irqs {
            // SAFETY: `virq + i` belongs to our domain.
            let data = unsafe { bindings::irq_domain_get_irq_data(domain, virq + i) };
            if data.is_null() {
                continue;
            }
            // SAFETY: `data` is valid; its chip data is an entry or null.
            let entry = unsafe { (*data).chip_data.cast::<Entry<'a, R>>() };
            if entry.is_null() {
                continue;
            }
            // SAFETY: `entry` came from `KBox::into_raw` in `domain_alloc`.
            let line = unsafe { (*entry).line.as_ref() };
            // SAFETY: `entry` is a valid entry of this domain (see above).
            // Normally shut down (unlinked) already; make sure.
            unsafe { this.unlink(&*entry) };
            // No demux reader may still be looking at the entry.
            line.srcu.synchronize();
            this.loads.lock()[line.index] -= 1;
            // SAFETY: `data` is valid (see above); the irq core is done with
            // it.
            unsafe { bindings::irq_domain_reset_irq_data(data) };
            // SAFETY: `entry` came from `KBox::into_raw` in `domain_alloc`,
            // and nothing refers to it any more.
            drop(unsafe { KBox::from_raw(entry) });
        }
    }

    /// `irq_chip.irq_compose_msi_msg` of our level: the message the
    /// driver's [`RemapOps::compose_msg`] gives for the interrupt's vector.
    ///
    /// # Safety
    ///
    /// `data` is an interrupt of our domain, `msg` valid for writes.
    unsafe extern "C" fn compose_msi_msg(
        data: *mut bindings::irq_data,
        msg: *mut bindings::msi_msg,
    ) {
        // SAFETY: Our interrupts' chip data is their entry.
        let line = unsafe { (*(*data).chip_data.cast::<Entry<'a, R>>()).line.as_ref() };
        // SAFETY: The line's owner outlives its lines.
        let remap = unsafe { line.remap.as_ref() };
        let m = remap.ops.compose_msg(line.index as u32);
        // SAFETY: `msg` is valid for writes (the caller's guarantee).
        unsafe { ext::kernel_ext_msi_msg_set(msg, m.address_lo, m.address_hi, m.data) };
    }

    /// `msi_parent_ops.init_dev_msi_info`: the per-device MSI chip links an
    /// interrupt into its vector's list when it is enabled.
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

    /// The entry of a child-level interrupt.
    ///
    /// # Safety
    ///
    /// `data` is a per-device MSI interrupt whose parent is ours.
    unsafe fn entry_of<'b>(data: *mut bindings::irq_data) -> (&'b Self, &'b Entry<'a, R>) {
        // SAFETY: `data`'s parent is an interrupt of ours (the caller's
        // guarantee), whose chip data is its entry, alive while it is.
        let entry = unsafe { &*(*(*data).parent_data).chip_data.cast::<Entry<'a, R>>() };
        // SAFETY: A line outlives its entries, the line's owner its lines.
        let this = unsafe { entry.line.as_ref().remap.as_ref() };
        (this, entry)
    }

    /// Links `entry` into its vector's list.
    fn link(&self, entry: &Entry<'a, R>) {
        let _guard = self.loads.lock();
        if !entry.enabled.load(Ordering::Relaxed) {
            // SAFETY: A line outlives its entries.
            let list = unsafe { entry.line.as_ref() }.list.get();
            // SAFETY: The node is initialised and unlinked, the list head
            // valid; writers are serialised by the lock.
            unsafe { ext::kernel_ext_list_add_tail_rcu(entry.node.get(), list) };
            entry.enabled.store(true, Ordering::Relaxed);
        }
    }

    /// Unlinks `entry` (readers may still see it until an SRCU grace
    /// period has passed).
    ///
    /// # Safety
    ///
    /// `entry` must be an entry of this domain.
    unsafe fn unlink(&self, entry: &Entry<'a, R>) {
        let _guard = self.loads.lock();
        if entry.enabled.load(Ordering::Relaxed) {
            // SAFETY: The node is on a list; writers are serialised.
            unsafe { ext::kernel_ext_list_del_rcu(entry.node.get()) };
            entry.enabled.store(false, Ordering::Relaxed);
        }
    }

    /// `irq_chip.irq_enable` of the per-device chip.
    ///
    /// # Safety
    ///
    /// `data` is a per-device MSI interrupt whose parent is ours.
    unsafe extern "C" fn irq_enable(data: *mut bindings::irq_data) {
        // SAFETY: The irq core calls this on a per-device interrupt of ours.
        let (this, entry) = unsafe { Self::entry_of(data) };
        this.link(entry);
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
        let (this, entry) = unsafe { Self::entry_of(data) };
        // SAFETY: `entry_of` gave an entry of `this`.
        unsafe { this.unlink(entry) };
    }
}

#[pinned_drop]
impl<'a, R: RemapOps> PinnedDrop for MsiRemap<'a, R> {
    fn drop(self: Pin<&mut Self>) {
        // SAFETY: Not moved out of; fields are dropped in place below.
        let this = unsafe { self.get_unchecked_mut() };
        // Nobody may read `self` through debugfs from here on.
        this.debugfs = None;
        // Handlers go (waiting for running ones) before their lines and
        // SRCU structs (H1), and these before the irq domain, whose
        // children's interrupts are gone (the C driver's remove order).
        for line in this.lines.iter() {
            line.free();
        }
        this.lines.clear();
        this.domain = None;
        // SAFETY: `new` allocated the vectors, and no handler is left on
        // them.
        unsafe { bindings::pci_free_irq_vectors(raw_pci_dev(this.pdev)) };
    }
}
