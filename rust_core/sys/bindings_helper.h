/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel C functions, types and constants rsnvme uses. gen_bindings.sh
 * runs bindgen on this header at build time, generating each RSNVME_FN(),
 * RSNVME_TYPE() and RSNVME_VAR() below together with the types they use
 * (rust_core/sys/bindings_generated.rs). Macros that bindgen cannot
 * evaluate are given as typed constants first, as the kernel's own
 * rust/bindings/bindings_helper.h does.
 */
#include <linux/device.h>
#include <linux/dma-mapping.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/moduleparam.h>
#include <linux/pci.h>
#include <linux/sysfs.h>

#define RSNVME_FN(name)
#define RSNVME_TYPE(name)
#define RSNVME_VAR(name)
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
RSNVME_FN(dma_alloc_attrs)
RSNVME_FN(dma_free_attrs)
const gfp_t RSNVME_GFP_KERNEL_ZERO = GFP_KERNEL | __GFP_ZERO;
RSNVME_VAR(RSNVME_GFP_KERNEL_ZERO)
/* Interrupt vectors and handlers. */
RSNVME_FN(pci_alloc_irq_vectors_affinity)
RSNVME_FN(pci_free_irq_vectors)
RSNVME_FN(pci_irq_vector)
RSNVME_FN(request_threaded_irq)
RSNVME_FN(free_irq)
const unsigned int RSNVME_PCI_IRQ_ALL_TYPES = PCI_IRQ_ALL_TYPES;
RSNVME_VAR(RSNVME_PCI_IRQ_ALL_TYPES)
RSNVME_VAR(IRQF_SHARED)
RSNVME_TYPE(irqreturn)
/* Module parameters. */
RSNVME_TYPE(kernel_param)
RSNVME_VAR(param_ops_uint)
/* sysfs attributes. */
RSNVME_FN(sysfs_create_group)
RSNVME_FN(sysfs_remove_group)
RSNVME_FN(sysfs_emit)
RSNVME_TYPE(device_attribute)
/* CPUs. */
RSNVME_VAR(__num_online_cpus)
