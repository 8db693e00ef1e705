// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * Naming a callback without BPF (probe/session_ident.c): from the identity the BPF side read,
 * and from a stack whose code objects live in a fake CPython 3.12 address space.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "probe/session_priv.h"

#define BASE 0x10000ull

static uint8_t mem[16384];
static const struct lw_fakemem_region region = { BASE, mem, sizeof(mem) };
static const struct lw_fakemem fm = { &region, 1 };
static size_t used;

static uint64_t alloc(size_t n)
{
	uint64_t at = BASE + used;

	used += (n + 15) & ~(size_t)15;
	assert_true(used <= sizeof(mem));
	return at;
}

static void put(uint64_t addr, const void *v, size_t n)
{
	memcpy(mem + (addr - BASE), v, n);
}

static void put64(uint64_t addr, uint64_t v)
{
	put(addr, &v, sizeof(v));
}

/* a compact ASCII str object */
static uint64_t str_obj(const struct lw_pylayout *lay, const char *s)
{
	uint64_t o = alloc(lay->str_ascii + strlen(s) + 1), len = strlen(s);
	uint32_t state = 1u << 2 | 1u << 5 | 1u << 6;	/* kind 1, compact, ascii */

	put64(o + 16, len);
	put(o + 32, &state, sizeof(state));
	put(o + lay->str_ascii, s, len);
	return o;
}

/* a code object: names, first line, co_flags (at +48 on 3.11+), no line table */
static uint64_t code_obj(const struct lw_pylayout *lay, const char *qualname, const char *file,
			 int32_t first, int32_t flags)
{
	uint64_t c = alloc(lay->code_basicsize + 64);
	const char *dot = strrchr(qualname, '.');

	put64(c + lay->co_filename, str_obj(lay, file));
	put64(c + lay->co_name, str_obj(lay, dot ? dot + 1 : qualname));
	put64(c + lay->co_qualname, str_obj(lay, qualname));
	put(c + lay->co_firstlineno, &first, sizeof(first));
	put(c + 48, &flags, sizeof(flags));
	return c;
}

struct fixture {
	struct lw_session s;
	const struct lw_pylayout *lay;
	struct lw_pystack st;
};

static int setup(void **state)
{
	struct fixture *fx = calloc(1, sizeof(*fx));

	assert_non_null(fx);
	memset(mem, 0, sizeof(mem));
	used = 0;
	fx->lay = lw_pylayout_for(12);
	assert_non_null(fx->lay);
	fx->s.py.major = 3;
	fx->s.py.minor = 12;
	fx->s.rd.read = lw_fakemem_read;
	fx->s.rd.ctx = (void *)&fm;
	/* already learned: nothing is pushed to a BPF object these tests do not have */
	fx->s.handle_learned = 1;
	fx->s.py.cfg.run_once_code = 1;
	assert_int_equal(lw_pycache__new(fx->lay, 12, &fx->s.codes), 0);
	fx->st.flags = LW_STACK_VALID;
	*state = fx;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *fx = *state;

	lw_pycache__free(fx->s.codes);
	free(fx);
	return 0;
}

/* innermost first, as the BPF side fills frames */
static void push(struct fixture *fx, uint64_t code)
{
	fx->st.frames[fx->st.nframes].code = code;
	fx->st.frames[fx->st.nframes].frame = BASE + 8 * fx->st.nframes;
	fx->st.nframes++;
}

static void test_from_bpf(void **state)
{
	struct fixture *fx = *state;
	struct lw_ident bi = { 0 };
	struct cb_ident id;

	bi.kind = LW_KIND_UNKNOWN;
	bi.flags = LW_IDENT_TASK_NUM;
	bi.task_num = 7;
	bi.firstlineno = 42;
	strcpy(bi.qualname, "Worker.poll");
	strcpy(bi.file, "/app/worker.py");
	lw_sess_ident_from_bpf(&fx->s, &bi, &id);
	assert_int_equal(id.found, 1);
	assert_int_equal(id.kind, LW_KIND_OTHER);
	assert_string_equal(id.task_name, "Task-7");
	assert_string_equal(id.qualname, "Worker.poll");
	assert_string_equal(id.file, "/app/worker.py");
	assert_int_equal(id.line, 42);

	bi.kind = LW_KIND_TASK;
	bi.flags = 0;
	strcpy(bi.task_name, "fetcher");
	lw_sess_ident_from_bpf(&fx->s, &bi, &id);
	assert_int_equal(id.kind, LW_KIND_TASK);
	assert_string_equal(id.task_name, "fetcher");
}

