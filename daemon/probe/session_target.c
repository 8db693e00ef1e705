// SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
#include "probe/session_priv.h"

/* the runtime as records name it: "cpython", "node", "libuv", "generic" */
const char *lw_runtime_name(enum lw_runtime rt)
{
	switch (rt) {
	case LW_RT_PYTHON:
		return "cpython";
	case LW_RT_NODE:
		return "node";
	case LW_RT_LIBUV:
		return "libuv";
	default:
		return "generic";
	}
}

/*
 * Node.js: can its JS functions be named (V8's perf map, interpreted frames on the native
 * stack), and given the line of the work (V8's jitdump)? "js_names": "yes", "partly" (a perf
 * map, but functions still run by the interpreter show as its trampoline: the handlers that
 * ran once or twice; or names from the jitdump alone, which V8 writes 2 MB late), "no";
 * "js_lines": "yes" (the jitdump is mapped: compiled functions' lines of the work), "no" (a JS
 * frame's line is its function's first); what is missing for each (js_names_fix,
 * js_lines_fix: null when nothing is) and the flags that give both.
 */
#define NODE_FLAGS_NAMES "--perf-basic-prof --interpreted-frames-native-stack"
#define NODE_FLAGS_ALL NODE_FLAGS_NAMES " --perf-prof"
#define NODE_RESTART "node " NODE_FLAGS_ALL " app.js, or NODE_OPTIONS='" NODE_FLAGS_ALL "'"

void lw_sess_describe_node(struct json_object *d, const char *root, pid_t pid)
{
	struct lw_node_js nj;
	char buf[1024];
	const char *names, *lines;
	const char *nfix = NULL, *lfix = NULL;
	int nspid;

	lw_node_js_probe(root, pid, &nj);
	nspid = (int)lw_ns_pid(root, pid);
	if (nj.perf_map && nj.interpreted_frames)
		names = "yes";
	else if (nj.perf_map || nj.perf_basic_prof || nj.jitdump)
		names = "partly";
	else
		names = "no";
	if (nj.perf_basic_prof && !nj.perf_map) {
		nfix = "the flags are set but no perf map is readable (/tmp/perf-PID.map missing, "
		       "not a regular file, or in another /tmp): check the target's /tmp";
	} else if (!nj.perf_map && !nj.interpreted_frames) {
		nfix = nj.jitdump ?
		       "restart node with --perf-basic-prof and --interpreted-frames-native-stack "
		       "added (names now come from the jitdump only, which V8 writes 2 MB late, and "
		       "functions the interpreter runs are unnamed): " NODE_RESTART :
		       "restart node with --perf-basic-prof and --interpreted-frames-native-stack "
		       "(V8 then writes /tmp/perf-PID.map, which names JS functions, interpreted ones "
		       "included): " NODE_RESTART;
	} else if (!nj.perf_map) {
		nfix = "restart node with --perf-basic-prof added (V8 then writes /tmp/perf-PID.map, "
		       "which names JS functions as they are made): " NODE_RESTART;
	} else if (!nj.interpreted_frames) {
		nfix = "restart node with --interpreted-frames-native-stack added (functions the "
		       "interpreter runs are otherwise unnamed): " NODE_RESTART;
	}
	if (nj.jitdump) {
		lines = "yes";
	} else {
		lines = "no";
		lfix = nj.perf_prof ?
		       "--perf-prof is set but no jitdump is mapped (V8 creates jit-PID.dump in "
		       "node's working directory when it starts, and goes on without it where that "
		       "directory is not writable): start node in a writable directory" :
		       "restart node with --perf-prof added (V8 then writes its jitdump, jit-PID.dump in "
		       "node's working directory, with the line of each instruction of the code it "
		       "compiles; without it a compiled function's frame shows its first line): " NODE_RESTART;
	}
	json_object_object_add(d, "js_names", json_object_new_string(names));
	json_object_object_add(d, "js_lines", json_object_new_string(lines));
	json_object_object_add(d, "node_flags", json_object_new_string(nj.flags_seen[0] ?
								     nj.flags_seen : "none"));
	json_object_object_add(d, "node_flags_advised", json_object_new_string(NODE_FLAGS_ALL));
	if (nj.perf_map)
		snprintf(buf, sizeof(buf), "/tmp/perf-%d.map (%lld bytes)", nspid, nj.perf_map_bytes);
	else
		snprintf(buf, sizeof(buf), "none");
	json_object_object_add(d, "perf_map", json_object_new_string(buf));
	if (nj.jitdump && nj.jitdump_bytes >= 0)
		snprintf(buf, sizeof(buf), "%s (%lld bytes)", nj.jitdump_path, nj.jitdump_bytes);
	else if (nj.jitdump)
		snprintf(buf, sizeof(buf), "%s (unreadable)", nj.jitdump_path);
	else
		snprintf(buf, sizeof(buf), "none");
	json_object_object_add(d, "jitdump", json_object_new_string(buf));
	json_object_object_add(d, "js_names_fix", lw_j_str_or_null(nfix));
	json_object_object_add(d, "js_lines_fix", lw_j_str_or_null(lfix));
	/* the line of functions V8 still interprets, from their interpreter frames (needs the
	 * stack copies of native stacks, and V8's postmortem metadata in node or libnode.so) */
	if (lw_node_v8frames(root, pid, buf, sizeof(buf))) {
		json_object_object_add(d, "js_interpreted_lines", json_object_new_string("yes"));
		json_object_object_add(d, "js_interpreted_lines_why", NULL);
	} else {
		json_object_object_add(d, "js_interpreted_lines", json_object_new_string("no"));
		json_object_object_add(d, "js_interpreted_lines_why", json_object_new_string(buf));
	}
}

