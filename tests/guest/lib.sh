# SPDX-License-Identifier: GPL-2.0
# Helpers for guest test scripts; sourced. Results are console lines that
# the host harness counts: "@@PASS name" and "@@FAIL name: reason".

MOD=/lib/modules/rsnvme.ko
DRV=/sys/bus/pci/drivers/rsnvme

pass() { echo "@@PASS $1"; }
fail() { echo "@@FAIL $1: $2"; }

# check NAME COMMAND...: passes when COMMAND succeeds.
check() {
	name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name" "'$*' failed"; fi
}

# PCI addresses of the NVMe controllers (class 0x010802).
nvme_devices() {
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/class")" = 0x010802 ] && basename "$d"
	done
}

# Number of controllers bound to rsnvme.
bound_count() {
	ls "$DRV" 2>/dev/null | grep -c '^0000:'
}

# raw_regs BDF: prints CAP and VS of a controller read through /dev/mem.
raw_regs() {
	base=$(head -n1 "/sys/bus/pci/devices/$1/resource" | cut -d' ' -f1)
	cap_lo=$(devmem $((base)) 32)
	cap_hi=$(devmem $((base + 4)) 32)
	vs=$(devmem $((base + 8)) 32)
	echo "@@RAW $1 CAP_LO=$cap_lo CAP_HI=$cap_hi VS=$vs"
}

# Asks kmemleak for a scan and prints how many leaks it reports.
kmemleak_report() {
	[ -w /sys/kernel/debug/kmemleak ] || { echo "@@KMEMLEAK unavailable"; return; }
	echo scan >/sys/kernel/debug/kmemleak
	echo scan >/sys/kernel/debug/kmemleak
	n=$(grep -c '^unreferenced object' /sys/kernel/debug/kmemleak)
	echo "@@KMEMLEAK $n"
	[ "$n" -eq 0 ] || head -40 /sys/kernel/debug/kmemleak
}

# Forgets what kmemleak has seen so far, so later reports are ours.
kmemleak_clear() {
	[ -w /sys/kernel/debug/kmemleak ] && echo clear >/sys/kernel/debug/kmemleak
}

# Prints how many DMA-API debug entries (live DMA allocations and mappings)
# NVMe controllers still own; 0 once the driver is unloaded.
dma_allocations() {
	n=0
	if [ -r /sys/kernel/debug/dma-api/dump ]; then
		for d in $(nvme_devices); do
			c=$(grep -c "$d" /sys/kernel/debug/dma-api/dump)
			n=$((n + c))
		done
		echo "@@DMA_ALLOCATIONS $n"
	else
		echo "@@DMA_ALLOCATIONS unavailable"
	fi
}
