// SPDX-License-Identifier: GPL-2.0

//! Synchronisation primitives.

pub(crate) mod raw_spinlock;

pub(crate) use raw_spinlock::RawSpinLockIrq;
