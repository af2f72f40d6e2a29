# SPDX-License-Identifier: GPL-2.0
# `make qemu`: bind rsnvme to the emulated controller and show what it found.
. /tests/lib.sh

echo "== NVMe controllers in this VM"
for d in $(nvme_devices); do
	echo "$d vendor $(cat /sys/bus/pci/devices/$d/vendor) device $(cat /sys/bus/pci/devices/$d/device)"
done
echo "== insmod rsnvme.ko"
insmod $MOD
echo "== bound to rsnvme:"
ls "$DRV" | grep '^0000:'
echo "== kernel log of rsnvme"
dmesg | grep 'rsnvme 0000'
echo "== rmmod rsnvme"
rmmod rsnvme
dmesg | grep 'rsnvme 0000.*unbinding' | tail -1
