# SPDX-License-Identifier: GPL-2.0
# Namespaces that come and go while rsnvme is bound (issue 11): one
# controller in an NVM subsystem with namespace 1 attached and namespace 2
# detached. First namespace 2 is attached and detached with a raw
# Namespace Attachment command (nvme admin-passthru, which asks for no
# rescan): the controller's Namespace Attribute Changed event alone must
# make the disk come and go. Then nvme-cli attaches it, detaches it,
# attaches it again and formats it with 4 KiB blocks, each followed by
# `nvme ns-rescan` (NVME_IOCTL_RESCAN); the disks must follow without a
# rebind (@@DISKS lines for the host), data written before a detach is
# there after the next attach, and the reformatted namespace gets a disk
# with 4 KiB blocks. Last, the host sets a SMART critical warning in QEMU
# (@@QMP line): the driver must log it from the event.
. /tests/lib.sh

NVME=/usr/sbin/nvme
seed=${rsnvme_seed:-2468013}
check "load rsnvme" insmod $MOD
drv_wait_disks 1
dev=/dev/rsnvme0
t=$(($(scaled 20) * 10))
while [ ! -c $dev ] && [ $t -gt 0 ]; do usleep 100000; t=$((t - 1)); done
cntlid=$(cat /sys/class/misc/rsnvme0/cntlid)
disks() { echo "@@DISKS $1 $(drv_disks | tr '\n' ' ')"; }
disks start

# wait_disk NAME PRESENT: waits (bounded) until /sys/block/NAME exists (1)
# or not (0).
wait_disk() {
	local i=0 s
	s=$(scaled 20)
	while :; do
		if [ -e "/sys/block/$1" ]; then [ "$2" = 1 ] && return 0; else [ "$2" = 0 ] && return 0; fi
		[ $i -ge $((s * 10)) ] && break
		usleep 100000
		i=$((i + 1))
	done
	fail "waiting for $1 to be $([ "$2" = 1 ] && echo present || echo gone)" "after $s s"
	return 1
}

# step NAME NVME-ARGS...: one nvme-cli command, then a rescan.
step() {
	local what=$1 rc
	shift
	$NVME "$@" >/tmp/cli.out 2>&1
	rc=$?
	echo "@@STEP $what rc=$rc $(tr '\n' ' ' </tmp/cli.out)"
	$NVME ns-rescan $dev >/tmp/cli.out 2>&1
	echo "@@STEP $what-rescan rc=$? $(tr '\n' ' ' </tmp/cli.out)"
}

# attach_raw SEL: Namespace Attachment (0x15) of namespace 2 to this
# controller, SEL 0 attaches, 1 detaches; a controller list of one.
attach_raw() {
	printf "\\001\\000\\$(printf %o $((cntlid & 255)))\\$(printf %o $((cntlid >> 8)))" >/tmp/ctrl.bin
	dd if=/dev/zero bs=4092 count=1 2>/dev/null >>/tmp/ctrl.bin
	$NVME admin-passthru $dev --opcode=0x15 --namespace-id=2 --cdw10="$1" \
		--data-len=4096 -w -i /tmp/ctrl.bin >/tmp/cli.out 2>&1
	echo "@@STEP raw-$1 rc=$? $(tr '\n' ' ' </tmp/cli.out)"
}
attach_raw 0
wait_disk rsnvme0n2 1 && wait_bdev /dev/rsnvme0n2
disks event-attached
attach_raw 1
wait_disk rsnvme0n2 0
disks event-detached

step attach attach-ns $dev -n 2 -c "$cntlid"
wait_disk rsnvme0n2 1 && wait_bdev /dev/rsnvme0n2
disks attached
echo "@@SIZE attached $(cat /sys/block/rsnvme0n2/size) $(disk_lbs rsnvme0n2)"
pattern_write /dev/rsnvme0n2 "$seed" 1048576 65536
check_pattern "pattern on the attached namespace" /dev/rsnvme0n2 "$seed" 1048576 65536

step detach detach-ns $dev -n 2 -c "$cntlid"
wait_disk rsnvme0n2 0
disks detached

step reattach attach-ns $dev -n 2 -c "$cntlid"
wait_disk rsnvme0n2 1 && wait_bdev /dev/rsnvme0n2
disks reattached
check_pattern "pattern kept across detach and attach" /dev/rsnvme0n2 "$seed" 1048576 65536

# LBA format 4 of QEMU's namespaces: 4096-byte blocks, no metadata.
step format format $dev -n 2 --lbaf=4 --force
wait_disk rsnvme0n2 1 && wait_bdev /dev/rsnvme0n2
t=$(($(scaled 20) * 10))
while [ "$(disk_lbs rsnvme0n2 2>/dev/null)" != 4096 ] && [ $t -gt 0 ]; do usleep 100000; t=$((t - 1)); done
disks formatted
echo "@@SIZE formatted $(cat /sys/block/rsnvme0n2/size) $(disk_lbs rsnvme0n2)"
pattern_write /dev/rsnvme0n2 "$seed" 0 65536
check_pattern "pattern on the reformatted namespace" /dev/rsnvme0n2 "$seed" 0 65536

# Namespace 1 was left alone throughout.
pattern_write /dev/rsnvme0n1 "$seed" 0 65536
check_pattern "pattern on namespace 1" /dev/rsnvme0n1 "$seed" 0 65536

# A SMART critical warning raised in QEMU (temperature): logged from the
# event, without any command from here.
echo "@@QMP smart-warning"
t=$(($(scaled 20) * 10))
while ! dmesg | grep -q "SMART/health critical warning" && [ $t -gt 0 ]; do
	usleep 100000
	t=$((t - 1))
done
dmesg | grep -q "SMART/health critical warning" && pass "critical warning logged" ||
	fail "critical warning logged" "no SMART/health line after $(scaled 20) s"

kmemleak_clear
check "unload rsnvme" rmmod rsnvme
kmemleak_report
echo "@@IO_END"
