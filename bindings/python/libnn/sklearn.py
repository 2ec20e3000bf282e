"""scikit-learn estimators over libnn.Model: MLPClassifier and MLPRegressor.

libnn's book-faithful epoch loop: every epoch reshuffles, the tail rows (n mod batch_size)
are dropped as the book's Trainer does, and a batch size above n trains on all rows as one
batch. scikit-learn's parameter names map onto nn_fit_options:

    solver                 "sgd" (with momentum > 0: Nesterov or classical momentum, as
                           nesterovs_momentum says), "adam", or libnn's "momentum",
                           "nesterov", "adagrad", "rmsprop"
    learning_rate_init     the step size; None: 0.001 for Adam, else 0.01
    learning_rate          "constant" only (libnn has no schedule); a number is libnn's
                           older spelling of the step size
    max_iter               epochs (None: `epochs`)
    momentum, beta_1, beta_2, epsilon    the optimizer's own (decay_rate for RMSprop)
    alpha                  L2 penalty, as scikit-learn scales it: weight decay alpha / batch rows
    early_stopping, validation_fraction, n_iter_no_change, tol
                           hold out a (stratified, for the classifier) validation split and
                           stop when its loss has not improved by tol for n_iter_no_change
                           epochs; the best epoch's weights are restored
    class_weight           (classifier) None, "balanced" or {label: weight}

    precision              libnn's own: "strict", or "tf32", "float16", "bfloat16" to let a
                           GPU's tensor cores take a float32 model's products (dtype="float32")

    max_grad_norm, decay_rate   libnn's own: gradient clipping by global norm, RMSprop's rate

Where scikit-learn's defaults would change what these estimators did before (plain SGD,
no penalty), libnn keeps its own: solver "sgd" without momentum, alpha 0. With
early_stopping=False every epoch runs (scikit-learn would stop on a training-loss plateau).
Training that diverges stops at the first non-finite loss with a ConvergenceWarning; the
model keeps the weights from before that step.
"""
import numbers
import warnings

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import train_test_split
from sklearn.utils import check_random_state
from sklearn.utils.class_weight import compute_class_weight
from sklearn.utils.multiclass import _check_partial_fit_first_call, check_classification_targets
from sklearn.utils.validation import check_is_fitted

from ._errors import DivergedError
from .model import ACTIVATIONS, OPTIMIZERS, Model

try:  # scikit-learn >= 1.6 moved validation to a function
    from sklearn.utils.validation import validate_data as _validate_data
except ImportError:  # Debian 12's 1.2
    def _validate_data(estimator, *args, **kwargs):
        return estimator._validate_data(*args, **kwargs)

_INIT_FOR = {"relu": "he", "sigmoid": "xavier", "tanh": "xavier", "identity": "xavier"}


