"""What an unprivileged user and a hostile target can do to loopwatch (issue 19), each attack
tried for real: a target whose task name, function name, file name and comm carry terminal
escapes and newlines (live text, `loopwatch report`, --top, `status`, the daemon's log); links,
FIFOs and other users' files planted where loopwatch writes (as `nobody`, in a sticky
world-writable directory, without relying on fs.protected_symlinks/protected_fifos); report and
control-socket directories others can write; write failures (a full disk)."""
import json
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
import unittest
import uuid

from lwtest import DEBIAN_PYTHON, LOOPWATCH, LOOPWATCHD, Loopwatch, Target, run_loopwatch
from test_daemon import App, Daemon, wait_for

EVIL = "\x1b[31mEVIL\"\n{\x1b]0;pwned\x07\r"
NOBODY = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]

# A target that names everything it can after the hostile string: the Task name, the
# function's name, qualname and file (code objects are the program's own), and its comm.
HOSTILE = r'''
import asyncio, os, sys, time
EVIL = "\x1b[31mEVIL\"\n{\x1b]0;pwned\x07\r"
GO = sys.argv[1]
with open("/proc/self/comm", "w") as f:
    f.write("\x1b[31mE\n{\x07\r")

def blocker():
    time.sleep(0.15)

blocker.__code__ = blocker.__code__.replace(
    co_name="bl\x1b[2Jk", co_qualname="bl\x1b[2Jk\n{q", co_filename="/x/\x1b]0;pwned\x07\n{f.py")

async def work(rounds):
    for _ in range(rounds):
        blocker()
        await asyncio.sleep(0.05)

work.__code__ = work.__code__.replace(co_name="wo\x1b[2Jrk", co_qualname="wo\x1b[2Jrk",
                                      co_filename="/x/\x1b]0;pwned\x07\n{w.py")
work.__qualname__ = work.__name__ = "wo\x1b[2Jrk"

async def main():
    print("ready", os.getpid(), flush=True)
    while not os.path.exists(GO):
        await asyncio.sleep(0.02)
    await asyncio.create_task(work(int(os.environ.get("ROUNDS", "3"))), name=EVIL)
    while os.environ.get("STAY") and not os.path.exists(GO + ".stop"):
        await asyncio.sleep(0.05)

asyncio.run(main())
'''

# what a terminal acts on: C0 controls (newline aside, checked separately), DEL, C1 (UTF-8)
RAW = re.compile("[\x00-\x09\x0b-\x1f\x7f\u0080-\u009f]")


def hostile_script(tmp):
    path = os.path.join(tmp, "hostile.py")
    with open(path, "w") as f:
        f.write(HOSTILE)
    return path


