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
    cpumask::Cpumask,
    debugfs,
    device::Bound,
    irq,
    pci,
    prelude::*,
    sync::Arc, //
};

use crate::{
    ecam::Ecam,
    kernel_ext::{
        bindings as ext,
        irq_work::{
            IrqWork,
            IrqWorkFn, //
        },
        msi_parent::{
            cpu_online,
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
            RawSpinLockIrq,
            SrcuListEntry,
            SrcuLists, //
        },
    },
    layout,
    new_raw_spinlock_irq, //
};

/// A child interrupt on its vector's list.
struct Child {
    irq: ChildIrq,
    /// Started up and not disabled: the vector's handler runs it.
    enabled: AtomicBool,
    /// Handler runs asked for, and whether a CPU is making them.
    pending: AtomicBool,
    running: AtomicBool,
    /// Its bus and devfn: a read there flushes its posted writes.
    at: (u8, u8),
    nvme: bool,
}

impl Child {
    /// Runs its handler if it is enabled. While it moves, two vectors' handlers
    /// may run it at once, and its flow handler (`handle_untracked_irq`) drops a
    /// call made while another CPU is in it: one CPU makes the calls, as many
    /// as were asked for.
    fn run(&self) {
        if !self.enabled.load(Ordering::Acquire) {
            return;
        }
        self.pending.store(true, Ordering::SeqCst);
        while !self.running.swap(true, Ordering::SeqCst) {
            while self.pending.swap(false, Ordering::SeqCst) {
                self.irq.handle();
            }
            self.running.store(false, Ordering::SeqCst);
            if !self.pending.load(Ordering::SeqCst) {
                break;
            }
        }
    }

    /// A read that completes at the child: its posted writes before it are
    /// in. The value does not matter.
    fn flush(&self, ecam: &Ecam) {
        let _ = ecam.read(self.at.0, self.at.1, 0, 2);
    }
}

/// The child interrupts of every vector, shared with debugfs.
#[pin_data]
struct Vectors {
    lists: Arc<SrcuLists<Child>>,
    irqs: KVec<u32>,
    /// The CPU each vector was sent to (`irq_affinity=on`).
    cpus: KVec<Option<u32>>,
    /// Child interrupts per vector; held while one is picked.
    #[pin]
    loads: RawSpinLockIrq<KVec<u32>>,
}

impl Vectors {
    /// Whether vector `v` is handled on an online CPU of `mask`; any vector
    /// is if there is no mask or the vectors were not spread.
    fn near(&self, mask: Option<&Cpumask>, v: usize) -> bool {
        match (mask, self.cpus[v]) {
            (Some(mask), Some(cpu)) => {
                cpu_online(cpu) && CpuId::from_u32(cpu).is_some_and(|c| mask.test(c))
            }
            _ => true,
        }
    }

