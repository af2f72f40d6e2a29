# SPDX-License-Identifier: GPL-2.0
# `make bench` (qemu-ci/bench.py): the C nvme driver and rsnvme bound at
# the same time, each to its own one of two identical controllers, per
# backing ($rsnvme_null, $rsnvme_file: "C driver's BDF,rsnvme's BDF").
# Every fio row of /tests/bench-rows.txt runs against each driver in turn,
# the order alternating every round (ABBA...), for $rsnvme_rounds rounds of
# $rsnvme_seconds seconds per job. Per job it prints
#   @@BENCH <md5> <round> <backing> <driver> <row> <cpu stat before> <after> <I/Os> <fio terse v3>
# (qemu-ci/benchlib.py reads it; <md5> is that of the rest of the line) and
# @@FAIL lines for what went wrong. The serial console has been seen to lose
# bytes of a long line on a loaded host, so at the end every line is sent
# once more, as @@BENCHAGAIN, and the host keeps the first intact copy.
. /tests/lib.sh

ROUNDS=${rsnvme_rounds:-5}
# `make profile` (qemu-ci/bench.py --profile): perf's sampling period per
# CPU, in ns of CPU time (a kernel tick).
PROFILE_PERIOD=${rsnvme_profile_period:-}
PERF=/usr/bin/perf
[ -z "$PROFILE_PERIOD" ] || echo 0 >/proc/sys/kernel/kptr_restrict
SECONDS_PER_JOB=${rsnvme_seconds:-3}
[ "$SECONDS_PER_JOB" -ge 2 ] || SECONDS_PER_JOB=2

# The guest's "cpu" line of /proc/stat (all CPUs), comma-separated jiffies.
cpu_stat() { awk '/^cpu / { $1 = ""; sub(/^ /, ""); gsub(/ /, ","); print; exit }' /proc/stat; }

# bdf_driver BDF: the driver a controller is bound to (empty if none).
bdf_driver() {
	[ -e "/sys/bus/pci/devices/$1/driver" ] &&
		basename "$(readlink "/sys/bus/pci/devices/$1/driver")"
}

# bdf_disk BDF: /dev/<disk> of namespace 1 of that controller, once it exists.
bdf_disk() {
	local d i
	i=0
	while [ $i -le $(($(scaled 10) * 10)) ]; do
		for d in $(ls /sys/block); do
			case "$(readlink -f "/sys/block/$d")" in
			*"/$1/"*) [ -b "/dev/$d" ] && [ "$(disk_nsid "$d")" = 1 ] &&
				{ echo "/dev/$d"; return 0; } ;;
			esac
		done
		usleep 100000
		i=$((i + 1))
	done
	fail "bench: disk of $1" "none after $(scaled 10) s" >&7
	return 1
}

