# SPDX-License-Identifier: GPL-2.0
# `make bench`: the same fio jobs against rsnvme and the C nvme driver on
# the same emulated disk. Prints "@@BENCH <driver> <job> <terse fio line>".
. /tests/lib.sh

run_jobs() {
	drv=$1 dev=$2
	is_bdev "bench $drv disk" "$dev" || return 1
	for job in "randread-4k-qd32 --rw=randread --bs=4k --iodepth=32" \
		"randwrite-4k-qd32 --rw=randwrite --bs=4k --iodepth=32" \
		"seqread-128k-qd8 --rw=read --bs=128k --iodepth=8" \
		"randread-4k-qd1 --rw=randread --bs=4k --iodepth=1"; do
		set -- $job
		name=$1
		shift
		out=$(/usr/bin/fio --name="$name" --filename="$dev" --allow_file_create=0 \
			--ioengine=libaio --direct=1 \
			--numjobs="$(grep -c ^processor /proc/cpuinfo)" --group_reporting \
			--time_based --runtime="${rsnvme_seconds:-5}" --size=48M \
			--output-format=terse --terse-version=3 "$@" 2>&1 | tail -1)
		echo "@@BENCH $drv $name $out"
	done
}

insmod $MOD
run_jobs rsnvme "$(rsnvme_disk)"
rmmod rsnvme
insmod /lib/modules/nvme-core.ko
insmod /lib/modules/nvme.ko
wait_bdev /dev/nvme0n1 5
run_jobs nvme /dev/nvme0n1
rmmod nvme
