// SPDX-License-Identifier: GPL-2.0
/*
 * Passthrough commands sent at the same time from several threads, for
 * the tests of commands that stall (rsnvme's fault=9 never announces a
 * command from user space to the controller). Built static on the host
 * (tests/mgmt_tests.py) and run in the guest:
 *
 *   ptstall DEV N TIMEOUT_MS admin|io
 *
 * opens DEV (a controller's character device), starts N threads, each
 * sending one command with a timeout of TIMEOUT_MS: Identify Controller
 * (admin, NVME_IOCTL_ADMIN_CMD) or a one-block Read of namespace 1 (io,
 * NVME_IOCTL_IO_CMD), both reading 4096 bytes into a buffer of their own.
 * Prints "@@STALL started N" once all are started, then one line per
 * thread as it returns:
 *
 *   @@STALL thread=<i> ret=<ioctl return> errno=<errno> ms=<duration>
 *
 * (ret is the NVMe status when positive, 0x371 for a command the host
 * aborted), and "@@STALL done" at the end.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>
#include <linux/nvme_ioctl.h>

#define MAX_THREADS 32

static int fd;
static int io;
static unsigned int timeout_ms;

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000L + ts.tv_nsec / 1000000L;
}

static void *one(void *arg)
{
	long i = (long)arg;
	struct nvme_passthru_cmd cmd;
	void *buf;
	long start;
	int ret, err;

	if (posix_memalign(&buf, 4096, 4096))
		return NULL;
	memset(buf, 0, 4096);
	memset(&cmd, 0, sizeof(cmd));
	cmd.addr = (uintptr_t)buf;
	cmd.data_len = 4096;
	cmd.timeout_ms = timeout_ms;
	if (io) {
		cmd.opcode = 0x02;	/* Read */
		cmd.nsid = 1;
		cmd.cdw10 = (uint32_t)i;	/* a block per thread */
		cmd.cdw12 = 4096 / 512 - 1;	/* 512-byte blocks */
	} else {
		cmd.opcode = 0x06;	/* Identify */
		cmd.cdw10 = 1;		/* CNS: controller */
	}
	start = now_ms();
	errno = 0;
	ret = ioctl(fd, io ? NVME_IOCTL_IO_CMD : NVME_IOCTL_ADMIN_CMD, &cmd);
	err = errno;
	printf("@@STALL thread=%ld ret=%#x errno=%d ms=%ld\n", i, ret, err,
	       now_ms() - start);
	fflush(stdout);
	free(buf);
	return NULL;
}

int main(int argc, char **argv)
{
	pthread_t threads[MAX_THREADS];
	long n, i;

	if (argc != 5) {
		fprintf(stderr, "usage: %s DEV N TIMEOUT_MS admin|io\n", argv[0]);
		return 2;
	}
	fd = open(argv[1], O_RDWR);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	n = strtol(argv[2], NULL, 0);
	if (n < 1 || n > MAX_THREADS)
		return 2;
	timeout_ms = strtoul(argv[3], NULL, 0);
	io = !strcmp(argv[4], "io");
	for (i = 0; i < n; i++)
		if (pthread_create(&threads[i], NULL, one, (void *)i))
			return 1;
	printf("@@STALL started %ld\n", n);
	fflush(stdout);
	for (i = 0; i < n; i++)
		pthread_join(threads[i], NULL);
	printf("@@STALL done\n");
	return 0;
}
