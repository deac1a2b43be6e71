#!/usr/bin/env node
// Run many small ONNX models in onnxruntime's CPU provider, in one process: the
// reference outputs of tests/ops_cases.py (one-node models of every operator remodel
// runs).
//
//   node ort_cases.js MANIFEST.json
//
// MANIFEST is [{"model": PATH, "inputs": {NAME: FILE.npy, ...}, "outdir": DIR}, ...].
// Each case writes DIR/output_<k>.npy, or DIR/error.txt when onnxruntime refuses it.
// .npy files of float32/64, int8/32/64, uint8 and bool are read and written (C order).
'use strict';
const fs = require('fs');
const path = require('path');
const ort = require('onnxruntime-node');

const TYPES = {
  '<f4': ['float32', Float32Array], '<f8': ['float64', Float64Array], '<i8': ['int64', BigInt64Array],
  '<i4': ['int32', Int32Array], '|i1': ['int8', Int8Array], '|u1': ['uint8', Uint8Array], '|b1': ['bool', Uint8Array],
};

function readNpy(file) {
  const b = fs.readFileSync(file);
  if (b.length < 10 || b.toString('latin1', 0, 6) !== '\x93NUMPY') throw new Error(`${file}: not a .npy file`);
  const major = b[6];
  const hlen = major === 1 ? b.readUInt16LE(8) : b.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + hlen;
  const header = b.toString('latin1', major === 1 ? 10 : 12, start);
  const d = /'descr':\s*'([^']*)'/.exec(header);
  const m = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!d || !TYPES[d[1]] || /'fortran_order':\s*True/.test(header) || !m) throw new Error(`${file}: unsupported .npy`);
  const [type, Arr] = TYPES[d[1]];
  const shape = m[1].split(',').map((s) => s.trim()).filter((s) => s).map(Number);
  const n = shape.reduce((a, x) => a * x, 1);
  const bytes = b.subarray(start);
  if (bytes.length !== n * Arr.BYTES_PER_ELEMENT) throw new Error(`${file}: ${bytes.length} data bytes for ${n} elements`);
  const data = new Arr(n);
  Buffer.from(data.buffer).set(bytes);
  return new ort.Tensor(type, data, shape);
}

function writeNpy(file, t) {
  const descr = Object.keys(TYPES).find((k) => TYPES[k][0] === t.type);
  if (!descr) throw new Error(`output of type ${t.type} is not written`);
  const shape = t.dims.length === 1 ? `(${t.dims[0]},)` : `(${t.dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
  const pre = Buffer.alloc(10);
  pre.write('\x93NUMPY', 0, 'latin1');
  pre[6] = 1;
  pre[7] = 0;
  pre.writeUInt16LE(header.length, 8);
  const data = t.type === 'bool' ? Uint8Array.from(t.data, (x) => (x ? 1 : 0)) : t.data;
  fs.writeFileSync(file, Buffer.concat([pre, Buffer.from(header, 'latin1'),
                                        Buffer.from(data.buffer, data.byteOffset, data.byteLength)]));
}

async function runCase(c) {
  fs.mkdirSync(c.outdir, {recursive: true});
  try {
    const opts = {graphOptimizationLevel: 'disabled', executionMode: 'sequential', interOpNumThreads: 1,
                  intraOpNumThreads: 1};
    const s = await ort.InferenceSession.create(c.model, opts);
    const feeds = {};
    for (const [name, file] of Object.entries(c.inputs)) feeds[name] = readNpy(file);
    const out = await s.run(feeds);
    s.outputNames.forEach((name, k) => writeNpy(path.join(c.outdir, `output_${k}.npy`), out[name]));
    await s.release();
  } catch (e) {
    fs.writeFileSync(path.join(c.outdir, 'error.txt'), (e && e.message ? e.message : String(e)) + '\n');
  }
}

async function main() {
  if (process.argv.length !== 3) {
    process.stderr.write('usage: ort_cases.js MANIFEST.json\n');
    process.exit(2);
  }
  const cases = JSON.parse(fs.readFileSync(process.argv[2], 'utf8'));
  for (const c of cases) await runCase(c);
}

main().catch((e) => {
  process.stderr.write(`ort_cases: ${e && e.message ? e.message : String(e)}\n`);
  process.exit(2);
});
