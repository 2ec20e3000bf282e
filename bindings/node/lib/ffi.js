'use strict';
// The raw layer: koffi declarations of every type and function in include/nn/nn.h.
// Nothing here owns a handle or throws on a status; index.js does.

const fs = require('node:fs');
const path = require('node:path');
const koffi = require('koffi');

// Where libnn.so is looked for, in order: $NN_LIBRARY (its path), this package's directory,
// then the SONAME on the dynamic loader's path.
function candidates() {
  if (process.env.NN_LIBRARY) return [process.env.NN_LIBRARY];
  const here = path.resolve(__dirname, '..');
  return ['libnn.so', 'libnn.so.0']
    .map((n) => path.join(here, n)).filter((p) => fs.existsSync(p))
    .concat(['libnn.so.0', 'libnn.so']);
}

function loadLibrary() {
  const errors = [];
  for (const p of candidates()) {
    try {
      return { lib: koffi.load(p), path: p };
    } catch (e) {
      errors.push(`${p}: ${e.message}`);
    }
  }
  throw new Error(`libnn: could not load libnn.so; set NN_LIBRARY to its path. Tried:\n  ${errors.join('\n  ')}`);
}

const { lib, path: libraryPath } = loadLibrary();

// Enums are signed 32-bit ints in nn.h.
for (const name of ['nn_status', 'nn_dtype', 'nn_activation', 'nn_loss', 'nn_init',
  'nn_device_kind', 'nn_target_type', 'nn_output', 'nn_optimizer', 'nn_progress_event', 'nn_precision'])
  koffi.alias(name, 'int32_t');

koffi.opaque('nn_model');
koffi.opaque('nn_rng');

const nn_model_desc = koffi.struct('nn_model_desc', {
  struct_size: 'size_t',
  n_layer_sizes: 'size_t',
  layer_sizes: 'const size_t *',
  hidden_activation: 'nn_activation',
  loss: 'nn_loss',
  dtype: 'nn_dtype',
  init: 'nn_init',
  init_std: 'double',
  seed: 'uint32_t',
  rng: 'nn_rng *',
});
const nn_progress = koffi.struct('nn_progress', {
  struct_size: 'size_t',
  event: 'nn_progress_event',
  epoch: 'uint64_t',
  iteration: 'uint64_t',
  steps_per_epoch: 'uint64_t',
  loss: 'double',
  val_loss: 'double',
  val_accuracy: 'double',
  elapsed_seconds: 'double',
});
// The progress pointer reaches JS as a raw pointer; model.js decodes it as nn_progress.
const nn_progress_fn = koffi.proto('int nn_progress_fn(const void *progress, void *user)');
const nn_fit_options = koffi.struct('nn_fit_options', {
  struct_size: 'size_t',
  epochs: 'size_t',
  batch_size: 'size_t',
  learning_rate: 'double',
  shuffle: 'int',
  report_interval: 'size_t',
  rng: 'nn_rng *',
  // the optimizer
  optimizer: 'nn_optimizer',
  momentum: 'double',
  decay_rate: 'double',
  beta1: 'double',
  beta2: 'double',
  epsilon: 'double',
  // regularisation
  max_grad_norm: 'double',
  weight_decay: 'double',
  class_weights: 'const void *', // const double *
  n_class_weights: 'size_t',
  // validation and early stopping
  val_x: 'const void *',
  val_x_dtype: 'nn_dtype',
  val_rows: 'size_t',
  val_cols: 'size_t',
  val_targets: 'const void *',
  val_target_type: 'nn_target_type',
  val_target_cols: 'size_t',
  validation_fraction: 'double',
  early_stopping: 'int',
  patience: 'int32_t',
  min_delta: 'double',
  restore_best: 'int',
  // progress
  progress: koffi.pointer(nn_progress_fn),
  progress_user: 'void *',
  parallel: 'int',
  sharded: 'int',
  progress_on_every_process: 'int',
  parallel_timeout: 'double',
});
const nn_fit_report = koffi.struct('nn_fit_report', {
  struct_size: 'size_t',
  epochs_run: 'size_t',
  steps_run: 'size_t',
  steps_per_epoch: 'size_t',
  final_loss: 'double',
  seconds: 'double',
  device_kind: 'nn_device_kind',
  device_index: 'int',
  stopped_early: 'int',
  best_epoch: 'uint64_t',
  best_loss: 'double',
  final_val_loss: 'double',
  final_val_accuracy: 'double',
});
const nn_loss_record = koffi.struct('nn_loss_record', {
  epoch: 'uint64_t',
  iteration: 'uint64_t',
  steps_per_epoch: 'uint64_t',
  loss: 'double',
});
const nn_save_options = koffi.struct('nn_save_options', {
  struct_size: 'size_t',
  storage: 'nn_dtype',
  include_training_state: 'int',
});
const nn_device_info = koffi.struct('nn_device_info', {
  struct_size: 'size_t',
  kind: 'nn_device_kind',
  index: 'int',
  available: 'int',
  name: koffi.array('char', 128, 'String'),
  reason: koffi.array('char', 256, 'String'),
});

