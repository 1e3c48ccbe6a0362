// SPDX-License-Identifier: GPL-2.0

//! MSI remapping: every child interrupt rides one of the VMD's MSI-X
//! vectors, and the vector's handler runs the child interrupts on it.

use core::sync::atomic::{
    AtomicBool,
    Ordering, //
};

use kernel::{
    bindings,
    cpu::CpuId,
    debugfs,
    device::Bound,
    irq,
    new_mutex,
    pci,
    prelude::*,
    sync::{
        Arc,
        Mutex, //
    }, //
};

use crate::{
    ecam::Ecam,
    kernel_ext::{
        bindings as ext,
        msi_parent::{
            set_affinity_nth_online_cpu,
            ChildIrq,
            MsiChild,
            MsiMessage,
            MsiParentConfig,
            MsiParentOps, //
        },
        pci_ext::msix_vec_count,
        pci_host::ConfigOps,
        pci_irq::{
            Allocated,
            IrqVectors, //
        },
        sync::{
            SrcuList,
            SrcuListEntry, //
        },
    },
    layout,
};

/// A child interrupt on its vector's list.
struct Child {
    irq: ChildIrq,
    /// Started up and not disabled: the vector's handler runs it.
    enabled: AtomicBool,
    /// Bus and devfn to read before its handler (MTL016), if the part
    /// needs it.
    flush: Option<(u8, u8)>,
}

/// The child interrupts of every vector, shared with debugfs.
#[pin_data]
struct Vectors {
    lists: KVec<Arc<SrcuList<Child>>>,
    irqs: KVec<u32>,
    /// The CPU each vector was sent to (`irq_affinity=on`).
    cpus: KVec<Option<u32>>,
    /// Child interrupts per vector; held while one is picked.
    #[pin]
    loads: Mutex<KVec<u32>>,
}

impl Vectors {
    /// debugfs "vectors": each vector's IRQ and the child IRQs on it.
    fn show(this: &Arc<Vectors>, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        for (i, list) in this.lists.iter().enumerate() {
            let (irq, load) = (this.irqs[i], this.loads.lock()[i]);
            write!(f, "vector {i}: irq {irq}, {load} child irqs:")?;
            let mut r = Ok(());
            list.for_each(|c| {
                if c.enabled.load(Ordering::Relaxed) {
                    r = r.and_then(|()| write!(f, " {}", c.irq.irq()));
                }
            });
            r?;
            writeln!(f)?;
        }
        Ok(())
    }
}

/// A vector's hard interrupt handler: the demultiplexer.
#[derive(Clone)]
pub(crate) struct Demux {
    list: Arc<SrcuList<Child>>,
    /// Only where children are flushed.
    ecam: Option<Arc<Ecam>>,
}

impl irq::Handler for Demux {
    fn handle(&self) -> irq::IrqReturn {
        self.list.for_each(|child| {
            if !child.enabled.load(Ordering::Acquire) {
                return;
            }
            if let (Some(ecam), Some((bus, devfn))) = (&self.ecam, child.flush) {
                // An MSI may overtake the child's posted writes (its NVMe
                // completion entry); a read that completes at the child
                // pulls them in first. The value does not matter.
                let _ = ecam.read(bus, devfn, 0, 2);
            }
            child.irq.handle();
        });
        irq::IrqReturn::Handled
    }
}

/// A child interrupt: its vector and its entry on the vector's list.
pub(crate) struct RemappedIrq {
    vector: usize,
    entry: Pin<KBox<SrcuListEntry<Child>>>,
}

/// The VMD's vectors with their handlers.
pub(crate) type Handlers<'b> = Pin<KBox<IrqVectors<'b, Demux>>>;

/// How the VMD's vectors are shared by its children.
pub(crate) struct Remap {
    vectors: Arc<Vectors>,
    /// Vectors before this one are the VMD's own (client parts keep 0).
    first_vector: usize,
    flush: bool,
    _debugfs: Pin<KBox<debugfs::File<Arc<Vectors>>>>,
}

