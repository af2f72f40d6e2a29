# SPDX-License-Identifier: GPL-2.0
# Makes probe fail at each point the `fault` module parameter can inject,
# then binds normally: every failure must unwind completely, leaving the
# controller usable and nothing leaked. The host checks the messages.
. /tests/lib.sh

kmemleak_clear
# fault=4 waits for the admin timeout: 5 s instead of the default 60.
# fault=7 fails probe once the I/O queues exist: the unwind must shut the
# controller down before their memory goes (DMA-API debug, kmemleak).
for f in 1 2 3 4 7; do
	echo "@@FAULT $f start"
	insmod $MOD fault=$f admin_timeout=5
	check "fault=$f leaves the controller unbound" [ "$(bound_count)" -eq 0 ]
	rmmod rsnvme
	echo "@@FAULT $f end"
done
check "insmod after faults" insmod $MOD
check "bound after faults" [ "$(bound_count)" -eq 1 ]
check "rmmod after faults" rmmod rsnvme

# fault=5: every I/O queue drops its submission doorbell until the next
# reset. The partition scan's read, sent from CPU 0 (insmod is pinned
# there) and so through CPU 0's I/O queue (1 on 6.12, 2 on 7.3, whose
# vector spreading differs), times out after io_timeout=3 s, is
# aborted, times out again and the controller is reset; the read is then
# retried and completes, probe ends with the disk added, and the disk
# works. The host checks the order and timing of the console lines.
timeout=3
echo "@@FAULT 5 start"
bounded fault5 $((4 * timeout + $(scaled 30))) taskset -c 0 insmod $MOD fault=5 io_timeout=$timeout ||
	stop_test "insmod fault=5" $((4 * timeout + $(scaled 30)))
bounded_ok "fault=5 insmod succeeds once the stalled read was recovered" fault5
check "fault=5 leaves the controller bound" [ "$(bound_count)" -eq 1 ]
disk=$(rsnvme_disk)
if is_bdev "fault=5 disk usable after the recovery" "$disk"; then
	pattern_write "$disk" 1000005 0 $((1 * MiB)) 64k
	check_pattern "fault=5 pattern written after the recovery reads back" "$disk" 1000005 0 $((1 * MiB))
fi
rmmod rsnvme
echo "@@FAULT 5 end"

# fault=6: every reset after probe fails to bring the controller back. A
# reset through sysfs must fail with EIO; the controller is then dead: I/O
# fails with EIO at once, and unbind and rmmod return.
echo "@@FAULT 6 start"
check "fault=6 insmod" insmod $MOD fault=6
disk=$(rsnvme_disk)
bdf=$(ls $DRV | grep '^0000:' | head -n1)
if is_bdev "fault=6 disk" "$disk"; then
	pattern_write "$disk" 1000006 0 $((1 * MiB)) 64k
	check_pattern "fault=6 pattern reads back before the reset" "$disk" 1000006 0 $((1 * MiB))
fi
bounded reset6 "$(scaled 30)" drv_reset "$bdf" || stop_test "fault=6 reset" "$(scaled 30)"
echo "@@RESET6 rc=$bounded_rc $(tr '\n' ' ' </tmp/reset6.bg)"
check "fault=6 reset through sysfs fails with EIO" \
	[ "$bounded_rc" -ne 0 -a -n "$(grep 'Input/output error' /tmp/reset6.bg)" ]
for op in read write; do
	if [ $op = read ]; then
		set -- dd if=$BDEV of=/dev/null bs=4k count=1 iflag=direct
	else
		set -- dd if=/dev/zero of=$BDEV bs=4k count=1 oflag=direct
	fi
	t0=$(uptime_s)
	bounded dead$op "$(scaled 10)" on_bdev "fault=6 $op" "$disk" "$@" ||
		stop_test "a $op of the dead controller's disk" "$(scaled 10)"
	echo "@@DEAD $op rc=$bounded_rc in $(since "$t0") s: $(tr '\n' ' ' </tmp/dead$op.bg)"
	check "fault=6 $op of the dead controller's disk fails with EIO within $(scaled 10) s" \
		[ "$bounded_rc" -ne 0 -a -n "$(grep 'Input/output error' /tmp/dead$op.bg)" ]
done
bounded unbind6 "$(scaled 30)" drv_unbind "$bdf" || stop_test "unbind of the dead controller" "$(scaled 30)"
bounded_ok "fault=6 unbind of the dead controller" unbind6
check "fault=6 disk gone after unbind" [ ! -b "$disk" ]
bounded rmmod6 "$(scaled 30)" rmmod rsnvme || stop_test "rmmod after fault=6" "$(scaled 30)"
bounded_ok "fault=6 rmmod" rmmod6
echo "@@FAULT 6 end"

insmod $MOD
disk=$(rsnvme_disk)
check "read after fault=5 and fault=6" on_bdev "read after faults" "$disk" \
	dd if=$BDEV of=/dev/null bs=4k count=1 iflag=direct
rmmod rsnvme
dma_allocations
kmemleak_report
