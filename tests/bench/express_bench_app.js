// make bench (express_bench.py): a plain Express app (express from argv[2]/node_modules) with one
// fast route, GET /hello -> a small JSON body. Prints "ready <pid> <port>".
'use strict';
const path = require('path');
const express = require(path.join(process.argv[2], 'node_modules', 'express'));

const app = express();
app.get('/hello', function helloRoute(req, res) {
  res.json({ hello: 'world', n: Number(req.query.n || 0) });
});
const server = app.listen(0, '127.0.0.1', () => {
  process.stdout.write('ready ' + process.pid + ' ' + server.address().port + '\n');
});
