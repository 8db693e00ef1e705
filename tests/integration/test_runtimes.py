"""Runtimes beyond stock asyncio, each checked against what the target measures itself:
uvloop (default and precise mode), Node.js (a 200 ms timer callback, readFileSync on a FIFO),
a libuv C program and a plain epoll C program (a timer handler that sleeps 200 ms, then spins
150 ms)."""
import json
import os
import subprocess
import sys
import unittest

from lwtest import (BUILT_TARGETS, DEBIAN_PYTHON, TARGETS, Loopwatch, Target,
                    node_binary, run_loopwatch, sid_pythons)

SCEN = os.path.join(TARGETS, "asyncio_scenarios.py")
NODE_JS = os.path.join(TARGETS, "node_blocking.js")


def have_uvloop(py=DEBIAN_PYTHON):
    r = subprocess.run([py, "-c", "import uvloop"], capture_output=True)
    return r.returncode == 0


def uvloop_pythons():
    """Debian 12's python3.11 with its uvloop 0.17, and sid's python3.14 with uvloop 0.23 (in
    the sid chroot), where installed."""
    out = [("debian-3.11", DEBIAN_PYTHON)] if have_uvloop() else []
    out += [(label, py) for label, py in sid_pythons((14,), (False,)) if have_uvloop(py)]
    return out


class UVLoop(unittest.TestCase):
    def run_uv(self, args, py=DEBIAN_PYTHON):
        t = Target([py, SCEN, "{GO}", "--uvloop"])
        try:
            t.wait_ready()
            r = run_loopwatch(["check", "--pid", str(t.pid), "--format", "json"])
            info = json.loads(r.stdout)
            self.assertEqual(info["event_loop"], "uvloop")
            lw = Loopwatch(t.pid, ["-t", "10ms", "-q"] + args, tmp=t.tmp)
            lw.wait_started()
            t.go()
            self.assertEqual(t.wait(60), 0, t.stderr())
            self.assertEqual(lw.wait(30), 0, lw.stderr())
        finally:
            t.kill()
        truth = {}
        for x in t.truth():
            truth.setdefault(x["scenario"], x["ms"])
        slow = {r["callback"]["qualname"]: r for r in lw.records("slow_callback")
                if not r["in_progress"]}
        return info, lw, truth, slow

    def test_uvloop_default(self):
        pys = uvloop_pythons()
        if not pys:
            self.skipTest("python3-uvloop not installed")
        for label, py in pys:
            with self.subTest(python=label):
                self.check_default(py)

    def check_default(self, py):
        info, lw, truth, slow = self.run_uv([], py)
        # on a miss, every slow record (one of CI's, sid's 3.14: cpu_bound through
        # functools.partial unnamed or missing, not reproduced in 25 runs here) and the truth
        self.assertEqual(sorted(slow), sorted(["sleepy_work", "short_block", "unnamed_block",
                                              "main.<locals>.<lambda>", "cpu_bound",
                                              "Ledger.flush"]),
                         [(r["callback"].get("qualname"), r["in_progress"], r["duration_ms"],
                           r.get("cpu_ms"), r.get("stack_incomplete"),
                           [(f.get("function"), f.get("line")) for f in r.get("stack") or []][:4])
                          for r in lw.records("slow_callback")] +
                         [(r["busy_ms"], r.get("cpu_ms"), r.get("slowest"), r.get("stack_kind"),
                           r.get("stack_incomplete"),
                           [(f.get("function"), f.get("line")) for f in r.get("stack") or []][:4])
                          for r in lw.records("slow_tick")] +
                         [truth, {k: lw.records("summary")[-1].get(k)
                                  for k in ("lost_events", "not_iterations", "read_errors")}])
        self.assertGreaterEqual(slow["sleepy_work"]["duration_ms"], truth["sleepy"] - 0.5)
        self.assertLess(slow["sleepy_work"]["duration_ms"], truth["sleepy"] + 15)
        self.assertEqual(slow["sleepy_work"]["callback"]["kind"], "task")
        self.assertEqual(slow["sleepy_work"]["stack"][0]["function"], "sleepy_work")
        self.assertIn("clock_nanosleep", [b["syscall"] for b in slow["sleepy_work"]["blocked"]])
        self.assertEqual(slow["Ledger.flush"]["callback"]["kind"], "method")

    def test_uvloop_precise(self):
        pys = uvloop_pythons()
        if not pys:
            self.skipTest("python3-uvloop not installed")
        for label, py in pys:
            with self.subTest(python=label):
                self.check_precise(py)

    def check_precise(self, py):
        info, lw, truth, slow = self.run_uv(["--precise"], py)
        self.assertIn("__pyx_vtable__", info["uvloop"])
        start = lw.records("start")[0]
        self.assertTrue([p for p in start["probes"] if "uvloop" in p], start["probes"])
        # uvloop's own debug mode shows <Handle <TaskStepMethWrapper ...>>: we name the Task
        self.assertEqual(slow["sleepy_work"]["callback"]["task_name"], "sleepy")
        self.assertEqual(slow["short_block"]["callback"]["task_name"], "shorty")
        self.assertRegex(slow["unnamed_block"]["callback"]["task_name"], r"^Task-\d+$")
        for name, q in (("sleepy", "sleepy_work"), ("short", "short_block"),
                        ("flush", "Ledger.flush")):
            self.assertGreaterEqual(slow[q]["duration_ms"], truth[name] - 0.5)
            self.assertLess(slow[q]["duration_ms"], truth[name] + 5 + 0.05 * truth[name])
        sites = {s["qualname"]: s for s in lw.records("summary")[-1]["sites"]}
        self.assertEqual(sites["fast_cb"]["count"], 5000)
        self.assertEqual(sites["tiny"]["count"], 1000)


