/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What rust/kernel_ext/ needs from C that the kernel crate's bindings lack: bindgen
 * turns this header into kernel_ext_bindings_generated.rs at build time, with the
 * kernel's own C flags (see Kbuild).
 */
#ifndef KERNEL_EXT_HELPER_H
#define KERNEL_EXT_HELPER_H

/* pci-acpi.h needs pci.h first. */
#include <linux/pci.h>
#include <linux/acpi.h>
#include <kunit/device.h>
#include <kunit/test-bug.h>
#include <linux/irq_work.h>
#include <linux/irqchip/irq-msi-lib.h>
#include <linux/lockdep.h>
#include <linux/msi.h>
#include <linux/pci-acpi.h>
#include <linux/rculist.h>
#include <linux/spinlock.h>
#include <xen/xen.h>

/* rust/helpers.c */
void kernel_ext_raw_spin_lock_init(raw_spinlock_t *lock, const char *name,
			       struct lock_class_key *key);
void kernel_ext_raw_spin_lock_irq_disable(raw_spinlock_t *lock);
bool kernel_ext_raw_spin_trylock_irq_disable(raw_spinlock_t *lock);
void kernel_ext_raw_spin_unlock_irq_enable(raw_spinlock_t *lock);
void kernel_ext_raw_spin_assert_is_held(raw_spinlock_t *lock);
bool kernel_ext_irqs_disabled(void);
int kernel_ext_dev_to_node(struct device *dev);
bool kernel_ext_sysdata_alias(struct pci_sysdata *sd, struct device *parent);
const struct cpumask *kernel_ext_msi_desc_affinity(struct msi_desc *desc);
void kernel_ext_irq_data_set_effective_cpu(struct irq_data *d, unsigned int cpu);
int kernel_ext_irq_set_affinity_nth_online(unsigned int irq, unsigned int n);
struct irq_domain *kernel_ext_dev_get_msi_domain(const struct device *dev);
void kernel_ext_dev_set_msi_domain(struct device *dev, struct irq_domain *d);
void kernel_ext_list_add_tail_rcu(struct list_head *new, struct list_head *head);
void kernel_ext_list_del_rcu(struct list_head *entry);
void kernel_ext_init_irq_work_hard(struct irq_work *work, void (*func)(struct irq_work *));
bool kernel_ext_cpu_online(unsigned int cpu);
struct pci_dev *kernel_ext_msi_desc_to_pci_dev(struct msi_desc *desc);
void kernel_ext_msi_msg_set(struct msi_msg *msg, u32 address_lo, u32 address_hi,
			u32 data);
bool kernel_ext_xen_domain(void);
#ifdef CONFIG_KUNIT
struct device *kernel_ext_kunit_device_register(const char *name);
#endif
#ifdef CONFIG_ACPI
struct acpi_device *kernel_ext_acpi_companion(struct device *dev);
#endif

/*
 * Macros bindgen does not evaluate (BIT(), casts), as constants: Kbuild
 * strips the prefix, as rust/Makefile does for the kernel crate's.
 */
#ifdef __BINDGEN__
const u32 RUST_CONST_HELPER_MATCH_PCI_MSI = MATCH_PCI_MSI;
const int RUST_CONST_HELPER_PCIE_LINK_STATE_ALL = PCIE_LINK_STATE_ALL;
const pci_power_t RUST_CONST_HELPER_PCI_D0 = PCI_D0;
#endif

#endif /* KERNEL_EXT_HELPER_H */
