// SPDX-License-Identifier: GPL-2.0
/*
 * Bad NVMe passthrough input that nvme-cli cannot produce (bad pointers,
 * metadata, flags, unknown ioctls, no capability), against one controller
 * character device. Built static on the host (tests/mgmt_tests.py) and run
 * in the guest. Prints one line per case:
 *
 *   @@PT <case> ret=<ioctl return> errno=<name>
 *
 * which the guest script and the host check against what each case must
 * return. With PT_SKIP_HARMFUL set (for the C driver, which sends them)
 * the huge lengths and the deletion of an I/O queue are left out. "hold
 * DEV SECONDS" opens DEV, creates /tmp/hold.ready, sleeps, then sends
 * Identify: for an ioctl on a file that outlives its controller.
 * "subsys-reset DEV" only sends NVME_IOCTL_SUBSYS_RESET (case
 * subsys-reset-alone). "part DEV" sends Identify and NVME_IOCTL_ID to a
 * partition's block device, with and without CAP_SYS_ADMIN.
 *
 * "ns DEV NSID LBS" runs the namespace ioctls against a namespace's block
 * device of NSID with LBS-byte blocks: NVME_IOCTL_ID, NVME_IOCTL_SUBMIT_IO
 * writing a pattern and reading it back (compared byte for byte), and
 * bad input to both SUBMIT_IO and NVME_IOCTL_IO_CMD (another namespace's
 * ID, bad opcodes, flags, pointers, lengths).
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
#include <unistd.h>
#include <linux/nvme_ioctl.h>

static int fd;

static const char *ename(int e)
{
	switch (e) {
	case 0: return "0";
	case EFAULT: return "EFAULT";
	case EINVAL: return "EINVAL";
	case EACCES: return "EACCES";
	case EPERM: return "EPERM";
	case ENOTTY: return "ENOTTY";
	case ENODEV: return "ENODEV";
	case EIO: return "EIO";
	case EBUSY: return "EBUSY";
	case ENOMEM: return "ENOMEM";
	default: return "other";
	}
}

static void report(const char *name, unsigned long req, void *arg)
{
	int ret;

	errno = 0;
	ret = ioctl(fd, req, arg);
	printf("@@PT %s ret=%d errno=%s\n", name, ret, ename(ret < 0 ? errno : 0));
	fflush(stdout);
}

static void identify(struct nvme_passthru_cmd *c, void *buf, unsigned int len)
{
	memset(c, 0, sizeof(*c));
	c->opcode = 0x06;
	c->cdw10 = 1;
	c->addr = (uintptr_t)buf;
	c->data_len = len;
}

static void user_io(struct nvme_user_io *io, __u8 opcode, void *buf, __u64 slba,
		    __u16 nblocks)
{
	memset(io, 0, sizeof(*io));
	io->opcode = opcode;
	io->addr = (uintptr_t)buf;
	io->slba = slba;
	io->nblocks = nblocks;
}

static int ns_cases(unsigned int nsid, unsigned int lbs)
{
	static unsigned char pat[16384] __attribute__((aligned(4096)));
	static unsigned char got[16384] __attribute__((aligned(4096)));
	unsigned int nb = sizeof(pat) / lbs, i;
	struct nvme_passthru_cmd c;
	struct nvme_user_io io;
	void *unmapped;
	int ret;

	unmapped = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(unmapped, 4096);
	errno = 0;
	ret = ioctl(fd, NVME_IOCTL_ID);
	printf("@@PT ns-id ret=%d errno=%s want=%u\n", ret, ename(ret < 0 ? errno : 0), nsid);
	for (i = 0; i < sizeof(pat); i++)
		pat[i] = (unsigned char)(i * 7 + nsid * 13 + i / 512);
	/* 16 KiB at block 64 written with SUBMIT_IO, read back with it. */
	user_io(&io, 0x01, pat, 64, nb - 1);
	report("submit-io-write", NVME_IOCTL_SUBMIT_IO, &io);
	user_io(&io, 0x02, got, 64, nb - 1);
	report("submit-io-read", NVME_IOCTL_SUBMIT_IO, &io);
	printf("@@PT submit-io-compare same=%d\n", !memcmp(pat, got, sizeof(pat)));
	/* Compare against what was written: success, then a mismatch. */
	user_io(&io, 0x05, pat, 64, nb - 1);
	report("submit-io-compare-equal", NVME_IOCTL_SUBMIT_IO, &io);
	pat[100] ^= 0xff;
	report("submit-io-compare-differ", NVME_IOCTL_SUBMIT_IO, &io);
	pat[100] ^= 0xff;
	user_io(&io, 0x09, got, 64, 0);
	report("submit-io-bad-opcode", NVME_IOCTL_SUBMIT_IO, &io);
	user_io(&io, 0x02, got, 64, 0);
	io.flags = 1;
	report("submit-io-flags", NVME_IOCTL_SUBMIT_IO, &io);
	user_io(&io, 0x02, unmapped, 64, 0);
	report("submit-io-unmapped-buffer", NVME_IOCTL_SUBMIT_IO, &io);
	user_io(&io, 0x02, NULL, 64, 0);
	report("submit-io-null-buffer", NVME_IOCTL_SUBMIT_IO, &io);
	report("submit-io-null-argument", NVME_IOCTL_SUBMIT_IO, NULL);
	/* I/O passthrough on the namespace's own device: its ID only. */
	memset(&c, 0, sizeof(c));
	c.opcode = 0x02;
	c.nsid = nsid;
	c.addr = (uintptr_t)got;
	c.data_len = lbs;
	c.cdw10 = 64;
	report("ns-io-read", NVME_IOCTL_IO_CMD, &c);
	printf("@@PT ns-io-read-data same=%d\n", !memcmp(pat, got, lbs));
	c.nsid = nsid + 1;
	report("ns-io-other-namespace", NVME_IOCTL_IO_CMD, &c);
	c.nsid = nsid;
	c.addr = (uintptr_t)unmapped;
	report("ns-io-unmapped-buffer", NVME_IOCTL_IO_CMD, &c);
	identify(&c, got, 4096);
	report("ns-admin-identify", NVME_IOCTL_ADMIN_CMD, &c);
	report("ns-unknown-ioctl", _IO('N', 0x7f), NULL);
	if (setresuid(65534, 65534, 65534) != 0) {
		perror("setresuid");
		return 1;
	}
	user_io(&io, 0x02, got, 64, 0);
	report("ns-unprivileged-submit-io", NVME_IOCTL_SUBMIT_IO, &io);
	return 0;
}

