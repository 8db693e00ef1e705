"""The loopwatch command line: usage errors (exit 2), could-not-trace errors (exit 1, a message
that names the cause and the fix), `check`, and how runs end (duration, signal, target exit)."""
import json
import os
import shutil
import signal
import subprocess
import time
import unittest

from lwtest import (DEBIAN_PYTHON, LOOPWATCH, ROOT, Loopwatch, Target, TARGETS, pythons,
                    run_loopwatch)

SCEN = os.path.join(TARGETS, "asyncio_scenarios.py")


class Usage(unittest.TestCase):
    def test_help_and_version(self):
        r = run_loopwatch(["--help"])
        self.assertEqual(r.returncode, 0)
        self.assertIn("--pid", r.stdout)
        r = run_loopwatch(["--version"])
        self.assertEqual(r.returncode, 0)
        with open(os.path.join(ROOT, "VERSION")) as f:
            self.assertEqual(r.stdout.strip(), "loopwatch " + f.read().strip())

    def test_bad_usage_exits_2(self):
        cases = [
            ([], "--pid"),
            (["--pid"], "needs a value"),
            (["--pid", "abc"], "invalid pid"),
            (["--pid", "-5"], "invalid pid"),
            (["--pid", "1", "--threshold", "fast"], "invalid --threshold"),
            (["--pid", "1", "-t", "0"], "above zero"),
            (["--pid", "1", "--duration", "-1s"], "invalid --duration"),
            (["--pid", "1", "--format", "xml"], "invalid --format"),
            (["--pid", "1", "--runtime", "ruby"], "invalid --runtime"),
            (["--pid", "1", "--iterations", "fast"], "invalid --iterations"),
            (["--frobnicate"], "unknown option"),
            (["explode"], "unknown command"),
            (["check"], "check needs --pid"),
            (["report"], "at least one FILE"),
            (["--pid", "1", "extra"], "unexpected argument"),
        ]
        for args, msg in cases:
            with self.subTest(args=args):
                r = run_loopwatch(args)
                self.assertEqual(r.returncode, 2, r.stderr)
                self.assertIn(msg, r.stderr)
                self.assertEqual(r.stdout, "")


class CannotTrace(unittest.TestCase):
    def test_no_such_pid(self):
        r = run_loopwatch(["--pid", "4000000"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("no process with pid 4000000", r.stderr)

    def test_kernel_thread(self):
        r = run_loopwatch(["--pid", "2", "--duration", "1s"])
        self.assertEqual(r.returncode, 1)
        self.assertIn("kernel thread", r.stderr)

    def test_zombie(self):
        p = subprocess.Popen(["true"])
        time.sleep(0.3)  # exited, not reaped: a zombie
        try:
            r = run_loopwatch(["--pid", str(p.pid), "--duration", "1s"])
            self.assertEqual(r.returncode, 1)
            self.assertIn("zombie", r.stderr)
        finally:
            p.wait()

    def test_precise_needs_python(self):
        p = subprocess.Popen(["sleep", "30"])
        try:
            r = run_loopwatch(["--pid", str(p.pid), "--precise", "--duration", "1s"])
            self.assertEqual(r.returncode, 1)
            self.assertIn("--precise needs a CPython process", r.stderr)
            self.assertIn("drop --precise", r.stderr)
        finally:
            p.kill()
            p.wait()

    def test_unwritable_output(self):
        p = subprocess.Popen(["sleep", "30"])
        try:
            r = run_loopwatch(["--pid", str(p.pid), "-o", "/nonexistent-dir/x.jsonl"])
            self.assertEqual(r.returncode, 1)
            self.assertIn("cannot open output file /nonexistent-dir/x.jsonl", r.stderr)
            # and never through a symlink
            d = self.tmpdir()
            os.symlink("/etc/passwd-not-there", os.path.join(d, "link"))
            r = run_loopwatch(["--pid", str(p.pid), "-o", os.path.join(d, "link")])
            self.assertEqual(r.returncode, 1)
            self.assertFalse(os.path.exists("/etc/passwd-not-there"))
        finally:
            p.kill()
            p.wait()

    def tmpdir(self):
        import tempfile
        return tempfile.mkdtemp(prefix="lwtest-")

    @unittest.skipUnless(os.path.exists("/usr/sbin/setpriv") or os.path.exists("/usr/bin/setpriv"),
                         "setpriv not installed")
    def test_unprivileged(self):
        p = subprocess.Popen(["sleep", "30"])
        try:
            r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                LOOPWATCH, "--pid", str(p.pid), "--duration", "1s"],
                               capture_output=True, text=True, timeout=30)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertRegex(r.stderr, r"permission denied|needs root|CAP_BPF")
        finally:
            p.kill()
            p.wait()


