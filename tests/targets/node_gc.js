// A Node.js target for loopwatch's tests (issue 21, V8 GC time): prints "ready <pid>", waits
// for the go-file, then runs ROUNDS (argv[3], default 2) pairs of slow timer callbacks, 150 ms
// apart (argv[4] "spin": spinPure alone, nothing allocates): allocHeavy builds short-lived objects for 200 ms (many scavenges; a ring of survivors
// keeps them from being free), spinPure does arithmetic for 200 ms and allocates nothing. For
// each callback it prints its own time and the GC time V8's perf_hooks ('gc' entries that start
// inside the callback) reported for it: the oracle.
'use strict';
const fs = require('fs');
const { PerformanceObserver } = require('perf_hooks');

const go = process.argv[2];
const rounds = parseInt(process.argv[3] || '2', 10);
const spinOnly = process.argv[4] === 'spin';
const gcs = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) gcs.push({ start: e.startTime, ms: e.duration, kind: (e.detail || e).kind });
}).observe({ entryTypes: ['gc'] });

function out(o) { process.stdout.write(JSON.stringify(o) + '\n'); }

const ring = new Array(200000);
function allocHeavy() {
  const t0 = performance.now();
  let i = 0;
  while (performance.now() - t0 < 200) {
    for (let k = 0; k < 1000; k++, i++)
      ring[i % ring.length] = { id: i, name: 'obj' + i, tags: [i, i + 1] }; // MARK:alloc
  }
  return [t0, performance.now()];
}

// arithmetic for 200 ms by the clock, read once per chunk of ~1 ms: a count calibrated before
// "ready" came out at 105 ms once V8 had optimised spin() further (under the slow-callback
// threshold's 150 ms floor of this test). The clock's few boxed numbers (a few hundred bytes a
// callback) never fill the young generation: nothing is collected.
function spin(n) { let x = 0; for (let i = 0; i < n; i++) x += Math.sqrt(i); return x; }
for (let w = 0; w < 3; w++) spin(1e6);
const t0c = performance.now();
spin(4e6);
const CHUNK_N = Math.max(1000, Math.round(4e6 / Math.max(1, performance.now() - t0c)));

function spinPure() {
  const t0 = performance.now();
  let x = 0;
  while (performance.now() - t0 < 200)
    x += spin(CHUNK_N); // MARK:spin
  return [t0, performance.now(), x];
}

const done = [];
const queue = [];
for (let r = 0; r < rounds; r++) queue.push(...(spinOnly ? [spinPure] : [allocHeavy, spinPure]));

function next() {
  const f = queue.shift();
  if (!f) {
    // the observer's entries arrive after the callbacks: collect them, then report
    setTimeout(() => {
      for (const d of done) {
        const mine = gcs.filter((g) => g.start >= d.t0 && g.start < d.t1);
        out({ event: 'callback', name: d.name, ms: d.t1 - d.t0,
              gc_ms: mine.reduce((a, g) => a + g.ms, 0), gc_n: mine.length,
              kinds: mine.map((g) => g.kind + ':' + g.ms.toFixed(1)).join(' ') });
      }
      out({ event: 'done' });
      process.exit(0);
    }, 200);
    return;
  }
  const [t0, t1] = f();
  done.push({ name: f.name, t0, t1 });
  setTimeout(next, 150);
}

out({ ready: process.pid });
process.stdout.write('ready ' + process.pid + '\n');
const poll = setInterval(() => {
  if (fs.existsSync(go)) { clearInterval(poll); setTimeout(next, 50); }
}, 10);
