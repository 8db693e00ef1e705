// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* Text escaping (base/textesc.c) and its use by the human text of records (record/render.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <json-c/json.h>

#include "base/textesc.h"
#include "record/jsonrec.h"
#include "record/render.h"

/* the task name of issue 19: colours, a forged line, a terminal title, a carriage return */
#define EVIL "\x1b[31mEVIL\"\n{\x1b]0;pwned\x07\r"

/* no byte that a terminal acts on: C0 but '\n' where allowed, DEL, C1 as UTF-8 or raw */
static void assert_inert(const char *s, int newlines_allowed)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; *p; p++) {
		if (*p == '\n' && newlines_allowed)
			continue;
		if (*p < 0x20 || *p == 0x7f)
			fail_msg("control byte 0x%02x at offset %zu of \"%s\"", *p,
				 (size_t)(p - (const unsigned char *)s), s);
		if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
			fail_msg("C1 control at offset %zu", (size_t)(p - (const unsigned char *)s));
	}
}

static void test_escape(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
		{ "plain name", "plain name" },
		{ EVIL, "\\x1b[31mEVIL\"\\x0a{\\x1b]0;pwned\\x07\\x0d" },
		{ "tab\there\x7f", "tab\\x09here\\x7f" },
		{ "café ✓ 😀", "café ✓ 😀" },				/* valid UTF-8 kept */
		{ "c1 \xc2\x9b" "31m", "c1 \\xc2\\x9b31m" },		/* U+009B, CSI */
		{ "raw \x9b" "31m", "raw \\x9b31m" },			/* a lone C1 byte */
		{ "bad \xff\xfe", "bad \\xff\\xfe" },
		{ "overlong \xc0\xaf", "overlong \\xc0\\xaf" },
		{ "cut \xe2\x82", "cut \\xe2\\x82" },
		{ "surrogate \xed\xa0\x80", "surrogate \\xed\\xa0\\x80" },
		{ "rtl \xe2\x80\xae" "gnp.exe", "rtl \\xe2\\x80\\xaegnp.exe" }, /* U+202E */
	};
	char buf[256], *d;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_string_equal(lw_esc(cases[i].in, buf, sizeof(buf)), cases[i].out);
		assert_int_equal(lw_esc_len(cases[i].in), strlen(cases[i].out));
		assert_int_equal(lw_esc_needed(cases[i].in), strcmp(cases[i].in, cases[i].out) != 0);
		d = lw_esc_dup(cases[i].in);
		assert_string_equal(d, cases[i].out);
		free(d);
	}
	/* cut at a whole escape, never in the middle of one */
	assert_string_equal(lw_esc("ab\x1b", buf, 5), "ab");
	assert_string_equal(lw_esc("ab\x1b", buf, 7), "ab\\x1b");
	assert_string_equal(lw_esc(NULL, buf, sizeof(buf)), "");
	assert_null(lw_esc_dup(NULL));
	assert_false(lw_esc_needed(NULL));
}

static char *render(struct json_object *o)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	lw_render_text(f, o);
	fclose(f);
	return buf;
}

