'use strict';
// libnn.Model for Node.js: the same surface as the Python binding's Model.
const { koffi, fn, C, types, modelDesc, fitOptions, fitReport, saveOptions, deviceInfo } = require('./ffi');
const { check, errorFor } = require('./errors');
const { Handle, asMatrix, asTargets, choice, count, uint32, deviceFrom,
  ACTIVATIONS, LOSSES, INITS, DTYPES, STORAGE, DEVICES, PRECISIONS } = require('./core');

const OUT_TYPES = { float32: Float32Array, float64: Float64Array };
const OPTIMIZERS = { sgd: 0, momentum: 1, nesterov: 2, adagrad: 3, rmsprop: 4, adam: 5 };
const EVENTS = { [C.NN_PROGRESS_REPORT]: 'report', [C.NN_PROGRESS_EPOCH_END]: 'epochEnd' };
const DEVICE_NAMES = ['cpu', 'cuda', 'reference'];
const PRECISION_NAMES = Object.keys(PRECISIONS);
// fit() options: camelCase name -> nn_fit_options field, for the plain numbers.
const REAL_OPTIONS = { momentum: 'momentum', decayRate: 'decay_rate', beta1: 'beta1', beta2: 'beta2',
  epsilon: 'epsilon', maxGradNorm: 'max_grad_norm', weightDecay: 'weight_decay',
  validationFraction: 'validation_fraction', minDelta: 'min_delta' };
const FIT_OPTIONS = new Set(['epochs', 'batchSize', 'learningRate', 'shuffle', 'reportInterval', 'rng', 'optimizer',
  'classWeights', 'validationData', 'earlyStopping', 'patience', 'restoreBest', 'callback', ...Object.keys(REAL_OPTIONS)]);

function real(what, v) {
  if (typeof v !== 'number') throw new TypeError(`${what} must be a number; got ${v}`);
  return v; // range checks are the library's, so its message is shown
}

function int32(what, v) {
  if (!Number.isInteger(v) || v < -0x80000000 || v > 0x7FFFFFFF) throw new RangeError(`${what} must be an int32; got ${v}`);
  return v;
}

function optimizerCode(v) {
  if (typeof v === 'string') return choice('optimizer', v.toLowerCase(), OPTIMIZERS);
  return int32('optimizer', v); // an unknown number is refused by the library, with its message
}

function fitReportFrom(r) {
  return { epochsRun: r.epochs_run, stepsRun: r.steps_run, stepsPerEpoch: r.steps_per_epoch, finalLoss: r.final_loss,
    seconds: r.seconds, device: { kind: DEVICE_NAMES[r.device_kind], index: r.device_index },
    stoppedEarly: !!r.stopped_early, bestEpoch: Number(r.best_epoch), bestLoss: r.best_loss,
    finalValLoss: r.final_val_loss, finalValAccuracy: r.final_val_accuracy };
}

function progressFrom(p) {
  return { event: EVENTS[p.event] || p.event, epoch: Number(p.epoch), iteration: Number(p.iteration),
    stepsPerEpoch: Number(p.steps_per_epoch), loss: p.loss, valLoss: p.val_loss, valAccuracy: p.val_accuracy,
    elapsed: p.elapsed_seconds };
}

