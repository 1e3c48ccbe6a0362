// SPDX-License-Identifier: GPL-2.0
/*
 * A module that leaks on purpose: one allocation, its only pointer lost
 * when init returns.  guest/kmemleak_plant.sh loads it to show that the
 * scan every test boot ends with (vmd_lib.sh's kmemleak_scan) reports a
 * leak, so that "kmemleak clean" can fail.
 */
#include <linux/module.h>
#include <linux/slab.h>
#include <linux/string.h>

static int __init kmemleak_plant_init(void)
{
	char *p = kmalloc(128, GFP_KERNEL);

	if (!p)
		return -ENOMEM;
	strscpy(p, "kmemleak_plant", 128);
	/* The pointer escapes only into the log: the allocation stays. */
	pr_info("kmemleak_plant: leaked 128 bytes at %px\n", p);
	return 0;
}

static void __exit kmemleak_plant_exit(void)
{
}

module_init(kmemleak_plant_init);
module_exit(kmemleak_plant_exit);
MODULE_DESCRIPTION("Leaks one allocation: the test that kmemleak's check can fail");
MODULE_LICENSE("GPL");
