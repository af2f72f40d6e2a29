# SPDX-License-Identifier: GPL-2.0
# Reboot (issue 10): the guest writes a pattern to each of two namespaces
# (O_DIRECT, so it reached the controller, maybe only its volatile write
# cache), then /init reboots at once with `reboot -f` (/tmp/reboot): no
# sync, no unmount, no unbind; only the driver's shutdown runs. QEMU exits
# on the reboot (-no-reboot). The host checks the shutdown line, that the
# controller was asked to flush and shut down and that bus mastering was
# turned off after that (QEMU's trace), and the image files.
#
# With $rsnvme_stuck set (issue 21), one write is still in flight when the
# shutdown begins: the block layer's fail_io_timeout hides its completion
# (the controller did finish it), so blk-mq keeps it in flight. The
# driver's I/O timeout, which bounds how long its shutdown waits for
# requests, is made short ($rsnvme_stuck s, scaled) and the disks' own
# (blk-mq) timeout long, so no timeout handling touches the request before
# the reboot: the shutdown must still flush, delete the queues and shut
# the controller down (CC.SHN), then take the request back.
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

if [ -n "${rsnvme_stuck:-}" ]; then
	F=/sys/kernel/debug/fail_io_timeout
	d=$(echo $disks | cut -d' ' -f1)
	check "the kernel has fail_io_timeout (CONFIG_FAIL_IO_TIMEOUT, debugfs)" [ -d $F ]
	set_io_timeout 600 $disks
	# The C driver's parameter is nvme_core's; both are read at shutdown.
	param=/sys/module/$IO_MODULE/parameters/io_timeout
	[ "$IO_DRIVER" = c ] && param=/sys/module/nvme_core/parameters/io_timeout
	echo "$(scaled "$rsnvme_stuck")" >"$param"
	check "$IO_DRIVER driver's io_timeout set to $(scaled "$rsnvme_stuck") s" \
		[ "$(cat "$param")" = "$(scaled "$rsnvme_stuck")" ]
	echo 0 >$F/probability
	echo 1 >$F/verbose
	echo 1 >$F/interval
	echo 1 >$F/times
	echo 1 >/sys/block/"$d"/io-timeout-fail
	echo 100 >$F/probability
	on_bdev "stuck write" /dev/"$d" dd if=/dev/zero of=$BDEV bs=4k count=1 \
		seek=$((8 * MiB / 4096)) oflag=direct >/tmp/stuck.out 2>&1 &
	t0=$(uptime_s)
	while [ "$(cat $F/times)" != 0 ] && [ "$(since "$t0" | cut -d. -f1)" -lt "$(scaled 10)" ]; do
		sleep 0.1
	done
	inflight=$(cat /sys/block/"$d"/inflight)
	echo "@@STUCK_WRITE $d inflight $(echo $inflight) times_left $(cat $F/times)"
	check "a write to $d is in flight, its completion hidden" \
		[ "$(cat $F/times)" = 0 -a "$(echo $inflight | cut -d' ' -f2)" = 1 ]
	# What the controller sees from here on is the shutdown.
	trace_mark "$(nvme_devices)"
fi
touch /tmp/reboot
echo "@@IO_END"
