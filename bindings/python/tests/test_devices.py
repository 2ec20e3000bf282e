"""Devices: enumeration, moving a model, and explicit requests that cannot be met."""
import numpy as np
import pytest

import libnn


def test_reference_and_cpu_agree():
    x, t = libnn.spiral(50, 3, seed=2)
    model = libnn.Model([2, 10, 3], dtype="float64")
    model.fit(x, t, epochs=20, batch_size=30, learning_rate=1.0)
    on_default = model.predict(x)
    assert model.set_device("reference").kind == "reference"
    assert model.device.kind == "reference"
    np.testing.assert_allclose(model.predict(x), on_default, rtol=1e-12, atol=1e-14)
    chosen = model.set_device("auto")
    assert chosen.kind in ("cpu", "cuda", "reference") and chosen.available


def test_unavailable_cuda_is_an_error_and_the_model_stays():
    model = libnn.Model([2, 10, 3])
    cuda = [d for d in libnn.devices() if d.kind == "cuda"]
    if any(d.available for d in cuda):
        pytest.skip("a CUDA device is available here")
    where = model.device
    x = np.zeros((3, 2))
    before = model.predict(x)
    with pytest.raises(libnn.DeviceUnavailableError) as info:
        model.set_device("cuda", 0)
    assert info.value.status == 11 and info.value.message
    assert isinstance(info.value, RuntimeError)
    assert model.device == where
    np.testing.assert_array_equal(model.predict(x), before)


def test_bad_device_requests():
    model = libnn.Model([2, 3])
    with pytest.raises(ValueError, match="device"):
        model.set_device("tpu")
    with pytest.raises(libnn.InvalidArgumentError):
        model.set_device("cpu", -1)
    with pytest.raises(libnn.DeviceUnavailableError):
        model.set_device("cuda:99")


def test_precision_is_a_model_setting_that_moves_and_is_not_saved(tmp_path):
    model = libnn.Model([2, 10, 3], precision="tf32")
    assert model.precision == "tf32"
    model.precision = "bfloat16"
    model.set_device("reference")
    assert model.precision == "bfloat16"
    path = tmp_path / "m.nn"
    model.save(path)
    assert libnn.Model.load(path).precision == "strict"
    import copy, pickle
    assert pickle.loads(pickle.dumps(model)).precision == "bfloat16"  # copies keep it
    assert copy.deepcopy(model).precision == "bfloat16"
    with pytest.raises(ValueError, match="precision"):
        model.precision = "fp8"
    assert model.precision == "bfloat16"
    double = libnn.Model([2, 10, 3], dtype="float64")
    with pytest.raises(libnn.UnsupportedError, match="float32"):
        double.precision = "tf32"
    assert double.precision == "strict"


def test_precision_leaves_cpu_training_unchanged():
    # The CPU plugin has no reduced-precision products: the same run, bit for bit.
    x, t = libnn.spiral(50, 3, seed=4)
    runs = []
    for precision in ("strict", "float16"):
        model = libnn.Model([2, 64, 64, 3], activation="relu", init="he", precision=precision, device="cpu")
        model.fit(x, t, epochs=3, batch_size=30, learning_rate=0.1)
        runs.append(model.get_params())
    np.testing.assert_array_equal(runs[0], runs[1])


def test_estimators_take_precision():
    from sklearn.base import clone
    x, t = libnn.spiral(30, 3, seed=5)
    est = libnn.MLPClassifier(hidden_layer_sizes=(10,), dtype="float32", epochs=2, precision="tf32",
                              random_state=0)
    assert clone(est).get_params()["precision"] == "tf32"
    est.fit(x, t)
    assert est.model_.precision == "tf32"
    est.set_params(precision="bfloat16").partial_fit(x, t)
    assert est.model_.precision == "bfloat16"
    with pytest.raises(libnn.UnsupportedError):
        libnn.MLPRegressor(hidden_layer_sizes=(4,), dtype="float64", epochs=1, precision="float16").fit(x, t)
