/* SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause) */
/* Native return addresses of a target -> symbol, module, offset (ELF symbols, cached). */
#ifndef LW_NATIVESYM_H
#define LW_NATIVESYM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct lw_nativesym;

struct lw_native_frame {
	const char *symbol;	/* NULL when unknown */
	const char *module;	/* basename of the mapped file, NULL when unmapped */
	uint64_t offset;	/* into the symbol, or into the file when no symbol */
};

int lw_nativesym__new(const char *proc_root, pid_t pid, struct lw_nativesym **out);
void lw_nativesym__free(struct lw_nativesym *s);
/* Resolve addr (symbols from the ELF itself or from its separate debug file: build-id or
 * .gnu_debuglink). The strings stay valid until the next call. 0 or -ENOENT. */
int lw_nativesym__resolve(struct lw_nativesym *s, uint64_t addr, struct lw_native_frame *out);

/* The process writes a perf map (/tmp/perf-PID.map: V8's --perf-basic-prof) with entries. */
int lw_nativesym__has_perf_map(struct lw_nativesym *s);

/* Before resolving a stack just captured: read the perf map again if it grew (at most every
 * 5 ms). A JIT reuses the memory of code it dropped: an address found in a map read before the
 * new code's line was written names the old code. */
void lw_nativesym__sync(struct lw_nativesym *s);

/* The source line of a JS instruction from V8's jitdump (node --perf-prof writes jit-PID.dump
 * with each compiled function's line table; interpreted code has none): for a return address
 * pass addr - 1; first: the function's first line (a line before it is code inlined from
 * another function: the function's own line before that is given). V8 writes the file through
 * a 2 MB stdio buffer: code compiled since the last write is read from that buffer in the
 * target's memory (heap; NULL: the file only). The line, or 0 when unknown (code not compiled).
 * Known limit: code inlined from a function defined further down the file is not told apart
 * (V8 names the outer function's file for it). */
struct lw_reader;
int lw_nativesym__jit_line(struct lw_nativesym *s, const struct lw_reader *heap, uint64_t addr,
			   int first);

/*
 * The line being run by a JS function V8 interprets (a perf-map name "JS:~..." without a line
 * in the jitdump: Ignition's code has none), read from its interpreter frame (target/v8frame.c)
 * with V8's postmortem metadata from the node executable or libnode.so (read once). ret: the
 * frame's return address into its trampoline copy; stack: len bytes of the thread's stack
 * copied from base; heap: the target's memory; *cursor: 0 for a stack's innermost frame asked,
 * then left as it was (frames asked innermost first). The line, or 0 when unknown.
 */
struct lw_reader;
int lw_nativesym__interp_line(struct lw_nativesym *s, const struct lw_reader *heap,
			      const void *stack, uint64_t base, size_t len, uint64_t ret,
			      uint64_t *cursor);
/* Can interpreted frames of process pid be given their line (V8's metadata found and of a
 * layout read here)? 1, or 0 with why set */
int lw_node_v8frames(const char *proc_root, pid_t pid, char *why, size_t whylen);

/*
 * Can a Node.js process's JS frames be named, and given the line of the work? Its V8 flags
 * (command line and NODE_OPTIONS), its perf map (/tmp/perf-PID.map, opened as a regular file
 * only, never through a link) and its jitdump (jit-PID.dump, found by its mapping).
 */
struct lw_node_js {
	int perf_basic_prof;		/* --perf-basic-prof(-only-functions) seen */
	int interpreted_frames;		/* --interpreted-frames-native-stack seen */
	int perf_prof;			/* --perf-prof seen */
	int perf_map;			/* the map exists and is a regular file */
	long long perf_map_bytes;
	int jitdump;			/* jit-PID.dump is mapped */
	long long jitdump_bytes;	/* its size; -1 unreadable */
	char jitdump_path[256];		/* as the target sees it */
	char flags_seen[256];		/* the flags as seen, "" when none */
};
void lw_node_js_probe(const char *proc_root, pid_t pid, struct lw_node_js *out);

/* Replace the JIT symbols with those of a perf map's text ("START SIZE name" per line, hex;
 * bad lines skipped; text is modified). Returns the number of entries. */
int lw_nativesym__load_perf_map(struct lw_nativesym *s, char *text);
/* The perf map's budget: entries kept (0: the default, 131,072); past it the least recently
 * used (written or found) are evicted. */
void lw_nativesym__set_perf_map_budget(struct lw_nativesym *s, size_t entries);
/* ... and the bytes of their names (0: the default, 16 MiB) */
void lw_nativesym__set_perf_map_name_budget(struct lw_nativesym *s, size_t bytes);
struct lw_perfmap_stats {
	uint64_t entries;	/* kept now */
	uint64_t evicted;	/* entries dropped for the budget */
	uint64_t skipped;	/* lines over 1 KiB */
	uint64_t bytes_read;	/* of the file, in all */
	uint64_t replaced;	/* entries dropped for a later line that overlaps them */
};
void lw_nativesym__perf_map_stats(const struct lw_nativesym *s, struct lw_perfmap_stats *out);
/* addr in the JIT symbols loaded last (of lines that overlap, only the one written last is kept).
 * 0 or -ENOENT. */
int lw_nativesym__jit_lookup(const struct lw_nativesym *s, uint64_t addr,
			     struct lw_native_frame *out);

#endif
