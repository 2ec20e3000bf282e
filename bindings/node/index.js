'use strict';
// libnn for Node.js: koffi over include/nn/nn.h. Typed arrays in and out (passed in place,
// never copied when they already are Float32Array/Float64Array/Int32Array), LibnnError with
// the status and the library's message on failure, dispose() plus a FinalizationRegistry
// safety net. libnn.so is found through $NN_LIBRARY, this package's directory, then the
// loader's path.
const core = require('./lib/core');
const { Model } = require('./lib/model');

module.exports = {
  Model,
  Rng: core.Rng,
  spiral: core.spiral,
  devices: core.devices,
  version: core.version,
  libraryPath: core.libraryPath,
  LibnnError: core.LibnnError,
  CancelledError: core.CancelledError,
  DivergedError: core.DivergedError,
  STATUS: core.STATUS,
};
