# SPDX-License-Identifier: GPL-2.0
# O_DIRECT writes and reads of 1 to 4 MiB from huge-page buffers
# (tests/guest/hugedio.c): each request's pages are physically contiguous,
# so the block layer hands the driver scatterlist segments of up to a
# whole request (512 KiB with QEMU's MDTS), far over the DMA layer's
# default limit of 64 KiB per segment. With DMA-API debugging, a driver
# that maps them without raising the device's limit gets "DMA-API: ...
# mapping sg segment longer than device claims to support" on the console
# (the host fails the run on any DMA-API line). The data are compared in
# the guest and, from the image, by the host (tests/io_tests.py).
. /tests/lib.sh

check "load $IO_DRIVER driver" drv_load 1
d=$(drv_disks | head -n1)
disk_info "$d"

# Huge pages for two buffers of 8 MiB (4 MiB in chunks with gaps), and
# some to spare.
hp=/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages
echo 20 >$hp 2>/dev/null
check "20 huge pages of 2 MiB reserved ($(cat $hp 2>/dev/null))" [ "$(cat $hp 2>/dev/null)" = 20 ]

# shellcheck disable=SC2086 # one word per offset and length
on_bdev "hugedio" "/dev/$d" /bin/hugedio "$BDEV" "$rsnvme_seed" $(echo "$rsnvme_ranges" | tr , ' ')
check "huge-page O_DIRECT ranges written and read back identical in the guest" [ $? -eq 0 ]
echo 3 >/proc/sys/vm/drop_caches 2>/dev/null
echo 0 >$hp 2>/dev/null
check "driver unloads" drv_unload
echo "@@IO_END"
