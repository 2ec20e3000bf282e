'use strict';
// The trainer through Model.fit: optimizers, the progress callback and cancellation,
// validation and early stopping, class weights, divergence, bad options.
const test = require('node:test');
const assert = require('node:assert/strict');
const libnn = require('..');

const spiral = libnn.spiral(100, 3, { seed: 1984 });

// libnn's AUTO device is CUDA when there is a GPU; a backend plugin without optimizer state
// trains plain SGD only and refuses the rest with NN_ERR_UNSUPPORTED. The models here go
// to AUTO when its backend trains Adam, else to the CPU plugin, else to the reference.
const DEVICE = (() => {
  const { x, t } = libnn.spiral(2, 2, { seed: 1 });
  const probe = new libnn.Model([2, 2]);
  try {
    probe.fit(x, t, { epochs: 1, batchSize: 4, optimizer: 'adam', learningRate: 0.001 });
    return 'auto';
  } catch (e) {
    if (e.status !== libnn.STATUS.UNSUPPORTED) throw e;
  } finally {
    probe.dispose();
  }
  return libnn.devices().some((d) => d.kind === 'cpu' && d.available) ? 'cpu' : 'reference';
})();

// A 2-30-3 tanh net: trains the spiral in ~100 epochs with every optimizer.
function net(seed = 0, dtype = 'float64') {
  return new libnn.Model({ layerSizes: [2, 30, 3], activation: 'tanh', init: 'xavier', dtype, seed, device: DEVICE });
}

function accuracy(model, x, t) { return model.evaluate(x, t).accuracy; }

const SETTINGS = {
  sgd: { learningRate: 0.5 },
  momentum: { learningRate: 0.1, momentum: 0.9 },
  nesterov: { learningRate: 0.1 },
  adagrad: { learningRate: 0.5 },
  rmsprop: { learningRate: 0.01, decayRate: 0.99 },
  adam: { learningRate: 0.02, beta1: 0.9, beta2: 0.999 },
};

test('every optimizer trains the spiral', () => {
  const { x, t } = spiral;
  for (const [optimizer, options] of Object.entries(SETTINGS)) {
    const model = net(3, 'float32');
    const report = model.fit(x, t, { epochs: 100, batchSize: 30, optimizer, ...options });
    assert.equal(report.epochsRun, 100);
    assert.ok(accuracy(model, x, t) >= 0.9, optimizer);
    model.dispose();
  }
});

test('optimizer state persists until resetOptimizer()', () => {
  const { x, t } = spiral;
  const kept = net(); const reset = net();
  const o = { epochs: 5, batchSize: 30, optimizer: 'adam', learningRate: 0.01, shuffle: false };
  kept.fit(x, t, o); reset.fit(x, t, o);
  reset.resetOptimizer();
  kept.fit(x, t, { ...o, epochs: 1 }); reset.fit(x, t, { ...o, epochs: 1 });
  assert.notDeepEqual(kept.getParams(), reset.getParams());
  assert.equal(kept.epochHistory().at(-1).epoch, 6);
  kept.dispose(); reset.dispose();
});

test('the callback sees every report and epoch end, and can stop the fit', () => {
  const { x, t } = spiral;
  const model = net();
  const seen = [];
  model.fit(x, t, { epochs: 2, batchSize: 30, learningRate: 0.5, reportInterval: 5, callback: (p) => { seen.push(p); } });
  assert.deepEqual(seen.map((p) => [p.event, p.epoch, p.iteration]), [
    ['report', 1, 1], ['report', 1, 6], ['epochEnd', 1, 10], ['report', 2, 1], ['report', 2, 6], ['epochEnd', 2, 10]]);
  assert.deepEqual(Object.keys(seen[0]), ['event', 'epoch', 'iteration', 'stepsPerEpoch', 'loss', 'valLoss', 'valAccuracy', 'elapsed']);
  assert.deepEqual(seen.filter((p) => p.event === 'epochEnd').map((p) => p.loss), Array.from(model.epochLosses()));
  assert.ok(seen.every((p) => Number.isNaN(p.valLoss) && p.elapsed >= 0));

  assert.throws(() => model.fit(x, t, { epochs: 50, batchSize: 30, learningRate: 0.5, reportInterval: 5,
    callback: (p) => p.event === 'epochEnd' && p.epoch === 4 }), (e) => {
    assert.ok(e instanceof libnn.CancelledError && e instanceof libnn.LibnnError);
    assert.equal(e.status, libnn.STATUS.CANCELLED);
    assert.equal(e.code, 'NN_ERR_CANCELLED');
    assert.ok(e.detail.length > 0);
    assert.equal(e.report.epochsRun, 2); // epochs 3 and 4 of the model's life
    return true;
  });
  assert.deepEqual(model.epochHistory().map((r) => r.epoch), [1, 2, 3, 4]); // history intact
  assert.equal(model.predict(x).length, 900);
  model.fit(x, t, { epochs: 1, batchSize: 30, learningRate: 0.5 }); // usable
  assert.equal(model.epochHistory().at(-1).epoch, 5);
  model.dispose();
});

