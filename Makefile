# SPDX-License-Identifier: GPL-2.0
#
# rsnvme: build the module, the QEMU guest and run the tests.
#
#   make                 build rsnvme.ko (against the QEMU kernel by default)
#   make KDIR=/lib/modules/$(uname -r)/build
#                        build against your own Rust-enabled kernel
#   make qemu            build everything, boot QEMU, bind the driver, show it
#   make test            every test: host, lints, header, QEMU boots on 6.12,
#                        then the 7.3 build, lints and a smoke subset on 7.3
#   make test KVER=7.3   every test on Linux 7.3 (KVER=7.3 also works for
#                        make, make qemu, make install and make kernel)
#   make bench           rsnvme next to the C nvme driver: fio in one guest with
#                        both bound at once, on a kernel without debugging
#                        (table and chart in build/bench.{md,png})
#   make profile         the same guest with perf: where each driver's CPU
#                        time per I/O goes (build/profile.md)
#   make install         build, then install into /lib/modules/<kernel>/extra and
#                        run depmod (INSTALL_MOD_PATH=<dir> installs under <dir>;
#                        required for the QEMU kernel, i.e. without KDIR)
#   make header          regenerate include/my_pci_rust_bindings.h (cbindgen)
#   make dkms-deb        build/rsnvme-dkms_<version>_all.deb (the DKMS source)
#   make clippy          build with clippy as the Rust compiler driver
#   make clean           remove the build output of every kernel (it lives in
#                        build/modules/<kernel>/; make clean-kernel: KDIR's or
#                        KVER's only)

# Debian's rustc-web has the library source a kernel build needs; a rustup
# toolchain earlier on PATH may not.
RUSTC ?= /usr/bin/rustc
CLIPPY_DRIVER ?= /usr/bin/clippy-driver
RSNVME_CACHE ?= $(HOME)/.cache/rsnvme
# The QEMU guest kernel without KDIR, and the kernel the tests run on:
# 6.12 (default) or 7.3 (qemu-ci/env.sh).
KVER ?= 6.12
ifeq ($(KVER),6.12)
# The bindgen qemu-ci/setup.sh installs, else the one on PATH.
BINDGEN ?= $(firstword $(wildcard $(RSNVME_CACHE)/bindgen-0.73.2/bin/bindgen) \
	$(shell command -v bindgen) bindgen)
else
# The same bindgen with the libclang 7.3 needs (qemu-ci/fetch-7.3.sh,
# qemu-ci/env.sh).
BINDGEN ?= $(RSNVME_CACHE)/libclang-19/bindgen
endif
export RSNVME_CACHE KVER

# Without KDIR, build (once, cached) and use the QEMU guest kernel.
ifeq ($(KDIR),)
kdir = $$(qemu-ci/setup.sh >&2 && qemu-ci/build-kernel.sh)
else
kdir = $(KDIR)
endif
# Refuse, with a clear message, a kernel without Rust or a rustc/bindgen
# other than the ones the kernel was built with.
kcheck = $(CURDIR)/tools/check-toolchain.sh "$$k" $(RUSTC) $(BINDGEN)
# Each kernel (and the fault-injection variant) builds in its own tree of
# links to the sources, build/modules/<release>-<hash>[-faults]/
# (tools/module-tree.sh), so no output of one kernel's build is taken for
# another's; the module it built is copied to ./rsnvme.ko.
otree = $(CURDIR)/tools/module-tree.sh "$$k" $(if $(filter y,$(RSNVME_FAULT_INJECTION)),faults)
# A kernel built with clang (CONFIG_CC_IS_CLANG) builds its modules with
# clang as well.
kllvm = $$(grep -q '^CONFIG_CC_IS_CLANG=y' "$$k/include/config/auto.conf" && echo LLVM=1)
kmake = $(kcheck) && o=$$($(otree)) && $(MAKE) -C "$$k" M="$$o" $(kllvm) RUSTC=$(RUSTC) \
	BINDGEN=$(BINDGEN) CLIPPY_DRIVER=$(CLIPPY_DRIVER)
kcopy = cp "$$o/rsnvme.ko" $(CURDIR)/rsnvme.ko

.PHONY: all modules clippy install header qemu test bench profile clean clean-kernel kernel \
	dkms-deb

all: modules

# A kernel without CONFIG_RUST (a stock distribution kernel's headers):
# tools/stock/build.sh, which puts rsnvme.ko under build/stock-<release>/.
stock = tools/stock/build.sh

modules:
	k=$(kdir) && if $(stock) --is-stock "$$k"; then \
		ko=$$($(stock) "$$k" $(RUSTC) $(BINDGEN)) && cp "$$ko" $(CURDIR)/rsnvme.ko; \
	else $(kmake) modules && $(kcopy); fi

clippy:
	k=$(kdir) && $(kmake) CLIPPY=1 modules && $(kcopy)

# Removes the build output for one kernel (KDIR's, else KVER's QEMU kernel)
# and variant (RSNVME_FAULT_INJECTION), so that the next build compiles
# everything again.
clean-kernel:
	k=$(kdir) && rm -rf "$$($(otree))"

# The kernel's modules_install for an external module: the module goes to
# $(INSTALL_MOD_PATH)/lib/modules/<kernel release>/extra/, then depmod runs
# there (with the kernel's System.map), so modprobe finds it and its PCI
# class alias (modules.alias) lets udev load it for any NVMe controller.
install:
	@if [ -z "$(KDIR)" ] && [ -z "$(INSTALL_MOD_PATH)" ]; then \
		echo "make install: without KDIR the module is built for the QEMU test" \
			"kernel, which is not this machine's: give INSTALL_MOD_PATH=<dir>," \
			"or KDIR=/lib/modules/\$$(uname -r)/build to install for this machine" >&2; \
		exit 1; fi
	k=$(kdir) && if $(stock) --is-stock "$$k"; then tools/stock/install.sh "$$k" $(RUSTC) \
		$(BINDGEN) "$(INSTALL_MOD_PATH)"; exit; fi && \
	$(kmake) modules && $(kcopy) && $(kmake) INSTALL_MOD_DIR=extra modules_install && \
	if [ ! -r "$$k/System.map" ]; then \
		echo "make install: no System.map in $$k (the kernel's depmod skipped), running depmod"; \
		depmod -a $(if $(INSTALL_MOD_PATH),-b "$(INSTALL_MOD_PATH)") \
			"$$(cat "$$k/include/config/kernel.release")"; fi

dkms-deb:
	tools/dkms-deb.sh

kernel:
	@qemu-ci/setup.sh && qemu-ci/build-kernel.sh

header:
	cd rust_core && cbindgen -q --config cbindgen.toml --crate rsnvme_core \
		--output ../include/my_pci_rust_bindings.h

qemu:
	python3 qemu-ci/demo.py

test:
	python3 tests/run.py

bench:
	python3 qemu-ci/bench.py

profile:
	python3 qemu-ci/bench.py --profile

# Every kernel's build output, and what builds in the source tree left
# before they had a directory of their own.
clean:
	rm -rf build/modules build/stock-* rsnvme.ko rust_core/target
	find c_shim rust_core \( -name '*.o' -o -name '.*.cmd' -o -name '*.rmeta' \
		-o -name '*.d' -o -name bindings_generated.rs \) -delete
	rm -f rsnvme.mod rsnvme.mod.c rsnvme.mod.o rsnvme.o .rsnvme*.cmd Module.symvers \
		modules.order .modules.order.cmd .Module.symvers.cmd
