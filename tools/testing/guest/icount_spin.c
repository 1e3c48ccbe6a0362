// SPDX-License-Identifier: GPL-2.0
/*
 * make bench's instruction counter, guest side (bench.sh, in a VM run with
 * -icount shift=0: one nanosecond of guest time is one guest instruction).
 *
 *   icount_spin FILE      counts loop iterations into FILE (8 bytes,
 *                         shared) at SCHED_IDLE, for ever: the CPU never
 *                         idles, so guest time is instructions executed
 *   icount_spin -r FILE   prints CLOCK_MONOTONIC (ns) and the count
 *
 * The work done in a window is its guest time less the iterations times
 * the instructions one costs (calibrated by windows with nothing in them).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <sched.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

static volatile uint64_t *map_counter(const char *path)
{
	int fd = open(path, O_RDWR | O_CREAT, 0644);
	void *p;

	if (fd < 0 || ftruncate(fd, sizeof(uint64_t)) < 0)
		return NULL;
	p = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED,
		 fd, 0);
	close(fd);
	return p == MAP_FAILED ? NULL : p;
}

int main(int argc, char **argv)
{
	const char *path = argv[argc - 1];
	volatile uint64_t *count;
	struct sched_param prio = { 0 };
	struct timespec ts;

	if (argc != 2 && !(argc == 3 && !strcmp(argv[1], "-r"))) {
		fprintf(stderr, "usage: icount_spin [-r] FILE\n");
		return 2;
	}
	count = map_counter(path);
	if (!count) {
		perror(path);
		return 1;
	}
	if (argc == 3) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		printf("%lld %llu\n", (long long)ts.tv_sec * 1000000000LL +
		       ts.tv_nsec, (unsigned long long)*count);
		return 0;
	}
	if (sched_setscheduler(0, SCHED_IDLE, &prio) < 0) {
		perror("sched_setscheduler");
		return 1;
	}
	for (;;)
		(*count)++;
}
