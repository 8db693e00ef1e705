"""`loopwatch tasks --pid`: the asyncio Task inventory, read from outside, against what the target
says of itself (asyncio.all_tasks(), names, coroutines, the await chain the interpreter follows
with file:line, get_stack()) and the await edges it built (gather, a Task awaiting a Task,
wait_for, asyncio.wait, TaskGroup), on Debian's stripped python3.11, every pyenv 3.8-3.13 found
and Debian sid's 3.13-3.15 (the chroot lwtest prepares)."""
import json
import os
import re
import subprocess
import time
import unittest

from lwtest import DEBIAN_PYTHON, TARGETS, Loopwatch, Target, marks, run_loopwatch, traced
from lwtest import pythons as all_pythons


def pythons():
    """every CPython lwtest finds: Debian's 3.11, pyenv 3.8-3.13, sid's 3.13-3.15 (3.14 also in
    its own pid namespace)"""
    return all_pythons()

TARGET = os.path.join(TARGETS, "asyncio_tasks.py")

# what the innermost frame of each Task waits in, by construction of the target
AWAITS = {"lock-waiter": "lock", "queue-getter": "queue", "sem-waiter": "semaphore",
          "sleeper": "sleep", "lock-holder": "event", "gatherer": "gather", "awaiter": "task",
          "thread-main": "task", "gather-child-1": "sleep", "tg-parent": "taskgroup",
          "tg-child-2": "taskgroup", "nested-gather": "gather", "dl-a": "task",
          "wait-any": "wait"}


def start(py, *args):
    t = Target([py, TARGET] + [str(a) for a in args])
    t.wait_ready(30)
    truth = t.truth()[0]
    return t, truth


def snapshot(pid, fmt="json"):
    r = run_loopwatch(["tasks", "--pid", str(pid)] + (["--format", "json"] if fmt == "json" else []))
    if r.returncode != 0:
        raise AssertionError("loopwatch tasks exited %d: %s" % (r.returncode, r.stderr))
    return json.loads(r.stdout) if fmt == "json" else r.stdout


