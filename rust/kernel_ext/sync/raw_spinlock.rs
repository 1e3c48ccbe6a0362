// SPDX-License-Identifier: GPL-2.0

//! A raw spinlock that disables interrupts, saving their state.
//!
//! C header: [`include/linux/spinlock.h`](srctree/include/linux/spinlock.h)
//!
//! A `raw_spinlock_t` stays a spinning lock under PREEMPT_RT, so it may be
//! taken where `spinlock_t` may not: in PCI config accessors (called under
//! the raw `pci_lock`) and in hard interrupt handlers. The kernel crate's
//! `SpinLock` wraps `spinlock_t` only.

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

/// Creates a [`RawSpinLockIrqSave`] with a lockdep class of its own and a
/// name from the call site.
#[macro_export]
macro_rules! new_raw_spinlock_irqsave {
    ($inner:expr $(, $name:literal)? $(,)?) => {
        $crate::kernel_ext::sync::RawSpinLockIrqSave::new(
            $inner,
            ::kernel::optional_name!($($name)?),
            ::kernel::static_lock_class!(),
        )
    };
}

/// A raw spinlock taken with interrupts disabled (`raw_spin_lock_irqsave`).
///
/// Usable from any context, hard interrupt handlers included; never sleep
/// while holding it.
pub(crate) type RawSpinLockIrqSave<T> = Lock<T, RawSpinLockIrqSaveBackend>;

/// A guard of a [`RawSpinLockIrqSave`].
#[allow(dead_code)]
pub(crate) type RawSpinLockIrqSaveGuard<'a, T> = Guard<'a, T, RawSpinLockIrqSaveBackend>;

/// The backend of [`RawSpinLockIrqSave`].
pub(crate) struct RawSpinLockIrqSaveBackend;

// SAFETY: The C functions below implement a mutual-exclusion lock: `lock`
// returns with the lock held (and interrupts disabled, their previous state
// in the guard state), `unlock` releases it and restores that state, and
// `init` initialises an unlocked lock. A `raw_spinlock_t` may be unlocked
// on the CPU that locked it only, which holds because interrupts (and so
// preemption) stay disabled while it is held.
unsafe impl Backend for RawSpinLockIrqSaveBackend {
    type State = bindings::raw_spinlock_t;
    type GuardState = kernel::ffi::c_ulong;

    unsafe fn init(
        ptr: *mut Self::State,
        name: *const kernel::ffi::c_char,
        key: *mut bindings::lock_class_key,
    ) {
        // SAFETY: The caller guarantees that `ptr` is valid for writes and
        // that `name` and `key` live as long as the lock (they are static).
        unsafe { ext::vmd_rs_raw_spin_lock_init(ptr, name, key) }
    }

    unsafe fn lock(ptr: *mut Self::State) -> Self::GuardState {
        // SAFETY: The caller guarantees that `ptr` points to an initialised
        // lock.
        unsafe { ext::vmd_rs_raw_spin_lock_irqsave(ptr) }
    }

    unsafe fn try_lock(ptr: *mut Self::State) -> Option<Self::GuardState> {
        let mut flags = 0;
        // SAFETY: The caller guarantees that `ptr` points to an initialised
        // lock; `flags` is a valid place for the saved interrupt state.
        if unsafe { ext::vmd_rs_raw_spin_trylock_irqsave(ptr, &mut flags) } {
            Some(flags)
        } else {
            None
        }
    }

    unsafe fn unlock(ptr: *mut Self::State, guard_state: &Self::GuardState) {
        // SAFETY: The caller guarantees that `ptr` points to an initialised
        // lock held by this CPU, and `guard_state` is what `lock` returned.
        unsafe { ext::vmd_rs_raw_spin_unlock_irqrestore(ptr, *guard_state) }
    }

    unsafe fn assert_is_held(ptr: *mut Self::State) {
        // SAFETY: The caller guarantees that `ptr` points to an initialised
        // lock.
        unsafe { ext::vmd_rs_raw_spin_assert_is_held(ptr) }
    }
}

#[kunit_tests(vmd_rs_raw_spinlock)]
mod tests {
    use kernel::{
        prelude::*,
        sync::Arc, //
    };

    #[test]
    fn lock_guards_data() -> Result {
        let lock = Arc::pin_init(new_raw_spinlock_irqsave!(0u32, "test"), GFP_KERNEL)?;
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
}
