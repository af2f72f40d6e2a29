/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The kernel C functions, types and constants rsnvme uses. gen_bindings.sh
 * runs bindgen on this header at build time, generating each RSNVME_FN(),
 * RSNVME_TYPE() and RSNVME_VAR() below together with the types they use
 * (rust_core/sys/bindings_generated.rs). Macros that bindgen cannot
 * evaluate are given as typed constants first, as the kernel's own
 * rust/bindings/bindings_helper.h does.
 */
#include <linux/blk-mq.h>
#include <linux/capability.h>
#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/blkdev.h>
#include <linux/device.h>
#include <linux/dmapool.h>
#include <linux/scatterlist.h>
#include <linux/dma-mapping.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/moduleparam.h>
#include <linux/pci.h>
#include <linux/sysfs.h>
#include <linux/workqueue.h>
#include <linux/version.h>
#include <linux/io_uring/cmd.h>

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
RSNVME_FN(pci_clear_master)
RSNVME_FN(pci_device_is_present)
RSNVME_FN(pci_read_config_word)
RSNVME_FN(pci_write_config_word)
RSNVME_VAR(PCI_COMMAND)
RSNVME_VAR(PCI_COMMAND_MEMORY)
RSNVME_VAR(PCI_COMMAND_MASTER)
RSNVME_FN(pci_request_region)
RSNVME_FN(pci_release_region)
RSNVME_FN(pci_iomap)
RSNVME_FN(pci_iounmap)
RSNVME_FN(ioread32)
RSNVME_FN(iowrite32)
/* DMA. */
RSNVME_FN(dma_set_mask)
RSNVME_FN(dma_set_coherent_mask)
RSNVME_FN(dma_alloc_attrs)
RSNVME_FN(dma_free_attrs)
RSNVME_FN(dma_max_mapping_size)
RSNVME_FN(dma_opt_mapping_size)
RSNVME_TYPE(device_dma_parameters)
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
RSNVME_TYPE(irq_affinity)
/* Module parameters. */
RSNVME_TYPE(kernel_param)
RSNVME_VAR(param_ops_uint)
/* sysfs attributes (a driver's dev_groups). */
RSNVME_FN(sysfs_emit)
RSNVME_TYPE(device_attribute)
RSNVME_TYPE(attribute_group)
/* DMA mapping of request data, PRP list pools. */
RSNVME_FN(dma_map_sg_attrs)
RSNVME_FN(dma_map_page_attrs)
RSNVME_FN(dma_unmap_page_attrs)
RSNVME_FN(debug_dma_mapping_error)
const dma_addr_t RSNVME_DMA_MAPPING_ERROR = DMA_MAPPING_ERROR;
RSNVME_VAR(RSNVME_DMA_MAPPING_ERROR)
const req_flags_t RSNVME_RQF_SPECIAL_PAYLOAD = RQF_SPECIAL_PAYLOAD;
RSNVME_VAR(RSNVME_RQF_SPECIAL_PAYLOAD)
RSNVME_FN(dma_unmap_sg_attrs)
RSNVME_FN(sg_init_table)
RSNVME_FN(dma_pool_destroy)
RSNVME_FN(dma_pool_alloc)
RSNVME_FN(dma_pool_free)
RSNVME_TYPE(dma_data_direction)
const gfp_t RSNVME_GFP_ATOMIC = GFP_ATOMIC;
RSNVME_VAR(RSNVME_GFP_ATOMIC)
/* blk-mq and gendisk. */
RSNVME_FN(blk_mq_alloc_tag_set)
RSNVME_FN(blk_mq_free_tag_set)
RSNVME_FN(blk_mq_map_queues)
RSNVME_FN(blk_mq_start_request)
RSNVME_FN(blk_mq_end_request)
RSNVME_FN(blk_mq_complete_request)
RSNVME_FN(blk_mq_complete_request_remote)
RSNVME_FN(blk_mq_end_request_batch)
RSNVME_TYPE(io_comp_batch)
const req_flags_t RSNVME_RQF_SCHED_TAGS = RQF_SCHED_TAGS;
RSNVME_VAR(RSNVME_RQF_SCHED_TAGS)
/* The flags for which blk_mq_need_time_stamp() asks for a time stamp. */
const req_flags_t RSNVME_RQF_NEED_TS = RQF_IO_STAT | RQF_STATS | RQF_USE_SCHED;
RSNVME_VAR(RSNVME_RQF_NEED_TS)
RSNVME_TYPE(blk_mq_tags)
RSNVME_FN(blk_mq_tagset_busy_iter)
RSNVME_FN(blk_mq_tagset_wait_completed_request)
RSNVME_FN(blk_mq_quiesce_tagset)
RSNVME_FN(blk_mq_unquiesce_tagset)
RSNVME_FN(blk_mq_quiesce_queue)
RSNVME_FN(blk_mq_requeue_request)
RSNVME_FN(__blk_should_fake_timeout)
const req_flags_t RSNVME_RQF_DONTPREP = RQF_DONTPREP;
RSNVME_VAR(RSNVME_RQF_DONTPREP)
const unsigned int RSNVME_QUEUE_FLAG_FAIL_IO = QUEUE_FLAG_FAIL_IO;
RSNVME_VAR(RSNVME_QUEUE_FLAG_FAIL_IO)
const blk_opf_t RSNVME_REQ_FAILFAST_MASK = REQ_FAILFAST_MASK;
RSNVME_VAR(RSNVME_REQ_FAILFAST_MASK)
RSNVME_FN(__blk_rq_map_sg)
RSNVME_FN(__blk_mq_alloc_disk)
/* Requests of the driver's own: the admin queue, passthrough commands. */
RSNVME_FN(blk_mq_alloc_queue)
RSNVME_FN(blk_mq_destroy_queue)
RSNVME_FN(blk_put_queue)
RSNVME_FN(blk_mq_alloc_request)
RSNVME_FN(blk_mq_free_request)
RSNVME_FN(blk_execute_rq)
RSNVME_FN(blk_rq_map_user)
RSNVME_FN(blk_rq_unmap_user)
const gfp_t RSNVME_GFP_KERNEL = GFP_KERNEL;
RSNVME_VAR(RSNVME_GFP_KERNEL)
RSNVME_FN(device_add_disk)
RSNVME_FN(del_gendisk)
RSNVME_FN(blkdev_issue_flush)
RSNVME_FN(put_disk)
RSNVME_FN(set_capacity)
RSNVME_FN(set_capacity_and_notify)
RSNVME_TYPE(blk_mq_ops)
RSNVME_TYPE(blk_mq_tag_set)
RSNVME_TYPE(blk_mq_queue_data)
RSNVME_TYPE(block_device_operations)
RSNVME_TYPE(queue_limits)
RSNVME_TYPE(req_op)
RSNVME_TYPE(mq_rq_state)
RSNVME_TYPE(blk_eh_timer_return)
RSNVME_TYPE(hctx_type)
RSNVME_VAR(BLK_MQ_F_SHOULD_MERGE)
RSNVME_VAR(NUMA_NO_NODE)
const unsigned int RSNVME_PCI_IRQ_AFFINITY = PCI_IRQ_AFFINITY;
RSNVME_VAR(RSNVME_PCI_IRQ_AFFINITY)
const blk_opf_t RSNVME_REQ_OP_MASK = REQ_OP_MASK;
RSNVME_VAR(RSNVME_REQ_OP_MASK)
const blk_opf_t RSNVME_REQ_FUA = REQ_FUA;
RSNVME_VAR(RSNVME_REQ_FUA)
const blk_features_t RSNVME_BLK_FEAT_WRITE_CACHE = BLK_FEAT_WRITE_CACHE;
const blk_features_t RSNVME_BLK_FEAT_FUA = BLK_FEAT_FUA;
RSNVME_VAR(RSNVME_BLK_FEAT_.*)
const blk_status_t RSNVME_BLK_STS_OK = BLK_STS_OK;
const blk_status_t RSNVME_BLK_STS_NOTSUPP = BLK_STS_NOTSUPP;
const blk_status_t RSNVME_BLK_STS_NOSPC = BLK_STS_NOSPC;
const blk_status_t RSNVME_BLK_STS_TARGET = BLK_STS_TARGET;
const blk_status_t RSNVME_BLK_STS_MEDIUM = BLK_STS_MEDIUM;
const blk_status_t RSNVME_BLK_STS_PROTECTION = BLK_STS_PROTECTION;
const blk_status_t RSNVME_BLK_STS_RESOURCE = BLK_STS_RESOURCE;
const blk_status_t RSNVME_BLK_STS_IOERR = BLK_STS_IOERR;
RSNVME_VAR(RSNVME_BLK_STS_.*)
/*
 * Deferred work (error recovery, events) on a workqueue of the driver's
 * own, unbound and with a rescuer for the memory reclaim path.
 */
