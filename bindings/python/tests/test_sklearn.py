"""The scikit-learn estimators, including scikit-learn's own estimator checks."""
import numpy as np
import pytest
from sklearn.base import clone
from sklearn.utils.estimator_checks import parametrize_with_checks

import libnn
from _trainer_device import DEVICE
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


# ---- the trainer's options under scikit-learn's names --------------------------------
def test_solvers_train_the_spiral():
    x, t = libnn.spiral(100, 3, seed=1984)
    for params in (dict(solver="adam", learning_rate_init=0.02),
                   dict(solver="sgd", momentum=0.9, learning_rate_init=0.1),
                   dict(solver="sgd", momentum=0.9, nesterovs_momentum=False, learning_rate_init=0.1),
                   dict(solver="rmsprop", learning_rate_init=0.01),
                   dict(solver="adagrad", learning_rate_init=0.5)):
        clf = MLPClassifier(hidden_layer_sizes=(30,), activation="tanh", max_iter=100, batch_size=30,
                            random_state=0, device=DEVICE, **params)
        assert clf.fit(x, t).score(x, t) >= 0.9, params
        assert clf.n_iter_ == 100 and clf.best_loss_ == min(clf.loss_curve_)
        assert clf.validation_scores_ is None and clf.best_validation_score_ is None


def test_solver_mapping_and_step_size():
    clf = MLPClassifier()
    assert clf._optimizer() == ("sgd", {})  # libnn's default: the book's plain SGD
    assert clf._step_size("sgd") == 0.01
    assert clf.set_params(momentum=0.9)._optimizer() == ("nesterov", {"momentum": 0.9})
    assert clf.set_params(nesterovs_momentum=False)._optimizer() == ("momentum", {"momentum": 0.9})
    assert clf.set_params(solver="momentum", momentum=None)._optimizer() == ("momentum", {"momentum": 0.9})
    adam = MLPClassifier(solver="adam", beta_1=0.8)
    assert adam._optimizer() == ("adam", {"beta1": 0.8, "beta2": 0.999, "epsilon": 1e-8})
    assert adam._step_size("adam") == 0.001  # scikit-learn's learning_rate_init
    assert MLPClassifier(learning_rate=0.5)._step_size("sgd") == 0.5  # libnn's older spelling
    x, t = libnn.spiral(10, 2, seed=1)
    for bad, match in ((dict(solver="lbfgs"), "L-BFGS"), (dict(learning_rate="adaptive"), "constant"),
                       (dict(learning_rate=0.5, learning_rate_init=0.1), "disagree"),
                       (dict(batch_size="big"), "batch_size")):
        with pytest.raises(ValueError, match=match):
            MLPClassifier(**bad).fit(x, t)
    # Out-of-range values reach the library, which says what is wrong.
    with pytest.raises(libnn.BadHyperparameterError, match="beta1"):
        MLPClassifier(solver="adam", beta_1=1.5, device=DEVICE).fit(x, t)
    with pytest.raises(libnn.BadHyperparameterError, match="momentum"):
        MLPClassifier(solver="sgd", momentum=1.5, device=DEVICE).fit(x, t)


def test_max_iter_alpha_and_batch_auto():
    x, t = libnn.spiral(50, 3, seed=2)
    clf = MLPClassifier(hidden_layer_sizes=(20,), max_iter=7, batch_size="auto", random_state=0).fit(x, t)
    assert clf.n_iter_ == 7 and clf.model_.epoch_history().size == 7
    assert clf._fit_options(150)["batch_size"] == 150  # min(200, n_samples)
    assert clf.set_params(alpha=0.3, batch_size=30)._fit_options(150)["weight_decay"] == pytest.approx(0.01)
    plain = MLPClassifier(hidden_layer_sizes=(20,), max_iter=50, random_state=0, learning_rate_init=0.1,
                          device=DEVICE).fit(x, t)
    decayed = clone(plain).set_params(alpha=1.0).fit(x, t)
    norm = lambda c: sum(np.sum(w ** 2) for w, _ in c.model_.weights())  # noqa: E731
    assert norm(decayed) < 0.8 * norm(plain)


