// SPDX-License-Identifier: GPL-2.0
/*
 * insn_io <mark> <ios> <depth> <disk>...: the I/O loop of `make bench`'s
 * instruction counts.  One thread per CPU, pinned, thread i on disk
 * i % disks, each reads <ios> 4 KiB blocks at pseudo-random offsets in the
 * first 512 MiB, O_DIRECT, through Linux AIO with <depth> in flight.  Unlike
 * fio it has no timer or helper thread, so that the instructions between
 * its marks are the I/O's: mark <mark> once every thread is ready, mark
 * <mark> + 1 once every thread is done, before any cleans up.
 *
 * A mark is CPUID with EAX = 0x564d4452 and the mark in EBX: QEMU's
 * insn_count plugin (tools/testing/qemu) writes down the guest's counts.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#define BLOCK 4096
#define BLOCKS ((512u << 20) / BLOCK)

struct job {
	pthread_t thread;
	int cpu;
	int fd;
	int err;
};

static unsigned long ios, depth;
static pthread_barrier_t ready, go, finished, release;

static void mark(unsigned int label)
{
	unsigned int a = 0x564d4452, b = label, c = 0, d = 0;

	asm volatile("cpuid" : "+a"(a), "+b"(b), "+c"(c), "+d"(d));
}

static void prep(struct iocb *cb, int fd, char *buf, uint32_t *seed)
{
	/* A fixed sequence per thread: the same offsets in every run. */
	*seed = *seed * 1103515245 + 12345;
	memset(cb, 0, sizeof(*cb));
	cb->aio_fildes = fd;
	cb->aio_lio_opcode = IOCB_CMD_PREAD;
	cb->aio_buf = (uintptr_t)buf;
	cb->aio_nbytes = BLOCK;
	cb->aio_offset = (uint64_t)(*seed % BLOCKS) * BLOCK;
	cb->aio_data = (uintptr_t)cb;
}

static void *run(void *arg)
{
	struct job *j = arg;
	struct iocb *cbs = calloc(depth, sizeof(*cbs));
	struct iocb **ptrs = calloc(depth, sizeof(*ptrs));
	struct io_event *ev = calloc(depth, sizeof(*ev));
	char *bufs = aligned_alloc(BLOCK, BLOCK * depth);
	aio_context_t ctx = 0;
	uint32_t seed = j->cpu + 1;
	unsigned long sent = 0, done = 0, i;
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(j->cpu, &set);
	if (!cbs || !ptrs || !ev || !bufs || sched_setaffinity(0, sizeof(set), &set) ||
	    syscall(SYS_io_setup, depth, &ctx))
		j->err = 1;
	else
		memset(bufs, 0, BLOCK * depth);	/* no page faults in the window */
	pthread_barrier_wait(&ready);
	pthread_barrier_wait(&go);
	for (i = 0; i < depth && sent < ios && !j->err; i++, sent++) {
		prep(&cbs[i], j->fd, bufs + i * BLOCK, &seed);
		ptrs[i] = &cbs[i];
	}
	if (!j->err && syscall(SYS_io_submit, ctx, i, ptrs) != (long)i)
		j->err = 1;
	while (done < sent && !j->err) {
		long n = syscall(SYS_io_getevents, ctx, 1, depth, ev, NULL);
		long k = 0;

		if (n <= 0) {
			j->err = 1;
			break;
		}
		done += n;
		for (i = 0; i < (unsigned long)n; i++) {
			struct iocb *cb = (struct iocb *)(uintptr_t)ev[i].data;

			if (ev[i].res != BLOCK)
				j->err = 1;
			if (sent < ios) {
				prep(cb, j->fd, (char *)(uintptr_t)cb->aio_buf, &seed);
				ptrs[k++] = cb;
				sent++;
			}
		}
		if (k && syscall(SYS_io_submit, ctx, k, ptrs) != k)
			j->err = 1;
	}
	pthread_barrier_wait(&finished);
	pthread_barrier_wait(&release);
	if (ctx)
		syscall(SYS_io_destroy, ctx);
	return NULL;
}

int main(int argc, char **argv)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct job *jobs;
	unsigned int label;
	int err = 0;

	if (argc < 5 || cpus < 1)
		return 2;
	label = strtoul(argv[1], NULL, 0);
	ios = strtoul(argv[2], NULL, 0);
	depth = strtoul(argv[3], NULL, 0);
	jobs = calloc(cpus, sizeof(*jobs));
	if (!jobs || !depth || pthread_barrier_init(&ready, NULL, cpus + 1) ||
	    pthread_barrier_init(&go, NULL, cpus + 1) ||
	    pthread_barrier_init(&finished, NULL, cpus + 1) ||
	    pthread_barrier_init(&release, NULL, cpus + 1))
		return 1;
	for (long i = 0; i < cpus; i++) {
		const char *disk = argv[4 + i % (argc - 4)];

		jobs[i].cpu = i;
		jobs[i].fd = open(disk, O_RDONLY | O_DIRECT);
		if (jobs[i].fd < 0) {
			perror(disk);
			return 1;
		}
		if (pthread_create(&jobs[i].thread, NULL, run, &jobs[i]))
			return 1;
	}
	pthread_barrier_wait(&ready);
	mark(label);
	pthread_barrier_wait(&go);
	pthread_barrier_wait(&finished);
	mark(label + 1);
	pthread_barrier_wait(&release);
	for (long i = 0; i < cpus; i++) {
		pthread_join(jobs[i].thread, NULL);
		err |= jobs[i].err;
	}
	if (err)
		fprintf(stderr, "insn_io: an I/O failed\n");
	return err;
}
