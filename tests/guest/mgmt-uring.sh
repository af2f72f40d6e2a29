# SPDX-License-Identifier: GPL-2.0
# io_uring passthrough on a namespace's generic character device (issue
# 21): two controllers alike but for their serial numbers, one bound to
# the C driver (/dev/ng<N>n1) and one to rsnvme (/dev/rsng<N>n1), both
# loaded with poll_queues=1. On each generic device:
#  - the ioctls: NVME_IOCTL_ID (nvme get-ns-id), Identify Namespace
#    (nvme id-ns, an admin command), io-passthru writing a pattern that is
#    read back from the block device and reading one written there (md5);
#  - fio's io_uring_cmd engine (NVME_URING_CMD_IO on a SQE128/CQE32 ring)
#    writing and verifying (crc32c) the whole namespace, interrupt-driven
#    and polled (hipri=1: IORING_SETUP_IOPOLL, uring_cmd_iopoll), each
#    checked again from the block device by fio verify_only (libaio):
#    the data went to the blocks it was meant for. Each run is framed by
#    marks in QEMU's trace, so the host can tell which queues it used.
# Then, on rsnvme only, the controller is unbound while fio io_uring_cmd
# I/O is in flight (a run of 10 minutes): fio must end at once with an
# error (bounded), the generic device go, and come back on bind;
# kmemleak must find nothing after the unload.
. /tests/lib.sh

c_bdf=${rsnvme_c_bdf:?}
rs_bdf=${rsnvme_rs_bdf:?}
seed=${rsnvme_seed:-1234567}
ncpu=$(nproc)
NVME=/usr/sbin/nvme
echo nvme >"/sys/bus/pci/devices/$c_bdf/driver_override"
echo rsnvme >"/sys/bus/pci/devices/$rs_bdf/driver_override"
check "load both drivers with poll_queues=1" sh -c "insmod /lib/modules/nvme-core.ko &&
	insmod /lib/modules/nvme.ko poll_queues=1 && insmod $MOD poll_queues=1"
drv_wait_disks 1
IO_DISK_RE='^nvme[0-9]+n[0-9]+$' drv_wait_disks 1
check "fio has the io_uring_cmd engine" sh -c "$FIO --enghelp=io_uring_cmd >/dev/null"

# wait_cdev DEV [SECONDS]: waits until DEV is a character device, at most
# SECONDS (default 5) scaled.
wait_cdev() {
	local i s
	s=$(scaled "${2:-5}")
	i=0
	while [ ! -c "$1" ]; do
		if [ $i -ge $((s * 10)) ]; then
			fail "waiting for character device $1" "none after $s s ($(ls -ld "$1" 2>&1))" >&7
			return 1
		fi
		usleep 100000
		i=$((i + 1))
	done
}

# uring_jobs FILE NAME DEV ENGINE_OPTIONS...: a job file writing and
# verifying DEV's namespace 1 ($bytes) with crc32c, a job per vCPU on its
# own slice ([NAME-cpu<N>-<KiB>], as fio_check wants), seeded with $seed.
uring_jobs() {
	local f=$1 name=$2 dev=$3 region c x
	shift 3
	region=$((bytes / ncpu / MiB * MiB))
	{
		echo "[global]"
		for x in "$@"; do echo "$x"; done
		echo "rw=randwrite"
		echo "bssplit=4k/50:16k/30:64k/20"
		echo "verify=crc32c"
		echo "do_verify=1"
		echo "iodepth=16"
		echo "randseed=$seed"
		echo "allow_file_create=0"
		c=0
		while [ $c -lt "$ncpu" ]; do
			echo "[$name-cpu$c-$((region / 1024))]"
			echo "filename=$dev"
			echo "offset=$((c * region))"
			echo "size=$region"
			echo "cpus_allowed=$c"
			c=$((c + 1))
		done
	} >"$f"
	echo "@@JOBFILE $name: $(tr '\n' ' ' <"$f")"
}

