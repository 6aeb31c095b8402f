#!/usr/bin/env node
// bench/ort_bench.js - times one model on ONNX Runtime (npm onnxruntime-node,
// CPU execution provider) the way `qkv bench` times it on qkv, for
// bench/vs-ort.sh. A benchmark tool for comparison only, not part of qkv.
//
// usage: node bench/ort_bench.js --ort-dir DIR --model MODEL
//            [--threads T] [--warmup W] [--iters N]
//            [--input NAME=FILE.npy]... [--shape NAME=d0,d1,...]... [--seed S]
//            [--output-dir DIR] [--json FILE] [--profile PREFIX]
//
//   --ort-dir DIR     a directory with node_modules/onnxruntime-node (npm
//                     install --prefix DIR onnxruntime-node)
//   --threads T       intraOpNumThreads (default 1); interOpNumThreads is 1,
//                     executionMode 'sequential', graphOptimizationLevel 'all'
//   --warmup W        untimed runs first (default 3)
//   --iters N         timed runs (default 20), each timed alone
//   --input NAME=FILE an input from a .npy file (float32/64, float16 as raw
//                     bits, int8/16/32/64, uint8/16/32, bool; C order)
//   --shape NAME=dims shape of an input without --input, filled with
//                     random float32 in [-1, 1) (seed --seed, default 0)
//   --output-dir DIR  after the timed runs, write each output as DIR/NAME.npy
//   --json FILE       write the results as JSON (also on a load or run error:
//                     then {"error": MESSAGE, ...})
//   --profile PREFIX  ONNX Runtime's own profile of every run, warm-up runs
//                     included (sessionOptions.enableProfiling), written as
//                     PREFIX_<date>.json (Chrome trace format: one event per
//                     node and run, "dur" in microseconds; bench/op_profile.py
//                     reads it). Profiling slows the runs: their latencies are
//                     not comparable with unprofiled ones
//
// Printed (stdout) and in the JSON: session_create_ms (InferenceSession.create
// on the file: read, graph optimisation, kernel creation), latency_ms
// {median, min, mean, p90, max} of the timed runs (each `await session.run`
// timed with process.hrtime, so the binding's tensor copies are included),
// peak_rss_bytes (process.resourceUsage().maxRSS: the whole Node process) and
// rss_before_load_bytes (the process before the model is loaded: Node's own
// share of the peak). Exit status 0, 1 on a model/input/run error, 2 on a
// command-line mistake.
'use strict';

const fs = require('fs');
const path = require('path');

const USAGE = 'usage: node ort_bench.js --ort-dir DIR --model MODEL [--threads T] [--warmup W] ' +
    '[--iters N] [--input NAME=FILE]... [--shape NAME=d0,d1,...]... [--seed S] ' +
    '[--output-dir DIR] [--json FILE] [--profile PREFIX]';

function usageError(msg) {
  process.stderr.write(`ort_bench.js: ${msg}\n${USAGE}\n`);
  process.exit(2);
}

function parseInt10(opt, s, lo, hi) {
  if (!/^[0-9]+$/.test(s)) usageError(`${opt} '${s}': expected an integer in [${lo}, ${hi}]`);
  const v = Number(s);
  if (v < lo || v > hi) usageError(`${opt} '${s}': expected an integer in [${lo}, ${hi}]`);
  return v;
}

function parseArgs(argv) {
  const a = {threads: 1, warmup: 3, iters: 20, seed: 0, inputs: [], shapes: [], json: null,
             outputDir: null, model: null, ortDir: null, profile: null};
  for (let i = 0; i < argv.length; i++) {
    const opt = argv[i];
    const val = () => {
      if (i + 1 >= argv.length) usageError(`${opt}: missing value`);
      return argv[++i];
    };
    const pair = (s) => {
      const k = s.indexOf('=');
      if (k <= 0) usageError(`${opt} '${s}': expected NAME=VALUE`);
      return [s.slice(0, k), s.slice(k + 1)];
    };
    switch (opt) {
      case '--ort-dir': a.ortDir = val(); break;
      case '--model': a.model = val(); break;
      case '--threads': a.threads = parseInt10(opt, val(), 1, 4096); break;
      case '--warmup': a.warmup = parseInt10(opt, val(), 0, 100000); break;
      case '--iters': a.iters = parseInt10(opt, val(), 1, 1000000); break;
      case '--seed': a.seed = parseInt10(opt, val(), 0, 2 ** 31 - 1); break;
      case '--input': a.inputs.push(pair(val())); break;
      case '--shape': a.shapes.push(pair(val())); break;
      case '--output-dir': a.outputDir = val(); break;
      case '--json': a.json = val(); break;
      case '--profile': a.profile = val(); break;
      case '-h': case '--help': process.stdout.write(USAGE + '\n'); process.exit(0); break;
      default: usageError(`unknown option '${opt}'`);
    }
  }
  if (!a.ortDir) usageError('--ort-dir is required');
  if (!a.model) usageError('--model is required');
  return a;
}