@unittest.skipUnless(node_binary(), "Node.js not installed")
class Node(unittest.TestCase):
    def test_node(self):
        # The callback of a CPU-bound iteration is named by the JS function most of its CPU
        # samples name (each sample's copy unwound by CFI too, so a sample in a native leaf
        # without a frame pointer, V8's fast calls into C++, still reaches its JS caller)
        self.run_node()

    def run_node(self):
        node = node_binary()
        t = Target([node, "--perf-basic-prof", NODE_JS, "{GO}"])
        try:
            t.wait_ready()
            r = run_loopwatch(["check", "--pid", str(t.pid), "--format", "json"])
            self.assertEqual(r.returncode, 0, r.stderr)
            info = json.loads(r.stdout)
            self.assertEqual(info["runtime"], "node", info)
            lw = Loopwatch(t.pid, ["-q"], tmp=t.tmp)
            lw.wait_started()
            t.go()
            self.assertEqual(t.wait(60), 0, t.stderr())
            self.assertEqual(lw.wait(30), 0, lw.stderr())
        finally:
            t.kill()
        truth = {x["event"]: x for x in t.truth() if "event" in x}
        self.assertEqual(lw.records("start")[0]["runtime"], "node")
        ticks = lw.records("slow_tick")
        # the 200 ms timer callback: a slow iteration at least that long, mostly on CPU
        spin = [r for r in ticks if r["cpu_ms"] >= 0.8 * truth["spin"]["ms"]]
        self.assertEqual(len(spin), 1, ticks)
        self.assertGreaterEqual(spin[0]["busy_ms"], truth["spin"]["ms"] - 0.5)
        self.assertLess(spin[0]["busy_ms"], truth["spin"]["ms"] + 50)
        if "phases from its symbols" in info["runtime_why"]:
            # on a miss, how its stack was taken and unwound (seen once under load here)
            self.assertEqual(spin[0]["phase"], "timers",
                             {k: spin[0].get(k) for k in ("stack_kind", "stack_incomplete",
                                                          "native_stack_incomplete", "slowest",
                                                          "native_stack", "cpu_ms", "runq_ms")})
            cb = [r for r in lw.records("slow_callback") if not r["in_progress"]]
            # on a miss, what the slow iteration's stack named (CI once: none, stop 29)
            self.assertEqual(len(cb), 1, (cb, {k: spin[0].get(k) for k in (
                "slowest", "stack_kind", "stack_incomplete", "native_stack_incomplete",
                "native_stack", "stack")}))
            self.assertEqual(cb[0]["callback"]["qualname"], "spinTimer")
            self.assertEqual(os.path.realpath(cb[0]["callback"]["file"]), os.path.realpath(NODE_JS))
            # the innermost frame of the program's own (Node's performance.now() internals
            # may sit inside it: the CPU stack is the majority sample now, not the last)
            own = [f for f in cb[0]["stack"] if not (f["file"] or "node:").startswith("node:")]
            self.assertEqual(own[0]["function"], "spinTimer", cb[0]["stack"])
        # readFileSync on a FIFO: blocking calls on the main thread, with the path
        blk = [b for b in lw.records("blocking_call") if b["target"] == truth["fifo"]["path"]]
        self.assertTrue(blk, lw.records("blocking_call"))
        self.assertIn(blk[0]["syscall"], ("openat", "read"))
        self.assertEqual(blk[0]["tid"], t.pid)
        self.assertGreaterEqual(sum(b["duration_ms"] for b in blk), 0.8 * truth["fifo"]["ms"])