/* a path cut at LW_STR_FILE is taken whole from the code object, when it is the same one */
static void test_from_bpf_long_file(void **state)
{
	struct fixture *fx = *state;
	struct lw_ident bi = { 0 };
	struct cb_ident id;
	char longpath[LW_STR_FILE + 40];

	memset(longpath, 'd', sizeof(longpath) - 1);
	longpath[0] = '/';
	longpath[sizeof(longpath) - 1] = 0;
	memcpy(longpath + sizeof(longpath) - 9, "/x.py", 6);
	bi.kind = LW_KIND_FUNCTION;
	bi.firstlineno = 5;
	bi.code = code_obj(fx->lay, "f", "/short.py", 5, 0);
	lw_strlcpy(bi.qualname, "f", sizeof(bi.qualname));
	lw_strlcpy(bi.file, longpath, sizeof(bi.file));
	lw_sess_ident_from_bpf(&fx->s, &bi, &id);
	assert_string_equal(id.file, "/short.py");

	bi.firstlineno = 6;	/* another code object now lives there: keep the cut path */
	lw_sess_ident_from_bpf(&fx->s, &bi, &id);
	assert_int_equal(strlen(id.file), LW_STR_FILE - 1);
}

/* asyncio: the frame just inside Handle._run is the callback */
static void test_stack_inside_handle_run(void **state)
{
	struct fixture *fx = *state;
	struct cb_ident id;

	push(fx, code_obj(fx->lay, "helper", "/app/util.py", 3, 0));
	push(fx, code_obj(fx->lay, "Poller.on_ready", "/app/poll.py", 20, 0));
	push(fx, code_obj(fx->lay, "Handle._run", "/usr/lib/python3.12/asyncio/events.py", 78, 0));
	push(fx, code_obj(fx->lay, "BaseEventLoop._run_once",
			  "/usr/lib/python3.12/asyncio/base_events.py", 1900, 0));
	lw_sess_ident_from_stack(&fx->s, &fx->st, &id);
	assert_int_equal(id.found, 1);
	assert_string_equal(id.qualname, "Poller.on_ready");
	assert_string_equal(id.file, "/app/poll.py");
	assert_int_equal(id.line, 20);
	assert_int_equal(id.kind, LW_KIND_METHOD);
}

/* a coroutine's code (CO_COROUTINE) is a Task step; a Task on the stack names it */
static void test_stack_coroutine_task(void **state)
{
	struct fixture *fx = *state;
	struct cb_ident id;

	push(fx, code_obj(fx->lay, "main.<locals>.fetch", "/app/main.py", 9, 0x80));
	push(fx, code_obj(fx->lay, "Handle._run", "/usr/lib/python3.12/asyncio/events.py", 78, 0));
	lw_sess_ident_from_stack(&fx->s, &fx->st, &id);
	assert_int_equal(id.kind, LW_KIND_TASK);
	assert_string_equal(id.task_name, "");

	fx->st.task = 0x1234;
	fx->st.task_flags = LW_IDENT_TASK_NUM;
	fx->st.task_num = 3;
	lw_sess_ident_from_stack(&fx->s, &fx->st, &id);
	assert_int_equal(id.kind, LW_KIND_TASK);
	assert_string_equal(id.task_name, "Task-3");
}

/* no Handle._run (uvloop): the frame right on the loop's entry (asyncio/runners.py) */
static void test_stack_uvloop(void **state)
{
	struct fixture *fx = *state;
	struct cb_ident id;

	push(fx, code_obj(fx->lay, "tick", "/app/app.py", 30, 0));
	push(fx, code_obj(fx->lay, "Runner.run", "/usr/lib/python3.12/asyncio/runners.py", 86, 0));
	lw_sess_ident_from_stack(&fx->s, &fx->st, &id);
	assert_int_equal(id.found, 1);
	assert_string_equal(id.qualname, "tick");
	assert_int_equal(id.kind, LW_KIND_FUNCTION);
}