class _BaseMLP(BaseEstimator):
    _loss = None

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", dtype="float64", epochs=200,
                 batch_size=32, learning_rate="constant", random_state=None, device="auto", shuffle=True,
                 init="auto", *, solver="sgd", learning_rate_init=None, max_iter=None, momentum=None,
                 nesterovs_momentum=True, beta_1=0.9, beta_2=0.999, epsilon=1e-8, decay_rate=0.99,
                 alpha=0.0, max_grad_norm=0.0, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=10, tol=1e-4, precision="strict"):
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
        self.solver = solver
        self.learning_rate_init = learning_rate_init
        self.max_iter = max_iter
        self.momentum = momentum
        self.nesterovs_momentum = nesterovs_momentum
        self.beta_1 = beta_1
        self.beta_2 = beta_2
        self.epsilon = epsilon
        self.decay_rate = decay_rate
        self.alpha = alpha
        self.max_grad_norm = max_grad_norm
        self.early_stopping = early_stopping
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.tol = tol
        self.precision = precision

    # ---- parameters -> nn_fit_options ------------------------------------------------------
    def _hidden(self):
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, numbers.Integral) else list(sizes)
        if any(not isinstance(s, numbers.Integral) or s <= 0 for s in sizes):
            raise ValueError(f"hidden_layer_sizes must be positive integers; got {self.hidden_layer_sizes!r}")
        return sizes

    def _optimizer(self):
        """(libnn optimizer name, its options)."""
        solver = self.solver
        if solver not in OPTIMIZERS:
            extra = " (libnn has no L-BFGS)" if solver == "lbfgs" else ""
            raise ValueError(f"solver must be one of {sorted(OPTIMIZERS)}{extra}; got {solver!r}")
        if solver == "sgd":  # scikit-learn's: momentum, Nesterov's by default
            if self.momentum is None or self.momentum == 0:
                return "sgd", {}
            return ("nesterov" if self.nesterovs_momentum else "momentum"), {"momentum": self.momentum}
        if solver in ("momentum", "nesterov"):
            return solver, {"momentum": 0.9 if self.momentum is None else self.momentum}
        if solver == "adagrad":
            return solver, {"epsilon": self.epsilon}
        if solver == "rmsprop":
            return solver, {"decay_rate": self.decay_rate, "epsilon": self.epsilon}
        return "adam", {"beta1": self.beta_1, "beta2": self.beta_2, "epsilon": self.epsilon}

    def _step_size(self, optimizer):
        lr, init = self.learning_rate, self.learning_rate_init
        if isinstance(lr, str):
            if lr != "constant":
                raise ValueError(f"learning_rate={lr!r} is not supported: libnn trains with a constant "
                                 "step size (learning_rate='constant', learning_rate_init)")
            if init is None:
                return 0.001 if optimizer == "adam" else 0.01
            return float(init)
        if isinstance(lr, numbers.Real) and not isinstance(lr, bool):
            if init is not None and float(init) != float(lr):
                raise ValueError(f"learning_rate={lr!r} (libnn's older name for the step size) and "
                                 f"learning_rate_init={init!r} disagree; set learning_rate_init only")
            return float(lr)
        raise ValueError(f"learning_rate must be 'constant' or a number; got {lr!r}")

    def _batch(self, n_rows):
        if isinstance(self.batch_size, str):
            if self.batch_size != "auto":
                raise ValueError(f"batch_size must be a positive integer or 'auto'; got {self.batch_size!r}")
            return min(200, n_rows)
        return self.batch_size

    def _fit_options(self, n_rows):
        """Model.fit keyword arguments for training on n_rows rows."""
        optimizer, extra = self._optimizer()
        batch = self._batch(n_rows)
        options = dict(epochs=self.epochs if self.max_iter is None else self.max_iter, batch_size=batch,
                       learning_rate=self._step_size(optimizer), shuffle=self.shuffle, report_interval=0,
                       optimizer=optimizer, max_grad_norm=self.max_grad_norm, **extra)
        if self.alpha:
            # scikit-learn adds alpha * W to the summed gradient of a batch before dividing by
            # its rows; libnn's weight decay is added to the mean: lambda = alpha / rows.
            rows = min(batch, n_rows) if isinstance(batch, numbers.Integral) and batch > 0 else 1
            options["weight_decay"] = float(self.alpha) / rows
        return options

    def _new_model(self, n_in, n_out, rs):
        if self.activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}; got {self.activation!r}")
        seed = int(rs.randint(0, 2**31 - 1))
        init = _INIT_FOR[self.activation] if self.init == "auto" else self.init
        model = Model([n_in, *self._hidden(), n_out], activation=self.activation, loss=self._loss,
                      dtype=self.dtype, init=init, seed=seed, precision=self.precision)
        if self.device != "auto":
            model.set_device(self.device)
        return model

    # ---- training ----------------------------------------------------------------------
    def _fit_new(self, X, targets, n_out, stratify=None, class_weights=None):
        """fit(): a new model, with early stopping on a held-out split when asked."""
        rs = check_random_state(self.random_state)
        model = self._new_model(X.shape[1], n_out, rs)
        options = {} if class_weights is None else {"class_weight": class_weights}
        validation = None
        if self.early_stopping:
            X, X_val, targets, t_val = train_test_split(
                X, targets, test_size=self.validation_fraction, random_state=rs, stratify=stratify)
            validation = (X_val, t_val)
            options.update(validation_data=validation, early_stopping=True, restore_best=True,
                           patience=self.n_iter_no_change, min_delta=self.tol)
        options.update(self._fit_options(X.shape[0]))
        return self._trained(model, self._run(model, X, targets, options), validation)

    def _fit_more(self, model, X, targets, class_weights=None):
        """partial_fit(): one more epoch on the same model (no early stopping, as scikit-learn)."""
        options = self._fit_options(X.shape[0])
        options["epochs"] = 1
        model.precision = self.precision  # set_params may have changed it since the model was made
        if class_weights is not None:
            options["class_weight"] = class_weights
        return self._trained(model, self._run(model, X, targets, options), None)

    @staticmethod
    def _run(model, X, targets, options):
        try:
            return model.fit(X, targets, **options)
        except DivergedError as e:  # the model holds the weights from before the bad step
            warnings.warn(f"{e.message} [here: learning_rate_init, max_grad_norm]", ConvergenceWarning)
            return e.report

    def _trained(self, model, report, validation):
        self.model_ = model
        history = model.epoch_history()
        self.loss_curve_ = [float(v) for v in history["loss"]]
        self.n_iter_ = len(self.loss_curve_)
        if validation is None:
            self.best_loss_ = min(self.loss_curve_, default=None)
            self.validation_scores_ = None
            self.best_validation_score_ = None
        else:
            self.best_loss_ = None
            self.validation_scores_ = self._validation_scores(history, validation)
            best = report.best_epoch - 1 if 0 < report.best_epoch <= len(self.validation_scores_) else None
            self.best_validation_score_ = (self.validation_scores_[best] if best is not None
                                           else max(self.validation_scores_, default=None))
        return self

    def _check_X(self, X):
        check_is_fitted(self, "model_")
        return _validate_data(self, X, reset=False, dtype=[np.float64, np.float32], order="C")


