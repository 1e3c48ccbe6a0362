// SPDX-License-Identifier: GPL-2.0
/*
 * Non-inline wrappers for what the Rust code of rust/kernel_ext/ cannot reach otherwise:
 * static inline functions and macros, in the style of rust/helpers/ of the
 * kernel tree, and a setter for a structure the kernel crate's bindings only
 * declare.  Nothing here has logic of its own.
 */

#include "bindings/kernel_ext_helper.h"

void kernel_ext_raw_spin_lock_init(raw_spinlock_t *lock, const char *name,
			       struct lock_class_key *key)
{
#ifdef CONFIG_DEBUG_SPINLOCK
	__raw_spin_lock_init(lock, name, key, LD_WAIT_SPIN);
#else
	raw_spin_lock_init(lock);
#endif
}

void kernel_ext_raw_spin_lock_irq_disable(raw_spinlock_t *lock)
{
	raw_spin_lock_irq_disable(lock);
}

bool kernel_ext_raw_spin_trylock_irq_disable(raw_spinlock_t *lock)
{
	return raw_spin_trylock_irq_disable(lock);
}

void kernel_ext_raw_spin_unlock_irq_enable(raw_spinlock_t *lock)
{
	raw_spin_unlock_irq_enable(lock);
}

void kernel_ext_raw_spin_assert_is_held(raw_spinlock_t *lock)
{
	lockdep_assert_held(lock);
}

bool kernel_ext_irqs_disabled(void)
{
	return irqs_disabled();
}

int kernel_ext_dev_to_node(struct device *dev)
{
	return dev_to_node(dev);
}

bool kernel_ext_sysdata_alias(struct pci_sysdata *sd, struct device *parent)
{
	if (!dev_is_pci(parent))
		return false;
#if IS_ENABLED(CONFIG_VMD)
	sd->vmd_dev = to_pci_dev(parent);
	return true;
#else
	return false;
#endif
}

struct irq_domain *kernel_ext_dev_get_msi_domain(const struct device *dev)
{
	return dev_get_msi_domain(dev);
}

void kernel_ext_dev_set_msi_domain(struct device *dev, struct irq_domain *d)
{
	dev_set_msi_domain(dev, d);
}

void kernel_ext_list_add_tail_rcu(struct list_head *new, struct list_head *head)
{
	list_add_tail_rcu(new, head);
}

void kernel_ext_list_del_rcu(struct list_head *entry)
{
	list_del_rcu(entry);
}

void kernel_ext_init_irq_work_hard(struct irq_work *work, void (*func)(struct irq_work *))
{
	*work = IRQ_WORK_INIT_HARD(func);
}

bool kernel_ext_cpu_online(unsigned int cpu)
{
	return cpu < nr_cpu_ids && cpu_online(cpu);
}

struct pci_dev *kernel_ext_msi_desc_to_pci_dev(struct msi_desc *desc)
{
	return msi_desc_to_pci_dev(desc);
}

/*
 * The kernel crate's bindings only declare struct msi_msg (they do not
 * include linux/msi.h): this fills one in, so that there is one Rust type
 * for it and no cast to a second, complete binding.
 */
void kernel_ext_msi_msg_set(struct msi_msg *msg, u32 address_lo, u32 address_hi,
			u32 data)
{
	*msg = (struct msi_msg){
		.address_lo = address_lo,
		.address_hi = address_hi,
		.data = data,
	};
}

const struct cpumask *kernel_ext_msi_desc_affinity(struct msi_desc *desc)
{
	return desc->affinity ? &desc->affinity->mask : NULL;
}

/* The CPU it went to, or an error. */
int kernel_ext_irq_set_affinity_nth_online(unsigned int irq, unsigned int n)
{
	unsigned int cpu = cpumask_nth(n % num_online_cpus(), cpu_online_mask);
	int ret;

	if (cpu >= nr_cpu_ids)
		return -EINVAL;
	ret = irq_set_affinity(irq, cpumask_of(cpu));
	return ret ? ret : cpu;
}

void kernel_ext_irq_data_set_effective_cpu(struct irq_data *d, unsigned int cpu)
{
	if (cpu < nr_cpu_ids)
		irq_data_update_effective_affinity(d, cpumask_of(cpu));
}

bool kernel_ext_xen_domain(void)
{
	return xen_domain();
}

#ifdef CONFIG_KUNIT
/* A device bound to a driver of KUnit's for the running test. */
struct device *kernel_ext_kunit_device_register(const char *name)
{
	return kunit_device_register(kunit_get_current_test(), name);
}
#endif

#ifdef CONFIG_ACPI
/* Used with the companion lookup hook, which exists with ACPI only. */
struct acpi_device *kernel_ext_acpi_companion(struct device *dev)
{
	return ACPI_COMPANION(dev);
}
#endif
