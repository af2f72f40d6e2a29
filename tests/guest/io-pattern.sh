# SPDX-License-Identifier: GPL-2.0
# Independent data checks against the image files (tests/io_tests.py):
# - read path: the host filled every namespace with a seeded pattern before
#   boot (seed $rsnvme_rseed + nsid); the guest reads it all back through
#   the driver, whole-disk with 1 MiB reads (md5 against the host's,
#   $rsnvme_pre), then ranges with LBA-sized and odd-sized reads.
# - write path: the guest writes its own pattern (seed $rsnvme_wseed +
#   nsid) over [4, 12) MiB of each namespace with O_DIRECT (64 KiB writes,
#   then LBA-sized ones for the last MiB), flushes, reads it back (md5
#   against $rsnvme_post); after QEMU exits the host checks every byte of
#   the images.
. /tests/lib.sh

ndisks=${rsnvme_disks:-1}
check "load $IO_DRIVER driver with $ndisks disks" drv_load "$ndisks"
for d in $(drv_disks); do disk_info "$d"; done

i=1
for d in $(drv_disks); do
	n=$(disk_nsid "$d")
	lbs=$(disk_lbs "$d")
	bytes=$(disk_bytes "$d")
	want=$(echo "$rsnvme_pre" | cut -d, -f$i)
	check_md5 "read host pattern ns$n (1 MiB reads)" /dev/$d 0 "$bytes" "$want" 1M
	check_pattern "read host pattern ns$n ($lbs-byte reads)" /dev/$d $((rsnvme_rseed + n)) \
		0 $MiB "$lbs"
	check_pattern "read host pattern ns$n ($((3 * lbs))-byte reads)" /dev/$d \
		$((rsnvme_rseed + n)) $MiB $MiB $((3 * lbs))
	i=$((i + 1))
done

# Both namespaces at once (one seq process per vCPU).
t0=$(uptime_s)
for d in $(drv_disks); do
	n=$(disk_nsid "$d")
	(
		pattern_write /dev/$d $((rsnvme_wseed + n)) $((4 * MiB)) $((7 * MiB)) 64k &&
			pattern_write /dev/$d $((rsnvme_wseed + n)) $((11 * MiB)) $MiB "$(disk_lbs "$d")" &&
			sync /dev/$d
		echo "@@WROTE ns$n rc=$? $(tr '\n' ' ' </tmp/dd.err)"
	) &
done
wait
echo "@@TIME write $t0 $(uptime_s)"

i=1
for d in $(drv_disks); do
	n=$(disk_nsid "$d")
	want=$(echo "$rsnvme_post" | cut -d, -f$i)
	check_md5 "read back guest pattern ns$n" /dev/$d $((4 * MiB)) $((8 * MiB)) "$want" 1M
	mib_sums "ns$n" /dev/$d
	i=$((i + 1))
done
check "unload $IO_DRIVER driver" drv_unload
echo "@@IO_END"
