# SPDX-License-Identifier: GPL-2.0
# Data integrity with fio: random writes with crc32c verify headers, then
# every block read back and checked, over the whole of every namespace
# (512 and 4096-byte LBAs, all at once), one job per vCPU (pinned), each
# on its own slice of the disk, in four phases: queue depth 1, 8, 64 and
# 64 with large blocks; block sizes from the LBA size to 1 MiB, odd sizes
# and buffers that start 512 bytes into a page. The host checks the
# @@FIO lines too (tests/io_tests.py).
. /tests/lib.sh

ndisks=${rsnvme_disks:-1}
seed=${rsnvme_seed:-1}
ncpu=$(nproc)
check "load $IO_DRIVER driver with $ndisks disks" drv_load "$ndisks"
disks=$(drv_disks)
for d in $disks; do disk_info "$d"; done

fio_phase qd1 1 "bssplit=512/15:1536/10:4k/20:12k/15:64k/20:132k/20" \
	"bssplit=4k/40:12k/20:20k/10:64k/15:132k/15"
fio_phase qd8 8 "bsrange=512-128k mem_align=512" "bsrange=4k-128k mem_align=512"
fio_phase qd64 64 "bssplit=512/10:1k/10:4k/50:16k/30" "bssplit=4k/70:16k/30"
fio_phase qd64-large 64 "bssplit=128k/20:384k/20:516k/20:1m/40 mem_align=512" \
	"bssplit=128k/20:384k/20:516k/20:1m/40 mem_align=512"

# The harness itself: a block changed behind fio's back must fail a verify.
d=$(echo $disks | cut -d' ' -f1)
cat >/tmp/selftest.fio <<EOT
[global]
ioengine=libaio
direct=1
rw=randwrite
bs=4k
verify=crc32c
iodepth=8
filename=/dev/$d
allow_file_create=0
offset=0
size=1M
[$d-cpu0-1024]
EOT
$FIO --eta=never --do_verify=0 /tmp/selftest.fio >/dev/null 2>&1
head -c 512 /dev/urandom |
	on_bdev "harness self-test, corrupt a block" /dev/$d dd of=$BDEV bs=512 seek=700 oflag=direct 2>/dev/null
fio_run selftest /tmp/selftest.fio --verify_only
if fio_check selftest /tmp/selftest.fio >/tmp/selftest.res; then
	fail "harness self-test, fio verify catches a corrupted block" "fio_check passed: $(cat /tmp/selftest.res)"
else
	pass "harness self-test, fio verify catches a corrupted block"
	echo "@@SELFTEST $(sed 's/^@@FAIL //' /tmp/selftest.res)"
fi

grep -E 'nvme|rsnvme' /proc/interrupts | sed 's/^/@@IRQ /'
check "unload $IO_DRIVER driver" drv_unload
echo "@@IO_END"
