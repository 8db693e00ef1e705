// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Records -> human text. The expected slow-callback text is the example of interface.md. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "record/jsonrec.h"
#include "record/render.h"

static char *render(const char *json)
{
	struct json_object *o = json_tokener_parse(json);
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(o);
	lw_render_text(f, o);
	fclose(f);
	json_object_put(o);
	return buf;
}

static void test_slow_callback(void **state)
{
	char *out = render(
		"{\"type\":\"slow_callback\",\"v\":1,\"ts\":\"2026-11-25T02:00:30.000000Z\",\"pid\":4242,"
		"\"tid\":4242,\"duration_ms\":2004.0,\"threshold_ms\":100.0,\"in_progress\":false,"
		"\"callback\":{\"kind\":\"task\",\"task_name\":\"payment-worker\",\"qualname\":\"charge\","
		"\"file\":\"app.py\",\"line\":17},\"cpu_ms\":1.0,\"offcpu_ms\":2003.0,\"runq_ms\":0.0,"
		"\"gil_ms\":0.0,\"gc_ms\":0.0,"
		"\"blocked\":[{\"syscall\":\"clock_nanosleep\",\"ms\":2003.0,\"count\":1}],"
		"\"stack\":[{\"function\":\"charge\",\"file\":\"app.py\",\"line\":21},"
		"{\"function\":\"main\",\"file\":\"app.py\",\"line\":40}],\"stack_kind\":\"blocked\"}");

	(void)state;
	assert_string_equal(out,
		"WARNING pid 4242 tid 4242: Executing <Task name='payment-worker' coro=<charge() defined at app.py:17>> took 2.004 s\n"
		"        on-cpu 0.001 s · blocked 2.003 s in clock_nanosleep (1×) · run-queue 0.000 s\n"
		"        blocked at  charge (app.py:21)\n"
		"                    main (app.py:40)\n");
	free(out);
}

/* issue 20: every part of the split above 1 ms, each blocking syscall with its share */
static void test_split_every_part(void **state)
{
	char *out = render(
		"{\"type\":\"slow_callback\",\"pid\":1,\"tid\":2,\"duration_ms\":900.0,"
		"\"in_progress\":false,\"callback\":{\"kind\":\"function\",\"qualname\":\"f\","
		"\"file\":\"a.py\",\"line\":1},\"cpu_ms\":54.0,\"runq_ms\":114.0,\"gil_ms\":31.0,"
		"\"gc_ms\":2.5,\"blocked\":[{\"syscall\":\"futex\",\"ms\":582.0,\"count\":3},"
		"{\"syscall\":\"pselect6\",\"ms\":102.0,\"count\":1},"
		"{\"syscall\":\"poll\",\"ms\":101.0,\"count\":1},"
		"{\"syscall\":\"read\",\"ms\":0.2,\"count\":1}],"
		"\"gil_holder\":{\"tid\":7},\"stack\":[],\"stack_kind\":null}");

	(void)state;
	assert_non_null(strstr(out, "blocked 0.785 s in futex 0.582 s (3×), pselect6 0.102 s (1×), "
				    "poll 0.101 s (1×) · waiting for the GIL 0.031 s (held by tid 7) "
				    "· gc 0.003 s · run-queue 0.114 s\n"));
	assert_null(strstr(out, "read"));
	assert_null(strstr(out, "GIL holder"));
	free(out);
}

static void test_handle_and_blocking(void **state)
{
	char *out = render(
		"{\"type\":\"slow_callback\",\"pid\":1,\"tid\":2,\"duration_ms\":150.0,"
		"\"callback\":{\"kind\":\"method\",\"task_name\":null,\"qualname\":\"Ledger.flush\","
		"\"file\":\"/srv/app/ledger.py\",\"line\":9},\"cpu_ms\":150.0,\"runq_ms\":0.0,"
		"\"blocked\":[],\"stack\":[{\"function\":\"Ledger.flush\",\"file\":\"/srv/app/ledger.py\","
		"\"line\":12}],\"stack_kind\":\"cpu\"}");

	(void)state;
	assert_non_null(strstr(out, "Executing <Handle Ledger.flush() at /srv/app/ledger.py:9> took 0.150 s\n"));
	assert_non_null(strstr(out, "        on cpu at   Ledger.flush (ledger.py:12)\n"));
	free(out);
	out = render("{\"type\":\"blocking_call\",\"pid\":1,\"tid\":2,\"syscall\":\"read\","
		     "\"duration_ms\":300.0,\"fd\":5,\"target\":\"/tmp/fifo\",\"callback\":null,"
		     "\"stack\":[{\"function\":\"reader\",\"file\":\"/a/b.py\",\"line\":3}]}");
	assert_string_equal(out, "WARNING pid 1 tid 2: blocking read() on /tmp/fifo took 0.300 s\n"
				 "        at          reader (b.py:3)\n");
	free(out);
}

