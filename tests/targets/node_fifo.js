// A Node.js target for the native-stack oracle test (tests/integration/test_native.py): prints
// "ready <pid>", waits for the go-file, then twice blocks its event loop in fs.readFileSync on a
// FIFO whose writer shows up MS later (the open blocks until then), each announced first by
// {"event": "blocking"} so that the test can take eu-stack's stack of the blocked thread.
//
//     node [--perf-basic-prof --interpreted-frames-native-stack] node_fifo.js GOFILE [MS]
'use strict';
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn, execFileSync } = require('child_process');

const go = process.argv[2];
const ms = Number(process.argv[3] || 1500);
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'lw-node-fifo-'));
const fifo = path.join(dir, 'settings.fifo');
execFileSync('mkfifo', [fifo]);

function out(o) { fs.writeSync(1, JSON.stringify(o) + '\n'); }

function readSettings(round) {
  spawn('sh', ['-c', `sleep ${ms / 1000}; echo debug > ${fifo}`], { stdio: 'ignore' });
  out({ event: 'blocking', round });
  const t0 = performance.now();
  const text = fs.readFileSync(fifo, 'utf8'); // MARK:fifo
  out({ event: 'slow', ms: performance.now() - t0, n: text.length });
  if (round < 2)
    setTimeout(() => readSettings(round + 1), 300);
  else
    setTimeout(() => { out({ event: 'done' }); process.exit(0); }, 100);
}

fs.writeSync(1, 'ready ' + process.pid + '\n');
const poll = setInterval(() => {
  if (fs.existsSync(go)) { clearInterval(poll); setTimeout(() => readSettings(1), 50); }
}, 10);
