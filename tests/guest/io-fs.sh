# SPDX-License-Identifier: GPL-2.0
# A filesystem on the driver's disk: busybox mke2fs (ext2), files of a few
# sizes (some > 1 MiB, plus a directory of small ones) from /dev/urandom,
# their sha256 sums, umount, mount again, same sums; then once more after
# reloading the driver, so every byte comes from the disk. The host
# (tests/io_tests.py) runs e2fsck on the image and extracts every file with
# debugfs to compare.
. /tests/lib.sh

check "load $IO_DRIVER driver" drv_load 1
d=$(drv_disks | head -n1)
disk_info "$d"
dev=/dev/$d

rc=1
is_bdev "$dev is a block device" "$dev" && { out=$(mke2fs -b 4096 -L RSNVMEFS "$dev" 2>&1); rc=$?; }
check "mke2fs $dev" [ $rc -eq 0 ]
echo "$out" | tail -n 3 | sed 's/^/@@MKE2FS /'
check "mount" mount -t ext2 "$dev" /mnt

mkdir -p /mnt/dir
for f in a:1 b:4097 c:100000 d:1572864 e:3145851 f:2097152; do
	head -c "${f#*:}" /dev/urandom >/mnt/"${f%:*}"
done
i=0
while [ $i -lt 24 ]; do
	head -c $((512 * (i + 1))) /dev/urandom >/mnt/dir/s$i
	i=$((i + 1))
done
(cd /mnt && find . -type f | sort | xargs sha256sum) >/tmp/sums
sed 's/^/@@FSUM /' /tmp/sums
check "files written ($(wc -l </tmp/sums))" [ "$(wc -l </tmp/sums)" -eq 30 ]
df /mnt | tail -n1 | sed 's/^/@@DF /'
check "umount" umount /mnt

# verify LABEL: mounts, checks the sums against /tmp/sums, unmounts.
verify() {
	is_bdev "$dev is a block device ($1)" "$dev" || return
	check "mount ($1)" mount -t ext2 "$dev" /mnt || return
	res=$(cd /mnt && sha256sum -c /tmp/sums 2>&1)
	bad=$(echo "$res" | grep -v ': OK$' | tr '\n' ' ')
	ok=$(echo "$res" | grep -c ': OK$')
	if [ "$ok" -eq 30 ] && [ -z "$bad" ]; then pass "sha256 of 30 files ($1)"; else
		fail "sha256 of 30 files ($1)" "$ok OK; $bad"; fi
	check "umount ($1)" umount /mnt
}
verify remount
check "unload $IO_DRIVER driver" drv_unload
check "reload $IO_DRIVER driver" drv_load 1
d=$(drv_disks | head -n1)
dev=/dev/$d
verify "after driver reload"
check "unload $IO_DRIVER driver at the end" drv_unload
echo "@@IO_END"
