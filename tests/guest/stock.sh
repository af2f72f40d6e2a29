#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# rsnvme on a stock distribution kernel (tests/stock_tests.py): two
# controllers, the first for rsnvme and the second for the kernel's own
# nvme driver (driver_override), both loaded with modprobe. Each disk gets the
# host's pattern (/data/pattern) written at $rsnvme_offset MiB and read
# back after dropping the page cache; the host also compares the images.

. /tests/lib.sh

echo "@@UNAME $(uname -r)"
echo "@@TAINT_BEFORE $(cat /proc/sys/kernel/tainted)"
set -- $(nvme_devices)
rs=$1 cdrv=$2
echo "@@CTRLS rsnvme=$rs nvme=$cdrv"
[ -n "$rs" ] && [ -n "$cdrv" ] || { fail "stock-two controllers" "found '$*'"; exit 1; }
# own BDF DRIVER: only DRIVER may bind the controller; one bound to another
# driver already (a kernel with the C driver built in) is let go.
own() {
	echo "$2" >"/sys/bus/pci/devices/$1/driver_override"
	if [ -e "/sys/bus/pci/devices/$1/driver" ] &&
		[ "$(basename "$(readlink "/sys/bus/pci/devices/$1/driver")")" != "$2" ]; then
		echo "$1" >"/sys/bus/pci/devices/$1/driver/unbind"
	fi
}
own "$rs" rsnvme
own "$cdrv" nvme

# Debian's kmod, with the modules tree `make install` made (depmod ran
# there): modprobe resolves the C driver's dependencies and finds rsnvme
# in extra/.
mkdir -p /sbin
for t in modprobe modinfo; do ln -sf /usr/bin/kmod /sbin/$t; done
/sbin/modprobe nvme || fail "stock-modprobe nvme" "rc $?"
# shellcheck disable=SC2086 # $rsnvme_modopts: parameters, one word each
/sbin/modprobe rsnvme $rsnvme_modopts
echo "@@MODPROBE rsnvme rc=$?"
# Controllers let go above are bound again, each to its driver.
echo "$rs" >/sys/bus/pci/drivers_probe
echo "$cdrv" >/sys/bus/pci/drivers_probe
echo "@@MODINFO filename=$(/sbin/modinfo -F filename rsnvme)"
echo "@@TAINT_AFTER $(cat /proc/sys/kernel/tainted)"
echo "@@MODTAINT $(cat /sys/module/rsnvme/taint 2>/dev/null)"

# wait_disk NAME: waits (bounded) until /dev/NAME is a block device.
wait_disk() {
	n=0
	while [ ! -b "/dev/$1" ] && [ $n -lt "$(scaled 20)" ]; do
		sleep 1
		n=$((n + 1))
	done
	[ -b "/dev/$1" ]
}

# verify DRIVER DISK: pattern out and back in through DISK.
verify() {
	drv=$1 disk=$2
	if ! wait_disk "$disk"; then
		fail "stock-$drv disk" "/dev/$disk did not appear"
		return
	fi
	echo "@@BOUND $drv $(ls "/sys/bus/pci/drivers/$drv" | grep '^0000:' | tr '\n' ' ')"
	dd if=/data/pattern of="/dev/$disk" bs=1M seek="$rsnvme_offset" conv=fsync 2>/dev/null
	echo "@@WRITE $drv $disk rc=$?"
	echo 3 >/proc/sys/vm/drop_caches
	size=$(wc -c </data/pattern)
	dd if="/dev/$disk" of=/tmp/back bs=1M skip="$rsnvme_offset" count=$((size / MiB)) 2>/dev/null
	echo "@@READ $drv $disk rc=$? md5=$(md5sum </tmp/back | cut -d' ' -f1)"
	if cmp -s /data/pattern /tmp/back; then
		pass "stock-$drv read back what it wrote"
	else
		fail "stock-$drv read back what it wrote" "differs"
	fi
	rm -f /tmp/back
}

verify rsnvme rsnvme0n1
# Concurrent I/O on both queues: two fio jobs (one per vCPU) write random
# sizes at random places of their own 16 MiB past the pattern, then read
# everything back against crc32c checksums.
if [ -b /dev/rsnvme0n1 ]; then
	$FIO --name=stock --filename=/dev/rsnvme0n1 --ioengine=libaio --direct=1 \
		--rw=randwrite --bsrange=4k-128k --iodepth=16 --numjobs=2 --size=16M \
		--offset=16M --offset_increment=16M --verify=crc32c --verify_fatal=1 \
		--do_verify=1 --group_reporting >/tmp/fio.out 2>&1
	echo "@@FIO rc=$? errors=$(grep -c 'verify:\|err=[^0 ]\|bad magic\|crc32c: verify failed' /tmp/fio.out)"
	grep -E 'err=|WRITE:|READ:' /tmp/fio.out | sed 's/^/@@FIOOUT /'
fi
# sysfs values are formatted without %pA on such a kernel.
for a in model serial queue_count; do
	echo "@@SYSFS $a=$(cat "/sys/bus/pci/devices/$rs/$a" 2>&1)"
done
# The C driver's disk: nvme0n1, or another number if the kernel has the
# driver built in and it had the first controller before.
n=0
while ! ls /sys/block | grep -qE '^nvme[0-9]+n1$' && [ $n -lt "$(scaled 20)" ]; do
	sleep 1
	n=$((n + 1))
done
verify nvme "$(ls /sys/block | grep -E '^nvme[0-9]+n1$' | head -n 1)"
echo "@@PATTERN md5=$(md5sum </data/pattern | cut -d' ' -f1)"
sync
rmmod rsnvme
echo "@@RMMOD rsnvme rc=$?"
echo "@@TAINT_END $(cat /proc/sys/kernel/tainted)"
