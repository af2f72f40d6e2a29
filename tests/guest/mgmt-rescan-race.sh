# SPDX-License-Identifier: GPL-2.0
# Namespace rescans racing a reset and a suspend (issue 21), on a
# controller in an NVM subsystem with namespace 1 attached and 2 and 3
# detached. rsnvme is loaded with fault=10 (each reset waits 3 s holding
# the queues); while flag 0x400 is set in its `fault` parameter, a rescan
# that has identified the namespaces waits until the controller leaves
# `live` before it changes any disk, so the change happens during the
# reset or the suspend:
#  1. namespace 2 attached (raw Namespace Attachment): the event's rescan
#     waits, `nvme reset` (NVME_IOCTL_RESET) lets it go on, and it adds
#     namespace 2's disk while the reset holds the queues; meanwhile
#     `nvme ns-rescan` is started;
#  2. that ioctl rescan waits in turn, and a reset through sysfs lets it
#     go on during that reset;
#  3. namespace 3 attached: the event's rescan waits and a system suspend
#     (pm_test "devices") lets it go on, so namespace 3's disk is added
#     while the controller is suspended, its queue joining the tag set
#     held quiesced; after the resume it must work.
# Every disk's data is then written and read back byte for byte. The host
# (tests/mgmt_tests.py) checks the @@RACE lines, the order of the driver's
# lines and QEMU's trace.
. /tests/lib.sh

NVME=/usr/sbin/nvme
seed=${rsnvme_seed:-1357911}
P=/sys/module/rsnvme/parameters/fault
WAITING="rescan: waiting for a reset or suspend (injected)"
ASKED_IOCTL="resetting the controller: requested through ioctl"
check "load rsnvme (fault=10)" insmod $MOD fault=10
drv_wait_disks 1
bdf=$(ls $DRV | grep '^0000:' | head -n1)
dev=/dev/rsnvme0
t=$(($(scaled 20) * 10))
while [ ! -c $dev ] && [ $t -gt 0 ]; do usleep 100000; t=$((t - 1)); done
trace_mark "$bdf"
cntlid=$(cat /sys/class/misc/rsnvme0/cntlid)
pattern_write /dev/rsnvme0n1 "$seed" 0 1048576

# count PATTERN: kernel log lines holding PATTERN.
count() { dmesg | grep -c "$1"; }

# wait_count PATTERN N: waits (bounded) until N kernel log lines hold it.
wait_count() {
	local i=0 s
	s=$(scaled 30)
	while [ "$(count "$1")" -lt "$2" ]; do
		if [ $i -ge $((s * 10)) ]; then
			fail "waiting for '$1'" "$(count "$1") of $2 after $s s"
			return 1
		fi
		usleep 100000
		i=$((i + 1))
	done
}

# attach NSID: Namespace Attachment (attach) of NSID to this controller,
# through admin-passthru, which asks for no rescan: the controller's
# Namespace Attribute Changed event makes the driver rescan.
attach() {
	printf "\\001\\000\\$(printf %o $((cntlid & 255)))\\$(printf %o $((cntlid >> 8)))" >/tmp/ctrl.bin
	dd if=/dev/zero bs=4092 count=1 2>/dev/null >>/tmp/ctrl.bin
	$NVME admin-passthru $dev --opcode=0x15 --namespace-id="$1" --cdw10=0 \
		--data-len=4096 -w -i /tmp/ctrl.bin >/tmp/attach.out 2>&1
	echo "@@RACE attach-$1 rc=$? $(tr '\n' ' ' </tmp/attach.out)"
}

# 1. The event's rescan during a reset through NVME_IOCTL_RESET; an
# `nvme ns-rescan` started during it waits for the reset (the ioctls
# share the handle's lock), then identifies the namespaces and waits.
echo $((10 | 0x400)) >$P
attach 2
wait_count "$WAITING" 1
asked=$(count "$ASKED_IOCTL")
$NVME reset $dev >/tmp/reset.out 2>&1 &
rp=$!
wait_count "$ASKED_IOCTL" $((asked + 1))
$NVME ns-rescan $dev >/tmp/rescan.out 2>&1 &
sp=$!
wait_pid $rp "$(scaled 60)" || stuck reset-ioctl $rp
wait $rp
echo "@@RACE reset-ioctl rc=$? $(tr '\n' ' ' </tmp/reset.out)"
wait_bdev /dev/rsnvme0n2 20

# 2. The ioctl's rescan during a reset through sysfs.
wait_count "$WAITING" 2
drv_reset "$bdf"
echo "@@RACE reset-sysfs rc=$?"
wait_pid $sp "$(scaled 60)" || stuck ns-rescan $sp
wait $sp
echo "@@RACE ns-rescan rc=$? $(tr '\n' ' ' </tmp/rescan.out)"
echo 10 >$P
echo "@@DISKS after-reset $(drv_disks | tr '\n' ' ')"

# 3. The event's rescan during a system suspend (devices suspended for
# pm_test_delay seconds, then resumed).
state=freeze
grep -qw mem /sys/power/state && state=mem
echo devices >/sys/power/pm_test
echo "$(scaled 3)" >/sys/module/suspend/parameters/pm_test_delay
echo $((10 | 0x400)) >$P
attach 3
wait_count "$WAITING" 3
echo "$state" >/sys/power/state
echo "@@RACE suspend rc=$? ($state, pm_test devices)"
echo 10 >$P
echo none >/sys/power/pm_test
wait_bdev /dev/rsnvme0n3 20
echo "@@DISKS end $(drv_disks | tr '\n' ' ')"

for n in 2 3; do
	pattern_write /dev/rsnvme0n$n $((seed + n)) 0 1048576
	check_pattern "namespace $n, added during the $([ $n = 2 ] && echo reset || echo suspend), reads back" \
		/dev/rsnvme0n$n $((seed + n)) 0 1048576
done
check_pattern "namespace 1 reads back what was written before" /dev/rsnvme0n1 "$seed" 0 1048576
pattern_write /dev/rsnvme0n1 $((seed + 1)) 1048576 1048576
check_pattern "namespace 1 reads back a new pattern" /dev/rsnvme0n1 $((seed + 1)) 1048576 1048576
kmemleak_clear
check "unload rsnvme" rmmod rsnvme
kmemleak_report
echo "@@IO_END"