@unittest.skipUnless(shutil.which("setpriv"), "setpriv (util-linux) not installed")
class LeastPrivilege(unittest.TestCase):
    """As root but with only some capabilities (the bounding set caps what root gets)."""

    NEEDED = ["bpf", "perfmon", "sys_ptrace", "sys_resource", "dac_read_search"]

    def run_with(self, caps, pid, extra=()):
        return subprocess.run(["setpriv", "--bounding-set=-all," + ",".join("+" + c for c in caps),
                               "--inh-caps=-all", LOOPWATCH, "--pid", str(pid)] + list(extra),
                              capture_output=True, text=True, timeout=60)

    def test_capabilities(self):
        t = Target([DEBIAN_PYTHON, SCEN, "{GO}"])
        try:
            t.wait_ready()
            d = self.tmpdir()
            out = os.path.join(d, "r.jsonl")
            r = self.run_with(self.NEEDED, t.pid, ["-d", "1s", "-q", "-o", out])
            self.assertEqual(r.returncode, 0, r.stderr)
            with open(out) as f:
                types = [json.loads(l)["type"] for l in f]
            self.assertEqual(types[0], "start")
            self.assertEqual(types[-1], "end")
            for missing, name in (("bpf", "CAP_BPF"), ("perfmon", "CAP_PERFMON"),
                                  ("sys_ptrace", "CAP_SYS_PTRACE")):
                r = self.run_with([c for c in self.NEEDED if c != missing], t.pid, ["-d", "1s"])
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn("missing " + name, r.stderr)
        finally:
            t.kill()

    def tmpdir(self):
        import tempfile
        return tempfile.mkdtemp(prefix="lwtest-")