/* issue 20: a stack in asyncio's own loop code and in no callback (a thread preempted in
 * _run_once between callbacks, the loop's select(), run_forever itself) names no callback; the
 * uvloop rule (the frame right on the loop's entry) once named BaseEventLoop._run_once */
static void test_stack_loop_own_code(void **state)
{
	static const char *const inner[][2] = {
		{ "BaseEventLoop._run_once", "/usr/lib/python3.11/asyncio/base_events.py" },
		{ "EpollSelector.select", "/usr/lib/python3.11/selectors.py" },
		{ "BaseEventLoop.run_forever", "/usr/lib/python3.11/asyncio/base_events.py" },
	};
	struct fixture *fx = *state;
	struct cb_ident id;
	size_t k;

	for (k = 0; k < sizeof(inner) / sizeof(*inner); k++) {
		fx->st.nframes = 0;
		push(fx, code_obj(fx->lay, inner[k][0], inner[k][1], 1800, 0));
		if (k < 2)
			push(fx, code_obj(fx->lay, "BaseEventLoop._run_once",
					  "/usr/lib/python3.11/asyncio/base_events.py", 1845, 0));
		if (k < 2)
			push(fx, code_obj(fx->lay, "BaseEventLoop.run_forever",
					  "/usr/lib/python3.11/asyncio/base_events.py", 595, 0));
		push(fx, code_obj(fx->lay, "BaseEventLoop.run_until_complete",
				  "/usr/lib/python3.11/asyncio/base_events.py", 617, 0));
		push(fx, code_obj(fx->lay, "Runner.run", "/usr/lib/python3.11/asyncio/runners.py",
				  86, 0));
		push(fx, code_obj(fx->lay, "run", "/usr/lib/python3.11/asyncio/runners.py", 160, 0));
		push(fx, code_obj(fx->lay, "<module>", "/app/main.py", 1, 0));
		lw_sess_ident_from_stack(&fx->s, &fx->st, &id);
		assert_int_equal(id.found, 0);
	}
	/* _run_once known by its code object alone (its name not readable as such) */
	fx->st.nframes = 0;
	push(fx, code_obj(fx->lay, "helper", "/app/util.py", 3, 0));
	fx->s.py.cfg.run_once_code = code_obj(fx->lay, "x", "/elsewhere/base.py", 1, 0);
	push(fx, fx->s.py.cfg.run_once_code);
	push(fx, code_obj(fx->lay, "BaseEventLoop.run_forever",
			  "/usr/lib/python3.11/asyncio/base_events.py", 595, 0));
	lw_sess_ident_from_stack(&fx->s, &fx->st, &id);
	assert_int_equal(id.found, 0);
}

/* issue 20: a Task that calls into base_events.py (loop.subprocess_exec) under asyncio's own
 * loop: Handle._run further out is the boundary, not the base_events.py frame (uvloop's rule) */
static void test_stack_base_events_callee(void **state)
{
	struct fixture *fx = *state;
	struct cb_ident id;

	push(fx, code_obj(fx->lay, "_UnixSelectorEventLoop._make_subprocess_transport",
			  "/usr/lib/python3.11/asyncio/unix_events.py", 195, 0x80));
	push(fx, code_obj(fx->lay, "BaseEventLoop.subprocess_exec",
			  "/usr/lib/python3.11/asyncio/base_events.py", 1670, 0x80));
	push(fx, code_obj(fx->lay, "create_subprocess_exec", "/usr/lib/python3.11/asyncio/subprocess.py",
			  206, 0x80));
	push(fx, code_obj(fx->lay, "get_command_stdout", "/app/t.py", 12, 0x80));
	push(fx, code_obj(fx->lay, "Handle._run", "/usr/lib/python3.11/asyncio/events.py", 78, 0));
	lw_sess_ident_from_stack(&fx->s, &fx->st, &id);
	assert_int_equal(id.found, 1);
	assert_string_equal(id.qualname, "get_command_stdout");
	assert_string_equal(id.file, "/app/t.py");
	assert_int_equal(id.line, 12);
	assert_int_equal(id.kind, LW_KIND_TASK);
}