test('an exception thrown in the callback stops the fit and is re-thrown', () => {
  const { x, t } = spiral;
  const model = net();
  class Boom extends Error {}
  assert.throws(() => model.fit(x, t, { epochs: 20, batchSize: 30, learningRate: 0.5,
    callback: (p) => { if (p.event === 'epochEnd' && p.epoch === 2) throw new Boom('from the callback'); } }),
  (e) => e instanceof Boom && e.message === 'from the callback');
  assert.equal(model.epochLosses().length, 2);
  // The callback must not use the model being trained; other models are fine.
  assert.throws(() => model.fit(x, t, { epochs: 2, callback: () => model.predict(x) }), /in use by a running fit/);
  assert.throws(() => model.fit(x, t, { epochs: 2, callback: () => model.dispose() }), /in use by a running fit/);
  const other = net(1);
  model.fit(x, t, { epochs: 2, batchSize: 30, learningRate: 0.5, callback: () => { other.predict(x); } });
  assert.equal(model.epochLosses().length, 4);
  assert.throws(() => model.fit(x, t, { callback: 42 }), TypeError);
  // Many fits with callbacks: each registration is released (koffi has a fixed number of slots).
  for (let i = 0; i < 200; i++) model.fit(x, t, { epochs: 1, batchSize: 300, learningRate: 0.1, callback: () => false });
  model.dispose(); other.dispose();
});

function noisySplit() {
  const { x, t } = spiral;
  // A fixed pseudo-random noise and split (a small LCG), so the run is the same everywhere.
  let s = 12345;
  const rand = () => { s = (s * 1103515245 + 12345) % 2147483648; return s / 2147483648; };
  const noisy = Float64Array.from(x, (v) => v + (rand() - 0.5) * 0.5);
  const idx = Array.from({ length: t.length }, (_, i) => i).sort(() => rand() - 0.5);
  const pick = (rows) => ({ x: Float64Array.from(rows.flatMap((i) => [noisy[2 * i], noisy[2 * i + 1]])), t: Int32Array.from(rows, (i) => t[i]) });
  return { train: pick(idx.slice(0, 150)), val: pick(idx.slice(150)) };
}

test('early stopping with validation data restores the best weights', () => {
  const { train, val } = noisySplit();
  const model = new libnn.Model({ layerSizes: [2, 64, 64, 3], activation: 'relu', init: 'he', dtype: 'float64', seed: 0, device: DEVICE });
  const report = model.fit(train.x, train.t, { epochs: 500, batchSize: 15, optimizer: 'adam', learningRate: 0.01,
    validationData: [val.x, val.t], earlyStopping: true, patience: 5 });
  const history = model.epochHistory();
  assert.ok(report.stoppedEarly && report.epochsRun < 500 && history.length === report.epochsRun);
  let best = 0;
  history.forEach((r, i) => { if (r.valLoss < history[best].valLoss) best = i; });
  assert.equal(report.bestEpoch, history[best].epoch);
  assert.ok(report.bestEpoch < report.epochsRun);
  assert.equal(report.bestLoss, history[best].valLoss);
  const { loss, accuracy: acc } = model.evaluate(val.x, val.t);
  assert.ok(Math.abs(loss - report.bestLoss) <= 1e-12 * report.bestLoss, `${loss} vs ${report.bestLoss}`);
  assert.ok(Math.abs(acc - history[best].valAccuracy) < 1e-12);
  model.dispose();
});

test('validationFraction, class weights', () => {
  const { x, t } = spiral;
  const model = net();
  const report = model.fit(x, t, { epochs: 3, batchSize: 30, learningRate: 0.5, validationFraction: 0.2 });
  assert.equal(report.stepsPerEpoch, 8);
  assert.ok(model.epochHistory().every((r) => Number.isFinite(r.valLoss) && Number.isFinite(r.valAccuracy)));
  model.dispose();
  const counts = {};
  for (const [name, classWeights] of [['none', undefined], ['array', [1, 1, 20]], ['object', { 2: 20 }]]) {
    const small = new libnn.Model({ layerSizes: [2, 3, 3], dtype: 'float64', seed: 0, device: DEVICE });
    small.fit(x, t, { epochs: 50, batchSize: 30, learningRate: 0.5, classWeights });
    counts[name] = small.predictClasses(x).filter((c) => c === 2).length;
    small.dispose();
  }
  assert.equal(counts.array, counts.object);
  assert.ok(counts.array > counts.none + 20, JSON.stringify(counts));
});