class Check(unittest.TestCase):
    def test_check_refuses_sid_debug_build(self):
        """sid's python3.14-dbg: CPython, refused with the reason (a debug build), not 'not
        CPython' and not 'unsupported version'."""
        import lwtest
        sid = lwtest.sid_pythons((14,), (False,))
        if not sid or not os.path.exists(os.path.join(sid[0][1].root, "usr/bin/python3.14-dbg")):
            self.skipTest("sid chroot with python3.14-dbg not prepared")
        py = sid[0][1]
        py.prefix = ["chroot", py.root, "python3.14-dbg"]
        t = Target([py, SCEN, "{GO}"])
        try:
            t.wait_ready(timeout=60)
            r = run_loopwatch(["check", "--pid", str(t.pid)])
            self.assertNotEqual(r.returncode, 0, r.stdout)
            self.assertIn("debug build of CPython", r.stderr)
            self.assertNotIn("not a CPython", r.stderr)
        finally:
            t.kill()

    def test_check_each_python(self):
        for label, py in pythons():
            with self.subTest(python=label):
                t = Target([py, SCEN, "{GO}"])
                try:
                    t.wait_ready()
                    r = run_loopwatch(["check", "--pid", str(t.pid), "--format", "json"])
                    self.assertEqual(r.returncode, 0, r.stderr)
                    d = json.loads(r.stdout)
                    truth = subprocess.run([py, "-c", "import platform; print(platform.python_version())"],
                                           capture_output=True, text=True).stdout.strip()
                    self.assertEqual(d["runtime"], "cpython")
                    # host pid and the pid it has in its own namespace (1 under unshare --pid)
                    self.assertEqual(d["pid"], t.pid)
                    self.assertEqual(d["pid_in_namespace"], 1 if getattr(py, "ns", False) else t.pid)
                    self.assertEqual(d["runtime_version"], truth)
                    # the executable as the process sees it (inside a chroot: its own path)
                    self.assertEqual(os.path.realpath(d["executable"]),
                                     getattr(py, "inside", None) or os.path.realpath(py))
                    if py == DEBIAN_PYTHON:
                        self.assertTrue(d["stripped"])
                        self.assertIn("PyContext_Type", d["context_run_how"])
                    else:
                        self.assertIn(".symtab", d["context_run_how"])
                    self.assertIn("GIL found", d["checks"])
                    if getattr(py, "minor", 0) >= 14:
                        # BPF finds a new thread's state itself (3.15 has no TSS key: a
                        # thread-local), before userspace has mapped the thread
                        self.assertIn("(verified)", d["thread_state_lookup"])
                    r = run_loopwatch(["check", "--pid", str(t.pid)])
                    self.assertEqual(r.returncode, 0)
                    self.assertIn("context_run", r.stdout)
                finally:
                    t.kill()

    def test_check_not_python(self):
        p = subprocess.Popen(["sleep", "30"])
        try:
            r = run_loopwatch(["check", "--pid", str(p.pid), "--format", "json"])
            self.assertEqual(r.returncode, 0, r.stderr)
            d = json.loads(r.stdout)
            self.assertEqual(d["runtime"], "generic")
            self.assertIn("not CPython", d["runtime_why"])
        finally:
            p.kill()
            p.wait()


class Endings(unittest.TestCase):
    def start_target(self):
        t = Target([DEBIAN_PYTHON, SCEN, "{GO}"])
        t.wait_ready()
        return t

    def test_duration(self):
        t = self.start_target()
        try:
            lw = Loopwatch(t.pid, ["--duration", "1s"], tmp=t.tmp)
            self.assertEqual(lw.wait(30), 0, lw.stderr())
            recs = lw.records()
            self.assertEqual(recs[0]["type"], "start")
            self.assertEqual(recs[-1]["type"], "end")
            self.assertEqual(recs[-1]["reason"], "duration")
            self.assertEqual(recs[-2]["type"], "summary")
            self.assertTrue(recs[-2]["final"])
            for r in recs:
                self.assertEqual(r["v"], 1)
                self.assertEqual(r["pid"], t.pid)
                self.assertRegex(r["ts"], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
            self.assertIn("final summary", lw.stdout())
        finally:
            t.kill()

    def test_signal(self):
        for sig in (signal.SIGINT, signal.SIGTERM):
            with self.subTest(signal=sig):
                t = self.start_target()
                try:
                    lw = Loopwatch(t.pid, [], tmp=t.tmp)
                    lw.wait_started()
                    self.assertEqual(lw.stop(sig), 0, lw.stderr())
                    self.assertEqual(lw.records("end")[-1]["reason"], "signal")
                    # the target is unharmed and no probe stays behind
                    self.assertIsNone(t.p.poll())
                finally:
                    t.kill()

    def test_target_exit_and_json_stdout(self):
        t = self.start_target()
        try:
            lw = Loopwatch(t.pid, ["--format", "json", "-t", "10ms"], tmp=t.tmp)
            lw.wait_started()
            t.go()
            t.wait(60)
            self.assertEqual(lw.wait(30), 0, lw.stderr())
            lines = [json.loads(l) for l in lw.stdout().splitlines() if l.strip()]
            self.assertEqual(lines[0]["type"], "start")
            self.assertEqual(lines[-1]["type"], "end")
            self.assertEqual(lines[-1]["reason"], "target_exited")
            self.assertEqual([l["type"] for l in lines], [r["type"] for r in lw.records()])
        finally:
            t.kill()


if __name__ == "__main__":
    unittest.main()
