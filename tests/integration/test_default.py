"""Default mode (no per-callback probes) against the same asyncio scenarios: slow callbacks named
from the stack, the exact line where they blocked or burned CPU, the time split, live alerts,
blocking calls, loop health. Ground truth: the target's own clock and its '# MARK:' lines."""
import os
import unittest

from lwtest import sleep_syscall, TARGETS, def_line, marks, pythons, traced, unnamed_cpu_bound

SCEN = os.path.join(TARGETS, "asyncio_scenarios.py")
M = marks(SCEN)
DEEP = os.path.join(TARGETS, "asyncio_deep.py")
DM = marks(DEEP)


class DefaultMode(unittest.TestCase):
    maxDiff = None

    def run_one(self, py):
        return traced([py, SCEN, "{GO}"], ["-t", "10ms", "-q"], timeout=90)

    def check_python(self, py):
        t, lw = self.run_one(py)
        truth, own = {}, {}
        for x in t.truth():
            truth.setdefault(x["scenario"], x["ms"])
            own.setdefault(x["scenario"], x)
        self.assertEqual(lw.records("start")[0]["mode"], "default")
        final = [r for r in lw.records("slow_callback") if not r["in_progress"]]
        by_q = {}
        for r in final:
            by_q.setdefault(r["callback"]["qualname"], []).append(r)

        # the task that sleeps: named, blocked in clock_nanosleep at the exact line
        rec = by_q["sleepy_work"][0]
        cb = rec["callback"]
        self.assertEqual(cb["kind"], "task")
        self.assertEqual(cb["task_name"], "sleepy")
        self.assertEqual(cb["line"], def_line(SCEN, "sleepy_work"))
        self.assertGreaterEqual(rec["duration_ms"], truth["sleepy"] - 0.5)
        self.assertLess(rec["duration_ms"], truth["sleepy"] + 15)
        self.assertEqual(rec["stack_kind"], "blocked")
        self.assertEqual(rec["stack"][0]["function"], "sleepy_work")
        self.assertEqual(rec["stack"][0]["line"], M["sleep"])
        self.assertEqual(os.path.realpath(rec["stack"][0]["file"]), os.path.realpath(SCEN))
        self.assertIn(sleep_syscall(py), [b["syscall"] for b in rec["blocked"]])
        self.assertGreater(rec["offcpu_ms"], 0.9 * truth["sleepy"])

        # the CPU-bound lambda: on CPU, the stack inside cpu_bound's loop
        rec = by_q["main.<locals>.<lambda>"][0]
        self.assertEqual(rec["stack_kind"], "cpu")
        print("\n%s: CPU-bound lambda %.1f ms, %.1f on CPU (its own thread_time: %.1f), %.1f "
              "in the run queue (stolen or in interrupts meanwhile, all CPUs: %.0f)" % (py, rec["duration_ms"], rec["cpu_ms"], own["cpu"]["cpu_ms"],
                                    rec["runq_ms"], own["cpu"]["stolen_ms"]))
        # on CPU for as long as the thread's own CPU clock says: all of it on a quiet machine,
        # less on a loaded one (the rest is run queue). Issue 18: a preemption whose switch-in
        # was missed must not turn its CPU time into run-queue time (150 ms came out as 9 ms).
        # The CPU clock leaves out what a VM's hypervisor stole and interrupts took, which is
        # wall time on a CPU (148.8 ms against a clock's 130.4 in a CI run): allowed above it,
        # up to what /proc/stat counted meanwhile on all CPUs (in clock ticks)
        ocpu, stolen = own["cpu"]["cpu_ms"], own["cpu"]["stolen_ms"]
        slack = max(8.0, 0.1 * ocpu)
        tick = 1000.0 / os.sysconf("SC_CLK_TCK")
        self.assertGreaterEqual(rec["cpu_ms"], ocpu - slack)
        self.assertLessEqual(rec["cpu_ms"], ocpu + slack + (stolen + 3 * tick if stolen else 0),
                             own["cpu"])
        self.assertAlmostEqual(rec["cpu_ms"] + rec["runq_ms"], rec["duration_ms"], delta=8.0)
        fr = [f for f in rec["stack"] if f["function"] == "cpu_bound"]
        self.assertTrue(fr, rec["stack"])
        self.assertIn(fr[0]["line"], (M["cpu"], M["cpu"] + 1))
        self.assertGreaterEqual(rec["duration_ms"], truth["cpu"] - 0.5)

        # a bound method, a functools.partial, an unnamed task
        self.assertEqual(by_q["Ledger.flush"][0]["callback"]["kind"], "method")
        self.assertEqual(by_q["Ledger.flush"][0]["stack"][0]["line"], M["flush"])
        missed = unnamed_cpu_bound(lw, self, by_q)
        un = by_q["unnamed_block"][0]["callback"]
        self.assertRegex(un["task_name"] or "", r"^Task-\d+$")

        # nothing else: the fast callbacks and tasks never show up, unless the loaded machine
        # made one slow (its wait for a CPU took it past the 10 ms threshold)
        want = ["sleepy_work", "short_block", "unnamed_block", "main.<locals>.<lambda>",
                "cpu_bound", "Ledger.flush"]
        if missed:
            want.remove("cpu_bound")
        self.assertEqual(sorted(q for q in by_q if q in want), sorted(want))
        for q in set(by_q) - set(want):
            for r in by_q[q]:
                self.assertLess(r["duration_ms"] - r["runq_ms"] - r["gc_ms"], 10.0, r)

        # live alerts while it was still blocked, then the final record
        live = [r for r in lw.records("slow_callback")
                if r["in_progress"] and r["callback"]["qualname"] == "sleepy_work"]
        self.assertGreaterEqual(len(live), 1)
        self.assertTrue(all(10 <= r["duration_ms"] < truth["sleepy"] for r in live))
        self.assertEqual(live[0]["stack"][0]["line"], M["sleep"])

        # blocking calls: the sleep, with its line and the enclosing Task
        blk = [b for b in lw.records("blocking_call") if b["syscall"] == sleep_syscall(py)
               and b["stack"] and b["stack"][0]["line"] == M["sleep"]]
        self.assertEqual(len(blk), 1, lw.records("blocking_call"))
        self.assertAlmostEqual(blk[0]["duration_ms"], 300, delta=15)
        self.assertEqual(blk[0]["callback"]["task_name"], "sleepy")
        self.assertIsNone(blk[0]["fd"])

        # loop health and the summary
        summ = lw.records("summary")[-1]
        self.assertTrue(summ["final"])
        self.assertEqual(summ["sites_scope"], "slow")
        self.assertIn(str(t.pid), summ["loop_utilization"])
        u = summ["loop_utilization"][str(t.pid)]
        self.assertTrue(0 < u < 1, u)
        sites = {s["qualname"]: s for s in summ["sites"]}
        self.assertEqual(sites["sleepy_work"]["count"], 1)
        bsites = [b for b in summ["blocking_sites"] if b["syscall"] == sleep_syscall(py)]
        self.assertTrue(bsites)
        self.assertEqual(summ["lost_events"], 0)

    def test_default_mode(self):
        for label, py in pythons():
            with self.subTest(python=label):
                self.check_python(py)

    def test_cpu_line_without_majority_instruction(self):
        """A hot loop whose CPU samples spread evenly over three lines (none a majority) and a
        tail on a fourth line at the end, a sixth of the time: each record names one of the
        loop's lines (a vote that a few late samples could win named the tail)."""
        src = os.path.join(TARGETS, "cpu_lines.py")
        cm = marks(src)
        loop_lines = (cm["hot1"] - 1, cm["hot1"], cm["hot2"], cm["hot3"])
        t, lw = traced([pythons()[0][1], src, "{GO}"], ["-t", "100ms", "-q"], timeout=60)
        self.assertEqual(len([x for x in t.truth() if x.get("scenario") == "hot"]), 3)
        recs = [r for r in lw.records("slow_callback") if not r["in_progress"]]
        got = []
        for r in recs:
            fr = [f for f in r["stack"] if f["function"] == "hot"]
            self.assertTrue(fr, r)
            self.assertEqual(r["stack_kind"], "cpu", r)
            got.append(fr[0].get("line"))
        self.assertEqual(len(got), 3, recs)
        self.assertEqual([g for g in got if g not in loop_lines], [], (got, loop_lines))

    def test_cpu_bound_between_samples(self):
        """A CPU-bound callback that no CPU sample fell into (here: --no-sampling; in production
        a callback of a few tens of ms between two 49 Hz samples on a loaded host) is still
        named, from the stack its live alert walked while it ran."""
        t, lw = traced([pythons()[0][1], SCEN, "{GO}"], ["-t", "10ms", "-q", "--no-sampling"],
                       timeout=90)
        final = {r["callback"]["qualname"]: r for r in lw.records("slow_callback")
                 if not r["in_progress"]}
        for q in ("main.<locals>.<lambda>", "cpu_bound"):
            self.assertIn(q, sorted(final))
            rec = final[q]
            self.assertEqual(rec["stack_kind"], "cpu")
            self.assertTrue(rec.get("alerted"), rec)
            fr = [f for f in rec["stack"] if f["function"] == "cpu_bound"]
            self.assertTrue(fr, rec["stack"])
            self.assertIn(fr[0]["line"], (M["cpu"], M["cpu"] + 1))
        # blocked ones keep the stack taken when they went to sleep
        self.assertEqual(final["sleepy_work"]["stack"][0]["line"], M["sleep"])

    def test_asyncio_imported_after_attach(self):
        """A process that imports asyncio after loopwatch attached (a CLI that sets up first, a
        worker that imports lazily): its slow Task is still named, with its task name and line,
        in both modes (issue 20: task_name was empty when asyncio came after the attach)."""
        src = os.path.join(TARGETS, "asyncio_late.py")
        line = marks(src)["late"]
        for i, (label, py) in enumerate(pythons()):
            for mode in ([], ["--precise"])[:2 if i == 0 else 1]:
                with self.subTest(python=label, mode=mode):
                    t, lw = traced([py, src, "{GO}"], ["-t", "50ms", "-q"] + mode, timeout=60)
                    truth = t.truth()[0]["ms"]
                    final = [r for r in lw.records("slow_callback") if not r["in_progress"]]
                    self.assertEqual(len(final), 1, [r["callback"] for r in final])
                    cb = final[0]["callback"]
                    self.assertEqual((cb["kind"], cb["task_name"], cb["qualname"]),
                                     ("task", "late-task", "late_block"))
                    self.assertAlmostEqual(final[0]["duration_ms"], truth, delta=15)
                    if final[0]["stack"]:
                        self.assertEqual(final[0]["stack"][0]["line"], line)

    def check_deep(self, py):
        t, lw = traced([py, DEEP, "{GO}"], ["-t", "50ms", "-q"])
        truth = {x["scenario"]: x["ms"] for x in t.truth()}
        final = [r for r in lw.records("slow_callback") if not r["in_progress"]]
        by_q = {}
        for r in final:
            by_q.setdefault(r["callback"]["qualname"], []).append(r)
        self.assertEqual(len(by_q.get("deep_work", [])), 2,
                         [(r["callback"], r["duration_ms"]) for r in final])
        sleeper, spinner = by_q["deep_work"]
        for rec, what, line in ((sleeper, "sleep", DM["deep_sleep"]),
                                (spinner, "spin", DM["deep_spin"])):
            # named although Handle._run lies past the 64 frames kept
            cb = rec["callback"]
            self.assertEqual(cb["kind"], "task", cb)
            self.assertEqual(cb["line"], def_line(DEEP, "deep_work"), cb)
            self.assertEqual(os.path.realpath(cb["file"]), os.path.realpath(DEEP))
            self.assertGreaterEqual(rec["duration_ms"], truth["deep_" + what] - 0.5)
            # the innermost frames are kept; the record says the stack is not whole
            self.assertEqual(rec["stack"][0]["function"], "dive", rec["stack"][:2])
            if what == "spin":
                # a CPU sample: the busy loop's two lines (its test and its body) are both it
                self.assertIn(rec["stack"][0]["line"], (line, line + 1))
            else:
                self.assertEqual(rec["stack"][0]["line"], line)
            self.assertEqual(rec["stack_incomplete"], "truncated")
        self.assertEqual(spinner["callback"]["task_name"], "deep-spinner")
        self.assertEqual(spinner["stack_kind"], "cpu")
        self.assertEqual(sleeper["stack_kind"], "blocked")
        self.assertIn(sleeper["callback"]["task_name"], ("deep-sleeper", None))
        # the blocking call inside the deep callback: named the same way
        blk = [b for b in lw.records("blocking_call") if b["syscall"] == sleep_syscall(py)
               and b["stack"] and b["stack"][0]["line"] == DM["deep_sleep"]]
        self.assertEqual(len(blk), 1, lw.records("blocking_call"))
        self.assertEqual(blk[0]["callback"]["qualname"], "deep_work")
        self.assertEqual(blk[0]["stack_incomplete"], "truncated")
        # a shallow stack is whole and says nothing
        sh = by_q["shallow_work"][0]
        self.assertEqual(sh["callback"]["task_name"], "shallow")
        self.assertEqual(sh["stack"][0]["line"], DM["shallow_sleep"])
        self.assertNotIn("stack_incomplete", sh)

    def test_deep_stacks(self):
        for label, py in pythons():
            with self.subTest(python=label):
                self.check_deep(py)


if __name__ == "__main__":
    unittest.main()
