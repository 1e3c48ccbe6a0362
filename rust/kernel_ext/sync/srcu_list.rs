// SPDX-License-Identifier: GPL-2.0

//! A list read under SRCU, from any context, hard interrupts included.
//!
//! C header: [`include/linux/rculist.h`](srctree/include/linux/rculist.h)
//!
//! [`SrcuList`] is the C pattern of an RCU list whose readers hold an SRCU
//! read lock and whose writers serialise on a lock of their own, with the
//! rules in the types: an [`SrcuListEntry`] is linked for its whole life,
//! from its initialisation to its drop, and its drop unlinks it and waits
//! for the readers that may still see it. Readers never see an entry that is
//! being unlinked and re-linked (the C pattern's skipped-entries race), and
//! an entry cannot be freed under a reader. Linking and unlinking may sleep;
//! whether a linked entry counts is up to its value (a flag in `T`).

use core::{
    marker::{
        PhantomData,
        PhantomPinned, //
    },
    ptr, //
};

use kernel::{
    bindings,
    new_mutex,
    new_srcu,
    prelude::*,
    sync::{
        Arc,
        Mutex,
        Srcu, //
    },
    types::Opaque, //
};

use crate::kernel_ext::bindings as ext;

/// The head of a list of [`SrcuListEntry`]s holding `T`s.
///
/// # Invariants
///
/// `head` is an initialised list head; the nodes on it are those of live
/// [`SrcuListEntry<T>`]s that hold an `Arc` of this list.
#[pin_data]
pub(crate) struct SrcuList<T> {
    #[pin]
    srcu: Srcu,
    #[pin]
    head: Opaque<bindings::list_head>,
    /// Serialises the writers.
    #[pin]
    lock: Mutex<()>,
    _entries: PhantomData<T>,
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: The list hands out `&T` to readers on any thread (`T: Sync`);
// entries, and the `T`s in them, are dropped by their owners (`T: Send`).
unsafe impl<T: Send + Sync> Send for SrcuList<T> {}
// SAFETY: See above; the list itself is changed under `lock` only.
unsafe impl<T: Send + Sync> Sync for SrcuList<T> {}

impl<T: Send + Sync> SrcuList<T> {
    /// An empty list.
    pub(crate) fn new() -> Result<Arc<Self>> {
        Arc::pin_init(
            try_pin_init!(Self {
                srcu <- new_srcu!("srcu_list"),
                // INVARIANT: initialised by `INIT_LIST_HEAD`, with no node.
                head <- Opaque::ffi_init(|p| {
                    // SAFETY: `p` is valid for writes.
                    unsafe { bindings::INIT_LIST_HEAD(p) }
                }),
                lock <- new_mutex!(()),
                _entries: PhantomData,
                _pin: PhantomPinned,
            }? Error),
            GFP_KERNEL,
        )
    }