class Model extends Handle {
  /**
   * new Model({ layerSizes: [2, 10, 3], activation: 'sigmoid', loss: 'softmax_cross_entropy',
   *             dtype: 'float32', init: 'normal', initStd: 0.01, seed: 1984, rng, device,
   *             precision: 'strict' })
   * The defaults are nn.h's (the book's chapter-1 net in float32). `rng` (a libnn.Rng) draws
   * the initial weights from a shared stream instead of `seed`.
   */
  constructor(options) {
    if (options && options.__handle !== undefined) { // from load()/fromBuffer()
      super(options.__handle, fn.nn_destroy);
      this._describe();
      return;
    }
    const o = Array.isArray(options) ? { layerSizes: options } : options || {};
    const desc = modelDesc();
    if (!Array.isArray(o.layerSizes)) throw new TypeError('layerSizes must be an array of sizes');
    desc.layer_sizes = BigUint64Array.from(o.layerSizes, (s) => BigInt(count('layer size', s)));
    desc.n_layer_sizes = o.layerSizes.length;
    if (o.activation !== undefined) desc.hidden_activation = choice('activation', o.activation, ACTIVATIONS);
    if (o.loss !== undefined) desc.loss = choice('loss', o.loss, LOSSES);
    if (o.dtype !== undefined) desc.dtype = choice('dtype', o.dtype, DTYPES);
    if (o.init !== undefined) desc.init = choice('init', o.init, INITS);
    if (o.initStd !== undefined) desc.init_std = Number(o.initStd);
    if (o.seed !== undefined) desc.seed = uint32('seed', o.seed);
    if (o.rng) desc.rng = o.rng.handle;
    const out = [null];
    check(fn.nn_create(out, desc));
    super(out[0], fn.nn_destroy);
    this._describe();
    if (o.precision !== undefined && o.precision !== 'strict') this.precision = o.precision;
    if (o.device !== undefined && o.device !== 'auto') this.setDevice(o.device);
  }

  static create(options) { return new Model(options); }

  _describe() {
    const n = [0];
    check(fn.nn_model_layer_count(this.handle, n));
    const sizes = new BigUint64Array(n[0]);
    check(fn.nn_model_layer_sizes(this.handle, sizes, sizes.length));
    this.layerSizes = Array.from(sizes, Number);
    const d = [0];
    check(fn.nn_model_dtype(this.handle, d));
    this.dtype = d[0] === C.NN_DTYPE_FLOAT64 ? 'float64' : 'float32';
    check(fn.nn_param_count(this.handle, n));
    this.paramCount = n[0];
  }

  get nInputs() { return this.layerSizes[0]; }

  get nOutputs() { return this.layerSizes[this.layerSizes.length - 1]; }

