// SPDX-License-Identifier: GPL-2.0

//! Lists read under SRCU, from any context, hard interrupts included, whose
//! entries can move from one list to another in any context.
//!
//! C header: [`include/linux/rculist.h`](srctree/include/linux/rculist.h)
//!
//! [`SrcuLists`] is the C pattern of RCU lists whose readers hold an SRCU
//! read lock and whose writers serialise on a lock of their own, with the
//! rules in the types: an [`SrcuListEntry`] is linked from its
//! initialisation to its drop, and its drop unlinks it and waits for the
//! readers that may still see it, so an entry cannot be freed under a
//! reader. An entry has two nodes, so that it can move to another list of
//! the set without ever being off one: [`SrcuListEntry::move_to`] links the
//! spare node on the new list and leaves the entry on the old one as well,
//! [`SrcuListEntry::leave_old`] unlinks it from there, and the node is
//! spare again only an SRCU grace period later. A node is therefore never re-linked
//! under a reader still standing on it (the C pattern's skipped-entries
//! race, `list_del_rcu()` and `list_add_rcu()` of one node without a grace
//! period between). Linking and unlinking never sleep; dropping an entry
//! does.

use core::{
    marker::{
        PhantomData,
        PhantomPinned, //
    },
    ptr,
    sync::atomic::{
        AtomicUsize,
        Ordering, //
    },
};

use kernel::{
    bindings,
    ffi::c_ulong,
    new_srcu,
    prelude::*,
    sync::{
        Arc,
        Srcu, //
    },
    types::Opaque, //
};

use crate::{
    kernel_ext::{
        bindings as ext,
        sync::RawSpinLockIrq, //
    },
    new_raw_spinlock_irq, //
};

/// The SRCU grace-period cookies `kernel::sync::Srcu` does not offer.
trait SrcuPoll {
    /// Starts a grace period if none is pending and returns a cookie for
    /// [`SrcuPoll::poll`]. Any context.
    fn start_poll(&self) -> c_ulong;
    /// Whether a grace period passed since `cookie` was taken. Any context.
    fn poll(&self, cookie: c_ulong) -> bool;
}

impl SrcuPoll for Srcu {
    fn start_poll(&self) -> c_ulong {
        // `Srcu` is `#[repr(transparent)]` over its `srcu_struct`.
        let ssp = ptr::from_ref(self)
            .cast::<bindings::srcu_struct>()
            .cast_mut();
        // SAFETY: `ssp` is an initialised `srcu_struct`; the function takes
        // raw spinlocks only and starts the grace period through an
        // `irq_work`, so any context but NMI may call it.
        unsafe { bindings::start_poll_synchronize_srcu(ssp) }
    }

    fn poll(&self, cookie: c_ulong) -> bool {
        let ssp = ptr::from_ref(self)
            .cast::<bindings::srcu_struct>()
            .cast_mut();
        // SAFETY: As in `start_poll`; this one only reads.
        unsafe { bindings::poll_state_synchronize_srcu(ssp, cookie) }
    }
}

/// A set of lists of [`SrcuListEntry`]s holding `T`s, sharing one SRCU and
/// one writers' lock.
///
/// # Invariants
///
/// Every head of `heads` is initialised and stays where it is (the vector
/// is never resized); the nodes on them are those of live
/// [`SrcuListEntry<T>`]s that hold an `Arc` of this set.
#[pin_data]
pub(crate) struct SrcuLists<T> {
    #[pin]
    srcu: Srcu,
    heads: KVec<Opaque<bindings::list_head>>,
    /// Serialises the writers of every list.
    #[pin]
    lock: RawSpinLockIrq<()>,
    _entries: PhantomData<T>,
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: The lists hand out `&T` to readers on any thread (`T: Sync`);
// entries, and the `T`s in them, are dropped by their owners (`T: Send`).
unsafe impl<T: Send + Sync> Send for SrcuLists<T> {}
// SAFETY: See above; the lists themselves change under `lock` only.
unsafe impl<T: Send + Sync> Sync for SrcuLists<T> {}

impl<T: Send + Sync> SrcuLists<T> {
    /// `count` empty lists.
    pub(crate) fn new(count: usize) -> Result<Arc<Self>> {
        let mut heads = KVec::with_capacity(count, GFP_KERNEL)?;
        for _ in 0..count {
            heads.push(Opaque::uninit(), GFP_KERNEL)?;
        }
        for head in &heads {
            // SAFETY: `head` is valid for writes; it stays in the buffer
            // allocated above, which is not resized from here on.
            unsafe { bindings::INIT_LIST_HEAD(head.get()) };
        }
        Arc::pin_init(
            try_pin_init!(Self {
                srcu <- new_srcu!("srcu_lists"),
                // INVARIANT: initialised above, with no node.
                heads,
                lock <- new_raw_spinlock_irq!(()),
                _entries: PhantomData,
                _pin: PhantomPinned,
            }? Error),
            GFP_KERNEL,
        )
    }

