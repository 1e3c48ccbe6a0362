// SPDX-License-Identifier: GPL-2.0

//! Work queued from any context and run soon after in hard interrupt
//! context (under PREEMPT_RT too), on the CPU that queued it.
//!
//! C header: [`include/linux/irq_work.h`](srctree/include/linux/irq_work.h)
//!
//! What a caller holding a raw lock with interrupts off cannot do yet (take
//! that lock again, say) an [`IrqWork`] does once the lock is released and
//! interrupts are back on: a self-IPI runs it then.

use core::marker::PhantomPinned;

use kernel::{
    bindings,
    prelude::*,
    types::Opaque, //
};

use crate::kernel_ext::bindings as ext;

/// What an [`IrqWork`] runs.
pub(crate) trait IrqWorkFn: Send + Sync {
    /// Runs in hard interrupt context, once per time queued while not
    /// pending (so possibly on two CPUs at once, if queued again while
    /// running).
    fn run(&self);
}

/// An `irq_work` running `T`.
///
/// # Invariants
///
/// `work` is initialised with [`Self::run_raw`] as its function (a hard
/// `irq_work`), and is neither pending nor running once `self` is
/// dropped.
#[pin_data(PinnedDrop)]
pub(crate) struct IrqWork<T: IrqWorkFn> {
    #[pin]
    work: Opaque<bindings::irq_work>,
    data: T,
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: The `irq_work` may be queued and run on any CPU; `T` is `Send`.
unsafe impl<T: IrqWorkFn> Send for IrqWork<T> {}
// SAFETY: Shared access queues the work, which runs `T::run(&T)` (`T` is
// `Sync`).
unsafe impl<T: IrqWorkFn> Sync for IrqWork<T> {}

impl<T: IrqWorkFn> IrqWork<T> {
    /// An `irq_work` that runs `data` in hard interrupt context: what it
    /// does must not sleep under PREEMPT_RT either.
    pub(crate) fn new(data: T) -> impl PinInit<Self> {
        pin_init!(Self {
            // INVARIANT: initialised with `run_raw`.
            work <- Opaque::ffi_init(|p| {
                // SAFETY: `p` is valid for writes.
                unsafe { ext::kernel_ext_init_irq_work_hard(p, Some(Self::run_raw)) }
            }),
            data,
            _pin: PhantomPinned,
        })
    }

    /// The data.
    pub(crate) fn data(&self) -> &T {
        &self.data
    }

    /// Queues the work on this CPU unless it is pending (whether it was
    /// queued is returned). Any context but NMI. Not on a CPU going
    /// offline: its pending work runs while it dies, where what the work
    /// queues in turn is lost.
    pub(crate) fn queue(&self) -> bool {
        // SAFETY: `work` is initialised (type invariant) and lives until
        // the drop waits for it.
        unsafe { bindings::irq_work_queue(self.work.get()) }
    }

    /// The `irq_work`'s function.
    ///
    /// # Safety
    ///
    /// `work` is the `work` field of a live `Self`.
    unsafe extern "C" fn run_raw(work: *mut bindings::irq_work) {
        // SAFETY: `work` is inside a `Self` (the caller's guarantee), whose
        // drop waits for this call to return.
        let this = unsafe {
            &*kernel::container_of!(work.cast::<Opaque<bindings::irq_work>>(), Self, work)
        };
        this.data.run();
    }
}

#[pinned_drop]
impl<T: IrqWorkFn> PinnedDrop for IrqWork<T> {
    /// Waits for the work if it is pending or running. May sleep.
    fn drop(self: Pin<&mut Self>) {
        // INVARIANT: neither pending nor running after this.
        // SAFETY: `work` is initialised (type invariant).
        unsafe { bindings::irq_work_sync(self.work.get()) };
    }
}
