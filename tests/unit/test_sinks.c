// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* record/sinks.c: a JSON Lines record cut short by a failed write (a full disk, a file size
 * limit) must not have the next record glued onto it (issue 19). */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "record/sinks.h"

static struct json_object *rec(int n)
{
	char buf[256];

	snprintf(buf, sizeof(buf), "{\"type\":\"slow_callback\",\"pid\":%d,\"note\":\"%s\"}", n,
		 "0123456789012345678901234567890123456789012345678901234567890123456789");
	return json_tokener_parse(buf);
}

static void test_cut_line_not_glued(void **state)
{
	char path[] = "/tmp/lwsink-XXXXXX", *text = NULL, line[512];
	struct rlimit old, lim;
	struct lw_jsonl *j;
	struct json_object *r;
	size_t len = 0;
	FILE *f;
	int fd, n = 0;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(lw_jsonl__open(path, NULL, &j, NULL, 0), 0);
	signal(SIGXFSZ, SIG_IGN);
	assert_int_equal(getrlimit(RLIMIT_FSIZE, &old), 0);
	/* room for half a record: the write is cut, then fails (EFBIG), and so does the newline */
	lim = old;
	lim.rlim_cur = 60;
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &lim), 0);
	r = rec(1);
	lw_jsonl__write(j, r);
	json_object_put(r);
	assert_int_equal(lw_jsonl__errors(j), 1);
	/* the disk has room again */
	assert_int_equal(setrlimit(RLIMIT_FSIZE, &old), 0);
	r = rec(2);
	lw_jsonl__write(j, r);
	json_object_put(r);
	lw_jsonl__close(j);
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f)) {
		struct json_object *o = json_tokener_parse(line);

		n++;
		if (n == 1) {
			assert_null(o);		/* the cut one */
			assert_int_equal(strlen(line), 61);
		} else {
			assert_non_null(o);	/* whole, on a line of its own */
			assert_int_equal(json_object_get_int(json_object_object_get(o, "pid")), 2);
		}
		json_object_put(o);
	}
	fclose(f);
	assert_int_equal(n, 2);
	free(text);
	(void)len;
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cut_line_not_glued),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