    /// Runs `f` on the value of every entry on the list, in the order they
    /// were linked, under an SRCU read lock: from any context, and with
    /// writers running concurrently (an entry linked or dropped meanwhile
    /// may or may not be seen).
    pub(crate) fn for_each(&self, mut f: impl FnMut(&T)) {
        let _guard = self.srcu.read_lock();
        let head = self.head.get();
        // The volatile reads are `list_for_each_entry_srcu`'s `READ_ONCE`:
        // the writers publish with `list_add_tail_rcu`.
        // SAFETY: `head` is an initialised list head (type invariant).
        let mut pos = unsafe { ptr::read_volatile(&raw const (*head).next) };
        while pos != head {
            // SAFETY: `pos` is the node of a linked entry (type invariant),
            // not freed before our read lock is released: an entry's drop
            // waits for the readers after unlinking it.
            let value = unsafe {
                let entry = kernel::container_of!(
                    pos.cast::<Opaque<bindings::list_head>>(),
                    SrcuListEntry<T>,
                    node
                );
                // Only the value is borrowed. The entry's drop holds a
                // `Pin<&mut>` meanwhile, which is no unique borrow of a
                // `!Unpin` type (`_pin`): the rule pinned kernel types
                // shared with C rely on.
                &(*entry).value
            };
            f(value);
            // SAFETY: As above: `pos` is a valid node.
            pos = unsafe { ptr::read_volatile(&raw const (*pos).next) };
        }
    }
}

/// A value on an [`SrcuList`]: linked while it lives.
///
/// # Invariants
///
/// `node` is linked on `list` from the end of initialisation to the start
/// of drop.
#[pin_data(PinnedDrop)]
pub(crate) struct SrcuListEntry<T: Send + Sync> {
    list: Arc<SrcuList<T>>,
    #[pin]
    node: Opaque<bindings::list_head>,
    value: T,
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: As for `SrcuList`.
unsafe impl<T: Send + Sync> Send for SrcuListEntry<T> {}
// SAFETY: As for `SrcuList`.
unsafe impl<T: Send + Sync> Sync for SrcuListEntry<T> {}

impl<T: Send + Sync> SrcuListEntry<T> {
    /// `value` linked at the tail of `list` (readers see it from here on).
    /// May sleep.
    pub(crate) fn new(list: Arc<SrcuList<T>>, value: T) -> impl PinInit<Self, Error> {
        try_pin_init!(&this in Self {
            list,
            node: Opaque::uninit(),
            value,
            _pin: PhantomPinned,
            // Linked last, once the entry is complete and pinned.
            _: {
                // SAFETY: `this` is pinned and every field is initialised.
                let this = unsafe { this.as_ref() };
                let _guard = this.list.lock.lock();
                // INVARIANT: linked here, unlinked in `drop`.
                // SAFETY: The node is the entry's own, not on a list; the
                // head is initialised; writers hold `lock`.
                unsafe { ext::kernel_ext_list_add_tail_rcu(this.node.get(), this.list.head.get()) };
            },
        }? Error)
    }

    /// The value.
    pub(crate) fn value(&self) -> &T {
        &self.value
    }
}

#[pinned_drop]
impl<T: Send + Sync> PinnedDrop for SrcuListEntry<T> {
    fn drop(self: Pin<&mut Self>) {
        {
            let _guard = self.list.lock.lock();
            // SAFETY: The node is linked (type invariant); writers hold
            // `lock`.
            unsafe { ext::kernel_ext_list_del_rcu(self.node.get()) };
        }
        // Readers that saw the node are done before the memory goes.
        self.list.srcu.synchronize();
    }
}

#[kunit_tests(kernel_ext_srcu_list)]
mod tests {
    use super::*;

    /// The values a reader sees, in order.
    fn seen(list: &SrcuList<u32>) -> Result<KVec<u32>> {
        let mut v = KVec::with_capacity(8, GFP_KERNEL)?;
        list.for_each(|x| {
            let _ = v.push_within_capacity(*x);
        });
        Ok(v)
    }

    #[test]
    fn linked_while_alive() -> Result {
        let list = SrcuList::<u32>::new()?;
        assert!(seen(&list)?.is_empty());
        let a = KBox::pin_init(SrcuListEntry::new(list.clone(), 1), GFP_KERNEL)?;
        let b = KBox::pin_init(SrcuListEntry::new(list.clone(), 2), GFP_KERNEL)?;
        let c = KBox::pin_init(SrcuListEntry::new(list.clone(), 3), GFP_KERNEL)?;
        assert_eq!(*b.value(), 2);
        assert_eq!(&seen(&list)?[..], &[1, 2, 3]);
        drop(b);
        assert_eq!(&seen(&list)?[..], &[1, 3]);
        let d = KBox::pin_init(SrcuListEntry::new(list.clone(), 4), GFP_KERNEL)?;
        assert_eq!(&seen(&list)?[..], &[1, 3, 4]);
        drop((a, c, d));
        assert!(seen(&list)?.is_empty());
        Ok(())
    }
}
