# SPDX-License-Identifier: GPL-2.0
# A namespace's disk as nvme-cli and udev see it (issue 11): two
# controllers configured alike (but for their serial numbers), one bound
# to the C driver and one to rsnvme, each with two namespaces. Printed for
# the host to check against QEMU's configuration and against each other:
# the per-namespace sysfs attributes (@@NSATTR); nvme-cli on the
# namespaces' block devices (@@NVME: id-ns, get-ns-id, io-passthru,
# read and write of a known pattern, compared byte for byte); the
# namespace ioctls with good and bad input (passthru-bad ns: @@PT).
. /tests/lib.sh

c_bdf=${rsnvme_c_bdf:?}
rs_bdf=${rsnvme_rs_bdf:?}
echo nvme >"/sys/bus/pci/devices/$c_bdf/driver_override"
echo rsnvme >"/sys/bus/pci/devices/$rs_bdf/driver_override"
check "load both drivers" sh -c "insmod /lib/modules/nvme-core.ko && insmod /lib/modules/nvme.ko && insmod $MOD"
drv_wait_disks 2
IO_DISK_RE='^nvme[0-9]+n[0-9]+$' drv_wait_disks 2

# ns_attrs DRIVER DISK: every attribute the C driver may show, or ABSENT.
ns_attrs() {
	local a v
	for a in nsid wwid eui nguid uuid; do
		if [ -e "/sys/block/$2/$a" ]; then v=$(cat "/sys/block/$2/$a" 2>&1); else v=ABSENT; fi
		echo "@@NSATTR $1 $(disk_nsid "$2") $a=$v"
	done
}
for d in $(drv_disks); do ns_attrs rs "$d"; done
for d in $(IO_DISK_RE='^nvme[0-9]+n[0-9]+$' drv_disks); do ns_attrs c "$d"; done

NVME=/usr/sbin/nvme
seed=${rsnvme_seed:-7654321}
for drv in c rs; do
	if [ $drv = c ]; then re='^nvme[0-9]+n[0-9]+$'; else re='^rsnvme[0-9]+n[0-9]+$'; fi
	d1=/dev/$(IO_DISK_RE=$re disk_by_nsid 1)
	d2=/dev/$(IO_DISK_RE=$re disk_by_nsid 2)
	is_bdev "$drv: namespace 1 disk" "$d1" && is_bdev "$drv: namespace 2 disk" "$d2" || continue
	run_cli $drv id-ns-1 id-ns "$d1" -o json
	run_cli $drv id-ns-2 id-ns "$d2" -o json
	run_cli $drv get-ns-id-2 get-ns-id "$d2"
	# io-passthru on namespace 2's own device: a pattern written at LBA
	# 2048 is read back from the disk; one written to the disk at LBA 4096
	# is read back through it. The other namespace's ID is refused.
	pattern "$seed" 1048576 8192 >/tmp/pat.bin
	$NVME io-passthru "$d2" --opcode=0x01 --namespace-id=2 --cdw10=2048 --cdw12=15 \
		--data-len=8192 -w -i /tmp/pat.bin >/dev/null 2>/tmp/cli.err
	echo "@@IOPT $drv n2-write rc=$? want=$(md5 </tmp/pat.bin)" \
		"got=$(read_range "$d2" 1048576 8192 | md5)"
	pattern "$seed" 2097152 16384 >/tmp/pat2.bin
	pattern_write "$d2" "$seed" 2097152 16384
	$NVME io-passthru "$d2" --opcode=0x02 --namespace-id=2 --cdw10=4096 --cdw12=31 \
		--data-len=16384 -r -b >/tmp/got.bin 2>/tmp/cli.err
	echo "@@IOPT $drv n2-read rc=$? want=$(md5 </tmp/pat2.bin) got=$(md5 </tmp/got.bin)"
	$NVME io-passthru "$d2" --opcode=0x02 --namespace-id=1 --cdw10=0 --cdw12=0 \
		--data-len=512 -r -b >/dev/null 2>/tmp/cli.err
	echo "@@IOPT $drv n2-other-nsid rc=$? want=nonzero got=x"
	# nvme write and nvme read on namespace 1: 8 KiB at LBA 4096.
	pattern "$seed" 3145728 8192 >/tmp/pat3.bin
	$NVME write "$d1" -s 4096 -c 15 -z 8192 -d /tmp/pat3.bin >/dev/null 2>/tmp/cli.err
	echo "@@IOPT $drv n1-nvme-write rc=$? want=$(md5 </tmp/pat3.bin)" \
		"got=$(read_range "$d1" 2097152 8192 | md5)"
	pattern_write "$d1" "$seed" 1048576 8192
	$NVME read "$d1" -s 2048 -c 15 -z 8192 -d /tmp/got4.bin >/dev/null 2>/tmp/cli.err
	echo "@@IOPT $drv n1-nvme-read rc=$? want=$(pattern "$seed" 1048576 8192 | md5)" \
		"got=$(md5 </tmp/got4.bin)"
	# The namespace ioctls with good and bad input, on both namespaces.
	/bin/passthru-bad "$d1" ns 1 512 >/tmp/pt-$drv-1.out
	/bin/passthru-bad "$d2" ns 2 512 >/tmp/pt-$drv-2.out
done
sleep 1
for drv in c rs; do
	for n in 1 2; do sed "s/^@@PT /@@PT $drv $n /" /tmp/pt-$drv-$n.out; done
done

kmemleak_clear
check "unload rsnvme" rmmod rsnvme
kmemleak_report
echo "@@IO_END"
