/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* A small hash map from uint64_t keys to fixed-size values (heap blocks: pointers are stable). */
#ifndef LW_U64MAP_H
#define LW_U64MAP_H

#include <stddef.h>
#include <stdint.h>

struct lw_u64map;

int lw_u64map__new(size_t value_size, struct lw_u64map **out);
/* free_value (may be NULL) is called on each value before it is freed */
void lw_u64map__free(struct lw_u64map *m, void (*free_value)(void *));
void *lw_u64map__get(const struct lw_u64map *m, uint64_t key);
/* Existing value, or a new zeroed one (*created = 1). NULL on allocation failure. */
void *lw_u64map__put(struct lw_u64map *m, uint64_t key, int *created);
int lw_u64map__del(struct lw_u64map *m, uint64_t key, void (*free_value)(void *));
size_t lw_u64map__count(const struct lw_u64map *m);
/* Iterate: start with *it = 0; returns the next value (and its key) or NULL at the end.
 * Do not insert while iterating; deleting the current key is allowed. */
void *lw_u64map__next(const struct lw_u64map *m, size_t *it, uint64_t *key);

/* FNV-1a of a string, for string-keyed maps */
uint64_t lw_hash_str(const char *s);

#endif