for drv in c rs; do
	if [ $drv = c ]; then re='^nvme[0-9]+n[0-9]+$'; pre=ng; bdf=$c_bdf; else
		re='^rsnvme[0-9]+n[0-9]+$'; pre=rsng; bdf=$rs_bdf; fi
	disk=$(IO_DISK_RE=$re disk_by_nsid 1)
	ctrl=${disk%n*}
	ng=/dev/$pre${ctrl##*[a-z]}n1
	bdev=/dev/$disk
	bytes=$(disk_bytes "$disk")
	echo "@@NGDEV $drv $ng disk=$disk bytes=$bytes"
	wait_cdev "$ng" || continue
	is_bdev "$drv: namespace 1 disk" "$bdev" || continue
	echo "@@NGTYPE $drv $(stat -c %F "$ng")"

	# The ioctls on the generic device.
	run_cli $drv get-ns-id get-ns-id "$ng"
	run_cli $drv id-ns id-ns "$ng" -o json
	pattern "$seed" 1048576 8192 >/tmp/pat.bin
	$NVME io-passthru "$ng" --opcode=0x01 --namespace-id=1 --cdw10=2048 --cdw12=15 \
		--data-len=8192 -w -i /tmp/pat.bin >/dev/null 2>/tmp/cli.err
	echo "@@IOPT $drv ng-write rc=$? want=$(md5 </tmp/pat.bin)" \
		"got=$(read_range "$bdev" 1048576 8192 | md5)"
	pattern "$seed" 2097152 16384 >/tmp/pat2.bin
	pattern_write "$bdev" "$seed" 2097152 16384
	$NVME io-passthru "$ng" --opcode=0x02 --namespace-id=1 --cdw10=4096 --cdw12=31 \
		--data-len=16384 -r -b >/tmp/got.bin 2>/tmp/cli.err
	echo "@@IOPT $drv ng-read rc=$? want=$(md5 </tmp/pat2.bin) got=$(md5 </tmp/got.bin)"
	$NVME io-passthru "$ng" --opcode=0x02 --namespace-id=2 --cdw10=0 --cdw12=0 \
		--data-len=512 -r -b >/dev/null 2>/tmp/cli.err
	echo "@@IOPT $drv ng-other-nsid rc=$? want=nonzero got=x"

	# io_uring passthrough, interrupt-driven then polled; each run is
	# verified again from the block device.
	for mode in irq poll; do
		name=uring-$drv-$mode
		if [ $mode = poll ]; then hipri=1; else hipri=0; fi
		uring_jobs /tmp/$name.fio $name "$ng" ioengine=io_uring_cmd cmd_type=nvme hipri=$hipri
		t0=$(uptime_s)
		trace_mark "$bdf"
		fio_run $name /tmp/$name.fio
		trace_mark "$bdf"
		echo "@@TIME fio $name $t0 $(uptime_s)"
		fio_check $name /tmp/$name.fio
		uring_jobs /tmp/$name-bdev.fio $name-bdev "$bdev" ioengine=libaio direct=1 verify_only=1
		trace_mark "$bdf"
		fio_run $name-bdev /tmp/$name-bdev.fio
		trace_mark "$bdf"
	done
done

# Unbind rsnvme's controller with io_uring commands in flight.
disk=$(disk_by_nsid 1)
ctrl=${disk%n*}
ng=/dev/rsng${ctrl##*[a-z]}n1
bytes=$(disk_bytes "$disk")
uring_jobs /tmp/uring-unbind.fio uring-unbind "$ng" ioengine=io_uring_cmd cmd_type=nvme \
	time_based=1 runtime=600
# Passthrough commands are not in the disk's statistics: fio's progress
# shows in the controller's interrupts (this run is interrupt-driven).
irqs() {
	awk -v b="$rs_bdf" 'index($0, b) { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i }
		END { print s + 0 }' /proc/interrupts
}
i0=$(irqs)
$FIO --output-format=terse --terse-version=3 --eta=never --allow_file_create=0 \
	/tmp/uring-unbind.fio >/tmp/uring-unbind.out 2>/tmp/uring-unbind.err &
fio_pid=$!
# Unbind once fio's commands have been completing for a while.
i=0
while [ $(($(irqs) - i0)) -lt 500 ] && [ $i -lt $(($(scaled 20) * 10)) ]; do
	usleep 100000
	i=$((i + 1))
done
echo "@@UNBIND interrupts-before-unbind $(($(irqs) - i0))"
check "unbind rsnvme's controller during io_uring I/O" bounded unbind 60 drv_unbind "$rs_bdf"
if wait_pid $fio_pid "$(scaled 60)"; then
	wait $fio_pid
	echo "@@UNBIND fio-ended rc=$?"
else
	echo "@@UNBIND fio-ended rc=stuck"
	stuck fio $fio_pid
	kill -9 $fio_pid
fi
if [ -e "$ng" ]; then echo "@@UNBIND ng-after-unbind present"; else
	echo "@@UNBIND ng-after-unbind absent"; fi
check "bind rsnvme's controller again" drv_bind "$rs_bdf" 1
wait_cdev "$ng" && echo "@@UNBIND ng-after-bind present"
run_cli rs get-ns-id-rebound get-ns-id "$ng"

kmemleak_clear
check "unload rsnvme" rmmod rsnvme
kmemleak_report
echo "@@IO_END"
