// SPDX-License-Identifier: GPL-2.0
/*
 * hugedio DEV SEED OFFSET LEN [OFFSET LEN ...]: O_DIRECT writes and reads
 * from huge-page buffers (tests/guest/io-hugedio.sh).
 *
 * Each (OFFSET, LEN) range of the block device DEV gets the test pattern of
 * tests/guest/lib.sh (records "SEED * 10^8 + byte offset / 16", 15 digits
 * and a newline) written with one pwritev() from a buffer in huge pages,
 * then is read back with one preadv() into another huge-page buffer, filled
 * with 0xa5 first, and compared byte for byte.
 *
 * The vectors are CHUNK bytes each, CHUNK bytes apart in the buffer: each
 * is physically contiguous (a huge page is), and no two are, so every
 * request the block layer makes of them (at most the device's transfer
 * size) has several scatterlist segments of many pages each. The driver
 * maps those with dma_map_sg(), which must accept segments that long.
 *
 * Prints per range "@@HUGEDIO <offset> <len> write=<errno> read=<errno>
 * same=<0|1>" and exits 0 when every range wrote, read and compared.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <unistd.h>

#define RECORD 16
#define CHUNK (256u << 10)
#define MAX_CHUNKS 64

static void *huge_buffer(size_t len)
{
	void *p = mmap(NULL, len, PROT_READ | PROT_WRITE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_POPULATE, -1, 0);

	if (p == MAP_FAILED) {
		fprintf(stderr, "hugedio: mmap(MAP_HUGETLB, %zu): %s\n", len, strerror(errno));
		exit(2);
	}
	return p;
}

static void fill_pattern(char *buf, unsigned long long seed, unsigned long long off,
			 size_t len)
{
	char rec[32];
	size_t i;

	for (i = 0; i < len; i += RECORD) {
		snprintf(rec, sizeof(rec), "%llu\n", seed * 100000000ULL + (off + i) / RECORD);
		memcpy(buf + i, rec, RECORD);
	}
}

/* The vectors of a LEN byte transfer from BUF: every other CHUNK. */
static int chunks(struct iovec *iov, char *buf, size_t len)
{
	int n = 0;
	size_t at;

	for (at = 0; at < len; at += CHUNK, n++) {
		iov[n].iov_base = buf + 2 * at;
		iov[n].iov_len = len - at < CHUNK ? len - at : CHUNK;
	}
	return n;
}

static int full_io(int fd, char *buf, size_t len, off_t off, int write)
{
	struct iovec iov[MAX_CHUNKS];
	int n = chunks(iov, buf, len);
	ssize_t done = write ? pwritev(fd, iov, n, off) : preadv(fd, iov, n, off);

	if (done < 0)
		return errno;
	return (size_t)done == len ? 0 : EIO;
}

/* Whether the chunks of IN and OUT hold the same bytes. */
static int same_chunks(char *in, char *out, size_t len)
{
	struct iovec a[MAX_CHUNKS], b[MAX_CHUNKS];
	int i, n = chunks(a, in, len);

	chunks(b, out, len);
	for (i = 0; i < n; i++)
		if (memcmp(a[i].iov_base, b[i].iov_base, a[i].iov_len))
			return 0;
	return 1;
}

/* The pattern for [OFF, OFF + LEN) of the disk, into the chunks of BUF. */
static void fill_chunks(char *buf, unsigned long long seed, unsigned long long off,
			size_t len)
{
	struct iovec iov[MAX_CHUNKS];
	int i, n = chunks(iov, buf, len);

	for (i = 0; i < n; i++, off += CHUNK)
		fill_pattern(iov[i].iov_base, seed, off, iov[i].iov_len);
}

int main(int argc, char **argv)
{
	unsigned long long seed;
	size_t most = 0;
	char *out, *in;
	int fd, i, bad = 0;

	if (argc < 5 || argc % 2 != 1) {
		fprintf(stderr, "usage: hugedio DEV SEED OFFSET LEN [OFFSET LEN ...]\n");
		return 2;
	}
	seed = strtoull(argv[2], NULL, 0);
	if (seed < 1000000 || seed > 9999999) {
		fprintf(stderr, "hugedio: the seed has 7 digits\n");
		return 2;
	}
	for (i = 3; i < argc; i += 2) {
		size_t len = strtoull(argv[i + 1], NULL, 0);

		if (len % RECORD || strtoull(argv[i], NULL, 0) % 4096 || len % 4096 ||
		    len > (size_t)MAX_CHUNKS * CHUNK) {
			fprintf(stderr, "hugedio: ranges are whole 4 KiB blocks, at most %u\n",
				MAX_CHUNKS * CHUNK);
			return 2;
		}
		if (len > most)
			most = len;
	}
	/* Chunks with gaps between them, in whole huge pages of 2 MiB. */
	most = (2 * most + (2u << 20) - 1) & ~((size_t)(2u << 20) - 1);
	out = huge_buffer(most);
	in = huge_buffer(most);
	fd = open(argv[1], O_RDWR | O_DIRECT);
	if (fd < 0) {
		fprintf(stderr, "hugedio: open %s: %s\n", argv[1], strerror(errno));
		return 2;
	}
	for (i = 3; i < argc; i += 2) {
		off_t off = strtoull(argv[i], NULL, 0);
		size_t len = strtoull(argv[i + 1], NULL, 0);
		int werr, rerr, same;

		fill_chunks(out, seed, off, len);
		memset(in, 0xa5, most);
		werr = full_io(fd, out, len, off, 1);
		rerr = werr ? -1 : full_io(fd, in, len, off, 0);
		same = !werr && !rerr && same_chunks(in, out, len);
		printf("@@HUGEDIO %lld %zu write=%d read=%d same=%d\n", (long long)off, len,
		       werr, rerr, same);
		bad |= !same;
	}
	close(fd);
	return bad;
}
