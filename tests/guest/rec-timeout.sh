# SPDX-License-Identifier: GPL-2.0
# Lost completions (issue 8): the block layer's fail_io_timeout fault
# injection (CONFIG_FAIL_IO_TIMEOUT) makes the driver drop the next
# $rsnvme_fire completions (default 3) on two namespaces whose I/O timeout
# is short ($rsnvme_timeout s, scaled), as if their interrupts were lost;
# it is armed before fio starts, so they are fio's first. The requests must
# time out and be recovered (QEMU's controller does not abort a command
# that has completed: the abort times out too and the controller is reset)
# while fio goes on: fio must write and verify its whole region without
# an error, every planted fault must have fired, and patterns must be
# intact and read back. The host checks the console's FAULT_INJECTION
# lines, QEMU's trace (an Abort, the controller enabled again) and the
# driver's timeout lines.
. /tests/lib.sh

timeout=$(scaled "${rsnvme_timeout:-3}")
fire=${rsnvme_fire:-3}
F=/sys/kernel/debug/fail_io_timeout
trace_mark "$(nvme_devices)"
check "load $IO_DRIVER driver with 2 disks" drv_load 2
disks=$(drv_disks)
for d in $disks; do disk_info "$d"; done
set_io_timeout "$timeout" $disks
patterns_before $disks

check "the kernel has fail_io_timeout (CONFIG_FAIL_IO_TIMEOUT, debugfs)" [ -d $F ]
# One console line per faked timeout, without a stack dump (verbose=2
# would print a "Call Trace:", which fails the run).
echo 0 >$F/probability
echo 1 >$F/verbose
echo 1 >$F/interval
echo "$fire" >$F/times
for d in $disks; do
	echo 1 >/sys/block/"$d"/io-timeout-fail
	check "$d io-timeout-fail on" [ "$(cat /sys/block/"$d"/io-timeout-fail)" = 1 ]
done
echo 100 >$F/probability
echo "@@FAIL_IO_TIMEOUT armed: times=$(cat $F/times) probability=$(cat $F/probability)"

rec_jobfile "" $((4 * MiB)) $disks >/tmp/timeout.fio
t0=$(uptime_s)
fio_start timeout /tmp/timeout.fio
# Each lost completion takes two timeouts (the abort's too) and a reset.
fio_end timeout $((4 * timeout + $(scaled 120)))
echo "@@TIME fio $t0 $(uptime_s)"
fio_check timeout /tmp/timeout.fio
left=$(cat $F/times)
echo "@@FAIL_IO_TIMEOUT left: times=$left"
check "fail_io_timeout fired $fire times" [ "$left" = 0 ]
echo 0 >$F/probability
for d in $disks; do echo 0 >/sys/block/"$d"/io-timeout-fail; done
patterns_after "after the timeouts" $disks
unload_after_timeout
echo "@@IO_END"
