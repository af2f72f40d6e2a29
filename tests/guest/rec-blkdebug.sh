# SPDX-License-Identifier: GPL-2.0
# Media errors from the backing store (issue 8). QEMU's blkdebug fails
# every read of the 4 KiB at byte $rsnvme_bad_read, every write of the 4 KiB
# at byte $rsnvme_bad_write, and the first flush (tests/recovery_tests.py
# writes the rules). The controller reports each as a command error without
# Do Not Retry, so the driver retries it; the bad read and write fail for
# good and must reach userspace as a medium error (Unrecovered Read Error
# and Write Fault are BLK_STS_MEDIUM, ENODATA, as the C driver maps them;
# the kernel logs "critical medium error"), the flush succeeds on its retry,
# and I/O elsewhere on the disk keeps working: a pattern written around the
# bad blocks reads back. The host checks the driver's retry counts.
. /tests/lib.sh

bad_read=${rsnvme_bad_read:?}
bad_write=${rsnvme_bad_write:?}
seed=${rsnvme_seed:-1000000}
bound=$(scaled 30)
check "load $IO_DRIVER driver" drv_load 1
d=$(drv_disks | head -n1)
disk_info "$d"
dev=/dev/$d

# io_once NAME DD-ARGS...: runs one dd on the disk, bounded; prints what
# it got as @@IO NAME rc=<status> <dd's messages>.
io_once() {
	local name=$1
	shift
	bounded "$name" "$bound" on_bdev "$name" "$dev" dd "$@" || stop_test "$name" "$bound"
	echo "@@IO $name rc=$bounded_rc $(tr '\n' ' ' </tmp/"$name".bg)"
}

# A good region first: below the bad blocks.
pattern_write "$dev" $seed 0 $((1 * MiB)) 64k
check_pattern "pattern below the bad blocks reads back" "$dev" $seed 0 $((1 * MiB))

io_once badread if=$BDEV of=/dev/null bs=4k count=1 iflag=direct,skip_bytes skip=$bad_read
check "read of the bad block fails with a medium error (ENODATA)" \
	[ "$bounded_rc" -ne 0 -a -n "$(grep 'No data available' /tmp/badread.bg)" ]
io_once badwrite if=/dev/zero of=$BDEV bs=4k count=1 oflag=direct,seek_bytes seek=$bad_write
check "write of the bad block fails with a medium error (ENODATA)" \
	[ "$bounded_rc" -ne 0 -a -n "$(grep 'No data available' /tmp/badwrite.bg)" ]
io_once goodread if=$BDEV of=/dev/null bs=4k count=1 iflag=direct,skip_bytes skip=$((bad_read + 4096))
check "read of the block after the bad one succeeds" [ "$bounded_rc" -eq 0 ]

# The first flush fails once; its retry succeeds, so fsync does.
io_once flush if=/dev/zero of=$BDEV bs=4k count=1 seek=$((2 * MiB / 4096)) conv=fsync
check "write with fsync succeeds although the first flush failed" [ "$bounded_rc" -eq 0 ]

# I/O around the bad blocks keeps working.
s2=$((seed + 7))
pattern_write "$dev" $s2 $((bad_write + 4096)) $((1 * MiB)) 64k
check_pattern "pattern after the bad blocks reads back" "$dev" $s2 $((bad_write + 4096)) $((1 * MiB))
check_pattern "pattern below the bad blocks still reads back" "$dev" $seed 0 $((1 * MiB))
check "unload $IO_DRIVER driver" drv_unload
echo "@@IO_END"