  /**
   * Trains as the book's Trainer.fit. x: Float32Array/Float64Array (rows × inputs),
   * { data, rows, cols } or an array of rows; y: Int32Array class labels or rows of targets.
   * Options default to nn.h's: { epochs: 10, batchSize: 32, learningRate: 0.01, shuffle: true,
   * reportInterval: 20, rng: null, optimizer: 'sgd' } and
   *   optimizer: 'sgd' | 'momentum' | 'nesterov' | 'adagrad' | 'rmsprop' | 'adam' (Adam's book
   *     lr is 0.001: set learningRate), momentum (0.9), decayRate (0.99), beta1 (0.9),
   *     beta2 (0.999), epsilon (1e-7);
   *   maxGradNorm (0: no clipping), weightDecay (0), classWeights (one per class, or
   *     { classIndex: weight } with the others 1);
   *   validationData: [xVal, yVal] (or { x, y }), or validationFraction of the rows held out;
   *   earlyStopping (false), patience (10), minDelta (0), restoreBest (true);
   *   callback(progress): called at every loss record and epoch end with { event: 'report' |
   *     'epochEnd', epoch, iteration, stepsPerEpoch, loss, valLoss, valAccuracy, elapsed };
   *     a truthy return stops the fit with a CancelledError, and an exception it throws stops
   *     the fit and is re-thrown here. It must not use this model.
   * Returns the fit report. On a bad argument nothing changes; CancelledError and DivergedError
   * keep the training before them, described by their `.report`.
   */
  fit(x, y, options = {}) {
    for (const k of Object.keys(options)) {
      if (!FIT_OPTIONS.has(k)) throw new TypeError(`unknown fit option '${k}'; the options are ${[...FIT_OPTIONS].join(', ')}`);
    }
    const m = asMatrix(x, this.nInputs);
    const t = asTargets(y, m.rows, this.nOutputs);
    const o = fitOptions();
    if (options.epochs !== undefined) o.epochs = count('epochs', options.epochs);
    if (options.batchSize !== undefined) o.batch_size = count('batchSize', options.batchSize);
    if (options.learningRate !== undefined) o.learning_rate = real('learningRate', options.learningRate);
    if (options.shuffle !== undefined) o.shuffle = options.shuffle ? 1 : 0;
    if (options.reportInterval !== undefined) o.report_interval = count('reportInterval', options.reportInterval);
    if (options.rng) o.rng = options.rng.handle;
    if (options.optimizer !== undefined) o.optimizer = optimizerCode(options.optimizer);
    for (const [k, field] of Object.entries(REAL_OPTIONS)) {
      if (options[k] !== undefined) o[field] = real(k, options[k]);
    }
    if (options.classWeights !== undefined && options.classWeights !== null) {
      const w = this._classWeights(options.classWeights);
      o.class_weights = w.length ? w : null;
      o.n_class_weights = w.length;
    }
    if (options.validationData !== undefined && options.validationData !== null) {
      const v = options.validationData;
      const [vx, vy] = Array.isArray(v) ? v : [v.x, v.y];
      if (vx === undefined || vy === undefined) throw new TypeError('validationData must be [xVal, yVal] or { x, y }');
      const vm = asMatrix(vx, this.nInputs, 'validationData x');
      const vt = asTargets(vy, vm.rows, this.nOutputs);
      Object.assign(o, { val_x: vm.data, val_x_dtype: vm.dtype, val_rows: vm.rows, val_cols: vm.cols, val_targets: vt.data,
        val_target_type: vt.type, val_target_cols: vt.cols });
    }
    if (options.earlyStopping !== undefined) o.early_stopping = options.earlyStopping ? 1 : 0;
    if (options.patience !== undefined) o.patience = int32('patience', options.patience);
    if (options.restoreBest !== undefined) o.restore_best = options.restoreBest ? 1 : 0;
    const r = fitReport();
    const handle = this.handle;
    let callbackError = null; let failed = false;
    let registered = null;
    if (options.callback !== undefined && options.callback !== null) {
      const callback = options.callback;
      if (typeof callback !== 'function') throw new TypeError('callback must be a function');
      // koffi would turn an exception into a 0 return (go on): catch it here, stop the fit,
      // and re-throw it once nn_fit has returned.
      registered = koffi.register((progress) => {
        try {
          return callback(progressFrom(koffi.decode(progress, types.nn_progress))) ? 1 : 0;
        } catch (e) {
          callbackError = e; failed = true;
          return 1;
        }
      }, koffi.pointer(types.nn_progress_fn));
      o.progress = registered;
    }
    let status;
    this._busy = true; // a callback using this model would re-enter it mid-fit
    const rng = options.rng || null;
    if (rng) rng._busy = true;
    try {
      status = fn.nn_fit(handle, m.data, m.dtype, m.rows, m.cols, t.data, t.type, t.cols, o, r);
    } finally {
      this._busy = false;
      if (rng) rng._busy = false;
      if (registered !== null) koffi.unregister(registered);
    }
    if (failed) throw callbackError;
    if (status !== 0) {
      const err = errorFor(status);
      if (status === C.NN_ERR_CANCELLED || status === C.NN_ERR_DIVERGED) err.report = fitReportFrom(r);
      throw err;
    }
    return fitReportFrom(r);
  }

  _classWeights(w) {
    if (w instanceof Float64Array) return w;
    if (Array.isArray(w) || ArrayBuffer.isView(w)) return Float64Array.from(w, (v) => real('classWeights entry', v));
    if (typeof w === 'object') {
      const out = new Float64Array(this.nOutputs).fill(1);
      for (const [k, v] of Object.entries(w)) {
        const i = Number(k);
        if (!Number.isInteger(i) || i < 0 || i >= this.nOutputs) {
          throw new RangeError(`classWeights has class ${k}; the model has classes 0..${this.nOutputs - 1}`);
        }
        out[i] = real(`classWeights[${k}]`, v);
      }
      return out;
    }
    throw new TypeError('classWeights must be an array of weights or { classIndex: weight }');
  }

