// loopwatch test target: a real Express app (express from EXPRESS_DIR/node_modules) whose
// routes block the loop: a FIFO read, pbkdf2Sync, a busy function, JSON.parse of a big string.
// Prints "ready <pid> <port>"; each handler times itself (performance.now(): the oracle) and
// prints one JSON line per request.
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const crypto = require('crypto');
const { monitorEventLoopDelay } = require('perf_hooks');
const { spawn, execFileSync } = require('child_process');
const express = require(path.join(process.argv[2], 'node_modules', 'express'));

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lw-express-'));
const fifo = path.join(dir, 'settings.fifo');
execFileSync('mkfifo', [fifo]);
const big = JSON.stringify(Array.from({ length: 400000 }, (_, i) => ({ id: i, name: 'item' + i })));

function out(o) { process.stdout.write(JSON.stringify(o) + '\n'); }
// Node's own measure of the loop's delay (the second oracle): read 50 ms after each slow
// request, when its timer has run again, then reset (a reset drops the interval it is in)
const eld = monitorEventLoopDelay({ resolution: 5 });
eld.enable();
function timed(route, fn) {
  return function timedHandler(req, res) {
    const t0 = performance.now();
    const v = fn(req);
    out({ event: 'request', route, ms: performance.now() - t0 });
    res.json({ v });
    setTimeout(() => { out({ event: 'eld', route, max_ms: eld.max / 1e6 }); eld.reset(); }, 50);
  };
}

function busyRoute(req) {
  // 200 ms at least, whatever tier V8 runs it in (an iteration count calibrated once came
  // out at 104 ms, or under the 100 ms threshold, on node 18 once optimized); the clock is read
  // every 100,000 steps only, so the samples sit in this loop
  const t0 = performance.now();
  let x = 0;
  while (performance.now() - t0 < 200) // MARK:clock
    for (let i = 0; i < 1e5; i++) x += Math.sqrt(x + i); // MARK:busy
  return x;
}
// the work of each route on a line of its own (MARK: the line test_node expects), below the
// function's first line, so that the line of the work is told from the definition's
function hashRoute(req) {
  const iterations = 350000;
  const key = crypto.pbkdf2Sync('pw', 'salt', iterations, 64, 'sha512'); // MARK:hash
  return key.length;
}
function parseRoute(req) {
  const text = big;
  const v = JSON.parse(text); // MARK:parse
  return v.length;
}
function fifoRoute(req) {
  spawn('sh', ['-c', `sleep 0.15; echo debug > ${fifo}`], { stdio: 'ignore' });
  const text = fs.readFileSync(fifo, 'utf8'); // MARK:fifo
  return text.length;
}

const app = express();
app.get('/busy', timed('/busy', busyRoute));
app.get('/hash', timed('/hash', hashRoute));
app.get('/parse', timed('/parse', parseRoute));
app.get('/fifo', timed('/fifo', fifoRoute));
// the load beside them (autocannon): a fast route, not timed
app.get('/hello', function helloRoute(req, res) { res.json({ hello: 'world' }); });
const server = app.listen(0, '127.0.0.1', () => {
  process.stdout.write('ready ' + process.pid + ' ' + server.address().port + '\n');
});