# Pairs: "<backing>/<C driver's BDF>/<rsnvme's BDF>".
# Pin each controller to its driver before either is loaded, so that
# neither grabs both.
pairs=""
for backing in null file; do
	eval "bdfs=\$rsnvme_$backing"
	[ -n "$bdfs" ] || continue
	c_bdf=${bdfs%,*}
	rs_bdf=${bdfs#*,}
	echo nvme >"/sys/bus/pci/devices/$c_bdf/driver_override" || fail "bench: override $c_bdf" "write failed"
	echo rsnvme >"/sys/bus/pci/devices/$rs_bdf/driver_override" || fail "bench: override $rs_bdf" "write failed"
	pairs="$pairs $backing/$c_bdf/$rs_bdf"
done
# One polled queue pair per controller, for the io_uring IOPOLL row; the
# other rows use the interrupt-driven queues as before.
insmod /lib/modules/nvme-core.ko && insmod /lib/modules/nvme.ko poll_queues=1 &&
	insmod "$MOD" poll_queues=1 ||
	{ fail "bench: load drivers" "insmod failed"; exit 1; }

# Disks per backing and driver: disk_<backing>_<driver>.
for p in $pairs; do
	backing=${p%%/*}
	rest=${p#*/}
	for x in "nvme ${rest%/*}" "rsnvme ${rest#*/}"; do
		set -- $x
		d=$(bdf_disk "$2") || exit 1
		drv=$(bdf_driver "$2")
		[ "$drv" = "$1" ] || { fail "bench: $2 bound to $1" "bound to '$drv'"; exit 1; }
		echo "@@BENCHDEV $backing $1 $2 $d"
		eval "disk_${backing}_$1=$d"
	done
done
echo "@@BENCHCFG rounds=$ROUNDS seconds=$SECONDS_PER_JOB cpus=$(grep -c ^processor /proc/cpuinfo)" \
	"kernel=$(uname -r)"

# Bios (reads and writes, merged or not) a disk has completed.
disk_ios() { awk '{ print $1 + $2 + $5 + $6 }' "/sys/block/${1#/dev/}/stat"; }

# run_job ROUND BACKING DRIVER ROW ENGINE RW BS IODEPTH NUMJOBS
# fio ramps up for 1 s, then measures for $SECONDS_PER_JOB s. CPU per I/O
# is measured apart from fio's start and exit: over a window from 1 s after
# the disk's first I/O (the ramp) to SECONDS_PER_JOB - 1 s later, the busy
# jiffies of the whole guest and the I/Os the disk completed in it.
run_job() {
	local dev target s0 s1 n n0 n1 out pid t start shadow
	shadow=1
	[ "${5%-noshadow}" != "$5" ] && [ "$3" = rsnvme ] && shadow=0
	[ $shadow = 1 ] || set_shadow "$2" 0 || return 1
	eval "dev=\$disk_$2_$3"
	is_bdev "bench $2 $3 $4" "$dev" || return 1
	target=$(job_file "$5" "$dev")
	out=/tmp/fio.out
	start=$(disk_ios "$dev")
	$FIO --name="$4" --filename="$target" --allow_file_create=0 \
		$(engine_args "$5") --rw="$6" --bs="$7" --iodepth="$8" \
		--numjobs="$9" --group_reporting --norandommap --randrepeat=0 \
		--time_based --ramp_time=1 --runtime="$SECONDS_PER_JOB" \
		--output-format=terse --terse-version=3 >$out 2>&1 &
	pid=$!
	t=$(($(scaled 20) * 20))
	# Passthrough commands are not in the disk's statistics: the generic
	# device's job has its ramp second only.
	[ "$target" = "$dev" ] || t=0
	while [ "$(disk_ios "$dev")" = "$start" ] && [ $t -gt 0 ] && kill -0 $pid 2>/dev/null; do
		usleep 50000
		t=$((t - 1))
	done
	sleep 1
	s0=$(cpu_stat)
	n0=$(disk_ios "$dev")
	[ -z "$PROFILE_PERIOD" ] || i0=$(bdf_irqs "$(pair_bdf "$2" "$3")")
	if [ -n "$PROFILE_PERIOD" ]; then
		# `make profile`: every CPU sampled through the window.
		$PERF record -a -e cpu-clock -c "$PROFILE_PERIOD" -N -B -q -o /tmp/perf.data \
			-- sleep $((SECONDS_PER_JOB - 1)) >/tmp/perf.out 2>&1 ||
			fail "bench $2 $3 $4" "perf record: $(tail -2 /tmp/perf.out | tr '\n' ' ')"
	else
		sleep $((SECONDS_PER_JOB - 1))
	fi
	s1=$(cpu_stat)
	n1=$(disk_ios "$dev")
	[ -z "$PROFILE_PERIOD" ] || i1=$(bdf_irqs "$(pair_bdf "$2" "$3")")
	wait $pid
	[ -z "$PROFILE_PERIOD" ] || profile_report "$1 $2 $3 $4" $((i1 - i0))
	case "$(tail -1 $out)" in
	3\;*) ;;
	*) fail "bench $2 $3 $4" "fio: $(tail -3 $out | tr '\n' ' ')" ;;
	esac
	n=$((n1 - n0))
	# On the generic device the window's I/Os are fio's (read and write)
	# IOPS times the window's length: the disk does not count them.
	[ "$target" = "$dev" ] || n=$(tail -1 $out | awk -F';' -v s=$((SECONDS_PER_JOB - 1)) \
		'{ printf "%d", ($8 + $49) * s }')
	line="$1 $2 $3 $4 $s0 $s1 $n $(tail -1 $out)"
	line="$(echo "$line" | md5sum | cut -d' ' -f1) $line"
	echo "$line" >>/tmp/bench.lines
	echo "@@BENCH $line"
	[ $shadow = 1 ] || set_shadow "$2" 1
}

