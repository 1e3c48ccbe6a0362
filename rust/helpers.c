// SPDX-License-Identifier: GPL-2.0
/*
 * Non-inline wrappers for what vmd_rs's Rust code cannot reach otherwise:
 * static inline functions and macros, in the style of rust/helpers/ of the
 * kernel tree.  Nothing here has logic of its own.
 */

#include "bindings/vmd_rs_helper.h"

void vmd_rs_raw_spin_lock_init(raw_spinlock_t *lock, const char *name,
			       struct lock_class_key *key)
{
#ifdef CONFIG_DEBUG_SPINLOCK
	__raw_spin_lock_init(lock, name, key, LD_WAIT_SPIN);
#else
	raw_spin_lock_init(lock);
#endif
}

unsigned long vmd_rs_raw_spin_lock_irqsave(raw_spinlock_t *lock)
{
	unsigned long flags;

	raw_spin_lock_irqsave(lock, flags);
	return flags;
}

bool vmd_rs_raw_spin_trylock_irqsave(raw_spinlock_t *lock, unsigned long *flags)
{
	return raw_spin_trylock_irqsave(lock, *flags);
}

void vmd_rs_raw_spin_unlock_irqrestore(raw_spinlock_t *lock,
				       unsigned long flags)
{
	raw_spin_unlock_irqrestore(lock, flags);
}

void vmd_rs_raw_spin_assert_is_held(raw_spinlock_t *lock)
{
	lockdep_assert_held(lock);
}
