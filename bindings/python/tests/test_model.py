"""The book's spiral through the binding, compared with the C library's reference run."""
import pathlib
import re
import threading

import numpy as np
import pytest

import libnn


def _csv(path):
    return np.loadtxt(path, delimiter=",", skiprows=1, comments="#", ndmin=2)


def test_spiral_matches_numpy_and_reference(reference):
    x, t = libnn.spiral(100, 3, seed=1984)
    assert x.shape == (300, 2) and x.dtype == np.float64
    assert t.shape == (300,) and t.dtype == np.int32
    ref = _csv(reference / "libm-variant" / "spiral.csv")
    np.testing.assert_allclose(x, ref[:, :2], rtol=0, atol=1e-15)
    np.testing.assert_array_equal(t, ref[:, 2].astype(np.int32))


def test_rng_is_numpy_legacy_stream_bit_for_bit():
    ours, theirs = libnn.Rng(1984), np.random.RandomState(1984)
    np.testing.assert_array_equal(ours.randn(7), theirs.randn(7))   # odd: leaves a cached gaussian
    np.testing.assert_array_equal(ours.rand(5), theirs.rand(5))
    np.testing.assert_array_equal(ours.randn((2, 3)), theirs.randn(2, 3))
    np.testing.assert_array_equal(ours.permutation(300), theirs.permutation(300))
    assert ours.randn() == theirs.randn()
    ours.seed([1, 2, 3]); theirs.seed([1, 2, 3])
    np.testing.assert_array_equal(ours.rand(4), theirs.rand(4))
    with pytest.raises(ValueError):
        ours.seed(-1)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_spiral_trains_to_book_accuracy(book_run, dtype):
    model, x, t, report, _ = book_run(dtype)
    assert report.epochs_run == 300 and report.steps_per_epoch == 10 and report.steps_run == 3000
    assert model.evaluate(x, t).accuracy >= 0.96
    classes = model.predict_classes(x)
    assert classes.dtype == np.int32 and np.mean(classes == t) >= 0.96
    proba = model.predict_proba(x)
    assert proba.shape == (300, 3) and proba.dtype == np.dtype(dtype)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    np.testing.assert_array_equal(np.argmax(model.predict(x), axis=1), classes)


def test_float64_epoch_losses_match_the_reference_run(book_run, reference):
    model, *_ = book_run("float64")
    losses = model.epoch_losses()
    ref = _csv(reference / "libm-variant" / "custom_loop_loss.csv")
    assert losses.shape == (300,)
    np.testing.assert_allclose(losses, ref[:, 3], rtol=1e-9)
    np.testing.assert_array_equal(np.round(losses, 2), ref[:, 2])  # the printed 2-decimal losses
    w1 = _csv(reference / "libm-variant" / "custom_loop_final_W1.csv")
    np.testing.assert_allclose(model.weights()[0][0], w1, rtol=1e-9, atol=1e-12)


def test_float64_trainer_loss_list_matches_the_reference_run(book_run, reference):
    model, *_ = book_run("float64", report_interval=10)
    history = model.loss_history()
    ref = _csv(reference / "trainer_loss.csv")  # epoch,iter,time_s,loss,loss_exact
    assert history.dtype.names == ("epoch", "iteration", "steps_per_epoch", "loss")
    np.testing.assert_array_equal(history["epoch"], ref[:, 0])
    np.testing.assert_array_equal(history["iteration"], ref[:, 1])
    assert set(history["steps_per_epoch"]) == {10}
    np.testing.assert_allclose(history["loss"], ref[:, 4], rtol=1e-9)


def test_float32_epoch_losses_follow_the_float32_reference(book_run, reference):
    model, *_ = book_run("float32")
    ref = _csv(reference / "float32-variant" / "custom_loop_loss_float32.csv")
    np.testing.assert_allclose(model.epoch_losses(), ref[:, 3], rtol=2e-3)