class Escapes(unittest.TestCase):
    maxDiff = None

    def assert_inert(self, text, where, allowed=()):
        for a in allowed:
            text = text.replace(a, "")
        m = RAW.search(text)
        if m:
            self.fail("%s: raw %r at %d: %r" % (where, m.group(0), m.start(), text[:2000]))
        for line in text.splitlines():
            # a name's newline would start a forged line with its next character
            self.assertFalse(line.startswith("{"), "%s: forged line %r" % (where, line))
            self.assertFalse(line.startswith("[31m") or line.startswith("]0;"), line)

    def test_hostile_names_live_report_top(self):
        """Live text, `loopwatch report` text and --top of a target whose names carry escapes:
        the names are shown, escaped as \\xNN, and no control character reaches the terminal."""
        tmp = tempfile.mkdtemp(prefix="lwsec-")
        script = hostile_script(tmp)
        t = Target([DEBIAN_PYTHON, script, "{GO}"], env={"ROUNDS": "3"})
        try:
            t.wait_ready()
            lw = Loopwatch(t.pid, ["-t", "50ms"], tmp=tmp)
            lw.wait_started()
            t.go()
            self.assertEqual(t.wait(30), 0, t.stderr())
            self.assertEqual(lw.wait(30), 0, lw.stderr())
        finally:
            t.kill()
        live = lw.stdout()
        self.assertIn("name='\\x1b[31mEVIL\"\\x0a{\\x1b]0;pwned\\x07\\x0d'", live)
        self.assertIn("bl\\x1b[2Jk\\x0a{q", live)
        self.assertIn("\\x1b[31mE\\x0a{\\x07\\x0d", live)      # comm
        self.assert_inert(live, "live text")
        self.assert_inert(lw.stderr(), "live stderr")
        # the JSON Lines keep the names exactly (JSON escapes them)
        sc = lw.records("slow_callback")
        self.assertTrue(sc)
        self.assertEqual(sc[0]["callback"]["task_name"], EVIL)
        rep = run_loopwatch(["report", lw.out])
        self.assertEqual(rep.returncode, 0, rep.stderr)
        self.assertIn("bl\\x1b[2Jk\\x0a{q", rep.stdout)
        self.assertIn("name='\\x1b[31mEVIL", rep.stdout)
        self.assert_inert(rep.stdout, "report text")
        self.assert_inert(rep.stderr, "report stderr")
        # --top: its own screen control (home, clear) only
        t = Target([DEBIAN_PYTHON, script, "{GO}"], env={"ROUNDS": "12"})
        try:
            t.wait_ready()
            p = subprocess.Popen([LOOPWATCH, "--pid", str(t.pid), "--top", "-t", "50ms"],
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            time.sleep(2.5)
            t.go()
            t.wait(30)
            out, err = p.communicate(timeout=30)
        finally:
            t.kill()
        self.assertIn("wo\\x1b[2Jrk", out)                   # the site
        self.assertIn("\\x1b[31mE\\x0a{", out)                 # comm
        self.assert_inert(out, "--top", allowed=("\x1b[H\x1b[2J",))
        shutil.rmtree(tmp, ignore_errors=True)

    def test_hostile_names_status_and_log(self):
        """`loopwatch status` and loopwatchd's log, for a traced process whose comm and names
        carry escapes."""
        tmp = tempfile.mkdtemp(prefix="lwsec-")
        os.chmod(tmp, 0o755)
        tag = "lwsec-" + uuid.uuid4().hex[:12]
        script = hostile_script(tmp)
        gofile = os.path.join(tmp, "go")
        p = subprocess.Popen([DEBIAN_PYTHON, script, gofile, tag], env=dict(os.environ, STAY="1"),
                             stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        d = Daemon("[target app]\ncmdline = %s\nthreshold = 50ms\n" % tag, tmp)
        try:
            self.assertIn("ready", p.stdout.readline())
            d.wait_ready()
            wait_for(lambda: p.pid in d.attached("app"), 20, what="attach")
            open(gofile, "w").close()
            wait_for(lambda: d.records("app", "slow_callback"), 20, what="a slow callback")
            r = subprocess.run([LOOPWATCH, "status", d.sock], capture_output=True, text=True,
                               timeout=20)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("\\x1b[31mE\\x0a{\\x07\\x0d", r.stdout)
            self.assert_inert(r.stdout, "status")
            open(gofile + ".stop", "w").close()
            p.wait(20)
            self.assertEqual(d.stop(), 0)
            self.assert_inert(d.stderr(), "loopwatchd log")
        finally:
            p.kill()
            d.kill()
            shutil.rmtree(tmp, ignore_errors=True)


@unittest.skipUnless(shutil.which("setpriv"), "setpriv (util-linux) not installed")
class PlantedFiles(unittest.TestCase):
    """`nobody` plants things in a sticky world-writable directory (like /tmp) where root then
    runs loopwatch with -o."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="lwsec-")
        self.pub = os.path.join(self.tmp, "pub")
        os.mkdir(self.pub)
        os.chmod(self.tmp, 0o755)
        os.chmod(self.pub, 0o1777)
        # a report to write out
        self.rec = os.path.join(self.tmp, "r.jsonl")
        with open(self.rec, "w") as f:
            f.write(json.dumps({"type": "start", "v": 1, "ts": "2026-11-25T02:00:30.000000Z",
                                "pid": 42, "comm": "x"}) + "\n")
        self.victim = os.path.join(self.tmp, "victim")
        with open(self.victim, "w") as f:
            f.write("precious\n")

    def tearDown(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def as_nobody(self, *argv):
        subprocess.run(NOBODY + list(argv), check=True, timeout=20)

    def test_report_o_symlink(self):
        """A symlink to a root-owned file: not truncated, not written, a message naming it."""
        link = os.path.join(self.pub, "out.txt")
        self.as_nobody("ln", "-s", self.victim, link)
        r = run_loopwatch(["report", "-o", link, self.rec])
        self.assertEqual(r.returncode, 1)
        self.assertIn("symbolic link", r.stderr)
        with open(self.victim) as f:
            self.assertEqual(f.read(), "precious\n")

    def test_report_o_fifo_and_foreign_file(self):
        """A FIFO does not hang loopwatch; a file nobody owns is not written into."""
        fifo = os.path.join(self.pub, "out.fifo")
        self.as_nobody("mkfifo", "-m", "666", fifo)
        r = run_loopwatch(["report", "-o", fifo, self.rec], timeout=10)
        self.assertEqual(r.returncode, 1)
        self.assertIn("FIFO", r.stderr)
        theirs = os.path.join(self.pub, "theirs.txt")
        self.as_nobody("sh", "-c", "echo mine > %s; chmod 666 %s" % (theirs, theirs))
        r = run_loopwatch(["report", "-o", theirs, self.rec])
        self.assertEqual(r.returncode, 1)
        self.assertIn("belongs to uid", r.stderr)
        with open(theirs) as f:
            self.assertEqual(f.read(), "mine\n")
        # and a normal path works, replacing what was there
        ok = os.path.join(self.tmp, "ok.txt")
        with open(ok, "w") as f:
            f.write("old stuff that is longer than the report " * 100)
        r = run_loopwatch(["report", "-o", ok, self.rec])
        self.assertEqual(r.returncode, 0, r.stderr)
        with open(ok) as f:
            self.assertTrue(f.read().startswith("loopwatch report: 1 file"))

    def test_trace_o_fifo(self):
        """loopwatch --pid -o FIFO: refused at once (the old code hung in open)."""
        fifo = os.path.join(self.pub, "rec.jsonl")
        self.as_nobody("mkfifo", "-m", "666", fifo)
        r = run_loopwatch(["--pid", str(os.getpid()), "-o", fifo, "-d", "1s"], timeout=10)
        self.assertEqual(r.returncode, 1)
        self.assertIn("FIFO", r.stderr)


class DaemonDirs(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="lwsec-")
        self.daemons = []

    def tearDown(self):
        for d in self.daemons:
            d.kill()
        shutil.rmtree(self.tmp, ignore_errors=True)

    def start(self, **kw):
        d = Daemon("[target app]\ncmdline = lwsec-%s\n" % uuid.uuid4().hex,
                   tempfile.mkdtemp(dir=self.tmp), **kw)
        self.daemons.append(d)
        return d

    def test_report_dir_writable_by_others_refused(self):
        """A report dir others could write (or owned by a user): the daemon does not start,
        exit 2, and says why and how to fix it."""
        for mode, owner, why in ((0o777, 0, "writable by others"), (0o775, 0, "by its group"),
                                 (0o755, 65534, "belongs to uid 65534")):
            rdir = os.path.join(self.tmp, "rep-%o-%d" % (mode, owner))
            os.mkdir(rdir)
            os.chmod(rdir, mode)
            os.chown(rdir, owner, owner)
            d = self.start(report_dir=rdir)
            self.assertEqual(d.p.wait(30), 2, d.stderr())
            self.assertIn("refusing the report dir %s" % rdir, d.stderr())
            self.assertIn(why, d.stderr())
            self.assertFalse(os.listdir(rdir))
        # created when missing: 0750 (under the umask)
        d = self.start(report_dir=os.path.join(self.tmp, "new"))
        d.wait_ready()
        self.assertEqual(stat.S_IMODE(os.stat(os.path.join(self.tmp, "new")).st_mode) & 0o027, 0)
        self.assertEqual(d.stop(), 0, d.stderr())

    @unittest.skipUnless(shutil.which("setpriv"), "setpriv (util-linux) not installed")
    def test_report_group(self):
        """report_group = nogroup: the dir 0750 root:nogroup, every report file 0640
        root:nogroup (replaced .prom included), readable by a member of the group, by no one
        else."""
        tag = "lwsec-" + uuid.uuid4().hex[:12]
        rdir = os.path.join(self.tmp, "rep")
        os.chmod(self.tmp, 0o755)
        d = Daemon("[target app]\ncmdline = %s\n" % tag, tempfile.mkdtemp(dir=self.tmp),
                   report_dir=rdir, report_extra="report_group = nogroup\n"
                   "formats = jsonl, prometheus, folded\n")
        self.daemons.append(d)
        a = App(tag, tmp=self.tmp)
        try:
            a.wait_ready()
            d.wait_ready()
            wait_for(lambda: a.pid in d.attached("app"), 20, what="attach")
            a.block()
            names = ("app.jsonl", "app.prom", "app.folded")
            wait_for(lambda: all(os.path.exists(os.path.join(rdir, n)) for n in names), 20,
                     what="the report files")
            st = os.stat(rdir)
            self.assertEqual((stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid), (0o750, 0, 65534))
            time.sleep(1.5)     # .prom replaced at least once more
            for n in names:
                st = os.stat(os.path.join(rdir, n))
                self.assertEqual((stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid),
                                 (0o640, 0, 65534), n)
            r = subprocess.run(NOBODY + ["cat", os.path.join(rdir, "app.prom")],
                               capture_output=True, text=True, timeout=10)
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertIn("loopwatch_", r.stdout)
            r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=65533", "--clear-groups",
                                "cat", os.path.join(rdir, "app.prom")],
                               capture_output=True, text=True, timeout=10)
            self.assertNotEqual(r.returncode, 0)
            a.stop()
            self.assertEqual(d.stop(), 0, d.stderr())
        finally:
            a.kill()

    @unittest.skipUnless(shutil.which("setpriv"), "setpriv (util-linux) not installed")
    def test_refused_client_gets_the_reason(self):
        """A client that may open the socket (CAP_DAC_OVERRIDE) but is not root: SO_PEERCRED
        refuses it with a message, not a reset connection."""
        d = self.start()
        d.wait_ready()
        os.chmod(d.tmp, 0o755)
        for _ in range(5):
            r = subprocess.run(["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups",
                                "--inh-caps=+dac_override", "--ambient-caps=+dac_override",
                                LOOPWATCH, "status", d.sock], capture_output=True, text=True,
                               timeout=20)
            self.assertEqual(r.returncode, 1, r.stderr)
            self.assertIn("loopwatchd says: permission denied: loopwatch status needs root",
                          r.stderr)
        self.assertEqual(d.stop(), 0, d.stderr())

    def test_capabilities_dropped_after_start(self):
        """Started as root with every capability, the daemon keeps only what tracing needs
        once it is up (no SYS_RESOURCE, SETUID, KILL, NET_ADMIN, SYS_MODULE), and still
        attaches processes that start afterwards."""
        tag = "lwsec-" + uuid.uuid4().hex[:12]
        d = Daemon("[target app]\ncmdline = %s\nthreshold = 50ms\n" % tag,
                   tempfile.mkdtemp(dir=self.tmp))
        self.daemons.append(d)
        d.wait_ready()
        caps = {}
        with open("/proc/%d/status" % d.p.pid) as f:
            for line in f:
                if line.startswith("Cap"):
                    k, v = line.split(":")
                    caps[k] = int(v, 16)
        for name, bit in (("kill", 5), ("setuid", 7), ("net_admin", 12), ("sys_module", 16),
                          ("sys_resource", 24), ("sys_boot", 22)):
            self.assertFalse(caps["CapEff"] & (1 << bit), name)
            self.assertFalse(caps["CapPrm"] & (1 << bit), name)
        for name, bit in (("bpf", 39), ("perfmon", 38), ("sys_ptrace", 19)):
            self.assertTrue(caps["CapEff"] & (1 << bit), name)
        a = App(tag, tmp=self.tmp)
        try:
            a.wait_ready()
            wait_for(lambda: a.pid in d.attached("app"), 20, what="attach after the drop")
            a.block()
            wait_for(lambda: d.records("app", "slow_callback", a.pid), 10, what="a record")
            a.stop()
            self.assertEqual(d.stop(), 0, d.stderr())
        finally:
            a.kill()

    def test_control_socket_dir(self):
        """The control socket's dir is created 0750, and one others can write is refused."""
        d = self.start()
        sockdir = os.path.join(self.tmp, "run", "lw")
        d2 = Daemon("[target app]\ncmdline = lwsec-%s\n" % uuid.uuid4().hex,
                    tempfile.mkdtemp(dir=self.tmp), start=False)
        self.daemons.append(d2)
        with open(d2.conf) as f:
            conf = f.read().replace(d2.sock, os.path.join(sockdir, "control.sock"))
        os.mkdir(os.path.join(self.tmp, "run"), 0o755)
        with open(d2.conf, "w") as f:
            f.write(conf)
        d.wait_ready()
        self.assertEqual(d.stop(), 0)
        d2.start()
        d2.wait_ready()
        self.assertEqual(stat.S_IMODE(os.stat(sockdir).st_mode), 0o750)
        self.assertEqual(d2.stop(), 0)
        os.chmod(sockdir, 0o777)
        d3 = Daemon("[target app]\ncmdline = lwsec-%s\n" % uuid.uuid4().hex,
                    tempfile.mkdtemp(dir=self.tmp), start=False)
        self.daemons.append(d3)
        with open(d3.conf, "w") as f:
            f.write(conf)
        d3.start()
        d3.wait_ready()
        self.assertFalse(os.path.exists(os.path.join(sockdir, "control.sock")))
        self.assertIn("refusing the control socket directory", d3.stderr())
        self.assertEqual(d3.stop(), 0)


class WriteFailures(unittest.TestCase):
    def test_full_disk_exit_status(self):
        """Records that cannot be written (stdout on a full disk: /dev/full): exit 1 and a
        message, not 0."""
        tmp = tempfile.mkdtemp(prefix="lwsec-")
        t = Target([DEBIAN_PYTHON, hostile_script(tmp), "{GO}"], env={"ROUNDS": "2"})
        try:
            t.wait_ready()
            for fmt in ("text", "json"):
                with open("/dev/full", "w") as full:
                    r = subprocess.run([LOOPWATCH, "--pid", str(t.pid), "-d", "1s", "--format",
                                        fmt], stdout=full, stderr=subprocess.PIPE, text=True,
                                       timeout=60)
                self.assertEqual(r.returncode, 1, (fmt, r.stderr))
                self.assertIn("No space left", r.stderr)
        finally:
            t.kill()
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    unittest.main()


CG2 = "/sys/fs/cgroup/unified" if os.path.isdir("/sys/fs/cgroup/unified") else "/sys/fs/cgroup"


@unittest.skipUnless(shutil.which("setpriv") and os.path.exists(os.path.join(CG2, "cgroup.procs")),
                     "setpriv or a writable cgroup v2 hierarchy missing")
class Matchers(unittest.TestCase):
    """`unit = X` names the system service X; a user's own X.service (under user@UID.service)
    does not match unless unit_scope = any, and user = tells whose processes."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="lwsec-")
        self.unit = "lwsec-%s" % uuid.uuid4().hex[:10]
        self.made = []
        self.procs = []

    def tearDown(self):
        for p in self.procs:
            p.kill()
            p.wait()
        time.sleep(0.2)
        for d in reversed(self.made):
            try:
                os.rmdir(d)
            except OSError:
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)

    def cgroup(self, path):
        cur = CG2
        for part in path.strip("/").split("/"):
            cur = os.path.join(cur, part)
            if not os.path.isdir(cur):
                os.mkdir(cur)
                self.made.append(cur)
        return cur

    def start_in(self, path, tag, user=None):
        """a Python process started inside the cgroup (it never runs outside it)"""
        cg = self.cgroup(path)
        cmd = ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', cg]
        if user:
            cmd += NOBODY
        cmd += [DEBIAN_PYTHON, "-c", "import time,sys; print('ready', flush=True); "
                "time.sleep(60)", tag]
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
        self.procs.append(p)
        self.assertEqual(p.stdout.readline().strip(), "ready")
        return p

    def test_unit_is_the_system_service_user_matcher(self):
        tag = "lwsec-" + uuid.uuid4().hex[:12]
        svc = self.unit + ".service"
        mine = self.start_in("/user.slice/user-65534.slice/user@65534.service/app.slice/" + svc,
                             tag, user=True)
        system = self.start_in("/system.slice/" + svc, tag)
        d = Daemon("[target sys]\nunit = %s\ncmdline = %s\n\n"
                   "[target users]\nunit = %s\nunit_scope = any\nuser = nobody\ncmdline = %s\n"
                   % (self.unit, tag, self.unit, tag), self.tmp)
        try:
            d.wait_ready()
            wait_for(lambda: d.attached("sys") == [system.pid], 20, what="the system service")
            wait_for(lambda: d.attached("users") == [mine.pid], 20, what="nobody's own unit")
            time.sleep(1)
            self.assertEqual(d.attached("sys"), [system.pid])
            self.assertEqual(d.attached("users"), [mine.pid])
            self.assertEqual(d.stop(), 0, d.stderr())
            self.assertNotIn("[target sys] is matched only", d.stderr())
        finally:
            d.kill()

    def test_check_config_warns_user_controlled(self):
        """A target that only comm / cmdline / exe match: --check-config says so (still valid)."""
        conf = os.path.join(self.tmp, "c.conf")
        with open(conf, "w") as f:
            f.write("[target loose]\ncmdline = app.py\nexe = /usr/bin/python3.11\n\n"
                    "[target tight]\nunit = api\ncmdline = app.py\n\n"
                    "[target mine]\nunit = api\nunit_scope = any\n")
        r = subprocess.run([LOOPWATCHD, "--check-config", "--config", conf],
                           capture_output=True, text=True, timeout=20)
        self.assertEqual(r.returncode, 0, r.stderr)
        self.assertIn("c.conf:1: [target loose] is matched only by what any local user can give"
                      " a process of their own (cmdline, exe)", r.stderr)
        self.assertIn("[target mine] is matched only", r.stderr)
        self.assertNotIn("[target tight]", r.stderr)


class PidIdentity(unittest.TestCase):
    def test_stale_pidfile_not_attached(self):
        """A pid file written before the process it names started (left by an earlier process
        whose pid is now another's) does not attach that process; rewritten by it, it does."""
        tmp = tempfile.mkdtemp(prefix="lwsec-")
        pidfile = os.path.join(tmp, "svc.pid")
        tag = "lwsec-" + uuid.uuid4().hex[:12]
        p = subprocess.Popen([DEBIAN_PYTHON, "-c", "import time; print('ready', flush=True); "
                              "time.sleep(60)", tag], stdout=subprocess.PIPE, text=True)
        d = Daemon("[target pf]\npidfile = %s\nexe = %s\n" % (pidfile, DEBIAN_PYTHON),
                   tempfile.mkdtemp(dir=tmp))
        try:
            self.assertEqual(p.stdout.readline().strip(), "ready")
            with open(pidfile, "w") as f:
                f.write("%d\n" % p.pid)
            old = time.time() - 3600
            os.utime(pidfile, (old, old))
            d.wait_ready()
            time.sleep(2.5)     # pid files are checked every second
            self.assertEqual(d.attached("pf"), [])
            with open(pidfile, "w") as f:
                f.write("%d\n" % p.pid)
            wait_for(lambda: d.attached("pf") == [p.pid], 15, what="attach by a fresh pid file")
            self.assertEqual(d.stop(), 0, d.stderr())
        finally:
            p.kill()
            p.wait()
            d.kill()
            shutil.rmtree(tmp, ignore_errors=True)
