#!/usr/bin/env node
// Run an ONNX model in onnxruntime's CPU provider: the runtime remodel's edited models must
// load and agree with, and the baseline bench/engine.sh measures against.
//
//   node ort_run.js MODEL OUTDIR [NAME=FILE.npy]...   run once, write OUTDIR/output_<k>.npy
//   node ort_run.js MODEL OUTDIR --chunk B [NAME=FILE.npy]...
//                                                     run the inputs B rows (axis 0) at a time,
//                                                     in one session; outputs concatenated on
//                                                     axis 0 (a batch-1 model over N samples)
//   node ort_run.js MODEL --bench N [--threads T]     time N runs after 5 warm-ups on a fixed
//                                                     input; print {"latency_ms": {...}}
//
// Inputs are float32 .npy files (C order); a graph input not given is an error in run mode.
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

function die(msg) {
  process.stderr.write(`ort_run: ${msg}\n`);
  process.exit(2);
}

function readNpy(file) {
  const b = fs.readFileSync(file);
  if (b.length < 10 || b.toString('latin1', 0, 6) !== '\x93NUMPY') die(`${file}: not a .npy file`);
  const major = b[6];
  const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + hlen;
  const header = b.toString('latin1', major === 1 ? 10 : 12, start);
  if (!/'descr':\s*'<f4'/.test(header) || /'fortran_order':\s*True/.test(header))
    die(`${file}: only little-endian float32 in C order is read`);
  const m = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!m) die(`${file}: no shape in the header`);
  const shape = m[1].split(',').map((s) => s.trim()).filter((s) => s).map(Number);
  const n = shape.reduce((a, x) => a * x, 1);
  if (b.length - start !== 4 * n) die(`${file}: ${b.length - start} data bytes for ${n} floats`);
  const data = new Float32Array(n);
  Buffer.from(data.buffer).set(b.subarray(start));
  return new ort.Tensor('float32', data, shape);
}

function writeNpy(file, t) {
  if (t.type !== 'float32') die(`output of type ${t.type} is not written`);
  const shape = t.dims.length === 1 ? `(${t.dims[0]},)` : `(${t.dims.join(', ')})`;
  let header = `{'descr': '<f4', 'fortran_order': False, 'shape': ${shape}, }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'),
                                        Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)]));
}

// Run feeds `chunk` rows at a time along axis 0 and concatenate each output along axis 0.
async function runChunked(s, feeds, chunk) {
  const names = Object.keys(feeds);
  const n = feeds[names[0]].dims[0];
  for (const name of names) {
    if (feeds[name].dims.length === 0 || feeds[name].dims[0] !== n)
      die(`--chunk: every input needs the same first dimension (${names[0]} has ${n}, ${name} has ${feeds[name].dims[0]})`);
    if (n % chunk) die(`--chunk ${chunk} does not divide the ${n} rows of ${name}`);
  }
  const parts = {};
  for (let i = 0; i < n; i += chunk) {
    const f = {};
    for (const name of names) {
      const t = feeds[name];
      const row = t.data.length / n;
      f[name] = new ort.Tensor('float32', t.data.slice(i * row, (i + chunk) * row), [chunk, ...t.dims.slice(1)]);
    }
    const o = await s.run(f);
    for (const name of s.outputNames) (parts[name] = parts[name] || []).push(o[name]);
  }
  const out = {};
  for (const name of s.outputNames) {
    const ts = parts[name];
    if (ts[0].type !== 'float32') die(`output of type ${ts[0].type} is not written`);
    const data = new Float32Array(ts.reduce((a, t) => a + t.data.length, 0));
    let off = 0;
    for (const t of ts) {
      data.set(t.data, off);
      off += t.data.length;
    }
    out[name] = new ort.Tensor('float32', data, [ts.reduce((a, t) => a + t.dims[0], 0), ...ts[0].dims.slice(1)]);
  }
  return out;
}

async function main() {
  const args = process.argv.slice(2);
  if (args.length < 2) die('usage: ort_run.js MODEL OUTDIR [--chunk B] [NAME=FILE.npy]... | MODEL --bench N [--threads T]');
  const model = args[0];
  const bench = args[1] === '--bench' ? Number(args[2]) : 0;
  let threads = 0;
  const ti = args.indexOf('--threads');
  if (ti > 0) threads = Number(args[ti + 1]);
  const opts = {graphOptimizationLevel: 'all', executionMode: 'sequential', interOpNumThreads: 1};
  if (threads > 0) opts.intraOpNumThreads = threads;
  const s = await ort.InferenceSession.create(model, opts);
  const feeds = {};
  if (bench) {
    if (!(bench > 0)) die('--bench needs a positive count');
    for (const name of s.inputNames) {
      const meta = s.inputMetadata ? s.inputMetadata.find((x) => x.name === name) : null;
      const dims = meta && meta.shape ? meta.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1)) : null;
      if (!dims) die(`input ${name}: shape unknown`);
      const data = new Float32Array(dims.reduce((a, x) => a * x, 1));
      for (let i = 0; i < data.length; i++) data[i] = Math.sin(i * 0.37);
      feeds[name] = new ort.Tensor('float32', data, dims);
    }
    for (let i = 0; i < 5; i++) await s.run(feeds);
    const t = [];
    for (let i = 0; i < bench; i++) {
      const t0 = process.hrtime.bigint();
      await s.run(feeds);
      t.push(Number(process.hrtime.bigint() - t0) / 1e6);
    }
    t.sort((a, b) => a - b);
    const median = t.length % 2 ? t[(t.length - 1) / 2] : (t[t.length / 2 - 1] + t[t.length / 2]) / 2;
    process.stdout.write(JSON.stringify({latency_ms: {median, min: t[0]}, runs: bench, threads}) + '\n');
    return;
  }
  const outdir = args[1];
  let chunk = 0;
  const rest = args.slice(2);
  const ci = rest.indexOf('--chunk');
  if (ci >= 0) {
    chunk = Number(rest[ci + 1]);
    if (!(Number.isInteger(chunk) && chunk > 0)) die('--chunk needs a positive integer');
    rest.splice(ci, 2);
  }
  for (const a of rest) {
    const eq = a.indexOf('=');
    if (eq <= 0) die(`bad input '${a}', expected NAME=FILE.npy`);
    feeds[a.slice(0, eq)] = readNpy(a.slice(eq + 1));
  }
  for (const name of s.inputNames) if (!feeds[name]) die(`input ${name} not given`);
  const out = chunk ? await runChunked(s, feeds, chunk) : await s.run(feeds);
  fs.mkdirSync(outdir, {recursive: true});
  s.outputNames.forEach((name, k) => writeNpy(path.join(outdir, `output_${k}.npy`), out[name]));
}

main().catch((e) => die(e && e.message ? e.message : String(e)));