class NativeLoops(unittest.TestCase):
    def run_native(self, name):
        t = Target([os.path.join(BUILT_TARGETS, name), "{GO}"])
        try:
            t.wait_ready()
            r = run_loopwatch(["check", "--pid", str(t.pid), "--format", "json"])
            self.assertEqual(r.returncode, 0, r.stderr)
            info = json.loads(r.stdout)
            lw = Loopwatch(t.pid, ["-q"], tmp=t.tmp)
            lw.wait_started()
            t.go()
            self.assertEqual(t.wait(30), 0, t.stderr())
            self.assertEqual(lw.wait(30), 0, lw.stderr())
        finally:
            t.kill()
        truth = [x for x in t.truth() if x.get("event") == "slow"]
        self.assertEqual(len(truth), 2)
        ticks = lw.records("slow_tick")
        self.assertEqual(len(ticks), 2, ticks)
        for tick, tr in zip(ticks, truth):
            self.assertGreaterEqual(tick["busy_ms"], tr["total_ms"] - 0.5)
            self.assertLess(tick["busy_ms"], tr["total_ms"] + 15)
            blocked = {b["syscall"]: b["ms"] for b in tick["blocked"]}
            self.assertAlmostEqual(blocked["clock_nanosleep"], tr["sleep_ms"], delta=10)
            self.assertGreater(tick["cpu_ms"], 0.9 * tr["spin_ms"])
            self.assertTrue(tick["native_stack"])
        blk = lw.records("blocking_call")
        self.assertEqual(len(blk), 2, blk)
        for b, tr in zip(blk, truth):
            self.assertEqual(b["syscall"], "clock_nanosleep")
            self.assertAlmostEqual(b["duration_ms"], tr["sleep_ms"], delta=10)
            self.assertTrue(b["native_stack"])
            self.assertIn("clock_nanosleep", b["native_stack"][0]["symbol"] or "")
        return info, lw

    def test_epoll_generic(self):
        info, lw = self.run_native("epoll_timer")
        self.assertEqual(info["runtime"], "generic")
        self.assertEqual(lw.records("start")[0]["runtime"], "generic")
        self.assertEqual(lw.records("slow_tick")[0]["poll"], "epoll_wait")
        # frame pointers in the program: its own functions are named
        syms = [f["symbol"] for f in lw.records("blocking_call")[0]["native_stack"]]
        self.assertIn("main", syms)

    def test_libuv(self):
        info, lw = self.run_native("uv_timer")
        self.assertEqual(info["runtime"], "libuv")
        self.assertIn("uv_", info["runtime_why"])


if __name__ == "__main__":
    unittest.main()


UV_BUILTINS = r"""
import asyncio, os, sys, time
import uvloop

class Thing:
    pass

async def main():
    loop = asyncio.get_running_loop()
    print("ready", flush=True)
    while not os.path.exists(sys.argv[1]):
        await asyncio.sleep(0.01)
    for _ in range(50):
        fut = loop.create_future()
        loop.call_soon(fut.set_result, 1)
        loop.call_soon(Thing)
        await fut

uvloop.install()
asyncio.run(main())
"""


class UVLoopBuiltins(unittest.TestCase):
    """Issue 20 #9: precise mode on uvloop named builtin methods and classes scheduled as
    callbacks after their types (builtin_function_or_method, type)."""

    @unittest.skipUnless(have_uvloop(), "python3-uvloop not installed")
    def test_uvloop_precise_builtin_sites(self):
        t = Target([DEBIAN_PYTHON, "-c", UV_BUILTINS, "{GO}"])
        try:
            t.wait_ready()
            lw = Loopwatch(t.pid, ["-q", "--precise"], tmp=t.tmp)
            lw.wait_started()
            t.go()
            self.assertEqual(t.wait(60), 0, t.stderr())
            self.assertEqual(lw.wait(30), 0, lw.stderr())
        finally:
            t.kill()
        sites = {s["qualname"]: s for s in lw.records("summary")[-1]["sites"]}
        self.assertNotIn("builtin_function_or_method", sites)
        self.assertNotIn("type", sites)
        self.assertGreaterEqual(sites["Future.set_result"]["count"], 50, sorted(map(str, sites)))
        self.assertGreaterEqual(sites["Thing"]["count"], 50, sorted(map(str, sites)))
