"""loopwatch --top in a real terminal: tmux runs it against a target that stalls its loop in
time.sleep and burns CPU on it, and the test reads the screen tmux shows."""
import os
import re
import shutil
import signal
import subprocess
import time
import unittest

from lwtest import DEBIAN_PYTHON, LOOPWATCH, TARGETS, Target, sleep_syscall

SRC = os.path.join(TARGETS, "asyncio_steady.py")


def tmux(*args):
    return subprocess.run(["tmux", "-L", "lwtest-top"] + list(args), capture_output=True,
                          text=True, timeout=20)


@unittest.skipUnless(shutil.which("tmux"), "tmux not installed (make deps installs it)")
class Top(unittest.TestCase):
    def setUp(self):
        self.t = Target([DEBIAN_PYTHON, SRC])
        self.t.wait_ready()
        tmux("kill-server")

    def tearDown(self):
        tmux("kill-server")
        self.t.kill()

    def screen(self):
        return tmux("capture-pane", "-p", "-t", "top").stdout

    def wait_screen(self, pred, timeout=20):
        deadline = time.time() + timeout
        text = ""
        while time.time() < deadline:
            text = self.screen()
            if pred(text):
                return text
            time.sleep(0.25)
        self.fail("screen never showed what was expected:\n" + text)

    def test_live_view(self):
        r = tmux("new-session", "-d", "-s", "top", "-x", "160", "-y", "40",
                 "%s --pid %d --top -t 50ms; echo loopwatch exited $?; sleep 30" % (LOOPWATCH, self.t.pid))
        self.assertEqual(r.returncode, 0, r.stderr)
        # after a few seconds both sites are on screen, blocked one first
        text = self.wait_screen(lambda s: "Stall.run" in s and "Crunch.run" in s
                                and re.search(r"^%d\s" % self.t.pid, s, re.M))
        time.sleep(2.5)
        text = self.screen()
        lines = text.splitlines()
        self.assertTrue(lines[0].startswith("loopwatch --top  pid %d" % self.t.pid), lines[0])
        self.assertIn("python", lines[0])
        # the loop thread: tid = pid, a utilization figure in line with the target's duty cycle
        # (0.18 s busy of every ~0.58 s = ~31 %)
        loop = [l for l in lines if re.match(r"^%d\s" % self.t.pid, l)]
        self.assertEqual(len(loop), 1, text)
        util = float(re.search(r"\]\s+([\d.]+)%", loop[0]).group(1))
        self.assertGreater(util, 15, loop[0])
        self.assertLess(util, 60, loop[0])
        # the sites: the stall is first (most blocked time) and names its syscall; the CPU
        # burner has CPU time and no blocked time
        self.t.p.send_signal(signal.SIGUSR1)
        time.sleep(0.3)
        sites = [l for l in lines if "Stall.run" in l or "Crunch.run" in l]
        self.assertIn("Stall.run", sites[0])
        self.assertIn("asyncio_steady.py:", sites[0])
        self.assertIn(sleep_syscall(DEBIAN_PYTHON), sites[0])
        stall = [int(x) for x in sites[0].split()[2:3]]
        self.assertGreaterEqual(stall[0], 3, sites[0])
        truth = self.t.truth()[-1]
        # the screen was drawn before the count was asked for: never more than the truth
        self.assertLessEqual(stall[0], truth["Stall.run"])
        cols = sites[0].split()
        blocked_ms = float(cols[3].rstrip("ms"))
        self.assertGreater(blocked_ms, 100 * stall[0] * 0.9, sites[0])
        crunch = [l for l in sites if "Crunch.run" in l][0].split()
        self.assertEqual(float(crunch[3].rstrip("ms")), 0, crunch)
        self.assertGreater(float(crunch[4].rstrip("ms")), 40, crunch)
        # Ctrl-C: loopwatch exits cleanly and prints its last frame
        tmux("send-keys", "-t", "top", "C-c")
        text = self.wait_screen(lambda s: "loopwatch exited" in s, 15)
        self.assertIn("loopwatch exited 0", text)
        self.assertIn("Ctrl-C to quit", self.screen())


@unittest.skipUnless(shutil.which("tmux"), "tmux not installed (make deps installs it)")
class TopStuck(unittest.TestCase):
    """issue 14: --top lists the Tasks found stuck at one await (the latest 8), with their count
    and the deadlocked pair named, on a target whose every Task holds still"""

    def setUp(self):
        self.t = Target([DEBIAN_PYTHON, os.path.join(TARGETS, "asyncio_tasks.py")])
        self.t.wait_ready(30)
        tmux("kill-server")

    tearDown = Top.tearDown
    screen = Top.screen
    wait_screen = Top.wait_screen

    def test_stuck_tasks(self):
        truth = self.t.truth()[0]
        n = sum(len(v) for v in truth["views"].values())
        r = tmux("new-session", "-d", "-s", "top", "-x", "160", "-y", "40",
                 "%s --pid %d --top --stuck-after 1s --stuck-every 300ms; sleep 30"
                 % (LOOPWATCH, self.t.pid))
        self.assertEqual(r.returncode, 0, r.stderr)
        text = self.wait_screen(lambda s: "STUCK TASKS (%d found" % n in s)
        lines = text.splitlines()
        rows = lines[[i for i, l in enumerate(lines) if l.startswith("STUCK TASKS")][0] + 1:]
        rows = [l for l in rows if re.match(r"^(DEADLOCK )?'", l)]
        self.assertEqual(len(rows), 8, text)
        names = {v["name"]: v for vs in truth["views"].values() for v in vs}
        for row in rows:
            name = re.match(r"^(?:DEADLOCK )?'([^']*)'", row).group(1)
            self.assertIn(name, names, row)
            self.assertEqual(row.startswith("DEADLOCK "), name in ("dl-a", "dl-b"), row)
            top = names[name]["stack"][0]
            self.assertIn(" at %s (%s:%d)" % (top["qualname"], os.path.basename(top["file"]),
                                              top["line"]), row)
            self.assertGreaterEqual(float(re.search(r"\) ([\d.]+) s at ", row).group(1)), 1, row)


if __name__ == "__main__":
    unittest.main()
