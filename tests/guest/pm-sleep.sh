# SPDX-License-Identifier: GPL-2.0
# System sleep under load (issue 10). fio writes with crc32c headers and
# verifies as it goes over two namespaces, one job per vCPU and disk, while
# the system goes to sleep $rsnvme_cycles times (default 10): with
# /sys/power/pm_test at "devices", then "platform", in turn, the kernel
# freezes the tasks, suspends every device (the driver's suspend), stops
# there and resumes them all (the driver's resume). The state is "mem" when
# the guest has it (ACPI S3 on the pc machine), else "freeze". Each cycle
# waits until fio made progress since the one before (bounded), so that
# each one hits fio at work and I/O is seen to go on after it. Every cycle
# must return 0, fio must end on SIGINT with no error and no verify
# complaint, a pattern written before must be intact and one written after
# must read back. The host checks the driver's suspend and resume lines.
. /tests/lib.sh

kmemleak_clear
cycles=${rsnvme_cycles:-10}
bound=$(scaled 60)
state=freeze
grep -qw mem /sys/power/state && state=mem
echo "@@PM states '$(cat /sys/power/state)' tests '$(cat /sys/power/pm_test)' using $state"
# No pause at the test level: the driver's resume is what is tested.
echo 0 >/sys/module/suspend/parameters/pm_test_delay
trace_mark "$(nvme_devices)"
check "load $IO_DRIVER driver with 2 disks" drv_load 2
disks=$(drv_disks)
for d in $disks; do disk_info "$d"; done
patterns_before $disks

sleep_once() {
	echo "$1" >/sys/power/pm_test && echo "$2" >/sys/power/state
}

rec_jobfile 600 "" $disks >/tmp/sleep.fio
progress_mark $disks
fio_start sleep /tmp/sleep.fio
done_ok=0
i=1
while [ $i -le "$cycles" ]; do
	level=devices
	[ $((i % 2)) -eq 0 ] && level=platform
	wait_progress "sleep $i, fio doing I/O before it" 50 "$(scaled 60)" $disks || break
	t0=$(uptime_s)
	bounded sleep$i "$bound" sleep_once $level $state || stop_test "sleep $i" "$bound"
	echo "@@SLEEP $i $state $level rc=$bounded_rc $t0 $(uptime_s) $(tr '\n' ' ' </tmp/sleep$i.bg)"
	[ "$bounded_rc" -eq 0 ] && done_ok=$((done_ok + 1))
	progress_mark $disks
	i=$((i + 1))
done
echo "@@SLEEPS ok=$done_ok of $cycles"
check "$cycles sleep cycles ($state, pm_test devices and platform) under fio returned 0" \
	[ "$done_ok" -eq "$cycles" ]
wait_progress "fio doing I/O after the last sleep" 50 "$(scaled 60)" $disks &&
	pass "fio doing I/O after the last sleep"
fio_end sleep "$(scaled 60)" INT
fio_check_stopped sleep $(($(nproc) * $(echo $disks | wc -w)))
patterns_after "after the sleep cycles" $disks
check "unload $IO_DRIVER driver" drv_unload

# rsnvme's test build: with fault=6 every restart of the controller fails,
# the resume's too. The sleep cycle must still return 0; the controller is
# then dead: I/O fails with EIO at once, unbind and rmmod return.
if [ "$IO_DRIVER" != c ]; then
	echo "@@FAULT 6 start"
	check "fault=6 insmod" insmod $MOD fault=6
	disk=$(rsnvme_disk)
	bounded dead-sleep "$bound" sleep_once devices $state || stop_test "sleep with fault=6" "$bound"
	echo "@@SLEEP dead $state devices rc=$bounded_rc $(tr '\n' ' ' </tmp/dead-sleep.bg)"
	t0=$(uptime_s)
	bounded deadread "$(scaled 10)" on_bdev "fault=6 read" "$disk" \
		dd if=$BDEV of=/dev/null bs=4k count=1 iflag=direct ||
		stop_test "a read of the dead controller's disk" "$(scaled 10)"
	echo "@@DEAD read rc=$bounded_rc in $(since "$t0") s: $(tr '\n' ' ' </tmp/deadread.bg)"
	check "fault=6 read after the failed resume fails with EIO within $(scaled 10) s" \
		[ "$bounded_rc" -ne 0 -a -n "$(grep 'Input/output error' /tmp/deadread.bg)" ]
	bounded rmmod6 "$(scaled 30)" rmmod rsnvme || stop_test "rmmod after fault=6" "$(scaled 30)"
	bounded_ok "fault=6 rmmod after the failed resume" rmmod6
	echo "@@FAULT 6 end"
fi
echo none >/sys/power/pm_test
dma_allocations
kmemleak_report
echo "@@IO_END"
