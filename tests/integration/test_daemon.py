"""loopwatchd, the service: a temp config; targets started before and after it; the report files
and what is in them (JSONL and Prometheus); SIGHUP after logrotate renamed a file; SIGTERM
flushes and exits 0; restarts and exec; invalid configs; an unwritable report dir (and least
privilege); many short-lived processes; 100 processes at once; `loopwatch status`; systemd's
notify protocol; `make install` and the unit file. Targets run on Debian's python3.11 and are
matched by a token only this run uses, so nothing else on the host is traced."""
import glob
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import threading
import time
import unittest
import uuid

from lwtest import DEBIAN_PYTHON, LOOPWATCH, LOOPWATCHD, ROOT, TARGETS, marks

APP = os.path.join(TARGETS, "daemon_app.py")
BLOCK_LINE = marks(APP)["block"]
NEEDED_CAPS = ["bpf", "perfmon", "sys_admin", "sys_ptrace", "sys_resource", "dac_read_search"]


def wait_for(pred, timeout=15, step=0.05, what="condition"):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    raise AssertionError("timed out waiting for %s" % what)


def read_jsonl(path):
    out = []
    try:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line:
                    try:
                        out.append(json.loads(line))
                    except ValueError:
                        pass  # a line being written
    except FileNotFoundError:
        pass
    return out


def prom_samples(text):
    """{(name, frozenset(labels)): value} of a Prometheus text file"""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^(\w+)\{(.*)\} (\S+)$', line)
        assert m, "not a sample line: %r" % line
        labels = frozenset(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(2)))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def prom_value(samples, name, **labels):
    want = set((k, str(v)) for k, v in labels.items())
    vals = [v for (n, ls), v in samples.items() if n == name and want <= ls]
    return sum(vals) if vals else None


class App:
    """daemon_app.py with its control directory"""

    def __init__(self, tag, args=(), tmp=None):
        self.ctl = tempfile.mkdtemp(prefix="lwd-app-", dir=tmp)
        self.out = os.path.join(self.ctl, "stdout")
        self.p = subprocess.Popen([DEBIAN_PYTHON, APP, tag, self.ctl] + list(args),
                                  stdout=open(self.out, "w"), stderr=subprocess.STDOUT)
        self.pid = self.p.pid
        self.nblocks = 0

    def text(self):
        with open(self.out) as f:
            return f.read()

    def wait_ready(self, timeout=20):
        wait_for(lambda: "ready" in self.text() or self.p.poll() is not None,
                 timeout, what="target ready")
        if self.p.poll() is not None:
            raise RuntimeError("target exited early: %s" % self.text())

    def block(self):
        """one 300 ms block of the loop; returns when the target says it is done"""
        self.nblocks += 1
        n = self.nblocks
        open(os.path.join(self.ctl, "block-%d" % n), "w").close()
        wait_for(lambda: '"block": %d' % n in self.text(), 20, what="block %d" % n)

    def stop(self):
        if self.p.poll() is None:
            open(os.path.join(self.ctl, "stop"), "w").close()
            self.p.wait(20)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()


class Daemon:
    """loopwatchd with a temp config, its report dir and control socket; systemd's notify
    socket faked with a datagram socket."""

    def __init__(self, body, tmp, env=None, argv_prefix=(), report_dir=None, report_extra="",
                 start=True):
        self.tmp = tmp
        self.dir = report_dir or os.path.join(tmp, "reports")
        self.sock = os.path.join(tmp, "control.sock")
        self.conf = os.path.join(tmp, "loopwatch.conf")
        with open(self.conf, "w") as f:
            f.write("[report]\ndir = %s\nsummary_interval = 1s\n%s\n[daemon]\n"
                    "control_socket = %s\n\n" % (self.dir, report_extra, self.sock))
            f.write(body)
        self.notify_path = os.path.join(tmp, "notify.sock")
        self.notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.notify.bind(self.notify_path)
        self.notify.settimeout(0.2)
        self.messages = []
        # systemd reads its notify socket all the time; so must we (sd_notify blocks when the
        # socket's queue is full)
        self.closing = False
        self.reader = threading.Thread(target=self._read_notify, daemon=True)
        self.reader.start()
        self.env = dict(os.environ, NOTIFY_SOCKET=self.notify_path, WATCHDOG_USEC="1000000")
        self.env.pop("WATCHDOG_PID", None)
        self.env.pop("JOURNAL_STREAM", None)
        if env:
            self.env.update(env)
        self.stderr_path = os.path.join(tmp, "loopwatchd.stderr")
        self.argv = list(argv_prefix) + [LOOPWATCHD, "--config", self.conf]
        self.p = None
        if start:
            self.start()

    def start(self):
        self.p = subprocess.Popen(self.argv, env=self.env, stdout=subprocess.DEVNULL,
                                  stderr=open(self.stderr_path, "w"))

    def stderr(self):
        with open(self.stderr_path) as f:
            return f.read()

    def _read_notify(self):
        while not self.closing:
            try:
                self.messages.extend(self.notify.recv(4096).decode().splitlines())
            except socket.timeout:
                pass
            except OSError:
                return

    def poll_notify(self):
        return list(self.messages)

    def wait_ready(self, timeout=30):
        def ready():
            if self.p.poll() is not None:
                raise AssertionError("loopwatchd exited %s: %s" % (self.p.returncode,
                                                                    self.stderr()))
            return "READY=1" in self.poll_notify()
        wait_for(ready, timeout, what="READY=1")

    def status(self):
        r = subprocess.run([LOOPWATCH, "status", self.sock, "--format", "json"],
                           capture_output=True, text=True, timeout=20)
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    def target_status(self, name):
        return [t for t in self.status()["targets"] if t["name"] == name][0]

    def attached(self, name):
        return sorted(p["pid"] for p in self.target_status(name)["processes"])

    def records(self, name, type_=None, pid=None):
        recs = read_jsonl(os.path.join(self.dir, name + ".jsonl"))
        return [r for r in recs if (type_ is None or r["type"] == type_) and
                (pid is None or r["pid"] == pid)]

    def prom(self, name):
        try:
            with open(os.path.join(self.dir, name + ".prom")) as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def stop(self, sig=signal.SIGTERM, timeout=60):
        if self.p.poll() is None:
            self.p.send_signal(sig)
        return self.p.wait(timeout)

    def kill(self):
        if self.p and self.p.poll() is None:
            self.p.kill()
            self.p.wait()
        self.closing = True
        self.reader.join(5)
        self.notify.close()