/* what BPF read from Handle._callback wins; the file comes from the frame inside */
static void test_stack_cb_authoritative(void **state)
{
	struct fixture *fx = *state;
	struct cb_ident id;

	push(fx, code_obj(fx->lay, "inner", "/app/cb.py", 11, 0));
	push(fx, code_obj(fx->lay, "Handle._run", "/usr/lib/python3.12/asyncio/events.py", 78, 0));
	fx->st.cb_kind = LW_KIND_FUNCTION;
	strcpy(fx->st.cb_qualname, "functools.partial");
	lw_sess_ident_from_stack(&fx->s, &fx->st, &id);
	assert_int_equal(id.found, 1);
	assert_string_equal(id.qualname, "functools.partial");
	assert_string_equal(id.file, "/app/cb.py");
	assert_int_equal(id.line, 11);
}

/* issue 20: a Task's "defined at" is its coroutine's, never another function's: found among the
 * frames when the one inside Handle._run is not the coroutine, else left out */
static void test_stack_task_defined_at(void **state)
{
	struct fixture *fx = *state;
	struct cb_ident id;

	push(fx, code_obj(fx->lay, "get_command_stdout", "/app/t.py", 40, 0));
	push(fx, code_obj(fx->lay, "BaseSubprocessTransport._make",
			  "/usr/lib/python3.11/asyncio/unix_events.py", 195, 0));
	push(fx, code_obj(fx->lay, "Handle._run", "/usr/lib/python3.11/asyncio/events.py", 78, 0));
	fx->st.cb_kind = LW_KIND_TASK;
	strcpy(fx->st.cb_qualname, "get_command_stdout");
	lw_sess_ident_from_stack(&fx->s, &fx->st, &id);
	assert_int_equal(id.found, 1);
	assert_string_equal(id.qualname, "get_command_stdout");
	assert_string_equal(id.file, "/app/t.py");
	assert_int_equal(id.line, 40);

	fx->st.nframes = 0;
	push(fx, code_obj(fx->lay, "BaseSubprocessTransport._make",
			  "/usr/lib/python3.11/asyncio/unix_events.py", 195, 0));
	push(fx, code_obj(fx->lay, "Handle._run", "/usr/lib/python3.11/asyncio/events.py", 78, 0));
	lw_sess_ident_from_stack(&fx->s, &fx->st, &id);
	assert_string_equal(id.qualname, "get_command_stdout");
	assert_string_equal(id.file, "");
	assert_int_equal(id.line, 0);
}

/* nothing to name: an invalid stack, unreadable code objects, no loop frame */
static void test_stack_unknown(void **state)
{
	struct fixture *fx = *state;
	struct cb_ident id;

	push(fx, code_obj(fx->lay, "work", "/app/w.py", 1, 0));
	lw_sess_ident_from_stack(&fx->s, &fx->st, &id);
	assert_int_equal(id.found, 0);	/* a plain thread: no loop frame */

	fx->st.nframes = 0;
	push(fx, BASE + sizeof(mem) + 4096);	/* outside the fake memory */
	push(fx, code_obj(fx->lay, "Handle._run", "/usr/lib/python3.12/asyncio/events.py", 78, 0));
	lw_sess_ident_from_stack(&fx->s, &fx->st, &id);
	assert_int_equal(id.found, 0);

	fx->st.flags = 0;
	lw_sess_ident_from_stack(&fx->s, &fx->st, &id);
	assert_int_equal(id.found, 0);
}

/* issue 20 #5: every frame field is right or absent: a code object that reads as no name and no
 * file is dropped, a line the code object cannot have is left out, and either marks the stack */
