"""asyncio's other mistakes, caught from outside: a coroutine never awaited, a Task exception
never retrieved, a Task destroyed while pending. The oracle is what CPython itself prints to the
target's stderr in the same run; lines come from the target's source."""
import os
import re
import unittest

from lwtest import TARGETS, def_line, marks, pythons, traced

SRC = os.path.join(TARGETS, "asyncio_mistakes.py")
M = marks(SRC)


class Mistakes(unittest.TestCase):
    maxDiff = None

    def check_python(self, py):
        t, lw = traced([py, SRC, "{GO}"], ["-q"])
        err = t.stderr()
        hooks = lw.records("start")[0]["hooks"]

        # 1. "coroutine 'fetch_user' was never awaited", reported by CPython at the drop line
        m = re.search(r"^(.*):(\d+): RuntimeWarning: coroutine '([^']+)' was never awaited", err, re.M)
        self.assertTrue(m, err)
        un = lw.records("unawaited_coroutine")
        self.assertEqual(len(un), 1, hooks)
        self.assertEqual(un[0]["qualname"], m.group(3))
        self.assertEqual(un[0]["line"], def_line(SRC, "fetch_user"))
        self.assertEqual(os.path.realpath(un[0]["file"]), os.path.realpath(SRC))
        self.assertEqual(un[0]["stack"][0]["function"], "forget_coroutine")
        self.assertEqual(un[0]["stack"][0]["line"], int(m.group(2)))
        self.assertEqual(un[0]["stack"][0]["line"], M["dropped"])

        # 2. "Task exception was never retrieved ... name='payment-1' coro=<charge() ...
        #     exception=ValueError('card declined')"
        m = re.search(r"Task exception was never retrieved\nfuture: <Task finished name='([^']+)' "
                      r"coro=<(\w+)\(\) done, defined at (.*):(\d+)> exception=(\w+)\('([^']*)'\)>",
                      err)
        self.assertTrue(m, err)
        nr = lw.records("exception_never_retrieved")
        self.assertEqual(len(nr), 1, hooks)
        self.assertEqual(nr[0]["task_name"], m.group(1))
        self.assertEqual(nr[0]["qualname"], m.group(2))
        self.assertEqual(nr[0]["line"], int(m.group(4)))
        self.assertEqual(nr[0]["exception"], "%s: %s" % (m.group(5), m.group(6)))

        # 3. "Task was destroyed but it is pending! task: <Task pending name='orphan' coro=<waiter()"
        m = re.search(r"Task was destroyed but it is pending!\ntask: <Task pending name='([^']+)' "
                      r"coro=<(\w+)\(\)", err)
        self.assertTrue(m, err)
        dp = lw.records("task_destroyed_pending")
        self.assertEqual(len(dp), 1, hooks)
        self.assertEqual(dp[0]["task_name"], m.group(1))
        self.assertEqual(dp[0]["qualname"], m.group(2))
        self.assertEqual(dp[0]["line"], def_line(SRC, "waiter"))

        summ = lw.records("summary")[-1]
        self.assertEqual(summ["asyncio"], {"unawaited_coroutines": 1,
                                           "exceptions_never_retrieved": 1,
                                           "tasks_destroyed_pending": 1})
        # the explicit gc.collect() calls were timed (where the build has GC hooks)
        if not hooks["gc"].startswith("unavailable"):
            self.assertGreaterEqual(summ["loops"][0]["gc_collections"], 2)
            # a callback whose time went to a collection: gc_ms says so
            slow = [r for r in lw.records("slow_callback") if not r["in_progress"]]
            self.assertEqual(len(slow), 1, slow)
            truth = [x for x in t.truth() if "gc_ms" in x][0]["gc_ms"]
            self.assertAlmostEqual(slow[0]["gc_ms"], truth, delta=2 + 0.1 * truth)

    def test_mistakes(self):
        for label, py in pythons():
            with self.subTest(python=label):
                self.check_python(py)


if __name__ == "__main__":
    unittest.main()