RSNVME_FN(destroy_workqueue)
const unsigned int RSNVME_WQ_FLAGS = WQ_UNBOUND | WQ_MEM_RECLAIM;
RSNVME_VAR(RSNVME_WQ_FLAGS)
void rust_helper_init_work_with_key(struct work_struct *work, work_func_t func,
				    bool onstack, const char *name,
				    struct lock_class_key *key);
RSNVME_FN(rust_helper_init_work_with_key)
RSNVME_FN(queue_work_on)
RSNVME_FN(cancel_work_sync)
const int RSNVME_WORK_CPU_UNBOUND = WORK_CPU_UNBOUND;
RSNVME_VAR(RSNVME_WORK_CPU_UNBOUND)
/* CPUs. */
RSNVME_VAR(__num_online_cpus)
/* The controller's character device (misc class) and its ioctls. */
RSNVME_FN(misc_register)
RSNVME_FN(misc_deregister)
RSNVME_TYPE(miscdevice)
RSNVME_TYPE(file_operations)
RSNVME_VAR(MISC_DYNAMIC_MINOR)
RSNVME_FN(capable)
RSNVME_VAR(CAP_SYS_ADMIN)
/*
 * io_uring passthrough on a namespace's generic character device:
 * commands sent without waiting, their buffers mapped (vectored or not),
 * completed in the submitter's task, and polled for.
 */
