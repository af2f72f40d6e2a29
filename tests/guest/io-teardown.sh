# SPDX-License-Identifier: GPL-2.0
# Teardown under load. A pattern (seed $rsnvme_seed + nsid) is written over
# the first 2 MiB and flushed; fio then writes and verifies (verify_backlog)
# the rest of the disk, one job per vCPU, in the background, and:
#  1. once fio has completed more than 100 writes and a concurrent reader
#     has read the pattern back (a bounded wait, not a fixed time: a slow
#     host starts fio late), the controller is unbound through sysfs: the
#     unbind must return and fio must end with I/O errors, each within
#     $rsnvme_bound s; the disk must be gone, and rmmod must then succeed;
#  2. the driver is loaded again, the pattern must be intact, fio starts
#     again and once it does I/O the module is removed with rmmod: either rmmod
#     refuses (module in use: fio must still be running; it is then stopped
#     with SIGINT and rmmod must succeed) or it tears the controller down
#     like an unbind (fio must end with errors). What happened is printed
#     (@@RMMOD_UNDER_LOAD) for the host to report.
# Finally the driver is loaded again: pattern intact, a fio verify passes.
# Whatever does not end in time is reported with its kernel stack and the
# test stops there. The host also checks the pattern in the image after
# QEMU exits, and any kernel warning on the console fails the run.
. /tests/lib.sh

bound=${rsnvme_bound:-$(scaled 30)}
# How long fio and the reader may take to get going before a teardown.
progress=$(scaled 60)
check "load $IO_DRIVER driver" drv_load 1
d=$(drv_disks | head -n1)
disk_info "$d"
seed=$((rsnvme_seed + $(disk_nsid "$d")))
pattern_write /dev/$d $seed 0 $((2 * MiB)) 64k && sync /dev/$d
check_pattern "pattern written" /dev/$d $seed 0 $((2 * MiB))
pattern $seed 0 $((2 * MiB)) >/tmp/want.bin

# jobfile DISK [SIZE]: fio job writing and verifying (verify_backlog) the
# disk from 4 MiB on, a job per vCPU on its own slice; for 600 s, or just
# SIZE bytes per job.
jobfile() {
	local ncpu region c
	ncpu=$(nproc)
	region=$((($(disk_bytes "$1") - 4 * MiB) / ncpu / MiB * MiB))
	echo "[global]"
	echo "ioengine=libaio"
	echo "direct=1"
	echo "rw=randwrite"
	echo "bs=4k"
	echo "iodepth=16"
	echo "verify=crc32c"
	echo "verify_backlog=64"
	echo "filename=/dev/$1"
	echo "allow_file_create=0"
	[ -n "$2" ] || echo "time_based=1"
	[ -n "$2" ] || echo "runtime=600"
	c=0
	while [ $c -lt "$ncpu" ]; do
		echo "[$1-cpu$c-$((${2:-$region} / 1024))]"
		echo "offset=$((4 * MiB + c * region))"
		echo "size=${2:-$region}"
		echo "cpus_allowed=$c"
		c=$((c + 1))
	done
}

# writes_done: writes the disk has completed (only fio writes while it
# runs; the reader only reads).
writes_done() { awk '{ print $5 }' /sys/block/$d/stat; }

# start_fio NAME: starts fio in the background on $d, sets $fio_pid, then
# waits (at most $progress s) until fio has completed more than 100 writes
# and the reader has read the pattern back once; checks that fio is still
# running and doing I/O then, so that the teardown hits it at work.
start_fio() {
	local s0 n t0 t r
	jobfile "$d" >/tmp/"$1".fio
	echo "@@JOBFILE $1: $(tr '\n' ' ' </tmp/"$1".fio)"
	s0=$(writes_done)
	t0=$(uptime_s)
	$FIO --output-format=terse --terse-version=3 --eta=never /tmp/"$1".fio \
		>/tmp/"$1".out 2>/tmp/"$1".err &
	fio_pid=$!
	t=$((progress * 10))
	while :; do
		n=$(($(writes_done) - s0))
		[ $n -gt 100 ] && [ -e /tmp/"$1".good ] && break
		kill -0 $fio_pid 2>/dev/null || break
		if [ $t -le 0 ]; then
			r="has read the pattern"
			[ -e /tmp/"$1".good ] || r="has not read the pattern yet"
			fail "$1 round, waiting for fio and the reader to get going" \
				"after $progress s: fio completed $n writes (want > 100), the reader $r"
			break
		fi
		usleep 100000
		t=$((t - 1))
	done
	echo "@@IOS $1 $n writes completed in $(since "$t0") s (fio start to teardown)"
	check "$1 round, fio running and doing I/O before the teardown" \
		[ "$(kill -0 $fio_pid 2>/dev/null && echo y)" = y -a $n -gt 100 ]
}

