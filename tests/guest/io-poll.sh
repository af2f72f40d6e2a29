# SPDX-License-Identifier: GPL-2.0
# Polled I/O: the driver is loaded with $rsnvme_params (poll_queues=1), so
# the controller gets an I/O queue pair without interrupts that blk-mq
# sends polled requests to. fio writes and verifies every block through
# io_uring with IORING_SETUP_IOPOLL (hipri=1) at queue depth 1 and 16,
# then with pvsync2 hipri=1 (which 6.12 serves through the interrupt
# queues). A request on the polled queue that no one polls never
# completes, so any loss shows as a failed or timed-out fio job. The host
# checks in QEMU's trace that the polled queue was created without
# interrupts and served the io_uring I/O.
. /tests/lib.sh

disks=
seed=${rsnvme_seed:-1}
ncpu=$(nproc)
check "load $IO_DRIVER driver with '$rsnvme_params'" drv_load 1
disks=$(drv_disks | head -n1)
for d in $disks; do disk_info "$d"; done
q=/sys/block/$disks/queue
echo "@@POLL io_poll=$(cat $q/io_poll) io_poll_delay=$(cat $q/io_poll_delay)"
# What used to select hybrid polling: 6.12 takes the write and goes on
# polling classically (io_poll_delay stays -1).
if echo 0 >$q/io_poll_delay; then r=ok; else r=failed; fi
echo "@@POLL hybrid-write=$r io_poll_delay=$(cat $q/io_poll_delay)"

FIO_ENGINE="ioengine=io_uring hipri=1"
fio_phase iopoll-qd1 1 "bssplit=512/20:4k/40:12k/20:128k/20" ""
fio_phase iopoll-qd16 16 "bssplit=4k/50:16k/30:132k/20 mem_align=512" ""
# A reset creates the queues again: the polled one must come back
# without interrupts and keep serving polled I/O.
check "reset the controller" drv_reset "$(disk_bdf "$disks")"
check "$disks is back after the reset" drv_wait_disks 1
fio_phase iopoll-reset 16 "bssplit=4k/70:64k/30" ""
FIO_ENGINE="ioengine=pvsync2 hipri=1"
fio_phase hipri-sync 1 "bssplit=4k/60:64k/40" ""

grep -E 'nvme|rsnvme' /proc/interrupts | sed 's/^/@@IRQ /'
check "unload $IO_DRIVER driver" drv_unload
echo "@@IO_END"