int main(int argc, char **argv)
{
	static char buf[8192] __attribute__((aligned(4096)));
	struct nvme_passthru_cmd c;
	struct nvme_passthru_cmd64 c64;
	void *unmapped;

	if (argc < 2)
		return 2;
	fd = open(argv[1], O_RDWR);
	if (fd < 0) {
		perror(argv[1]);
		return 1;
	}
	if (argc > 4 && !strcmp(argv[2], "ns"))
		return ns_cases(strtoul(argv[3], NULL, 0), strtoul(argv[4], NULL, 0));
	if (argc > 2 && !strcmp(argv[2], "part")) {
		/* A partition: with CAP_SYS_ADMIN only. */
		identify(&c, buf, 4096);
		report("part-identify", NVME_IOCTL_ADMIN_CMD, &c);
		report("part-id", NVME_IOCTL_ID, NULL);
		if (setresuid(65534, 65534, 65534) != 0) {
			perror("setresuid");
			return 1;
		}
		identify(&c, buf, 4096);
		report("part-unprivileged-identify", NVME_IOCTL_ADMIN_CMD, &c);
		report("part-unprivileged-id", NVME_IOCTL_ID, NULL);
		return 0;
	}
	if (argc > 2 && !strcmp(argv[2], "subsys-reset")) {
		report("subsys-reset-alone", NVME_IOCTL_SUBSYS_RESET, NULL);
		return 0;
	}
	if (argc > 3 && !strcmp(argv[2], "hold")) {
		/* Open: the caller may unbind now (it waits for this file). */
		close(open("/tmp/hold.ready", O_WRONLY | O_CREAT, 0600));
		sleep(atoi(argv[3]));
		identify(&c, buf, 4096);
		report("held-identify", NVME_IOCTL_ADMIN_CMD, &c);
		return 0;
	}
	/* A page that is surely not mapped. */
	unmapped = mmap(NULL, 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	munmap(unmapped, 4096);

	identify(&c, buf, 4096);
	report("good-identify", NVME_IOCTL_ADMIN_CMD, &c);
	if (memcmp(buf + 4, "        ", 8) == 0 || buf[24] == 0)
		printf("@@PT good-identify-data empty\n");
	else
		printf("@@PT good-identify-data sn=%.20s\n", buf + 4);
	memset(&c64, 0, sizeof(c64));
	memcpy(&c64, &c, sizeof(c) - 8);
	report("good-identify64", NVME_IOCTL_ADMIN64_CMD, &c64);

	report("null-argument", NVME_IOCTL_ADMIN_CMD, NULL);
	report("unmapped-argument", NVME_IOCTL_ADMIN_CMD, unmapped);
	identify(&c, unmapped, 4096);
	report("unmapped-read-buffer", NVME_IOCTL_ADMIN_CMD, &c);
	identify(&c, (void *)16, 4096);
	report("low-read-buffer", NVME_IOCTL_ADMIN_CMD, &c);
	/* Set Features (write direction), Host Behavior, from a bad buffer. */
	memset(&c, 0, sizeof(c));
	c.opcode = 0x09;
	c.cdw10 = 0x16;
	c.addr = (uintptr_t)unmapped;
	c.data_len = 512;
	report("unmapped-write-buffer", NVME_IOCTL_ADMIN_CMD, &c);
	identify(&c, buf, 4096);
	c.metadata_len = 64;
	c.metadata = (uintptr_t)buf;
	report("metadata", NVME_IOCTL_ADMIN_CMD, &c);
	identify(&c, buf, 4096);
	c.flags = 1;
	report("flags", NVME_IOCTL_ADMIN_CMD, &c);
	identify(&c, buf, 4096);
	c.opcode = 0x07; /* bits 1:0 = 11b: bidirectional */
	report("bidirectional", NVME_IOCTL_ADMIN_CMD, &c);
	identify(&c, buf, 4096);
	c.opcode = 0x08; /* Abort moves no data */
	report("data-without-direction", NVME_IOCTL_ADMIN_CMD, &c);
	if (!getenv("PT_SKIP_HARMFUL")) {
		identify(&c, buf, 64u << 20);
		report("huge-length", NVME_IOCTL_ADMIN_CMD, &c);
		identify(&c, buf, 0xffffffffu);
		report("max-length", NVME_IOCTL_ADMIN_CMD, &c);
	}
	identify(&c, buf, 100);
	report("short-length", NVME_IOCTL_ADMIN_CMD, &c);
	memset(&c, 0, sizeof(c));
	c.opcode = 0xc2; /* vendor specific, unknown to QEMU: an NVMe status */
	report("unknown-opcode", NVME_IOCTL_ADMIN_CMD, &c);
	report("unknown-ioctl", _IO('N', 0x7f), NULL);
	/* NVM Subsystem Reset: refused where CAP.NSSRS is clear. */
	report("subsys-reset", NVME_IOCTL_SUBSYS_RESET, NULL);
	if (!getenv("PT_SKIP_HARMFUL")) {
		memset(&c, 0, sizeof(c));
		c.opcode = 0x04; /* Delete I/O Completion Queue 1: the driver's */
		c.cdw10 = 1;
		report("delete-io-queue", NVME_IOCTL_ADMIN_CMD, &c);
		memset(&c, 0, sizeof(c));
		c.opcode = 0x08; /* Abort command 0 of I/O queue 1 */
		c.cdw10 = 1;
		report("abort", NVME_IOCTL_ADMIN_CMD, &c);
	}
	report("io-cmd-no-namespace", NVME_IOCTL_IO_CMD, &c);
	/* Read block 0 of namespace 1; of a namespace that does not exist. */
	memset(&c, 0, sizeof(c));
	c.opcode = 0x02;
	c.nsid = 1;
	c.addr = (uintptr_t)buf;
	c.data_len = 512;
	report("io-read", NVME_IOCTL_IO_CMD, &c);
	memset(&c64, 0, sizeof(c64));
	memcpy(&c64, &c, sizeof(c) - 8);
	report("io-read64", NVME_IOCTL_IO64_CMD, &c64);
	c.nsid = 99;
	report("io-read-bad-namespace", NVME_IOCTL_IO_CMD, &c);
	c.nsid = 1;
	c.addr = (uintptr_t)unmapped;
	report("io-read-unmapped-buffer", NVME_IOCTL_IO_CMD, &c);

	/* Without CAP_SYS_ADMIN: Identify still works, nothing else. */
	if (setresuid(65534, 65534, 65534) != 0) {
		perror("setresuid");
		return 1;
	}
	identify(&c, buf, 4096);
	report("unprivileged-identify", NVME_IOCTL_ADMIN_CMD, &c);
	memset(&c, 0, sizeof(c));
	c.opcode = 0x02; /* Get Log Page, SMART */
	c.nsid = 0xffffffff;
	c.cdw10 = 0x02 | (127u << 16);
	c.addr = (uintptr_t)buf;
	c.data_len = 512;
	report("unprivileged-get-log", NVME_IOCTL_ADMIN_CMD, &c);
	memset(&c, 0, sizeof(c));
	c.opcode = 0x0a; /* Get Features, Number of Queues */
	c.cdw10 = 7;
	report("unprivileged-get-features", NVME_IOCTL_ADMIN_CMD, &c);
	report("unprivileged-reset", NVME_IOCTL_RESET, NULL);
	report("unprivileged-subsys-reset", NVME_IOCTL_SUBSYS_RESET, NULL);
	memset(&c, 0, sizeof(c));
	c.opcode = 0x02;
	c.nsid = 1;
	c.addr = (uintptr_t)buf;
	c.data_len = 512;
	report("unprivileged-io-read", NVME_IOCTL_IO_CMD, &c);
	return 0;
}
