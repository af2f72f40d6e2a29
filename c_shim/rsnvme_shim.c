// SPDX-License-Identifier: GPL-2.0
/*
 * PCI driver registration for rsnvme; all device logic is in rust_core/.
 */
#include <linux/module.h>
#include <linux/pci.h>
#include "my_pci_rust_bindings.h"

static const struct pci_device_id rsnvme_id_table[] = {
	{ PCI_DEVICE_CLASS(PCI_CLASS_STORAGE_EXPRESS, 0xffffff) },
	{ }
};
MODULE_DEVICE_TABLE(pci, rsnvme_id_table);

static int rsnvme_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	return my_rust_probe(pdev);
}

static void rsnvme_remove(struct pci_dev *pdev)
{
	my_rust_remove(pdev);
}

static DEFINE_SIMPLE_DEV_PM_OPS(rsnvme_pm_ops, my_rust_suspend, my_rust_resume);

static struct pci_driver rsnvme_driver = {
	.name = "rsnvme",
	.id_table = rsnvme_id_table,
	.probe = rsnvme_probe,
	.remove = rsnvme_remove,
	.shutdown = my_rust_shutdown,
	.driver.pm = pm_sleep_ptr(&rsnvme_pm_ops),
	.dev_groups = my_rust_dev_groups,
};
module_pci_driver(rsnvme_driver);

MODULE_DESCRIPTION("NVMe PCI block driver with its logic in Rust");
MODULE_LICENSE("GPL");
