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
dma_allocations
kmemleak_report