def test_early_stopping_holds_out_a_split_and_restores_the_best():
    x, t = libnn.spiral(100, 3, seed=1984)
    x = x + np.random.RandomState(5).randn(*x.shape) * 0.15
    labels = np.array(["a", "b", "c"])[t]
    clf = MLPClassifier(hidden_layer_sizes=(64, 64), solver="adam", learning_rate_init=0.01, batch_size=15,
                        max_iter=500, early_stopping=True, validation_fraction=0.5, n_iter_no_change=5,
                        tol=0.0, random_state=0, device=DEVICE).fit(x, labels)
    assert clf.n_iter_ < 500 and len(clf.validation_scores_) == clf.n_iter_ == len(clf.loss_curve_)
    assert clf.best_loss_ is None and 0 < clf.best_validation_score_ <= 1
    history = clf.model_.epoch_history()
    best = int(np.argmin(history["val_loss"]))
    assert clf.best_validation_score_ == clf.validation_scores_[best]
    assert clf.model_.loss_history().size == 0  # report_interval 0: epoch figures only
    reg = MLPRegressor(hidden_layer_sizes=(16,), activation="tanh", learning_rate_init=0.05, max_iter=300,
                       early_stopping=True, n_iter_no_change=3, tol=1e-3, random_state=0, device=DEVICE)
    rs = np.random.RandomState(0)
    xr = rs.randn(200, 3)
    yr = xr @ np.array([0.5, -1.0, 2.0]) + 0.1 * rs.randn(200)
    reg.fit(xr, yr)
    assert reg.n_iter_ < 300 and len(reg.validation_scores_) == reg.n_iter_
    # Held-out R^2; the best epoch is the last to improve the loss by more than tol.
    assert max(reg.validation_scores_) - 1e-2 <= reg.best_validation_score_ <= max(reg.validation_scores_)
    assert reg.best_validation_score_ > 0.9
    assert reg.score(xr, yr) > 0.9


def test_class_weight_with_arbitrary_labels():
    rs = np.random.RandomState(0)
    x = np.r_[rs.randn(200, 2) + [1.0, 0.0], rs.randn(200, 2) - [1.0, 0.0]]  # overlapping blobs
    y = np.array(["cat"] * 200 + ["dog"] * 200)
    base = MLPClassifier(hidden_layer_sizes=(8,), max_iter=30, random_state=0, learning_rate_init=0.05,
                         device=DEVICE)
    plain = clone(base).fit(x, y)
    dogs = clone(base).set_params(class_weight={"dog": 10.0}).fit(x, y)
    cats = clone(base).set_params(class_weight={"cat": 10.0, "dog": 1.0}).fit(x, y)
    n_dog = lambda c: int(np.sum(c.predict(x) == "dog"))  # noqa: E731
    assert n_dog(dogs) > n_dog(plain) + 20 and n_dog(cats) < n_dog(plain) - 20
    # "balanced" on imbalanced data is (n / (k * count)) per class.
    xi, yi = x[:250], y[:250]
    balanced = clone(base).set_params(class_weight="balanced")
    assert balanced.fit(xi, yi).score(xi, yi) > 0.5
    with pytest.raises(ValueError, match="not in class_weight"):
        clone(base).set_params(class_weight={"cow": 2.0}).fit(x, y)
    with pytest.raises(ValueError, match="partial_fit"):
        clone(base).set_params(class_weight="balanced").partial_fit(x, y, classes=["cat", "dog"])
    partial = clone(base).set_params(class_weight={"dog": 10.0})
    partial.partial_fit(x, y, classes=["cat", "dog"])
    assert len(partial.loss_curve_) == 1


def test_divergence_warns_and_keeps_the_last_good_weights():
    from sklearn.exceptions import ConvergenceWarning
    rs = np.random.RandomState(0)
    x = rs.randn(200, 3)
    y = 100 * (x @ np.array([0.5, -1.0, 2.0]))
    reg = MLPRegressor(hidden_layer_sizes=(16,), learning_rate_init=1.0, random_state=0)
    with pytest.warns(ConvergenceWarning, match="diverged"):
        reg.fit(x, y)
    assert reg.n_iter_ < reg.epochs and np.isfinite(reg.model_.params).all()