static void test_stack_garbage_frames(void **state)
{
	struct fixture *fx = *state;
	struct json_object *o = json_object_new_object(), *a, *f;

	push(fx, code_obj(fx->lay, "work", "/app/w.py", 10, 0));
	lw_sess_add_stack(&fx->s, o, &fx->st);
	a = lw_j_get(o, "stack");
	assert_int_equal(json_object_array_length(a), 1);
	f = json_object_array_get_idx(a, 0);
	assert_string_equal(lw_j_get_str(f, "function"), "work");
	assert_int_equal(json_object_get_int(lw_j_get(f, "line")), 10);	/* not started: first */
	assert_null(lw_j_get(o, "stack_incomplete"));
	json_object_put(o);

	/* garbage at a code object's address: no name, no file, a first line of 9779584 */
	fx->st.nframes = 0;
	push(fx, code_obj(fx->lay, "", "", 9779584, 0));
	push(fx, code_obj(fx->lay, "outer", "/app/w.py", 3, 0));
	o = json_object_new_object();
	lw_sess_add_stack(&fx->s, o, &fx->st);
	a = lw_j_get(o, "stack");
	assert_int_equal(json_object_array_length(a), 1);
	assert_string_equal(lw_j_get_str(json_object_array_get_idx(a, 0), "function"), "outer");
	assert_string_equal(lw_j_get_str(o, "stack_incomplete"), "unreadable");
	json_object_put(o);

	/* a frame past its first instruction whose code has no line table: no line, not null */
	fx->st.nframes = 0;
	push(fx, code_obj(fx->lay, "NonCallableMock.__setattr__", "/usr/lib/mock.py", 5, 0));
	fx->st.frames[0].instr = fx->st.frames[0].code + fx->lay->code_basicsize + 40;
	push(fx, code_obj(fx->lay, "neg", "/app/w.py", -7, 0));
	o = json_object_new_object();
	lw_sess_add_stack(&fx->s, o, &fx->st);
	a = lw_j_get(o, "stack");
	assert_int_equal(json_object_array_length(a), 2);
	f = json_object_array_get_idx(a, 0);
	assert_string_equal(lw_j_get_str(f, "function"), "NonCallableMock.__setattr__");
	assert_false(json_object_object_get_ex(f, "line", NULL));
	assert_false(json_object_object_get_ex(json_object_array_get_idx(a, 1), "line", NULL));
	assert_string_equal(lw_j_get_str(o, "stack_incomplete"), "unreadable");
	json_object_put(o);
}

/* issue 20 #11: an empty stack says why it is empty. None taken (a slow callback that never
 * slept and that no CPU sample caught): "not sampled"; one taken with no Python frame on it:
 * "no frames"; one whose only frame was dropped: "unreadable", as before */
static void test_stack_empty_says_why(void **state)
{
	struct fixture *fx = *state;
	struct json_object *o = json_object_new_object();

	lw_sess_add_stack(&fx->s, o, NULL);
	assert_int_equal(json_object_array_length(lw_j_get(o, "stack")), 0);
	assert_string_equal(lw_j_get_str(o, "stack_incomplete"), "not sampled");
	json_object_put(o);

	fx->st.flags = 0;	/* a record's slot with no stack in it (no_stack()) */
	o = json_object_new_object();
	lw_sess_add_stack(&fx->s, o, &fx->st);
	assert_int_equal(json_object_array_length(lw_j_get(o, "stack")), 0);
	assert_string_equal(lw_j_get_str(o, "stack_incomplete"), "not sampled");
	json_object_put(o);

	fx->st.flags = LW_STACK_VALID;
	o = json_object_new_object();
	lw_sess_add_stack(&fx->s, o, &fx->st);
	assert_int_equal(json_object_array_length(lw_j_get(o, "stack")), 0);
	assert_string_equal(lw_j_get_str(o, "stack_incomplete"), "no frames");
	json_object_put(o);

	push(fx, code_obj(fx->lay, "", "", 9779584, 0));
	o = json_object_new_object();
	lw_sess_add_stack(&fx->s, o, &fx->st);
	assert_int_equal(json_object_array_length(lw_j_get(o, "stack")), 0);
	assert_string_equal(lw_j_get_str(o, "stack_incomplete"), "unreadable");
	json_object_put(o);

	/* a stack with frames, whole: no mark */
	fx->st.nframes = 0;
	push(fx, code_obj(fx->lay, "work", "/app/w.py", 10, 0));
	o = json_object_new_object();
	lw_sess_add_stack(&fx->s, o, &fx->st);
	assert_int_equal(json_object_array_length(lw_j_get(o, "stack")), 1);
	assert_null(lw_j_get(o, "stack_incomplete"));
	json_object_put(o);
}

