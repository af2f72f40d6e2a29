# SPDX-License-Identifier: GPL-2.0
# Discard and write-zeroes, observed through the driver and (by
# tests/io_tests.py) in the image files, which QEMU punches holes into
# (drive discard=unmap).
# Per namespace: pattern (seed $rsnvme_seed + nsid) over [0, 8) MiB, then
#   blkdiscard     [1, 3) MiB                         (REQ_OP_DISCARD)
#   blkdiscard -z  [4, 6) MiB, and 5 LBAs from 6 MiB + 3 LBAs (BLKZEROOUT,
#                  REQ_OP_WRITE_ZEROES when the queue offers it)
# and everything must read back as zeroes there, as the pattern elsewhere
# in [0, 8) MiB and as zeroes in the never written [8, 16) MiB
# (whole-disk md5s from the host in $rsnvme_want, per-MiB md5s printed).
. /tests/lib.sh

ndisks=${rsnvme_disks:-1}
check "load $IO_DRIVER driver with $ndisks disks" drv_load "$ndisks"
for d in $(drv_disks); do disk_info "$d"; done

for d in $(drv_disks); do
	n=$(disk_nsid "$d")
	(pattern_write /dev/$d $((rsnvme_seed + n)) 0 $((8 * MiB)) 128k && sync /dev/$d
		echo "@@WROTE ns$n rc=$? $(tr '\n' ' ' </tmp/dd.err)") &
done
wait
# The queue limits the host compares with QEMU's configuration.
queue_limits() {
	local a
	for a in logical_block_size physical_block_size minimum_io_size optimal_io_size \
		discard_granularity discard_max_hw_bytes max_discard_segments \
		write_zeroes_max_bytes; do
		echo "@@QLIM $2 $a=$(cat /sys/block/$1/queue/$a)"
	done
}

i=1
for d in $(drv_disks); do
	n=$(disk_nsid "$d")
	lbs=$(disk_lbs "$d")
	queue_limits "$d" "$n"
	check "ns$n offers discard" [ "$(cat /sys/block/$d/queue/discard_max_bytes)" -gt 0 ]
	out=$($BLKDISCARD -v -o $MiB -l $((2 * MiB)) /dev/$d 2>&1)
	echo "@@BLKDISCARD ns$n: $out"
	check "ns$n blkdiscard" [ -n "$(echo "$out" | grep 'Discarded 2097152 bytes from the offset 1048576')" ]
	out=$($BLKDISCARD -v -z -o $((4 * MiB)) -l $((2 * MiB)) /dev/$d 2>&1)
	echo "@@BLKZEROOUT ns$n: $out"
	check "ns$n blkdiscard -z" [ -n "$(echo "$out" | grep 'Zero-filled 2097152 bytes from the offset 4194304')" ]
	out=$($BLKDISCARD -v -z -o $((6 * MiB + 3 * lbs)) -l $((5 * lbs)) /dev/$d 2>&1)
	echo "@@BLKZEROOUT ns$n: $out"
	check "ns$n blkdiscard -z of 5 LBAs" \
		[ -n "$(echo "$out" | grep "Zero-filled $((5 * lbs)) bytes from the offset $((6 * MiB + 3 * lbs))")" ]
	sync /dev/$d
	check_zero "ns$n discarded range reads as zeroes" /dev/$d $MiB $((2 * MiB))
	check_zero "ns$n zeroed range reads as zeroes" /dev/$d $((4 * MiB)) $((2 * MiB))
	check_zero "ns$n zeroed 5 LBAs read as zeroes" /dev/$d $((6 * MiB + 3 * lbs)) $((5 * lbs))
	check_pattern "ns$n data before the 5 zeroed LBAs intact" /dev/$d $((rsnvme_seed + n)) \
		$((6 * MiB)) $((3 * lbs))
	check_pattern "ns$n data after the 5 zeroed LBAs intact" /dev/$d $((rsnvme_seed + n)) \
		$((6 * MiB + 8 * lbs)) $((8 * lbs))
	check_md5 "ns$n whole disk as expected" /dev/$d 0 "$(disk_bytes "$d")" \
		"$(echo "$rsnvme_want" | cut -d, -f$i)" 1M
	mib_sums "ns$n" /dev/$d
	i=$((i + 1))
done
check "unload $IO_DRIVER driver" drv_unload
echo "@@IO_END"