# fio_gone NAME: waits (bounded) for fio to end, killing it if it must;
# 1 if it cannot be made to end (stuck in the kernel).
fio_gone() {
	local t0 p
	t0=$(uptime_s)
	if wait_pid $fio_pid "$bound"; then
		pass "$1 round, fio ended within $bound s"
	else
		fail "$1 round, fio ended within $bound s" "still running; killing it"
		for p in $(pidof fio); do stuck "fio-$1" "$p"; done
		kill -9 $(pidof fio)
		if ! wait_pid $fio_pid "$(scaled 10)"; then
			fail "$1 round, fio killed" \
				"fio does not die within $(scaled 10) s of SIGKILL: stuck in the kernel"
			return 1
		fi
	fi
	wait $fio_pid
	echo "@@TIME $1 fio-ended $t0 $(uptime_s)"
	fio_results "$1"
	echo "@@FIOMSG $1 $(fio_errors "$1")"
	return 0
}

# reader NAME: while fio runs and the teardown happens, reads the pattern
# region [0, 2 MiB) again and again with O_DIRECT until the disk is gone
# (or /tmp/NAME.stop exists, or 4 * $bound s passed), and creates
# /tmp/NAME.good after its first read of the whole pattern. Every read must
# return the pattern, a prefix of it (a short read or EOF once the disk has
# no capacity left) or an error; other bytes mean the driver completed a
# read it never ran, or ran it into the wrong buffer. fio's own verify
# cannot tell: after del_gendisk, O_DIRECT reads end at EOF with 0 bytes and
# fio then "verifies" the stale buffer ("verify: bad header"), with the C
# driver too.
# Only a block device is read: each read opens /dev/$d once, checks that
# what it opened is a block device (see on_bdev in lib.sh) and reads that
# very device. A missing node or anything else at the path ends the reader
# without counting a read; an open of the node that fails is an error.
reader() {
	local end good=0 short=0 bad=0 r size why opened t0
	t0=$(uptime_s)
	end=$(($(cut -d. -f1 /proc/uptime) + 4 * bound))
	why="time limit ($((4 * bound)) s)"
	while [ "$(cut -d. -f1 /proc/uptime)" -lt $end ]; do
		[ -e /tmp/"$1".stop ] && { why="asked to stop"; break; }
		: >/tmp/"$1".rd # a read that fails leaves no old bytes to compare
		opened=
		{
			if [ -b $BDEV ]; then
				opened=bdev
				dd if=$BDEV of=/tmp/"$1".rd bs=64k count=32 iflag=direct
			else
				opened=other
			fi
		} 2>/dev/null 9</dev/$d
		if [ "$opened" != bdev ]; then
			if [ -z "$opened" ] && [ -b /dev/$d ]; then
				short=$((short + 1)) # the block device node cannot be opened
				continue
			fi
			why="/dev/$d is not a block device: $(ls -ld /dev/$d 2>&1)"
			break
		fi
		size=$(wc -c </tmp/"$1".rd)
		r=$(cmp /tmp/"$1".rd /tmp/want.bin 2>&1)
		case "$r" in
		*differ*)
			bad=$((bad + 1))
			echo "@@BADREAD $1 $size bytes read: $r"
			;;
		"")
			good=$((good + 1))
			[ $good -eq 1 ] && touch /tmp/"$1".good
			;;
		*) short=$((short + 1)) ;;
		esac
	done
	echo "@@READER_STOP $1 after $(since "$t0") s: $why"
	echo "@@READER $1 good=$good short=$short bad=$bad"
}

# start_reader NAME / stop_reader NAME: runs reader in the background;
# stops it and checks what it saw.
start_reader() {
	rm -f /tmp/"$1".stop /tmp/"$1".good
	reader "$1" >/tmp/"$1".reader &
	reader_pid=$!
}
stop_reader() {
	local res
	touch /tmp/"$1".stop
	wait_pid $reader_pid "$bound" || { stuck "reader-$1" $reader_pid; give_up "the reader" "$bound"; }
	wait $reader_pid
	cat /tmp/"$1".reader
	res=$(grep '^@@READER ' /tmp/"$1".reader)
	check "$1 round, concurrent reads of the pattern returned it, a prefix or an error, never other data" \
		[ -n "$res" -a -z "$(echo "$res" | grep -v ' bad=0$')" ]
	check "$1 round, concurrent reads of the pattern succeeded before the teardown" \
		[ -z "$(echo "$res" | grep ' good=0 ')" ]
}