class DaemonTest(unittest.TestCase):
    maxDiff = None

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="lwd-")
        self.tag = "lwd-" + uuid.uuid4().hex[:12]
        self.apps = []
        self.daemons = []

    def tearDown(self):
        for a in self.apps:
            a.kill()
        for d in self.daemons:
            d.kill()
        if os.environ.get("LW_KEEP_TMP"):  # debugging: keep the configs, reports, logs
            print("kept", self.tmp)
        else:
            shutil.rmtree(self.tmp, ignore_errors=True)

    def app(self, *args, tag=None):
        a = App(tag or self.tag, args, tmp=self.tmp)
        self.apps.append(a)
        return a

    def daemon(self, body, **kw):
        d = Daemon(body, self.tmp, **kw)
        self.daemons.append(d)
        return d


class Service(DaemonTest):
    def test_targets_before_and_after_reports_hup_term(self):
        """The main path: a process running before the daemon and one started after it are
        both traced; their slow callbacks land in NAME.jsonl and NAME.prom; another target's
        go to its own files; SIGHUP after a rename writes a new file; the watchdog is fed;
        SIGTERM writes the final records and exits 0."""
        other_tag = "lwo-" + uuid.uuid4().hex[:12]
        before = self.app()
        before.wait_ready()
        other = self.app(tag=other_tag)
        other.wait_ready()
        d = self.daemon("[defaults]\nthreshold = 50ms\n\n"
                        "[target app]\ncmdline = %s\nexe = %s\n\n"
                        "[target other]\ncmdline = %s\nthreshold = 200ms\n"
                        % (self.tag, DEBIAN_PYTHON, other_tag))
        d.wait_ready()
        # READY=1 comes after the first attach pass: the running process is attached already
        self.assertEqual(d.attached("app"), [before.pid])
        self.assertEqual(d.attached("other"), [other.pid])
        after = self.app()
        after.wait_ready()
        wait_for(lambda: after.pid in d.attached("app"), 15, what="attach to a new process")
        before.block()
        after.block()
        other.block()

        def slow(pid):
            return [r for r in d.records("app", "slow_callback", pid) if not r["in_progress"]]
        for pid in (before.pid, after.pid):
            recs = wait_for(lambda: slow(pid), 10, what="slow_callback of %d" % pid)
            r = recs[0]
            self.assertEqual(r["target_name"], "app")
            self.assertEqual(r["callback"]["task_name"], "blocker")
            self.assertEqual(r["callback"]["qualname"], "blocker")
            self.assertTrue(r["callback"]["file"].endswith("daemon_app.py"))
            self.assertGreaterEqual(r["duration_ms"], 280)
            self.assertEqual(r["threshold_ms"], 50.0)
            self.assertIn(BLOCK_LINE, [f["line"] for f in r["stack"]])
        # the other target: its own files, its own threshold; nothing of it in app's
        wait_for(lambda: d.records("other", "slow_callback"), 10, what="other's slow_callback")
        self.assertEqual({r["pid"] for r in d.records("other")}, {other.pid})
        self.assertEqual(d.records("other", "start")[0]["threshold_ms"], 200.0)
        self.assertNotIn(other.pid, {r["pid"] for r in d.records("app")})
        self.assertEqual({r["pid"] for r in d.records("app", "start")}, {before.pid, after.pid})
        # the default: fentry where the kernel loads it, else sched where the kernel has
        # uprobe_multi links (here, 6.18), else syscall (tp_btf/sys_exit)
        self.assertIn({r["iterations"]["mode"] for r in d.records("app", "start")},
                      ({"syscall"}, {"fentry"}, {"sched"}))
        # every record carries the schema's common fields
        for r in d.records("app"):
            for k in ("type", "v", "ts", "pid"):
                self.assertIn(k, r)

        # the Prometheus file, after the next summary: by target and site, not by pid
        def prom_has_counts():
            s = prom_samples(d.prom("app"))
            return ((prom_value(s, "loopwatch_slow_callbacks_total", site="blocker") or 0) >= 2 and
                    (prom_value(s, "loopwatch_callback_duration_seconds_count",
                                site="blocker") or 0) >= 2 and s)
        s = wait_for(prom_has_counts, 10, what="slow callbacks in app.prom")
        self.assertGreaterEqual(prom_value(s, "loopwatch_blocking_calls_total", target="app",
                                           runtime="cpython", syscall="clock_nanosleep"), 2)
        self.assertEqual(prom_value(s, "loopwatch_callback_duration_seconds_bucket",
                                    site="blocker", le="0.131072"), 0)
        self.assertGreaterEqual(prom_value(s, "loopwatch_callback_duration_seconds_bucket",
                                           site="blocker", le="0.524288"), 2)
        self.assertIsNotNone(prom_value(s, "loopwatch_loop_utilization", target="app"))
        for p in (before.pid, after.pid):
            self.assertEqual(prom_value(s, "loopwatch_process_info", target="app", pid=p), 1)
        # pid only on the gauge of processes traced now
        self.assertEqual({n for (n, ls), v in s.items() if any(k == "pid" for k, _ in ls)},
                         {"loopwatch_process_info"})
        self.assertEqual(prom_value(s, "loopwatch_target_processes", target="app"), 2)
        text = d.prom("app")
        for fam in ("loopwatch_slow_callbacks_total counter", "loopwatch_blocking_calls_total counter",
                    "loopwatch_callback_duration_seconds histogram", "loopwatch_loop_utilization gauge"):
            self.assertIn("# TYPE " + fam, text)
        # host-wide counters once, in their own file
        with open(os.path.join(d.dir, "loopwatchd.prom")) as f:
            host = f.read()
        self.assertRegex(host, r"(?m)^loopwatch_lost_events_total \d+$")
        self.assertRegex(host, r"(?m)^loopwatch_read_errors_total \d+$")
        self.assertNotIn("lost_events", text)
        # files: 0640 at most, no temp file left, no world access
        for f in os.listdir(d.dir):
            mode = stat.S_IMODE(os.lstat(os.path.join(d.dir, f)).st_mode)
            self.assertEqual(mode & 0o137, 0, "%s has mode %o" % (f, mode))
            self.assertFalse(f.endswith(".tmp"), f)

        # status: what it is attached to, counts
        st = d.status()
        self.assertEqual(st["processes"], 3)
        app = d.target_status("app")
        self.assertEqual(app["threshold_ms"], 50.0)
        self.assertGreaterEqual(app["slow_callbacks"], 2)
        self.assertEqual(app["write_errors"], 0)
        for p in app["processes"]:
            self.assertGreaterEqual(p["slow_callbacks"], 1)
        self.assertEqual(st["lost_events"], 0)
        text = subprocess.run([LOOPWATCH, "status", d.sock], capture_output=True, text=True)
        self.assertEqual(text.returncode, 0, text.stderr)
        self.assertIn("target app: 2 processes", text.stdout)
        self.assertIn(str(before.pid), text.stdout)

        # logrotate: the file is renamed, SIGHUP, new records go to a new file
        jl = os.path.join(d.dir, "app.jsonl")
        os.rename(jl, jl + ".1")
        n_old = len(read_jsonl(jl + ".1"))
        d.p.send_signal(signal.SIGHUP)
        wait_for(lambda: os.path.exists(jl), 10, what="app.jsonl reopened")
        after.block()
        wait_for(lambda: [r for r in read_jsonl(jl) if r["type"] == "slow_callback" and
                          r["pid"] == after.pid], 10, what="a slow_callback in the new file")
        self.assertEqual(len(read_jsonl(jl + ".1")), n_old, "records went to the renamed file")

        # a target that exits: detached, its final summary and end
        before.stop()
        wait_for(lambda: d.records("app", "end", before.pid), 10, what="end of %d" % before.pid)
        self.assertEqual(d.records("app", "end", before.pid)[0]["reason"], "target_exited")
        self.assertTrue(d.records("app", "summary", before.pid)[-1]["final"])
        wait_for(lambda: before.pid not in d.attached("app"), 5, what="detach")

        # systemd: READY, STATUS, WATCHDOG (every WATCHDOG_USEC / 2)
        msgs = d.poll_notify()
        self.assertTrue([m for m in msgs if m.startswith("STATUS=") and "processes traced" in m], msgs)
        self.assertIn("WATCHDOG=1", msgs)

        # SIGTERM: final summary and end for the live ones, .prom written, exit 0
        self.assertEqual(d.stop(signal.SIGTERM), 0, d.stderr())
        wait_for(lambda: "STOPPING=1" in d.poll_notify(), 5, what="STOPPING=1")
        ends = d.records("app", "end", after.pid)
        self.assertEqual(ends[-1]["reason"], "signal")
        self.assertTrue(d.records("app", "summary", after.pid)[-1]["final"])
        self.assertEqual(d.records("other", "end")[-1]["reason"], "signal")
        s = prom_samples(d.prom("app"))
        self.assertGreaterEqual(prom_value(s, "loopwatch_slow_callbacks_total", site="blocker"), 2)
        self.assertIsNone(prom_value(s, "loopwatch_process_info"))  # none traced now
        self.assertFalse(os.path.exists(d.sock), "control socket left behind")
        # the targets are unharmed
        after.stop()
        self.assertEqual(after.p.returncode, 0)

    def test_restart_and_exec(self):
        """A service restarted (a new process) is attached again; a traced process that execs
        the same program is followed (same pid, a new start record), one that execs something
        the target does not name is dropped."""
        d = self.daemon("[target app]\ncmdline = %s\nthreshold = 50ms\n" % self.tag)
        d.wait_ready()
        first = self.app("--reexec")
        first.wait_ready()
        wait_for(lambda: first.pid in d.attached("app"), 15, what="attach")
        first.block()     # then it execs itself
        wait_for(lambda: len(d.records("app", "start", first.pid)) == 2, 15, what="re-attach after exec")
        self.assertEqual(d.records("app", "end", first.pid)[0]["reason"], "target_exec")
        wait_for(lambda: "ready" in first.text().split('"block": 1')[-1], 10,
                 what="the new image ready")
        first.block()
        wait_for(lambda: [r for r in d.records("app", "slow_callback", first.pid)
                          if r["ts"] > d.records("app", "start", first.pid)[1]["ts"] and
                          not r["in_progress"]], 10, what="slow callback after exec")
        # a restart: the process exits, a new one starts
        first.stop()
        wait_for(lambda: first.pid not in d.attached("app"), 10, what="detach")
        second = self.app()
        second.wait_ready()
        wait_for(lambda: second.pid in d.attached("app"), 15, what="attach after restart")
        second.block()
        wait_for(lambda: [r for r in d.records("app", "slow_callback", second.pid)
                          if not r["in_progress"]], 10, what="slow callback after restart")
        # an exec into a program the target does not match: detached, not traced further
        third = subprocess.Popen([DEBIAN_PYTHON, "-c",
                                  "import os,sys,time; print('ready', flush=True); time.sleep(2); "
                                  "os.execv('/bin/sleep', ['/bin/sleep', '30'])", self.tag],
                                 stdout=subprocess.PIPE)
        try:
            wait_for(lambda: third.pid in d.attached("app"), 15, what="attach to the exec-er")
            wait_for(lambda: d.records("app", "end", third.pid), 20, what="detach at exec")
            time.sleep(1.5)
            self.assertNotIn(third.pid, d.attached("app"))
            self.assertEqual(d.records("app", pid=third.pid)[-1]["type"], "end")
            # its new image was never attached (it was, for a second or more under load, with
            # a start record, before the daemon saw it did not match and detached it again)
            self.assertEqual(len(d.records("app", "start", third.pid)), 1,
                             d.records("app", pid=third.pid))
        finally:
            third.kill()
            third.wait()
        self.assertEqual(d.stop(), 0, d.stderr())

    def test_pidfile_and_cgroup_matchers(self):
        """A pid file written after the exec (the daemon checks pid files every second) and a
        cgroup prefix, each combined with a command-line token."""
        pidfile = os.path.join(self.tmp, "svc.pid")
        with open("/proc/self/cgroup") as f:
            cg = [l.split("::", 1)[1].strip() for l in f if l.startswith("0::")][0]
        cg_tag = "lwc-" + uuid.uuid4().hex[:12]
        d = self.daemon("[target pf]\npidfile = %s\nexe = %s\n\n"
                        "[target cg]\ncgroup = %s\ncmdline = %s\n" % (pidfile, DEBIAN_PYTHON, cg, cg_tag))
        d.wait_ready()
        a = self.app("--pidfile", pidfile)
        b = self.app(tag=cg_tag)
        a.wait_ready()
        b.wait_ready()
        wait_for(lambda: d.attached("pf") == [a.pid], 15, what="attach by pid file")
        wait_for(lambda: d.attached("cg") == [b.pid], 15, what="attach by cgroup")
        self.assertEqual(d.records("pf", "start")[0]["target_name"], "pf")
        # status is for root only
        if shutil.which("setpriv"):
            os.chmod(self.tmp, 0o755)
            r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                LOOPWATCH, "status", d.sock], capture_output=True, text=True,
                               timeout=30)
            self.assertEqual(r.returncode, 1)
            self.assertIn("needs root", r.stderr)
        self.assertEqual(d.stop(), 0, d.stderr())

    def test_many_short_lived(self):
        """Processes that come and go quickly, some before they could be attached: the daemon
        stays up and consistent (every start has its end, nothing pending, no error), the
        longer-lived ones were traced, and the JSONL file rotated by size along the way."""
        d = self.daemon("[target app]\ncmdline = %s\nasyncio_hooks = no\n" % self.tag,
                        report_extra="rotate_size = 16k\nrotate_keep = 100\n")
        d.wait_ready()
        procs = []
        for wave in range(4):
            for i in range(10):
                # the short ones die at once, or about when their attach completes
                life = ("0.05" if i % 4 == 1 else "0.35") if i % 2 else "2.5"
                procs.append(self.app("--exit-after", life, "--poll", "0.05"))
            time.sleep(0.3)
        for a in procs:
            a.p.wait(60)
        long_pids = {a.pid for i, a in enumerate(procs) if (i % 10) % 2 == 0}

        def settled():
            t = d.target_status("app")
            return not t["processes"] and not t["pending"]
        wait_for(settled, 20, what="every process detached")
        st = d.status()
        self.assertEqual(st["errors"], [], st["errors"])
        self.assertEqual(st["processes"], 0)
        self.assertEqual(d.stop(), 0, d.stderr())
        files = glob.glob(os.path.join(d.dir, "app.jsonl*"))
        self.assertGreater(len(files), 1, "app.jsonl never rotated")
        for f in files:
            self.assertLess(os.path.getsize(f), 16 * 1024 + 8192, f)
        recs = [r for f in files for r in read_jsonl(f)]
        starts = {r["pid"] for r in recs if r["type"] == "start"}
        ends = {r["pid"] for r in recs if r["type"] == "end"}
        self.assertEqual(starts, ends)
        # a process that exited while it was being attached ended as exited, not as a reused
        # pid (none is reused here: 40 processes; before, a 5-minute churn ended 188 of 466
        # sessions "pid_reused")
        reasons = [r["reason"] for r in recs if r["type"] == "end"]
        self.assertNotIn("pid_reused", reasons, reasons)
        # (all of them but on a loaded machine: 40 interpreters start on 2 cores here)
        self.assertGreaterEqual(len(starts & long_pids), len(long_pids) * 3 // 4,
                                "too few of the 2.5 s processes were traced")
        self.assertTrue(starts <= {a.pid for a in procs})

    def test_prefork_workers(self):
        """A pre-fork server (gunicorn's model): the master is traced when the daemon starts,
        its workers are forked afterwards and never exec; they are found and traced too, and
        each one's blocked loop is reported under its own pid. The master's end record and
        every worker's carry the target's name."""
        master = self.app("--prefork", "2")
        wait_for(lambda: "master" in master.text(), 20, what="master up")
        d = self.daemon("[target web]\ncmdline = %s\n" % self.tag)
        d.wait_ready()
        self.assertEqual(d.attached("web"), [master.pid])
        open(os.path.join(master.ctl, "fork"), "w").close()
        def forked():
            # the master's line, whole (a worker may write to the same pipe meanwhile: the
            # line can start after another's text, or be half written when first seen)
            for line in master.text().splitlines():
                i = line.find('{"workers"')
                if i >= 0:
                    try:
                        return json.loads(line[i:])["workers"]
                    except ValueError:
                        pass
            return None
        wait_for(lambda: forked() is not None, 20, what="workers forked")
        workers = forked()
        wait_for(lambda: d.attached("web") == sorted([master.pid] + workers), 20,
                 what="workers attached")
        master.block()
        wait_for(lambda: master.text().count('"block": 1') == 2, 20, what="both workers blocked")
        wait_for(lambda: {r["pid"] for r in d.records("web", "slow_callback")
                          if not r["in_progress"]} >= set(workers), 20,
                 what="a slow callback from each worker")
        for w in workers:
            rec = [r for r in d.records("web", "slow_callback", pid=w) if not r["in_progress"]][0]
            self.assertEqual(rec["callback"]["task_name"], "blocker")
            self.assertEqual(rec["target_name"], "web")
            self.assertGreater(rec["duration_ms"], 250)
        self.assertGreater(d.status()["forks_seen"], 0)
        master.stop()
        wait_for(lambda: not d.attached("web"), 20, what="all detached")
        ends = d.records("web", "end")
        self.assertEqual({r["pid"] for r in ends}, {master.pid, *workers})
        self.assertTrue(all(r["target_name"] == "web" for r in ends), ends)
        self.assertEqual(d.stop(), 0, d.stderr())

    def test_noise_keys(self):
        """[defaults] rate_limit: of 5 blocks of one site, 2 records are written and the other
        3 are counted in a suppressed record; the summary counts all 5."""
        d = self.daemon("[defaults]\nrate_limit = 2/1m\nsite_threshold = Other.site=5s\n"
                        "[target app]\ncmdline = %s\n" % self.tag)
        d.wait_ready()
        a = self.app()
        a.wait_ready()
        wait_for(lambda: d.attached("app") == [a.pid], 20, what="attached")
        for _ in range(5):
            a.block()
        # Prometheus counts everything, the suppressed ones too (from the summaries)
        wait_for(lambda: prom_value(prom_samples(d.prom("app")), "loopwatch_slow_callbacks_total",
                                    site="blocker") == 5, 20, what="5 slow callbacks in app.prom")
        a.stop()
        wait_for(lambda: d.records("app", "end", pid=a.pid), 20, what="end record")
        slow = [r for r in d.records("app", "slow_callback", pid=a.pid)
                if not r["in_progress"] and r["callback"]["qualname"] == "blocker"]
        self.assertEqual(len([r for r in slow if not r.get("escalated")]), 2, slow)
        sup = [r for r in d.records("app", "suppressed", pid=a.pid)
               if r["record_type"] == "slow_callback" and r["site"]["qualname"] == "blocker"]
        self.assertEqual(sum(r["count"] for r in sup) + len(slow), 5, sup)
        final = [r for r in d.records("app", "summary", pid=a.pid) if r["final"]][-1]
        site = [x for x in final["sites"] if x["qualname"] == "blocker"][0]
        self.assertEqual(site["count"], 5)
        self.assertEqual(d.stop(), 0, d.stderr())

    def test_iterations_syscall_on_request(self):
        """[daemon] iterations = syscall: tp_btf/sys_exit (the host-wide tax, said in the start
        record) where the default would be fentry or sched; slow callbacks are found alike"""
        a = self.app()
        a.wait_ready()
        d = self.daemon("[daemon]\niterations = syscall\n[defaults]\nthreshold = 50ms\n"
                        "[target app]\ncmdline = %s\n" % self.tag)
        d.wait_ready()
        self.assertEqual(d.attached("app"), [a.pid])
        it = d.records("app", "start")[0]["iterations"]
        self.assertEqual(it["mode"], "syscall")
        self.assertNotIn("poll_uprobes", it)
        self.assertIn("every syscall", it["host_cost"])
        a.block()
        wait_for(lambda: [r for r in d.records("app", "slow_callback") if not r["in_progress"]],
                 10, what="a slow_callback with iterations = syscall")

    def test_trace_and_folded_files(self):
        """formats = trace, folded: NAME.trace.json and NAME.folded appear and follow the
        JSONL file, each block of the target's loop in them with its duration."""
        d = self.daemon("[target app]\ncmdline = %s\n" % self.tag,
                        report_extra="formats = jsonl, prometheus, trace, folded\n")
        d.wait_ready()
        a = self.app()
        a.wait_ready()
        wait_for(lambda: d.attached("app") == [a.pid], 20, what="attached")
        a.block()
        a.block()
        truth = [json.loads(l) for l in a.text().splitlines() if l.startswith('{"block"')]
        trace_path = os.path.join(d.dir, "app.trace.json")
        folded_path = os.path.join(d.dir, "app.folded")

        def blocks_in_trace():
            try:
                with open(trace_path) as f:
                    tr = json.load(f)
            except (OSError, ValueError):
                return []
            evs = tr["traceEvents"] if isinstance(tr, dict) else tr
            return [e for e in evs if e.get("ph") == "X" and "blocker" in e.get("name", "")
                    and e.get("pid") == a.pid]
        wait_for(lambda: len(blocks_in_trace()) == 2, 20, what="both blocks in app.trace.json")
        for ev, t in zip(sorted(blocks_in_trace(), key=lambda e: e["ts"]), truth):
            self.assertAlmostEqual(ev["dur"] / 1000.0, t["ms"], delta=30)
        with open(folded_path) as f:
            lines = [l.rsplit(" ", 1) for l in f.read().splitlines() if "blocker" in l]
        self.assertTrue(lines)
        # wall time: both blocks (µs), however the stacks split them
        total_us = sum(int(v) for _, v in lines)
        self.assertAlmostEqual(total_us / 1000.0, sum(t["ms"] for t in truth), delta=60)
        self.assertTrue(any(l[0].endswith("block") or "time.sleep" in l[0] or "clock_nanosleep" in l[0]
                            for l in lines), lines)
        st = os.stat(trace_path)
        self.assertEqual(st.st_mode & 0o777, 0o640)
        a.stop()
        self.assertEqual(d.stop(), 0, d.stderr())

    def test_hundred_processes(self):
        """100 traced processes at once: one set of BPF programs, every one attached and
        reported, then all detached."""
        apps = [self.app("--poll", "0.25") for _ in range(100)]
        for a in apps:
            a.wait_ready(60)
        d = self.daemon("[target many]\ncmdline = %s\nasyncio_hooks = no\n" % self.tag)
        d.wait_ready(60)
        self.assertEqual(d.attached("many"), sorted(a.pid for a in apps))
        wait_for(lambda: prom_samples(d.prom("many")), 10, what="many.prom")
        wait_for(lambda: prom_value(prom_samples(d.prom("many")), "loopwatch_target_processes") == 100,
                 10, what="100 processes in many.prom")
        for a in apps[:50]:
            a.stop()
        wait_for(lambda: len(d.attached("many")) == 50, 20, what="50 detached")
        self.assertEqual(d.stop(), 0, d.stderr())
        self.assertEqual({r["pid"] for r in d.records("many", "end")}, {a.pid for a in apps})
        self.assertEqual(len(d.records("many", "start")), 100)


