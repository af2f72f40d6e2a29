# SPDX-License-Identifier: GPL-2.0
# The PCI command register cleared under load (issue 8), as a user would
# with setpci: fio writes and verifies (verify_backlog) two namespaces whose
# I/O timeout is short ($rsnvme_timeout s, scaled); once it does I/O, the
# memory space and bus master bits are cleared (the emulated controller can
# no longer be reached nor reach memory), held until no disk has completed
# a write for a second (the controller has stopped; at most 10 s, scaled),
# then restored. The driver must recover (the stalled requests time out and
# the controller is reset) and I/O must resume; fio must end on SIGINT with
# no error and no verify complaint, and a later pattern check and a fio
# write and verify pass must succeed. The host checks that QEMU's
# controller was enabled again and the driver's reset lines.
. /tests/lib.sh

timeout=$(scaled "${rsnvme_timeout:-3}")
bound=$(scaled 30)
trace_mark "$(nvme_devices)"
check "load $IO_DRIVER driver with 2 disks" drv_load 2
disks=$(drv_disks)
for d in $disks; do disk_info "$d"; done
bdf=$(disk_bdf "${disks%% *}")
set_io_timeout "$timeout" $disks
patterns_before $disks

# all_writes: writes completed by all the disks together.
all_writes() {
	local d n=0
	for d in $disks; do n=$((n + $(disk_writes "$d"))); done
	echo $n
}

# wait_stalled SECONDS: waits until no disk has completed a write for a
# second, at most SECONDS.
wait_stalled() {
	local t quiet=0 last now
	t=$(($1 * 10))
	last=$(all_writes)
	while [ "$t" -gt 0 ]; do
		usleep 100000
		t=$((t - 1))
		now=$(all_writes)
		if [ "$now" = "$last" ]; then
			quiet=$((quiet + 1))
			[ $quiet -ge 10 ] && return 0
		else
			quiet=0
			last=$now
		fi
	done
	return 1
}

rec_jobfile 600 "" $disks >/tmp/pcicmd.fio
progress_mark $disks
fio_start pcicmd /tmp/pcicmd.fio
wait_progress "fio doing I/O before the command register is cleared" 100 "$(scaled 60)" $disks
cmd=$(pci_command "$bdf")
echo "@@PCI_COMMAND $bdf $(printf 0x%04x "$cmd")"
check "memory space and bus master enabled before" [ $((cmd & 6)) -eq 6 ]
t0=$(uptime_s)
w0=$(all_writes)
pci_command_set "$bdf" $((cmd & ~6)) && pass "memory space and bus master cleared under fio"
hold=$(scaled 10)
if wait_stalled "$hold"; then
	pass "I/O stopped while memory space and bus master were off"
else
	fail "I/O stopped while memory space and bus master were off" \
		"writes still completing after $hold s ($(($(all_writes) - w0)) since the clear)"
fi
pci_command_set "$bdf" "$cmd" && pass "command register restored"
echo "@@HOLD $(since "$t0") s, $(($(all_writes) - w0)) writes completed meanwhile, I/O timeout $timeout s"
t0=$(uptime_s)
progress_mark $disks
wait_progress "I/O resumes after the command register is restored" 100 \
	$((2 * timeout + $(scaled 60))) $disks &&
	pass "I/O resumes after the command register is restored"
echo "@@TIME resumed $(since "$t0") s after the restore"
echo "@@PCI_COMMAND $bdf $(printf 0x%04x "$(pci_command "$bdf")") after the recovery"
fio_end pcicmd "$(scaled 60)" INT
fio_check_stopped pcicmd $(($(nproc) * $(echo $disks | wc -w)))
patterns_after "after the recovery" $disks
rec_jobfile "" $((2 * MiB)) $disks >/tmp/after.fio
echo "@@JOBFILE after: $(tr '\n' ' ' </tmp/after.fio)"
fio_run after /tmp/after.fio
fio_check after /tmp/after.fio
unload_after_timeout
echo "@@IO_END"
