// SPDX-License-Identifier: GPL-2.0

//! Abstractions that the kernel crate of Linux 7.3 lacks.
//!
//! Written as they would be for the kernel crate: safe APIs, `unsafe` only
//! inside, every block with its `// SAFETY:` reasoning. The driver in
//! drivers/ uses these and has no `unsafe` of its own.

pub(crate) mod bindings;
pub(crate) mod devres_ext;
pub(crate) mod irq_work;
pub(crate) mod msi_parent;
pub(crate) mod param;
pub(crate) mod pci_driver;
pub(crate) mod pci_ext;
pub(crate) mod pci_host;
pub(crate) mod pci_irq;
pub(crate) mod sync;