struct json_object *lw_sess_describe(const struct lw_session_opts *o, pid_t pid, const char *comm,
				     int is_python, enum lw_runtime rt, const struct lw_pyinfo *py,
				     const char *why)
{
	struct json_object *d = json_object_new_object();
	char buf[256];

	json_object_object_add(d, "pid", json_object_new_int(pid));
	/* the same process as it knows itself (a container's pid namespace; = pid otherwise) */
	json_object_object_add(d, "pid_in_namespace",
			       json_object_new_int(lw_ns_pid(o->proc_root ? o->proc_root : "/proc",
							     pid)));
	json_object_object_add(d, "comm", lw_j_str_or_null(comm));
	json_object_object_add(d, "runtime", json_object_new_string(lw_runtime_name(rt)));
	json_object_object_add(d, "runtime_why", lw_j_str_or_null(why));
	if (is_python) {
		json_object_object_add(d, "runtime_version", json_object_new_string(py->version));
		json_object_object_add(d, "executable", json_object_new_string(py->exe));
		json_object_object_add(d, "interpreter_elf", json_object_new_string(py->elf));
		json_object_object_add(d, "stripped", json_object_new_boolean(!py->has_symtab));
		snprintf(buf, sizeof(buf), "0x%llx", (unsigned long long)py->runtime);
		json_object_object_add(d, "pyruntime", json_object_new_string(buf));
		if (py->ctxrun_addr) {
			snprintf(buf, sizeof(buf), "0x%llx (file offset 0x%llx)",
				 (unsigned long long)py->ctxrun_addr, (unsigned long long)py->ctxrun_off);
			json_object_object_add(d, "context_run", json_object_new_string(buf));
			json_object_object_add(d, "context_run_how", json_object_new_string(py->ctxrun_how));
		} else {
			json_object_object_add(d, "context_run", NULL);
			json_object_object_add(d, "context_run_how",
					       json_object_new_string("not found: precise mode unavailable"));
		}
		json_object_object_add(d, "thread_state_lookup",
				       json_object_new_string(py->tsd_base ?
						"pthread TSS slot (verified) + userspace tid map" :
						py->tls_off ?
						"thread-local (verified) + userspace tid map" :
						"userspace tid map"));
		json_object_object_add(d, "gil", py->gil ? json_object_new_string("found") :
							   json_object_new_string("not found: GIL waits count as blocked"));
		json_object_object_add(d, "checks", json_object_new_string(py->checks));
		{
			struct lw_uvloop uv;
			struct lw_memread *m = NULL;

			if (lw_memread__open(pid, &m) == 0) {
				struct lw_reader rd = lw_memread__reader(m);

				lw_uvloop_find(py, &rd, o->proc_root ? o->proc_root : "/proc", &uv);
				json_object_object_add(d, "event_loop", json_object_new_string(
							uv.loaded ? "uvloop" : "asyncio"));
				if (uv.loaded)
					json_object_object_add(d, "uvloop", json_object_new_string(uv.how));
				lw_memread__close(m);
			}
		}
		{
			struct lw_pyhook_plan *plan = calloc(1, sizeof(*plan));

			if (plan) {
				lw_pyhooks_plan(py, o->proc_root ? o->proc_root : "/proc", plan);
				json_object_object_add(d, "hooks", lw_pyhooks_plan_json(plan));
				free(plan);
			}
		}
	}
	if (rt == LW_RT_NODE)
		lw_sess_describe_node(d, o->proc_root ? o->proc_root : "/proc", pid);
	json_object_object_add(d, "mode", json_object_new_string(o->precise ? "precise" : "default"));
	return d;
}

