'use strict';
// Shared by index.js and model.js: options tables, argument conversion, owning handles,
// random streams, the spiral and device enumeration.
const { fn, C, libraryPath, deviceInfo } = require('./ffi');
const { LibnnError, CancelledError, DivergedError, STATUS, check } = require('./errors');

const ACTIVATIONS = { sigmoid: 0, relu: 1, tanh: 2, identity: 3 };
const LOSSES = { softmax_cross_entropy: 0, mean_squared_error: 1, mse: 1 };
const INITS = { normal: 0, xavier: 1, he: 2 };
const DTYPES = { float32: C.NN_DTYPE_FLOAT32, float64: C.NN_DTYPE_FLOAT64 };
const STORAGE = { model: C.NN_DTYPE_MODEL, float16: C.NN_DTYPE_FLOAT16, float32: C.NN_DTYPE_FLOAT32, float64: C.NN_DTYPE_FLOAT64 };
const DEVICES = { cpu: 0, cuda: 1, reference: 2, auto: 3 };
const PRECISIONS = { strict: 0, tf32: 1, float16: 2, bfloat16: 3 };
const DEVICE_NAMES = ['cpu', 'cuda', 'reference', 'auto'];

function choice(what, value, table) {
  if (!Object.prototype.hasOwnProperty.call(table, value)) {
    throw new RangeError(`${what} must be one of ${Object.keys(table).join(', ')}; got ${value}`);
  }
  return table[value];
}

function count(what, v) {
  if (!Number.isSafeInteger(v) || v < 0) throw new RangeError(`${what} must be a non-negative integer; got ${v}`);
  return v;
}

function uint32(what, v) {
  if (!Number.isInteger(v) || v < 0 || v > 0xFFFFFFFF) throw new RangeError(`${what} must be a uint32; got ${v}`);
  return v;
}

// A matrix is a Float32Array/Float64Array of rows × cols, row-major. Inputs may be given as
// { data, rows, cols }, as an array of rows (converted once to Float64Array), or as a flat
// typed array whose column count defaults to `defaultCols`.
function asMatrix(x, defaultCols, what = 'x') {
  let data; let rows; let cols;
  if (x instanceof Float32Array || x instanceof Float64Array) {
    data = x; cols = defaultCols;
    if (x.length % cols !== 0) throw new RangeError(`${what} has ${x.length} values, not a multiple of ${cols} columns; pass { data, rows, cols }`);
    rows = x.length / cols;
  } else if (Array.isArray(x)) {
    rows = x.length; cols = rows && Array.isArray(x[0]) ? x[0].length : defaultCols;
    data = Float64Array.from(Array.isArray(x[0]) ? x.flat() : x);
    if (!Array.isArray(x[0])) rows = data.length / cols;
    if (data.length !== rows * cols) throw new RangeError(`${what} rows have different lengths`);
  } else if (x && typeof x === 'object' && 'data' in x) {
    ({ rows, cols } = x);
    data = x.data instanceof Float32Array || x.data instanceof Float64Array ? x.data : Float64Array.from(x.data);
    count(`${what}.rows`, rows); count(`${what}.cols`, cols);
    if (data.length !== rows * cols) throw new RangeError(`${what}.data has ${data.length} values, ${what}.rows × ${what}.cols is ${rows * cols}`);
  } else {
    throw new TypeError(`${what} must be a Float32Array, Float64Array, { data, rows, cols } or an array of rows`);
  }
  if (!Number.isInteger(rows) || rows === 0) throw new RangeError(`${what} has no rows`);
  return { data, rows, cols, dtype: data instanceof Float32Array ? C.NN_DTYPE_FLOAT32 : C.NN_DTYPE_FLOAT64 };
}

