'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const libnn = require('..');

function bookRun(dtype = 'float64') {
  const rng = new libnn.Rng(1984);
  const data = libnn.spiral(100, 3, { rng });
  const model = new libnn.Model({ layerSizes: [2, 10, 3], dtype, rng });
  const report = model.fit(data.x, data.t, { epochs: 300, batchSize: 30, learningRate: 1.0, reportInterval: 10, rng });
  rng.dispose();
  return { model, report, ...data };
}

function snapshot(model) {
  return { params: model.getParams(), losses: model.epochLosses(), history: model.lossHistory() };
}

test('the spiral trains to the book accuracy in float32 and float64', () => {
  for (const dtype of ['float32', 'float64']) {
    const { model, report, x, t } = bookRun(dtype);
    assert.equal(report.epochsRun, 300);
    assert.equal(report.stepsRun, 3000);
    assert.ok(model.evaluate(x, t).accuracy >= 0.96, dtype);
    const classes = model.predictClasses(x);
    assert.ok(classes instanceof Int32Array);
    assert.ok(classes.filter((c, i) => c === t[i]).length / t.length >= 0.96);
    const proba = model.predictProba(x);
    assert.ok(proba instanceof (dtype === 'float32' ? Float32Array : Float64Array));
    assert.equal(proba.length, 900);
    model.dispose();
  }
});

test('float64 losses are the book run (shared stream)', () => {
  const { model } = bookRun('float64');
  const losses = model.epochLosses();
  assert.equal(losses.length, 300);
  assert.ok(Math.abs(losses[0] - 1.1256062166823237) < 1e-12);
  assert.ok(Math.abs(losses[299] - 0.10854954795724311) < 1e-9);
  const history = model.lossHistory();
  assert.deepEqual(Object.keys(history[0]), ['epoch', 'iteration', 'stepsPerEpoch', 'loss']);
  assert.ok(Math.abs(history[0].loss - 1.0979835927063497) < 1e-12);
  model.dispose();
});

// The reference numbers are read in place: ../shared/reference from the repository root.
const REFERENCE = process.env.NN_REFERENCE_DIR || path.join(__dirname, '..', '..', '..', '..', 'shared', 'reference');

test('the Rng is NumPy legacy RandomState(1984), bit for bit', (t) => {
  const file = path.join(REFERENCE, 'rng', 'expected_numpy_basic_seed1984.txt');
  if (!fs.existsSync(file)) return t.skip(`no reference numbers at ${REFERENCE}`);
  const expected = fs.readFileSync(file, 'utf8').split('\n')
    .filter((l) => l.startsWith('randn ')).slice(0, 10).map((l) => BigInt(l.split(' ')[2]));
  const rng = new libnn.Rng(1984);
  assert.deepEqual(Array.from(new BigUint64Array(rng.randn(expected.length).buffer)), expected);
  assert.equal(rng.permutation(10).length, 10);
  rng.dispose();
});

test('bad inputs throw LibnnError with status and message, and leave the model usable', () => {
  const { x, t } = libnn.spiral(20, 3, { seed: 3 });
  const model = new libnn.Model({ layerSizes: [2, 10, 3], dtype: 'float64' });
  model.fit(x, t, { epochs: 5, batchSize: 10, learningRate: 1.0 });
  const before = snapshot(model);
  const bad = [
    [() => model.fit({ data: new Float64Array(60 * 3), rows: 60, cols: 3 }, t), libnn.STATUS.SHAPE_MISMATCH, /3 columns, the model expects 2/],
    [() => model.fit(x.map((v, i) => (i === 7 ? NaN : v)), t), libnn.STATUS.NON_FINITE, /./],
    [() => model.fit(x, t.map((v, i) => (i === 4 ? 3 : v))), libnn.STATUS.LABEL_OUT_OF_RANGE, /./],
    [() => model.fit(x, t, { learningRate: 0 }), libnn.STATUS.BAD_HYPERPARAMETER, /./],
    [() => model.fit(x, t, { batchSize: 0 }), libnn.STATUS.BAD_HYPERPARAMETER, /./],
    [() => model.predict({ data: new Float32Array(5), rows: 1, cols: 5 }), libnn.STATUS.SHAPE_MISMATCH, /columns/],
    [() => model.predict(new Float64Array([Infinity, 0])), libnn.STATUS.NON_FINITE, /./],
  ];
  for (const [call, status, message] of bad) {
    assert.throws(call, (e) => {
      assert.ok(e instanceof libnn.LibnnError, String(e));
      assert.equal(e.status, status);
      assert.match(e.code, /^NN_ERR_/);
      assert.match(e.detail, message);
      return true;
    });
  }
  assert.throws(() => model.fit(x, t, { batchSize: -1 }), RangeError);
  assert.throws(() => model.predict(new Float64Array(3)), RangeError); // not a multiple of 2 columns
  assert.throws(() => model.predict('nope'), TypeError);
  const after = snapshot(model);
  assert.deepEqual(after, before);
  assert.equal(model.predict(x).length, 180);
  model.fit(x, t, { epochs: 1, batchSize: 10, learningRate: 1.0 });
  assert.equal(model.epochLosses().length, before.losses.length + 1);
  model.dispose();
});