// Data pointers are declared `void *` so typed arrays and Buffers pass in place.
const PROTOTYPES = [
  'void nn_version(_Out_ int *out_major, _Out_ int *out_minor, _Out_ int *out_patch)',
  'const char *nn_version_string(void)',
  'const char *nn_status_string(nn_status status)',
  'const char *nn_last_error_message(void)',
  'nn_status nn_rng_create(_Out_ nn_rng **out, uint32_t seed)',
  'void nn_rng_destroy(nn_rng *rng)',
  'nn_status nn_rng_seed(nn_rng *rng, uint32_t seed)',
  'nn_status nn_rng_seed_array(nn_rng *rng, const void *key, size_t n)',
  'nn_status nn_rng_randn(nn_rng *rng, void *out, size_t n)',
  'nn_status nn_rng_rand(nn_rng *rng, void *out, size_t n)',
  'nn_status nn_rng_permutation(nn_rng *rng, void *out, size_t n)',
  'nn_status nn_dataset_spiral(void *out_x, size_t x_capacity, void *out_labels, size_t labels_capacity, ' +
    'size_t points_per_class, size_t n_classes, nn_rng *rng, uint32_t seed)',
  'void nn_model_desc_init(_Out_ nn_model_desc *desc)',
  'nn_status nn_create(_Out_ nn_model **out, const nn_model_desc *desc)',
  'void nn_destroy(nn_model *model)',
  'nn_status nn_model_layer_count(const nn_model *model, _Out_ size_t *out_count)',
  'nn_status nn_model_layer_sizes(const nn_model *model, void *out_sizes, size_t capacity)',
  'nn_status nn_model_dtype(const nn_model *model, _Out_ nn_dtype *out_dtype)',
  'nn_status nn_param_count(const nn_model *model, _Out_ size_t *out_count)',
  'nn_status nn_get_params(nn_model *model, void *out_params, size_t capacity)',
  'nn_status nn_set_params(nn_model *model, const void *params, size_t count)',
  'void nn_fit_options_init(_Out_ nn_fit_options *options)',
  'void nn_fit_report_init(_Out_ nn_fit_report *report)',
  'nn_status nn_fit(nn_model *model, const void *x, nn_dtype x_dtype, size_t rows, size_t cols, ' +
    'const void *targets, nn_target_type target_type, size_t target_cols, ' +
    'const nn_fit_options *options, _Inout_ nn_fit_report *out_report)',
  'nn_status nn_get_loss_history(const nn_model *model, void *out, size_t capacity, _Out_ size_t *out_count)',
  'nn_status nn_get_epoch_losses(const nn_model *model, void *out, size_t capacity, _Out_ size_t *out_count)',
  'nn_status nn_get_epoch_history(const nn_model *model, void *out, size_t capacity, _Out_ size_t *out_count)',
  'nn_status nn_reset_history(nn_model *model)',
  'nn_status nn_reset_optimizer(nn_model *model)',
  'nn_status nn_predict(nn_model *model, const void *x, nn_dtype x_dtype, size_t rows, size_t cols, ' +
    'nn_output what, void *out, nn_dtype out_dtype, size_t out_capacity)',
  'nn_status nn_predict_classes(nn_model *model, const void *x, nn_dtype x_dtype, size_t rows, size_t cols, ' +
    'void *out_classes, size_t out_capacity)',
  'nn_status nn_evaluate(nn_model *model, const void *x, nn_dtype x_dtype, size_t rows, size_t cols, ' +
    'const void *targets, nn_target_type target_type, size_t target_cols, ' +
    '_Out_ double *out_loss, _Out_ double *out_accuracy)',
  'void nn_save_options_init(_Out_ nn_save_options *options)',
  'nn_status nn_save(nn_model *model, const char *path, const nn_save_options *options)',
  'nn_status nn_save_to_buffer(nn_model *model, void *out, size_t capacity, _Out_ size_t *out_size, ' +
    'const nn_save_options *options)',
  'nn_status nn_load(_Out_ nn_model **out, const char *path)',
  'nn_status nn_load_from_buffer(_Out_ nn_model **out, const void *data, size_t size)',
  'nn_status nn_set_metadata(nn_model *model, const char *key, const char *value)',
  'nn_status nn_get_metadata(const nn_model *model, const char *key, void *out, size_t capacity, ' +
    '_Out_ size_t *out_length)',
  'void nn_device_info_init(_Out_ nn_device_info *info)',
  'nn_status nn_device_count(_Out_ size_t *out_count)',
  'nn_status nn_device_get(size_t i, _Inout_ nn_device_info *out_info)',
  'nn_status nn_set_device(nn_model *model, nn_device_kind kind, int index)',
  'nn_status nn_get_device(const nn_model *model, _Inout_ nn_device_info *out_info)',
  'nn_status nn_set_precision(nn_model *model, nn_precision precision)',
  'nn_status nn_get_precision(const nn_model *model, _Out_ nn_precision *out_precision)',
];

