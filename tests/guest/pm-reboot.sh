# SPDX-License-Identifier: GPL-2.0
# Reboot (issue 10): the guest writes a pattern to each of two namespaces
# (O_DIRECT, so it reached the controller, maybe only its volatile write
# cache), then /init reboots at once with `reboot -f` (/tmp/reboot): no
# sync, no unmount, no unbind; only the driver's shutdown runs. QEMU exits
# on the reboot (-no-reboot). The host checks the shutdown line, that the
# controller was asked to flush and shut down (QEMU's trace) and the image
# files.
. /tests/lib.sh

trace_mark "$(nvme_devices)"
check "load $IO_DRIVER driver with 2 disks" drv_load 2
disks=$(drv_disks)
for d in $disks; do
	disk_info "$d"
	s=$((${rsnvme_seed:-1000000} + $(disk_nsid "$d")))
	pattern_write /dev/"$d" $s 0 $((4 * MiB))
	check_pattern "ns$(disk_nsid "$d") pattern written before the reboot" /dev/"$d" $s 0 $((4 * MiB))
done
touch /tmp/reboot
echo "@@IO_END"