class Tasks(unittest.TestCase):
    def check_python(self, label, py, *args):
        t, truth = start(py, *args)
        try:
            rec = snapshot(t.pid)
        finally:
            t.kill()
        self.assertEqual(rec["type"], "tasks")
        self.assertEqual(rec["pid"], t.pid)
        self.assertIs(rec["stopped"], False)
        got = {x["name"]: x for x in rec["tasks"]}
        want = {}
        for tid, tasks in truth["views"].items():
            for v in tasks:
                v["tid"] = int(tid)
                want[v["name"]] = v
        # the same set of Tasks, by name
        self.assertEqual(sorted(got), sorted(want))
        for name, w in want.items():
            g = got[name]
            with self.subTest(python=label, task=name):
                self.assertEqual(g["coro"], w["coro"])
                self.assertEqual(g["state"], w["state"])
                self.assertEqual(g["tid"], w["tid"])
                stack = [(f["qualname"], f["file"], f["line"]) for f in g["stack"]]
                self.assertEqual(stack, [(f["qualname"], f["file"], f["line"]) for f in w["stack"]])
                # get_stack() gives the Task's own coroutine frame: our outermost one
                self.assertEqual([g["stack"][-1]["file"], g["stack"][-1]["line"]],
                                 w["get_stack"][-1])
                if name in AWAITS:
                    self.assertEqual(g["awaits"]["kind"], AWAITS[name])
        # the await edges, exactly as built
        ids = {x["id"]: x["name"] for x in rec["tasks"]}
        edges = sorted((x["name"], ids.get(a["id"], a["id"]), a["via"])
                       for x in rec["tasks"] for a in x["awaited_by"])
        self.assertEqual(edges, sorted(tuple(e) for e in truth["edges"]), label)
        # a Task awaited directly names it
        self.assertEqual(ids[got["awaiter"]["awaits"]["task"]], "awaited")
        # the deadlock: exactly the two Tasks that await each other
        self.assertEqual(sorted(x["name"] for x in rec["tasks"] if x.get("deadlock")),
                         ["dl-a", "dl-b"])
        self.assertEqual(rec["deadlocked"], 2)
        # both loops, each on its thread
        self.assertEqual(sorted(l["tid"] for l in rec["loops"]),
                         sorted(int(k) for k in truth["views"]))

    def test_inventory_matches_the_targets_own_view(self):
        found = pythons()
        if not found:
            self.skipTest("no CPython found")
        for label, py in found:
            with self.subTest(python=label):
                self.check_python(label, py)

    def test_running_task(self):
        """The loop blocked inside a Task: that Task is running, at the line where it blocks"""
        label, py = pythons()[0]
        t, truth = start(py, "block")
        try:
            deadline = time.time() + 10
            while "blocking" not in t.stdout() and time.time() < deadline:
                time.sleep(0.02)
            time.sleep(0.1)
            rec = snapshot(t.pid)
            out = snapshot(t.pid, fmt="text")
        finally:
            t.kill()
        got = {x["name"]: x for x in rec["tasks"]}
        b = got["blocker"]
        self.assertEqual(b["state"], "running")
        self.assertEqual([(f["qualname"], f["file"], f["line"]) for f in b["stack"]],
                         [("blocker", TARGET, marks(TARGET)["block"])])
        self.assertEqual([x["name"] for x in rec["tasks"] if x["state"] == "running"], ["blocker"])
        self.assertIn("DEADLOCK: 2 Tasks await each other", out)

    def test_uvloop(self):
        r = subprocess.run([DEBIAN_PYTHON, "-c", "import uvloop"], capture_output=True)
        if r.returncode != 0:
            self.skipTest("python3-uvloop not installed")
        self.check_python("debian-uvloop", DEBIAN_PYTHON, "uvloop")

    def test_text_tree_and_table(self):
        label, py = pythons()[0]
        t, truth = start(py)
        try:
            out = snapshot(t.pid, fmt="text")
        finally:
            t.kill()
        self.assertIn("without stopping the process", out)
        lines = out.splitlines()
        # the table has one row per Task, the tree puts children under their awaiter
        row = [l for l in lines if l.split()[2:3] == ["lock-waiter"]]
        self.assertEqual(len(row), 1, out)
        self.assertIn("lock", row[0].split())
        tree = lines[lines.index(next(l for l in lines if l.startswith("Await tree"))):]
        i = next(i for i, l in enumerate(tree) if l.startswith("gatherer "))
        self.assertIn("(gather) gather-child-", tree[i + 1])
        self.assertIn("(gather) gather-child-", tree[i + 2])

    def test_many_tasks(self):
        """500 more Tasks: all of them, quickly"""
        label, py = pythons()[0]
        t, truth = start(py, 500)
        try:
            t0 = time.monotonic()
            rec = snapshot(t.pid)
            wall = time.monotonic() - t0
        finally:
            t.kill()
        want = sum(len(v) for v in truth["views"].values())
        self.assertEqual(rec["count"], want)
        self.assertEqual(rec["skipped"], 0)
        self.assertEqual(len([x for x in rec["tasks"] if x["name"].startswith("extra-")]), 500)
        self.assertLess(rec["read_ms"], 1000.0)
        self.assertLess(wall, 10.0)

    def test_tasks_changing_during_the_read(self):
        """A target that creates and finishes Tasks all the time: every snapshot is whole JSON,
        names only Tasks that exist in it, and skipped (changed under the read) is counted"""
        label, py = pythons()[0]
        t, truth = start(py, "churn")
        known = {v["name"] for vs in truth["views"].values() for v in vs}
        ok = 0
        try:
            for _ in range(15):
                r = run_loopwatch(["tasks", "--pid", str(t.pid), "--format", "json"])
                if r.returncode == 1:
                    self.assertIn("try again", r.stderr)
                    continue
                self.assertEqual(r.returncode, 0, r.stderr)
                rec = json.loads(r.stdout)
                for x in rec["tasks"]:
                    self.assertTrue(x["name"] in known or x["name"].startswith("churn-"),
                                    x["name"])
                    self.assertIn(x["state"], ("pending", "running", "cancelling"))
                self.assertGreaterEqual(rec["skipped"], 0)
                ok += 1
            self.assertIsNone(t.p.poll(), "the target died")
        finally:
            t.kill()
        self.assertGreater(ok, 0)

    def test_not_asyncio(self):
        label, py = pythons()[0]
        t = Target([py, "-c", "import time; print('ready', flush=True); time.sleep(60)"])
        try:
            t.wait_ready()
            r = run_loopwatch(["tasks", "--pid", str(t.pid)])
        finally:
            t.kill()
        self.assertEqual(r.returncode, 1)
        self.assertIn("has not imported asyncio", r.stderr)

    def test_not_python(self):
        t = Target(["sh", "-c", "echo ready; exec sleep 60"])
        try:
            t.wait_ready()
            r = run_loopwatch(["tasks", "--pid", str(t.pid)])
        finally:
            t.kill()
        self.assertEqual(r.returncode, 1)
        self.assertIn("is not a CPython process", r.stderr)
        self.assertNotIn("--runtime", r.stderr)

    def test_usage(self):
        r = run_loopwatch(["tasks"])
        self.assertEqual(r.returncode, 2)
        self.assertIn("tasks needs --pid", r.stderr)


