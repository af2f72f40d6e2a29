# SPDX-License-Identifier: GPL-2.0
# Probe failing at each step on a controller that ignores CC.EN=0 (issue
# 21): fault flag 0x100 skips the driver's write of CC.EN=0, so a disable
# times out and only bus mastering off keeps the controller from memory
# the failed probe frees. Each case fails probe with one fault (1 interrupt
# vectors, 2 admin queue memory, 3 never ready, 4 Identify times out, 7
# after the I/O queues, 11 inside the I/O queue step once the queues
# exist), the last also without the flag. Between cases a Function Level
# Reset (sysfs `reset`) stops the controller the previous case left
# running. After each failed probe the guest rings the admin submission
# doorbell itself: a controller still enabled fetches from the freed admin
# queue unless bus mastering is off. The host (tests/run.py) checks QEMU's
# trace between the marks and the driver's lines: the rings freed only
# once the controller can no longer write them (rust_core/fault.rs,
# FreeCheck). Last the controller binds normally and its disk works.
. /tests/lib.sh

bdf=$(nvme_devices | head -n1)
base=$(head -n1 "/sys/bus/pci/devices/$bdf/resource" | cut -d' ' -f1)
if [ -e "/sys/bus/pci/devices/$bdf/reset" ]; then
	echo "@@RESET_METHOD $(cat "/sys/bus/pci/devices/$bdf/reset_method" 2>/dev/null)"
else
	echo "@@RESET_METHOD none"
fi

# function_reset: resets the controller through the PCI core (FLR), so it
# is disabled again whatever the previous case left it in.
function_reset() {
	echo 1 >"/sys/bus/pci/devices/$bdf/reset" 2>/tmp/flr.err ||
		fail "function level reset of $bdf" "$(cat /tmp/flr.err)"
}

# ring_admin: writes 1 to the admin SQ tail doorbell (BAR0 + 0x1000),
# with memory decoding on, as a still running controller might act on
# what it was last given.
ring_admin() {
	local cmd
	cmd=$(pci_command "$bdf")
	[ $((cmd & 2)) -ne 0 ] || pci_command_set "$bdf" $((cmd | 2))
	devmem $((base + 0x1000)) 32 1
	echo "@@RANG admin doorbell, command register $(pci_command "$bdf") CC $(devmem $((base + 0x14)) 32)"
}

kmemleak_clear
for f in 0x101 0x102 0x103 0x104 0x107 0x10b 0x0b; do
	function_reset
	trace_mark "$bdf"
	echo "@@STUCK $f start"
	bounded probe "$(scaled 60)" insmod $MOD fault=$((f)) admin_timeout=5 ||
		stop_test "insmod fault=$f" "$(scaled 60)"
	check "fault=$f leaves the controller unbound" [ "$(bound_count)" -eq 0 ]
	check "fault=$f unload" rmmod rsnvme
	trace_mark "$bdf"
	ring_admin
	# QEMU acts on a doorbell from its main loop.
	usleep 200000
	trace_mark "$bdf"
	echo "@@STUCK $f end"
done

function_reset
check "insmod after the stuck controller's faults" insmod $MOD
check "bound after the stuck controller's faults" [ "$(bound_count)" -eq 1 ]
disk=$(rsnvme_disk)
if is_bdev "disk after the stuck controller's faults" "$disk"; then
	pattern_write "$disk" 1000100 0 $((1 * MiB)) 64k
	check_pattern "pattern written after the faults reads back" "$disk" 1000100 0 $((1 * MiB))
fi
check "rmmod after the stuck controller's faults" rmmod rsnvme
dma_allocations
kmemleak_report