/* issue 20 #5: an address that holds no code object (freed and reused, or read from a stale
 * frame) carries no name, even where its bytes read as one: the frame is dropped and the stack
 * says "unreadable". Known by the target's PyCode_Type and PyUnicode_Type. */
static void test_stack_not_a_code_object(void **state)
{
	struct fixture *fx = *state;
	uint64_t code_t = alloc(64), str_t = alloc(64), bytes_t = alloc(64);
	uint64_t good, garbage, badname;
	struct json_object *o, *a;
	size_t k;

	lw_pycache__set_types(fx->s.codes, code_t, str_t);
	good = code_obj(fx->lay, "outer", "/app/w.py", 3, 0);
	/* the same bytes as a code object named "work", but another type now */
	garbage = code_obj(fx->lay, "work", "/app/w.py", 10, 0);
	/* a code object whose name is a bytes object that happens to read as compact ASCII */
	badname = code_obj(fx->lay, "junk", "/app/w.py", 20, 0);
	put64(good + 8, code_t);
	put64(garbage + 8, bytes_t);
	put64(badname + 8, code_t);
	for (k = 0; k < 3; k++) {
		uint64_t c = k == 0 ? good : k == 1 ? garbage : badname, p;

		memcpy(&p, mem + (c + fx->lay->co_filename - BASE), 8);
		put64(p + 8, str_t);
		memcpy(&p, mem + (c + fx->lay->co_name - BASE), 8);
		put64(p + 8, k == 2 ? bytes_t : str_t);
		memcpy(&p, mem + (c + fx->lay->co_qualname - BASE), 8);
		put64(p + 8, k == 2 ? bytes_t : str_t);
	}
	for (k = 0; k < 2; k++) {
		fx->st.nframes = 0;
		push(fx, k == 0 ? garbage : badname);
		push(fx, good);
		o = json_object_new_object();
		lw_sess_add_stack(&fx->s, o, &fx->st);
		a = lw_j_get(o, "stack");
		assert_int_equal(json_object_array_length(a), 1);
		assert_string_equal(lw_j_get_str(json_object_array_get_idx(a, 0), "function"),
				    "outer");
		assert_string_equal(lw_j_get_str(o, "stack_incomplete"), "unreadable");
		json_object_put(o);
	}
}

/* V8's perf map names, Node 20 (file:line:column) and Debian 12's Node 18 (file:line) */
static void test_parse_js(void **state)
{
	static const struct {
		const char *sym, *name, *file;
		int line;
	} cases[] = {
		{ "JS:~busyHandler /srv/app.js:23:21", "busyHandler", "/srv/app.js", 23 },
		{ "LazyCompile:~busyHandler /srv/app.js:29", "busyHandler", "/srv/app.js", 29 },
		{ "Function:^fifoHandler /srv/app.js:43", "fifoHandler", "/srv/app.js", 43 },
		{ "JS:*parse file:///srv/a:b.mjs:7:3", "parse", "file:///srv/a:b.mjs", 7 },
		{ "LazyCompile:~ node:internal/timers:512", "(anonymous)", "node:internal/timers", 512 },
		{ "JS:~f /srv/x.js:12:", "f", "/srv/x.js:12:", 0 },
		{ "Script:~ /srv/run.js", "(anonymous)", "/srv/run.js", 0 },
		{ "JS:~lonely", "lonely", "", 0 },
	};
	char name[64], file[128];
	size_t i;
	int line;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(lw_sess_parse_js(cases[i].sym, name, sizeof(name), file, sizeof(file),
						  &line), 1);
		assert_string_equal(name, cases[i].name);
		assert_string_equal(file, cases[i].file);
		assert_int_equal(line, cases[i].line);
	}
	assert_int_equal(lw_sess_parse_js("epoll_wait", name, sizeof(name), file, sizeof(file), &line),
			 0);
}

