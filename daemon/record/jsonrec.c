// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "record/jsonrec.h"
#include "base/lw_util.h"
#include "base/textesc.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

struct json_object *lw_j_record(const char *type, pid_t pid, uint64_t real_ns)
{
	struct json_object *o = json_object_new_object();
	char ts[40];

	json_object_object_add(o, "type", json_object_new_string(type));
	json_object_object_add(o, "v", json_object_new_int(LW_SCHEMA_VERSION));
	json_object_object_add(o, "ts", json_object_new_string(lw_fmt_rfc3339(real_ns, ts, sizeof(ts))));
	json_object_object_add(o, "pid", json_object_new_int64(pid));
	return o;
}

struct json_object *lw_j_num(double v, int decimals)
{
	char buf[64];

	if (!isfinite(v))
		return NULL;
	snprintf(buf, sizeof(buf), "%.*f", decimals, v);
	return json_object_new_double_s(v, buf);
}

struct json_object *lw_j_ms(uint64_t ns)
{
	return lw_j_num((double)ns / 1e6, 3);
}

struct json_object *lw_j_str_or_null(const char *s)
{
	return s && *s ? json_object_new_string(s) : NULL;
}

const char *lw_j_line(struct json_object *o)
{
	return json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
						 JSON_C_TO_STRING_NOSLASHESCAPE);
}

struct json_object *lw_j_get(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	if (!o || !json_object_is_type(o, json_type_object))
		return NULL;
	if (!json_object_object_get_ex(o, key, &v))
		return NULL;
	return v;
}

const char *lw_j_get_str(struct json_object *o, const char *key)
{
	struct json_object *v = lw_j_get(o, key);

	return v && json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

double lw_j_get_num(struct json_object *o, const char *key, double dflt)
{
	struct json_object *v = lw_j_get(o, key);

	if (!v || !(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
		return dflt;
	return json_object_get_double(v);
}

int64_t lw_j_get_int(struct json_object *o, const char *key, int64_t dflt)
{
	struct json_object *v = lw_j_get(o, key);

	if (!v || !(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
		return dflt;
	return json_object_get_int64(v);
}

int lw_j_get_bool(struct json_object *o, const char *key)
{
	struct json_object *v = lw_j_get(o, key);

	return v && json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
}

static int tree_needs_esc(struct json_object *o, int depth)
{
	if (depth > 64)
		return 1;
	switch (json_object_get_type(o)) {
	case json_type_string:
		return lw_esc_needed(json_object_get_string(o));
	case json_type_array: {
		size_t i, n = json_object_array_length(o);

		for (i = 0; i < n; i++)
			if (tree_needs_esc(json_object_array_get_idx(o, i), depth + 1))
				return 1;
		return 0;
	}
	case json_type_object: {
		json_object_object_foreach(o, k, v) {
			if (lw_esc_needed(k) || tree_needs_esc(v, depth + 1))
				return 1;
		}
		return 0;
	}
	default:
		return 0;
	}
}

static struct json_object *tree_esc(struct json_object *o, int depth)
{
	struct json_object *c;

	if (depth > 64)
		return NULL;	/* deeper than any record: dropped from the text */
	switch (json_object_get_type(o)) {
	case json_type_string: {
		char *e = lw_esc_dup(json_object_get_string(o));

		c = json_object_new_string(e ? e : "?");
		free(e);
		return c;
	}
	case json_type_array: {
		size_t i, n = json_object_array_length(o);

		c = json_object_new_array_ext((int)n);
		for (i = 0; i < n; i++)
			json_object_array_add(c, tree_esc(json_object_array_get_idx(o, i), depth + 1));
		return c;
	}
	case json_type_object: {
		c = json_object_new_object();
		json_object_object_foreach(o, k, v) {
			char *ek = lw_esc_dup(k);

			if (ek)
				json_object_object_add(c, ek, tree_esc(v, depth + 1));
			free(ek);
		}
		return c;
	}
	default:
		return json_object_get(o);
	}
}

struct json_object *lw_j_escaped(struct json_object *o)
{
	if (!o || !tree_needs_esc(o, 0))
		return json_object_get(o);
	return tree_esc(o, 0);
}