class MLPClassifier(ClassifierMixin, _BaseMLP):
    """A multilayer perceptron classifier (softmax cross-entropy) trained by libnn.

    Labels may be any sortable values (classes_ holds them); predict_proba gives the
    softmax of the last layer, predict its first maximal column. class_weight: None,
    "balanced" or {label: weight} (labels not named weigh 1), scaling each row's loss term.
    With early_stopping, validation_scores_ holds the held-out accuracy of every epoch
    (the stopping rule watches the held-out loss).
    """

    _loss = "softmax_cross_entropy"

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", dtype="float64", epochs=200,
                 batch_size=32, learning_rate="constant", random_state=None, device="auto", shuffle=True,
                 init="auto", *, solver="sgd", learning_rate_init=None, max_iter=None, momentum=None,
                 nesterovs_momentum=True, beta_1=0.9, beta_2=0.999, epsilon=1e-8, decay_rate=0.99,
                 alpha=0.0, max_grad_norm=0.0, early_stopping=False, validation_fraction=0.1,
                 n_iter_no_change=10, tol=1e-4, class_weight=None, precision="strict"):
        super().__init__(
            hidden_layer_sizes=hidden_layer_sizes, activation=activation, dtype=dtype, epochs=epochs,
            batch_size=batch_size, learning_rate=learning_rate, random_state=random_state, device=device,
            shuffle=shuffle, init=init, solver=solver, learning_rate_init=learning_rate_init,
            max_iter=max_iter, momentum=momentum, nesterovs_momentum=nesterovs_momentum, beta_1=beta_1,
            beta_2=beta_2, epsilon=epsilon, decay_rate=decay_rate, alpha=alpha, max_grad_norm=max_grad_norm,
            early_stopping=early_stopping, validation_fraction=validation_fraction,
            n_iter_no_change=n_iter_no_change, tol=tol, precision=precision)
        self.class_weight = class_weight

    def _class_weights(self, y, partial):
        if self.class_weight is None:
            return None
        if partial and isinstance(self.class_weight, str):
            raise ValueError(f"class_weight={self.class_weight!r} is not supported by partial_fit: pass "
                             "the weights as a dict (sklearn.utils.class_weight.compute_class_weight "
                             "over all the data gives the balanced ones)")
        return compute_class_weight(self.class_weight, classes=self.classes_, y=y)

    def fit(self, X, y):
        X, y = _validate_data(self, X, y, dtype=[np.float64, np.float32], order="C")
        check_classification_targets(y)
        classes, encoded = np.unique(y, return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"{type(self).__name__} needs samples of at least 2 classes; "
                             f"y has only one class ({classes[0]!r})")
        self.classes_ = classes
        encoded = encoded.astype(np.int32)
        return self._fit_new(X, encoded, len(classes), stratify=encoded,
                             class_weights=self._class_weights(y, partial=False))

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
        weights = self._class_weights(y, partial=True)
        model = self._new_model(X.shape[1], len(self.classes_), check_random_state(self.random_state)) \
            if first else self.model_
        return self._fit_more(model, X, encoded.astype(np.int32), weights)

    def _validation_scores(self, history, validation):
        return [float(v) for v in history["val_accuracy"]]

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
    1-D or (n_samples, n_targets). With early_stopping, validation_scores_ holds the
    held-out R² of every epoch (variance-weighted over several targets)."""

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
        return self._fit_new(X, targets, targets.shape[1])

    def partial_fit(self, X, y):
        """One more epoch on the same model (a new model on the first call)."""
        first = not hasattr(self, "model_")
        X, targets = self._targets(X, y, reset=first)
        model = self._new_model(X.shape[1], targets.shape[1], check_random_state(self.random_state)) \
            if first else self.model_
        return self._fit_more(model, X, targets)

    def _validation_scores(self, history, validation):
        # libnn's loss is sum_rows 1/2 sum_cols (y - t)^2 / rows, so the residual sum of
        # squares is 2 * rows * loss; R^2 = 1 - SS_res / SS_tot.
        t_val = validation[1]
        ss_tot = float(((t_val - t_val.mean(axis=0)) ** 2).sum())
        ss_res = 2.0 * len(t_val) * np.asarray(history["val_loss"], dtype=np.float64)
        if ss_tot == 0.0:
            return [1.0 if r == 0.0 else 0.0 for r in ss_res]
        return [float(v) for v in 1.0 - ss_res / ss_tot]

    def predict(self, X):
        X = self._check_X(X)
        scores = self.model_.predict(X, dtype=np.float64)
        return scores.ravel() if self._y_1d else scores

    def _more_tags(self):
        return {"multioutput": True}
