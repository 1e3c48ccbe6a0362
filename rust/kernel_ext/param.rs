// SPDX-License-Identifier: GPL-2.0

//! A module parameter whose value is one word of a fixed list.
//!
//! C header: [`include/linux/moduleparam.h`](srctree/include/linux/moduleparam.h)
//!
//! The kernel crate's `module!` parameters are integers and booleans; a
//! setting such as `msi_remap=auto|on|off` reads better as words. Declare
//! the storage with [`WordParam::new`] and register it with
//! [`module_word_param!`]; the value is read-only after load and shown in
//! /sys/module/<module>/parameters/.

use core::sync::atomic::{
    AtomicUsize,
    Ordering, //
};

use kernel::{
    bindings,
    ffi::{
        c_char,
        c_int, //
    },
    prelude::*,
};

/// Storage of a word parameter: the index of its value in `words`.
pub(crate) struct WordParam {
    words: &'static [&'static CStr],
    value: AtomicUsize,
}

impl WordParam {
    /// A parameter taking one of `words`, `words[default]` unless set.
    pub(crate) const fn new(words: &'static [&'static CStr], default: usize) -> Self {
        Self {
            words,
            value: AtomicUsize::new(default),
        }
    }

    /// Index of the value in the word list.
    pub(crate) fn get(&self) -> usize {
        self.value.load(Ordering::Relaxed)
    }
}

/// `kernel_param_ops.set`: takes a word of the list, refuses anything else.
///
/// # Safety
///
/// `val` is null or a NUL-terminated string, `kp` a parameter registered by
/// [`module_word_param!`], whose `arg` is a `WordParam`.
unsafe extern "C" fn set_word(val: *const c_char, kp: *const bindings::kernel_param) -> c_int {
    if val.is_null() {
        return EINVAL.to_errno();
    }
    // SAFETY: `val` is a NUL-terminated string, not null (checked above),
    // valid for the call (the caller's guarantee).
    let val = unsafe { CStr::from_char_ptr(val) };
    // SAFETY: `kp` is registered by `module_word_param!`: its `arg` is a
    // `WordParam` (the caller's guarantee).
    let param = unsafe { &*(*kp).__bindgen_anon_1.arg.cast::<WordParam>() };
    match param.words.iter().position(|w| *w == val) {
        Some(i) => {
            param.value.store(i, Ordering::Relaxed);
            0
        }
        None => EINVAL.to_errno(),
    }
}

/// `kernel_param_ops.get`: the current word and a newline.
///
/// # Safety
///
/// `buf` has room for a page, `kp` is as for [`set_word`].
unsafe extern "C" fn get_word(buf: *mut c_char, kp: *const bindings::kernel_param) -> c_int {
    // SAFETY: The caller's guarantee.
    let param = unsafe { &*(*kp).__bindgen_anon_1.arg.cast::<WordParam>() };
    let word = param.words[param.get()].to_bytes();
    // SAFETY: The words are short; `buf` holds a page.
    unsafe {
        core::ptr::copy_nonoverlapping(word.as_ptr(), buf.cast::<u8>(), word.len());
        *buf.add(word.len()) = b'\n' as c_char;
        *buf.add(word.len() + 1) = 0;
    }
    (word.len() + 1) as c_int
}

/// The operations of every word parameter.
pub(crate) static WORD_PARAM_OPS: bindings::kernel_param_ops = bindings::kernel_param_ops {
    flags: 0,
    set: Some(set_word),
    get: Some(get_word),
    free: None,
};

/// Copies a string into an array of its length (for .modinfo entries).
pub(crate) const fn modinfo<const N: usize>(s: &str) -> [u8; N] {
    let bytes = s.as_bytes();
    let mut out = [0u8; N];
    let mut i = 0;
    while i < N {
        out[i] = bytes[i];
        i += 1;
    }
    out
}

/// Registers the [`WordParam`] `$storage` as module parameter `$name`
/// (read-only, visible in sysfs), with `$description` for modinfo.
#[macro_export]
macro_rules! module_word_param {
    ($storage:ident, $name:literal, $description:literal) => {
        const _: () = {
            #[link_section = "__param"]
            #[used(compiler)]
            static PARAM: ::kernel::module_param::KernelParam =
                ::kernel::module_param::KernelParam::new(::kernel::bindings::kernel_param {
                    name: ::core::concat!($name, "\0").as_ptr().cast(),
                    // `__this_module` lives as long as the module.
                    mod_: &raw mut ::kernel::bindings::__this_module,
                    ops: &$crate::kernel_ext::param::WORD_PARAM_OPS,
                    perm: 0o444,
                    level: -1,
                    flags: 0,
                    __bindgen_anon_1: ::kernel::bindings::kernel_param__bindgen_ty_1 {
                        arg: ::core::ptr::from_ref(&$storage).cast_mut().cast(),
                    },
                });

            const TYPE: &str = ::core::concat!("parmtype=", $name, ":charp\0");
            #[link_section = ".modinfo"]
            #[used(compiler)]
            static PARMTYPE: [u8; TYPE.len()] = $crate::kernel_ext::param::modinfo(TYPE);

            const DESC: &str = ::core::concat!("parm=", $name, ":", $description, "\0");
            #[link_section = ".modinfo"]
            #[used(compiler)]
            static PARM: [u8; DESC.len()] = $crate::kernel_ext::param::modinfo(DESC);
        };
    };
}
