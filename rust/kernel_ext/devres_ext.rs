// SPDX-License-Identifier: GPL-2.0

//! A devres backstop for objects that hold C registrations for a binding.
//!
//! C header: [`include/linux/device/devres.h`](srctree/include/linux/device/devres.h)
//!
//! An object that registers callbacks with C for the life of a binding
//! (`'a` of a `Device<Bound>`) must unregister them before the binding
//! ends: its drop does, but a leaked object never drops. 7.3's
//! `irq::Registration::new` is `unsafe` for that reason. A [`Backstop`] in
//! such an object makes its constructor safe: a devres action of the device
//! runs the object's teardown at unbind, unless the object's drop removed
//! the action first. The teardown must therefore be idempotent.

use core::ptr;

use kernel::{
    bindings,
    device::{
        self,
        Bound, //
    },
    error::to_result,
    ffi::c_void,
    prelude::*, //
};

/// The devres action of every [`Backstop`]: one function for every owner
/// type, so that `disarm` finds the action `arm` added.
///
/// # Safety
///
/// `data` points at an armed [`Backstop`].
unsafe extern "C" fn action(data: *mut c_void) {
    let backstop = data.cast::<Backstop>();
    // SAFETY: The caller's guarantee; `run` is the owner's teardown, valid
    // while armed (`arm`'s contract).
    unsafe { ((*backstop).run)(backstop) }
}

/// The `struct device` of `dev` (`Device::as_raw` is the kernel crate's
/// own; `Device` is a transparent wrapper of it).
fn raw<Ctx: device::DeviceContext>(dev: &device::Device<Ctx>) -> *mut bindings::device {
    ptr::from_ref(dev).cast::<bindings::device>().cast_mut()
}

/// A teardown that devres runs at unbind if its owner is still there.
pub(crate) struct Backstop {
    run: unsafe fn(*const Backstop),
}

impl Backstop {
    /// `run` gets this `Backstop`'s address: the owner finds itself with
    /// `container_of!`.
    pub(crate) const fn new(run: unsafe fn(*const Backstop)) -> Self {
        Self { run }
    }

    /// Adds the devres action.
    ///
    /// # Safety
    ///
    /// Called at most once. `self` is pinned inside its owner; calling `run`
    /// with its address is
    /// sound (the owner's teardown, any number of times) until the owner's
    /// drop has called [`Backstop::disarm`], which it must do before `self`
    /// goes.
    pub(crate) unsafe fn arm(&self, dev: &device::Device<Bound>) -> Result {
        // SAFETY: `dev` is bound; the action may run at its unbind, with
        // `self` valid until `disarm` (the caller's guarantee).
        to_result(unsafe { bindings::devm_add_action(raw(dev), Some(action), self.data()) })
    }

    /// Removes the devres action, if it has not run.
    pub(crate) fn disarm(&self, dev: &device::Device) {
        // SAFETY: `dev` is valid; removes only an action `arm` added with
        // this address, if any is left.
        unsafe { bindings::devm_remove_action_nowarn(raw(dev), Some(action), self.data()) };
    }

    fn data(&self) -> *mut c_void {
        ptr::from_ref(self).cast::<c_void>().cast_mut()
    }
}