    /// Number of lists.
    pub(crate) fn len(&self) -> usize {
        self.heads.len()
    }

    /// Runs `f` on the value of every entry of list `list` (none if there
    /// is no such list), in the order they were linked, under an SRCU read
    /// lock: from any context, and with writers running concurrently (an
    /// entry linked, moved or dropped meanwhile may or may not be seen).
    pub(crate) fn for_each(&self, list: usize, mut f: impl FnMut(&T)) {
        let Some(head) = self.heads.get(list) else {
            return;
        };
        let _guard = self.srcu.read_lock();
        let head = head.get();
        // The volatile reads are `list_for_each_entry_srcu`'s `READ_ONCE`:
        // the writers publish with `list_add_tail_rcu`.
        // SAFETY: `head` is an initialised list head (type invariant).
        let mut pos = unsafe { ptr::read_volatile(&raw const (*head).next) };
        while pos != head {
            // Only the value is borrowed: the entry's drop holds a
            // `Pin<&mut>` meanwhile, which is no unique borrow of a `!Unpin`
            // type (`_pin`), the rule pinned kernel types shared with C rely
            // on. An entry's drop waits for the readers after unlinking it.
            // SAFETY: `pos` is the `link` of a live entry's node (type
            // invariant), or of one unlinked since, whose memory outlives our
            // read lock; `nodes[i].nr == i` leads back to `nodes[0]`.
            let value = unsafe {
                let node =
                    kernel::container_of!(pos.cast::<Opaque<bindings::list_head>>(), Node, link);
                let first = node.sub((*node).nr);
                let entry =
                    kernel::container_of!(first.cast::<[Node; 2]>(), SrcuListEntry<T>, nodes);
                &(*entry).value
            };
            f(value);
            // SAFETY: As above: `pos` is a valid node.
            pos = unsafe { ptr::read_volatile(&raw const (*pos).next) };
        }
    }
}

/// One of an entry's two list nodes.
struct Node {
    link: Opaque<bindings::list_head>,
    /// Its index in the entry's `nodes`.
    nr: usize,
}

/// Where an entry's second node is.
#[derive(Clone, Copy)]
enum Spare {
    /// Not on a list, and no reader stands on it.
    Free,
    /// On this list: the entry's old one.
    Linked(usize),
    /// Unlinked; readers may stand on it until the grace period of this
    /// cookie has passed.
    Leaving(c_ulong),
}

/// An entry's place on the lists.
#[derive(Clone, Copy)]
struct Links {
    /// The node on the entry's current list.
    node: usize,
    /// The entry's current list.
    list: usize,
    /// The other node.
    spare: Spare,
    /// Moves so far.
    moves: u64,
}

/// A value on one of an [`SrcuLists`]' lists, two while it moves: linked
/// while it lives.
///
/// # Invariants
///
/// - `nodes[links.node]` is linked on list `links.list` of `lists` from the
///   end of initialisation to the start of drop; the other node is linked
///   on list `l` exactly when `links.spare` is `Linked(l)`.
/// - `nodes[i].nr == i`.
/// - `list` mirrors `links.list`; it changes only under the `links` lock.
#[pin_data(PinnedDrop)]
pub(crate) struct SrcuListEntry<T: Send + Sync> {
    lists: Arc<SrcuLists<T>>,
    #[pin]
    nodes: [Node; 2],
    #[pin]
    links: RawSpinLockIrq<Links>,
    list: AtomicUsize,
    value: T,
    #[pin]
    _pin: PhantomPinned,
}

// SAFETY: As for `SrcuLists`.
unsafe impl<T: Send + Sync> Send for SrcuListEntry<T> {}
// SAFETY: As for `SrcuLists`.
unsafe impl<T: Send + Sync> Sync for SrcuListEntry<T> {}

impl<T: Send + Sync> SrcuListEntry<T> {
    /// `value` linked at the tail of list `index` of `lists` (readers see it
    /// from here on). `EINVAL` if there is no such list.
    pub(crate) fn new(
        lists: Arc<SrcuLists<T>>,
        index: usize,
        value: T,
    ) -> impl PinInit<Self, Error> {
        try_pin_init!(&this in Self {
            _: {
                if index >= lists.len() {
                    return Err(EINVAL);
                }
            },
            lists,
            nodes: [
                Node { link: Opaque::uninit(), nr: 0 },
                Node { link: Opaque::uninit(), nr: 1 },
            ],
            links <- new_raw_spinlock_irq!(Links {
                node: 0,
                list: index,
                spare: Spare::Free,
                moves: 0,
            }),
            list: AtomicUsize::new(index),
            value,
            _pin: PhantomPinned,
            // Linked last, once the entry is complete and pinned.
            _: {
                // SAFETY: `this` is pinned and every field is initialised.
                let this = unsafe { this.as_ref() };
                let _guard = this.lists.lock.lock();
                // INVARIANT: node 0 linked on list `index`, unlinked in `drop`.
                // SAFETY: The node is the entry's own, on no list; the head
                // is initialised (checked index); writers hold `lock`.
                unsafe {
                    ext::kernel_ext_list_add_tail_rcu(
                        this.nodes[0].link.get(),
                        this.lists.heads[index].get(),
                    )
                };
            },
        }? Error)
    }

