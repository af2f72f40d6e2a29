# SPDX-License-Identifier: GPL-2.0
# rsnvme installed into a modules tree (tests/install_tests.py): by `make
# install INSTALL_MOD_PATH=...` (rsnvme_moddir=extra) or by DKMS
# (rsnvme_moddir=updates/dkms), put into /lib/modules/<release>/ of this
# initramfs. kmod's modprobe (Debian's, at /sbin) must find it through
# modules.dep, resolve the controller's PCI modalias to it as udev would,
# load it, serve a disk, and unload it.
. /tests/lib.sh

KVER=$(uname -r)
MODDIR=${rsnvme_moddir:-extra}
SEED=${rsnvme_seed:-1000000}
# kmod is one program that acts as modprobe, modinfo, depmod... by its name.
mkdir -p /sbin
for tool in modprobe modinfo depmod lsmod; do ln -sf /usr/bin/kmod /sbin/$tool; done
MODPROBE=/sbin/modprobe

v=$($MODPROBE --version 2>&1 | head -n1)
echo "@@KMOD $v"
check "modprobe is kmod's" [ "${v#kmod version}" != "$v" ]
check "/lib/modules/$KVER/$MODDIR/rsnvme.ko is installed" [ -f "/lib/modules/$KVER/$MODDIR/rsnvme.ko" ]
file=$(/sbin/modinfo -F filename rsnvme 2>&1)
echo "@@MODINFO filename=$file"
echo "@@MODINFO alias=$(/sbin/modinfo -F alias rsnvme 2>&1 | tr '\n' ' ')"
echo "@@MODINFO vermagic=$(/sbin/modinfo -F vermagic rsnvme 2>&1)"
echo "@@MODFILE_MD5 $(md5sum <"$file" | cut -d' ' -f1)"
check "modinfo finds rsnvme in $MODDIR/" [ "$file" = "/lib/modules/$KVER/$MODDIR/rsnvme.ko" ]
check "modules.alias maps the NVMe class to rsnvme" \
	grep -qxF 'alias pci:v*d*sv*sd*bc01sc08i02* rsnvme' "/lib/modules/$KVER/modules.alias"

bdf=$(nvme_devices | head -n1)
alias=$(cat "/sys/bus/pci/devices/$bdf/modalias")
resolved=$($MODPROBE -R "$alias" 2>&1 | tr '\n' ' ')
echo "@@RESOLVE $alias -> $resolved"
check "the controller's modalias resolves to rsnvme" [ "$resolved" = "rsnvme " ]

# loaded_from WHAT: rsnvme is in /proc/modules, bound to the controller,
# and serves a disk.
loaded() {
	grep "^rsnvme " /proc/modules | sed 's/^/@@PROC_MODULES /'
	check "$1, rsnvme in /proc/modules" grep -q "^rsnvme " /proc/modules
	check "$1, rsnvme bound to the controller" [ -e "$DRV/$bdf" ]
	drv_wait_disks 1
}

# unloaded WHAT: modprobe -r rsnvme took the module and its disk away.
unload() {
	check "$1, modprobe -r rsnvme" $MODPROBE -r rsnvme
	check "$1, rsnvme gone from /proc/modules" sh -c '! grep -q "^rsnvme " /proc/modules'
	check "$1, its disk is gone" [ ! -e /sys/block/rsnvme0n1 ]
}

check "modprobe rsnvme" $MODPROBE rsnvme
loaded "modprobe rsnvme"
disk=$(rsnvme_disk) && {
	pattern_write "$disk" "$SEED" 0 $MiB
	check_pattern "pattern written through the modprobed driver" "$disk" "$SEED" 0 $MiB
}
unload "modprobe rsnvme"

# What udev does for a new device: modprobe its modalias.
check "modprobe by the controller's modalias" $MODPROBE "$alias"
loaded "modprobe by modalias"
disk=$(rsnvme_disk) &&
	check_pattern "pattern reads back after reloading by modalias" "$disk" "$SEED" 0 $MiB
unload "modprobe by modalias"

kmemleak_report
dma_allocations