# pair_bdf BACKING DRIVER: the BDF of DRIVER's controller of BACKING.
pair_bdf() {
	local p rest
	for p in $pairs; do
		[ "${p%%/*}" = "$1" ] || continue
		rest=${p#*/}
		if [ "$2" = nvme ]; then echo "${rest%/*}"; else echo "${rest#*/}"; fi
	done
}

# bdf_irqs BDF: the interrupts the controller at BDF raised, all vectors
# and CPUs (/proc/interrupts names the device in each of its MSI-X lines).
bdf_irqs() {
	awk -v b="$1" 'index($0, b) { for (i = 2; i <= NF && $i ~ /^[0-9]+$/; i++) s += $i }
		END { print s + 0 }' /proc/interrupts
}

# profile_report "ROUND BACKING DRIVER ROW" IRQS: the samples of the job's
# window per command, object and function, and the interrupts in it, as
#   @@PROF <round> <backing> <driver> <row> <ns of CPU time>|<comm>|<object>|<function>
#   @@PROFIRQ <round> <backing> <driver> <row> <interrupts>
profile_report() {
	echo "@@PROFIRQ $1 $2"
	$PERF report -i /tmp/perf.data --stdio --no-children --sort comm,dso,sym \
		-F period,comm,dso,sym -t '|' -q 2>/tmp/perf.err | while read -r line; do
		echo "@@PROF $1 $line"
	done
	grep -q . /tmp/perf.err && echo "@@PROFNOTE $1 $(head -3 /tmp/perf.err | tr '\n' ' ')"
	rm -f /tmp/perf.data
}

# set_shadow BACKING 0|1: rebinds rsnvme's controller of BACKING with the
# shadow_doorbells parameter set so, and checks its summary line says so.
set_shadow() {
	local p bdf d want
	for p in $pairs; do [ "${p%%/*}" = "$1" ] && bdf=${p##*/}; done
	echo "$2" >/sys/module/rsnvme/parameters/shadow_doorbells &&
		echo "$bdf" >/sys/bus/pci/drivers/rsnvme/unbind &&
		echo "$bdf" >/sys/bus/pci/drivers/rsnvme/bind ||
		{ fail "bench: rebind $bdf with shadow_doorbells=$2" "write failed"; return 1; }
	d=$(bdf_disk "$bdf") || return 1
	eval "disk_$1_rsnvme=$d"
	want="1 polled, shadow doorbells"
	[ "$2" = 1 ] || want="1 polled"
	case "$(dmesg | grep "rsnvme $bdf: model" | tail -1)" in
	*", $want") ;;
	*) fail "bench: $bdf rebound with shadow_doorbells=$2" \
		"$(dmesg | grep "rsnvme $bdf: model" | tail -1)"; return 1 ;;
	esac
}

# engine_args ENGINE: fio's options for a row's engine: libaio, io_uring,
# io_uring-hipri (polled: IORING_SETUP_IOPOLL), libaio-noshadow (libaio;
# run_job rebinds rsnvme without shadow doorbells), io_uring_cmd (NVMe
# passthrough on the generic character device, which takes no O_DIRECT).
engine_args() {
	case "$1" in
	io_uring_cmd) echo "--ioengine=io_uring_cmd --cmd_type=nvme" ;;
	*-hipri) echo "--ioengine=${1%-hipri} --hipri=1 --direct=1" ;;
	*) echo "--ioengine=${1%-noshadow} --direct=1" ;;
	esac
}

# job_file ENGINE DISK: what a row's fio job opens: the disk, or for
# io_uring_cmd the generic character device of its namespace
# (/dev/nvme0n1: /dev/ng0n1; /dev/rsnvme0n1: /dev/rsng0n1).
job_file() {
	case "$1:$2" in
	io_uring_cmd:/dev/rsnvme*) echo "/dev/rsng${2#/dev/rsnvme}" ;;
	io_uring_cmd:/dev/nvme*) echo "/dev/ng${2#/dev/nvme}" ;;
	*) echo "$2" ;;
	esac
}

# A row whose engine this fio or kernel lacks (io_uring) is skipped.
usable() {
	[ "${1%-noshadow}" = libaio ] && return 0
	eval "dev=\$disk_$(echo $pairs | cut -d/ -f1)_nvme"
	# shellcheck disable=SC2046 # one word per option
	$FIO --name=probe --filename="$(job_file "$1" "$dev")" --allow_file_create=0 \
		$(engine_args "$1") --rw=read --bs=4k --size=4k >/dev/null 2>&1
}
rows=""
while read -r name engine rest; do
	if usable "$engine"; then
		rows="$rows $name"
		eval "row_$(echo "$name" | tr - _)='$name $engine $rest'"
	else
		echo "@@BENCHSKIP $name: fio's $engine engine does not work in this guest"
	fi
done </tests/bench-rows.txt

r=0
while [ $r -lt "$ROUNDS" ]; do
	if [ $((r % 2)) -eq 0 ]; then order="nvme rsnvme"; else order="rsnvme nvme"; fi
	for name in $rows; do
		eval "row=\$row_$(echo "$name" | tr - _)"
		for p in $pairs; do
			for drv in $order; do
				run_job "$r" "${p%%/*}" "$drv" $row
			done
		done
	done
	echo "@@BENCHROUND $r done"
	r=$((r + 1))
done
[ -e /tmp/bench.lines ] && while read -r line; do echo "@@BENCHAGAIN $line"; done </tmp/bench.lines

for p in $pairs; do
	c=${p#*/}
	rs=${c#*/}
	c=${c%/*}
	[ "$(bdf_driver "$c")" = nvme ] && [ "$(bdf_driver "$rs")" = rsnvme ] ||
		fail "bench: drivers still bound at the end" "$c: $(bdf_driver "$c"), $rs: $(bdf_driver "$rs")"
done
rmmod rsnvme && rmmod nvme && rmmod nvme_core || fail "bench: unload drivers" "rmmod failed"