const fn = {};
for (const proto of PROTOTYPES) {
  const f = lib.func(proto);
  fn[f.info.name] = f;
}

const C = Object.freeze({
  NN_OK: 0, NN_DTYPE_FLOAT32: 0, NN_DTYPE_FLOAT64: 1, NN_DTYPE_FLOAT16: 2, NN_DTYPE_MODEL: 3,
  NN_TARGET_CLASS_INDEX: 0, NN_TARGET_ROWS_FLOAT32: 1, NN_TARGET_ROWS_FLOAT64: 2,
  NN_OUTPUT_SCORES: 0, NN_OUTPUT_PROBABILITIES: 1, NN_ERR_INVALID_ARGUMENT: 2,
  NN_ERR_CANCELLED: 18, NN_ERR_DIVERGED: 19, NN_PROGRESS_REPORT: 0, NN_PROGRESS_EPOCH_END: 1,
});

// Structs are only ever created by their _init functions, so struct_size is always right.
function init(initFn) {
  const out = {};
  initFn(out);
  return out;
}

// The library accepts only the struct sizes it knows: compare each _init's struct_size with
// this binding's layout once, at load, rather than failing every call later. The init
// writes into a padded buffer, so a library whose structs have grown cannot overrun it.
for (const [name, type] of [['nn_model_desc', nn_model_desc], ['nn_fit_options', nn_fit_options],
  ['nn_fit_report', nn_fit_report], ['nn_save_options', nn_save_options], ['nn_device_info', nn_device_info]]) {
  const raw = lib.func(`void ${name}_init(void *out)`);
  const buf = Buffer.alloc(koffi.sizeof(type) + 4096);
  raw(buf);
  const theirs = Number(buf.readBigUInt64LE(0));
  if (theirs !== koffi.sizeof(type)) {
    throw new Error(`libnn: ${libraryPath} has a ${name} of ${theirs} bytes, this binding's is ` +
      `${koffi.sizeof(type)}: the binding and the library are from different versions`);
  }
}

module.exports = {
  koffi, lib, libraryPath, fn, C,
  types: { nn_model_desc, nn_fit_options, nn_fit_report, nn_loss_record, nn_save_options, nn_device_info,
    nn_progress, nn_progress_fn },
  modelDesc: () => init(fn.nn_model_desc_init),
  fitOptions: () => init(fn.nn_fit_options_init),
  fitReport: () => init(fn.nn_fit_report_init),
  saveOptions: () => init(fn.nn_save_options_init),
  deviceInfo: () => init(fn.nn_device_info_init),
};
