# SPDX-License-Identifier: GPL-2.0
# Real suspend-to-RAM under load (issue 10). As pm-sleep.sh, but with no
# pm_test level: "mem" with mem_sleep "deep" puts the whole guest in ACPI
# S3, and QEMU resets the devices as hardware loses power. Before each
# cycle the guest prints @@SUSPEND; the host waits until QEMU says the
# guest is suspended and wakes it over QMP (system_wakeup).
. /tests/lib.sh

cycles=${rsnvme_cycles:-3}
bound=$(scaled 120)
echo "@@PM states '$(cat /sys/power/state)' mem_sleep '$(cat /sys/power/mem_sleep)'"
check "the guest offers suspend-to-RAM" grep -qw deep /sys/power/mem_sleep
echo deep >/sys/power/mem_sleep
echo none >/sys/power/pm_test
trace_mark "$(nvme_devices)"
check "load $IO_DRIVER driver with 2 disks" drv_load 2
disks=$(drv_disks)
for d in $disks; do disk_info "$d"; done
patterns_before $disks

rec_jobfile 600 "" $disks >/tmp/s3.fio
progress_mark $disks
fio_start s3 /tmp/s3.fio
done_ok=0
i=1
while [ $i -le "$cycles" ]; do
	wait_progress "S3 $i, fio doing I/O before it" 50 "$(scaled 60)" $disks || break
	t0=$(uptime_s)
	echo "@@SUSPEND $i"
	bounded s3-$i "$bound" sh -c 'echo mem >/sys/power/state' || stop_test "S3 $i" "$bound"
	echo "@@S3 $i rc=$bounded_rc $t0 $(uptime_s) $(tr '\n' ' ' </tmp/s3-$i.bg)"
	[ "$bounded_rc" -eq 0 ] && done_ok=$((done_ok + 1))
	progress_mark $disks
	i=$((i + 1))
done
echo "@@S3S ok=$done_ok of $cycles"
check "$cycles suspend-to-RAM cycles under fio returned 0" [ "$done_ok" -eq "$cycles" ]
wait_progress "fio doing I/O after the last resume" 50 "$(scaled 60)" $disks &&
	pass "fio doing I/O after the last resume"
fio_end s3 "$(scaled 60)" INT
fio_check_stopped s3 $(($(nproc) * $(echo $disks | wc -w)))
patterns_after "after suspend-to-RAM" $disks
check "unload $IO_DRIVER driver" drv_unload
echo "@@IO_END"