#define PF_KTHREAD 0x00200000

/* Zombies and kernel threads have no memory to read: say so instead of "not Python". */
static int proc_sanity(const char *root, pid_t pid, char *err, size_t errlen)
{
	char path[128], *text = NULL, state = 0;
	unsigned long flags = 0;
	int r = 0;

	snprintf(path, sizeof(path), "%s/%d/stat", root, (int)pid);
	if (lw_read_file(path, 4096, &text, NULL)) {
		snprintf(err, errlen, "no process with pid %d", (int)pid);
		return -ESRCH;
	}
	if (lw_parse_proc_stat(text, &state, &flags) == 0) {
		if (state == 'Z' || state == 'X') {
			snprintf(err, errlen,
				 "pid %d is a zombie (it exited and its parent has not reaped it yet): "
				 "there is nothing left to trace",
				 (int)pid);
			r = -ESRCH;
		} else if (flags & PF_KTHREAD) {
			snprintf(err, errlen,
				 "pid %d is a kernel thread: loopwatch traces user processes (asyncio, "
				 "Node.js, event loops); pick the pid of one with pgrep",
				 (int)pid);
			r = -EINVAL;
		}
	}
	free(text);
	return r;
}

/*
 * Not CPython: Node.js (its binary, or a libnode it maps), a libuv program (a mapped libuv or
 * uv_run in the executable), or any poll loop. Says why in `why`.
 */
static void native_runtime(const char *root, pid_t pid, enum lw_runtime *rt, char *why,
			   size_t whylen)
{
	char exe[4096], host[4300];
	struct lw_maps *maps = NULL;
	const struct lw_map *m;
	struct lw_elf *e = NULL;
	uint64_t v;
	int fd, has_uv = 0, has_uv_internal = 0;

	*rt = LW_RT_GENERIC;
	snprintf(why, whylen, "not CPython, Node.js or libuv: generic poll-loop tracking");
	if (lw_maps__load(root, pid, &maps))
		return;
	m = lw_maps__find_lib(maps, "libnode.so");
	if (m) {
		*rt = LW_RT_NODE;
		snprintf(why, whylen, "maps %s (Node.js)", m->path);
	}
	if (lw_maps__find_lib(maps, "libuv.so"))
		has_uv = 1;
	/* the executable as mapped (a chroot's, or one replaced on disk since it started) */
	m = lw_maps__exe(maps, root, pid, exe, sizeof(exe));
	fd = m ? lw_maps__open_mapped(root, pid, m, host, sizeof(host)) : -ENOENT;
	lw_maps__free(maps);
	if (fd >= 0 && lw_elf__open_fd(fd, exe, &e) == 0) {
		if (lw_elf__find_symbol(e, "napi_module_register", &v, NULL) == 0 && *rt != LW_RT_NODE) {
			*rt = LW_RT_NODE;
			snprintf(why, whylen, "%s exports the Node-API (Node.js)", exe);
		}
		if (lw_elf__find_symbol(e, "uv_run", &v, NULL) == 0)
			has_uv = 1;
		if (lw_elf__find_symbol(e, "uv__run_timers", &v, NULL) == 0)
			has_uv_internal = 1;
		lw_elf__close(e);
	}
	if (*rt == LW_RT_NODE) {
		size_t l = strlen(why);

		snprintf(why + l, whylen - l, "%s",
			 has_uv_internal ? "; libuv phases from its symbols (uv__run_timers ...)" :
					   "; libuv is shared or stripped: no phase names");
		return;
	}
	if (has_uv) {
		*rt = LW_RT_LIBUV;
		snprintf(why, whylen, "%s", has_uv_internal ?
			 "a libuv program with libuv's internal symbols: phases named" :
			 "a libuv program; the shared libuv exports only uv_* (no uv__run_*): phases "
			 "cannot be named, generic tier with native stacks");
	}
}

