// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
/*
 * A process that looks like a CPython build loopwatch must refuse: it defines the symbols
 * loopwatch looks for (_PyRuntime, Py_Version, PyCode_Type, ...) with values chosen at build time:
 *
 *   -DFAKE_VERSION=0x030e00f0     Py_Version (default 3.11.2 final)
 *   -DFAKE_DEBUG                  also define _Py_RefTotal, as debug builds do
 *   -DFAKE_CODE_SIZE=N            PyCode_Type.tp_basicsize (default 184: a 3.11 release build)
 *
 * It prints "ready <pid>" and sleeps until killed. Copy the binary to a name like python3.13t to
 * look free-threaded.
 */
#include <stdint.h>
#include <stdio.h>
#include <unistd.h>

#ifndef FAKE_VERSION
#define FAKE_VERSION 0x030b02f0
#endif
#ifndef FAKE_CODE_SIZE
#define FAKE_CODE_SIZE 184
#endif

__attribute__((used)) const uint32_t Py_Version = FAKE_VERSION;
__attribute__((used)) char _PyRuntime[4096] = "xdebugpy";
/* a type object: tp_name @24, tp_basicsize @32, tp_members @240 (none) */
__attribute__((used)) int64_t PyCode_Type[64] = { [4] = FAKE_CODE_SIZE };
__attribute__((used)) int64_t PyContext_Type[64];
__attribute__((used)) int64_t PyFunction_Type[64];
__attribute__((used)) int64_t PyMethod_Type[64];
#ifdef FAKE_DEBUG
__attribute__((used)) int64_t _Py_RefTotal;
#endif

int main(void)
{
	printf("ready %d\n", (int)getpid());
	fflush(stdout);
	for (;;)
		pause();
	return 0;
}