class Config(DaemonTest):
    def run_daemon(self, conf_text, *extra):
        path = os.path.join(self.tmp, "bad.conf")
        with open(path, "w") as f:
            f.write(conf_text)
        return path, subprocess.run([LOOPWATCHD, "--config", path] + list(extra),
                                    capture_output=True, text=True, timeout=30)

    def test_invalid_config(self):
        path, r = self.run_daemon("[report]\ndir = /tmp/x\nsumary_interval = 5s\n\n"
                                  "[target api]\nthreshold = soon\n")
        self.assertEqual(r.returncode, 2)
        self.assertIn("%s:3: unknown key 'sumary_interval' in [report]" % path, r.stderr)
        self.assertIn("%s:6: invalid threshold 'soon'" % path, r.stderr)
        self.assertIn("%s:5: [target api] has no matcher" % path, r.stderr)
        # --check-config: the same verdicts without running
        _, r2 = self.run_daemon("[report]\ndir = /tmp/x\nsumary_interval = 5s\n", "--check-config")
        self.assertEqual(r2.returncode, 2)
        _, r3 = self.run_daemon("[target api]\ncomm = python3\n", "--check-config")
        self.assertEqual(r3.returncode, 0, r3.stderr)
        self.assertIn("valid, 1 targets", r3.stdout)
        r4 = subprocess.run([LOOPWATCHD, "--config", os.path.join(self.tmp, "missing.conf")],
                            capture_output=True, text=True, timeout=30)
        self.assertEqual(r4.returncode, 2)
        self.assertIn("no such file", r4.stderr)
        r5 = subprocess.run([LOOPWATCHD, "--bogus"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r5.returncode, 2)
        # the shipped default config is valid
        r6 = subprocess.run([LOOPWATCHD, "--config", os.path.join(ROOT, "dist", "loopwatch.conf"),
                             "--check-config"], capture_output=True, text=True, timeout=30)
        self.assertEqual(r6.returncode, 0, r6.stderr)

    def test_journal_priorities(self):
        """Under systemd (stderr is the journal's stream) every line has a <N> priority."""
        path = os.path.join(self.tmp, "bad.conf")
        with open(path, "w") as f:
            f.write("[report]\ndir = nowhere\n")
        err = os.path.join(self.tmp, "stderr")
        with open(err, "w") as f:
            st = os.fstat(f.fileno())
            env = dict(os.environ, JOURNAL_STREAM="%d:%d" % (st.st_dev, st.st_ino))
            r = subprocess.run([LOOPWATCHD, "--config", path], stderr=f, env=env, timeout=30)
        self.assertEqual(r.returncode, 2)
        with open(err) as f:
            lines = f.read().splitlines()
        self.assertTrue(lines)
        for line in lines:
            self.assertRegex(line, r"^<3>%s:2: invalid dir" % re.escape(path))

    def test_status_without_daemon(self):
        r = subprocess.run([LOOPWATCH, "status", os.path.join(self.tmp, "none.sock")],
                           capture_output=True, text=True, timeout=30)
        self.assertEqual(r.returncode, 1)
        self.assertIn("is loopwatchd running", r.stderr)


@unittest.skipUnless(shutil.which("setpriv"), "setpriv (util-linux) not installed")
class Privileges(DaemonTest):
    def test_unwritable_report_dir_least_privilege(self):
        """With only the unit's capabilities (no CAP_DAC_OVERRIDE), a report dir it cannot
        write: the daemon keeps tracing, counts and reports the errors, and once the dir is
        writable again the files come back complete (the counts in memory were kept)."""
        rdir = os.path.join(self.tmp, "reports")
        os.mkdir(rdir)
        os.chmod(rdir, 0o555)   # root's, but not writable without CAP_DAC_OVERRIDE
        d = self.daemon("[target app]\ncmdline = %s\nthreshold = 50ms\n" % self.tag,
                        argv_prefix=["setpriv", "--bounding-set=-all," +
                                     ",".join("+" + c for c in NEEDED_CAPS), "--inh-caps=-all"])
        d.wait_ready()
        a = self.app()
        a.wait_ready()
        wait_for(lambda: a.pid in d.attached("app"), 15, what="attach without the report dir")
        a.block()
        t = wait_for(lambda: (lambda t: t if t["write_errors"] and t["slow_callbacks"] else None)(
            d.target_status("app")), 10, what="write errors counted")
        self.assertIn("Permission denied", t["last_error"])
        self.assertTrue([e for e in d.status()["errors"] if "report writes failed" in e["message"]])
        self.assertEqual(d.target_status("app")["processes"][0]["slow_callbacks"], 1)
        self.assertFalse(os.listdir(rdir))
        self.assertIn("report writes failed", d.stderr())
        # the unit's capabilities are enough for the uprobes (asyncio hooks) too
        self.assertNotIn("cannot attach a uprobe", d.stderr())
        # the disk comes back
        os.chmod(rdir, 0o755)
        s = wait_for(lambda: prom_samples(d.prom("app")), 10, what="app.prom after the fix")
        s = wait_for(lambda: (lambda s: s if prom_value(s, "loopwatch_slow_callbacks_total",
                                                        site="blocker") == 1 else None)(
            prom_samples(d.prom("app"))), 10, what="the slow callback in app.prom")
        self.assertGreaterEqual(prom_value(s, "loopwatch_report_write_errors_total"), 1)
        wait_for(lambda: d.records("app", "summary", a.pid), 10, what="summaries in app.jsonl")
        a.stop()
        wait_for(lambda: d.records("app", "end", a.pid), 10, what="end record")
        final = d.records("app", "summary", a.pid)[-1]
        self.assertTrue(final["final"])
        self.assertEqual(final["slow_callbacks"], 1)
        self.assertEqual(d.stop(), 0, d.stderr())

    def test_full_disk(self):
        """A report dir on a full file system: the daemon keeps running and exits 0."""
        rdir = os.path.join(self.tmp, "full")
        os.mkdir(rdir)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16k,mode=0755", "tmpfs", rdir],
                           capture_output=True, text=True)
        if r.returncode:
            self.skipTest("cannot mount a tmpfs: %s" % r.stderr.strip())
        try:
            d = self.daemon("[target app]\ncmdline = %s\nthreshold = 50ms\n" % self.tag,
                            report_dir=rdir)
            d.wait_ready()
            a = self.app()
            a.wait_ready()
            wait_for(lambda: a.pid in d.attached("app"), 15, what="attach")
            for _ in range(3):
                a.block()
            wait_for(lambda: d.target_status("app")["write_errors"], 20, what="ENOSPC counted")
            self.assertIn("No space left", d.target_status("app")["last_error"])
            self.assertEqual(d.target_status("app")["processes"][0]["slow_callbacks"], 3)
            self.assertEqual(d.stop(), 0, d.stderr())
            # what fitted is there: records, maybe one cut by the full disk per attempt
            lines = [l for l in open(os.path.join(rdir, "app.jsonl")).read().splitlines() if l]
            self.assertEqual(json.loads(lines[0])["type"], "start")
        finally:
            for dm in self.daemons:
                dm.kill()
            subprocess.run(["umount", rdir])


