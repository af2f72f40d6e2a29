/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel C functions rsnvme calls. gen_bindings.sh runs bindgen on this
 * header at build time, generating each RSNVME_FN() function below together
 * with the types it uses (rust_core/sys/bindings_generated.rs).
 */
#include <linux/device.h>
#include <linux/dma-mapping.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/pci.h>

#define RSNVME_FN(name)
/* Logging. */
RSNVME_FN(_dev_err)
RSNVME_FN(_dev_warn)
RSNVME_FN(_dev_info)
/* PCI device and BAR access. */
RSNVME_FN(pci_dev_get)
RSNVME_FN(pci_dev_put)
RSNVME_FN(pci_enable_device_mem)
RSNVME_FN(pci_disable_device)
RSNVME_FN(pci_set_master)
RSNVME_FN(pci_request_region)
RSNVME_FN(pci_release_region)
RSNVME_FN(pci_iomap)
RSNVME_FN(pci_iounmap)
RSNVME_FN(ioread32)
RSNVME_FN(iowrite32)
RSNVME_FN(ioread64_lo_hi)
/* DMA. */
RSNVME_FN(dma_set_mask)
RSNVME_FN(dma_set_coherent_mask)
/* Interrupt vectors. */
RSNVME_FN(pci_alloc_irq_vectors_affinity)
RSNVME_FN(pci_free_irq_vectors)
RSNVME_FN(pci_irq_vector)