// Targets: Int32Array (or integer array) of class indices, or rows of outputs values.
function asTargets(y, rows, outputs) {
  if (y instanceof Int32Array || (Array.isArray(y) && y.every(Number.isInteger) && outputs > 1)) {
    const data = y instanceof Int32Array ? y : Int32Array.from(y);
    if (data.length !== rows) throw new RangeError(`y has ${data.length} labels, x has ${rows} rows`);
    return { data, type: C.NN_TARGET_CLASS_INDEX, cols: 1 };
  }
  const m = asMatrix(y, outputs, 'y');
  if (m.rows !== rows) throw new RangeError(`y has ${m.rows} rows, x has ${rows}`);
  return { data: m.data, type: m.dtype === C.NN_DTYPE_FLOAT32 ? C.NN_TARGET_ROWS_FLOAT32 : C.NN_TARGET_ROWS_FLOAT64, cols: m.cols };
}

const registry = new FinalizationRegistry(({ destroy, handle }) => destroy(handle));

class Handle {
  constructor(handle, destroy) {
    this._h = handle;
    this._destroy = destroy;
    registry.register(this, { destroy, handle }, this);
  }

  get handle() {
    if (this._h === null) throw new Error(`this ${this.constructor.name} has been disposed`);
    if (this._busy) throw new Error(`this ${this.constructor.name} is in use by a running fit: a progress callback must not use it`);
    return this._h;
  }

  get disposed() { return this._h === null; }

  /** Frees the handle now; later use throws. Disposing twice is a no-op. */
  dispose() {
    if (this._h === null) return;
    if (this._busy) throw new Error(`this ${this.constructor.name} is in use by a running fit: a progress callback must not dispose it`);
    registry.unregister(this);
    this._destroy(this._h);
    this._h = null;
  }

  [Symbol.dispose || Symbol.for('nodejs.dispose')]() { this.dispose(); }
}

/** NumPy's legacy RandomState (MT19937), bit for bit. */
class Rng extends Handle {
  constructor(seed = 0) {
    const out = [null];
    check(fn.nn_rng_create(out, uint32('seed', seed)));
    super(out[0], fn.nn_rng_destroy);
  }

  seed(seed) {
    if (Array.isArray(seed) || seed instanceof Uint32Array) {
      const key = Uint32Array.from(seed, (k) => uint32('seed', k));
      check(fn.nn_rng_seed_array(this.handle, key, key.length));
    } else {
      check(fn.nn_rng_seed(this.handle, uint32('seed', seed)));
    }
  }

  randn(n) { const out = new Float64Array(count('n', n)); check(fn.nn_rng_randn(this.handle, out, n)); return out; }

  rand(n) { const out = new Float64Array(count('n', n)); check(fn.nn_rng_rand(this.handle, out, n)); return out; }

  permutation(n) { const out = new BigInt64Array(count('n', n)); check(fn.nn_rng_permutation(this.handle, out, n)); return out; }
}

/** The book's spiral: { x: Float64Array (rows × 2), t: Int32Array, rows, cols }. */
function spiral(pointsPerClass = 100, classes = 3, { seed = 1984, rng = null } = {}) {
  const rows = count('pointsPerClass', pointsPerClass) * count('classes', classes);
  const x = new Float64Array(rows * 2);
  const t = new Int32Array(rows);
  check(fn.nn_dataset_spiral(x, x.length, t, t.length, pointsPerClass, classes, rng ? rng.handle : null, uint32('seed', seed)));
  return { x, t, rows, cols: 2 };
}

function deviceFrom(info) {
  return { kind: DEVICE_NAMES[info.kind] || String(info.kind), index: info.index, available: !!info.available, name: info.name, reason: info.reason };
}

/** Every device entry libnn knows, available or not (with the reason). */
function devices() {
  const n = [0];
  check(fn.nn_device_count(n));
  const result = [];
  for (let i = 0; i < n[0]; i++) {
    const info = deviceInfo();
    check(fn.nn_device_get(i, info));
    result.push(deviceFrom(info));
  }
  return result;
}

module.exports = { LibnnError, CancelledError, DivergedError, STATUS, Handle, Rng, spiral, devices, deviceFrom, asMatrix, asTargets, choice, count, uint32,
  ACTIVATIONS, LOSSES, INITS, DTYPES, STORAGE, DEVICES, PRECISIONS, libraryPath, version: () => fn.nn_version_string() };