# CPython's own view (3.14+): asyncio.tools, what `python3.X -m asyncio ps PID` prints, as JSON rows
# (tid, task id, name, coroutine stack, awaiter chain, awaiter name, awaiter id)
PS_ROWS = ("import asyncio.tools as t, json, sys; "
           "print(json.dumps(t.build_task_table(t.get_all_awaited_by(int(sys.argv[1])))))")


def oracle(py, args):
    """Run the chroot's own python3.X on a target in the same pid namespace. Its
    _remote_debugging reads /proc/PID/maps, which the chroot lacks, and looks up the files the
    maps name: in a private mount namespace (nothing outside it changes) mount /proc in the
    chroot and make the host path of the chroot resolve inside it."""
    root = py.root
    top = "/" + root.strip("/").split("/")[0]
    sh = ('mount -t proc proc "$R/proc" && mount -t tmpfs tmpfs "$R$T" && mkdir -p "$R$R" && '
          'mount --bind "$R" "$R$R" && exec chroot "$R" "$PY" "$@"')
    r = subprocess.run(["unshare", "--mount", "--propagation", "private", "sh", "-c", sh, "oracle"]
                       + args, capture_output=True, text=True, timeout=120,
                       env=dict(os.environ, R=root, T=top, PY="python3.%d" % py.minor))
    if r.returncode != 0:
        raise AssertionError("%s %s exited %d: %s" % (py.label, args, r.returncode, r.stderr))
    return r.stdout


def pstree_edges(text):
    """(child, parent) Task names and each leaf Task's frames (outermost first) from pstree."""
    edges, leaves, path = set(), {}, []
    for line in text.splitlines():
        m = re.search(r"[└├]── ", line)
        if not m:
            continue
        depth, label = m.start() // 4, line[m.end():].strip()
        del path[depth:]
        path.append(label)
        tasks = [(i, x[4:]) for i, x in enumerate(path) if x.startswith("(T) ")]
        if label.startswith("(T) "):
            if len(tasks) > 1:
                edges.add((tasks[-1][1], tasks[-2][1]))
            leaves.setdefault(tasks[-1][1], [])
        else:
            leaves.setdefault(tasks[-1][1], []).append((depth, label))
    # a Task that awaits others shows only the frames down to them
    parents = {p for _, p in edges}
    return edges, {k: [x for _, x in v] for k, v in leaves.items() if k not in parents}


class Oracle(unittest.TestCase):
    """3.14 and 3.15: the same process read by loopwatch and by the target interpreter's own
    `asyncio ps` / `pstree` (CPython's _remote_debugging): the same Tasks, names, threads,
    coroutine stacks with file:line, awaiters and awaiter chains."""

    def check(self, py):
        t, truth = start(py, "nodl")
        try:
            rec = snapshot(t.pid)
            rows = json.loads(oracle(py, ["-c", PS_ROWS, str(t.pid)]))
            tree = oracle(py, ["-m", "asyncio", "pstree", str(t.pid)])
        finally:
            t.kill()
        ours = {x["id"]: x for x in rec["tasks"]}
        chain = lambda x: " -> ".join(f["qualname"] for f in x["stack"])
        self.assertGreaterEqual(len({r[1] for r in rows}), 20, rows)
        # CPython 3.14.10's ps lists only some threads' Tasks (3.15 lists all): compare those
        tids = {r[0] for r in rows}
        self.assertEqual({r[1] for r in rows}, {i for i, x in ours.items() if x["tid"] in tids})
        for tid, tid_hex, name, stack, achain, aname, aid in rows:
            with self.subTest(python=py.label, task=name):
                g = ours[tid_hex]
                self.assertEqual((g["name"], g["tid"], chain(g)), (name, tid, stack))
                want = {r[6] for r in rows if r[1] == tid_hex and r[6] != "0x0"}
                self.assertEqual({a["id"] for a in g["awaited_by"]}, want)
                if aid != "0x0":
                    self.assertEqual((ours[aid]["name"], chain(ours[aid])), (aname, achain))
        edges, leaves = pstree_edges(tree)
        names = {x["name"]: x for x in ours.values() if x["tid"] in tids}
        self.assertEqual(edges, {(x["name"], ours[a["id"]]["name"])
                                 for x in names.values() for a in x["awaited_by"]})
        self.assertGreaterEqual(len(leaves), 15, tree)
        for name, frames in leaves.items():
            want = ["%s %s:%d" % (f["qualname"], f["file"], f["line"])
                    for f in reversed(names[name]["stack"])]
            self.assertEqual(frames, want, name)

    def test_ps_and_pstree(self):
        found = [(label, py) for label, py in all_pythons() if label in ("sid-3.14", "sid-3.15")]
        if not found:
            self.skipTest("no sid CPython 3.14/3.15 (the chroot is not prepared)")
        for label, py in found:
            with self.subTest(python=label):
                self.check(py)