static int count_lines(const char *s)
{
	int n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

/* every record type the text shows, with the hostile name in every string a target sets */
static void test_render_hostile(void **state)
{
	static const char *const types[] = { "slow_callback", "slow_tick", "blocking_call", "start",
					     "summary", "end", "suppressed", "unawaited_coroutine",
					     "exception_never_retrieved", "task_destroyed_pending" };
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct json_object *o = json_object_new_object(), *cb = json_object_new_object();
		struct json_object *st = json_object_new_array(), *fr = json_object_new_object();
		struct json_object *site = json_object_new_object(), *sites = json_object_new_array();
		struct json_object *loops = json_object_new_array(), *loop = json_object_new_object();
		char *plain, *evil;
		struct json_object *clean;

		json_object_object_add(o, "type", json_object_new_string(types[i]));
		json_object_object_add(o, "pid", json_object_new_int(7));
		json_object_object_add(cb, "kind", json_object_new_string("task"));
		json_object_object_add(cb, "task_name", json_object_new_string(EVIL));
		json_object_object_add(cb, "qualname", json_object_new_string(EVIL "q"));
		json_object_object_add(cb, "file", json_object_new_string("/x/" EVIL ".py"));
		json_object_object_add(o, "callback", cb);
		json_object_object_add(o, "slowest", json_object_get(cb));
		json_object_object_add(o, "site", json_object_get(cb));
		json_object_object_add(fr, "function", json_object_new_string(EVIL "f"));
		json_object_object_add(fr, "file", json_object_new_string(EVIL ".py"));
		json_object_object_add(fr, "line", json_object_new_int(3));
		json_object_array_add(st, fr);
		json_object_object_add(o, "stack", st);
		json_object_object_add(site, "qualname", json_object_new_string(EVIL));
		json_object_object_add(site, "file", json_object_new_string(EVIL));
		json_object_object_add(site, "target", json_object_new_string(EVIL));
		json_object_object_add(site, "syscall", json_object_new_string(EVIL));
		json_object_array_add(sites, site);
		json_object_object_add(o, "sites", sites);
		json_object_object_add(o, "blocking_sites", json_object_get(sites));
		json_object_object_add(loop, "comm", json_object_new_string(EVIL));
		json_object_array_add(loops, loop);
		json_object_object_add(o, "loops", loops);
		json_object_object_add(o, "comm", json_object_new_string(EVIL));
		json_object_object_add(o, "target", json_object_new_string(EVIL));
		json_object_object_add(o, "target_name", json_object_new_string(EVIL));
		json_object_object_add(o, "qualname", json_object_new_string(EVIL));
		json_object_object_add(o, "task_name", json_object_new_string(EVIL));
		json_object_object_add(o, "file", json_object_new_string(EVIL));
		json_object_object_add(o, "exception", json_object_new_string("E: " EVIL));
		json_object_object_add(o, "reason", json_object_new_string(EVIL));
		json_object_object_add(o, "runtime", json_object_new_string(EVIL));
		json_object_object_add(o, "phase", json_object_new_string(EVIL));
		json_object_object_add(o, "syscall", json_object_new_string(EVIL));
		json_object_object_add(o, "count", json_object_new_int(2));

		evil = render(o);
		assert_non_null(evil);
		assert_inert(evil, 1);
		assert_non_null(strstr(evil, "\\x1b[31mEVIL"));	/* shown, escaped */
		/* as many lines as the same record with harmless names: nothing forged */
		clean = json_tokener_parse(lw_j_line(o));
		{
			char *txt = strdup(lw_j_line(clean));
			char *p;

			while ((p = strstr(txt, "\\u001b")))
				memcpy(p, "ABCDEF", 6);
			while ((p = strstr(txt, "\\n")))
				memcpy(p, "NN", 2);
			while ((p = strstr(txt, "\\r")))
				memcpy(p, "RR", 2);
			while ((p = strstr(txt, "\\u0007")))
				memcpy(p, "BELBEL", 6);
			json_object_put(clean);
			clean = json_tokener_parse(txt);
			free(txt);
		}
		assert_non_null(clean);
		plain = render(clean);
		assert_int_equal(count_lines(evil), count_lines(plain));
		free(plain);
		free(evil);
		json_object_put(clean);
		/* the record itself is left as it was (the JSON Lines sink escapes as JSON) */
		assert_string_equal(lw_j_get_str(o, "comm"), EVIL);
		json_object_put(o);
	}
}

static void test_callback_repr(void **state)
{
	struct json_object *cb = json_object_new_object();
	char buf[400];

	(void)state;
	json_object_object_add(cb, "kind", json_object_new_string("task"));
	json_object_object_add(cb, "task_name", json_object_new_string(EVIL));
	json_object_object_add(cb, "qualname", json_object_new_string("f"));
	lw_render_callback(cb, buf, sizeof(buf));
	assert_inert(buf, 0);
	assert_string_equal(buf, "<Task name='\\x1b[31mEVIL\"\\x0a{\\x1b]0;pwned\\x07\\x0d' "
				 "coro=<f() defined at ?>>");
	json_object_put(cb);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_escape),
		cmocka_unit_test(test_render_hostile),
		cmocka_unit_test(test_callback_repr),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