def test_histories_persist_across_fit_calls():
    rng = libnn.Rng(1984)
    x, t = libnn.spiral(rng=rng)
    model = libnn.Model([2, 10, 3], dtype="float64", rng=rng)
    first = model.fit(x, t, epochs=10, batch_size=30, learning_rate=1.0, report_interval=5)
    model.fit(x, t, epochs=10, batch_size=30, learning_rate=1.0, report_interval=5)
    assert first.epochs_run == 10 and model.epoch_losses().shape == (20,)
    history = model.loss_history()
    assert history.size == 40 and history["epoch"][-1] == 20  # the epoch counter continues
    model.reset_history()
    assert model.epoch_losses().size == 0 and model.loss_history().size == 0


def test_numpy_in_and_out_without_copies():
    model = libnn.Model([2, 10, 3])
    x = np.random.RandomState(0).randn(50, 2).astype(np.float32)
    out = np.empty((50, 3), np.float32)
    assert model.predict(x, out=out) is out
    # Non-contiguous, integer and float64 inputs are converted once and agree.
    x64 = np.asfortranarray(x.astype(np.float64))
    np.testing.assert_allclose(model.predict(x64), out, rtol=1e-6)
    assert model.predict(x, dtype=np.float64).dtype == np.float64
    np.testing.assert_array_equal(model.predict(x.tolist()), out)
    classes = np.empty(50, np.int32)
    assert model.predict_classes(x, out=classes) is classes


def test_params_round_trip_and_book_layout():
    model = libnn.Model([2, 10, 3], dtype="float64", seed=7)
    assert model.param_count == 2 * 10 + 10 + 10 * 3 + 3
    p = model.params
    (w1, b1), (w2, b2) = model.weights()
    assert w1.shape == (2, 10) and b1.shape == (10,) and w2.shape == (10, 3) and b2.shape == (3,)
    assert not b1.any() and not b2.any()  # biases start at zero
    model.params = p * 2
    np.testing.assert_array_equal(model.params, p * 2)
    with pytest.raises(libnn.ShapeMismatchError):
        model.params = p[:-1]


def test_seed_and_shared_rng_give_book_initial_weights(reference):
    rng = libnn.Rng(1984)
    libnn.spiral(rng=rng)
    model = libnn.Model([2, 10, 3], dtype="float64", rng=rng)
    w1 = _csv(reference / "libm-variant" / "custom_loop_initial_W1.csv")
    np.testing.assert_array_equal(model.weights()[0][0], w1)
    same = libnn.Model([2, 10, 3], seed=5).params
    np.testing.assert_array_equal(libnn.Model([2, 10, 3], seed=5).params, same)


def test_regression_model_and_evaluate():
    rs = np.random.RandomState(0)
    x = rs.randn(200, 3)
    y = x @ np.array([0.5, -1.0, 2.0]) + 0.1
    model = libnn.Model([3, 16, 1], activation="tanh", loss="mse", dtype="float64", init="xavier")
    model.fit(x, y, epochs=200, batch_size=20, learning_rate=0.05)
    loss, accuracy = model.evaluate(x, y)
    assert loss < 0.05 and np.isnan(accuracy)
    assert model.predict(x).shape == (200, 1)


def test_one_model_from_many_threads():
    model = libnn.Model([2, 10, 3])
    x = np.random.RandomState(1).randn(500, 2)
    expected = model.predict(x)
    results = []

    def work():
        results.append(all(np.array_equal(model.predict(x), expected) for _ in range(50)))
    threads = [threading.Thread(target=work) for _ in range(4)]
    [th.start() for th in threads]
    [th.join() for th in threads]
    assert results == [True] * 4


def test_close_and_context_manager():
    with libnn.Model([2, 3]) as model:
        assert not model.closed
    assert model.closed
    model.close()  # twice is a no-op
    with pytest.raises(ValueError, match="closed"):
        model.predict(np.zeros((1, 2)))
    assert "closed" in repr(model)


def test_version_and_devices():
    header = (pathlib.Path(__file__).resolve().parents[3] / "include" / "nn" / "nn.h").read_text()
    parts = [re.search(rf"#define NN_VERSION_{p} (\d+)", header).group(1) for p in ("MAJOR", "MINOR", "PATCH")]
    assert libnn.version() == ".".join(parts) == libnn.__version__
    devices = libnn.devices()
    assert any(d.kind == "reference" and d.available for d in devices)
    assert all(d.available or d.reason for d in devices)
