# SPDX-License-Identifier: GPL-2.0
# The Abort Command Limit (issue 21): many I/O commands time out at once
# and rsnvme must never have more Aborts outstanding than Identify
# Controller's ACL + 1 allows (and at most 4). The block layer's
# fail_io_timeout hides the next $rsnvme_fire completions on two disks
# under fio (iodepth 16 per job), so that many requests time out within
# moments of each other; with fault=0x200 rsnvme keeps each Abort
# outstanding until the next reset (QEMU 7.2 answers an Abort at once:
# without it no two would ever be outstanding), so the limit is reached
# and a timeout beyond it resets the controller. fio must verify all it
# wrote and the patterns written before must read back. The host counts
# the Abort commands in QEMU's trace between the controller's enables.
. /tests/lib.sh

NVME=/usr/sbin/nvme
timeout=$(scaled "${rsnvme_timeout:-3}")
fire=${rsnvme_fire:-12}
F=/sys/kernel/debug/fail_io_timeout
bdf=$(nvme_devices | head -n1)
trace_mark "$bdf"
check "load rsnvme (fault=0x200: Aborts kept outstanding)" \
	insmod $MOD fault=0x200 io_timeout="$timeout"
drv_wait_disks 2
disks=$(drv_disks)
t=$(($(scaled 20) * 10))
while [ ! -c /dev/rsnvme0 ] && [ $t -gt 0 ]; do usleep 100000; t=$((t - 1)); done
run_cli rs id-ctrl id-ctrl /dev/rsnvme0 -o json
patterns_before $disks

check "the kernel has fail_io_timeout (CONFIG_FAIL_IO_TIMEOUT, debugfs)" [ -d $F ]
echo 0 >$F/probability
echo 1 >$F/verbose
echo 1 >$F/interval
echo "$fire" >$F/times
for d in $disks; do echo 1 >/sys/block/"$d"/io-timeout-fail; done
echo 100 >$F/probability
echo "@@FAIL_IO_TIMEOUT armed: times=$(cat $F/times)"

rec_jobfile "" $((4 * MiB)) $disks >/tmp/aborts.fio
fio_start aborts /tmp/aborts.fio
fio_end aborts $((4 * timeout + $(scaled 120)))
fio_check aborts /tmp/aborts.fio
left=$(cat $F/times)
echo "@@FAIL_IO_TIMEOUT left: times=$left"
check "fail_io_timeout fired $fire times" [ "$left" = 0 ]
echo 0 >$F/probability
for d in $disks; do echo 0 >/sys/block/"$d"/io-timeout-fail; done
patterns_after "after the timeouts" $disks
kmemleak_clear
check "unload rsnvme" rmmod rsnvme
kmemleak_report
echo "@@IO_END"