int lw_sess_probe(pid_t pid, const struct lw_session_opts *o, struct lw_memread *mem,
		  struct lw_pyinfo *py, int *is_python, enum lw_runtime *rt, char *why,
		  size_t whylen, char *err, size_t errlen)
{
	struct lw_reader rd = lw_memread__reader(mem);
	const char *root = o->proc_root ? o->proc_root : "/proc";
	char path[128];
	int r;

	*is_python = 0;
	snprintf(path, sizeof(path), "%s/%d", root, (int)pid);
	if (access(path, F_OK)) {
		snprintf(err, errlen, "no process with pid %d", (int)pid);
		return -ESRCH;
	}
	r = proc_sanity(root, pid, err, errlen);
	if (r)
		return r;
	*rt = LW_RT_GENERIC;
	if (o->runtime == LW_RT_NODE || o->runtime == LW_RT_LIBUV) {
		if (o->precise) {
			snprintf(err, errlen,
				 "--precise is for CPython (context_run/uvloop probes); for %s the default "
				 "mode gives iterations, libuv phases, blocking calls and JS names",
				 o->runtime == LW_RT_NODE ? "Node.js" : "libuv");
			return -ENOTSUP;
		}
		native_runtime(root, pid, rt, why, whylen);
		if (*rt != o->runtime && !(o->runtime == LW_RT_LIBUV && *rt == LW_RT_NODE)) {
			snprintf(err, errlen, "--runtime %s: pid %d does not look like it (%s); use "
				 "--runtime auto or generic",
				 o->runtime == LW_RT_NODE ? "node" : "libuv", (int)pid, why);
			return -ENOEXEC;
		}
		*rt = o->runtime;
		return 0;
	}
	if (o->runtime == LW_RT_GENERIC) {
		snprintf(why, whylen, "forced by --runtime generic");
		return 0;
	}
	r = lw_py__probe(root, pid, &rd, py, err, errlen);
	if (r == 0) {
		*is_python = 1;
		*rt = LW_RT_PYTHON;
		snprintf(why, whylen, "%s defines _PyRuntime (CPython %s)", py->elf, py->version);
		if (o->precise && !py->ctxrun_addr) {
			snprintf(err, errlen,
				 "context_run not found in %s: no .symtab and the PyContext_Type lookup "
				 "failed; precise mode is unavailable here, drop --precise to use the "
				 "default mode",
				 py->elf);
			return -ENOENT;
		}
		return 0;
	}
	if (r == -ENOEXEC && o->runtime == LW_RT_AUTO) {
		/* not Python: Node, libuv or any poll loop */
		native_runtime(root, pid, rt, why, whylen);
		err[0] = 0;
		if (o->precise) {
			snprintf(err, errlen,
				 "--precise needs a CPython process; pid %d is not one (no _PyRuntime); "
				 "drop --precise to watch its loop in the default mode",
				 (int)pid);
			return -ENOTSUP;
		}
		return 0;
	}
	return r;
}

int lw_session__probe(pid_t pid, const struct lw_session_opts *o, struct json_object **out,
		      char *err, size_t errlen)
{
	struct lw_memread *mem = NULL;
	struct lw_pyinfo *py = calloc(1, sizeof(*py));
	char why[4608] = "", comm[16];
	enum lw_runtime rt = LW_RT_GENERIC;
	int is_python, r;

	if (!py)
		return -ENOMEM;
	r = lw_memread__open(pid, &mem);
	if (r)
		goto out;
	r = lw_sess_probe(pid, o, mem, py, &is_python, &rt, why, sizeof(why), err, errlen);
	if (r)
		goto out;
	lw_sess_read_comm(o->proc_root ? o->proc_root : "/proc", pid, 0, comm, sizeof(comm));
	*out = lw_sess_describe(o, pid, comm, is_python, rt, py, why);
out:
	lw_memread__close(mem);
	free(py);
	return r;
}
