"""The files a process really maps (issue 13): an interpreter and a libc replaced or deleted on
disk while the process runs (a package upgrade under a running service), and the hostile case:
an unprivileged target that deletes its copied interpreter and puts a FIFO at its path.
loopwatch must read the very files mapped (/proc/PID/map_files), attach its uprobes to them,
and never block on or be fooled by what now sits at the path.

Ground truth: the target's own clock and the '# MARK:' lines of its source, as in test_default."""
import os
import shutil
import signal
import subprocess
import tempfile
import unittest

from lwtest import (DEBIAN_PYTHON, TARGETS, Loopwatch, Target, def_line, marks, need_root,
                    run_loopwatch)

SCEN_SRC = os.path.join(TARGETS, "asyncio_scenarios.py")
M = marks(SCEN_SRC)
LIBC = "/lib/x86_64-linux-gnu/libc.so.6"


def replace_file(path, other):
    """What dpkg does: the new file is renamed over the old name (the old inode lives on
    only as the running process's mapping)."""
    tmp = path + ".dpkg-new"
    shutil.copy(other, tmp)
    os.rename(tmp, path)


@unittest.skipUnless(need_root(), "root needed")
@unittest.skipUnless(os.path.exists(DEBIAN_PYTHON) and os.path.exists(LIBC),
                     "Debian's python3.11 and libc needed")
class MappedFiles(unittest.TestCase):
    def setUp(self):
        # a private copy of the interpreter and of libc that the test may replace; the target
        # uses them (PYTHONHOME: the stdlib stays where it is)
        self.dir = tempfile.mkdtemp(prefix="lwtest-mapped-")
        os.chmod(self.dir, 0o755)
        self.py = os.path.join(self.dir, "python3.11")
        shutil.copy(DEBIAN_PYTHON, self.py)
        self.lib = os.path.join(self.dir, "libc.so.6")
        shutil.copy(LIBC, self.lib)
        self.scen = os.path.join(self.dir, "asyncio_scenarios.py")
        shutil.copy(SCEN_SRC, self.scen)
        self.env = {"PYTHONHOME": "/usr", "LD_LIBRARY_PATH": self.dir}

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def run_traced(self, t, lw_args, change):
        """Start-ready-change-attach-go; the change (replace/delete) happens before loopwatch
        ever looks at the process. Returns the Loopwatch."""
        try:
            t.wait_ready()
            change()
            lw = Loopwatch(t.pid, lw_args, tmp=t.tmp)
            try:
                lw.wait_started(timeout=30)
                t.go()
                self.assertEqual(t.wait(90), 0, t.stderr())
                self.assertEqual(lw.wait(30), 0, lw.stderr())
            finally:
                if lw.p.poll() is None:
                    lw.p.kill()
        finally:
            t.kill()
        return lw

    def check_named(self, lw, mode):
        start = lw.records("start")[0]
        self.assertEqual(start["mode"], mode)
        self.assertEqual(start["runtime"], "cpython", start)
        final = [r for r in lw.records("slow_callback") if not r["in_progress"]]
        by_q = {}
        for r in final:
            by_q.setdefault(r["callback"]["qualname"], []).append(r)
        rec = by_q["sleepy_work"][0]
        self.assertEqual(rec["callback"]["kind"], "task")
        self.assertEqual(rec["callback"]["task_name"], "sleepy")
        self.assertEqual(rec["callback"]["line"], def_line(self.scen, "sleepy_work"))
        self.assertGreater(rec["duration_ms"], 250)
        return rec, start

    def test_replaced_interpreter_and_libc(self):
        """python3.11 replaced by another program and libc.so.6 by another library after the
        process started: traced as if nothing had happened, in default and precise mode (the
        context_run uprobe goes on the old, mapped inode)."""
        for mode, args in (("default", ["-t", "10ms", "-q"]),
                           ("precise", ["--precise", "-t", "10ms", "-q"])):
            with self.subTest(mode=mode):
                shutil.copy(DEBIAN_PYTHON, self.py)
                shutil.copy(LIBC, self.lib)
                t = Target([self.py, self.scen, "{GO}"], env=self.env)

                def change():
                    replace_file(self.py, "/bin/ls")
                    replace_file(self.lib, "/lib/x86_64-linux-gnu/libm.so.6")
                lw = self.run_traced(t, args, change)
                rec, start = self.check_named(lw, mode)
                if mode == "default":
                    self.assertEqual(rec["stack"][0]["line"], M["sleep"])

    def test_deleted_interpreter(self):
        """The interpreter and libc deleted from disk (maps say '(deleted)')."""
        t = Target([self.py, self.scen, "{GO}"], env=self.env)

        def change():
            os.unlink(self.py)
            os.unlink(self.lib)
        lw = self.run_traced(t, ["-t", "10ms", "-q"], change)
        rec, _ = self.check_named(lw, "default")
        self.assertEqual(rec["stack"][0]["line"], M["sleep"])

    def test_fifo_swapped_in_by_unprivileged_target(self):
        """A target run by nobody deletes its copied interpreter and libc and puts FIFOs at
        their paths (and one at /tmp/perf-PID.map): loopwatch neither blocks on them (bounded
        by a timeout) nor reads them; it traces the mapped files."""
        os.chown(self.dir, 65534, 65534)
        t = Target(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                    self.py, self.scen, "{GO}"], env=self.env)
        os.chmod(t.tmp, 0o755)
        perf = None

        def change():
            for p in (self.py, self.lib):
                subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534",
                                "--clear-groups", "sh", "-c", 'rm -f "$1" && mkfifo "$1"',
                                "sh", p], check=True, timeout=10)
                self.assertTrue(os.path.exists(p))
            nonlocal perf
            perf = "/tmp/perf-%d.map" % t.pid
            # one left by an earlier process with this pid (a node that exited) is stale
            if os.path.lexists(perf):
                os.unlink(perf)
            subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534",
                            "--clear-groups", "mkfifo", perf], check=True, timeout=10)
        try:
            lw = self.run_traced(t, ["-t", "10ms", "-q"], change)
        finally:
            if perf and os.path.exists(perf):
                os.unlink(perf)
        rec, _ = self.check_named(lw, "default")
        self.assertEqual(rec["stack"][0]["line"], M["sleep"])

    def test_check_on_fifo_does_not_hang(self):
        """loopwatch check on such a process answers (bounded) and says CPython."""
        os.chown(self.dir, 65534, 65534)
        t = Target(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                    self.py, self.scen, "{GO}"], env=self.env)
        try:
            t.wait_ready()
            subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups",
                            "sh", "-c", 'rm -f "$1" && mkfifo "$1"', "sh", self.py],
                           check=True, timeout=10)
            r = run_loopwatch(["check", "--pid", str(t.pid)], timeout=30)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("3.11", r.stdout)
        finally:
            t.p.send_signal(signal.SIGKILL)
            t.kill()


if __name__ == "__main__":
    unittest.main()
