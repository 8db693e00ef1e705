// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "record/rectype.h"

#include <stddef.h>
#include <string.h>

static const char *const NAMES[LW_RK__COUNT] = {
#define LW_RK_NAME_(name, str) [LW_RK_##name] = str,
	LW_REC_KINDS(LW_RK_NAME_)
#undef LW_RK_NAME_
};

enum lw_rec_kind lw_rec_kind_of(const char *type)
{
	int k;

	if (!type)
		return LW_RK_UNKNOWN;
	for (k = LW_RK_UNKNOWN + 1; k < LW_RK__COUNT; k++)
		if (strcmp(type, NAMES[k]) == 0)
			return (enum lw_rec_kind)k;
	return LW_RK_UNKNOWN;
}

const char *lw_rec_kind_name(enum lw_rec_kind kind)
{
	return kind > LW_RK_UNKNOWN && kind < LW_RK__COUNT ? NAMES[kind] : NULL;
}
