"""Faults: the target killed mid-callback, exec'ing, forking, starting threads after attach;
loopwatch itself SIGKILLed; a flood of slow events; a target in its own pid and mount namespace;
CPython builds loopwatch must refuse. Everything runs on Debian's python3.11."""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

from lwtest import (sanitized, BUILT_TARGETS, DEBIAN_PYTHON, TARGETS, Loopwatch, Target,
                    run_loopwatch)

FAULTS = os.path.join(TARGETS, "asyncio_faults.py")
SCEN = os.path.join(TARGETS, "asyncio_scenarios.py")


def lw_prog_ids():
    """ids of the loaded BPF programs whose name starts with lw_"""
    out = subprocess.run(["bpftool", "-j", "prog", "show"], capture_output=True, text=True)
    if out.returncode:
        out = subprocess.run(["/usr/sbin/bpftool", "-j", "prog", "show"], capture_output=True,
                             text=True)
    return {p["id"] for p in json.loads(out.stdout or "[]") if p.get("name", "").startswith("lw_")}


class Faults(unittest.TestCase):
    maxDiff = None

    def start(self, mode, args=(), env=None, lw_env=None):
        t = Target([DEBIAN_PYTHON, FAULTS, mode, "{GO}"], env=env)
        t.wait_ready()
        lw = Loopwatch(t.pid, list(args), tmp=t.tmp, env=lw_env)
        lw.wait_started()
        return t, lw

    def test_target_killed_mid_callback(self):
        t, lw = self.start("block", ["-t", "50ms"])
        try:
            t.go()
            deadline = time.time() + 10
            while time.time() < deadline and not [r for r in lw.records("slow_callback")
                                                  if r["in_progress"]]:
                time.sleep(0.05)
            live = [r for r in lw.records("slow_callback") if r["in_progress"]]
            self.assertTrue(live, "no live alert while the loop was stuck")
            self.assertEqual(live[0]["callback"]["task_name"], "stuck")
            t.p.send_signal(signal.SIGKILL)
            self.assertEqual(lw.wait(20), 0, lw.stderr())
            self.assertEqual(lw.records("end")[-1]["reason"], "target_exited")
            self.assertTrue(lw.records("summary")[-1]["final"])
        finally:
            t.kill()

    def test_loopwatch_sigkilled_leaves_nothing(self):
        t = Target([DEBIAN_PYTHON, SCEN, "{GO}"])
        try:
            t.wait_ready()
            before = lw_prog_ids()
            lw = Loopwatch(t.pid, ["--precise", "-t", "10ms"], tmp=t.tmp)
            lw.wait_started()
            ours = lw_prog_ids() - before
            self.assertTrue(ours, "loopwatch's programs were not visible")
            lw.p.send_signal(signal.SIGKILL)
            lw.p.wait(10)
            deadline = time.time() + 5
            while time.time() < deadline and (lw_prog_ids() & ours):
                time.sleep(0.1)
            self.assertFalse(lw_prog_ids() & ours, "programs left behind after SIGKILL")
            # the target is unharmed: it runs all its scenarios and exits cleanly
            t.go()
            self.assertEqual(t.wait(60), 0, t.stderr())
            self.assertIn("done", t.stdout())
            self.assertEqual(len(t.truth()), 7)
        finally:
            t.kill()
        # and the next attach works
        t2 = Target([DEBIAN_PYTHON, SCEN, "{GO}"])
        try:
            t2.wait_ready()
            lw2 = Loopwatch(t2.pid, ["--precise", "-t", "10ms", "-q"], tmp=t2.tmp)
            lw2.wait_started()
            t2.go()
            t2.wait(60)
            self.assertEqual(lw2.wait(30), 0, lw2.stderr())
            self.assertTrue([r for r in lw2.records("slow_callback")
                             if r["callback"]["qualname"] == "sleepy_work"])
        finally:
            t2.kill()

    def test_exec(self):
        t, lw = self.start("exec", ["-t", "50ms", "-q"])
        try:
            t.go()
            # the new image waits for its own go-file: made once loopwatch has attached to it
            deadline = time.time() + 20
            while time.time() < deadline and len(lw.records("start")) < 2:
                time.sleep(0.02)
            self.assertEqual(len(lw.records("start")), 2, lw.stderr())
            open(t.gofile + ".2", "w").close()
            self.assertEqual(t.wait(60), 0, t.stderr())
            self.assertEqual(lw.wait(30), 0, lw.stderr())
            recs = lw.records()
            ends = [r for r in recs if r["type"] == "end"]
            starts = [r for r in recs if r["type"] == "start"]
            self.assertEqual([e["reason"] for e in ends], ["target_exec", "target_exited"])
            self.assertEqual(len(starts), 2)
            self.assertTrue(all(r["pid"] == t.pid for r in recs))
            i = recs.index(ends[0])
            before = [r["callback"]["qualname"] for r in recs[:i]
                      if r["type"] == "slow_callback" and not r["in_progress"]]
            after = [r["callback"]["qualname"] for r in recs[i:]
                     if r["type"] == "slow_callback" and not r["in_progress"]]
            self.assertIn("before_exec", before)
            # the new image is traced too, from its first scenario
            self.assertIn("main.<locals>.<lambda>", after)
            self.assertIn("Ledger.flush", after)
        finally:
            t.kill()

    def test_fork(self):
        t, lw = self.start("fork", ["-t", "50ms", "-q"])
        try:
            t.go()
            self.assertEqual(t.wait(60), 0, t.stderr())
            self.assertEqual(lw.wait(30), 0, lw.stderr())
            truth = {x["event"]: x for x in t.truth()}
            self.assertEqual(truth["child_exit"]["status"], 0)
            child = truth["fork"]["child"]
            recs = lw.records()
            self.assertFalse([r for r in recs if r.get("pid") == child or r.get("tid") == child])
            self.assertTrue([r for r in lw.records("slow_callback")
                             if r["callback"]["task_name"] == "parent-slow"])
        finally:
            t.kill()

    def test_thread_started_after_attach(self):
        t, lw = self.start("thread", ["-t", "50ms", "-q"])
        try:
            t.go()
            self.assertEqual(t.wait(60), 0, t.stderr())
            self.assertEqual(lw.wait(30), 0, lw.stderr())
            tid = [x for x in t.truth() if x["event"] == "thread"][0]["tid"]
            slow = [r for r in lw.records("slow_callback") if not r["in_progress"]]
            mine = [r for r in slow if r["tid"] == tid]
            self.assertEqual(len(mine), 1, slow)
            self.assertEqual(mine[0]["callback"]["task_name"], "second-loop-task")
            self.assertEqual(mine[0]["stack"][0]["function"], "thread_slow")
            summ = lw.records("summary")[-1]
            self.assertIn(str(tid), summ["loop_utilization"])
            self.assertIn(str(t.pid), summ["loop_utilization"])
        finally:
            t.kill()

    def test_flood(self):
        # every callback is 'slow' against a 100 us threshold: thousands of records a second
        # under ASan, freed memory sits in a quarantine: keep it small so RSS means something
        t, lw = self.start("flood", ["-t", "100us", "-b", "50us", "-q"],
                           env={"FLOOD_SECONDS": "3"},
                           lw_env={"ASAN_OPTIONS": "quarantine_size_mb=4:malloc_context_size=4"})
        try:
            t.go()
            self.assertEqual(t.wait(60), 0, t.stderr())
            _, status, ru = os.wait4(lw.p.pid, 0)
            lw.p.returncode = os.waitstatus_to_exitcode(status)
            self.assertEqual(lw.p.returncode, 0, lw.stderr())
            # memory stays bounded however many records go through
            limit = (160 if sanitized() else 64) * 1024   # ASan's shadow memory is extra
            self.assertLess(ru.ru_maxrss, limit, "loopwatch peak RSS %d KiB" % ru.ru_maxrss)
            flood = [x for x in t.truth() if x["event"] == "flood"][0]
            recs = lw.records()
            end = recs[-1]
            self.assertEqual(end["type"], "end")
            slow = [r for r in recs if r["type"] in ("slow_callback", "slow_tick", "blocking_call")]
            # nothing lost silently: what is not in the file is counted, as lost (the ring
            # buffer was full), as refused by the process's share of the ring or its thread
            # quota (the BPF side), or as suppressed (the per-site rate limit). Every callback
            # is a slow iteration and its sleep a blocking call: twice the callbacks, so more
            # than the callbacks however the two kinds are split
            self.assertEqual(end["suppressed"],
                             sum(r["count"] for r in recs if r["type"] == "suppressed"))
            accounted = (len(slow) + end["lost_events"] + end["suppressed"] +
                         end["fair_share_drops"] + end["thread_quota_drops"])
            self.assertGreater(accounted, flood["callbacks"], end)
            self.assertEqual(end["lost_events"], recs[-2]["lost_events"])
            # the target was not stalled: it kept running callbacks at a sane rate
            self.assertGreater(flood["rate"], 300)
        finally:
            t.kill()

    @unittest.skipUnless(shutil.which("unshare"), "util-linux needed")
    def test_other_namespaces(self):
        """A 'container': its own pid and mount namespaces, the interpreter at a path that exists
        only inside (a bind mount over /mnt). loopwatch takes the host pid; it must open the binary
        through /proc/PID/root and translate the thread ids the target knows into host ones."""
        d = tempfile.mkdtemp(prefix="lwns-")
        shutil.copy2(DEBIAN_PYTHON, os.path.join(d, "python3.11"))
        go = os.path.join(d, "go")
        script = ("mount --bind %s /mnt && exec /mnt/python3.11 %s %s" % (d, SCEN, go))
        out = open(os.path.join(d, "out"), "w")
        p = subprocess.Popen(["unshare", "--pid", "--mount", "--fork", "sh", "-c", script],
                             stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.time() + 20
            pid = None
            while time.time() < deadline and pid is None:
                if "ready" in open(out.name).read():
                    pid = self.python_under(p.pid)
                time.sleep(0.05)
            self.assertIsNotNone(pid, open(out.name).read())
            self.assertFalse(os.path.exists("/mnt/python3.11"))
            r = run_loopwatch(["check", "--pid", str(pid), "--format", "json"])
            self.assertEqual(r.returncode, 0, r.stderr)
            info = json.loads(r.stdout)
            self.assertEqual(info["runtime"], "cpython", info)
            self.assertEqual(info["executable"], "/mnt/python3.11")
            lw = Loopwatch(pid, ["--precise", "-t", "10ms", "-q"])
            lw.wait_started()
            open(go, "w").close()
            self.assertEqual(p.wait(60), 0, open(out.name).read())
            self.assertEqual(lw.wait(30), 0, lw.stderr())
            slow = [r for r in lw.records("slow_callback") if not r["in_progress"]]
            sleepy = [r for r in slow if r["callback"]["qualname"] == "sleepy_work"]
            self.assertEqual(len(sleepy), 1, (slow, lw.records(), lw.stderr(),
                                              open(out.name).read()))
            self.assertEqual(sleepy[0]["tid"], pid)          # host ids in records
            self.assertEqual(sleepy[0]["callback"]["task_name"], "sleepy")
            self.assertEqual(sleepy[0]["stack"][0]["function"], "sleepy_work")
            # thread states were found (translated from the namespace's ids)
            self.assertIn("TSS slot verified", info["checks"])
        finally:
            if p.poll() is None:
                p.kill()
            p.wait()

    def python_under(self, pid):
        """the python process under unshare (unshare -> sh -> exec python)"""
        for _ in range(4):
            try:
                kids = open("/proc/%d/task/%d/children" % (pid, pid)).read().split()
                exe = os.readlink("/proc/%d/exe" % pid)
            except OSError:
                return None
            if exe.endswith("python3.11"):
                return pid
            if not kids:
                return None
            pid = int(kids[0])
        return None


class RefusedBuilds(unittest.TestCase):
    def check_refused(self, binary, expect):
        p = subprocess.Popen([binary], stdout=subprocess.PIPE)
        try:
            p.stdout.readline()
            for args in (["check", "--pid", str(p.pid)], ["--pid", str(p.pid), "-d", "1s"]):
                r = run_loopwatch(args)
                self.assertEqual(r.returncode, 1, r.stderr)
                self.assertIn(expect, r.stderr)
                self.assertIn("--runtime generic", r.stderr)
        finally:
            p.kill()
            p.wait()

    def test_debug_build(self):
        self.check_refused(os.path.join(BUILT_TARGETS, "fake_py_debug"), "debug build of CPython")

    def test_unknown_version(self):
        self.check_refused(os.path.join(BUILT_TARGETS, "fake_py_316"),
                           "CPython 3.16.0 is not supported (supported: 3.8 to 3.15)")

    def test_314_without_debug_offsets(self):
        """3.13+ layouts come from the process's own _Py_DebugOffsets: a build whose
        _PyRuntime does not carry them is refused with that reason"""
        self.check_refused(os.path.join(BUILT_TARGETS, "fake_py_314"), "_Py_DebugOffsets")

    def test_patched_layout(self):
        self.check_refused(os.path.join(BUILT_TARGETS, "fake_py_patched"),
                           "PyCodeObject in")

    def test_free_threaded(self):
        d = tempfile.mkdtemp(prefix="lwft-")
        dst = os.path.join(d, "python3.13t")
        shutil.copy2(os.path.join(BUILT_TARGETS, "fake_py_ok"), dst)
        self.check_refused(dst, "free-threaded CPython build")


if __name__ == "__main__":
    unittest.main()
