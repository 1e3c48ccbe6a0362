// SPDX-License-Identifier: GPL-2.0
/*
 * A module that leaks on purpose: a few allocations, their only pointers
 * lost when init returns.  guest/kmemleak_plant.sh loads it to show that the
 * scan every test boot ends with (vmd_lib.sh's kmemleak_scan) reports a
 * leak, so that "kmemleak clean" can fail.
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>

/* Several: a stray reference can keep one of them from being reported. */
#define KMEMLEAK_PLANT_OBJECTS 8
#define KMEMLEAK_PLANT_SIZE (4 * PAGE_SIZE)

/*
 * kmemleak scans whole task stacks, below the stack pointer too, and a
 * task's stack outlives it in the stack cache: a stale copy of the pointer
 * there, or in a callee-saved register that a later function pushes, would
 * keep the object referenced.  So the pointer lives only in this function,
 * and the stack below it is overwritten afterwards.
 */
static noinline void kmemleak_plant_leak(void)
{
	int i;

	for (i = 0; i < KMEMLEAK_PLANT_OBJECTS; i++) {
		/*
		 * Zeroed and past the slab caches (kmalloc() of more than two
		 * pages takes its own pages): a slab object keeps its next-free
		 * pointer inside it (mid-object, in plain form without
		 * FREELIST_HARDENED), and kmalloc() leaves it there.  Such
		 * stale pointers in live kmalloc-128 neighbours kept all eight
		 * 128-byte objects referenced in a CI run (2026-12-05), and
		 * six of them in the next run with kzalloc().
		 */
		char *p = kzalloc(KMEMLEAK_PLANT_SIZE, GFP_KERNEL);

		/* Its contents name it in the report (the hex dump). */
		if (p)
			strscpy(p, "kmemleak_plant", KMEMLEAK_PLANT_SIZE);
	}
}

static noinline void kmemleak_plant_scrub_stack(int depth)
{
	char scratch[1024];

	memzero_explicit(scratch, sizeof(scratch));
	if (depth > 0)
		kmemleak_plant_scrub_stack(depth - 1);
}

static int __init kmemleak_plant_init(void)
{
	kmemleak_plant_leak();
	kmemleak_plant_scrub_stack(3);
	/* vmtest.KNOWN_LEAKS knows these objects only after this line. */
	pr_info("kmemleak_plant: %d objects of %lu bytes leaked on purpose\n",
		KMEMLEAK_PLANT_OBJECTS, KMEMLEAK_PLANT_SIZE);
	return 0;
}

static void __exit kmemleak_plant_exit(void)
{
}

module_init(kmemleak_plant_init);
module_exit(kmemleak_plant_exit);
MODULE_DESCRIPTION("Leaks on purpose: the test that kmemleak's check can fail");
MODULE_LICENSE("GPL");
