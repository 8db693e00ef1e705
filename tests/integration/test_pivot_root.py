"""A target in a pivot_root'ed container (issue 13, item 3): new mount and pid namespaces, the
root changed with pivot_root and the old one unmounted, as container runtimes do. The paths in
/proc/PID/maps are then relative to the container's root and mean nothing from loopwatch's own
root (sid's /usr/bin/python3.14 does not exist on the host). Slow callbacks must be named and
timed as anywhere else, in both modes; records show paths as the process sees them, and the
start record has both the host pid and the pid in the container.

Oracle: asyncio's own debug mode ('Executing <...> took N s', PYTHONASYNCIODEBUG=1), the target's
own clock, and the '# MARK:' lines of its source."""
import os
import re
import unittest

from lwtest import (TARGETS, asyncio_oracle, def_line, marks, pivot_pythons, sleep_syscall,
                    traced, unnamed_cpu_bound)
from test_precise import EXPECTED, nested_within

SCEN = os.path.join(TARGETS, "asyncio_scenarios.py")
M = marks(SCEN)


class PivotRoot(unittest.TestCase):
    maxDiff = None

    def run_one(self, py, mode):
        return traced([py, SCEN, "{GO}"], ["-t", "10ms", "-q"] + mode, timeout=90,
                      env={"PYTHONASYNCIODEBUG": "1"}, start_timeout=60)

    def check(self, py, mode):
        t, lw = self.run_one(py, mode)
        start = lw.records("start")[0]
        # both pids: the host's (what --pid named) and the container's own (1: unshare --fork)
        self.assertEqual(start["pid"], t.pid)
        self.assertEqual(start["pid_in_namespace"], 1)
        self.assertEqual(start["runtime"], "cpython", start)
        self.assertEqual(start["mode"], "precise" if mode else "default")
        # the interpreter as the container sees it, not a host path or a /proc detour
        self.assertEqual(start["executable"], py.inside, start)
        self.assertTrue(start["interpreter_elf"].startswith("/usr/"), start)
        self.assertEqual(lw.records("end")[-1]["lost_events"], 0)

        oracle = asyncio_oracle(t.stderr())
        truth = {}
        for x in t.truth():
            truth.setdefault(x["scenario"], x["ms"])
        final = [r for r in lw.records("slow_callback") if not r["in_progress"]]
        by_q = {}
        for r in final:
            by_q.setdefault(r["callback"]["qualname"], []).append(r)
        seen = [(r["callback"]["qualname"], r["duration_ms"]) for r in final]
        missed = not mode and unnamed_cpu_bound(lw, self, by_q)
        for pattern, kind, qual, task in EXPECTED:
            theirs = [ms for rep, ms in oracle if re.search(pattern, rep)]
            self.assertEqual(len(theirs), 1, "oracle for %s: %s" % (pattern, oracle))
            if missed and qual == "cpu_bound":
                continue
            self.assertIn(qual, by_q, "ours: %s\noracle: %s\nslow ticks: %s\nnot iterations: %s"
                          % (seen, oracle,
                             [(r["busy_ms"], (r.get("slowest") or {}).get("qualname"),
                               r.get("stack_kind"), r.get("stack_incomplete"))
                              for r in lw.records("slow_tick")],
                             [x.get("not_iterations") for x in lw.records("summary")]))
            self.assertEqual(len(by_q[qual]), 1, seen)
            rec = by_q[qual][0]
            cb = rec["callback"]
            self.assertEqual(cb["kind"], kind, cb)
            self.assertEqual(os.path.realpath(cb["file"]), os.path.realpath(SCEN), cb)
            fname = qual.split(".")[-1] if "lambda" not in qual else None
            if fname:
                self.assertEqual(cb["line"], def_line(SCEN, fname), cb)
            if task:
                self.assertEqual(cb["task_name"], task, cb)
            elif kind == "task":
                self.assertRegex(cb["task_name"] or "", r"^Task-\d+$")
            ours = rec["duration_ms"]
            if mode:
                # precise: the callback itself, as asyncio times it (less its bookkeeping)
                self.assertTrue(nested_within(ours, theirs[0]), (qual, ours, theirs[0]))
            else:
                # default: the loop iteration around it (debug mode's own work included)
                self.assertGreaterEqual(ours, theirs[0] - 1.0, qual)
                self.assertLess(ours, theirs[0] + 15 + 0.05 * theirs[0], qual)
        if not mode:
            # nothing else is reported: the fast callbacks and tasks never show up
            self.assertEqual(sorted(by_q), sorted(e[2] for e in EXPECTED
                                                  if not (missed and e[2] == "cpu_bound")), seen)
        # the blocking line and where the time went
        rec = by_q["sleepy_work"][0]
        self.assertGreaterEqual(rec["duration_ms"], truth["sleepy"] - 0.5)
        self.assertIn(sleep_syscall(py), [b["syscall"] for b in rec["blocked"]], rec)
        if rec["stack"]:
            self.assertEqual(rec["stack"][0]["function"], "sleepy_work")
            self.assertEqual(rec["stack"][0]["line"], M["sleep"])
        if not mode:
            self.assertEqual(rec["stack"][0]["line"], M["sleep"], rec["stack"][:2])
            # native frames resolved in the container's own libc (not '??+0x... (libc.so.6)')
            nat = [f for f in rec.get("native_stack") or [] if f.get("module")]
            self.assertTrue(any(f["module"].startswith("libc.so") and f["symbol"] for f in nat),
                            rec.get("native_stack"))

    def test_pivot_root(self):
        pys = pivot_pythons()
        if not pys:
            self.skipTest("root, unshare and Debian's python3.11 or the sid chroot needed")
        for label, py in pys:
            for mode in ([], ["--precise"]):
                with self.subTest(python=label, mode=mode or "default"):
                    self.check(py, mode)


if __name__ == "__main__":
    unittest.main()