impl Remap {
    /// Allocates the VMD's MSI-X vectors and registers their handlers.
    pub(crate) fn new<'b>(
        pdev: &'b pci::Device<Bound>,
        ecam: &Arc<Ecam>,
        first_vector: usize,
        flush: bool,
        affinity: bool,
        dir: &debugfs::Dir,
    ) -> Result<(Self, Handlers<'b>)> {
        let Some(count) = msix_vec_count(pdev) else {
            dev_err!(pdev, "no MSI-X capability: child MSIs cannot be remapped\n");
            return Err(ENODEV);
        };
        let min = first_vector as u32 + 1;
        if count < min {
            dev_err!(pdev, "{count} MSI-X vectors: none left for child devices\n");
            return Err(ENODEV);
        }
        let msix = pci::IrqTypes::default().with(pci::IrqType::MsiX);
        let vectors = Allocated::new(pdev, min, count, msix).inspect_err(|e| {
            dev_err!(
                pdev,
                "cannot allocate {min} to {count} MSI-X vectors: {e:?}\n"
            )
        })?;
        let (mut lists, mut irqs, mut demux, mut loads) =
            (KVec::new(), KVec::new(), KVec::new(), KVec::new());
        for i in 0..vectors.len() {
            let list = SrcuList::new()?;
            irqs.push(vectors.irq(i)?, GFP_KERNEL)?;
            let (list2, ecam) = (list.clone(), flush.then(|| ecam.clone()));
            demux.push(Demux { list: list2, ecam }, GFP_KERNEL)?;
            lists.push(list, GFP_KERNEL)?;
            loads.push(0, GFP_KERNEL)?;
        }
        let handlers = IrqVectors::new(vectors, demux, irq::Flags::NO_THREAD, c"vmd_rs");
        let handlers = KBox::pin_init(handlers, GFP_KERNEL)?;
        // Each CPU gets NVMe vectors of its own where enough (best effort).
        let mut cpus = KVec::from_elem(None, irqs.len(), GFP_KERNEL)?;
        let spread = (first_vector + 1..irqs.len()).filter(|_| affinity);
        for (n, v) in spread.enumerate() {
            let Ok(cpu) = set_affinity_nth_online_cpu(irqs[v], n as u32) else {
                dev_warn!(pdev, "cannot spread the vectors over the CPUs\n");
                break;
            };
            cpus[v] = Some(cpu);
        }
        let vectors = Arc::pin_init(
            try_pin_init!(Vectors {
                lists,
                irqs,
                cpus,
                loads <- new_mutex!(loads),
            }),
            GFP_KERNEL,
        )?;
        let file =
            dir.read_callback_file(c"vectors", Ok::<_, Error>(vectors.clone()), &Vectors::show);
        let remap = Self {
            vectors,
            first_vector,
            flush,
            _debugfs: KBox::pin_init(file, GFP_KERNEL)?,
        };
        Ok((remap, handlers))
    }

    /// What the irq domain on `self` is made with: vmd.c's names and flags.
    pub(crate) fn config(&self, id: i32) -> MsiParentConfig {
        MsiParentConfig {
            name: c"VMD-MSI",
            id,
            prefix: c"VMD-",
            bus_token: bindings::irq_domain_bus_token_DOMAIN_BUS_VMD_MSI,
            size: self.vectors.irqs.len() as u32,
            supported_flags: ext::MSI_GENERIC_FLAGS_MASK | ext::MSI_FLAG_PCI_MSIX,
            required_flags: ext::MSI_FLAG_USE_DEF_DOM_OPS | ext::MSI_FLAG_NO_AFFINITY,
        }
    }

    /// Number of vectors and the IRQ of the first.
    pub(crate) fn vectors(&self) -> (usize, u32) {
        let irqs = &self.vectors.irqs;
        (irqs.len(), irqs.first().copied().unwrap_or(0))
    }
}

impl MsiParentOps for Remap {
    type Irq = RemappedIrq;

    fn alloc(&self, child: &MsiChild<'_>, irq: ChildIrq) -> Result<(u64, RemappedIrq)> {
        let nvme = child.class == bindings::PCI_CLASS_STORAGE_EXPRESS;
        let near = |v: usize| match (child.affinity, self.vectors.cpus[v]) {
            (Some(mask), Some(cpu)) => CpuId::from_u32(cpu).is_some_and(|c| mask.test(c)),
            _ => true,
        };
        let vector = {
            let mut loads = self.vectors.loads.lock();
            let v = layout::pick_vector(&loads, self.first_vector, nvme, near).min(loads.len() - 1);
            // Counted once here, uncounted once in `free`: cannot wrap.
            loads[v] += 1;
            v
        };
        let child = Child {
            irq,
            enabled: AtomicBool::new(false),
            flush: self.flush.then_some((child.bus, child.devfn)),
        };
        let list = self.vectors.lists[vector].clone();
        match KBox::pin_init(SrcuListEntry::new(list, child), GFP_KERNEL) {
            Ok(entry) => Ok((
                self.vectors.irqs[vector].into(),
                RemappedIrq { vector, entry },
            )),
            Err(e) => {
                self.vectors.loads.lock()[vector] -= 1;
                Err(e)
            }
        }
    }

    /// Its handler runs where its vector's does.
    fn effective_cpu(&self, irq: &RemappedIrq) -> Option<u32> {
        self.vectors.cpus[irq.vector]
    }

    fn free(&self, irq: RemappedIrq) {
        let vector = irq.vector;
        // Unlinked, once the vector's handler can no longer see it.
        drop(irq);
        self.vectors.loads.lock()[vector] -= 1;
    }

    /// The VMD raises the vector a child's x86 MSI names as its destination
    /// ID.
    fn compose_msg(&self, irq: &RemappedIrq) -> MsiMessage {
        MsiMessage {
            address_lo: (bindings::X86_MSI_BASE_ADDRESS_LOW << 20)
                | ((irq.vector as u32 & 0xff) << 12),
            address_hi: bindings::X86_MSI_BASE_ADDRESS_HIGH,
            data: 0,
        }
    }

    fn enable(&self, irq: &RemappedIrq) {
        irq.entry.value().enabled.store(true, Ordering::Release);
    }

    fn disable(&self, irq: &RemappedIrq) {
        irq.entry.value().enabled.store(false, Ordering::Release);
    }
}
