// SPDX-License-Identifier: GPL-2.0

//! A PCI driver adapter with `shutdown` and system sleep callbacks.
//!
//! C header: [`include/linux/pci.h`](srctree/include/linux/pci.h)
//!
//! The kernel crate's [`pci::Adapter`] registers probe and remove only.
//! [`Adapter`] registers the same `struct pci_driver` through it, with
//! `shutdown` and `driver.pm` filled in first, and calls the [`PmDriver`]
//! methods with the driver's data.

use core::marker::PhantomData;

use kernel::{
    bindings,
    device::{
        Core,
        CoreInternal, //
    },
    driver::{
        DriverLayout,
        RegistrationOps, //
    },
    error::from_result,
    ffi::c_int,
    pci,
    prelude::*,
    types::Opaque,
    ThisModule, //
};

/// A PCI driver that also acts on system shutdown and sleep.
///
/// Each method runs with the device lock held, on a device the driver is
/// bound to.
pub(crate) trait PmDriver: pci::Driver {
    /// The system goes down (reboot, kexec, power off).
    fn shutdown<'bound>(_dev: &'bound pci::Device<Core<'_>>, _this: Pin<&Self::Data<'bound>>) {}

    /// The system goes to sleep (also freeze and power off for hibernation).
    fn suspend<'bound>(
        _dev: &'bound pci::Device<Core<'_>>,
        _this: Pin<&Self::Data<'bound>>,
    ) -> Result {
        Ok(())
    }

    /// The system is back (also thaw and restore).
    fn resume<'bound>(
        _dev: &'bound pci::Device<Core<'_>>,
        _this: Pin<&Self::Data<'bound>>,
    ) -> Result {
        Ok(())
    }
}

/// The driver adapter: [`pci::Adapter`] plus [`PmDriver`]'s callbacks.
pub(crate) struct Adapter<T: PmDriver>(PhantomData<T>);

// SAFETY: The same layout as `pci::Adapter<T>`: the driver type is `struct
// pci_driver`, which embeds `struct device_driver` at the offset given, and
// the data is what `pci::Adapter<T>`'s probe stores, `T::Data`.
unsafe impl<T: PmDriver> DriverLayout for Adapter<T> {
    type DriverType = bindings::pci_driver;
    type DriverData<'bound> = T::Data<'bound>;
    const DEVICE_DRIVER_OFFSET: usize = core::mem::offset_of!(bindings::pci_driver, driver);
}

// SAFETY: Registration and unregistration are `pci::Adapter<T>`'s.
unsafe impl<T: PmDriver> RegistrationOps for Adapter<T> {
    unsafe fn register(
        pdrv: &Opaque<Self::DriverType>,
        name: &'static CStr,
        module: &'static ThisModule,
    ) -> Result {
        // A promoted constant: `'static`, as the driver core needs.
        let pm: &'static bindings::dev_pm_ops = &Self::PM_OPS;
        // SAFETY: The fields may be set before registration; `pci::Adapter`
        // fills in the others and leaves these alone.
        unsafe {
            (*pdrv.get()).shutdown = Some(Self::shutdown_callback);
            (*pdrv.get()).driver.pm = pm;
        }
        // SAFETY: Our caller's guarantees are the ones required.
        unsafe { <pci::Adapter<T> as RegistrationOps>::register(pdrv, name, module) }
    }

    unsafe fn unregister(pdrv: &Opaque<Self::DriverType>) {
        // SAFETY: As for `register`.
        unsafe { <pci::Adapter<T> as RegistrationOps>::unregister(pdrv) }
    }
}

impl<T: PmDriver> Adapter<T> {
    /// `SIMPLE_DEV_PM_OPS(suspend, resume)`.
    const PM_OPS: bindings::dev_pm_ops = bindings::dev_pm_ops {
        suspend: Some(Self::suspend_callback),
        resume: Some(Self::resume_callback),
        freeze: Some(Self::suspend_callback),
        thaw: Some(Self::resume_callback),
        poweroff: Some(Self::suspend_callback),
        restore: Some(Self::resume_callback),
        ..pin_init::zeroed()
    };

    /// Calls `f` with the PCI device and the driver's data.
    ///
    /// # Safety
    ///
    /// `pdev` is a PCI device bound to this driver (so its driver data was
    /// set by probe), with its device lock held, for the call.
    unsafe fn with_data<R>(
        pdev: *mut bindings::pci_dev,
        f: impl for<'bound> FnOnce(&'bound pci::Device<Core<'_>>, Pin<&T::Data<'bound>>) -> R,
    ) -> R {
        // SAFETY: `pci::Device` is a transparent wrapper of `struct
        // pci_dev`; the caller guarantees it is valid, bound and locked,
        // which is what the `CoreInternal` context stands for.
        let pdev = unsafe { &*pdev.cast::<pci::Device<CoreInternal<'_>>>() };
        // SAFETY: Probe of `pci::Adapter<T>` stored a `T::Data` (the caller
        // guarantees the device is bound to us).
        let data = unsafe { pdev.as_ref().drvdata_borrow::<T::Data<'_>>() };
        f(pdev, data)
    }

    extern "C" fn shutdown_callback(pdev: *mut bindings::pci_dev) {
        // SAFETY: The PCI core calls `shutdown` on a bound device, under its
        // device lock.
        unsafe { Self::with_data(pdev, |dev, data| T::shutdown(dev, data)) }
    }

    /// # Safety
    ///
    /// `dev` is the `struct device` of a `struct pci_dev`.
    unsafe fn pci_dev_of(dev: *mut bindings::device) -> *mut bindings::pci_dev {
        // SAFETY: The caller's guarantee: `dev` is embedded in a `pci_dev`.
        unsafe { kernel::container_of!(dev, bindings::pci_dev, dev) }
    }

    extern "C" fn suspend_callback(dev: *mut bindings::device) -> c_int {
        // SAFETY: The PM core calls a PCI driver's PM ops on PCI devices.
        let pdev = unsafe { Self::pci_dev_of(dev) };
        // SAFETY: It calls them on a device bound to the driver, under its
        // device lock.
        from_result(|| unsafe { Self::with_data(pdev, T::suspend) }.map(|()| 0))
    }

    extern "C" fn resume_callback(dev: *mut bindings::device) -> c_int {
        // SAFETY: As in `suspend_callback`: `dev` is a PCI device's.
        let pdev = unsafe { Self::pci_dev_of(dev) };
        // SAFETY: As in `suspend_callback`: bound to us, locked.
        from_result(|| unsafe { Self::with_data(pdev, T::resume) }.map(|()| 0))
    }
}
