# SPDX-License-Identifier: GPL-2.0
#
# vmd_rs: `make` builds the module against the cached test kernel;
# `make run` and `make check` install and build what they need first.
# Kbuild (not this file) describes the module to the kernel's build.

CACHE ?= $(or $(VMD_RS_CACHE),$(HOME)/.cache/vmd-rs)
export VMD_RS_CACHE := $(CACHE)
LLVM_SUFFIX := -19
KDIR ?= $(CACHE)/kernel/debug
KSRC = $(shell readlink -f $(KDIR)/source)
PROVISION := tools/testing/provision.sh

export PATH := $(CACHE)/tools/bin:$(CACHE)/venv/bin:$(HOME)/.cargo/bin:$(PATH)

RUST_SOURCES = $(shell find drivers rust tools/testing/kunit -name '*.rs' -not -name '*generated*')

.PHONY: all modules kmemleak-plant clippy rustfmt rustfmtcheck clean provision run shell check soak kasan coverage bench

all: modules

modules:
	$(MAKE) -C $(KDIR) LLVM=$(LLVM_SUFFIX) M=$(CURDIR) modules

# A module that leaks on purpose (guest/kmemleak_plant.sh).
kmemleak-plant:
	$(MAKE) -C $(KDIR) LLVM=$(LLVM_SUFFIX) M=$(CURDIR)/tools/testing/kmemleak modules

# Builds with clippy as the compiler: every lint is an error (CONFIG_WERROR).
clippy:
	$(MAKE) -C $(KDIR) LLVM=$(LLVM_SUFFIX) M=$(CURDIR) CLIPPY=1 modules

# The kernel's own rustfmt configuration.
rustfmt:
	rustfmt --config-path $(KSRC)/.rustfmt.toml --edition 2021 $(RUST_SOURCES)

rustfmtcheck:
	rustfmt --check --config-path $(KSRC)/.rustfmt.toml --edition 2021 $(RUST_SOURCES)

clean:
	$(MAKE) -C $(KDIR) LLVM=$(LLVM_SUFFIX) M=$(CURDIR) clean
	$(MAKE) -C $(KDIR) LLVM=$(LLVM_SUFFIX) M=$(CURDIR)/tools/testing/kmemleak clean

provision:
	$(PROVISION) all

run: provision
	$(MAKE) modules
	python3 tools/testing/run.py

# An interactive guest: MACHINE=<name of machines.py> DRIVER=vmd_rs|vmd.
shell: provision
	$(MAKE) modules
	python3 tools/testing/shell.py

check: provision
	python3 tools/testing/check.py

# The long runs (not part of check): see tools/testing/soak.py.
soak: provision
	python3 tools/testing/soak.py

# make check's riskiest cases on the kasan kernel (see tools/testing/kasan.py).
kasan:
	$(PROVISION) kasan
	python3 tools/testing/kasan.py

# How much of vmd.c the C driver's cases reach (see tools/testing/coverage.py).
coverage:
	$(PROVISION) coverage
	python3 tools/testing/coverage.py

# vmd_rs against the C driver and against no VMD (see tools/testing/bench.py).
bench:
	$(PROVISION) bench
	$(CACHE)/venv/bin/python3 tools/testing/bench.py
