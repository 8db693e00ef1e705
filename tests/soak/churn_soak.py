#!/usr/bin/env python3
"""A long churn soak of loopwatchd (issue 19; not part of `make test`: it runs for minutes).

loopwatchd (LW_BUILD, default build/) traces short-lived asyncio processes (tests/targets/
daemon_app.py) started RATE a second for MINUTES; a third of them block their loop once (a slow
callback and a blocking call, records written). Every INTERVAL seconds loopwatchd's RSS, file
descriptors and BPF objects, and its `status` counts, are written as a CSV line. At the end,
once every target has exited: the entries left in its BPF maps (procs, threads, stacks,
tstates, fair) and whether every matched process is accounted for (matched = attached + not
attached + pending).

Run as root (it loads BPF programs); it is not timing-sensitive, so it may run niced outside the
integration lock (the 20-minute run in docs/reliability.md did):

    nice -n 10 python3 tests/soak/churn_soak.py --minutes 20 --rate 3 --csv /tmp/soak.csv

Exit status 1 when RSS grew by more than --max-growth-kib between the first sample after the
warm-up minute and the end, fds grew, BPF map entries were left, or a matched process is not
accounted for.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

from test_daemon import App, Daemon, wait_for  # noqa: E402


def rss_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_kinds(pid):
    """(fds, BPF map ids, BPF prog ids, BPF links) of process pid"""
    maps, progs, links, n = set(), set(), 0, 0
    for fd in os.listdir("/proc/%d/fdinfo" % pid):
        n += 1
        try:
            with open("/proc/%d/fdinfo/%s" % (pid, fd)) as f:
                text = f.read()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith("map_id:"):
                maps.add(int(line.split()[1]))
            elif line.startswith("prog_id:"):
                progs.add(int(line.split()[1]))
            elif line.startswith("link_id:"):
                links += 1
    return n, maps, progs, links


def map_entries(map_ids, names):
    """entries of the maps named names among map_ids (bpftool)"""
    out = subprocess.run(["bpftool", "-j", "map", "show"], capture_output=True, text=True,
                         timeout=60).stdout
    res = {}
    for m in json.loads(out or "[]"):
        if m.get("id") in map_ids and m.get("name") in names:
            d = subprocess.run(["bpftool", "-j", "map", "dump", "id", str(m["id"])],
                               capture_output=True, text=True, timeout=120).stdout
            try:
                res[m["name"]] = len(json.loads(d or "[]"))
            except ValueError:
                res[m["name"]] = -1
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10)
    ap.add_argument("--rate", type=float, default=3, help="processes started a second")
    ap.add_argument("--interval", type=float, default=15, help="seconds between samples")
    ap.add_argument("--csv", default=None)
    ap.add_argument("--max-growth-kib", type=int, default=4096)
    args = ap.parse_args()

    tmp = tempfile.mkdtemp(prefix="lw-soak-")
    tag = "lws-" + uuid.uuid4().hex[:12]
    d = Daemon("[target churn]\ncmdline = %s\n" % tag, tmp)
    d.wait_ready()
    csv = open(args.csv, "w") if args.csv else sys.stdout
    csv.write("t_s,started,live,rss_kib,fds,bpf_maps,bpf_progs,bpf_links,matched,attaches,"
              "not_attached,traced,pending,lost_events\n")
    t0 = time.monotonic()
    end = t0 + args.minutes * 60
    live, started, samples = [], 0, []
    next_start, next_sample = t0, t0

    def sample(now):
        st = d.status()
        n, maps, progs, links = fd_kinds(d.p.pid)
        row = dict(t=now - t0, started=started, live=len(live), rss=rss_kib(d.p.pid), fds=n,
                   maps=len(maps), progs=len(progs), links=links, matched=st["matched"],
                   attaches=st["attaches"], na=sum(st["not_attached"].values()),
                   traced=st["processes"],
                   pending=sum(len(t["pending"]) for t in st["targets"]),
                   lost=st["lost_events"])
        samples.append(row)
        csv.write("%(t).0f,%(started)d,%(live)d,%(rss)d,%(fds)d,%(maps)d,%(progs)d,%(links)d,"
                  "%(matched)d,%(attaches)d,%(na)d,%(traced)d,%(pending)d,%(lost)d\n" % row)
        csv.flush()
        return st, maps

    try:
        while True:
            now = time.monotonic()
            if now >= end:
                break
            if now >= next_start:
                a = App(tag, ["--exit-after", "%.2f" % (0.5 + (started % 4) * 0.5),
                              "--poll", "0.05"], tmp=tmp)
                if started % 3 == 0:
                    open(os.path.join(a.ctl, "block-1"), "w").close()
                live.append(a)
                started += 1
                next_start += 1.0 / args.rate
            live = [a for a in live if a.p.poll() is None]
            if now >= next_sample:
                sample(now)
                next_sample += args.interval
            time.sleep(0.02)
        for a in live:
            a.p.wait(60)
        live = []

        def settled():
            st = d.status()
            return (st["processes"] == 0 and not any(t["pending"] for t in st["targets"])
                    and st)
        wait_for(settled, 60, step=0.5, what="every process detached")
        time.sleep(3)  # a summary interval and the last writes
        st, maps = sample(time.monotonic())
        left = map_entries(maps, {"procs", "threads", "stacks", "tstates", "fair"})
    finally:
        for a in live:
            a.kill()
        d.stop()
        d.kill()

    base = next((s for s in samples if s["t"] >= 60), samples[0])
    last = samples[-1]
    print("soak: %.1f min, %d processes started (%.1f/s)" % (args.minutes, started, args.rate))
    print("RSS %d KiB at start, %d KiB after the warm-up minute, %d KiB max, %d KiB at the end"
          % (samples[0]["rss"], base["rss"], max(s["rss"] for s in samples), last["rss"]))
    print("fds %d -> %d (max %d); BPF maps %d -> %d, programs %d -> %d, links %d -> %d"
          % (samples[0]["fds"], last["fds"], max(s["fds"] for s in samples),
             samples[0]["maps"], last["maps"], samples[0]["progs"], last["progs"],
             samples[0]["links"], last["links"]))
    print("matched %d = attached %d + not attached %d (%s) + pending %d; lost_events %d"
          % (st["matched"], st["attaches"], sum(st["not_attached"].values()),
             {k: v for k, v in st["not_attached"].items() if v},
             sum(len(t["pending"]) for t in st["targets"]), st["lost_events"]))
    print("BPF map entries left after every target exited: %s" % left)
    bad = []
    if last["rss"] - base["rss"] > args.max_growth_kib:
        bad.append("RSS grew %d KiB" % (last["rss"] - base["rss"]))
    if last["fds"] > samples[0]["fds"] + 1:
        bad.append("fds grew %d -> %d" % (samples[0]["fds"], last["fds"]))
    if any(v for v in left.values()):
        bad.append("BPF map entries left: %s" % left)
    if st["matched"] != st["attaches"] + sum(st["not_attached"].values()):
        bad.append("matched processes not accounted for")
    for b in bad:
        print("FAIL: " + b)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