test('divergence throws DivergedError and keeps the last good weights', () => {
  const rows = 200;
  const x = new Float64Array(rows * 3); const y = new Float64Array(rows);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < 3; j++) x[3 * i + j] = Math.sin(7 * i + 3 * j) * 2;
    y[i] = 0.5 * x[3 * i] - x[3 * i + 1] + 2 * x[3 * i + 2];
  }
  const model = new libnn.Model({ layerSizes: [3, 16, 1], activation: 'tanh', loss: 'mse', dtype: 'float64', init: 'xavier' });
  const data = { data: x, rows, cols: 3 };
  const targets = { data: y, rows, cols: 1 };
  assert.throws(() => model.fit(data, targets, { epochs: 50, batchSize: 20, learningRate: 5 }), (e) => {
    assert.ok(e instanceof libnn.DivergedError && e instanceof libnn.LibnnError);
    assert.equal(e.status, libnn.STATUS.DIVERGED);
    assert.match(e.detail, /diverged/);
    assert.ok(e.report.epochsRun < 50);
    return true;
  });
  assert.ok(model.getParams().every(Number.isFinite));
  assert.ok(model.epochLosses().every(Number.isFinite));
  model.dispose();
});

test('bad option values throw with the library message and change nothing', () => {
  const { x, t } = libnn.spiral(20, 3, { seed: 3 });
  const model = new libnn.Model({ layerSizes: [2, 10, 3], dtype: 'float64', device: DEVICE });
  model.fit(x, t, { epochs: 5, batchSize: 10, learningRate: 1.0, optimizer: 'adam' });
  const params = model.getParams(); const history = model.epochHistory();
  const S = libnn.STATUS;
  const cases = [
    [{ optimizer: 'momentum', momentum: -0.1 }, S.BAD_HYPERPARAMETER, /momentum/],
    [{ optimizer: 'adam', beta1: 1 }, S.BAD_HYPERPARAMETER, /beta1/],
    [{ optimizer: 'adam', beta2: 0 }, S.BAD_HYPERPARAMETER, /beta2/],
    [{ optimizer: 'rmsprop', decayRate: 1.5 }, S.BAD_HYPERPARAMETER, /decay_rate/],
    [{ optimizer: 'adagrad', epsilon: 0 }, S.BAD_HYPERPARAMETER, /epsilon/],
    [{ maxGradNorm: -1 }, S.BAD_HYPERPARAMETER, /max_grad_norm/],
    [{ weightDecay: NaN }, S.BAD_HYPERPARAMETER, /weight_decay/],
    [{ earlyStopping: true, patience: -1 }, S.BAD_HYPERPARAMETER, /patience/],
    [{ minDelta: -1 }, S.BAD_HYPERPARAMETER, /min_delta/],
    [{ validationFraction: 1 }, S.BAD_HYPERPARAMETER, /validation_fraction/],
    [{ classWeights: [1, 1] }, S.SHAPE_MISMATCH, /class weights/],
    [{ classWeights: [1, -1, 1] }, S.BAD_HYPERPARAMETER, /class_weights/],
    [{ optimizer: 99 }, S.INVALID_ARGUMENT, /optimizer/],
    [{ validationData: [x, Int32Array.from(t, (v) => v + 1)] }, S.LABEL_OUT_OF_RANGE, /validation/],
    [{ validationData: [x.map(() => NaN), t] }, S.NON_FINITE, /validation/],
  ];
  for (const [options, status, message] of cases) {
    let called = false;
    assert.throws(() => model.fit(x, t, { epochs: 2, batchSize: 10, learningRate: 0.01, callback: () => { called = true; }, ...options }), (e) => {
      assert.ok(e instanceof libnn.LibnnError, `${JSON.stringify(options)}: ${e}`);
      assert.equal(e.status, status, JSON.stringify(options));
      assert.match(e.detail, message);
      return true;
    });
    assert.equal(called, false);
  }
  assert.throws(() => model.fit(x, t, { optimizer: 'lbfgs' }), RangeError);
  assert.throws(() => model.fit(x, t, { momentum: '0.9' }), TypeError);
  assert.throws(() => model.fit(x, t, { patience: 2 ** 31 }), RangeError);
  assert.throws(() => model.fit(x, t, { learning_rate: 0.1 }), /unknown fit option 'learning_rate'/);
  assert.throws(() => model.fit(x, t, { validationData: [{ data: new Float64Array(60 * 3), rows: 60, cols: 3 }, t] }), /validation set: x has 3 columns, the model expects 2/);
  assert.deepEqual(model.getParams(), params);
  assert.deepEqual(model.epochHistory(), history);
  model.fit(x, t, { epochs: 1, batchSize: 10, learningRate: 0.01, optimizer: 'adam' });
  assert.equal(model.epochHistory().length, history.length + 1);
  model.dispose();
});
