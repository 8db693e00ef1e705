"""Native stacks on binaries built without frame pointers (issue 17), against an oracle:
elfutils' eu-stack on the same thread, blocked at the same point (the target announces it).
The C loops are built -O2 -g -fomit-frame-pointer; libc and libuv are Debian's (no frame
pointers either). loopwatch's blocking-call stack must match eu-stack frame for frame down to
main, with no unnamed frame."""
import json
import os
import re
import shutil
import subprocess
import time
import unittest

from lwtest import (BUILT_TARGETS, DEBIAN_PYTHON, TARGETS, need_root, node_binary, traced)

SLEEP_MS = 1500
ZLIB_MS = 3000
SPIN_MS = 1000  # the C targets' spin on clock_gettime, sampled by eu-stack


def norm(sym):
    """A symbol without its version (clock_nanosleep@@GLIBC_2.17, @GLIBC_2.2.5), a compiler
    clone's suffix (on_timer.constprop.0) nor leading underscores: libc's aliases of one address
    (__nanosleep, nanosleep) name the same frame"""
    if not sym:
        return None
    return sym.split("@")[0].split(".")[0].lstrip("_")


def wait_blocking(t, timeout=20):
    """until the target announced its block (it prints "blocking" as it goes to sleep)"""
    deadline = time.time() + timeout
    while '"blocking"' not in t.stdout() and time.time() < deadline:
        time.sleep(0.01)


def eu_frames(pid, args, frame_re):
    """Runs eu-stack ARGS -p pid (it stops the thread for a moment): frame_re's match of each of
    thread pid's frame lines, innermost first, and the run"""
    r = subprocess.run(["eu-stack"] + args + ["-p", str(pid)], capture_output=True, text=True,
                       timeout=30)
    frames, cur = [], None
    for line in r.stdout.splitlines():
        m = re.match(r"TID (\d+):", line)
        if m:
            cur = int(m.group(1))
            continue
        m = re.match(frame_re, line)
        if m and cur == pid:
            frames.append(m)
    return frames, r


def eu_stack(pid, raw=False):
    """Frames of thread pid: [(pc, name or None)], innermost first (raw: C++ names as the
    symbol tables have them, not demangled)"""
    frames, r = eu_frames(pid, ["-r"] if raw else [],
                          r"#\d+\s+0x([0-9a-f]+)(?:\s+-\s+1)?\s*(\S+)?")
    return [(int(m.group(1), 16), m.group(2)) for m in frames], r


def eu_module(path):
    """eu-stack -m's module as loopwatch names it: the file's basename; the vDSO, which eu-stack
    calls '[vdso: PID]', as its mapping is called, '[vdso]'"""
    return "[vdso]" if path.startswith("[vdso") else os.path.basename(path)


def eu_stack_modules(pid):
    """Thread pid's frames, innermost first, as (name, module) the way the test compares them
    (norm(name), eu_module(module))"""
    # '#3  0x00007fa118919cbe - /usr/lib/.../libuv.so.1.0.0' (a frame with no name)
    frames, _ = eu_frames(pid, ["-m"], r"#\d+\s+0x[0-9a-f]+\s+(?:(\S+)\s+)?-\s+(.+)$")
    return [(norm(m.group(1)), eu_module(m.group(2).strip())) for m in frames]


def delete_stack_copies():
    """Delete every entry of the BPF map ustacks (the user-stack copies), as the LRU's eviction
    would; the number deleted"""
    out = subprocess.run(["bpftool", "-j", "map", "show"], capture_output=True, text=True)
    n = 0
    for m in json.loads(out.stdout or "[]"):
        if m.get("name") != "ustacks":
            continue
        for _ in range(100000):
            r = subprocess.run(["bpftool", "-j", "map", "getnext", "id", str(m["id"])],
                               capture_output=True, text=True)
            key = json.loads(r.stdout or "{}").get("next_key") if r.returncode == 0 else None
            if not key:
                break
            subprocess.run(["bpftool", "map", "delete", "id", str(m["id"]), "key"] + key,
                           check=True, capture_output=True)
            n += 1
    return n