/* Native frames: never "??+0x0 (?)": module+offset without a symbol, the address without a
 * mapping (issue 17) */
static void test_native_frames(void **state)
{
	char *out = render(
		"{\"type\":\"blocking_call\",\"pid\":1,\"tid\":2,\"syscall\":\"clock_nanosleep\","
		"\"duration_ms\":250.0,\"fd\":null,\"target\":null,\"callback\":null,\"stack\":[],"
		"\"native_stack\":[{\"symbol\":\"clock_nanosleep@@GLIBC_2.17\",\"module\":\"libc.so.6\","
		"\"offset\":35},{\"symbol\":null,\"module\":\"libuv.so.1.0.0\",\"offset\":48318},"
		"{\"symbol\":null,\"module\":\"[vdso]\",\"offset\":2886},"
		"{\"symbol\":null,\"module\":null,\"address\":\"0x1868d\"}]}");

	(void)state;
	assert_non_null(strstr(out, "native      clock_nanosleep@@GLIBC_2.17+0x23 (libc.so.6)\n"));
	assert_non_null(strstr(out, "            libuv.so.1.0.0+0xbcbe\n"));
	assert_non_null(strstr(out, "            [vdso]+0xb46\n"));
	assert_non_null(strstr(out, "            0x1868d\n"));
	assert_null(strstr(out, "??"));
	assert_null(strstr(out, "(?)"));
	free(out);
}

/* A frame with a name but no module (a hand-made or older record) shows no "(?)"; a frame with
 * nothing at all is dropped, the next one takes the "native" label */
static void test_native_frames_partial(void **state)
{
	char *out = render(
		"{\"type\":\"blocking_call\",\"pid\":1,\"tid\":2,\"syscall\":\"read\","
		"\"duration_ms\":250.0,\"fd\":null,\"target\":null,\"callback\":null,\"stack\":[],"
		"\"native_stack\":[{\"symbol\":null,\"module\":null},"
		"{\"symbol\":\"read_loop\",\"module\":null,\"offset\":16},"
		"{\"symbol\":null,\"module\":\"app\",\"offset\":0},{}]}");

	(void)state;
	assert_string_equal(out,
		"WARNING pid 1 tid 2: blocking read() took 0.250 s\n"
		"        native      read_loop+0x10\n"
		"                    app+0x0\n");
	free(out);
}

/* Mixed stacks: the native frames under the innermost Python frame (before the eval loop),
 * four of them, the rest folded; then the Python frame */
static void test_mixed_stack(void **state)
{
	char *out = render(
		"{\"type\":\"blocking_call\",\"pid\":1,\"tid\":2,\"syscall\":\"clock_nanosleep\","
		"\"duration_ms\":250.0,\"fd\":null,\"target\":null,\"callback\":null,"
		"\"stack\":[{\"function\":\"blocker\",\"file\":\"/a/app.py\",\"line\":24}],"
		"\"native_stack\":[{\"symbol\":\"clock_nanosleep@@GLIBC_2.17\",\"module\":\"libc.so.6\","
		"\"offset\":35},{\"symbol\":\"usleep\",\"module\":\"libc.so.6\",\"offset\":69},"
		"{\"symbol\":null,\"module\":\"libsqlite3.so.0.8.6\",\"offset\":4096},"
		"{\"symbol\":\"sqlite3_step\",\"module\":\"libsqlite3.so.0.8.6\",\"offset\":9},"
		"{\"symbol\":null,\"module\":\"_sqlite3.so\",\"offset\":77},"
		"{\"symbol\":\"_PyEval_EvalFrameDefault\",\"module\":\"python3.11\",\"offset\":1},"
		"{\"symbol\":\"Py_BytesMain\",\"module\":\"python3.11\",\"offset\":1}]}");

	(void)state;
	assert_string_equal(out,
		"WARNING pid 1 tid 2: blocking clock_nanosleep() took 0.250 s\n"
		"        native      clock_nanosleep@@GLIBC_2.17+0x23 (libc.so.6)\n"
		"                    usleep+0x45 (libc.so.6)\n"
		"                    libsqlite3.so.0.8.6+0x1000\n"
		"                    sqlite3_step+0x9 (libsqlite3.so.0.8.6)\n"
		"                    ... 1 more native frames\n"
		"        at          blocker (app.py:24)\n");
	free(out);
}

