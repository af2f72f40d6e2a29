# SPDX-License-Identifier: GPL-2.0
# Helpers for guest test scripts; sourced. Results are console lines that
# the host harness counts: "@@PASS name" and "@@FAIL name: reason".

MOD=/lib/modules/rsnvme.ko
DRV=/sys/bus/pci/drivers/rsnvme

pass() { echo "@@PASS $1"; }
fail() { echo "@@FAIL $1: $2"; }

# fd 7 is the console (the script's stderr when it sources this file), for
# the @@FAIL lines of helpers that run in pipes, $(...) or with their
# output redirected.
exec 7>&2

# How much slower than an idle 2-core host this run is (an integer >= 1,
# from the host: tests' QEMU load and vCPUs per host core, or RSNVME_SLOW;
# see qemu-ci/qemu.py). Every bounded wait is a base time scaled by it, and
# a wait that expires says with a @@FAIL what it waited for and how long.
SLOW=${rsnvme_slow:-1}

# scaled SECONDS: SECONDS on an idle host, scaled to this run.
scaled() { echo $(($1 * SLOW)); }

# since T0: seconds (one decimal) from uptime T0 to now.
since() { awk -v t0="$1" '{ printf "%.1f", $1 - t0 }' /proc/uptime; }

# check NAME COMMAND...: passes when COMMAND succeeds.
check() {
	name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name" "'$*' failed"; fi
}

