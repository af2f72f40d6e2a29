# SPDX-License-Identifier: GPL-2.0
# Passthrough commands that stall (issue 21). With fault=9 rsnvme never
# announces a command from user space to the controller (it logs each as
# "not sent (injected)"), so each stays outstanding until a reset takes
# it back (status 0x371, host aborted) or its own timeout resets the
# controller. None may hold off a reset or wait for another:
#  1. a stalled Identify (10 minute timeout), then a reset_controller
#     write: the write returns and the Identify ends host-aborted;
#  2. eight stalled Identify commands and eight stalled Reads at once:
#     all sixteen reach the driver before anything ends them, then one
#     reset takes them all back;
#  3. a stalled Identify and a stalled Read with a 3 s timeout: each
#     one's timeout resets the controller, which takes it back;
#  4. data written before reads back after all that;
#  5. on a partition, passthrough needs CAP_SYS_ADMIN;
#  6. a namespace attached during a reset gets a working disk after it;
#     an event during a reset is read once the reset is done.
# The host (tests/mgmt_tests.py) checks the @@STALL lines and the log.
. /tests/lib.sh

seed=${rsnvme_seed:-9753102}
check "load rsnvme (fault=9)" insmod $MOD fault=9
drv_wait_disks 1
bdf=$(ls $DRV | grep '^0000:' | head -n1)
dev=/dev/rsnvme0
t=$(($(scaled 20) * 10))
while [ ! -c $dev ] && [ $t -gt 0 ]; do usleep 100000; t=$((t - 1)); done
disk=$(rsnvme_disk) || disk=none
pattern_write "$disk" "$seed" 0 2097152 || fail "pattern write" "$(cat /tmp/dd.err)"

# count PATTERN: how many kernel log lines hold PATTERN.
count() { dmesg | grep -c "$1"; }

# wait_count PATTERN N: waits (bounded) until the log has N such lines.
wait_count() {
	local i=0 s
	s=$(scaled 30)
	while [ "$(count "$1")" -lt "$2" ]; do
		[ $i -ge $((s * 10)) ] && { fail "waiting for '$1'" "$(count "$1") of $2 after $s s"; return 1; }
		usleep 100000
		i=$((i + 1))
	done
}

LOST="from user space not sent (injected)"

# wait_lost N: waits (bounded) until N commands were kept from the
# controller in all, and says how many.
wait_lost() {
	wait_count "$LOST" "$1"
	echo "@@STALL lost $(count "$LOST") of $1"
}

# finish NAME PID: waits (bounded) for a ptstall run and prints its lines
# as "@@STALL NAME ...".
finish() {
	wait_pid "$2" "$(scaled 60)" || { stuck "$1" "$2"; kill "$2"; }
	sed -n "s/^@@STALL /@@STALL $1 /p" /tmp/"$1".out
}

ptstall $dev 1 600000 admin >/tmp/one.out 2>&1 &
p=$!
wait_lost 1
drv_reset "$bdf"
echo "@@STALL reset-one rc=$?"
finish one $p

ptstall $dev 8 600000 admin >/tmp/admin8.out 2>&1 &
pa=$!
ptstall $dev 8 600000 io >/tmp/io8.out 2>&1 &
pb=$!
wait_lost 17
drv_reset "$bdf"
echo "@@STALL reset-many rc=$?"
finish admin8 $pa
finish io8 $pb

ptstall $dev 1 3000 admin >/tmp/tadmin.out 2>&1 &
finish tadmin $!
ptstall $dev 1 3000 io >/tmp/tio.out 2>&1 &
finish tio $!

check_pattern "data intact after the stalled commands" "$disk" "$seed" 0 1048576

