/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Building JSON records (json-c): the common fields and number formatting. */
#ifndef LW_JSONREC_H
#define LW_JSONREC_H

#include <stdint.h>
#include <sys/types.h>
#include <json-c/json.h>

#define LW_SCHEMA_VERSION 1

/* {"type": type, "v": 1, "ts": RFC 3339 of real_ns, "pid": pid} */
struct json_object *lw_j_record(const char *type, pid_t pid, uint64_t real_ns);
/* a number printed with `decimals` digits after the point */
struct json_object *lw_j_num(double v, int decimals);
/* nanoseconds as milliseconds, 3 decimals */
struct json_object *lw_j_ms(uint64_t ns);
/* string or JSON null when s is NULL or empty */
struct json_object *lw_j_str_or_null(const char *s);
/* one line of compact JSON (no trailing newline); valid until the object changes */
const char *lw_j_line(struct json_object *o);

/* getters that tolerate missing keys */
const char *lw_j_get_str(struct json_object *o, const char *key);
double lw_j_get_num(struct json_object *o, const char *key, double dflt);
int64_t lw_j_get_int(struct json_object *o, const char *key, int64_t dflt);
int lw_j_get_bool(struct json_object *o, const char *key);
struct json_object *lw_j_get(struct json_object *o, const char *key);

/* For text output: a new reference to o when no string in it (values or keys, at any depth)
 * needs escaping, otherwise a copy with every string escaped by lw_esc (base/textesc.h).
 * The caller puts it. */
struct json_object *lw_j_escaped(struct json_object *o);

#endif
