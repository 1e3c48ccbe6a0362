/*
 * Guest instruction counts between marks the guest sets (vmd_rs's
 * `make bench`: instructions per I/O, a measure that depends far less on
 * the host's speed than time does).
 *
 * Each translation block adds its instruction count to the kernel's or
 * user space's count when it runs: a callback per block, no inline ops
 * (with an inline-op version the guest oopsed at its first text_poke).
 * TCG takes interrupts between blocks; a block a fault leaves counts
 * whole, and its rest again.
 *
 * The counts are the guest's, not each vCPU's, and QEMU must run every
 * vCPU on one thread (-accel tcg,thread=single).  Then QEMU 10.0 gives a
 * block's callbacks the index of the vCPU that translated the block, not
 * of the one running it (gen_cpu_index()), so per-vCPU state cannot be
 * kept; an earlier version that followed the device interrupt handler's
 * entry and return per vCPU lost its returns to that and to the thread
 * switching vCPUs inside the handler.
 *
 * With image=<start>:<end>, the kernel image's addresses (System.map's
 * _text and _end), blocks at its physical addresses count as the kernel's
 * (see tb_trans()).
 *
 * The guest sets a mark by executing CPUID with EAX = 0x564d4452 ("VMDR")
 * and a label in EBX; each mark appends "<label> <kernel> <user>" to the
 * file out=<path>.
 *
 * Copyright (c) 2026 The vmd_rs developers
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */

#include <glib.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

#define MARK_MAGIC 0x564d4452u
/* x86-64 kernels live in the upper half of the address space. */
#define KERNEL_START 0xffff800000000000ull
/* x86-64's __START_KERNEL_map: where the kernel image's addresses start. */
#define KERNEL_MAP 0xffffffff80000000ull

/* The counts so far; one thread runs every vCPU. */
static uint64_t kernel, user;
static struct qemu_plugin_register *rax, *rbx;
/* The kernel image's physical addresses, [start, end). */
static uint64_t image_start, image_end;
static FILE *out;

static struct qemu_plugin_register *find_reg(GArray *regs, const char *name)
{
    for (guint i = 0; i < regs->len; i++) {
        qemu_plugin_reg_descriptor *d =
            &g_array_index(regs, qemu_plugin_reg_descriptor, i);
        if (!strcmp(d->name, name)) {
            return d->handle;
        }
    }
    return NULL;
}

static void vcpu_init(qemu_plugin_id_t id, unsigned int vcpu_index)
{
    g_autoptr(GArray) regs = qemu_plugin_get_registers();

    /* The same for every vCPU. */
    if (!rax) {
        rax = find_reg(regs, "rax");
        rbx = find_reg(regs, "rbx");
    }
}

/* A block's data: its length, times two, plus one for a kernel block. */
static void tb_exec(unsigned int vcpu_index, void *udata)
{
    uintptr_t n = (uintptr_t)udata;

    if (n & 1) {
        kernel += n >> 1;
    } else {
        user += n >> 1;
    }
}

static uint64_t read_u64(struct qemu_plugin_register *reg)
{
    g_autoptr(GByteArray) buf = g_byte_array_new();
    uint64_t v = 0;

    if (reg && qemu_plugin_read_register(reg, buf) == 8) {
        memcpy(&v, buf->data, 8);
    }
    return v;
}

static void cpuid_exec(unsigned int vcpu_index, void *udata)
{
    if ((uint32_t)read_u64(rax) != MARK_MAGIC) {
        return;
    }
    fprintf(out, "%" PRIu32 " %" PRIu64 " %" PRIu64 "\n",
            (uint32_t)read_u64(rbx), kernel, user);
    fflush(out);
}

static void tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);
    uint64_t pc = qemu_plugin_tb_vaddr(tb);

    /*
     * x86 blocks are position independent and shared by every mapping of
     * their page: one first translated while early boot ran the image at
     * its physical address says that address for good.
     */
    if (pc >= image_start && pc < image_end) {
        pc += KERNEL_MAP;
    }
    qemu_plugin_register_vcpu_tb_exec_cb(tb, tb_exec, QEMU_PLUGIN_CB_NO_REGS,
                                         (void *)(n << 1 | (pc >= KERNEL_START)));
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint8_t op[2];

        /* CPUID is 0f a2; a mark runs in user space, without prefixes. */
        if (qemu_plugin_insn_size(insn) == 2 &&
            qemu_plugin_insn_data(insn, op, 2) == 2 &&
            op[0] == 0x0f && op[1] == 0xa2) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, cpuid_exec,
                                                   QEMU_PLUGIN_CB_R_REGS, NULL);
        }
    }
}

static void plugin_exit(qemu_plugin_id_t id, void *p)
{
    fclose(out);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id,
                                           const qemu_info_t *info,
                                           int argc, char **argv)
{
    const char *path = NULL;
    bool ok = true;

    for (int i = 0; i < argc; i++) {
        if (g_str_has_prefix(argv[i], "out=")) {
            path = argv[i] + 4;
        } else if (g_str_has_prefix(argv[i], "image=")) {
            char *end;

            image_start = g_ascii_strtoull(argv[i] + 6, &end, 0) - KERNEL_MAP;
            ok &= *end == ':';
            image_end = g_ascii_strtoull(end + 1, NULL, 0) - KERNEL_MAP;
        } else {
            ok = false;
        }
    }
    if (!ok || !path || strcmp(info->target_name, "x86_64")) {
        fprintf(stderr, "insn_count: x86_64 only; out=<file> "
                "[image=<start>:<end>]\n");
        return -1;
    }
    out = fopen(path, "w");
    if (!out) {
        perror(path);
        return -1;
    }
    qemu_plugin_register_vcpu_init_cb(id, vcpu_init);
    qemu_plugin_register_vcpu_tb_trans_cb(id, tb_trans);
    qemu_plugin_register_atexit_cb(id, plugin_exit, NULL);
    return 0;
}