/* Summary tables: columns as wide as their longest cell; past 60 bytes a cell is cut from the
 * left so that the file name and line number stay whole. */
static void test_summary_columns(void **state)
{
	char *out = render(
		"{\"type\":\"summary\",\"pid\":7,\"comm\":\"py\",\"final\":true,\"interval_s\":1.0,"
		"\"sites\":[{\"qualname\":\"VeryLongServiceName.handle_incoming_request_with_retries\","
		"\"file\":\"/srv/app/service.py\",\"line\":1234,\"count\":2,\"total_ms\":300.0,"
		"\"p50_ms\":150.0,\"p99_ms\":150.0,\"max_ms\":150.0}],"
		"\"blocking_sites\":[{\"syscall\":\"read\",\"target\":"
		"\"/var/lib/app/spool/incoming/queue-0001.fifo\",\"qualname\":\"reader\","
		"\"file\":\"/srv/app/io.py\",\"line\":35,\"count\":1,\"total_ms\":250.0,"
		"\"max_ms\":250.0}]}");

	(void)state;
	/* 74 bytes of site: cut to 60 from the left, the count right after */
	assert_non_null(strstr(out, "    ...me.handle_incoming_request_with_retries (service.py:1234)       2 "));
	/* a 43-byte path and a short site fit whole, columns sized to them */
	assert_non_null(strstr(out, "    syscall          target                                      at         "
				    "         count "));
	assert_non_null(strstr(out, "    read             /var/lib/app/spool/incoming/queue-0001.fifo "
				    "reader (io.py:35)       1 "));
	free(out);
}

/* issue 20: read errors were only in the JSON, with no hint of what failed */
static void test_summary_read_errors_by_cause(void **state)
{
	char *out = render(
		"{\"type\":\"summary\",\"pid\":7,\"comm\":\"py\",\"final\":true,\"interval_s\":1.0,"
		"\"read_errors\":2031,\"read_errors_by\":{\"frame\":1800,\"string\":200,"
		"\"userspace\":31}}");

	(void)state;
	assert_non_null(strstr(out, "  read errors 2031 (frame 1800, string 200, userspace 31): "));
	free(out);
	/* none: no line */
	out = render("{\"type\":\"summary\",\"pid\":7,\"final\":true,\"read_errors\":0,"
		     "\"read_errors_by\":{}}");
	assert_null(strstr(out, "read errors"));
	free(out);
	/* an older record without the causes: the count alone */
	out = render("{\"type\":\"summary\",\"pid\":7,\"final\":true,\"read_errors\":12}");
	assert_non_null(strstr(out, "  read errors 12: memory"));
	free(out);
}

static void test_unknown_and_junk(void **state)
{
	char *out;

	(void)state;
	out = render("{\"type\":\"something_new\",\"pid\":1}");
	assert_string_equal(out, "");
	free(out);
	/* missing fields render with placeholders, never crash */
	out = render("{\"type\":\"slow_callback\"}");
	assert_non_null(strstr(out, "Executing <unidentified callback> took 0.000 s"));
	free(out);
	out = render("{\"type\":\"summary\",\"sites\":\"not an array\",\"loops\":7}");
	assert_non_null(strstr(out, "summary"));
	free(out);
}

static void test_json_helpers(void **state)
{
	struct json_object *o = lw_j_record("start", 42, 1795572030ull * 1000000000ull);

	(void)state;
	json_object_object_add(o, "duration_ms", lw_j_ms(2004000000ull));
	assert_string_equal(lw_j_line(o), "{\"type\":\"start\",\"v\":1,\"ts\":\"2026-11-25T02:00:30.000000Z\","
					  "\"pid\":42,\"duration_ms\":2004.000}");
	assert_int_equal(lw_j_get_int(o, "pid", 0), 42);
	assert_null(lw_j_get_str(o, "nope"));
	json_object_put(o);
}