    /// The value.
    pub(crate) fn value(&self) -> &T {
        &self.value
    }

    /// The entry's current list.
    pub(crate) fn list(&self) -> usize {
        self.list.load(Ordering::Acquire)
    }

    /// Makes list `list` the entry's current one; it stays on the list it
    /// leaves until [`SrcuListEntry::leave_old`]. Moving back to that list
    /// swaps the two. Any context.
    ///
    /// `EAGAIN` while the entry is still on another old list, or left one
    /// less than an SRCU grace period ago; `EINVAL` if there is no list
    /// `list`.
    pub(crate) fn move_to(&self, list: usize) -> Result {
        if list >= self.lists.len() {
            return Err(EINVAL);
        }
        let mut links = self.links.lock();
        if list == links.list {
            return Ok(());
        }
        let spare = 1 - links.node;
        match links.spare {
            Spare::Linked(l) if l == list => {}
            Spare::Free => {
                // SAFETY: The spare node is free: on no list, under no
                // reader; `list` is a valid index.
                unsafe { self.link(spare, list) }
            }
            Spare::Leaving(cookie) if self.lists.srcu.poll(cookie) => {
                // SAFETY: Unlinked a grace period ago: no reader is left on
                // it; `list` is a valid index.
                unsafe { self.link(spare, list) }
            }
            Spare::Linked(_) | Spare::Leaving(_) => return Err(EAGAIN),
        }
        // INVARIANT: the spare node is on `list` now, the current one stays
        // on the old list.
        *links = Links {
            node: spare,
            list,
            spare: Spare::Linked(links.list),
            moves: links.moves.wrapping_add(1),
        };
        self.list.store(list, Ordering::Release);
        Ok(())
    }

    /// How many times the entry has moved: for [`SrcuListEntry::leave_old`].
    pub(crate) fn moves(&self) -> u64 {
        self.links.lock().moves
    }

    /// Takes the entry off its old list, if it is on one and has not moved
    /// since [`SrcuListEntry::moves`] returned `moves` (whether it did is
    /// returned); a grace period starts, after which it may move again. Any
    /// context.
    pub(crate) fn leave_old(&self, moves: u64) -> bool {
        let mut links = self.links.lock();
        let Spare::Linked(_) = links.spare else {
            return false;
        };
        if links.moves != moves {
            return false;
        }
        // SAFETY: The spare node is linked (type invariant).
        unsafe { self.unlink(1 - links.node) };
        // INVARIANT: unlinked; free once the readers on it are done.
        links.spare = Spare::Leaving(self.lists.srcu.start_poll());
        true
    }

