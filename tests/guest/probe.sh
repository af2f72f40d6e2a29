# SPDX-License-Identifier: GPL-2.0
# Binds rsnvme to every NVMe controller the VM has (possibly none), unbinds
# it, then loads and unloads it $rsnvme_cycles times. The host checks the
# driver's log lines against the raw registers printed here and against
# what QEMU was configured with.
. /tests/lib.sh

kmemleak_clear
devs=$(nvme_devices)
n=$(echo $devs | wc -w)
echo "@@NVME_DEVICES $n"
for d in $devs; do raw_regs "$d"; done

check insmod insmod $MOD
check all_bound [ "$(bound_count)" -eq "$n" ]
for d in $devs; do
	check "bound $d" [ -e "$DRV/$d" ]
	for a in model serial firmware_rev queue_count; do
		echo "@@SYSFS $d $a=$(cat /sys/bus/pci/devices/$d/$a)"
	done
done
# Block devices: one per usable namespace ($rsnvme_disks of them, from the
# host), with the controller's identity reachable through the disk's parent
# device.
t=$(($(scaled 5) * 10))
while [ "$(ls /sys/block | grep -c '^rsnvme')" -lt "${rsnvme_disks:-0}" ]; do
	if [ $t -le 0 ]; then
		fail "waiting for $rsnvme_disks rsnvme disks" \
			"$(ls /sys/block | grep -c '^rsnvme') in /sys/block after $(scaled 5) s"
		break
	fi
	usleep 100000
	t=$((t - 1))
done
for b in /sys/block/rsnvme*; do
	[ -e "$b" ] || continue
	echo "@@BLOCK $(basename $b) size=$(cat $b/size) lbs=$(cat $b/queue/logical_block_size)" \
		"rotational=$(cat $b/queue/rotational) model=$(cat $b/device/model)" \
		"serial=$(cat $b/device/serial)"
done
check rmmod rmmod rsnvme
check driver_gone [ ! -e "$DRV" ]

ok=1
i=0
while [ $i -lt "${rsnvme_cycles:-20}" ]; do
	insmod $MOD || ok=0
	[ "$(bound_count)" -eq "$n" ] || ok=0
	rmmod rsnvme || ok=0
	i=$((i + 1))
done
check "load_unload_cycles ${rsnvme_cycles:-20}" [ $ok -eq 1 ]
dma_allocations
kmemleak_report
