"""Bad inputs raise the right exception, with the library's message, and change nothing."""
import pickle

import numpy as np
import pytest

import libnn


@pytest.fixture
def trained():
    x, t = libnn.spiral(20, 3, seed=3)
    model = libnn.Model([2, 10, 3], dtype="float64")
    model.fit(x, t, epochs=5, batch_size=10, learning_rate=1.0)
    return model, x, t


def _snapshot(model):
    return model.params, model.epoch_losses(), model.loss_history()


def _assert_unchanged_and_usable(model, before, x, t):
    params, losses, history = before
    np.testing.assert_array_equal(model.params, params)
    np.testing.assert_array_equal(model.epoch_losses(), losses)
    np.testing.assert_array_equal(model.loss_history(), history)
    assert model.predict(x).shape == (len(x), 3)
    model.fit(x, t, epochs=1, batch_size=10, learning_rate=1.0)  # still trains
    assert model.epoch_losses().size == losses.size + 1


@pytest.mark.parametrize("case, exc, status, match", [
    ("x_cols", libnn.ShapeMismatchError, 5, "3 columns, the model expects 2"),
    ("nan", libnn.NonFiniteError, 7, ""),
    ("inf_target_rows", libnn.NonFiniteError, 7, ""),
    ("label_high", libnn.LabelOutOfRangeError, 6, ""),
    ("label_negative", libnn.LabelOutOfRangeError, 6, ""),
    ("lr_zero", libnn.BadHyperparameterError, 8, ""),
    ("lr_nan", libnn.BadHyperparameterError, 8, ""),
    ("batch_zero", libnn.BadHyperparameterError, 8, ""),
    ("epochs_zero", libnn.BadHyperparameterError, 8, ""),
    ("target_cols", libnn.ShapeMismatchError, 5, ""),
])
def test_bad_fit_raises_and_leaves_model_unchanged(trained, case, exc, status, match):
    model, x, t = trained
    before = _snapshot(model)
    args = dict(x=x, y=t, epochs=2, batch_size=10, learning_rate=1.0)
    if case == "x_cols":
        args["x"] = np.hstack([x, x[:, :1]])
    elif case == "nan":
        args["x"] = x.copy(); args["x"][7, 1] = np.nan
    elif case == "inf_target_rows":
        y = np.eye(3)[t]; y[0, 0] = np.inf; args["y"] = y
    elif case == "label_high":
        args["y"] = t.copy(); args["y"][4] = 3
    elif case == "label_negative":
        args["y"] = t.astype(np.int64); args["y"][0] = -1
    elif case == "lr_zero":
        args["learning_rate"] = 0.0
    elif case == "lr_nan":
        args["learning_rate"] = float("nan")
    elif case == "batch_zero":
        args["batch_size"] = 0
    elif case == "epochs_zero":
        args["epochs"] = 0
    elif case == "target_cols":
        args["y"] = np.eye(4)[t % 4]
    with pytest.raises(exc, match=match) as info:
        model.fit(**args)
    err = info.value
    assert isinstance(err, libnn.Error) and isinstance(err, ValueError)
    assert err.status == status and err.message and err.message in str(err)
    assert err.status_name.startswith("NN_ERR_")
    _assert_unchanged_and_usable(model, before, x, t)


def test_bad_predict_inputs(trained):
    model, x, t = trained
    before = _snapshot(model)
    with pytest.raises(libnn.ShapeMismatchError, match="columns"):
        model.predict(np.zeros((4, 5)))
    with pytest.raises(libnn.NonFiniteError):
        model.predict(np.array([[0.0, np.inf]]))
    with pytest.raises(libnn.NonFiniteError):  # 1e300 does not fit a float32 model
        libnn.Model([2, 3]).predict(np.array([[1e300, 0.0]]))
    with pytest.raises(ValueError, match="2-D"):
        model.predict(x[0])
    with pytest.raises(ValueError, match="numbers"):
        model.predict(np.array([["a", "b"]]))
    with pytest.raises(ValueError, match="no rows"):
        model.predict(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="out must be"):
        model.predict(x, out=np.empty((len(x), 3), np.float32))  # model dtype is float64
    with pytest.raises(ValueError, match="rows"):
        model.fit(x, t[:-1])
    with pytest.raises(ValueError, match="non-negative"):
        model.fit(x, t, batch_size=-1)  # would wrap to 2**64-1 in ctypes
    _assert_unchanged_and_usable(model, before, x, t)


def test_bad_model_descriptions():
    with pytest.raises(libnn.InvalidArgumentError):
        libnn.Model([2, 1])  # softmax needs at least 2 outputs
    with pytest.raises(libnn.InvalidArgumentError):
        libnn.Model([2, 0, 3])
    with pytest.raises(libnn.InvalidArgumentError):
        libnn.Model([2])
    with pytest.raises(libnn.BadHyperparameterError):
        libnn.Model([2, 3], init_std=-1.0)
    with pytest.raises(ValueError, match="activation"):
        libnn.Model([2, 3], activation="swish")
    with pytest.raises(ValueError, match="dtype"):
        libnn.Model([2, 3], dtype="float16")
    with pytest.raises(ValueError, match="uint32"):
        libnn.Model([2, 3], seed=2**32)


def test_probabilities_of_a_regression_model_are_unsupported():
    model = libnn.Model([2, 4, 1], loss="mse")
    with pytest.raises(libnn.UnsupportedError) as info:
        model.predict_proba(np.zeros((1, 2)))
    assert isinstance(info.value, NotImplementedError) and info.value.status == 13
    model.predict(np.zeros((1, 2)))


def test_errors_pickle_and_carry_status():
    err = libnn.ShapeMismatchError("x has 3 columns")
    again = pickle.loads(pickle.dumps(err))
    assert type(again) is libnn.ShapeMismatchError and again.status == 5
    assert again.message == "x has 3 columns"
    assert str(libnn.Error("odd", 99)).startswith("odd")
