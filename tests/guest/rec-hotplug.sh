# SPDX-License-Identifier: GPL-2.0
# Hot-unplug (issue 8). The controller sits behind a PCIe root port. While
# fio writes and verifies its disk, the guest asks the host (@@UNPLUG) to
# remove it with QMP device_del; PCIe native hotplug (pciehp) then takes
# it away: the driver must let go within a bound, fio must end (with
# errors: its disk vanished), the disk must be gone. Then the guest asks
# for a new controller (@@PLUG; the host waits until QEMU has deleted the
# old one, then QMP device_add into the same port): it must be probed and
# its disk must read back a pattern written to it. kmemleak and DMA-API
# debugging must find nothing left of the removed controller.
# pciehp's own lockdep report on unplug (tolerated by the host, see
# tests/recovery_tests.py) turns lockdep off for the rest of the boot:
# @@LOCKDEP lines say whether it was still checking.
. /tests/lib.sh

# fio_verify_count NAME: how many complaints about data fio has printed.
fio_verify_count() {
	grep -ciE 'verify|crc|bad magic|mismatch' /tmp/"$1".err
}

lockdep_state() {
	echo "@@LOCKDEP $1: debug_locks=$(awk '/debug_locks:/ { print $2 }' /proc/lockdep_stats)"
}

bound=$(scaled 60)
kmemleak_clear
check "load $IO_DRIVER driver" drv_load 1
d=$(drv_disks | head -n1)
disk_info "$d"
bdf=$(disk_bdf "$d")
rec_jobfile 600 "" "$d" >/tmp/hotplug.fio
progress_mark "$d"
fio_start hotplug /tmp/hotplug.fio
wait_progress "fio doing I/O before the unplug" 50 "$(scaled 60)" "$d" ||
	stop_test "fio start" "$(scaled 60)"
lockdep_state "before the unplug"
t0=$(uptime_s)
echo "@@UNPLUG $bdf"
# Once the block layer has marked the disk dead (capacity 0), a read of it
# returns 0 bytes (end of device) and fio verifies what its buffer held
# from before: its verify errors from then on say nothing about the
# driver (the C driver gets them too). So what fio complained about is
# counted while the disk still has its capacity: complaints counted
# before a nonzero capacity is read are about reads that were submitted
# before that, on a live disk, and any of those is bad data.
t=$((bound * 10))
alive=0
while [ -e "/sys/bus/pci/devices/$bdf" ] && [ $t -gt 0 ]; do
	n=$(fio_verify_count hotplug)
	[ "$(cat "/sys/block/$d/size" 2>/dev/null || echo 0)" -gt 0 ] && alive=$n
	usleep 100000
	t=$((t - 1))
done
if [ -e "/sys/bus/pci/devices/$bdf" ]; then
	fail "controller removed within $bound s" "$bdf still there"
	for p in $(pidof fio); do stuck "fio" "$p"; done
	for p in /proc/[0-9]*; do
		case "$(cat "$p/comm" 2>/dev/null)" in
		*pciehp*) stuck "pciehp" "${p#/proc/}" ;;
		esac
	done
	exit 1
fi
pass "controller removed within $bound s ($(since "$t0") s)"
fio_end hotplug "$bound"
echo "@@FIO_VERIFY hotplug while the disk was alive: $alive, in all: $(fio_verify_count hotplug)"
check "fio found no bad data while the disk was alive" [ "$alive" -eq 0 ]
check "disk $d gone after the unplug" [ ! -b "/dev/$d" ]
check "no disk of $IO_DRIVER left" [ -z "$(drv_disks)" ]

echo "@@PLUG"
drv_wait_disks 1 60 && pass "a new controller was probed after device_add"
n=$(drv_disks | head -n1)
if [ -n "$n" ] && is_bdev "new disk" "/dev/$n"; then
	disk_info "$n"
	s=$((${rsnvme_seed:-1000000} + 99))
	pattern_write "/dev/$n" $s 0 $((1 * MiB)) 64k
	check_pattern "pattern on the new controller's disk reads back" "/dev/$n" $s 0 $((1 * MiB))
fi
check "unload $IO_DRIVER driver" drv_unload
lockdep_state "after the unload"
dma_allocations
kmemleak_report
echo "@@IO_END"
