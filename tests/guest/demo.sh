# SPDX-License-Identifier: GPL-2.0
# `make qemu`: bind rsnvme to the emulated controller, show what it found
# and use its disk: raw write and read-back, then a filesystem.
. /tests/lib.sh

echo "== Linux $(uname -r)"
echo "== NVMe controllers in this VM"
for d in $(nvme_devices); do
	echo "$d vendor $(cat /sys/bus/pci/devices/$d/vendor) device $(cat /sys/bus/pci/devices/$d/device)"
done
# The driver's kernel log lines reach this console as it prints them.
echo "== insmod rsnvme.ko"
insmod $MOD
echo "== bound to rsnvme:"
ls "$DRV" | grep '^0000:'
disk=$(rsnvme_disk)
n=$(basename "$disk")
echo "== $disk: $(cat /sys/block/$n/size) sectors," \
	"$(cat /sys/block/$n/queue/logical_block_size)-byte blocks," \
	"model \"$(cat /sys/block/$n/device/model)\" serial \"$(cat /sys/block/$n/device/serial)\""
grep rsnvme /proc/interrupts
echo "== write 8 MiB of random data with O_DIRECT, read it back, compare"
dd if=/dev/urandom of=/tmp/data bs=1M count=8 2>/dev/null
on_bdev "demo write" "$disk" dd if=/tmp/data of=$BDEV bs=1M oflag=direct 2>&1 | tail -1
on_bdev "demo read" "$disk" dd if=$BDEV of=/tmp/back bs=1M count=8 iflag=direct 2>&1 | tail -1
cmp /tmp/data /tmp/back && echo "read back: identical ($(md5sum </tmp/back | cut -c1-32))"
echo "== ext2 on $disk"
mke2fs "$disk" >/dev/null && mkdir -p /mnt && mount -t ext2 "$disk" /mnt
cp /tmp/data /mnt/data && echo hello from rsnvme >/mnt/hello
umount /mnt && mount -t ext2 -o ro "$disk" /mnt
cat /mnt/hello
cmp /tmp/data /mnt/data && echo "file survived remount: identical"
df -h /mnt | tail -1
umount /mnt
echo "== rmmod rsnvme"
rmmod rsnvme