    /// Links node `nr` on list `list`.
    ///
    /// # Safety
    ///
    /// The node is on no list and no reader stands on it; `list` is a
    /// valid index; the caller holds `links` and updates it.
    unsafe fn link(&self, nr: usize, list: usize) {
        let _guard = self.lists.lock.lock();
        // SAFETY: As the caller guarantees; writers hold `lock`.
        unsafe {
            ext::kernel_ext_list_add_tail_rcu(
                self.nodes[nr].link.get(),
                self.lists.heads[list].get(),
            )
        };
    }

    /// Unlinks node `nr`.
    ///
    /// # Safety
    ///
    /// The node is linked; the caller holds `links` and updates it.
    unsafe fn unlink(&self, nr: usize) {
        let _guard = self.lists.lock.lock();
        // SAFETY: As the caller guarantees; writers hold `lock`.
        unsafe { ext::kernel_ext_list_del_rcu(self.nodes[nr].link.get()) };
    }
}

#[pinned_drop]
impl<T: Send + Sync> PinnedDrop for SrcuListEntry<T> {
    fn drop(self: Pin<&mut Self>) {
        {
            let mut links = self.links.lock();
            // SAFETY: The current node is linked (type invariant).
            unsafe { self.unlink(links.node) };
            if let Spare::Linked(_) = links.spare {
                // SAFETY: Linked, as `spare` says (type invariant).
                unsafe { self.unlink(1 - links.node) };
                links.spare = Spare::Free;
            }
        }
        // Readers that saw a node are done before the memory goes.
        self.lists.srcu.synchronize();
    }
}

#[kunit_tests(kernel_ext_srcu_list)]
mod tests {
    use super::*;

    /// The values a reader of list `list` sees, in order.
    fn seen(lists: &SrcuLists<u32>, list: usize) -> Result<KVec<u32>> {
        let mut v = KVec::with_capacity(8, GFP_KERNEL)?;
        lists.for_each(list, |x| {
            let _ = v.push_within_capacity(*x);
        });
        Ok(v)
    }

    #[test]
    fn linked_while_alive() -> Result {
        let lists = SrcuLists::<u32>::new(1)?;
        assert!(seen(&lists, 0)?.is_empty());
        let new = |v| KBox::pin_init(SrcuListEntry::new(lists.clone(), 0, v), GFP_KERNEL);
        let (a, b, c) = (new(1)?, new(2)?, new(3)?);
        assert_eq!(*b.value(), 2);
        assert_eq!(&seen(&lists, 0)?[..], &[1, 2, 3]);
        drop(b);
        assert_eq!(&seen(&lists, 0)?[..], &[1, 3]);
        let d = new(4)?;
        assert_eq!(&seen(&lists, 0)?[..], &[1, 3, 4]);
        drop((a, c, d));
        assert!(seen(&lists, 0)?.is_empty());
        assert!(KBox::pin_init(SrcuListEntry::new(lists.clone(), 1, 5), GFP_KERNEL).is_err());
        Ok(())
    }

    #[test]
    fn moves_without_leaving_a_list() -> Result {
        let lists = SrcuLists::<u32>::new(3)?;
        let e = KBox::pin_init(SrcuListEntry::new(lists.clone(), 0, 7), GFP_KERNEL)?;
        e.move_to(1)?;
        // On both until it leaves the old one.
        assert_eq!(
            (e.list(), &seen(&lists, 0)?[..], &seen(&lists, 1)?[..]),
            (1, &[7][..], &[7][..])
        );
        assert_eq!(e.move_to(2), Err(EAGAIN));
        // Back to the old list: the two swap.
        e.move_to(0)?;
        assert_eq!((e.list(), e.moves()), (0, 2));
        assert!(!e.leave_old(1));
        assert!(e.leave_old(2));
        assert!(!e.leave_old(2));
        assert_eq!(
            (&seen(&lists, 0)?[..], seen(&lists, 1)?.len()),
            (&[7][..], 0)
        );
        // The node it left is reused once a grace period has passed.
        lists.srcu.synchronize();
        e.move_to(2)?;
        assert_eq!(
            (&seen(&lists, 0)?[..], &seen(&lists, 2)?[..]),
            (&[7][..], &[7][..])
        );
        assert_eq!(e.move_to(3), Err(EINVAL));
        drop(e);
        assert!((0..3).all(|l| seen(&lists, l).is_ok_and(|v| v.is_empty())));
        Ok(())
    }
}
