# SPDX-License-Identifier: GPL-2.0
# tools/nvme-handover (at /usr/sbin in this initramfs) with both drivers
# loaded and two controllers: the C nvme driver takes both, then one of
# them (two namespaces) goes to rsnvme and back. Each way the tool must
# refuse while a namespace is mounted, used as swap or held open by a
# process, and then move it: the other controller stays with nvme, and a
# pattern written through one driver reads back byte for byte through the
# other. The host (tests/install_tests.py) checks the @@HANDOVER lines.
. /tests/lib.sh

TOOL=/usr/sbin/nvme-handover
SEED=${rsnvme_seed:-1000000}
S1=$((SEED + 1))
S2=$((SEED + 2))

# handover NAME WANT_RC ARGS...: runs the tool; prints its exit status and
# every line it printed (@@HANDOVER NAME rc=N / @@HANDOVER_OUT NAME ...),
# passes when the status is WANT_RC.
handover() {
	local name=$1 want=$2 rc
	shift 2
	bounded "handover" "$(scaled 60)" "$TOOL" "$@" || stop_test "nvme-handover $*" "$(scaled 60)"
	rc=$bounded_rc
	echo "@@HANDOVER $name rc=$rc"
	sed "s/^/@@HANDOVER_OUT $name /" /tmp/handover.bg
	if [ "$rc" = "$want" ]; then pass "handover $name exits $want"; return 0; fi
	fail "handover $name exits $want" "exit status $rc: $(tr '\n' ' ' </tmp/handover.bg)"
	return 1
}

# says NAME TEXT: the tool's last output mentions TEXT.
says() {
	if grep -qF "$2" /tmp/handover.bg; then pass "handover $1 says '$2'"; return 0; fi
	fail "handover $1 says '$2'" "it said: $(tr '\n' ' ' </tmp/handover.bg)"
	return 1
}

# driver_of BDF: the driver a controller is bound to.
driver_of() { [ -e "/sys/bus/pci/devices/$1/driver" ] && basename "$(readlink "/sys/bus/pci/devices/$1/driver")"; }

# disk_of BDF NSID: the disk of namespace NSID of controller BDF, whichever
# driver has it, once its /dev node is there (at most 20 s, scaled).
disk_of() {
	local t d
	t=$(($(scaled 20) * 10))
	while [ $t -gt 0 ]; do
		for d in /sys/block/*; do
			case $(readlink -f "$d") in */"$1"/*) ;; *) continue ;; esac
			[ "$(disk_nsid "${d##*/}")" = "$2" ] && [ -b "/dev/${d##*/}" ] &&
				echo "/dev/${d##*/}" && return 0
		done
		usleep 100000
		t=$((t - 1))
	done
	fail "namespace $2 of the controller has a disk" "$1: none after $(scaled 20) s" >&7
	return 1
}

set -- $(nvme_devices)
A=$1 B=$2
echo "@@CONTROLLERS A=$A B=$B"
insmod /lib/modules/nvme-core.ko && insmod /lib/modules/nvme.ko
a1=$(disk_of "$A" 1) a2=$(disk_of "$A" 2) b1=$(disk_of "$B" 1)
check "nvme serves both namespaces of controller A and the one of controller B" [ -b "$a1" -a -b "$a2" -a -b "$b1" ]
check "rsnvme loads with every controller taken" insmod "$MOD"
check "rsnvme has no controller" [ "$(bound_count)" = 0 ]
check "nvme has controller A" [ "$(driver_of "$A")" = nvme ]
check "nvme has controller B" [ "$(driver_of "$B")" = nvme ]

# busy_checks DRIVER: the three refusals, on the disks DRIVER gave A.
busy_checks() {
	local drv=$1 ns1 ns2 pid
	ns1=$(disk_of "$A" 1) && ns2=$(disk_of "$A" 2) || return 1
	mkdir -p /mnt/h
	mke2fs -q "$ns2" >/dev/null 2>&1 && mount -t ext2 "$ns2" /mnt/h &&
		handover "$drv-mounted" 1 "$A" "$other" && says "$drv-mounted" "is mounted on /mnt/h"
	umount /mnt/h
	mkswap "$ns2" >/dev/null 2>&1 && swapon "$ns2" &&
		handover "$drv-swap" 1 "$A" "$other" && says "$drv-swap" "is used as swap"
	swapoff "$ns2"
	sleep 600 <"$ns1" &
	pid=$!
	handover "$drv-open" 1 "$A" "$other" && says "$drv-open" "is open in process $pid (sleep)"
	kill $pid
	wait $pid 2>/dev/null
	# A partition: one primary partition over the disk (busybox fdisk
	# rereads the table), an ext2 on it, mounted.
	printf 'o\nn\np\n1\n\n\nw\n' | fdisk "$ns2" >/tmp/fdisk.out 2>&1
	part=${ns2}p1
	wait_bdev "$part" && mke2fs -q "$part" >/dev/null 2>&1 && mount -t ext2 "$part" /mnt/h &&
		handover "$drv-partition" 1 "$A" "$other" &&
		says "$drv-partition" "${part#/dev/} is mounted on /mnt/h"
	umount /mnt/h
	check "$drv, controller A stays with $drv after the refusals" [ "$(driver_of "$A")" = "$drv" ]
}

# From the C driver to rsnvme.
other=rsnvme
d=$(disk_of "$A" 1) && pattern_write "$d" $S1 0 $MiB &&
	check_pattern "pattern written through nvme" "$d" $S1 0 $MiB
busy_checks nvme
handover "dry-run" 0 -n "$A" rsnvme && says "dry-run" "nvme -> rsnvme"
check "dry run leaves controller A with nvme" [ "$(driver_of "$A")" = nvme ]
handover "to-rsnvme" 0 "$A" rsnvme && says "to-rsnvme" "is bound to rsnvme, disks"
check "controller A is with rsnvme" [ "$(driver_of "$A")" = rsnvme ]
check "controller B stays with nvme" [ "$(driver_of "$B")" = nvme ]
check "controller A driver_override is rsnvme" [ "$(cat /sys/bus/pci/devices/"$A"/driver_override)" = rsnvme ]
d=$(disk_of "$A" 1) && {
	echo "@@DISK_AFTER to-rsnvme $d"
	check_pattern "pattern written through nvme reads back through rsnvme" "$d" $S1 0 $MiB
	pattern_write "$d" $S2 $MiB $MiB
	check_pattern "pattern written through rsnvme" "$d" $S2 $MiB $MiB
}
handover "again" 0 "$A" rsnvme && says "again" "already has driver rsnvme"

# And back to the C driver.
other=nvme
busy_checks rsnvme
handover "to-nvme" 0 "$A" nvme && says "to-nvme" "is bound to nvme, disks"
check "controller A is with nvme again" [ "$(driver_of "$A")" = nvme ]
check "controller B stays with nvme" [ "$(driver_of "$B")" = nvme ]
d=$(disk_of "$A" 1) && {
	echo "@@DISK_AFTER to-nvme $d"
	check_pattern "pattern written through nvme reads back after the round trip" "$d" $S1 0 $MiB
	check_pattern "pattern written through rsnvme reads back through nvme" "$d" $S2 $MiB $MiB
}

# Errors: no such device, not a driver, a driver that is not loaded.
handover "no-device" 2 0000:00:1f.7 rsnvme
handover "not-loaded" 2 "$A" nosuchdriver && says "not-loaded" "is not loaded"

echo > /sys/bus/pci/devices/"$A"/driver_override
check "unload rsnvme" rmmod rsnvme
check "unload nvme" rmmod nvme
check "unload nvme_core" rmmod nvme_core
kmemleak_report
