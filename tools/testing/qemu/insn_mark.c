/*
 * The mark of insn_marks.c, from the guest's user space: executes
 * `xchg %bx, %bx` and exits.  Built without libc, so that running it costs
 * few instructions.
 *
 * SPDX-License-Identifier: GPL-2.0
 */
void _start(void)
{
	__asm__ volatile("xchg %%bx, %%bx\n\t"
			 "mov $60, %%eax\n\t"	/* exit(0) */
			 "xor %%edi, %%edi\n\t"
			 "syscall" ::: "memory");
	__builtin_unreachable();
}