# PCI addresses of the NVMe controllers (class 0x010802).
nvme_devices() {
	for d in /sys/bus/pci/devices/*; do
		[ "$(cat "$d/class")" = 0x010802 ] && basename "$d"
	done
}

# Number of controllers bound to rsnvme.
bound_count() {
	ls "$DRV" 2>/dev/null | grep -c '^0000:'
}

# raw_regs BDF: prints CAP and VS of a controller read through /dev/mem.
raw_regs() {
	base=$(head -n1 "/sys/bus/pci/devices/$1/resource" | cut -d' ' -f1)
	cap_lo=$(devmem $((base)) 32)
	cap_hi=$(devmem $((base + 4)) 32)
	vs=$(devmem $((base + 8)) 32)
	echo "@@RAW $1 CAP_LO=$cap_lo CAP_HI=$cap_hi VS=$vs"
}

# Asks kmemleak for a scan and prints how many leaks it reports.
kmemleak_report() {
	[ -w /sys/kernel/debug/kmemleak ] || { echo "@@KMEMLEAK unavailable"; return; }
	echo scan >/sys/kernel/debug/kmemleak
	echo scan >/sys/kernel/debug/kmemleak
	n=$(grep -c '^unreferenced object' /sys/kernel/debug/kmemleak)
	echo "@@KMEMLEAK $n"
	[ "$n" -eq 0 ] || head -40 /sys/kernel/debug/kmemleak
}

# Forgets what kmemleak has seen so far, so later reports are ours.
kmemleak_clear() {
	[ -w /sys/kernel/debug/kmemleak ] && echo clear >/sys/kernel/debug/kmemleak
}

# Prints how many DMA-API debug entries (live DMA allocations and mappings)
# NVMe controllers still own; 0 once the driver is unloaded.
dma_allocations() {
	n=0
	if [ -r /sys/kernel/debug/dma-api/dump ]; then
		for d in $(nvme_devices); do
			c=$(grep -c "$d" /sys/kernel/debug/dma-api/dump)
			n=$((n + c))
		done
		echo "@@DMA_ALLOCATIONS $n"
	else
		echo "@@DMA_ALLOCATIONS unavailable"
	fi
}

# --- Block I/O tests (tests/guest/io-*.sh; host side in tests/io_tests.py) -
# The driver under test is $rsnvme_driver: "rust" (rsnvme, the default) or
# "c" (the kernel's nvme driver, the reference these tests were validated
# on). Its disks are /dev/rsnvme<ctrl>n<nsid> or /dev/nvme<ctrl>n<nsid>
# (the C driver numbers disks in probe order, so use disk_nsid).

IO_DRIVER=${rsnvme_driver:-rust}
FIO=/usr/bin/fio
BLKDISCARD=/usr/sbin/blkdiscard
if [ "$IO_DRIVER" = c ]; then
	IO_MODULE=nvme
	IO_DISK_RE='^nvme[0-9]+n[0-9]+$'
else
	IO_MODULE=rsnvme
	IO_DISK_RE='^rsnvme[0-9]+n[0-9]+$'
fi
IO_DRV=/sys/bus/pci/drivers/$IO_MODULE
MiB=1048576

uptime_s() { cut -d' ' -f1 /proc/uptime; }

# A path that refers to a block device must be one when it is read or
# written: once a disk is gone, its /dev node may be missing, and a write
# through the path would create a regular file there (in devtmpfs) that a
# later read would take for the disk. So:
# is_bdev NAME DEV: DEV is a block device; else prints a @@FAIL for NAME
# and fails.
is_bdev() {
	[ -b "$2" ] && return 0
	fail "$1" "$2 is not a block device ($(ls -ld "$2" 2>&1))" >&7
	return 1
}

# on_bdev NAME DEV COMMAND...: opens DEV (read-only: an open for reading
# never creates a file) on fd 9 and, if what it opened is a block device,
# runs COMMAND, which names it $BDEV: a reopen of that very device, never
# of something else that took the path meanwhile. Returns COMMAND's exit
# status; else prints a @@FAIL for NAME and fails.
BDEV=/proc/self/fd/9
on_bdev() {
	local ob_name=$1 ob_dev=$2 ob_rc=
	shift 2
	# fd 8 keeps the caller's stderr for COMMAND; the shell's own complaint
	# when DEV cannot be opened goes to /dev/null (the @@FAIL says it).
	{
		if [ -b $BDEV ]; then
			"$@" 2>&8
			ob_rc=$?
		fi
	} 8>&2 2>/dev/null 9<"$ob_dev"
	[ -z "$ob_rc" ] || return $ob_rc
	fail "$ob_name" "$ob_dev is not a block device ($(ls -ld "$ob_dev" 2>&1))" >&7
	return 1
}

# Block devices of the driver under test (names under /sys/block), ordered
# by controller number, then namespace ID.
drv_disks() {
	local d c
	for d in $(ls /sys/block 2>/dev/null | grep -E "$IO_DISK_RE"); do
		c=${d%n*}
		echo "${c##*[a-z]} $(disk_nsid "$d") $d"
	done | sort -n -k1,1 -k2,2 | cut -d' ' -f3
}

# disk_nsid DISK: its namespace ID (sysfs attribute, else from the name).
disk_nsid() {
	if [ -r "/sys/block/$1/nsid" ]; then cat "/sys/block/$1/nsid"; else echo "${1##*n}"; fi
}

# disk_by_nsid NSID: the disk of that namespace (single-controller tests).
disk_by_nsid() {
	local d
	for d in $(drv_disks); do [ "$(disk_nsid "$d")" = "$1" ] && echo "$d" && return 0; done
	return 1
}

# drv_wait_disks N [SECONDS]: waits until the driver has at least N disks
# with their /dev nodes (probe and namespace scans may be asynchronous), at
# most SECONDS (default 20) scaled.
drv_wait_disks() {
	local t s n d
	s=$(scaled "${2:-20}")
	t=$((s * 10))
	while :; do
		n=0
		for d in $(drv_disks); do [ -b "/dev/$d" ] && n=$((n + 1)); done
		[ "$n" -ge "$1" ] && return 0
		[ "$t" -gt 0 ] || break
		usleep 100000
		t=$((t - 1))
	done
	fail "waiting for $1 $IO_MODULE disks" \
		"$n with a block device node after $s s ($(drv_disks | tr '\n' ' '))"
	return 1
}

# drv_load [N]: loads the driver under test and waits for N disks (default 1).
drv_load() {
	if [ "$IO_DRIVER" = c ]; then
		grep -q '^nvme_core ' /proc/modules || insmod /lib/modules/nvme-core.ko || return 1
		insmod /lib/modules/nvme.ko || return 1
	else
		insmod "$MOD" || return 1
	fi
	drv_wait_disks "${1:-1}"
}

# drv_unload: unloads the driver under test (and the C driver's core).
drv_unload() {
	rmmod "$IO_MODULE" || return 1
	if [ "$IO_DRIVER" = c ]; then rmmod nvme_core || return 1; fi
	return 0
}

# drv_bound: PCI addresses bound to the driver under test.
drv_bound() { ls "$IO_DRV" 2>/dev/null | grep '^0000:'; }

# drv_unbind BDF / drv_bind BDF [N]: detaches a controller from the driver
# through sysfs / attaches it again and waits for N disks.
drv_unbind() { echo "$1" >"$IO_DRV/unbind"; }
drv_bind() {
	echo "$1" >"$IO_DRV/bind" || return 1
	drv_wait_disks "${2:-1}"
}

# disk_bdf DISK: the PCI address of the controller a disk belongs to, from
# its sysfs path, else the only controller bound to the driver.
disk_bdf() {
	local b
	b=$(readlink -f "/sys/block/$1" | grep -o '0000:[0-9a-f]*:[0-9a-f]*\.[0-9a-f]' | tail -n1)
	[ -n "$b" ] || b=$(drv_bound | head -n1)
	echo "$b"
}

# disk_lbs DISK / disk_bytes DISK: logical block size and capacity in bytes.
disk_lbs() { cat "/sys/block/$1/queue/logical_block_size"; }
disk_bytes() { echo $(($(cat "/sys/block/$1/size") * 512)); }

# disk_info DISK: one line the host checks against QEMU's configuration.
disk_info() {
	local q
	q=/sys/block/$1/queue
	echo "@@DISK $1 nsid=$(disk_nsid "$1") lbs=$(disk_lbs "$1") bytes=$(disk_bytes "$1")" \
		"bdf=$(disk_bdf "$1") max_hw_kb=$(cat $q/max_hw_sectors_kb)" \
		"discard_max=$(cat $q/discard_max_bytes) write_zeroes_max=$(cat $q/write_zeroes_max_bytes)"
}

# pattern SEED START LEN: the seeded test pattern for bytes [START,
# START+LEN) of a disk (multiples of 16): one 16-byte record per 16 bytes,
# the decimal number SEED * 10^8 + (record's byte offset in the disk / 16)
# and a newline. SEED has 7 digits (1000000..9999999), so records have a
# fixed width, and one written to the wrong place, left over from another
# run or meant for another namespace (other seed) cannot match.
# tests/image_check.py builds the same bytes on the host. (busybox seq:
# about 3 MB/s under TCG, twice as fast as awk.)
pattern() {
	seq $(($1 * 100000000 + $2 / 16)) $(($1 * 100000000 + ($2 + $3) / 16 - 1))
}

# pattern_write DEV SEED START LEN [BS]: writes the pattern with O_DIRECT
# (only to a block device).
pattern_write() {
	pattern "$2" "$3" "$4" |
		on_bdev "pattern write to $1" "$1" \
			dd of=$BDEV bs="${5:-64k}" iflag=fullblock oflag=direct,seek_bytes seek="$3" 2>/tmp/dd.err
}

# read_range DEV START LEN [BS]: a disk range, read with O_DIRECT (only
# from a block device).
read_range() {
	on_bdev "read of $1" "$1" \
		dd if=$BDEV bs="${4:-64k}" iflag=direct,skip_bytes,count_bytes skip="$2" count="$3" 2>/tmp/dd.err
}

md5() { md5sum | cut -d' ' -f1; }

# check_md5 NAME DEV START LEN WANT [BS]: reads the range back, prints
# "@@SUM NAME <md5>" (the host checks it too), passes when it is WANT.
check_md5() {
	local got
	is_bdev "$1" "$2" || return 1
	got=$(read_range "$2" "$3" "$4" "$6" | md5)
	echo "@@SUM $1 $got"
	if [ "$got" = "$5" ]; then pass "$1"; return 0; fi
	fail "$1" "read back md5 $got, want $5 ($(tr '\n' ' ' </tmp/dd.err))"
	return 1
}

# check_pattern NAME DEV SEED START LEN [BS]: the range holds the pattern;
# on a mismatch, names the first differing record and what is there.
check_pattern() {
	local want r off at rec blk
	is_bdev "$1" "$2" || return 1
	want=$(pattern "$3" "$4" "$5" | md5)
	check_md5 "$1" "$2" "$4" "$5" "$want" "$6" && return 0
	rm -f /tmp/want.fifo
	mkfifo /tmp/want.fifo
	pattern "$3" "$4" "$5" >/tmp/want.fifo &
	r=$(read_range "$2" "$4" "$5" | cmp - /tmp/want.fifo 2>&1 | head -n1)
	kill $! 2>/dev/null
	wait $! 2>/dev/null
	off=$(echo "$r" | sed -n 's/.*char \([0-9]*\).*/\1/p')
	[ -n "$off" ] || { echo "@@DIFF $1 $r"; return 1; }
	at=$(($4 + off - 1))
	rec=$((at / 16 * 16))
	blk=$((rec / 4096 * 4096))
	echo "@@DIFF $1 first difference at byte $at: record there" \
		"'$(read_range "$2" $blk 4096 | tail -c +$((rec - blk + 1)) | head -c 15)'," \
		"want '$(pattern "$3" $rec 16 | head -c 15)'"
	return 1
}

