"""The scikit-learn estimators, including scikit-learn's own estimator checks."""
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

import libnn
from libnn import MLPClassifier, MLPRegressor


@parametrize_with_checks([MLPClassifier(), MLPRegressor(), MLPClassifier(dtype="float32", activation="sigmoid")])
def test_sklearn_estimator_checks(estimator, check):
    check(estimator)


def test_classifier_on_the_spiral_with_arbitrary_labels():
    x, t = libnn.spiral(100, 3, seed=1984)
    labels = np.array(["arm-a", "arm-b", "arm-c"])[t]
    clf = MLPClassifier(hidden_layer_sizes=(10,), activation="sigmoid", init="normal",
                        epochs=300, batch_size=30, learning_rate=1.0, random_state=0)
    clf.fit(x, labels)
    assert list(clf.classes_) == ["arm-a", "arm-b", "arm-c"]
    assert clf.n_features_in_ == 2
    assert clf.score(x, labels) >= 0.9
    assert len(clf.loss_curve_) == 300 and clf.loss_curve_[-1] < clf.loss_curve_[0]
    proba = clf.predict_proba(x)
    assert proba.shape == (300, 3)
    np.testing.assert_array_equal(clf.classes_[proba.argmax(axis=1)], clf.predict(x))


def test_partial_fit_runs_one_epoch_on_the_same_model():
    x, t = libnn.spiral(30, 3, seed=4)
    clf = MLPClassifier(hidden_layer_sizes=(8,), random_state=1)
    with pytest.raises(ValueError, match="classes"):
        clf.partial_fit(x, t)
    clf.partial_fit(x, t, classes=[0, 1, 2])
    model = clf.model_
    clf.partial_fit(x, t)
    assert clf.model_ is model and len(clf.loss_curve_) == 2
    with pytest.raises(ValueError, match="not in classes"):
        clf.partial_fit(x, np.full(len(t), 7))
    clf.fit(x, t)
    assert len(clf.loss_curve_) == clf.epochs and clf.model_ is not model


def test_regressor_multi_output_and_partial_fit():
    rs = np.random.RandomState(0)
    x = rs.randn(120, 4)
    y = np.c_[x[:, 0] - x[:, 1], 0.5 * x[:, 2]]
    reg = MLPRegressor(hidden_layer_sizes=(16,), activation="tanh", random_state=0, learning_rate=0.05)
    reg.fit(x, y)
    assert reg.predict(x).shape == (120, 2) and reg.score(x, y) > 0.9
    reg.fit(x, y[:, 0])
    assert reg.predict(x).shape == (120,)
    n = len(reg.loss_curve_)
    reg.partial_fit(x, y[:, 0])
    assert len(reg.loss_curve_) == n + 1


def test_params_clone_and_device():
    clf = MLPClassifier(hidden_layer_sizes=(5, 4), device="reference", epochs=3)
    assert clf.get_params()["hidden_layer_sizes"] == (5, 4)
    assert clone(clf).set_params(epochs=7).epochs == 7
    x, t = libnn.spiral(10, 2, seed=1)
    assert clf.fit(x, t).model_.device.kind == "reference"
    with pytest.raises(ValueError, match="activation"):
        MLPClassifier(activation="swish").fit(x, t)
    with pytest.raises(ValueError, match="hidden_layer_sizes"):
        MLPClassifier(hidden_layer_sizes=(0,)).fit(x, t)
