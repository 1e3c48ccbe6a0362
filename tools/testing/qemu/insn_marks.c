/*
 * Guest instructions between marks, for `make bench`.
 *
 * Counts the instructions every vCPU executes (inline, per translation
 * block) and, each time the guest executes the mark instruction
 * `xchg %bx, %bx` (Bochs's magic breakpoint, a no-op), appends the running
 * total of all vCPUs to the file named by the `file` argument:
 * "mark <n> <instructions>".  The guest brackets a workload with two marks;
 * the difference is what every CPU executed meanwhile, which, unlike time
 * under TCG, does not depend on how busy the host is.
 *
 * Usage: -plugin libinsn_marks.so,file=<path>
 *
 * SPDX-License-Identifier: GPL-2.0-or-later
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <glib.h>

#include <qemu-plugin.h>

QEMU_PLUGIN_EXPORT int qemu_plugin_version = QEMU_PLUGIN_VERSION;

static const uint8_t mark[] = { 0x66, 0x87, 0xdb };

static struct qemu_plugin_scoreboard *counts;
static qemu_plugin_u64 insns;
static FILE *out;
static GMutex lock;
static uint64_t marks;

static void vcpu_mark(unsigned int cpu_index, void *udata)
{
    g_mutex_lock(&lock);
    fprintf(out, "mark %" PRIu64 " %" PRIu64 "\n", marks++,
            qemu_plugin_u64_sum(insns));
    fflush(out);
    g_mutex_unlock(&lock);
}

static void vcpu_tb_trans(qemu_plugin_id_t id, struct qemu_plugin_tb *tb)
{
    size_t n = qemu_plugin_tb_n_insns(tb);

    qemu_plugin_register_vcpu_tb_exec_inline_per_vcpu(
        tb, QEMU_PLUGIN_INLINE_ADD_U64, insns, n);
    for (size_t i = 0; i < n; i++) {
        struct qemu_plugin_insn *insn = qemu_plugin_tb_get_insn(tb, i);
        uint8_t bytes[sizeof(mark)];

        if (qemu_plugin_insn_size(insn) == sizeof(mark) &&
            qemu_plugin_insn_data(insn, bytes, sizeof(bytes)) == sizeof(bytes) &&
            !memcmp(bytes, mark, sizeof(mark))) {
            qemu_plugin_register_vcpu_insn_exec_cb(insn, vcpu_mark,
                                                   QEMU_PLUGIN_CB_NO_REGS, NULL);
        }
    }
}

static void plugin_exit(qemu_plugin_id_t id, void *p)
{
    fclose(out);
    qemu_plugin_scoreboard_free(counts);
}

QEMU_PLUGIN_EXPORT int qemu_plugin_install(qemu_plugin_id_t id,
                                           const qemu_info_t *info,
                                           int argc, char **argv)
{
    const char *file = NULL;

    for (int i = 0; i < argc; i++) {
        if (g_str_has_prefix(argv[i], "file=")) {
            file = argv[i] + strlen("file=");
        } else {
            fprintf(stderr, "insn_marks: unknown option %s\n", argv[i]);
            return -1;
        }
    }
    if (!file || !(out = fopen(file, "w"))) {
        fprintf(stderr, "insn_marks: needs file=<writable path>\n");
        return -1;
    }
    g_mutex_init(&lock);
    counts = qemu_plugin_scoreboard_new(sizeof(uint64_t));
    insns = qemu_plugin_scoreboard_u64(counts);
    qemu_plugin_register_vcpu_tb_trans_cb(id, vcpu_tb_trans);
    qemu_plugin_register_atexit_cb(id, plugin_exit, NULL);
    return 0;
}
