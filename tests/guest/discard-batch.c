// SPDX-License-Identifier: GPL-2.0
/*
 * Many small discards of one block device submitted at once, so that
 * blk-mq merges them into multi-range discard requests. Built static on
 * the host (tests/io_tests.py) and run in the guest by io-discard.sh:
 *
 *   discard-batch DEV BASE COUNT
 *
 * sends COUNT io_uring BLOCK_URING_CMD_DISCARD commands (Linux 6.12) with
 * one io_uring_enter. io_uring issues a batch of more than two SQEs under
 * one block plug, and blk-mq merges each discard bio into the plug's last
 * request while it has fewer than max_discard_segments bios
 * (bio_attempt_discard_merge), so the disk gets requests of up to that
 * many ranges, one range per command, in the order submitted.
 *
 * The k-th command (k = 0 .. COUNT-1) discards range j = 7 * k mod COUNT:
 * bytes [BASE + j * 12 KiB, + 4 KiB << (j % 2)), i.e. 4 KiB or 8 KiB with
 * a gap of 8 KiB or 4 KiB after it; COUNT must not be a multiple of 7, so
 * that every range is discarded once (tests/io_tests.py computes the same
 * ranges). The order is not the disk order on purpose: a driver must not
 * assume sorted ranges.
 *
 * The page cache of the device is dropped first (BLKFLSBUF): a discard
 * over cached pages cannot be issued without blocking, and io_uring would
 * then hand it to a worker thread, outside the plug. Prints
 *
 *   @@DISCARD_BATCH dev=DEV count=N submitted=S ok=K failed=F errno=E
 *
 * (E: the first failed command's error, 0 if none) and exits 0 when every
 * command completed without error.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/fs.h>
#include <linux/io_uring.h>

/* include/uapi/linux/blkdev.h of Linux 6.12; the host's headers may predate it. */
#ifndef BLOCK_URING_CMD_DISCARD
#define BLOCK_URING_CMD_DISCARD _IO(0x12, 0)
#endif

#define MAX_COUNT 1024
#define STEP (12u << 10)
#define SMALL (4u << 10)

/* Byte range of the j-th discard (see the top of this file). */
static void range_of(uint64_t base, unsigned int j, uint64_t *start, uint64_t *len)
{
	*start = base + (uint64_t)j * STEP;
	*len = (uint64_t)SMALL << (j % 2);
}

struct ring {
	int fd;
	unsigned int *sq_tail, *sq_mask, *sq_array;
	unsigned int *cq_head, *cq_tail, *cq_mask;
	struct io_uring_sqe *sqes;
	struct io_uring_cqe *cqes;
};

static void *map(int fd, size_t len, off_t what)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, what);

	return p == MAP_FAILED ? NULL : p;
}

static int ring_init(struct ring *r, unsigned int entries)
{
	struct io_uring_params p;
	char *sq, *cq;

	memset(&p, 0, sizeof(p));
	r->fd = syscall(__NR_io_uring_setup, entries, &p);
	if (r->fd < 0)
		return -1;
	sq = map(r->fd, p.sq_off.array + p.sq_entries * sizeof(unsigned int),
		 IORING_OFF_SQ_RING);
	cq = map(r->fd, p.cq_off.cqes + p.cq_entries * sizeof(struct io_uring_cqe),
		 IORING_OFF_CQ_RING);
	r->sqes = map(r->fd, p.sq_entries * sizeof(struct io_uring_sqe), IORING_OFF_SQES);
	if (!sq || !cq || !r->sqes)
		return -1;
	r->sq_tail = (unsigned int *)(sq + p.sq_off.tail);
	r->sq_mask = (unsigned int *)(sq + p.sq_off.ring_mask);
	r->sq_array = (unsigned int *)(sq + p.sq_off.array);
	r->cq_head = (unsigned int *)(cq + p.cq_off.head);
	r->cq_tail = (unsigned int *)(cq + p.cq_off.tail);
	r->cq_mask = (unsigned int *)(cq + p.cq_off.ring_mask);
	r->cqes = (struct io_uring_cqe *)(cq + p.cq_off.cqes);
	return 0;
}

int main(int argc, char **argv)
{
	unsigned int count, k, submitted = 0, done = 0, ok = 0, failed = 0;
	int dev, first_err = 0, ret;
	uint64_t base, start, len;
	struct stat st;
	struct ring r;
	char *end;

	if (argc != 4) {
		fprintf(stderr, "usage: %s DEV BASE COUNT\n", argv[0]);
		return 2;
	}
	base = strtoull(argv[2], &end, 0);
	if (*end)
		return 2;
	count = strtoul(argv[3], &end, 0);
	if (*end || count < 3 || count > MAX_COUNT || count % 7 == 0) {
		fprintf(stderr, "COUNT must be 3..%d and not a multiple of 7\n", MAX_COUNT);
		return 2;
	}
	/* Opening an existing path without O_CREAT creates nothing. */
	dev = open(argv[1], O_RDWR);
	if (dev < 0 || fstat(dev, &st) || !S_ISBLK(st.st_mode)) {
		fprintf(stderr, "%s: not an open block device: %s\n", argv[1],
			dev < 0 ? strerror(errno) : "not a block device");
		return 1;
	}
	if (ioctl(dev, BLKFLSBUF, 0)) {
		perror("BLKFLSBUF");
		return 1;
	}
	if (ring_init(&r, MAX_COUNT)) {
		perror("io_uring setup");
		return 1;
	}
	for (k = 0; k < count; k++) {
		struct io_uring_sqe *sqe = &r.sqes[k];

		range_of(base, (7 * k) % count, &start, &len);
		memset(sqe, 0, sizeof(*sqe));
		sqe->opcode = IORING_OP_URING_CMD;
		sqe->fd = dev;
		sqe->cmd_op = BLOCK_URING_CMD_DISCARD;
		sqe->addr = start;
		sqe->addr3 = len;
		sqe->user_data = k;
		r.sq_array[k & *r.sq_mask] = k;
	}
	/* The SQEs and the array are written before the kernel sees the tail. */
	__atomic_store_n(r.sq_tail, count, __ATOMIC_RELEASE);
	while (done < count) {
		unsigned int head, tail;

		ret = syscall(__NR_io_uring_enter, r.fd, count - submitted, count - done,
			      IORING_ENTER_GETEVENTS, NULL, 0);
		if (ret < 0) {
			if (errno == EINTR)
				continue;
			perror("io_uring_enter");
			break;
		}
		submitted += ret;
		/* The CQEs up to the tail are written before the tail. */
		tail = __atomic_load_n(r.cq_tail, __ATOMIC_ACQUIRE);
		for (head = *r.cq_head; head != tail; head++) {
			int res = r.cqes[head & *r.cq_mask].res;

			if (res == 0) {
				ok++;
			} else {
				failed++;
				if (!first_err)
					first_err = -res;
			}
			done++;
		}
		/* The CQEs are read before the kernel may reuse their slots. */
		__atomic_store_n(r.cq_head, head, __ATOMIC_RELEASE);
		if (ret == 0 && submitted < count)
			break;
	}
	printf("@@DISCARD_BATCH dev=%s count=%u submitted=%u ok=%u failed=%u errno=%d\n",
	       argv[1], count, submitted, ok, failed, first_err);
	return ok == count ? 0 : 1;
}
