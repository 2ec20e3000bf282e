#!/usr/bin/env node
'use strict';
// The book's ch01/train.py through the Node binding: the 2-10-3 net on the spiral with
// Trainer(model, SGD(lr=1.0)).fit(x, t, 300, 30, eval_interval=10), its lines printed as it
// goes by a progress callback; then Adam on the same data, a save/load round trip and the
// decision boundary drawn as text.
//   NN_LIBRARY=build/release/lib/libnn.so node bindings/node/examples/spiral.js
const os = require('node:os');
const path = require('node:path');
const libnn = require('..');

const rng = new libnn.Rng(1984); // the book's global NumPy stream: data, weights, shuffle
const { x, t, rows } = libnn.spiral(100, 3, { rng });
const model = new libnn.Model({ layerSizes: [2, 10, 3], dtype: 'float64', rng });
try {
  const report = model.fit(x, t, {
    epochs: 300, batchSize: 30, learningRate: 1.0, reportInterval: 10, rng,
    callback: (p) => {
      if (p.event === 'report') console.log(`| epoch ${p.epoch} |  iter ${p.iteration} / ${p.stepsPerEpoch} | time ${Math.trunc(p.elapsed)}[s] | loss ${p.loss.toFixed(2)}`);
    },
  });
  const { loss, accuracy } = model.evaluate(x, t);
  console.log(`trained on ${model.device.name} in ${(report.seconds * 1e3).toFixed(1)} ms: loss ${loss.toFixed(4)}, accuracy ${accuracy.toFixed(2)} (${rows} points)`);

  // Adam, stopping early once the training loss stops improving by 0.001 for 10 epochs.
  const adam = new libnn.Model({ layerSizes: [2, 10, 3], dtype: 'float64', seed: 1984 });
  const r = adam.fit(x, t, { epochs: 1000, batchSize: 30, optimizer: 'adam', learningRate: 0.02,
    earlyStopping: true, patience: 10, minDelta: 1e-3 });
  console.log(`adam: ${r.epochsRun} epochs${r.stoppedEarly ? ' (stopped early)' : ''}, accuracy ${adam.evaluate(x, t).accuracy.toFixed(2)}`);
  adam.dispose();

  const file = path.join(os.tmpdir(), `spiral-${process.pid}.nnm`);
  model.save(file, { storage: 'float16' });
  const loaded = libnn.Model.load(file);
  console.log(`float16 round trip: accuracy ${loaded.evaluate(x, t).accuracy.toFixed(2)}`);
  loaded.dispose();
  require('node:fs').unlinkSync(file);

  // The decision boundary on a 64 × 24 grid over [-1.1, 1.1]², one character per class.
  const W = 64; const H = 24;
  const grid = new Float64Array(W * H * 2);
  for (let r = 0; r < H; r++) {
    for (let c = 0; c < W; c++) {
      grid[2 * (r * W + c)] = -1.1 + 2.2 * c / (W - 1);
      grid[2 * (r * W + c) + 1] = 1.1 - 2.2 * r / (H - 1);
    }
  }
  const classes = model.predictClasses(grid);
  for (let r = 0; r < H; r++) console.log(Array.from(classes.subarray(r * W, (r + 1) * W), (k) => '.x^'[k]).join(''));
} finally {
  model.dispose();
  rng.dispose();
}