  /** Raw scores, rows × outputs, row-major, as a typed array of `dtype` (default: the model's). */
  predict(x, options = {}) { return this._predict(x, C.NN_OUTPUT_SCORES, options); }

  /** Softmax probabilities (softmax cross-entropy models only). */
  predictProba(x, options = {}) { return this._predict(x, C.NN_OUTPUT_PROBABILITIES, options); }

  _predict(x, what, { dtype = this.dtype, out = null } = {}) {
    const m = asMatrix(x, this.nInputs);
    const Type = OUT_TYPES[dtype];
    if (!Type) throw new RangeError(`dtype must be float32 or float64; got ${dtype}`);
    const result = out || new Type(m.rows * this.nOutputs);
    if (!(result instanceof Type) || result.length !== m.rows * this.nOutputs) {
      throw new RangeError(`out must be a ${Type.name} of ${m.rows * this.nOutputs} values`);
    }
    check(fn.nn_predict(this.handle, m.data, m.dtype, m.rows, m.cols, what, result, DTYPES[dtype], result.length));
    return result;
  }

  /** The first maximal class of each row, as an Int32Array. */
  predictClasses(x, { out = null } = {}) {
    const m = asMatrix(x, this.nInputs);
    const result = out || new Int32Array(m.rows);
    if (!(result instanceof Int32Array) || result.length !== m.rows) throw new RangeError(`out must be an Int32Array of ${m.rows} values`);
    check(fn.nn_predict_classes(this.handle, m.data, m.dtype, m.rows, m.cols, result, result.length));
    return result;
  }

  /** { loss, accuracy } over all rows (accuracy NaN for regression models). */
  evaluate(x, y) {
    const m = asMatrix(x, this.nInputs);
    const t = asTargets(y, m.rows, this.nOutputs);
    const loss = [0]; const accuracy = [0];
    check(fn.nn_evaluate(this.handle, m.data, m.dtype, m.rows, m.cols, t.data, t.type, t.cols, loss, accuracy));
    return { loss: loss[0], accuracy: accuracy[0] };
  }

  /** The Trainer's loss records: [{ epoch, iteration, stepsPerEpoch, loss }], oldest first. */
  lossHistory() {
    const n = [0];
    check(fn.nn_get_loss_history(this.handle, null, 0, n));
    const buf = new ArrayBuffer(32 * n[0]); // nn_loss_record: 3 × uint64 + double
    check(fn.nn_get_loss_history(this.handle, buf, n[0], n));
    const u = new BigUint64Array(buf); const f = new Float64Array(buf);
    return Array.from({ length: n[0] }, (_, i) => ({
      epoch: Number(u[4 * i]), iteration: Number(u[4 * i + 1]), stepsPerEpoch: Number(u[4 * i + 2]), loss: f[4 * i + 3] }));
  }

  /** Mean training loss of every completed epoch (Float64Array), across fit calls. */
  epochLosses() {
    const n = [0];
    check(fn.nn_get_epoch_losses(this.handle, null, 0, n));
    const out = new Float64Array(n[0]);
    check(fn.nn_get_epoch_losses(this.handle, out, out.length, n));
    return out;
  }

  /** One record per completed epoch, across fit calls: [{ epoch, loss, valLoss, valAccuracy }]
   *  (the validation figures NaN for epochs trained without validation). */
  epochHistory() {
    const n = [0];
    check(fn.nn_get_epoch_history(this.handle, null, 0, n));
    const buf = new ArrayBuffer(32 * n[0]); // nn_epoch_record: uint64 + 3 doubles
    check(fn.nn_get_epoch_history(this.handle, buf, n[0], n));
    const u = new BigUint64Array(buf); const f = new Float64Array(buf);
    return Array.from({ length: n[0] }, (_, i) => ({
      epoch: Number(u[4 * i]), loss: f[4 * i + 1], valLoss: f[4 * i + 2], valAccuracy: f[4 * i + 3] }));
  }

