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
# Module parameters for the driver ($rsnvme_params from the harness, e.g.
# "poll_queues=1": both drivers take the same names).
drv_load() {
	if [ "$IO_DRIVER" = c ]; then
		grep -q '^nvme_core ' /proc/modules || insmod /lib/modules/nvme-core.ko || return 1
		# shellcheck disable=SC2086 # one word per parameter
		insmod /lib/modules/nvme.ko $rsnvme_params || return 1
	else
		# shellcheck disable=SC2086
		insmod "$MOD" $rsnvme_params || return 1
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

# fio_phase NAME IODEPTH OPTIONS_512 OPTIONS_4K: one fio random-write run
# with crc32c verify over the disks in $disks, a job per disk and vCPU
# ($ncpu), each pinned to its own slice, seeded with $seed; OPTIONS (space
# separated) for 512 or 4096-byte LBA disks; $FIO_ENGINE (space separated)
# names the engine and its options (default libaio). The results are
# checked by fio_check and printed for the host.
fio_phase() {
	f=/tmp/$1.fio
	{
		echo "[global]"
		for x in ${FIO_ENGINE:-ioengine=libaio}; do echo "$x"; done
		echo "direct=1"
		echo "rw=randwrite"
		echo "verify=crc32c"
		echo "do_verify=1"
		echo "iodepth=$2"
		echo "randseed=$seed"
		echo "allow_file_create=0"
		for d in $disks; do
			region=$(($(disk_bytes "$d") / ncpu / MiB * MiB))
			if [ "$(disk_lbs "$d")" -ge 4096 ]; then o=$4; else o=$3; fi
			c=0
			while [ $c -lt "$ncpu" ]; do
				echo "[$d-cpu$c-$((region / 1024))]"
				echo "filename=/dev/$d"
				echo "offset=$((c * region))"
				echo "size=$region"
				echo "cpus_allowed=$c"
				for x in $o; do echo "$x"; done
				c=$((c + 1))
			done
		done
	} >"$f"
	echo "@@JOBFILE $1: $(tr '\n' ' ' <"$f")"
	t0=$(uptime_s)
	fio_run "$1" "$f"
	echo "@@TIME fio $1 $t0 $(uptime_s)"
	fio_check "$1" "$f"
}

# run_cli DRIVER WHAT ARGS...: runs nvme-cli ($NVME) with ARGS and prints
# one @@NVME line (its output, JSON or text, on one line, and its exit
# status) and, if it failed, an @@NVMEERR line with its error output.
run_cli() {
	local drv=$1 what=$2 out rc
	shift 2
	out=$($NVME "$@" 2>/tmp/cli.err)
	rc=$?
	echo "@@NVME $drv $what rc=$rc $(echo "$out" | tr -d '\n\t')"
	[ $rc -eq 0 ] || echo "@@NVMEERR $drv $what $(tr '\n' ' ' </tmp/cli.err)"
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

# bounded_ok NAME BGNAME: passes when the last bounded command succeeded.
bounded_ok() {
	if [ "$bounded_rc" -eq 0 ]; then pass "$1"; else
		fail "$1" "exit status $bounded_rc: $(tr '\n' ' ' </tmp/"$2".bg)"; fi
}

# --- Error recovery (tests/guest/rec-*.sh, faults.sh; host side in
# tests/recovery_tests.py and tests/run.py) ---------------------------------

# drv_reset_attr BDF: the sysfs file that resets a controller of the driver
# under test: rsnvme's is on the PCI device, the C driver's on the nvme
# class device below it.
drv_reset_attr() {
	local f
	if [ "$IO_DRIVER" = c ]; then
		for f in /sys/bus/pci/devices/"$1"/nvme/nvme*/reset_controller; do
			[ -e "$f" ] && echo "$f" && return 0
		done
		return 1
	fi
	f=/sys/bus/pci/devices/$1/reset_controller
	[ -e "$f" ] && echo "$f"
}

# drv_reset BDF: resets a controller through sysfs. The write returns once
# the reset is over, with its outcome: it fails, saying why on stderr
# ("Input/output error": the controller could not be brought back), when
# the reset did; 2 when there is no such attribute.
drv_reset() {
	local f
	if ! f=$(drv_reset_attr "$1"); then
		echo "no reset_controller attribute for $1 ($IO_MODULE)" >&2
		return 2
	fi
	echo 1 >"$f"
}

# disk_writes DISK: how many writes DISK has completed (0 once it is gone).
disk_writes() { awk '{ print $5 }' "/sys/block/$1/stat" 2>/dev/null || echo 0; }

# progress_mark DISK...: remembers how many writes each disk has completed,
# for wait_progress.
progress_mark() {
	local d
	for d in "$@"; do disk_writes "$d" >/tmp/mark."$d"; done
}

# wait_progress NAME N SECONDS DISK...: waits until every DISK has completed
# more than N writes since progress_mark, at most SECONDS. Fails, with a
# @@FAIL for NAME that gives the counts, when time is up or when the fio
# that fio_start started ended first.
wait_progress() {
	local name=$1 n=$2 s=$3 t d left
	shift 3
	t=$((s * 10))
	while :; do
		left=
		for d in "$@"; do
			[ $(($(disk_writes "$d") - $(cat /tmp/mark."$d"))) -gt "$n" ] ||
				left="$left $d:$(($(disk_writes "$d") - $(cat /tmp/mark."$d")))"
		done
		[ -z "$left" ] && return 0
		if [ -n "$fio_pid" ] && ! kill -0 "$fio_pid" 2>/dev/null; then
			fail "$name" "fio ended before every disk completed more than $n writes (so far:$left)"
			return 1
		fi
		if [ "$t" -le 0 ]; then
			fail "$name" "not every disk completed more than $n writes within $s s (so far:$left)"
			return 1
		fi
		usleep 100000
		t=$((t - 1))
	done
}

# fio_start NAME JOBFILE: starts fio on a job file in the background, its
# results in /tmp/NAME.out as with fio_run; sets $fio_pid.
fio_start() {
	echo "@@JOBFILE $1: $(tr '\n' ' ' <"$2")"
	$FIO --output-format=terse --terse-version=3 --eta=never --allow_file_create=0 "$2" \
		>/tmp/"$1".out 2>/tmp/"$1".err &
	fio_pid=$!
}

# fio_end NAME SECONDS [SIGNAL]: sends SIGNAL (if given) to the fio that
# fio_start started, waits at most SECONDS for it to end and prints its
# results (@@FIORC, @@FIO lines). If it does not end: a @@FAIL, where each
# fio process is stuck, and SIGKILL; returns 1 then, and 2 when even
# SIGKILL does not end it (stuck in the kernel).
fio_end() {
	local p rc=0
	[ -z "$3" ] || kill -"$3" "$fio_pid" 2>/dev/null
	if ! wait_pid "$fio_pid" "$2"; then
		fail "$1, fio ends within $2 s" "still running; killing it"
		for p in $(pidof fio); do stuck "fio-$1" "$p"; done
		kill -9 $(pidof fio) 2>/dev/null
		rc=1
		if ! wait_pid "$fio_pid" "$(scaled 10)"; then
			fail "$1, fio killed" "fio does not die within $(scaled 10) s of SIGKILL: stuck in the kernel"
			return 2
		fi
	fi
	wait "$fio_pid"
	echo "@@FIORC $1 $?"
	fio_pid=
	fio_results "$1"
	return $rc
}

# fio_verify_messages NAME: fio's complaints about data it read back.
fio_verify_messages() {
	cat /tmp/"$1".err /tmp/"$1".out 2>/dev/null | grep -v '^3;' |
		grep -iE 'verify|crc|bad magic|mismatch' | head -n 4 | tr '\n' ' '
}

# fio_check_stopped NAME JOBS: for a time-based fio that verifies as it
# goes (verify_backlog) and was stopped with SIGINT: JOBS job results, each
# without an error, having written and read back something, and no
# complaint about the data.
fio_check_stopped() {
	local bad v
	bad=$(fio_results "$1" | awk -v want="$2" '
		{ n++; if ($4 != "err=0" || $5 == "read_kib=0" || $6 == "write_kib=0") print $3 ": " $4 " " $5 " " $6 }
		END { if (n != want) print n + 0 " job results for " want " jobs" }' | tr '\n' ' ')
	v=$(fio_verify_messages "$1")
	if [ -z "$bad$v" ]; then pass "fio $1"; return 0; fi
	fail "fio $1" "$bad $v $(fio_errors "$1")"
	return 1
}

# rec_jobfile RUNTIME SIZE DISK...: a fio job file that writes with crc32c
# headers and verifies, one job per vCPU (pinned) and disk, each on its own
# slice of the disk from 4 MiB on (the first 4 MiB are left for patterns):
# for RUNTIME seconds, verifying as it goes (verify_backlog), when RUNTIME
# is not empty; else SIZE bytes per job (empty: the whole slice), all
# written, then all read back. Job names end in the slice's KiB, for
# fio_check.
rec_jobfile() {
	local runtime=$1 size=$2 ncpu d region c
	shift 2
	ncpu=$(nproc)
	echo "[global]"
	echo "ioengine=libaio"
	echo "direct=1"
	echo "rw=randwrite"
	echo "bssplit=4k/60:16k/25:128k/15"
	echo "iodepth=16"
	echo "verify=crc32c"
	echo "randseed=${rsnvme_seed:-1}"
	echo "allow_file_create=0"
	if [ -n "$runtime" ]; then
		echo "verify_backlog=64"
		echo "time_based=1"
		echo "runtime=$runtime"
	fi
	for d in "$@"; do
		region=$((($(disk_bytes "$d") - 4 * MiB) / ncpu / MiB * MiB))
		c=0
		while [ $c -lt "$ncpu" ]; do
			echo "[$d-cpu$c-$((${size:-$region} / 1024))]"
			echo "filename=/dev/$d"
			echo "offset=$((4 * MiB + c * region))"
			echo "size=${size:-$region}"
			echo "cpus_allowed=$c"
			c=$((c + 1))
		done
	done
}

# pci_command BDF: the PCI command register (config space offset 4, 16
# bits), read through sysfs, in decimal.
pci_command() {
	dd if=/sys/bus/pci/devices/"$1"/config bs=2 skip=2 count=1 2>/dev/null | od -An -tu2 | tr -d ' '
}

# pci_command_set BDF VALUE: writes the PCI command register with one
# 16-bit write (busybox has no setpci) and checks that VALUE reads back;
# else prints a @@FAIL and fails.
pci_command_set() {
	local got
	printf "\\$(printf %03o $(($2 & 255)))\\$(printf %03o $(($2 >> 8)))" |
		dd of=/sys/bus/pci/devices/"$1"/config bs=2 seek=2 count=1 conv=notrunc 2>/tmp/setpci.err
	got=$(pci_command "$1")
	[ "$got" = "$2" ] && return 0
	fail "PCI command register of $1 set to $(printf 0x%04x "$2")" \
		"reads back $(printf 0x%04x "${got:-0}") ($(tr '\n' ' ' </tmp/setpci.err))"
	return 1
}

# stop_test WHAT SECONDS: ends a test whose WHAT hangs (what follows would
# hang too), after `bounded` printed where it is stuck.
stop_test() {
	fail "test stopped" "$1 did not end within $2 s; see the @@STUCK lines"
	exit 1
}

# patterns_before DISK...: writes the pattern of seed $rsnvme_seed + nsid
# over [0, 2 MiB) of each disk (rec_jobfile's fio leaves it alone) and
# reads it back.
patterns_before() {
	local d s
	for d in "$@"; do
		s=$((${rsnvme_seed:-1000000} + $(disk_nsid "$d")))
		pattern_write /dev/"$d" $s 0 $((2 * MiB))
		check_pattern "ns$(disk_nsid "$d") pattern written before" /dev/"$d" $s 0 $((2 * MiB))
	done
}

# patterns_after WHEN DISK...: the pattern of patterns_before is intact,
# and a new one (seed + 50 + nsid) written over [2 MiB, 4 MiB) reads back.
patterns_after() {
	local when=$1 d s
	shift
	for d in "$@"; do
		s=$((${rsnvme_seed:-1000000} + $(disk_nsid "$d")))
		check_pattern "ns$(disk_nsid "$d") pattern written before is intact $when" \
			/dev/"$d" $s 0 $((2 * MiB))
		pattern_write /dev/"$d" $((s + 50)) $((2 * MiB)) $((2 * MiB))
		check_pattern "ns$(disk_nsid "$d") pattern written $when reads back" \
			/dev/"$d" $((s + 50)) $((2 * MiB)) $((2 * MiB))
	done
}

# set_io_timeout SECONDS DISK...: the block layer's I/O timeout of each
# disk (both drivers take it from the queue).
set_io_timeout() {
	local s=$1 d
	shift
	for d in "$@"; do
		echo $((s * 1000)) >/sys/block/"$d"/queue/io_timeout
		check "$d I/O timeout set to $s s" [ "$(cat /sys/block/"$d"/queue/io_timeout)" = $((s * 1000)) ]
	done
}

# trace_mark BDF: marks QEMU's trace of the device (qemu.boot(trace=...)
# with pci_cfg_read), for the host to count what the device saw after it:
# reads config space offset 0xfc, which neither the firmware nor Linux
# reads (the firmware enables the controller before Linux runs).
trace_mark() {
	dd if=/sys/bus/pci/devices/"$1"/config of=/dev/null bs=4 skip=63 count=1 2>/dev/null
	echo "@@TRACE_MARK $1"
}

# unload_after_timeout: unloads the driver under test after an I/O timeout
# made it reset the controller; not the C driver. Its timeout handler
# starts freezing the queues in the block layer's timeout work and its
# reset work ends the freeze; this kernel's lockdep (6.12.117) counts the
# freeze as locks the timeout worker still holds ("workqueue leaked ...
# lock", tolerated by tests/recovery_tests.py) and, once unloading frees
# the queues, oopses on them (NULL pointer in __lock_acquire) the next time
# that worker takes a lock.
unload_after_timeout() {
	if [ "$IO_DRIVER" = c ]; then
		echo "@@UNLOAD skipped: the C driver cannot be unloaded after a timeout here"
		return 0
	fi
	check "unload $IO_DRIVER driver" drv_unload
}