// ---- .npy ----------------------------------------------------------------------------

// numpy descr (without byte order) -> [ORT type, TypedArray, bytes per element]
const NPY_TYPES = {
  f4: ['float32', Float32Array, 4], f8: ['float64', Float64Array, 8],
  f2: ['float16', Uint16Array, 2], i1: ['int8', Int8Array, 1], i2: ['int16', Int16Array, 2],
  i4: ['int32', Int32Array, 4], i8: ['int64', BigInt64Array, 8], u1: ['uint8', Uint8Array, 1],
  u2: ['uint16', Uint16Array, 2], u4: ['uint32', Uint32Array, 4], b1: ['bool', Uint8Array, 1],
};

function readNpy(ort, file) {
  const buf = fs.readFileSync(file);
  const bad = (why) => { throw new Error(`'${file}': not a .npy file this tool reads (${why})`); };
  if (buf.length < 10 || buf.readUInt8(0) !== 0x93 || buf.toString('latin1', 1, 6) !== 'NUMPY') {
    bad('no NumPy magic');
  }
  const major = buf.readUInt8(6);
  const hlen = major === 1 ? buf.readUInt16LE(8) : buf.readUInt32LE(8);
  const start = (major === 1 ? 10 : 12) + hlen;
  if (start > buf.length) bad('truncated header');
  const header = buf.toString('latin1', major === 1 ? 10 : 12, start);
  const descr = /'descr':\s*'([<>|=])([a-z][0-9]+)'/.exec(header);
  const shape = /'shape':\s*\(([^)]*)\)/.exec(header);
  if (!descr || !shape) bad('header without descr or shape');
  if (/'fortran_order':\s*True/.test(header)) bad('Fortran order');
  if (descr[1] === '>') bad('big-endian data');
  const t = NPY_TYPES[descr[2]];
  if (!t) bad(`dtype '${descr[2]}'`);
  const dims = shape[1].split(',').map((s) => s.trim()).filter((s) => s.length).map(Number);
  const count = dims.reduce((p, d) => p * d, 1);
  if (buf.length - start < count * t[2]) bad('data shorter than its shape');
  // copy into an aligned buffer of its own
  const data = new t[1](count);
  Buffer.from(data.buffer).set(buf.subarray(start, start + count * t[2]));
  return new ort.Tensor(t[0], data, dims);
}

