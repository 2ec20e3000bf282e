"""Saving and loading: files and bytes, storage dtypes, training state, metadata."""
import pickle

import numpy as np
import pytest

import libnn


@pytest.fixture
def trained(book_run):
    model, x, t, _, _ = book_run("float64")
    return model, x, t


def test_file_round_trip_is_lossless(trained, tmp_path):
    model, x, t = trained
    model.metadata["author"] = "tests"
    path = tmp_path / "spiral.nnm"
    model.save(path)
    loaded = libnn.Model.load(path)
    assert loaded.layer_sizes == (2, 10, 3) and loaded.dtype == np.float64
    np.testing.assert_array_equal(loaded.params, model.params)
    np.testing.assert_array_equal(loaded.predict(x), model.predict(x))
    np.testing.assert_array_equal(loaded.epoch_losses(), model.epoch_losses())
    assert loaded.metadata["author"] == "tests" and "missing" not in loaded.metadata
    assert loaded.metadata.get("missing", "d") == "d"


def test_bytes_round_trip_and_pickle(trained):
    model, x, _ = trained
    data = model.to_bytes()
    assert isinstance(data, bytes) and len(data) > 0
    for loaded in (libnn.Model.from_bytes(data), libnn.Model.from_bytes(bytearray(data)),
                   pickle.loads(pickle.dumps(model))):
        np.testing.assert_array_equal(loaded.predict(x), model.predict(x))


def test_float16_storage_rounds_once_and_keeps_accuracy(trained, tmp_path):
    model, x, t = trained
    path = tmp_path / "half.nnm"
    model.save(path, storage="float16", include_training_state=False)
    loaded = libnn.Model.load(path)
    np.testing.assert_array_equal(loaded.params, model.params.astype(np.float16).astype(np.float64))
    assert loaded.epoch_losses().size == 0  # no training state stored
    assert loaded.evaluate(x, t).accuracy >= 0.96
    assert len(model.to_bytes(storage=np.float16)) < len(model.to_bytes())


def test_training_continues_after_load_exactly(tmp_path):
    def fresh():
        rng = libnn.Rng(1984)
        x, t = libnn.spiral(rng=rng)
        model = libnn.Model([2, 10, 3], dtype="float64", rng=rng)
        model.fit(x, t, epochs=10, batch_size=30, learning_rate=1.0)  # shuffles with its own stream
        return model, x, t
    straight, x, t = fresh()
    straight.fit(x, t, epochs=10, batch_size=30, learning_rate=1.0)
    saved, _, _ = fresh()
    saved.save(tmp_path / "half-way.nnm")
    resumed = libnn.Model.load(tmp_path / "half-way.nnm")
    resumed.fit(x, t, epochs=10, batch_size=30, learning_rate=1.0)
    np.testing.assert_array_equal(resumed.params, straight.params)
    np.testing.assert_array_equal(resumed.epoch_losses(), straight.epoch_losses())


def test_metadata_set_get_delete():
    model = libnn.Model([2, 3])
    model.metadata["k"] = "välue"
    assert model.metadata["k"] == "välue"
    del model.metadata["k"]
    with pytest.raises(KeyError):
        model.metadata["k"]
    with pytest.raises(libnn.InvalidArgumentError):
        model.metadata["x" * 300] = "too long a key"


def test_load_errors(tmp_path, trained):
    model, *_ = trained
    with pytest.raises(libnn.FileError) as info:
        libnn.Model.load(tmp_path / "missing.nnm")
    assert isinstance(info.value, OSError) and info.value.status == 15
    data = bytearray(model.to_bytes())
    data[len(data) // 2] ^= 0xFF
    with pytest.raises(libnn.CorruptModelError):
        libnn.Model.from_bytes(bytes(data))
    with pytest.raises(libnn.CorruptModelError):
        libnn.Model.from_bytes(b"not a model")
    with pytest.raises(libnn.InvalidArgumentError):
        libnn.Model.load(tmp_path)  # a directory
    with pytest.raises(ValueError, match="storage"):
        model.save(tmp_path / "x.nnm", storage="int8")


def test_failed_save_keeps_the_previous_file(tmp_path, trained):
    model, x, _ = trained
    path = tmp_path / "m.nnm"
    model.save(path)
    before = path.read_bytes()
    bad = libnn.Model([2, 10, 3], dtype="float64")
    bad.params = np.full(bad.param_count, 1e6)  # beyond float16's range
    with pytest.raises(libnn.NonFiniteError):
        bad.save(path, storage="float16")
    assert path.read_bytes() == before
    assert list(tmp_path.iterdir()) == [path]
