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

    def run_oracle(self, argv, min_ms=SLEEP_MS / 3):
        t = Target(argv)
        try:
            t.wait_ready()
            lw = Loopwatch(t.pid, ["-q"], tmp=t.tmp)
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
        # the whole stack, _start included; unnamed frames (static functions of stripped
        # binaries) in the same places
        want = [norm(n) for _, n in oracle]
        self.assertEqual(want[-1], "start", r.stdout + r.stderr)
        self.assertEqual(want[0], "clock_nanosleep")
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
        the Python stack beside it names the callback"""
        lw, want = self.run_oracle([DEBIAN_PYTHON, os.path.join(TARGETS, "asyncio_native.py"),
                                    "{GO}", "sleep", str(SLEEP_MS)])
        self.assertIn("PyEval_EvalFrameDefault", want)
        self.assertIn("Py_BytesMain", want)
        for b in lw.records("blocking_call"):
            if b["duration_ms"] >= SLEEP_MS / 3:
                self.assertEqual(b["stack"][0]["function"], "blocker")

    @unittest.skipUnless(os.path.exists(DEBIAN_PYTHON), "Debian's python3.11 missing")
    def test_python_sqlite(self):
        """A C extension that blocks: sqlite3 waiting for a lock, sleeping in Debian's
        libsqlite3 under _sqlite3 under the interpreter; every blocking call of at least 50 ms
        has eu-stack's stack"""
        lw, want = self.run_oracle([DEBIAN_PYTHON, os.path.join(TARGETS, "asyncio_native.py"),
                                    "{GO}", "sqlite", str(SLEEP_MS)], min_ms=50)
        self.assertIn("sqlite3_prepare_v2", want)
        self.assertIn("sqlite3InvokeBusyHandler", want)
        self.assertIn("PyEval_EvalFrameDefault", want)


if __name__ == "__main__":
    unittest.main()