@unittest.skipUnless(shutil.which("eu-stack"), "eu-stack missing (Debian package elfutils)")
class NoFramePointers(unittest.TestCase):
    def setUp(self):
        need_root()

    def run_oracle(self, argv, min_ms=SLEEP_MS / 3, first="clock_nanosleep", lw_args=("-q",),
                   raw=False, same=None):
        """same(loopwatch's frames, eu-stack's names): how to compare (default: the names
        equal, frame for frame, and every frame has its module)"""
        seen = []

        def look(t):
            wait_blocking(t)
            time.sleep(0.2)
            seen.append(eu_stack(t.pid, raw))
        t, lw = traced(argv, list(lw_args), timeout=30, during=look)
        oracle, r = seen[0]
        self.truth = t.truth()
        # the whole stack, _start included; unnamed frames (static functions of stripped
        # binaries) in the same places
        want = [norm(n) for _, n in oracle]
        self.assertEqual(want[-1], "start", r.stdout + r.stderr)
        if first:
            self.assertEqual(want[0], first)
        blk = [b for b in lw.records("blocking_call") if b["duration_ms"] >= min_ms]
        self.assertTrue(blk, lw.records("blocking_call"))
        for b in blk:
            ns = b["native_stack"]
            self.assertNotIn("native_stack_incomplete", b)
            if same:
                same(ns, want, r.stdout)
                continue
            got = [norm(f["symbol"]) for f in ns]
            self.assertEqual(got, want, "loopwatch %s\neu-stack %s" % (ns, r.stdout))
            for f in ns:
                # never a frame without module nor name
                self.assertTrue(f.get("module"), ns)
        return lw, want

    def check_mixed(self, rec, want):
        """The mixed stack: the native frames inner to the innermost eval loop, as eu-stack has
        them, then the Python frames as the target itself saw them when it announced the call
        (qualname, file, line; innermost first)"""
        py_own = [tuple(f) for f in next(x["stack"] for x in self.truth
                                         if x.get("event") == "blocking")]
        mixed = rec["mixed_stack"]
        k = want.index("PyEval_EvalFrameDefault")
        self.assertGreater(k, 0, want)
        nat = [f for f in mixed if f.get("native")]
        self.assertEqual(mixed[:len(nat)], nat, mixed)  # the native frames first
        self.assertEqual([norm(f["symbol"]) for f in nat], want[:k], mixed)
        for f in nat:
            self.assertTrue(f.get("module"), f)
        py = [(f["function"], f["file"], f["line"]) for f in mixed[len(nat):]]
        self.assertEqual(py, py_own[:len(py)], mixed)
        # all of it, <module> included, unless the stack kept only its 64 innermost frames
        self.assertTrue(len(py) == len(py_own) or rec.get("stack_incomplete") == "truncated",
                        (py, py_own))
        self.assertEqual(mixed[len(nat):], rec["stack"])

    def native(self, name):
        return self.run_oracle([os.path.join(BUILT_TARGETS, name), "{GO}", str(SLEEP_MS)])

    def test_epoll_nofp(self):
        lw, want = self.native("epoll_timer_nofp")
        self.assertEqual(want[want.index("on_timer") + 1], "main")
        self.check_cpu_stacks("epoll_timer_nofp", want, "on_timer")

    def test_lost_stack_copy_is_said(self):
        """A blocking call's stack copy that is gone when its record is unwound (evicted from
        the LRU map by later copies; here deleted from outside with bpftool while the C loop,
        built without frame pointers, sleeps in its handler) is marked native_stack_incomplete
        "stack copy lost", not passed off as whole with the frame-pointer walk's frames; the
        second block, whose copy is left alone, unwinds whole."""
        def delete_while_blocked(t):
            wait_blocking(t)
            time.sleep(0.2)
            self.assertGreater(delete_stack_copies(), 0)
        t, lw = traced([os.path.join(BUILT_TARGETS, "epoll_timer_nofp"), "{GO}", str(SLEEP_MS)],
                       ["-q"], timeout=30, during=delete_while_blocked)
        blk = [b for b in lw.records("blocking_call") if b["duration_ms"] >= SLEEP_MS / 3]
        self.assertEqual(len(blk), 2, lw.records("blocking_call"))
        self.assertEqual(blk[0].get("native_stack_incomplete"), "stack copy lost", blk[0])
        self.assertNotIn("native_stack_incomplete", blk[1])
        self.assertEqual(norm(blk[1]["native_stack"][-1]["symbol"]), "start", blk[1])

    def check_cpu_stacks(self, name, want, handler):
        """The target again, its handler now sleeping 10 ms and then spinning SPIN_MS on
        clock_gettime (announced). eu-stack samples the thread again and again while it spins
        (a sample counts when the target printed nothing meanwhile: it was spinning); each slow
        iteration's CPU-sample stack must be one of those samples frame for frame, name and
        module, from the innermost frame down to _start; none is '??' (issue 17).
        The spin's stacks begin in the vDSO's clock_gettime (most of them), in libc's
        clock_gettime or in the handler's own loop. The vDSO has no file: eu-stack names its
        function from the vDSO's own symbol table in the process's memory (__vdso_clock_gettime)
        and so does loopwatch; its module is compared as its mapping is named, '[vdso]'
        (eu-stack writes '[vdso: PID]'). From the handler out, the samples must also be
        eu-stack's stack of the same code blocked in the handler (want). Before the fixes,
        loopwatch gave the vDSO frame no name, and the second iteration's stack, unwound after
        the target had exited, was the frame-pointer walk's clock_gettime -> libuv."""
        samples = []

        def sample_spins(t):
            deadline = time.time() + 20 + 2 * SPIN_MS / 1000
            while '"done"' not in t.stdout() and time.time() < deadline:
                out = t.stdout()
                if out.count('"spinning"') <= out.count('"slow"'):
                    time.sleep(0.005)
                    continue
                frames = eu_stack_modules(t.pid)
                # a sample of the spin alone: the target announced no other step meanwhile
                if t.stdout() == out and handler in [n for n, _ in frames]:
                    samples.append(frames)
                time.sleep(0.02)  # some 30 samples a spin: enough, and less for the CI VM
        t, lw = traced([os.path.join(BUILT_TARGETS, name), "{GO}", "10", str(SPIN_MS)], ["-q"],
                       timeout=30, during=sample_spins)
        self.assertGreaterEqual(len(samples), 6, samples)
        outer = want[want.index(handler):]
        for s in samples:
            names = [n for n, _ in s]
            self.assertEqual(names[names.index(handler):], outer, s)
        ticks = [t for t in lw.records("slow_tick") if t.get("stack_kind") == "cpu"]
        self.assertTrue(ticks, [(t.get("stack_kind"), t.get("busy_ms"))
                                for t in lw.records("slow_tick")])
        for t in ticks:
            ns = t["native_stack"]
            self.assertNotIn("native_stack_incomplete", t)
            got = [(norm(f["symbol"]), f.get("module")) for f in ns]
            self.assertIn(got, samples, "loopwatch %s\neu-stack's %d samples, distinct: %s" %
                          (ns, len(samples), [list(d) for d in {tuple(x) for x in samples}]))
            for f in ns:
                self.assertTrue(f.get("module"), ns)

    def test_libuv_nofp(self):
        lw, want = self.native("uv_timer_nofp")
        self.assertIn("slow_handler", want)
        self.assertIn("uv_run", want)
        self.check_cpu_stacks("uv_timer_nofp", want, "slow_handler")

    def check_text(self, text, want):
        """The text: under the callback's warning, the innermost four native frames (libc's
        sleep first), the rest folded, then the Python frame at the line that blocked"""
        k = want.index("PyEval_EvalFrameDefault")
        fold = r"\s+\.\.\. %d more native frames\n" % (k - 4) if k > 4 else ""
        m = re.search(r"\n\s+native\s+(\S+)\+0x[0-9a-f]+ \(libc\.so\.6\)\n"
                      r"(?:\s+\S+\+0x[0-9a-f]+(?: \(\S+\))?\n){%d}" % (min(k, 4) - 1) + fold +
                      r"\s+blocked at\s+blocker \(asyncio_native\.py:(\d+)\)", text)
        self.assertTrue(m, text)
        self.assertEqual(norm(m.group(1)), "clock_nanosleep")
        own = next(x["stack"] for x in self.truth if x.get("event") == "blocking")
        self.assertEqual(int(m.group(2)), own[0][2])

    @unittest.skipUnless(os.path.exists(DEBIAN_PYTHON), "Debian's python3.11 missing")
    def test_python_sleep(self):
        """time.sleep in an asyncio callback on Debian's python3.11: libc, then the
        interpreter's own frames (named or not) down to Py_BytesMain, as eu-stack has them;
        the mixed stack: libc's sleep and time.sleep's C code under the callback's Python
        frames, in JSON and in the text"""
        lw, want = self.run_oracle([DEBIAN_PYTHON, os.path.join(TARGETS, "asyncio_native.py"),
                                    "{GO}", "sleep", str(SLEEP_MS)], lw_args=())
        self.assertIn("PyEval_EvalFrameDefault", want)
        self.assertIn("Py_BytesMain", want)
        recs = [b for b in lw.records("blocking_call") + lw.records("slow_callback")
                if b["duration_ms"] >= SLEEP_MS / 3 and not b.get("in_progress")]
        self.assertTrue(any(b["type"] == "slow_callback" for b in recs), recs)
        for b in recs:
            self.assertEqual(b["stack"][0]["function"], "blocker")
            self.check_mixed(b, want)
        self.check_text(lw.stdout(), want)

    @unittest.skipUnless(os.path.exists(DEBIAN_PYTHON), "Debian's python3.11 missing")
    def test_python_sqlite(self):
        """A C extension that blocks: sqlite3 waiting for a lock, sleeping in Debian's
        libsqlite3 under _sqlite3 under the interpreter; every blocking call of at least 50 ms
        has eu-stack's stack, and the mixed stack has libsqlite3's and _sqlite3's frames
        under the Python frame that called execute"""
        lw, want = self.run_oracle([DEBIAN_PYTHON, os.path.join(TARGETS, "asyncio_native.py"),
                                    "{GO}", "sqlite", str(SLEEP_MS)], min_ms=50, lw_args=())
        self.assertIn("sqlite3_prepare_v2", want)
        self.assertIn("sqlite3InvokeBusyHandler", want)
        self.assertIn("PyEval_EvalFrameDefault", want)
        for b in lw.records("blocking_call"):
            if b["duration_ms"] >= 50:
                self.check_mixed(b, want)
                nat = [f for f in b["mixed_stack"] if f.get("native")]
                syms = [norm(f["symbol"]) for f in nat]
                self.assertIn("sqlite3_prepare_v2", syms)
                self.assertEqual(syms[0], "clock_nanosleep")
                # _sqlite3's own (static, unnamed) frames are there by module and offset
                self.assertTrue(any(f["module"].startswith("_sqlite3") for f in nat), nat)
        self.check_text(lw.stdout(), want)


    @unittest.skipUnless(os.path.exists(DEBIAN_PYTHON), "Debian's python3.11 missing")
    def test_python_zlib(self):
        """A C extension that burns CPU: zlib.compress (Debian's libz, no frame pointers) in an
        asyncio callback for 3 s. eu-stack samples the thread again and again while it is in
        compress; the CPU-sample stack of the slow callback is one of those samples frame for
        frame down to _start, its mixed stack has libz's frames under the Python frame that
        called compress, and that frame is named"""
        samples = []

        def sample_compress(t):
            start = time.time()
            wait_blocking(t)
            # both callbacks: ~6 s in compress, a sample every few hundred ms
            while '"done"' not in t.stdout() and time.time() < start + 20 + 2 * ZLIB_MS / 1000:
                frames, _ = eu_stack(t.pid)
                names = [norm(n) for _, n in frames]
                if "deflate" in names:
                    samples.append(names)
        t, lw = traced([DEBIAN_PYTHON, os.path.join(TARGETS, "asyncio_native.py"), "{GO}", "zlib",
                        str(ZLIB_MS)], ["-q"], timeout=30, during=sample_compress)
        self.truth = t.truth()
        self.assertGreaterEqual(len(samples), 4, samples)
        for want in samples:
            self.assertEqual(want[-1], "start")
        own = next(x["stack"] for x in self.truth if x.get("event") == "blocking")
        recs = [c for c in lw.records("slow_callback") if not c.get("in_progress")]
        self.assertEqual(len(recs), 2, lw.records("slow_callback"))
        matched = 0
        for c in recs:
            self.assertEqual(c["stack_kind"], "cpu", c)
            self.assertEqual((c["stack"][0]["function"], c["stack"][0]["line"]),
                             (own[0][0], own[0][2]), c["stack"])
            got = [norm(f["symbol"]) for f in c["native_stack"]]
            self.assertNotIn("native_stack_incomplete", c)
            for f in c["native_stack"]:
                self.assertTrue(f.get("module"), c["native_stack"])
            if "deflate" not in got:
                # the sample fell between two calls of compress (Python's own code): the
                # stack is still whole, down to _start
                self.assertEqual(got[-1], "start", got)
                continue
            self.assertIn(got, samples, "loopwatch %s\neu-stack samples %s" % (got, samples))
            self.check_mixed(c, got)
            nat = [f for f in c["mixed_stack"] if f.get("native")]
            self.assertTrue(any(f["module"].startswith("libz.so") for f in nat), nat)
            matched += 1
        self.assertGreaterEqual(matched, 1, recs)


    @unittest.skipUnless(node_binary(), "node missing (Debian package nodejs)")
    def test_node_fifo(self):
        """Node's fs.readFileSync on a FIFO blocks in open until a writer comes: libc's open,
        libuv's uv_fs_open, node's own C++ and V8's builtins as eu-stack has them (C++ names raw,
        as the symbol tables have them); the frames eu-stack cannot name (V8's generated code,
        in no file) are there in the same places, named from V8's perf map where it has them
        (started with --perf-basic-prof --interpreted-frames-native-stack), the blocking
        function readSettings among them, then the rest down to _start"""
        js = []

        def same(ns, want, oracle_text):
            msg = "loopwatch %s\neu-stack %s" % (ns, oracle_text)
            self.assertEqual(len(ns), len(want), msg)
            for f, w in zip(ns, want):
                if w is not None:
                    self.assertEqual(norm(f["symbol"]), w, msg)
                    self.assertTrue(f.get("module"), msg)
                else:
                    # V8's code: a name from the perf map, else its address; never nothing
                    self.assertTrue(f.get("symbol") or f.get("module") or f.get("address"), msg)
                    if f.get("symbol"):
                        js.append(f["symbol"])
        lw, want = self.run_oracle([node_binary(), "--perf-basic-prof",
                                    "--interpreted-frames-native-stack",
                                    os.path.join(TARGETS, "node_fifo.js"), "{GO}", str(SLEEP_MS)],
                                   first=None, raw=True, same=same)
        self.assertIn(want[0], ("open", "open64", "libc_open64", "openat", "openat64"), want)
        self.assertIn("uv_fs_open", want)
        # node's own C++ (node::Start at least: Debian's libnode keeps only its exported
        # symbols, the nodejs.org binary all of them)
        self.assertTrue(any(w and w.startswith("ZN4node") for w in want), want)
        self.assertIn(None, want)  # V8's generated code: no file, no name for eu-stack
        # the JS function that blocked is named by loopwatch from V8's perf map
        self.assertTrue(any("readSettings" in j for j in js), js)


if __name__ == "__main__":
    unittest.main()

