# SPDX-License-Identifier: GPL-2.0
# Discard and write-zeroes, observed through the driver and (by
# tests/io_tests.py) in the image files, which QEMU punches holes into
# (drive discard=unmap).
# Per namespace: pattern (seed $rsnvme_seed + nsid) over [0, 12) MiB (the
# guest writes [0, 8) MiB; the host wrote [8, 12) MiB into the image, as
# the pattern costs the guest about 3 MB/s under TCG), then
#   blkdiscard     [1, 3) MiB                         (REQ_OP_DISCARD)
#   blkdiscard -z  [4, 6) MiB, and 5 LBAs from 6 MiB + 3 LBAs (BLKZEROOUT,
#                  REQ_OP_WRITE_ZEROES when the queue offers it)
#   discard-batch  $BATCH small ranges of 4 or 8 KiB in [8, 12) MiB, sent at
#                  once with io_uring, which blk-mq merges into multi-range
#                  discard requests (see tests/guest/discard-batch.c)
# and everything must read back as zeroes there, as the pattern elsewhere
# in [0, 12) MiB and as zeroes in the never written [12, 16) MiB
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

# The batch: 300 discards, more than one request's 256 ranges, so blk-mq
# must end the first merged request at max_discard_segments: a request of
# 256 ranges (a full page of DSM ranges) and one of 44.
BATCH=300
BATCH_BASE=$((8 * MiB))
# discard_stat DISK: discard requests completed and discard bios merged
# into requests so far (/sys/block/DISK/stat fields 12 and 13).
discard_stat() { awk '{ print $12, $13 }' /sys/block/$1/stat; }

# batch_discard DISK NSID: runs discard-batch until the block layer counts
# the batch as merged into two requests (at most 3 rounds: an io_uring
# command that could not be issued without blocking goes to a worker
# thread, outside the plug, and is not merged); prints per round
# "@@DISCARD_ROUND ns<N> <round> requests=<R> merged=<M> secs=<S>".
batch_discard() {
	local round=1 before after reqs merged t0
	while [ $round -le 3 ]; do
		t0=$(uptime_s)
		before=$(discard_stat "$1")
		/bin/discard-batch /dev/$1 $BATCH_BASE $BATCH || return 1
		after=$(discard_stat "$1")
		reqs=$((${after% *} - ${before% *}))
		merged=$((${after#* } - ${before#* }))
		echo "@@DISCARD_ROUND ns$2 $round requests=$reqs merged=$merged secs=$(since "$t0")"
		[ $reqs -eq 2 ] && [ $merged -eq $((BATCH - 2)) ] && return 0
		round=$((round + 1))
	done
	fail "ns$2 discard batch merged" "no round of 3 merged $BATCH discards into 2 requests" >&7
	return 1
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
	echo "@@SCHED ns$n $(cat /sys/block/$d/queue/scheduler)"
	check "ns$n discard batch of $BATCH ranges merged into 2 requests" batch_discard "$d" "$n"
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
