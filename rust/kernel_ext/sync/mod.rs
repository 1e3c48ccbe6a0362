// SPDX-License-Identifier: GPL-2.0

//! Synchronisation primitives.

pub(crate) mod raw_spinlock;
pub(crate) mod srcu_list;

pub(crate) use raw_spinlock::RawSpinLockIrq;
pub(crate) use srcu_list::{
    SrcuListEntry,
    SrcuLists, //
};
