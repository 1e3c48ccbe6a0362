// SPDX-License-Identifier: GPL-2.0

//! A PCI device's interrupt vectors with a handler on each.
//!
//! C header: [`include/linux/interrupt.h`](srctree/include/linux/interrupt.h)
//!
//! Built on 7.3's [`pci::IrqVectorRegistration`] and [`irq::Registration`]:
//! [`IrqVectors`] owns both, so that the registrations, which borrow the
//! vectors, go before them; the handlers can be freed and registered again
//! (system sleep) while the vectors stay. Its constructor is safe where
//! `irq::Registration::new` is not: a [`Backstop`] frees the handlers and
//! vectors at unbind if the owner leaked it.

use kernel::{
    device::Bound,
    irq,
    new_mutex,
    pci,
    prelude::*,
    sync::Mutex, //
};

use crate::kernel_ext::devres_ext::Backstop;

/// The handlers and the vectors they sit on.
struct State<'a, H: irq::Handler + 'static> {
    /// One per vector, or none (handlers freed).
    registrations: KVec<Pin<KBox<irq::Registration<'a, H>>>>,
    /// `None` once torn down.
    vectors: Option<pci::IrqVectorRegistration<'a>>,
}

/// Interrupt vectors of `'a`'s device, a handler of type `H` on each.
///
/// `H` is `'static`: `'a` may be shorter than the binding, and a leaked
/// `IrqVectors` keeps its handlers registered until the backstop runs at
/// unbind; they must reach nothing that can go before.
///
/// # Invariants
///
/// - Every registration is on a vector of `state.vectors`, which is `Some`
///   while there are registrations.
/// - `backstop` is armed on `dev` from the end of initialisation to drop.
#[pin_data(PinnedDrop)]
pub(crate) struct IrqVectors<'a, H: irq::Handler + Clone + Send + 'static> {
    dev: &'a pci::Device<Bound>,
    /// Each vector's handler, cloned into each registration.
    handlers: KVec<H>,
    flags: irq::Flags,
    name: &'static CStr,
    #[pin]
    state: Mutex<State<'a, H>>,
    backstop: Backstop,
}

/// Vectors of a device, allocated, with no handler yet: what
/// [`IrqVectors::new`] takes (the device and its vectors, together).
pub(crate) struct Allocated<'a> {
    dev: &'a pci::Device<Bound>,
    vectors: pci::IrqVectorRegistration<'a>,
}

impl<'a> Allocated<'a> {
    /// Allocates `min` to `max` vectors of `dev`, of `types`.
    pub(crate) fn new(
        dev: &'a pci::Device<Bound>,
        min: u32,
        max: u32,
        types: pci::IrqTypes,
    ) -> Result<Self> {
        let vectors = dev.alloc_irq_vectors(min, max, types)?;
        Ok(Self { dev, vectors })
    }

    /// Number of vectors.
    pub(crate) fn len(&self) -> usize {
        self.vectors.len()
    }

    /// Linux IRQ number of vector `index`.
    pub(crate) fn irq(&self, index: usize) -> Result<u32> {
        Ok(irq::IrqRequest::from(self.vectors.index(index)?).irq())
    }
}

impl<'a, H: irq::Handler + Clone + Send + 'static> IrqVectors<'a, H> {
    /// Takes `vectors` and registers `handlers[i]` on vector `i`.
    pub(crate) fn new(
        vectors: Allocated<'a>,
        handlers: KVec<H>,
        flags: irq::Flags,
        name: &'static CStr,
    ) -> impl PinInit<Self, Error> + 'a {
        let Allocated { dev, vectors } = vectors;
        let handlers = if handlers.len() == vectors.len() {
            Ok(handlers)
        } else {
            Err(EINVAL)
        };
        try_pin_init!(&this in Self {
            dev,
            handlers: handlers?,
            flags,
            name,
            state <- new_mutex!(State {
                registrations: KVec::new(),
                vectors: Some(vectors),
            }),
            backstop: Backstop::new(Self::run_backstop),
            _: {
                // SAFETY: `this` is pinned and fully initialised.
                let this = unsafe { this.as_ref() };
                // SAFETY: Armed once; `run_backstop` tears `this` down,
                // idempotently; `drop` disarms first.
                unsafe { this.backstop.arm(dev.as_ref()) }?;
                // On an error the fields drop, not `Self`: the vectors go
                // with `state`, the backstop must go here.
                this.request().inspect_err(|_| this.backstop.disarm(dev.as_ref()))?;
            },
        }? Error)
    }

    /// Registers the handlers, if they are not (after [`IrqVectors::free`]).
    pub(crate) fn request(&self) -> Result {
        let mut state = self.state.lock();
        let state = &mut *state;
        let Some(vectors) = state.vectors.as_ref() else {
            return Err(ENODEV);
        };
        if !state.registrations.is_empty() {
            return Ok(());
        }
        // All or none: a partial set would pass for registered.
        let mut registrations = KVec::with_capacity(self.handlers.len(), GFP_KERNEL)?;
        for (i, handler) in self.handlers.iter().enumerate() {
            let request = irq::IrqRequest::from(vectors.index(i)?);
            // SAFETY: Only the lifetime changes, to that of the vectors'
            // device binding: the registration is dropped before the vectors
            // (`free`, `teardown`), which the state owns.
            let request = unsafe {
                core::mem::transmute::<irq::IrqRequest<'_>, irq::IrqRequest<'a>>(request)
            };
            // SAFETY: Not leaked: the state owns it until `free` or
            // `teardown` drops it, which the backstop guarantees at unbind.
            let registration = unsafe {
                irq::Registration::new(
                    request,
                    self.flags,
                    self.name,
                    Ok::<_, Error>(handler.clone()),
                )
            };
            registrations.push(KBox::pin_init(registration, GFP_KERNEL)?, GFP_KERNEL)?;
        }
        state.registrations = registrations;
        Ok(())
    }

    /// Frees the handlers, waiting for running ones; the vectors stay.
    pub(crate) fn free(&self) {
        self.state.lock().registrations.clear();
    }

    /// Frees the handlers, then the vectors; once.
    fn teardown(&self) {
        let mut state = self.state.lock();
        state.registrations.clear();
        state.vectors = None;
    }

    /// [`Backstop`]'s teardown.
    ///
    /// # Safety
    ///
    /// `backstop` is the `backstop` field of a live `IrqVectors<'a, H>`.
    unsafe fn run_backstop(backstop: *const Backstop) {
        // SAFETY: The caller's guarantee.
        let this = unsafe { &*kernel::container_of!(backstop, Self, backstop) };
        this.teardown();
    }
}

#[pinned_drop]
impl<'a, H: irq::Handler + Clone + Send + 'static> PinnedDrop for IrqVectors<'a, H> {
    fn drop(self: Pin<&mut Self>) {
        self.backstop.disarm(self.dev.as_ref());
        self.teardown();
    }
}