/* issue 14: a stuck Task's headline (what it awaits, who awaits it) and where it waits; one on
 * an await cycle is an ERROR naming the deadlock; the summary counts them */
static void test_stuck_task(void **state)
{
	char *out = render(
		"{\"type\":\"stuck_task\",\"v\":1,\"pid\":7,\"tid\":8,\"comm\":\"api\","
		"\"task\":{\"id\":\"0x10\",\"name\":\"req-3\",\"coro\":\"handle\",\"state\":\"pending\"},"
		"\"pending_ms\":61250.0,\"threshold_ms\":60000.0,"
		"\"stack\":[{\"qualname\":\"Lock.acquire\",\"file\":\"/usr/lib/python3.11/asyncio/locks.py\","
		"\"line\":114},{\"qualname\":\"handle\",\"file\":\"/app/api.py\",\"line\":40}],"
		"\"awaits\":{\"kind\":\"lock\",\"what\":\"Lock 0x7f01 (Lock.acquire)\"},"
		"\"awaited_by\":[{\"id\":\"0x20\",\"name\":\"main\",\"via\":\"gather\"},"
		"{\"id\":\"0x30\",\"name\":null,\"via\":\"wait_for\"}],\"deadlock\":false}");

	(void)state;
	assert_string_equal(out,
		"WARNING pid 7 tid 8: Task 'req-3' (handle) stuck 61.250 s at the same await, awaiting "
		"Lock 0x7f01 (Lock.acquire); awaited by Task 'main' (gather), Task '0x30' (wait_for)\n"
		"        waiting at  Lock.acquire (locks.py:114)\n"
		"                    handle (api.py:40)\n");
	free(out);
	out = render(
		"{\"type\":\"stuck_task\",\"pid\":7,\"tid\":7,\"task\":{\"name\":\"dl-a\",\"coro\":\"w\"},"
		"\"pending_ms\":1000.0,\"stack\":[{\"qualname\":\"w\",\"file\":\"d.py\",\"line\":null}],"
		"\"awaits\":{\"kind\":\"task\",\"what\":\"Task dl-b\"},"
		"\"awaited_by\":[{\"id\":\"0x2\",\"name\":\"dl-b\",\"via\":\"await\"}],\"deadlock\":true}");
	assert_string_equal(out,
		"ERROR pid 7 tid 7: deadlock: Task 'dl-a' (w) stuck 1.000 s at the same await, awaiting "
		"Task dl-b; awaited by Task 'dl-b' (await) (Tasks awaiting each other)\n"
		"        waiting at  w (d.py)\n");
	free(out);
	out = render("{\"type\":\"summary\",\"pid\":7,\"final\":true,\"comm\":\"api\","
		     "\"interval_s\":5.0,\"stuck_tasks\":3}");
	assert_non_null(strstr(out, "  asyncio: 3 tasks stuck at one await (stuck_task records)\n"));
	free(out);
	/* what the rate limit held back: one line per site */
	out = render("{\"type\":\"suppressed\",\"pid\":7,\"record_type\":\"stuck_task\","
		     "\"site\":{\"qualname\":\"Lock.acquire\",\"file\":\"/x/locks.py\",\"line\":114,"
		     "\"frame\":\"handle\"},\"count\":40,\"max_ms\":95000.0,\"window_s\":60.0}");
	assert_string_equal(out, "… pid 7: 40 more Tasks of handle stuck at Lock.acquire (locks.py:114) "
				 "in the last 60 s, the longest there 95 s\n");
	free(out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_slow_callback),
		cmocka_unit_test(test_stuck_task),
		cmocka_unit_test(test_split_every_part),
		cmocka_unit_test(test_handle_and_blocking),
		cmocka_unit_test(test_summary_columns),
		cmocka_unit_test(test_summary_read_errors_by_cause),
		cmocka_unit_test(test_native_frames),
		cmocka_unit_test(test_native_frames_partial),
		cmocka_unit_test(test_mixed_stack),
		cmocka_unit_test(test_unknown_and_junk),
		cmocka_unit_test(test_json_helpers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