static void test_ident_json(void **state)
{
	struct cb_ident id = { .found = 1, .kind = LW_KIND_METHOD, .line = 0 };
	struct json_object *o;

	strcpy(id.qualname, "A.b");
	o = lw_sess_ident_json(&id);
	assert_string_equal(lw_j_get_str(o, "kind"), "method");
	assert_string_equal(lw_j_get_str(o, "qualname"), "A.b");
	assert_null(lw_j_get(o, "task_name"));
	assert_null(lw_j_get(o, "line"));	/* 0: unknown */
	json_object_put(o);
}

/* Mixed stacks: the native frames inner to the innermost eval loop, marked native, then the
 * Python frames; nothing where the eval loop is innermost or absent, or no Python stack */
static void test_mixed_stack(void **state)
{
	static const char *const cases[][2] = {
		{ "[{\"function\":\"blocker\",\"file\":\"a.py\",\"line\":3}]",
		  "[{\"symbol\":\"clock_nanosleep\",\"module\":\"libc.so.6\",\"offset\":35},"
		  "{\"symbol\":null,\"module\":\"python3.11\",\"offset\":7},"
		  "{\"symbol\":\"_PyEval_EvalFrameDefault\",\"module\":\"python3.11\",\"offset\":1},"
		  "{\"symbol\":\"main\",\"module\":\"python3.11\",\"offset\":1}]" },
		{ "[{\"function\":\"f\",\"file\":\"a.py\",\"line\":3}]",
		  "[{\"symbol\":\"_PyEval_EvalFrameDefault\",\"module\":\"python3.11\",\"offset\":1}]" },
		{ "[{\"function\":\"f\",\"file\":\"a.py\",\"line\":3}]",
		  "[{\"symbol\":\"read\",\"module\":\"libc.so.6\",\"offset\":1}]" },
		{ "[]",
		  "[{\"symbol\":\"read\",\"module\":\"libc.so.6\",\"offset\":1},"
		  "{\"symbol\":\"_PyEval_EvalFrameDefault\",\"module\":\"python3.11\",\"offset\":1}]" },
	};
	size_t k;

	(void)state;
	for (k = 0; k < sizeof(cases) / sizeof(*cases); k++) {
		struct json_object *o = json_object_new_object(), *m;

		json_object_object_add(o, "stack", json_tokener_parse(cases[k][0]));
		json_object_object_add(o, "native_stack", json_tokener_parse(cases[k][1]));
		lw_sess_add_mixed(o);
		m = lw_j_get(o, "mixed_stack");
		if (k) {
			assert_null(m);
		} else {
			assert_non_null(m);
			assert_string_equal(lw_j_line(m),
				"[{\"native\":true,\"symbol\":\"clock_nanosleep\",\"module\":\"libc.so.6\","
				"\"offset\":35},{\"native\":true,\"symbol\":null,\"module\":\"python3.11\","
				"\"offset\":7},{\"function\":\"blocker\",\"file\":\"a.py\",\"line\":3}]");
			/* native_stack itself is left as it was */
			assert_null(lw_j_get(json_object_array_get_idx(lw_j_get(o, "native_stack"), 0),
					     "native"));
		}
		json_object_put(o);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_from_bpf, setup, teardown),
		cmocka_unit_test_setup_teardown(test_from_bpf_long_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stack_inside_handle_run, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stack_coroutine_task, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stack_uvloop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stack_base_events_callee, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stack_loop_own_code, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stack_task_defined_at, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stack_cb_authoritative, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stack_unknown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stack_garbage_frames, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stack_not_a_code_object, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stack_empty_says_why, setup, teardown),
		cmocka_unit_test(test_parse_js),
		cmocka_unit_test(test_ident_json),
		cmocka_unit_test(test_mixed_stack),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