    /// debugfs "vectors": each vector's IRQ, CPU and the child IRQs on it.
    fn show(this: &Arc<Vectors>, f: &mut kernel::fmt::Formatter<'_>) -> kernel::fmt::Result {
        for (i, irq) in this.irqs.iter().enumerate() {
            let (cpu, load) = (this.cpus[i].map_or(-1, i64::from), this.loads.lock()[i]);
            write!(f, "vector {i}: irq {irq}, cpu {cpu}, {load} child irqs:")?;
            let mut r = Ok(());
            this.lists.for_each(i, |c| {
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
    lists: Arc<SrcuLists<Child>>,
    vector: usize,
    ecam: Arc<Ecam>,
    /// Children are flushed before their handlers (MTL016).
    flush: bool,
}

impl irq::Handler for Demux {
    fn handle(&self) -> irq::IrqReturn {
        self.lists.for_each(self.vector, |child| {
            if self.flush && child.enabled.load(Ordering::Acquire) {
                // An MSI may overtake the child's NVMe completion entry.
                child.flush(&self.ecam);
            }
            child.run();
        });
        irq::IrqReturn::Handled
    }
}

/// A child interrupt moved to another vector stays on the old one's list
/// until its new message is written and the MSIs it sent to the old vector
/// before are in; then it runs once more for what those signalled.
struct Move {
    entry: Pin<KBox<SrcuListEntry<Child>>>,
    ecam: Arc<Ecam>,
}

impl IrqWorkFn for Move {
    fn run(&self) {
        let (entry, child) = (&self.entry, self.entry.value());
        let moves = entry.moves();
        // The message of that move was written under the descriptor lock
        // this takes.
        child.irq.synchronize();
        child.flush(&self.ecam);
        if entry.leave_old(moves) {
            child.run();
        }
    }
}

/// A child interrupt: its entry on its vector's list, and what completes
/// its moves.
pub(crate) struct RemappedIrq(Pin<KBox<IrqWork<Move>>>);

impl RemappedIrq {
    fn entry(&self) -> &SrcuListEntry<Child> {
        &self.0.data().entry
    }
}

/// The VMD's vectors with their handlers.
pub(crate) type Handlers<'b> = Pin<KBox<IrqVectors<'b, Demux>>>;

/// How the VMD's vectors are shared by its children.
pub(crate) struct Remap {
    vectors: Arc<Vectors>,
    ecam: Arc<Ecam>,
    /// Vectors before this one are the VMD's own (client parts keep 0).
    first_vector: usize,
    /// Every vector has a CPU: children may be moved.
    affine: bool,
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
        // A message names its vector in 8 bits.
        let count = count.min(256);
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
        let lists = SrcuLists::new(vectors.len())?;
        let (mut irqs, mut demux) = (KVec::new(), KVec::new());
        for vector in 0..vectors.len() {
            irqs.push(vectors.irq(vector)?, GFP_KERNEL)?;
            let (lists, ecam) = (lists.clone(), ecam.clone());
            demux.push(
                Demux {
                    lists,
                    vector,
                    ecam,
                    flush,
                },
                GFP_KERNEL,
            )?;
        }
        let handlers = IrqVectors::new(vectors, demux, irq::Flags::NO_THREAD, c"vmd_rs");
        let handlers = KBox::pin_init(handlers, GFP_KERNEL)?;
        // Each CPU gets NVMe vectors of its own where enough (best effort):
        // vector first+1 goes to the first CPU.
        let mut cpus = KVec::from_elem(None, irqs.len(), GFP_KERNEL)?;
        let n = |v: usize| ((v + irqs.len() - first_vector - 1) % irqs.len()) as u32;
        for v in (0..irqs.len()).filter(|_| affinity) {
            let Ok(cpu) = set_affinity_nth_online_cpu(irqs[v], n(v)) else {
                dev_warn!(pdev, "cannot spread the vectors over the CPUs\n");
                break;
            };
            cpus[v] = Some(cpu);
        }
        let affine = affinity && cpus.iter().all(Option::is_some);
        let loads = KVec::from_elem(0, irqs.len(), GFP_KERNEL)?;
        let vectors = Arc::pin_init(
            try_pin_init!(Vectors {
                lists,
                irqs,
                cpus,
                loads <- new_raw_spinlock_irq!(loads),
            }),
            GFP_KERNEL,
        )?;
        let file =
            dir.read_callback_file(c"vectors", Ok::<_, Error>(vectors.clone()), &Vectors::show);
        let remap = Self {
            vectors,
            ecam: ecam.clone(),
            first_vector,
            affine,
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
            required_flags: ext::MSI_FLAG_USE_DEF_DOM_OPS
                | if self.affine {
                    0
                } else {
                    ext::MSI_FLAG_NO_AFFINITY
                },
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
        let near = |v| self.vectors.near(child.affinity, v);
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
            pending: AtomicBool::new(false),
            running: AtomicBool::new(false),
            at: (child.bus, child.devfn),
            nvme,
        };
        let lists = self.vectors.lists.clone();
        let irq = KBox::pin_init(SrcuListEntry::new(lists, vector, child), GFP_KERNEL).and_then(
            |entry| {
                let ecam = self.ecam.clone();
                KBox::pin_init(IrqWork::new(Move { entry, ecam }), GFP_KERNEL)
            },
        );
        match irq {
            Ok(irq) => Ok((self.vectors.irqs[vector].into(), RemappedIrq(irq))),
            Err(e) => {
                self.vectors.loads.lock()[vector] -= 1;
                Err(e)
            }
        }
    }

    /// Its handler runs where its vector's does.
    fn effective_cpu(&self, irq: &RemappedIrq) -> Option<u32> {
        self.vectors.cpus[irq.entry().list()]
    }

    /// To the least-loaded vector handled on a CPU of `mask`, unless its
    /// own is; none such, it stays, as it does when the irq core moves it
    /// off this CPU going offline (the work that completes a move would run
    /// as it dies; its vector moves itself). `EAGAIN` if it moved less than
    /// an SRCU grace period ago.
    fn set_affinity(&self, irq: &RemappedIrq, mask: &Cpumask) -> Result<Option<u32>> {
        let (entry, vectors) = (irq.entry(), &self.vectors);
        let near = |v| vectors.near(Some(mask), v);
        let mut loads = vectors.loads.lock();
        let from = entry.list();
        if near(from) || !cpu_online(CpuId::current().as_u32()) {
            return Ok(vectors.cpus[from]);
        }
        let nvme = entry.value().nvme;
        let to = layout::pick_vector(&loads, self.first_vector, nvme, near).min(loads.len() - 1);
        if !near(to) {
            return Ok(vectors.cpus[from]);
        }
        entry.move_to(to)?;
        loads[from] -= 1;
        loads[to] += 1;
        // Runs once the message is written (after this returns).
        irq.0.queue();
        Ok(vectors.cpus[to])
    }

    fn free(&self, irq: RemappedIrq) {
        let vector = irq.entry().list();
        // Unlinked, once the vector's handler can no longer see it.
        drop(irq);
        self.vectors.loads.lock()[vector] -= 1;
    }

    /// The VMD raises the vector a child's x86 MSI names as its destination
    /// ID.
    fn compose_msg(&self, irq: &RemappedIrq) -> MsiMessage {
        MsiMessage {
            address_lo: (bindings::X86_MSI_BASE_ADDRESS_LOW << 20)
                | ((irq.entry().list() as u32 & 0xff) << 12),
            address_hi: bindings::X86_MSI_BASE_ADDRESS_HIGH,
            data: 0,
        }
    }

    fn enable(&self, irq: &RemappedIrq) {
        irq.entry().value().enabled.store(true, Ordering::Release);
    }

    fn disable(&self, irq: &RemappedIrq) {
        irq.entry().value().enabled.store(false, Ordering::Release);
    }
}