RSNVME_TYPE(io_uring_cmd)
RSNVME_FN(__io_uring_cmd_do_in_task)
RSNVME_FN(blk_execute_rq_nowait)
RSNVME_FN(blk_rq_map_user_io)
RSNVME_FN(blk_rq_poll)
RSNVME_FN(blk_rq_is_poll)
RSNVME_TYPE(rq_end_io_ret)
const unsigned int RSNVME_IO_URING_F_NONBLOCK = IO_URING_F_NONBLOCK;
const unsigned int RSNVME_IO_URING_F_SQE128 = IO_URING_F_SQE128;
const unsigned int RSNVME_IO_URING_F_CQE32 = IO_URING_F_CQE32;
const unsigned int RSNVME_IO_URING_F_IOPOLL = IO_URING_F_IOPOLL;
const unsigned int RSNVME_IOU_F_TWQ_LAZY_WAKE = IOU_F_TWQ_LAZY_WAKE;
const unsigned int RSNVME_IORING_URING_CMD_FIXED = IORING_URING_CMD_FIXED;
RSNVME_VAR(RSNVME_IO.*)
const int RSNVME_EIOCBQUEUED = EIOCBQUEUED;
RSNVME_VAR(RSNVME_EIOCBQUEUED)
const blk_opf_t RSNVME_REQ_POLLED = REQ_POLLED;
const blk_opf_t RSNVME_REQ_NOWAIT = REQ_NOWAIT;
RSNVME_VAR(RSNVME_REQ_POLLED)
RSNVME_VAR(RSNVME_REQ_NOWAIT)
const blk_mq_req_flags_t RSNVME_BLK_MQ_REQ_NOWAIT = BLK_MQ_REQ_NOWAIT;
RSNVME_VAR(RSNVME_BLK_MQ_REQ_NOWAIT)

/*
 * What differs between the kernels rsnvme builds against, 6.12 and 7.3
 * (rust_core/sys/compat.rs uses these; Kbuild sets the matching Rust cfg
 * rsnvme_linux_7_3 for 7.3 and later).
 */
#if LINUX_VERSION_CODE < KERNEL_VERSION(7, 3, 0)
#include <linux/blk-mq-pci.h>
#endif
/* 6.12: the PCI queue map; 7.3: the generic one (6.14 removed the former). */
RSNVME_FN(blk_mq_pci_map_queues)
RSNVME_FN(blk_mq_map_hw_queues)
/* 6.12: a function; 7.3: a static inline around dma_pool_create_node(). */
RSNVME_FN(dma_pool_create)
RSNVME_FN(dma_pool_create_node)
/* 6.12: a function; 7.3: a macro around alloc_workqueue_noprof(). */
RSNVME_FN(alloc_workqueue)
RSNVME_FN(alloc_workqueue_noprof)
/*
 * 6.12: io_uring_cmd_done() posts any CQE, task work gets the command;
 * 7.3: __io_uring_cmd_done() says whether the CQE is 32 bytes, task work
 * gets a struct io_tw_req and a token.
 */
RSNVME_FN(io_uring_cmd_done)
RSNVME_FN(__io_uring_cmd_done)
RSNVME_TYPE(io_tw_req)
RSNVME_TYPE(io_tw_state)
const unsigned int RSNVME_IO_URING_F_COMPLETE_DEFER = IO_URING_F_COMPLETE_DEFER;
RSNVME_VAR(RSNVME_IO_URING_F_COMPLETE_DEFER)
