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
