#!/usr/bin/env node
'use strict';
// Microseconds per nn_predict call through the Node binding, on one spiral row and on 1,000
// rows, beside a plain-JS forward pass of the same 2-10-3 net (same weights) — Node has no
// NumPy; the Python twin of this file compares with NumPy.
//   NN_LIBRARY=build/release/lib/libnn.so node bench/bindings/predict_overhead.js [float32|float64]
// Rows: Model.predict (the whole binding: checks, output array), the raw koffi nn_predict with
// a preallocated output (the FFI floor), plain JS. Median over batches, per call.
const path = require('node:path');
const libnn = require(path.join(__dirname, '../../bindings/node'));
const { fn, C } = require(path.join(__dirname, '../../bindings/node/lib/ffi'));

function perCallUs(f, calls, batches) {
  f();
  const samples = [];
  for (let b = 0; b < batches; b++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < calls; i++) f();
    samples.push(Number(process.hrtime.bigint() - t0) / calls / 1e3);
  }
  samples.sort((a, b) => a - b);
  return samples[samples.length >> 1];
}

const dtype = process.argv[2] || 'float64';
const Type = dtype === 'float32' ? Float32Array : Float64Array;
const rng = new libnn.Rng(1984);
const data = libnn.spiral(100, 3, { rng });
const model = new libnn.Model({ layerSizes: [2, 10, 3], dtype, rng });
model.fit(data.x, data.t, { epochs: 300, batchSize: 30, learningRate: 1.0, rng });
const p = model.getParams(); // W1 (2×10), b1 (10), W2 (10×3), b2 (3)
const W1 = p.subarray(0, 20); const b1 = p.subarray(20, 30); const W2 = p.subarray(30, 60); const b2 = p.subarray(60, 63);

function jsForward(x, rows, out) {
  const h = new Float64Array(10);
  for (let r = 0; r < rows; r++) {
    const x0 = x[2 * r]; const x1 = x[2 * r + 1];
    for (let j = 0; j < 10; j++) h[j] = 1 / (1 + Math.exp(-(x0 * W1[j] + x1 * W1[10 + j] + b1[j])));
    for (let k = 0; k < 3; k++) {
      let s = b2[k];
      for (let j = 0; j < 10; j++) s += h[j] * W2[3 * j + k];
      out[3 * r + k] = s;
    }
  }
  return out;
}

const x1000 = new Type(2000);
for (let i = 0; i < 2000; i++) x1000[i] = data.x[i % 600];
const one = Type.from(data.x.subarray(0, 2));
const check = model.predict(x1000); const js = jsForward(x1000, 1000, new Type(3000));
const tol = dtype === 'float32' ? 1e-4 : 1e-12;
for (let i = 0; i < 3000; i++) if (Math.abs(check[i] - js[i]) > tol * (1 + Math.abs(js[i]))) throw new Error(`forward mismatch at ${i}`);

console.log(`libnn ${libnn.version()} (${libnn.libraryPath}), ${dtype}, device: ${model.device.name}, node ${process.version}`);
console.log(`${'rows'.padStart(6)} | ${'Model.predict'.padStart(14)} | ${'raw koffi nn_predict'.padStart(20)} | ${'plain JS forward'.padStart(16)}`);
console.log('-'.repeat(66));
const code = dtype === 'float32' ? C.NN_DTYPE_FLOAT32 : C.NN_DTYPE_FLOAT64;
for (const [rows, x, calls, batches] of [[1, one, 500, 200], [1000, x1000, 20, 100]]) {
  const out = new Type(rows * 3);
  const h = model.handle;
  const wrapped = perCallUs(() => model.predict(x), calls, batches);
  const floor = perCallUs(() => fn.nn_predict(h, x, code, rows, 2, 0, out, code, out.length), calls, batches);
  const plain = perCallUs(() => jsForward(x, rows, out), calls, batches);
  console.log(`${String(rows).padStart(6)} | ${wrapped.toFixed(2).padStart(11)} µs | ${floor.toFixed(2).padStart(17)} µs | ${plain.toFixed(2).padStart(13)} µs`);
}
model.dispose();
rng.dispose();
