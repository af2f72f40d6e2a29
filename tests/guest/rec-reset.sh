# SPDX-License-Identifier: GPL-2.0
# Controller resets under load (issue 8). fio writes with crc32c headers and
# verifies as it goes (verify_backlog) over two namespaces, one job per vCPU
# and disk, while the controller is reset through sysfs $rsnvme_resets
# times (default 20): each reset waits until every disk has completed more
# writes since the one before (a bounded wait, not a fixed time), so that
# each one hits fio at work and I/O is seen to resume after it. Every reset
# must succeed and return, fio must then end on SIGINT with no error and no
# verify complaint, a pattern written before must be intact and one written
# after must read back. The host checks the driver's reset lines and QEMU's
# trace of controller enables (tests/recovery_tests.py).
. /tests/lib.sh

resets=${rsnvme_resets:-20}
bound=$(scaled 30)
trace_mark "$(nvme_devices)"
check "load $IO_DRIVER driver with 2 disks" drv_load 2
disks=$(drv_disks)
for d in $disks; do disk_info "$d"; done
bdf=$(disk_bdf "${disks%% *}")
patterns_before $disks

rec_jobfile 600 "" $disks >/tmp/resets.fio
progress_mark $disks
fio_start resets /tmp/resets.fio
done_ok=0
i=1
while [ $i -le "$resets" ]; do
	wait_progress "reset $i, fio doing I/O before it" 50 "$(scaled 60)" $disks || break
	t0=$(uptime_s)
	bounded reset$i "$bound" drv_reset "$bdf" || stop_test "reset $i" "$bound"
	echo "@@RESET $i rc=$bounded_rc $t0 $(uptime_s) $(tr '\n' ' ' </tmp/reset$i.bg)"
	[ "$bounded_rc" -eq 0 ] && done_ok=$((done_ok + 1))
	progress_mark $disks
	i=$((i + 1))
done
echo "@@RESETS ok=$done_ok of $resets"
check "$resets resets through sysfs under fio succeeded" [ "$done_ok" -eq "$resets" ]
wait_progress "fio doing I/O after the last reset" 50 "$(scaled 60)" $disks &&
	pass "fio doing I/O after the last reset"
fio_end resets "$(scaled 60)" INT
fio_check_stopped resets $(($(nproc) * $(echo $disks | wc -w)))
patterns_after "after the resets" $disks
check "unload $IO_DRIVER driver" drv_unload
echo "@@IO_END"
