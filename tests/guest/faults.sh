# SPDX-License-Identifier: GPL-2.0
# Makes probe fail at each point the `fault` module parameter can inject,
# then binds normally: every failure must unwind completely, leaving the
# controller usable and nothing leaked. The host checks the messages.
. /tests/lib.sh

kmemleak_clear
for f in 1 2 3 4; do
	echo "@@FAULT $f start"
	insmod $MOD fault=$f
	check "fault=$f leaves the controller unbound" [ "$(bound_count)" -eq 0 ]
	rmmod rsnvme
	echo "@@FAULT $f end"
done
check "insmod after faults" insmod $MOD
check "bound after faults" [ "$(bound_count)" -eq 1 ]
check "rmmod after faults" rmmod rsnvme

# I/O that never reaches the device: the I/O timeout resets the controller
# and fails the request, and a normal load afterwards works.
echo "@@FAULT 5 start"
insmod $MOD fault=5
disk=$(rsnvme_disk)
if ! is_bdev "fault=5 read fails" "$disk"; then
	: # no disk to read: failed already
elif on_bdev "fault=5 read" "$disk" dd if=$BDEV of=/dev/null bs=4k count=1 iflag=direct 2>/tmp/dd.err; then
	fail "fault=5 read fails" "dd succeeded"
else
	pass "fault=5 read fails"
fi
rmmod rsnvme
echo "@@FAULT 5 end"
insmod $MOD
disk=$(rsnvme_disk)
check "read after fault=5" on_bdev "read after fault=5" "$disk" \
	dd if=$BDEV of=/dev/null bs=4k count=1 iflag=direct
rmmod rsnvme
dma_allocations
kmemleak_report