test('save/load round trips: file, buffer, float16, metadata', () => {
  const { model, x, t } = bookRun('float64');
  model.setMetadata('author', 'node tests');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'libnn-node-'));
  try {
    const file = path.join(dir, 'spiral.nnm');
    model.save(file);
    const loaded = libnn.Model.load(file);
    assert.deepEqual(loaded.layerSizes, [2, 10, 3]);
    assert.equal(loaded.dtype, 'float64');
    assert.deepEqual(loaded.getParams(), model.getParams());
    assert.deepEqual(loaded.predict(x), model.predict(x));
    assert.equal(loaded.getMetadata('author'), 'node tests');
    assert.equal(loaded.getMetadata('missing'), undefined);
    const fromBuffer = libnn.Model.fromBuffer(model.toBuffer());
    assert.deepEqual(fromBuffer.predict(x), model.predict(x));
    model.save(file, { storage: 'float16', includeTrainingState: false });
    const half = libnn.Model.load(file);
    assert.ok(half.evaluate(x, t).accuracy >= 0.96);
    assert.equal(half.epochLosses().length, 0);
    assert.throws(() => libnn.Model.load(path.join(dir, 'missing.nnm')), (e) => e.status === libnn.STATUS.IO);
    const corrupt = Buffer.from(model.toBuffer());
    corrupt[corrupt.length >> 1] ^= 0xff;
    assert.throws(() => libnn.Model.fromBuffer(corrupt), (e) => e.status === libnn.STATUS.CORRUPT);
    [loaded, fromBuffer, half].forEach((m) => m.dispose());
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
    model.dispose();
  }
});

test('devices: reference works, unavailable CUDA throws and the model stays', () => {
  const model = new libnn.Model([2, 10, 3]);
  assert.ok(libnn.devices().some((d) => d.kind === 'reference' && d.available));
  const x = new Float32Array([0.1, 0.2]);
  const before = model.predict(x);
  assert.equal(model.setDevice('reference').kind, 'reference');
  if (!libnn.devices().some((d) => d.kind === 'cuda' && d.available)) {
    assert.throws(() => model.setDevice('cuda', 0), (e) => e.status === libnn.STATUS.DEVICE_UNAVAILABLE && e.detail.length > 0);
    assert.equal(model.device.kind, 'reference');
  }
  assert.throws(() => model.setDevice('tpu'), RangeError);
  assert.throws(() => model.setDevice('cpu', -1), (e) => e.status === libnn.STATUS.INVALID_ARGUMENT);
  assert.deepEqual(model.predict(x), before);
  model.dispose();
});

test('precision: a model setting that moves with it, is not saved, and is refused for float64', () => {
  const model = new libnn.Model({ layerSizes: [2, 10, 3], precision: 'tf32' });
  assert.equal(model.precision, 'tf32');
  model.precision = 'bfloat16';
  model.setDevice('reference');
  assert.equal(model.precision, 'bfloat16');
  const loaded = libnn.Model.fromBuffer(model.toBuffer());
  assert.equal(loaded.precision, 'strict');
  assert.throws(() => { model.precision = 'fp8'; }, RangeError);
  assert.equal(model.precision, 'bfloat16');
  const double = new libnn.Model({ layerSizes: [2, 10, 3], dtype: 'float64' });
  assert.throws(() => { double.precision = 'tf32'; }, (e) => e.status === libnn.STATUS.UNSUPPORTED && /float32/.test(e.detail));
  assert.equal(double.precision, 'strict');
  [model, loaded, double].forEach((m) => m.dispose());
});

test('dispose is idempotent and later use throws; typed arrays pass in place', () => {
  const model = new libnn.Model({ layerSizes: [2, 4, 3], seed: 7 });
  const out = new Float32Array(3);
  assert.equal(model.predict(new Float32Array([1, 2]), { out }), out);
  model.dispose();
  model.dispose();
  assert.ok(model.disposed);
  assert.throws(() => model.predict(new Float32Array([1, 2])), /disposed/);
  assert.throws(() => new libnn.Model([2, 1]), (e) => e.status === libnn.STATUS.INVALID_ARGUMENT);
});
