"""scikit-learn estimators over libnn.Model: MLPClassifier and MLPRegressor.

Minibatch SGD (the only optimizer nn.h exposes) with the library's book-faithful epoch
loop: every epoch reshuffles, the tail rows (n mod batch_size) are dropped as the book's
Trainer does, and a batch size above n trains on all rows as one batch.
"""
import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils import check_random_state
from sklearn.utils.multiclass import _check_partial_fit_first_call, check_classification_targets
from sklearn.utils.validation import check_is_fitted

from .model import ACTIVATIONS, Model

try:  # scikit-learn >= 1.6 moved validation to a function
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # Debian 12's 1.2
    def _validate_data(estimator, *args, **kwargs):
        return estimator._validate_data(*args, **kwargs)

_INIT_FOR = {"relu": "he", "sigmoid": "xavier", "tanh": "xavier", "identity": "xavier"}


class _BaseMLP(BaseEstimator):
    _loss = None

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", dtype="float64", epochs=200,
                 batch_size=32, learning_rate=0.01, random_state=None, device="auto", shuffle=True,
                 init="auto"):
        self.hidden_layer_sizes = hidden_layer_sizes
        self.activation = activation
        self.dtype = dtype
        self.epochs = epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.random_state = random_state
        self.device = device
        self.shuffle = shuffle
        self.init = init

    def _hidden(self):
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, numbers.Integral) else list(sizes)
        if any(not isinstance(s, numbers.Integral) or s <= 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive integers; got {self.hidden_layer_sizes!r}")
        return sizes

    def _new_model(self, n_in, n_out):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}; got {self.activation!r}")
        seed = int(check_random_state(self.random_state).randint(0, 2**31 - 1))
        init = _INIT_FOR[self.activation] if self.init == "auto" else self.init
        model = Model([n_in, *self._hidden(), n_out], activation=self.activation, loss=self._loss,
                      dtype=self.dtype, init=init, seed=seed)
        if self.device != "auto":
            model.set_device(self.device)
        return model

    def _train(self, model, X, targets, epochs):
        model.fit(X, targets, epochs=epochs, batch_size=self.batch_size,
                  learning_rate=self.learning_rate, shuffle=self.shuffle, report_interval=0)
        self.model_ = model
        self.loss_curve_ = [float(v) for v in model.epoch_losses()]
        self.n_iter_ = len(self.loss_curve_)
        if not np.isfinite(self.loss_curve_[-1]):
            warnings.warn(f"training diverged (loss {self.loss_curve_[-1]}); lower learning_rate",
                          ConvergenceWarning)
        return self

    def _check_X(self, X):
        check_is_fitted(self, "model_")
        return _validate_data(self, X, reset=False, dtype=[np.float64, np.float32], order="C")


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """A multilayer perceptron classifier (softmax cross-entropy) trained by libnn.

    Labels may be any sortable values (classes_ holds them); predict_proba gives the
    softmax of the last layer, predict its first maximal column.
    """

    _loss = "softmax_cross_entropy"

    def fit(self, X, y):
        X, y = _validate_data(self, X, y, dtype=[np.float64, np.float32], order="C")
        check_classification_targets(y)
        classes, encoded = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes; "
                             f"y has only one class ({classes[0]!r})")
        model = self._new_model(X.shape[1], len(classes))
        self.classes_ = classes
        return self._train(model, X, encoded.astype(np.int32), self.epochs)

    def partial_fit(self, X, y, classes=None):
        """One more epoch on the same model; the first call needs `classes` (all labels)."""
        first = _check_partial_fit_first_call(self, classes) or not hasattr(self, "model_")
        X, y = _validate_data(self, X, y, reset=first, dtype=[np.float64, np.float32], order="C")
        check_classification_targets(y)
        if first and len(self.classes_) < 2:
            raise ValueError(f"{type(self).__name__} needs at least 2 classes; classes has only one class")
        encoded = np.searchsorted(self.classes_, y)
        encoded = np.minimum(encoded, len(self.classes_) - 1)
        if np.any(self.classes_[encoded] != y):
            unknown = sorted(set(np.asarray(y).tolist()) - set(self.classes_.tolist()))
            raise ValueError(f"y has labels not in classes: {unknown}")
        model = self._new_model(X.shape[1], len(self.classes_)) if first else self.model_
        return self._train(model, X, encoded.astype(np.int32), 1)

    def predict(self, X):
        X = self._check_X(X)
        return self.classes_[self.model_.predict_classes(X)]

    def predict_proba(self, X):
        X = self._check_X(X)
        return self.model_.predict_proba(X, dtype=np.float64)

    def predict_log_proba(self, X):
        with np.errstate(divide="ignore"):
            return np.log(self.predict_proba(X))


class MLPRegressor(RegressorMixin, _BaseMLP):
    """A multilayer perceptron regressor (mean squared error) trained by libnn; y may be
    1-D or (n_samples, n_targets)."""

    _loss = "mean_squared_error"

    def _targets(self, X, y, reset):
        X, y = _validate_data(self, X, y, reset=reset, dtype=[np.float64, np.float32], order="C",
                              multi_output=True, y_numeric=True)
        y = np.asarray(y, dtype=np.float64)
        if reset:
            self._y_1d = y.ndim == 1
        targets = np.ascontiguousarray(y.reshape(len(y), -1))
        return X, targets

    def fit(self, X, y):
        X, targets = self._targets(X, y, reset=True)
        return self._train(self._new_model(X.shape[1], targets.shape[1]), X, targets, self.epochs)

    def partial_fit(self, X, y):
        """One more epoch on the same model (a new model on the first call)."""
        first = not hasattr(self, "model_")
        X, targets = self._targets(X, y, reset=first)
        model = self._new_model(X.shape[1], targets.shape[1]) if first else self.model_
        return self._train(model, X, targets, 1)

    def predict(self, X):
        X = self._check_X(X)
        scores = self.model_.predict(X, dtype=np.float64)
        return scores.ravel() if self._y_1d else scores

    def _more_tags(self):
        return {"multioutput": True}
