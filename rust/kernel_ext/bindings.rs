// SPDX-License-Identifier: GPL-2.0

//! Bindings the kernel crate lacks: rust/helpers.c, linux/msi.h,
//! linux/irqchip/irq-msi-lib.h and linux/pci-acpi.h.
//!
//! Generated at build time by bindgen from rust/bindings/kernel_ext_helper.h
//! with the kernel's own C flags (see Kbuild). Types they name that the
//! kernel crate already has come from `kernel::bindings`.

#![allow(
    dead_code,
    missing_docs,
    non_camel_case_types,
    non_upper_case_globals,
    non_snake_case,
    improper_ctypes,
    unreachable_pub,
    unsafe_op_in_unsafe_fn,
    clippy::all,
    clippy::undocumented_unsafe_blocks
)]

#[allow(unused_imports)]
use kernel::{
    bindings::*,
    ffi, //
};

// Generated at the top of the build tree, outside rust/: bindgen output
// carries no SAFETY comments of its own.
include!("../../kernel_ext_bindings_generated.rs");
