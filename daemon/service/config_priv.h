// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/* config_priv.h — the value parsers of config_values.c, used by config.c's key table.
 * Each parses one value into *dst; 0, or -1 with the reason in why. Not for other rooms. */
#ifndef LW_CONFIG_PRIV_H
#define LW_CONFIG_PRIV_H

#include "service/config.h"

#include <stddef.h>
#include <sys/types.h>

typedef int (*parse_fn)(const char *v, void *dst, char *why, size_t whylen);

int lw_cfg_p_duration(const char *v, void *dst, char *why, size_t whylen);
int lw_cfg_p_interval(const char *v, void *dst, char *why, size_t whylen);
int lw_cfg_p_size(const char *v, void *dst, char *why, size_t whylen);
int lw_cfg_p_keep(const char *v, void *dst, char *why, size_t whylen);
int lw_cfg_p_top_sites(const char *v, void *dst, char *why, size_t whylen);
int lw_cfg_p_formats(const char *v, void *dst, char *why, size_t whylen);
int lw_cfg_p_rate(const char *v, void *dst, char *why, size_t whylen);
int lw_cfg_p_site_thresholds(const char *v, void *dst, char *why, size_t whylen);
int lw_cfg_p_mode(const char *v, void *dst, char *why, size_t whylen);
int lw_cfg_p_no_bool(const char *v, void *dst, char *why, size_t whylen);
int lw_cfg_p_yes_bool(const char *v, void *dst, char *why, size_t whylen);
int lw_cfg_p_log_level(const char *v, void *dst, char *why, size_t whylen);
int lw_cfg_p_iterations(const char *v, void *dst, char *why, size_t whylen);
int lw_cfg_set_str(const char *v, void *dst);
int lw_cfg_p_abs_path(const char *v, void *dst, char *why, size_t whylen);
int lw_cfg_p_socket(const char *v, void *dst, char *why, size_t whylen);
int lw_cfg_p_text(const char *v, void *dst, char *why, size_t whylen);
int lw_cfg_p_comm(const char *v, void *dst, char *why, size_t whylen);
int lw_cfg_p_unit(const char *v, void *dst, char *why, size_t whylen);
int lw_cfg_p_cgroup(const char *v, void *dst, char *why, size_t whylen);
int lw_cfg_resolve_user(const char *v, uid_t *uid);
int lw_cfg_resolve_group(const char *v, gid_t *gid);
int lw_cfg_p_user(const char *v, void *dst, char *why, size_t whylen);
int lw_cfg_p_group(const char *v, void *dst, char *why, size_t whylen);
int lw_cfg_p_unit_scope(const char *v, void *dst, char *why, size_t whylen);

#endif
