// SPDX-License-Identifier: GPL-2.0

//! A raw spinlock that keeps local interrupts disabled while held.
//!
//! C header: [`include/linux/spinlock.h`](srctree/include/linux/spinlock.h)
//!
//! A `raw_spinlock_t` stays a spinning lock under PREEMPT_RT, so it may be
//! taken where `spinlock_t` may not: in PCI config accessors (called under
//! the raw `pci_lock`) and in hard interrupt handlers. The kernel crate's
//! `SpinLockIrq` wraps `spinlock_t` only; this is its `raw_spinlock_t`
//! counterpart, with the same interrupt handling.

use kernel::{
    bindings,
    prelude::*,
    sync::lock::{
        Backend,
        Guard,
        Lock, //
    },
};

use crate::kernel_ext::bindings as ext;

/// Creates a [`RawSpinLockIrq`] with a lockdep class of its own and a name
/// from the call site.
#[macro_export]
macro_rules! new_raw_spinlock_irq {
    ($inner:expr $(, $name:literal)? $(,)?) => {
        $crate::kernel_ext::sync::RawSpinLockIrq::new(
            $inner,
            ::kernel::optional_name!($($name)?),
            ::kernel::static_lock_class!(),
        )
    };
}

/// A raw spinlock held with local interrupts disabled
/// (`raw_spin_lock_irq_disable`).
///
/// Locking disables interrupts through the counted
/// `local_interrupt_disable()`, which `kernel::sync::SpinLockIrq` and
/// `kernel::interrupt::local_interrupt_disable` use as well: interrupts come
/// back on only when the last of them on this CPU is released, so guards
/// may be dropped in any order. Saving and restoring the interrupt state
/// per guard (`raw_spin_lock_irqsave`) would re-enable interrupts while
/// another lock is still held if the first guard went first.
///
/// Usable from any context, hard interrupt handlers and callers that
/// already run with interrupts disabled included; never sleep while
/// holding it.
pub(crate) type RawSpinLockIrq<T> = Lock<T, RawSpinLockIrqBackend>;

/// A guard of a [`RawSpinLockIrq`].
#[allow(dead_code)]
pub(crate) type RawSpinLockIrqGuard<'a, T> = Guard<'a, T, RawSpinLockIrqBackend>;

/// The backend of [`RawSpinLockIrq`].
pub(crate) struct RawSpinLockIrqBackend;

// SAFETY: `raw_spinlock_t` is a mutual-exclusion lock: `lock` returns with
// it held, `unlock` releases it, `try_lock` holds it when it returns `Some`.
// It is unlocked on the CPU that locked it: interrupts, and so preemption,
// stay disabled while it is held. `relock` is the default, `lock` again.
unsafe impl Backend for RawSpinLockIrqBackend {
    type State = bindings::raw_spinlock_t;
    type GuardState = ();

    unsafe fn init(
        ptr: *mut Self::State,
        name: *const kernel::ffi::c_char,
        key: *mut bindings::lock_class_key,
    ) {
        // SAFETY: The caller guarantees that `ptr` is valid for writes and
        // that `name` and `key` live as long as the lock (they are static).
        unsafe { ext::kernel_ext_raw_spin_lock_init(ptr, name, key) }
    }

    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        // SAFETY: The caller guarantees that `ptr` points to an initialised
        // lock.
        unsafe { ext::kernel_ext_raw_spin_lock_irq_disable(ptr) }
    }

    unsafe fn try_lock(ptr: *mut Self::State) -> Option<Self::GuardState> {
        // SAFETY: The caller guarantees that `ptr` points to an initialised
        // lock.
        unsafe { ext::kernel_ext_raw_spin_trylock_irq_disable(ptr) }.then_some(())
    }

    unsafe fn unlock(ptr: *mut Self::State, _guard_state: &Self::GuardState) {
        // SAFETY: The caller guarantees that `ptr` points to an initialised
        // lock this CPU holds, taken by `lock` or `try_lock`, so with one
        // count of interrupt disabling to give back.
        unsafe { ext::kernel_ext_raw_spin_unlock_irq_enable(ptr) }
    }

    unsafe fn assert_is_held(ptr: *mut Self::State) {
        // SAFETY: The caller guarantees that `ptr` points to an initialised
        // lock.
        unsafe { ext::kernel_ext_raw_spin_assert_is_held(ptr) }
    }
}

#[kunit_tests(kernel_ext_raw_spinlock)]
mod tests {
    use kernel::{
        interrupt::local_interrupt_disable,
        prelude::*,
        sync::Arc, //
    };

    use crate::kernel_ext::bindings as ext;

    fn irqs_disabled() -> bool {
        // SAFETY: Only reads this CPU's interrupt state.
        unsafe { ext::kernel_ext_irqs_disabled() }
    }

    #[test]
    fn lock_guards_data() -> Result {
        let lock = Arc::pin_init(new_raw_spinlock_irq!(0u32, "test"), GFP_KERNEL)?;
        *lock.lock() += 1;
        {
            let mut guard = lock.lock();
            *guard += 1;
            // Held: a second attempt must fail, without deadlock.
            assert!(lock.try_lock().is_none());
        }
        assert_eq!(*lock.try_lock().expect("unlocked"), 2);
        Ok(())
    }

    #[test]
    fn guards_dropped_out_of_order() -> Result {
        let a = Arc::pin_init(new_raw_spinlock_irq!((), "test_a"), GFP_KERNEL)?;
        let b = Arc::pin_init(new_raw_spinlock_irq!((), "test_b"), GFP_KERNEL)?;
        assert!(!irqs_disabled());
        let guard_a = a.lock();
        let guard_b = b.lock();
        // `b` is still held: interrupts must stay off.
        drop(guard_a);
        assert!(irqs_disabled());
        drop(guard_b);
        assert!(!irqs_disabled());

        // The count is shared with the kernel crate's token.
        let token = local_interrupt_disable();
        let guard_a = a.lock();
        drop(token);
        assert!(irqs_disabled());
        drop(guard_a);
        assert!(!irqs_disabled());
        Ok(())
    }
}
