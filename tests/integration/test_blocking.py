"""Default mode on a loop blocked by I/O and by the GIL, and on blocking work done right (in a
thread pool, off the loop). Ground truth is what the target reports about itself: its FIFO path,
its TCP port, thread ids and its own clock; lines marked '# MARK:name' in its source."""
import os
import unittest

from lwtest import TARGETS, marks, pythons, traced

SRC = os.path.join(TARGETS, "asyncio_blocking.py")
M = marks(SRC)


class Blocking(unittest.TestCase):
    maxDiff = None

    def run_one(self, py):
        return traced([py, SRC, "{GO}"], ["-t", "50ms", "-q"], timeout=90)

    def check_python(self, py):
        t, lw = self.run_one(py)
        truth = {x["scenario"]: x for x in t.truth()}
        blocks = lw.records("blocking_call")
        slow = [r for r in lw.records("slow_callback") if not r["in_progress"]]
        ticks = lw.records("slow_tick")
        loop_tid = truth["fifo"]["loop_tid"]

        # a read() on a FIFO: the path, the line, the Task
        fifo = [b for b in blocks if b["syscall"] == "read"]
        self.assertEqual(len(fifo), 1, blocks)
        b = fifo[0]
        self.assertEqual(b["tid"], loop_tid)
        self.assertEqual(b["target"], truth["fifo"]["path"])
        self.assertIsInstance(b["fd"], int)
        self.assertAlmostEqual(b["duration_ms"], truth["fifo"]["ms"], delta=15)
        self.assertEqual(b["stack"][0]["function"], "fifo_reader")
        self.assertEqual(b["stack"][0]["line"], M["fifo"])
        self.assertEqual(b["callback"]["task_name"], "fifo-reader")
        self.assertTrue(b["native_stack"], b)

        # a recv() on a loopback TCP socket: the peer
        rcv = [b for b in blocks if b["syscall"] == "recvfrom"]
        self.assertEqual(len(rcv), 1, blocks)
        b = rcv[0]
        self.assertEqual(b["target"], "tcp 127.0.0.1:%d" % truth["recv"]["port"])
        self.assertAlmostEqual(b["duration_ms"], truth["recv"]["ms"], delta=15)
        self.assertEqual(b["stack"][0]["line"], M["recv"])
        self.assertEqual(b["callback"]["task_name"], "tcp-client")
        sc = [s for s in slow if s["callback"]["qualname"] == "tcp_client"]
        self.assertEqual(len(sc), 1)
        self.assertIn("recvfrom", [x["syscall"] for x in sc[0]["blocked"]])

        # the GIL: the loop waits while a sibling thread runs C code holding it; the holder is
        # named (its tid, and its stack when it is still running)
        hog_tid, hog_ms = truth["gil"]["hog_tid"], truth["gil"]["hog_ms"]
        # take_gil() waits in 5 ms slices: on a busy machine part of the wait is spent runnable
        # (run queue) between slices, so the GIL share alone may be well under the hog's time
        gil = [r for r in slow + ticks if r["gil_ms"] >= 0.25 * hog_ms
               and r["gil_ms"] + r["runq_ms"] >= 0.5 * hog_ms]
        self.assertTrue(gil, [(r["type"], r["gil_ms"]) for r in slow + ticks])
        r = gil[0]
        self.assertEqual(r["tid"], loop_tid)
        self.assertEqual(r["gil_holder"]["tid"], hog_tid)
        self.assertLess(r["gil_ms"], hog_ms + 15)
        live = [x for x in lw.records("slow_callback") if x["in_progress"] and x["gil_ms"] > 0
                and (x.get("gil_holder") or {}).get("tid") == hog_tid]
        if live and live[0]["gil_holder"].get("stack"):
            self.assertEqual(live[0]["gil_holder"]["stack"][0]["line"], M["hog"])

        # work in a thread pool blocks nothing: no record from the workers, no slow pool_work
        workers = set(truth["pool"]["worker_tids"])
        self.assertFalse([b for b in blocks if b["tid"] in workers])
        self.assertFalse([s for s in slow if s["tid"] in workers])
        self.assertFalse([s for s in slow if s["callback"]["qualname"] == "pool_work"])
        self.assertFalse([b for b in blocks if b["stack"] and b["stack"][0]["line"] == M["pool"]])
        summ = lw.records("summary")[-1]
        self.assertEqual(list(summ["loop_utilization"]), [str(loop_tid)])

    def test_blocking(self):
        for label, py in pythons():
            with self.subTest(python=label):
                self.check_python(py)


if __name__ == "__main__":
    unittest.main()