  /** Clears both histories and the epoch counter (a fresh Trainer); keeps the optimizer state. */
  resetHistory() { check(fn.nn_reset_history(this.handle)); }

  /** Drops the optimizer state: the next fit starts its optimizer from zero. */
  resetOptimizer() { check(fn.nn_reset_optimizer(this.handle)); }

  /** Every parameter as a Float64Array: per layer W (in × out, row-major) then b. */
  getParams() {
    const out = new Float64Array(this.paramCount);
    check(fn.nn_get_params(this.handle, out, out.length));
    return out;
  }

  setParams(params) {
    const p = params instanceof Float64Array ? params : Float64Array.from(params);
    check(fn.nn_set_params(this.handle, p, p.length));
  }

  get params() { return this.getParams(); }

  set params(p) { this.setParams(p); }

  _saveOptions({ storage = 'model', includeTrainingState = true } = {}) {
    const o = saveOptions();
    o.storage = choice('storage', storage, STORAGE);
    o.include_training_state = includeTrainingState ? 1 : 0;
    return o;
  }

  /** Writes the model atomically; storage 'model' (lossless), 'float16', 'float32' or 'float64'. */
  save(path, options) { check(fn.nn_save(this.handle, String(path), this._saveOptions(options))); }

  /** The model file's bytes, as a Buffer. */
  toBuffer(options) {
    const o = this._saveOptions(options);
    const size = [0];
    check(fn.nn_save_to_buffer(this.handle, null, 0, size, o));
    const buf = Buffer.alloc(size[0]);
    check(fn.nn_save_to_buffer(this.handle, buf, buf.length, size, o));
    return buf.subarray(0, size[0]);
  }

  static load(path) {
    const out = [null];
    check(fn.nn_load(out, String(path)));
    return new Model({ __handle: out[0] });
  }

  static fromBuffer(bytes) {
    const b = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer ? new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength) : bytes);
    const out = [null];
    check(fn.nn_load_from_buffer(out, b, b.length));
    return new Model({ __handle: out[0] });
  }

  setMetadata(key, value) { check(fn.nn_set_metadata(this.handle, key, value === null ? null : String(value))); }

  /** The metadata value of `key`, or undefined when there is none. */
  getMetadata(key) {
    const len = [0];
    const status = fn.nn_get_metadata(this.handle, key, null, 0, len);
    if (status === C.NN_ERR_INVALID_ARGUMENT) return undefined;
    check(status);
    const buf = Buffer.alloc(len[0] + 1);
    check(fn.nn_get_metadata(this.handle, key, buf, buf.length, len));
    return buf.toString('utf8', 0, len[0]);
  }

  /** Moves the model: 'cpu', 'cuda', 'reference', 'auto' or 'cuda:N'. Throws
   *  NN_ERR_DEVICE_UNAVAILABLE (and stays where it was) if an explicit request cannot be met. */
  setDevice(kind = 'auto', index = 0) {
    if (typeof kind === 'string' && kind.includes(':')) [kind, index] = [kind.split(':')[0], Number(kind.split(':')[1])];
    if (!Number.isInteger(index)) throw new RangeError(`device index must be an integer; got ${index}`);
    check(fn.nn_set_device(this.handle, choice('device', kind, DEVICES), index));
    return this.device;
  }

  get device() {
    const info = deviceInfo();
    check(fn.nn_get_device(this.handle, info));
    return deviceFrom(info);
  }

  /** How the float32 matrix products may be computed: 'strict' (the default), 'tf32',
   *  'float16' or 'bfloat16' (tensor cores on a GPU that has them; the CPU and the reference
   *  stay strict). It moves with the model and is not saved; float64 models are always strict. */
  get precision() {
    const out = [0];
    check(fn.nn_get_precision(this.handle, out));
    return PRECISION_NAMES[out[0]] || String(out[0]);
  }

  set precision(value) {
    check(fn.nn_set_precision(this.handle, choice('precision', value, PRECISIONS)));
  }
}

module.exports = { Model };
