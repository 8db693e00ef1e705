// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * CPython 3.8-3.13 layouts, x86_64, glibc, release GIL builds. Sources: DWARF of the pyenv
 * builds and live checks (shared research python_unwind.md, tables in sections 1.2, 2.1, 4.3).
 * Code-object member offsets are re-read from PyCode_Type.tp_members at attach time.
 * GIL, main_thread and GC offsets: DWARF of the pyenv builds, the disassembly of functions that
 * read them, and live reads (GIL interval == 5000, main_thread == pthread_self()) on every build,
 * Debian's stripped python3.11 included.
 */
#include "target/pyproc.h"

#include <stddef.h>

#define NF 0xffff

static const struct lw_pylayout layouts[] = {
	{
		.minor = 8,
		.rt_interp_head = 32, .rt_tss_key = 1392, .rt_main_thread = 72,
		.interp_threads_head = 8, .ts_next = 8, .ts_thread_id = 176, .ts_native_id = 0,
		.ts_frame = 24, .cframe_cur = NF,
		.f_code = 32, .f_back = 24, .f_instr = 104, .f_owner = NF, .f_localsplus = 360,
		.instr_is_ptr = 0,
		.func_code = 16, .func_qualname = 104,
		.task_coro = 112, .task_name = 120, .task_context = 128,
		.coro_qualname = 56, .coro_code = 32,
		.co_filename = 104, .co_name = 112, .co_qualname = NF, .co_firstlineno = 40,
		.co_table = 120, .code_basicsize = 176,
		.str_ascii = 48, .str_compact = 72, .long_tag = 0,
		.gil_from_interp = 0, .gil_off = 1152, .gil_size = 208,
		.gil_interval = 0, .gil_last_holder = 8, .gil_locked = 16,
		.gc_from_interp = 0, .gc_collecting = 544,
	},
	{
		.minor = 9,
		.rt_interp_head = 32, .rt_tss_key = 584, .rt_main_thread = 72,
		.interp_threads_head = 8, .ts_next = 8, .ts_thread_id = 176, .ts_native_id = 0,
		.ts_frame = 24, .cframe_cur = NF,
		.f_code = 32, .f_back = 24, .f_instr = 104, .f_owner = NF, .f_localsplus = 360,
		.instr_is_ptr = 0,
		.func_code = 16, .func_qualname = 104,
		.task_coro = 152, .task_name = 160, .task_context = 168,
		.coro_qualname = 56, .coro_code = 32,
		.co_filename = 104, .co_name = 112, .co_qualname = NF, .co_firstlineno = 40,
		.co_table = 120, .code_basicsize = 176,
		.str_ascii = 48, .str_compact = 72, .long_tag = 0,
		.gil_from_interp = 0, .gil_off = 352, .gil_size = 208,
		.gil_interval = 0, .gil_last_holder = 8, .gil_locked = 16,
		.gc_from_interp = 1, .gc_collecting = 816,
	},
	{
		.minor = 10,
		.rt_interp_head = 32, .rt_tss_key = 584, .rt_main_thread = 72,
		.interp_threads_head = 8, .ts_next = 8, .ts_thread_id = 176, .ts_native_id = 0,
		.ts_frame = 24, .cframe_cur = NF,
		.f_code = 32, .f_back = 24, .f_instr = 96, .f_owner = NF, .f_localsplus = 352,
		.instr_is_ptr = 0,
		.func_code = 48, .func_qualname = 40,
		.task_coro = 160, .task_name = 168, .task_context = 176,
		.coro_qualname = 48, .coro_code = 24,
		.co_filename = 104, .co_name = 112, .co_qualname = NF, .co_firstlineno = 40,
		.co_table = 120, .code_basicsize = 176,
		.str_ascii = 48, .str_compact = 72, .long_tag = 0,
		.gil_from_interp = 0, .gil_off = 352, .gil_size = 208,
		.gil_interval = 0, .gil_last_holder = 8, .gil_locked = 16,
		.gc_from_interp = 1, .gc_collecting = 816,
	},
	{
		.minor = 11,
		.rt_interp_head = 40, .rt_tss_key = 592, .rt_main_thread = 80,
		.interp_threads_head = 16, .ts_next = 8, .ts_thread_id = 152, .ts_native_id = 160,
		.ts_frame = 56, .cframe_cur = 8,
		.f_code = 32, .f_back = 48, .f_instr = 56, .f_owner = 69, .f_localsplus = 72,
		.instr_is_ptr = 1,
		.func_code = 48, .func_qualname = 40,
		.task_coro = 136, .task_name = 144, .task_context = 152,
		.coro_qualname = 40, .coro_code = 16,
		.co_filename = 112, .co_name = 120, .co_qualname = 128, .co_firstlineno = 72,
		.co_table = 136, .code_basicsize = 184,
		.str_ascii = 48, .str_compact = 72, .long_tag = 0,
		.gil_from_interp = 0, .gil_off = 360, .gil_size = 208,
		.gil_interval = 0, .gil_last_holder = 8, .gil_locked = 16,
		.gc_from_interp = 1, .gc_collecting = 848,
	},
	{
		.minor = 12,
		.rt_interp_head = 40, .rt_tss_key = 1544, .rt_main_thread = 64,
		.interp_threads_head = 72, .ts_next = 8, .ts_thread_id = 136, .ts_native_id = 144,
		.ts_frame = 56, .cframe_cur = 0,
		.f_code = 0, .f_back = 8, .f_instr = 56, .f_owner = 70, .f_localsplus = 72,
		.instr_is_ptr = 1,
		.func_code = 48, .func_qualname = 40,
		.task_coro = 136, .task_name = 144, .task_context = 152,
		.coro_qualname = 32, .coro_code = 72,
		.co_filename = 112, .co_name = 120, .co_qualname = 128, .co_firstlineno = 68,
		.co_table = 136, .code_basicsize = 192,
		.str_ascii = 40, .str_compact = 56, .long_tag = 1,
		.gil_from_interp = 1, .gil_off = 384, .gil_size = 208,
		.gil_interval = 0, .gil_last_holder = 8, .gil_locked = 16,
		.gc_from_interp = 1, .gc_collecting = 312,
	},
	{
		.minor = 13,
		.rt_interp_head = 632, .rt_tss_key = 2160, .rt_main_thread = 656,
		.interp_threads_head = 7344, .ts_next = 8, .ts_thread_id = 152, .ts_native_id = 160,
		.ts_frame = 72, .cframe_cur = NF,
		.f_code = 0, .f_back = 8, .f_instr = 56, .f_owner = 70, .f_localsplus = 72,
		.instr_is_ptr = 1,
		.func_code = 48, .func_qualname = 40,
		.task_coro = 120, .task_name = 128, .task_context = 136,
		.coro_qualname = 32, .coro_code = 72,
		.co_filename = 112, .co_name = 120, .co_qualname = 128, .co_firstlineno = 68,
		.co_table = 136, .code_basicsize = 200,
		.str_ascii = 40, .str_compact = 56, .long_tag = 1,
		.gil_from_interp = 1, .gil_off = 16, .gil_size = 208,
		.gil_interval = 0, .gil_last_holder = 8, .gil_locked = 16,
		.gc_from_interp = 1, .gc_collecting = 7600,
	},
};

const struct lw_pylayout *lw_pylayout_for(int minor)
{
	size_t i;

	for (i = 0; i < sizeof(layouts) / sizeof(layouts[0]); i++)
		if (layouts[i].minor == minor)
			return &layouts[i];
	return NULL;
}