class Install(unittest.TestCase):
    def test_make_install_and_unit(self):
        """make install DESTDIR=tmp installs the binaries, the unit (verified by
        systemd-analyze), the default config and the man pages."""
        dest = tempfile.mkdtemp(prefix="lwd-install-")
        try:
            # -o all: install what is built (a plain `make install` would rebuild with other
            # flags over the sanitized build the other tests run)
            r = subprocess.run(["make", "-s", "-o", "all", "-C", ROOT, "install", "DESTDIR=" + dest],
                               capture_output=True, text=True, timeout=600)
            self.assertEqual(r.returncode, 0, r.stderr)
            for f in ("usr/local/sbin/loopwatch", "usr/local/sbin/loopwatchd",
                      "usr/local/lib/systemd/system/loopwatchd.service",
                      "etc/loopwatch/loopwatch.conf", "usr/local/share/man/man8/loopwatch.8",
                      "usr/local/share/man/man8/loopwatchd.8",
                      "usr/local/share/man/man5/loopwatch.conf.5"):
                self.assertTrue(os.path.exists(os.path.join(dest, f)), f)
            unit = open(os.path.join(dest, "usr/local/lib/systemd/system/loopwatchd.service")).read()
            self.assertIn("ExecStart=/usr/local/sbin/loopwatchd", unit)
            self.assertNotIn("@SBINDIR@", unit)
            caps = re.search(r"^CapabilityBoundingSet=(.*)$", unit, re.M).group(1).split()
            self.assertEqual(sorted(caps), sorted(["CAP_BPF", "CAP_PERFMON", "CAP_SYS_ADMIN",
                                                   "CAP_SYS_RESOURCE", "CAP_SYS_PTRACE",
                                                   "CAP_DAC_READ_SEARCH"]))
            for line in ("Type=notify", "ProtectSystem=strict", "PrivateTmp=yes",
                         "NoNewPrivileges=yes", "ReadWritePaths=/var/log/loopwatch",
                         "WatchdogSec=", "SystemCallFilter=@system-service bpf perf_event_open",
                         "SystemCallErrorNumber=EPERM"):
                self.assertRegex(unit, r"(?m)^" + re.escape(line))
            self.assertNotRegex(unit, r"(?m)^(ProtectProc=invisible|ProtectKernelTunables=yes)")
            if not shutil.which("systemd-analyze"):
                self.skipTest("systemd-analyze not installed (apt-get install systemd)")
            # verify the installed unit with the installed binary and man pages
            check = os.path.join(dest, "loopwatchd.service")
            with open(check, "w") as f:
                f.write(unit.replace("/usr/local/sbin/", os.path.join(dest, "usr/local/sbin/")))
            env = dict(os.environ, MANPATH=os.path.join(dest, "usr/local/share/man"))
            v = subprocess.run(["systemd-analyze", "verify", check], capture_output=True,
                               text=True, env=env, timeout=120)
            self.assertEqual(v.returncode, 0, v.stdout + v.stderr)
            # the man pages render without warnings
            for page in glob.glob(os.path.join(dest, "usr/local/share/man/man*/*")):
                m = subprocess.run(["man", "--warnings", "-l", page], capture_output=True,
                                   text=True, env=dict(os.environ, MANWIDTH="100"))
                if m.returncode == 0:
                    self.assertEqual(m.stderr.strip(), "", page)
        finally:
            shutil.rmtree(dest, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()
