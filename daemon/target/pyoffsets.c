// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * CPython 3.8-3.15 layouts, x86_64, glibc, release GIL builds. docs/cpython-offsets.md names the
 * CPython struct and member behind each field and where each number was read (DWARF of the
 * pyenv 3.8-3.13 builds, live reads of Debian's 3.11 and sid's 3.13/3.14/3.15).
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
	{
		/* 3.14 (3.14.10, Debian sid): _Py_DebugOffsets (Include/internal/
		 * pycore_debug_offsets.h) gives every runtime/thread/frame/code field and
		 * replaces these at attach; the rest from live reads of the objects themselves
		 * (tests/chroot probe: id() of a Task's coro/name/context, of a coroutine's
		 * qualname and code). _PyInterpreterFrame: f_executable is a _PyStackRef (low
		 * bit tagged, pycore_stackref.h), previous @8, instr_ptr @56, owner @74 (3 =
		 * FRAME_OWNED_BY_INTERPRETER, 4 = FRAME_OWNED_BY_CSTACK), localsplus @80 (stack
		 * refs too). autoTSSkey: _PyRuntime+0x920 in PyGILState_GetThisThreadState. */
		.minor = 14,
		.rt_interp_head = 808, .rt_tss_key = 2336, .rt_main_thread = 0,
		.interp_threads_head = 7344, .ts_next = 8, .ts_thread_id = 152, .ts_native_id = 160,
		.ts_frame = 72, .cframe_cur = NF,
		.f_code = 0, .f_back = 8, .f_instr = 56, .f_owner = 74, .f_localsplus = 80,
		.instr_is_ptr = 1, .stackref_mask = 7,
		.func_code = 48, .func_qualname = 40,
		.task_coro = 128, .task_name = 136, .task_context = 144,
		.coro_qualname = 32, .coro_code = 72,
		.co_filename = 112, .co_name = 120, .co_qualname = 128, .co_firstlineno = 68,
		.co_table = 136, .code_basicsize = 208,
		.str_ascii = 40, .str_compact = 56, .long_tag = 1,
		.gil_from_interp = 1, .gil_off = 16, .gil_size = 208,
		.gil_interval = 0, .gil_last_holder = 8, .gil_locked = 16,
		.gc_from_interp = 1, .gc_collecting = 7600,
	},
	{
		/* 3.15 (3.15.2, Debian sid): as 3.14, thread state grew (base_frame,
		 * last_profiled_frame: thread_id @176, native_thread_id @184). No TSS key:
		 * PyGILState_GetThisThreadState reads a thread-local (%fs:-0x28 in the static
		 * executable), so the pthread-TSD fallback is off (rt_tss_key 0). */
		.minor = 15,
		.rt_interp_head = 936, .rt_tss_key = 0, .rt_main_thread = 0,
		.interp_threads_head = 7336, .ts_next = 8, .ts_thread_id = 176, .ts_native_id = 184,
		.ts_frame = 72, .cframe_cur = NF,
		.f_code = 0, .f_back = 8, .f_instr = 56, .f_owner = 74, .f_localsplus = 80,
		.instr_is_ptr = 1, .stackref_mask = 7,
		.func_code = 48, .func_qualname = 40,
		.task_coro = 128, .task_name = 136, .task_context = 144,
		.coro_qualname = 32, .coro_code = 72,
		.co_filename = 112, .co_name = 120, .co_qualname = 128, .co_firstlineno = 68,
		.co_table = 136, .code_basicsize = 208,
		.str_ascii = 40, .str_compact = 56, .long_tag = 1,
		.gil_from_interp = 1, .gil_off = 16, .gil_size = 208,
		.gil_interval = 0, .gil_last_holder = 8, .gil_locked = 16,
		.gc_from_interp = 1, .gc_collecting = 0,
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
