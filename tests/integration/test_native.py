"""Native stacks on binaries built without frame pointers (issue 17), against an oracle:
elfutils' eu-stack on the same thread, blocked at the same point (the target announces it).
The C loops are built -O2 -g -fomit-frame-pointer; libc and libuv are Debian's (no frame
pointers either). loopwatch's blocking-call stack must match eu-stack frame for frame down to
main, with no unnamed frame."""
import os
import re
import shutil
import subprocess
import time
import unittest

from lwtest import BUILT_TARGETS, DEBIAN_PYTHON, TARGETS, Loopwatch, Target, need_root

SLEEP_MS = 1500


def norm(sym):
    """A symbol without its version (clock_nanosleep@@GLIBC_2.17, @GLIBC_2.2.5), a compiler
    clone's suffix (on_timer.constprop.0) nor leading underscores: libc's aliases of one address
    (__nanosleep, nanosleep) name the same frame"""
    if not sym:
        return None
    return sym.split("@")[0].split(".")[0].lstrip("_")


def eu_stack(pid):
    """Frames of thread pid: [(pc, name or None)], innermost first"""
    r = subprocess.run(["eu-stack", "-p", str(pid)], capture_output=True, text=True, timeout=30)
    frames, cur = [], None
    for line in r.stdout.splitlines():
        m = re.match(r"TID (\d+):", line)
        if m:
            cur = int(m.group(1))
            continue
        m = re.match(r"#\d+\s+0x([0-9a-f]+)(?:\s+-\s+1)?\s*(\S+)?", line)
        if m and cur == pid:
            frames.append((int(m.group(1), 16), m.group(2)))
    return frames, r


@unittest.skipUnless(shutil.which("eu-stack"), "eu-stack missing (Debian package elfutils)")
class NoFramePointers(unittest.TestCase):
    def setUp(self):
        need_root()

    def run_oracle(self, argv, min_ms=SLEEP_MS / 3, first="clock_nanosleep", lw_args=("-q",)):
        t = Target(argv)
        try:
            t.wait_ready()
            lw = Loopwatch(t.pid, list(lw_args), tmp=t.tmp)
            lw.wait_started()
            t.go()
            deadline = time.time() + 20
            while '"blocking"' not in t.stdout() and time.time() < deadline:
                time.sleep(0.01)
            time.sleep(0.2)
            oracle, r = eu_stack(t.pid)
            self.assertEqual(t.wait(30), 0, t.stderr())
            self.assertEqual(lw.wait(30), 0, lw.stderr())
        finally:
            t.kill()
        self.truth = t.truth()
        # the whole stack, _start included; unnamed frames (static functions of stripped
        # binaries) in the same places
        want = [norm(n) for _, n in oracle]
        self.assertEqual(want[-1], "start", r.stdout + r.stderr)
        self.assertEqual(want[0], first)
        blk = [b for b in lw.records("blocking_call") if b["duration_ms"] >= min_ms]
        self.assertTrue(blk, lw.records("blocking_call"))
        for b in blk:
            ns = b["native_stack"]
            got = [norm(f["symbol"]) for f in ns]
            self.assertEqual(got, want, "loopwatch %s\neu-stack %s" % (ns, r.stdout))
            self.assertNotIn("native_stack_incomplete", b)
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

    def test_libuv_nofp(self):
        lw, want = self.native("uv_timer_nofp")
        self.assertIn("slow_handler", want)
        self.assertIn("uv_run", want)

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
        # text: under the callback's line, the innermost native frames first, the rest folded
        text = lw.stdout()
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
    def test_python_sqlite(self):
        """A C extension that blocks: sqlite3 waiting for a lock, sleeping in Debian's
        libsqlite3 under _sqlite3 under the interpreter; every blocking call of at least 50 ms
        has eu-stack's stack, and the mixed stack has libsqlite3's and _sqlite3's frames
        under the Python frame that called execute"""
        lw, want = self.run_oracle([DEBIAN_PYTHON, os.path.join(TARGETS, "asyncio_native.py"),
                                    "{GO}", "sqlite", str(SLEEP_MS)], min_ms=50)
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


if __name__ == "__main__":
    unittest.main()