# verify_messages NAME: how many verify complaints fio printed (reported,
# not judged: see reader).
verify_messages() {
	echo "@@VERIFY_FAILURES $1 $(cat /tmp/"$1".err /tmp/"$1".out | grep -v '^3;' | grep -ciE 'verify|crc')"
}

# no_verify_failure NAME: with the disk left alone, fio must not have seen
# any data it did not write.
no_verify_failure() {
	local v
	verify_messages "$1"
	v=$(cat /tmp/"$1".err /tmp/"$1".out | grep -v '^3;' | grep -iE 'verify|crc' | head -n 4 | tr '\n' ' ')
	if [ -z "$v" ] && [ -z "$(fio_results "$1" | grep ' err=84 ')" ]; then
		pass "$1 round, no fio verify failure"
	else
		fail "$1 round, no fio verify failure" "$(fio_results "$1" | tr '\n' ' ') $v"
	fi
}

# give_up WHAT SECONDS: stops the test when something hangs (the rest would
# hang too).
give_up() {
	fail "teardown stopped" "$1 did not end within $2 s; see the @@STUCK lines"
	exit 1
}

# Round 1: unbind under load.
bdf=$(disk_bdf "$d")
start_reader unbind
start_fio unbind
t0=$(uptime_s)
bounded unbind "$bound" drv_unbind "$bdf" || give_up "sysfs unbind" "$bound"
echo "@@TIME unbind $t0 $(uptime_s)"
bounded_ok "unbind round, sysfs unbind succeeded" unbind
fio_gone unbind || give_up fio "$((bound + $(scaled 10)))"
stop_reader unbind
check "unbind round, fio reported errors (all jobs)" [ "$(fio_results unbind | grep -c ' err=0 ')" -eq 0 ]
verify_messages unbind
check "unbind round, controller unbound" [ -z "$(drv_bound | grep "$bdf")" ]
check "unbind round, disk gone" [ ! -e /sys/block/$d ]
bounded rmmod1 "$bound" drv_unload || give_up rmmod "$bound"
bounded_ok "unbind round, rmmod once fio has ended" rmmod1

# Round 2: rmmod under load.
check "reload $IO_DRIVER driver" drv_load 1
d=$(drv_disks | head -n1)
check_pattern "pattern intact after unbind under load" /dev/$d $seed 0 $((2 * MiB))
start_reader rmmod
start_fio rmmod
t0=$(uptime_s)
bounded rmmod2 "$bound" rmmod "$IO_MODULE" || give_up "rmmod under load" "$bound"
echo "@@TIME rmmod $t0 $(uptime_s)"
echo "@@RMMOD_UNDER_LOAD rc=$bounded_rc: $(tr '\n' ' ' </tmp/rmmod2.bg)"
if [ "$bounded_rc" -ne 0 ]; then
	check "rmmod round, refused because the module is in use" \
		[ -n "$(grep -iE 'in use|temporarily unavailable|busy' /tmp/rmmod2.bg)" ]
	check "rmmod round, fio still running after the refused rmmod" kill -0 $fio_pid
	kill -INT $fio_pid
	fio_gone rmmod || give_up "fio after SIGINT" "$((bound + $(scaled 10)))"
	stop_reader rmmod
	check "rmmod round, fio saw no errors" [ "$(fio_results rmmod | grep -vc ' err=0 ')" -eq 0 ]
	no_verify_failure rmmod
	bounded rmmod3 "$bound" drv_unload || give_up rmmod "$bound"
	bounded_ok "rmmod round, rmmod once fio has ended" rmmod3
else
	check "rmmod round, module gone" [ -z "$(grep "^$IO_MODULE " /proc/modules)" ]
	fio_gone rmmod || give_up fio "$((bound + $(scaled 10)))"
	stop_reader rmmod
	check "rmmod round, fio reported errors (all jobs)" [ "$(fio_results rmmod | grep -c ' err=0 ')" -eq 0 ]
	verify_messages rmmod
	if [ "$IO_DRIVER" = c ]; then check "rmmod round, rmmod nvme_core" rmmod nvme_core; fi
fi

check "reload $IO_DRIVER driver again" drv_load 1
d=$(drv_disks | head -n1)
check_pattern "pattern intact after rmmod under load" /dev/$d $seed 0 $((2 * MiB))
jobfile "$d" $((2 * MiB)) >/tmp/after.fio
echo "@@JOBFILE after: $(tr '\n' ' ' </tmp/after.fio)"
fio_run after /tmp/after.fio
fio_check after /tmp/after.fio
check "unload $IO_DRIVER driver at the end" drv_unload
echo "@@IO_END"