# check_zero NAME DEV START LEN: the range reads back as zeroes.
check_zero() {
	check_md5 "$1" "$2" "$3" "$4" "$(head -c "$4" /dev/zero | md5)"
}

# mib_sums NAME DEV: "@@MIB NAME <index> <md5>" for every MiB of a disk,
# for the host to locate differences.
mib_sums() {
	local i n
	is_bdev "MiB sums $1" "$2" || return 1
	i=0
	n=$(($(disk_bytes "${2#/dev/}") / MiB))
	while [ $i -lt $n ]; do
		echo "@@MIB $1 $i $(read_range "$2" $((i * MiB)) $MiB 256k | md5)"
		i=$((i + 1))
	done
}

# fio_run NAME JOBFILE [OPTION...]: runs fio (terse output) and prints,
# per job, "@@FIO NAME <job> err=<errno> read_kib=<KiB> write_kib=<KiB>".
# Job files that name a disk must say allow_file_create=0 (as fio_run does
# on the command line too): fio would create a missing file otherwise.
fio_run() {
	local fr_name=$1 fr_job=$2
	shift 2
	$FIO --output-format=terse --terse-version=3 --eta=never --allow_file_create=0 "$@" "$fr_job" \
		>/tmp/"$fr_name".out 2>/tmp/"$fr_name".err
	echo "@@FIORC $fr_name $?"
	fio_results "$fr_name"
}
fio_results() {
	grep '^3;' /tmp/"$1".out |
		awk -F';' -v n="$1" '{ print "@@FIO " n " " $3 " err=" $5 " read_kib=" $6 " write_kib=" $47 }'
}