function writeNpy(file, tensor) {
  const descr = {float32: '<f4', float64: '<f8', float16: '<f2', int8: '|i1', int16: '<i2',
                 int32: '<i4', int64: '<i8', uint8: '|u1', uint16: '<u2', uint32: '<u4',
                 bool: '|b1'}[tensor.type];
  if (!descr) throw new Error(`output type '${tensor.type}' cannot be written as .npy`);
  const shape = tensor.dims.length === 1 ? `(${tensor.dims[0]},)` : `(${tensor.dims.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const head = Buffer.alloc(10);
  head.writeUInt8(0x93, 0);
  head.write('NUMPY', 1, 'latin1');
  head.writeUInt8(1, 6);
  head.writeUInt8(0, 7);
  head.writeUInt16LE(header.length, 8);
  const d = tensor.data;
  fs.writeFileSync(file, Buffer.concat([head, Buffer.from(header, 'latin1'),
                                        Buffer.from(d.buffer, d.byteOffset, d.byteLength)]));
}

// ---- random inputs (mulberry32: the same seed gives the same data) -------------------

function randomFloat32(ort, dims, rng) {
  const n = dims.reduce((p, d) => p * d, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = rng() * 2 - 1;
  return new ort.Tensor('float32', data, dims);
}

function mulberry32(seed) {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// ---- timing ---------------------------------------------------------------------------

function stats(times) {
  const s = [...times].sort((x, y) => x - y);
  const n = s.length;
  const median = n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
  const p90 = s[Math.max(0, Math.ceil(0.9 * n) - 1)];  // nearest rank, as qkv bench
  return {median, min: s[0], mean: s.reduce((p, x) => p + x, 0) / n, p90, max: s[n - 1]};
}

const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

async function main() {
  const a = parseArgs(process.argv.slice(2));
  const result = {runtime: 'onnxruntime-node', model: a.model, threads: a.threads,
                  warmup: a.warmup, iters: a.iters};
  const finish = (code) => {
    if (a.json) fs.writeFileSync(a.json, JSON.stringify(result, null, 1) + '\n');
    process.exitCode = code;
  };
  let ort;
  const modDir = path.join(path.resolve(a.ortDir), 'node_modules', 'onnxruntime-node');
  try {
    ort = require(modDir);
  } catch (e) {
    result.error = `cannot load onnxruntime-node from '${modDir}': ${e.message.split('\n')[0]}`;
    process.stderr.write(`ort_bench.js: ${result.error}\n`);
    return finish(1);
  }
  result.version = ort.env.versions.node;
  result.rss_before_load_bytes = process.memoryUsage().rss;
  let session;
  try {
    const opts = {executionProviders: ['cpu'], intraOpNumThreads: a.threads,
                  interOpNumThreads: 1, graphOptimizationLevel: 'all',
                  executionMode: 'sequential'};
    if (a.profile) Object.assign(opts, {enableProfiling: true, profileFilePrefix: a.profile});
    const t0 = nowMs();
    session = await ort.InferenceSession.create(a.model, opts);
    result.session_create_ms = nowMs() - t0;
  } catch (e) {
    result.error = `session creation failed: ${String(e.message || e).split('\n')[0]}`;
    process.stderr.write(`ort_bench.js: ${a.model}: ${result.error}\n`);
    return finish(1);
  }
  result.rss_after_load_bytes = process.memoryUsage().rss;
  const feeds = {};
  try {
    const rng = mulberry32(a.seed);
    for (const [name, file] of a.inputs) {
      if (!session.inputNames.includes(name)) {
        throw new Error(`--input ${name}: the model has no input '${name}' ` +
                        `(inputs: ${session.inputNames.join(', ')})`);
      }
      feeds[name] = readNpy(ort, file);
    }
    for (const [name, dims] of a.shapes) {
      if (feeds[name]) continue;
      feeds[name] = randomFloat32(ort, dims.split(',').map(Number), rng);
    }
    const missing = session.inputNames.filter((n) => !feeds[n]);
    if (missing.length) throw new Error(`inputs without a value: ${missing.join(', ')}`);
  } catch (e) {
    result.error = e.message;
    process.stderr.write(`ort_bench.js: ${e.message}\n`);
    return finish(1);
  }
  const times = [];
  let out;
  try {
    for (let i = 0; i < a.warmup; i++) out = await session.run(feeds);
    for (let i = 0; i < a.iters; i++) {
      const t0 = nowMs();
      out = await session.run(feeds);
      times.push(nowMs() - t0);
    }
  } catch (e) {
    result.error = `run failed: ${String(e.message || e).split('\n')[0]}`;
    process.stderr.write(`ort_bench.js: ${a.model}: ${result.error}\n`);
    return finish(1);
  }
  if (a.profile) session.endProfiling();
  result.latency_ms = stats(times);
  result.peak_rss_bytes = process.resourceUsage().maxRSS * 1024;  // maxRSS is in KiB
  result.times_ms = times;
  if (a.outputDir) {
    fs.mkdirSync(a.outputDir, {recursive: true});
    for (const [name, t] of Object.entries(out)) {
      writeNpy(path.join(a.outputDir, name.replace(/[^A-Za-z0-9._-]/g, '_') + '.npy'), t);
    }
  }
  const l = result.latency_ms;
  process.stdout.write(
      `model: ${a.model}\nonnxruntime-node ${result.version}, intra-op threads ${a.threads}, ` +
      `${a.warmup} warm-up runs, ${a.iters} timed runs\n` +
      `session creation: ${result.session_create_ms.toFixed(3)} ms\n` +
      `latency (ms): median ${l.median.toFixed(3)}  min ${l.min.toFixed(3)}  ` +
      `mean ${l.mean.toFixed(3)}  p90 ${l.p90.toFixed(3)}  max ${l.max.toFixed(3)}\n` +
      `peak RSS: ${(result.peak_rss_bytes / 1048576).toFixed(1)} MiB ` +
      `(before loading the model: ${(result.rss_before_load_bytes / 1048576).toFixed(1)} MiB)\n`);
  return finish(0);
}

main().catch((e) => {
  process.stderr.write(`ort_bench.js: ${e.stack || e}\n`);
  process.exitCode = 1;
});