CHAIN_TARGET = os.path.join(TARGETS, "asyncio_await_chain.py")


class AwaitChain(unittest.TestCase):
    """A slow Task step's record names the Tasks it holds up: who awaits it (gather, a TaskGroup)
    and who awaits that one, as the target built them (read at record time)."""

    def test_slow_callback_await_chain(self):
        found = [(label, py) for label, py in all_pythons()
                 if any(v in label for v in ("debian", "3.8", "3.12", "sid-3.14", "sid-3.15"))
                 and not label.endswith("-ns")]
        for label, py in found:
            with self.subTest(python=label):
                t, lw = traced([py, CHAIN_TARGET, "{GO}"], ["-t", "50ms", "-q"], timeout=60)
                want = t.truth()[-1]["chains"]
                got = {}
                for r in lw.records("slow_callback"):
                    if not r["in_progress"] and r["callback"].get("task_name") in want:
                        got[r["callback"]["task_name"]] = [[l["name"], l["via"]]
                                                           for l in r.get("await_chain", [])]
                self.assertEqual(got, want)


class StuckTasks(unittest.TestCase):
    """The live mode's periodic inventory: every Task of the target holds still at one await,
    so each is a stuck_task record once the threshold passes (once: it stays at that await),
    with the await chain the target itself sees; the two Tasks awaiting each other say
    deadlock. Debian's 3.11 (the WeakSet) and sid's 3.14 (the threads' Task lists)."""

    def test_stuck_task_records(self):
        found = [(label, py) for label, py in all_pythons() if label in ("debian-3.11", "sid-3.14")]
        for label, py in found:
            with self.subTest(python=label):
                t, truth = start(py)
                try:
                    lw = Loopwatch(t.pid, ["--stuck-after", "1s", "--stuck-every", "300ms"],
                                   tmp=t.tmp)
                    lw.wait_started()
                    want = {v["name"]: v for vs in truth["views"].values() for v in vs}
                    deadline = time.time() + 20
                    while len(lw.records("stuck_task")) < len(want) and time.time() < deadline:
                        time.sleep(0.2)
                    time.sleep(0.7)  # one more round: nothing is reported twice
                finally:
                    t.kill()
                lw.wait(30)
                recs = lw.records("stuck_task")
                names = [r["task"]["name"] for r in recs]
                self.assertEqual(sorted(names), sorted(want))
                for r in recs:
                    w = want[r["task"]["name"]]
                    self.assertGreaterEqual(r["pending_ms"], 1000.0)
                    self.assertEqual([(f["qualname"], f["file"], f["line"]) for f in r["stack"]],
                                     [(f["qualname"], f["file"], f["line"]) for f in w["stack"]])
                    self.assertEqual(r["deadlock"], r["task"]["name"] in ("dl-a", "dl-b"))
                by = {r["task"]["name"]: sorted((a["name"], a["via"]) for a in r["awaited_by"])
                      for r in recs}
                self.assertEqual(by["gather-child-1"], [("gatherer", "gather")])
                self.assertEqual(by["tg-grandchild"], [("tg-child-2", "taskgroup")])
                self.assertEqual(lw.records("summary")[-1]["stuck_tasks"], len(want))
                check_stuck_text(self, lw.stdout(), recs)

    def test_stuck_tasks_daemon(self):
        """loopwatchd with stuck_after (a target's own) and stuck_every ([defaults]): each Task
        of the target is one stuck_task record in NAME.jsonl, but for the rate limit (10 a
        minute per coroutine and frame: 30 extra sleepers share one), and NAME.prom counts
        every one (the deadlocked pair apart) in families promtool accepts."""
        import shutil
        import tempfile
        import uuid
        from test_daemon import Daemon, prom_samples, prom_value, wait_for
        tmp = tempfile.mkdtemp(prefix="lwd-stuck-")
        tag = "lwd-" + uuid.uuid4().hex[:12]
        d = Daemon("[defaults]\nstuck_every = 300ms\n\n[target app]\ncmdline = %s\n"
                   "stuck_after = 1s\n" % tag, tmp, report_extra="formats = jsonl, prometheus\n")
        t = None
        try:
            d.wait_ready()
            t, truth = start(DEBIAN_PYTHON, tag, 30)
            want = {v["name"]: v for vs in truth["views"].values() for v in vs}
            # sleeper() at asyncio.sleep: "sleeper", "thread-sleeper" and the 30 extra
            same = {n for n, v in want.items() if v["coro"] == "sleeper"}
            self.assertEqual(len(same), 32)
            wait_for(lambda: t.pid in d.attached("app"), 20, what="loopwatchd traces the target")
            self.assertEqual(d.target_status("app")["stuck_after_ms"], 1000.0)
            wait_for(lambda: len(d.records("app", "stuck_task", t.pid)) >= len(want) - 22, 20,
                     step=0.2, what="a stuck_task record for each Task but the rate limit's")
            time.sleep(1)  # a few passes more: nothing else comes
            recs = d.records("app", "stuck_task", t.pid)
            names = [r["task"]["name"] for r in recs]
            self.assertEqual(len(names), len(set(names)))
            self.assertEqual(sorted(set(names) - same), sorted(set(want) - same))
            self.assertEqual(len(set(names) & same), 10)
            for r in recs:
                self.assertEqual(r["target_name"], "app")
                self.assertGreaterEqual(r["pending_ms"], 1000.0)
                w = want[r["task"]["name"]]
                self.assertEqual([(f["qualname"], f["line"]) for f in r["stack"]],
                                 [(f["qualname"], f["line"]) for f in w["stack"]])
            dead = sorted(r["task"]["name"] for r in recs if r["deadlock"])
            self.assertEqual(dead, ["dl-a", "dl-b"])

            # the end of the process flushes what the rate limit held back: every Task counts
            t.kill()
            wait_for(lambda: d.records("app", "suppressed", t.pid), 20, step=0.2,
                     what="the suppressed record")
            sup = d.records("app", "suppressed", t.pid)
            self.assertEqual([(x["record_type"], x["count"]) for x in sup], [("stuck_task", 22)])

            def counted():
                s = prom_samples(d.prom("app"))
                return (prom_value(s, "loopwatch_stuck_tasks_total", target="app",
                                   runtime="cpython") == len(want) and
                        prom_value(s, "loopwatch_deadlocked_tasks_total", target="app",
                                   runtime="cpython") == 2)
            wait_for(counted, 10, step=0.2, what="the .prom counters: %s" % d.prom("app"))
            if os.path.exists("/usr/bin/promtool"):
                r = subprocess.run(["/usr/bin/promtool", "check", "metrics"],
                                   input=d.prom("app"), capture_output=True, text=True,
                                   timeout=30)
                self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        finally:
            if t:
                t.kill()
            d.kill()
            shutil.rmtree(tmp, ignore_errors=True)


def check_stuck_text(test, text, recs):
    """The live text: one headline per stuck_task record, naming the Task, its coroutine,
    what it awaits and who awaits it, with the frame it waits at; a deadlock says so."""
    heads = [l for l in text.splitlines() if " at the same await" in l]
    test.assertEqual(len(heads), len(recs), text)
    for r in recs:
        line = [l for l in heads if "Task '%s' (%s)" % (r["task"]["name"], r["task"]["coro"]) in l]
        test.assertEqual(len(line), 1, (r["task"]["name"], heads))
        line = line[0]
        test.assertEqual("deadlock: " in line and line.startswith("ERROR "), r["deadlock"], line)
        if r["awaits"]:
            test.assertIn("awaiting " + r["awaits"]["what"], line)
        for a in r["awaited_by"]:
            test.assertIn("Task '%s' (%s)" % (a["name"] or a["id"], a["via"]), line)
        top = r["stack"][0]
        test.assertIn("waiting at  %s (%s:%d)" % (top["qualname"], os.path.basename(top["file"]),
                                                  top["line"]), text)


if __name__ == "__main__":
    unittest.main()