# fio_errors NAME: fio's own error and verify messages, on one line.
fio_errors() {
	cat /tmp/"$1".err /tmp/"$1".out 2>/dev/null | grep -v '^3;' |
		grep -iE 'error|verify|bad|fail|crc|mismatch|abort|assert' | head -n 6 | tr '\n' ' '
}

# fio_check NAME JOBFILE: every job of the job file reported, without an
# error, writing and verifying (reading back) exactly its region, whose
# size in KiB ends the job's name ([<disk>-cpu<N>-<KiB>]).
fio_check() {
	local want bad
	want=$(grep -c '^\[.*-[0-9]*\]$' "$2")
	bad=$(fio_results "$1" | awk -v want="$want" '
		{ n++; m = split($3, j, "-"); k = j[m]
		  if ($4 != "err=0" || $5 != "read_kib=" k || $6 != "write_kib=" k) print $3 ": " $4 " " $5 " " $6 " (want " k " KiB each way)" }
		END { if (n != want) print n + 0 " job results for " want " jobs" }' | tr '\n' ' ')
	if [ -z "$bad" ]; then pass "fio $1"; return 0; fi
	fail "fio $1" "$bad $(fio_errors "$1")"
	return 1
}

# wait_pid PID SECONDS: waits for a background process to end; 1 if it
# is still running after SECONDS.
wait_pid() {
	local t
	t=$(($2 * 10))
	while kill -0 "$1" 2>/dev/null; do
		[ "$t" -gt 0 ] || return 1
		usleep 100000
		t=$((t - 1))
	done
	return 0
}

# Prints the block device of namespace $1 (default 1) of the first rsnvme
# controller once devtmpfs has created it; fails after 5 s (scaled).
rsnvme_disk() {
	local i s d
	s=$(scaled 5)
	i=0
	while [ $i -le $((s * 10)) ]; do
		for d in /dev/rsnvme*n${1:-1}; do
			[ -b "$d" ] && { echo "$d"; return 0; }
		done
		sleep 0.1
		i=$((i + 1))
	done
	fail "waiting for /dev/rsnvme*n${1:-1}" "no such block device after $s s" >&7
	return 1
}

# wait_bdev DEV [SECONDS]: waits until DEV is a block device, at most
# SECONDS (default 5) scaled.
wait_bdev() {
	local i s
	s=$(scaled "${2:-5}")
	i=0
	while [ ! -b "$1" ]; do
		if [ $i -ge $((s * 10)) ]; then
			fail "waiting for block device $1" "none after $s s ($(ls -ld "$1" 2>&1))" >&7
			return 1
		fi
		usleep 100000
		i=$((i + 1))
	done
}

# stuck NAME PID: prints where a process that does not end is (its state,
# wait channel and kernel stack).
stuck() {
	echo "@@STUCK $1 pid $2 $(grep State /proc/"$2"/status 2>/dev/null) wchan $(cat /proc/"$2"/wchan 2>/dev/null)"
	sed "s/^/@@STACK $1 /" /proc/"$2"/stack 2>/dev/null
}

# bounded NAME SECONDS COMMAND...: runs COMMAND in the background (output
# in /tmp/NAME.bg) and waits at most SECONDS for it. Returns 0 and sets
# $bounded_rc to its exit status when it ended, or prints a @@FAIL and
# where it is stuck and returns 1.
bounded() {
	local bn=$1 bs=$2 bp
	shift 2
	"$@" >/tmp/"$bn".bg 2>&1 &
	bp=$!
	if wait_pid $bp "$bs"; then
		wait $bp
		bounded_rc=$?
		return 0
	fi
	fail "bounded $bn" "'$*' still running after $bs s"
	stuck "$bn" $bp
	return 1
}