# 4b. Unbinding with a stalled Identify and a stalled Read (each holds its
# queue, so the unbind does not wait for them): both are taken back at
# once, host-aborted, not at their timeout after the device is released.
ptstall $dev 1 600000 admin >/tmp/gone-admin.out 2>&1 &
pa=$!
ptstall $dev 1 600000 io >/tmp/gone-io.out 2>&1 &
pb=$!
wait_lost 21
bounded unbind "$(scaled 60)" sh -c "echo $bdf >$DRV/unbind" &&
	bounded_ok "unbind rsnvme with stalled commands" unbind
finish gone-admin $pa
finish gone-io $pb
check "unload rsnvme" rmmod rsnvme

# 5. A partition (an MBR with one Linux partition at sector 2048 of 4096
# sectors, found when the module is loaded again): passthrough there
# needs CAP_SYS_ADMIN, as with the C driver.
{
	head -c 446 /dev/zero
	printf '\000\000\000\000\203\000\000\000\000\010\000\000\000\020\000\000'
	head -c 48 /dev/zero
	printf '\125\252'
} >/tmp/mbr.bin
check "load rsnvme" insmod $MOD
drv_wait_disks 1
disk=$(rsnvme_disk) || disk=none
on_bdev "write the partition table" "$disk" dd of=$BDEV if=/tmp/mbr.bin bs=512 count=1 oflag=direct 2>/dev/null
check "unload rsnvme" rmmod rsnvme
check "load rsnvme again" insmod $MOD
drv_wait_disks 1
wait_bdev "${disk}p1" 10 && /bin/passthru-bad "${disk}p1" part
check "unload rsnvme" rmmod rsnvme

# 6. A SMART event during a reset (fault=10: each reset waits 3 s with the
# admin queue held before it disables the controller): its log page is
# read once the reset is done, so the controller reports the next event.
# The host sets the warning when it sees an @@QMP line.
check "load rsnvme (fault=10)" insmod $MOD fault=10
drv_wait_disks 1

# A namespace attached (Namespace Attachment through nvme-cli's
# admin-passthru) while a reset runs: the command waits for the reset,
# then the event adds the disk, which works.
cntlid=$(cat /sys/class/misc/rsnvme0/cntlid)
printf "\\001\\000\\$(printf %o $((cntlid & 255)))\\$(printf %o $((cntlid >> 8)))" >/tmp/ctrl.bin
dd if=/dev/zero bs=4092 count=1 2>/dev/null >>/tmp/ctrl.bin
asked=$(count "resetting the controller: requested through sysfs")
drv_reset "$bdf" &
rp=$!
wait_count "resetting the controller: requested through sysfs" $((asked + 1))
/usr/sbin/nvme admin-passthru $dev --opcode=0x15 --namespace-id=2 --cdw10=0 \
	--data-len=4096 -w -i /tmp/ctrl.bin >/tmp/attach.out 2>&1
echo "@@STALL attach rc=$? $(tr '\n' ' ' </tmp/attach.out)"
wait_pid $rp "$(scaled 60)" || stuck reset-attach $rp
wait $rp
echo "@@STALL reset-attach rc=$?"
if wait_bdev /dev/rsnvme0n2 20; then
	pattern_write /dev/rsnvme0n2 "$seed" 0 1048576 || fail "pattern write n2" "$(cat /tmp/dd.err)"
	check_pattern "namespace 2, attached during a reset, reads back" /dev/rsnvme0n2 "$seed" 0 1048576
fi
check_pattern "namespace 1 still reads back" "$disk" "$seed" 1048576 1048576

asked=$(count "resetting the controller: requested through sysfs")
drv_reset "$bdf" &
rp=$!
wait_count "resetting the controller: requested through sysfs" $((asked + 1))
echo "@@QMP smart-warning"
wait_pid $rp "$(scaled 60)" || stuck reset-slow $rp
wait $rp
echo "@@STALL reset-slow rc=$?"
wait_count "SMART/health critical warning" 1
echo "@@QMP smart-warning-2"
wait_count "SMART/health critical warning" 2
kmemleak_report
check "unload rsnvme" rmmod rsnvme
echo "@@IO_END"
