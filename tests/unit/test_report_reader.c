// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * The bounded line reader behind `loopwatch report` (lw_rd__load_stream): lines across the
 * reader's 64 KiB blocks, CRLF, blank lines, NUL bytes, a last line without a newline, a line
 * over LW_RD_MAX_LINE (skipped, the records around it read), and skipped lines by cause.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "report/report_data.h"

#define REC "{\"type\":\"end\",\"v\":1,\"ts\":\"2026-11-25T02:00:30.000000Z\",\"pid\":42," \
	    "\"lost_events\":0,\"suppressed\":0}"

static struct lw_report_data *load(const char *buf, size_t len, int *r)
{
	struct lw_report_data *d = NULL;
	FILE *f = fmemopen((void *)buf, len, "r");

	assert_non_null(f);
	assert_int_equal(lw_rd__new(&d), 0);
	*r = lw_rd__load_stream(d, f, "t");
	fclose(f);
	return d;
}

static void test_causes(void **state)
{
	static const char in[] = REC "\r\n\n" "hello\n" "{}\n" "{\"type\":\"end\",\"pid\":1}\n"
				 "{\"type\":\"slow_callback\",\"ts\":\"2026-11-25T02:00:30Z\","
				 "\"pid\":4}\n" "a\0b\n" REC;
	struct lw_report_data *d;
	int r;

	(void)state;
	d = load(in, sizeof(in) - 1, &r);
	assert_int_equal(r, 0);
	assert_int_equal(d->lines, 8);
	assert_int_equal(d->records, 2);
	assert_int_equal(d->skipped, 5);
	assert_int_equal(d->skipped_by[LW_RD_SKIP_NOT_JSON], 1);
	assert_int_equal(d->skipped_by[LW_RD_SKIP_NOT_RECORD], 2);
	assert_int_equal(d->skipped_by[LW_RD_SKIP_MALFORMED], 1);
	assert_int_equal(d->skipped_by[LW_RD_SKIP_BINARY], 1);
	assert_int_equal(d->files[0].skipped_by[LW_RD_SKIP_BINARY], 1);
	assert_int_equal(d->files[0].truncated_last, 0);
	assert_string_equal(lw_rd_skip_name(LW_RD_SKIP_TOO_LONG), "too_long");
	lw_rd__free(d);
}

/* records whose lines straddle the reader's blocks; the last one cut short */
static void test_block_boundaries(void **state)
{
	size_t n = 5000, i, len = 0, rl = strlen(REC);
	char *buf = malloc(n * (rl + 1) + 16);
	struct lw_report_data *d;
	int r;

	(void)state;
	assert_non_null(buf);
	for (i = 0; i < n; i++) {
		memcpy(buf + len, REC, rl);
		len += rl;
		buf[len++] = '\n';
	}
	memcpy(buf + len, "{\"type\":", 8);
	len += 8;
	d = load(buf, len, &r);
	assert_int_equal(r, 0);
	assert_int_equal(d->records, n);
	assert_int_equal(d->skipped, 1);
	assert_int_equal(d->files[0].truncated_last, 1);
	assert_int_equal(d->truncated, 1);
	lw_rd__free(d);
	free(buf);
}

/* a line one byte over the cap: skipped as too_long, the records on either side read */
static void test_too_long(void **state)
{
	size_t rl = strlen(REC), len = 0;
	size_t total = 2 * (rl + 1) + LW_RD_MAX_LINE + 2;
	char *buf = malloc(total);
	struct lw_report_data *d;
	int r;

	(void)state;
	assert_non_null(buf);
	memcpy(buf, REC "\n", rl + 1);
	len = rl + 1;
	memset(buf + len, 'x', LW_RD_MAX_LINE + 1);
	len += LW_RD_MAX_LINE + 1;
	buf[len++] = '\n';
	memcpy(buf + len, REC "\n", rl + 1);
	len += rl + 1;
	d = load(buf, len, &r);
	assert_int_equal(r, 0);
	assert_int_equal(d->lines, 3);
	assert_int_equal(d->records, 2);
	assert_int_equal(d->skipped_by[LW_RD_SKIP_TOO_LONG], 1);
	lw_rd__free(d);
	/* exactly at the cap: read (and skipped as not JSON, not as too long) */
	memset(buf, 'x', LW_RD_MAX_LINE);
	buf[LW_RD_MAX_LINE] = '\n';
	d = load(buf, LW_RD_MAX_LINE + 1, &r);
	assert_int_equal(r, 0);
	assert_int_equal(d->skipped_by[LW_RD_SKIP_TOO_LONG], 0);
	assert_int_equal(d->skipped_by[LW_RD_SKIP_NOT_JSON], 1);
	lw_rd__free(d);
	free(buf);
}

static void test_error_text(void **state)
{
	char err[512];

	(void)state;
	lw_rd_load_error(err, sizeof(err), "standard input", -EFBIG);
	assert_non_null(strstr(err, "standard input: 4 GiB without a record"));
	lw_rd_load_error(err, sizeof(err), "x.jsonl", -ENOMEM);
	assert_non_null(strstr(err, "out of memory"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_causes),
		cmocka_unit_test(test_block_boundaries),
		cmocka_unit_test(test_too_long),
		cmocka_unit_test(test_error_text),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
