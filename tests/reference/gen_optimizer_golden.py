#!/usr/bin/python3
"""Writes the optimizer golden files that tests/reference/test_optimizers.cpp compares with.

Run by the test suite (ctest fixture `reference.optimizer_golden_files`) with Debian's
python3 and its python3-numpy:

    /usr/bin/python3 tests/reference/gen_optimizer_golden.py OUT_DIR [--reference-dir DIR]

The reference directory (../shared/reference; also $NN_REFERENCE_DIR) supplies the data,
book-ch01/spiral.csv, and the initial weights, book-ch01/trainer_initial_{W1,b1,W2,b2}.csv.

What it computes, in NumPy float64, following ../shared/reference/BOOK-CH01.md:
  §3/§4  TwoLayerNet(2, 10, 3): Affine -> Sigmoid -> Affine -> SoftmaxWithLoss, loss
         -sum(log(p[true] + 1e-7)) / batch, backward (softmax - onehot) / batch;
  §5     SGD, Momentum, Nesterov, AdaGrad, RMSprop, Adam with the exact operation order of
         the book's common/optimizer.py (Python-float coefficients computed first, Adam's
         bias correction folded into lr_t, eps after the square root, lazily zero state);
  §6     clip_grads(grads, max_norm): one global norm, rate = max_norm / (total + 1e-6),
         applied only when below 1;
  §7.2   Trainer.fit: each epoch `idx = permutation(300)` from the fit's stream and
         `x = x[idx]` on the fit's local copy (so orders compound within a call and a
         new call starts again from the caller's order), batches of 30, 10 steps per
         epoch, forward / backward / (weight decay) / clip / update;
plus libnn's two options that the book has no code for, with the semantics nn.h gives:
  weight_decay λ: g_W += λ·W for the weight matrices only (not biases), before clipping;
         the reported loss stays the data loss;
  class_weights w: row r's loss term log(p + 1e-7) and its gradient row are multiplied
         by w[class of r] (as a per-row `dout`: dx *= w_r, then dx / batch); the batch mean
         still divides by the batch size.

The shuffle stream is a fresh np.random.RandomState(SEED) per case (the C++ test passes
an nn_rng created with the same seed as nn_fit_options.rng).

Before writing, the script checks its own cases: clipping engages on 20-80% of the steps,
every run trains, no golden value is exactly 0 (the test has no absolute floor), the cases
end far apart (so a backend that ignores an option cannot pass), and each case is well
conditioned: rerun with random one-ulp relative noise on every step's gradients and
parameters (a stand-in for a correct implementation that rounds differently), its results
move by less than 1/20 of the test's 1e-9 tolerance.

Files written to OUT_DIR (every number as '%.17g', which round-trips float64 exactly):
  cases.txt                one line per case: `name key=value ...` (the fit options)
  <case>.losses.txt        the epoch history's losses: the mean of each epoch's 10 step
                           losses, one per line
  <case>.params.txt        the final parameters in libnn's flat layout (W1 2x10 row-major,
                           b1, W2 10x3 row-major, b2), one per line
  <case>.calls.txt         continued-training cases only: the 63 parameters after each
                           fit call, one call per line, comma-separated
"""

import argparse
import os
import sys

import numpy as np

SEED = 1984          # the fit's shuffle stream: RandomState(SEED), one per case
EPOCHS = 50
BATCH = 30
N_ROWS = 300
EPS = 1e-7           # the book's eps (nn_fit_options.epsilon default)
TOLERANCE = 1e-9     # what test_optimizers.cpp allows, per element, relative
ULP = 2.0 ** -52     # the size of the rounding noise of the conditioning check

BOOK_DEFAULTS = dict(momentum=0.9, decay_rate=0.99, beta1=0.9, beta2=0.999, epsilon=EPS)

# name, optimizer, lr, max_grad_norm (0: no clipping), extra
# Learning rates chosen so that every optimizer trains sensibly in 50 epochs; the clip
# thresholds sit inside each run's range of gradient norms, so clipping engages on a good
# share of the steps (printed, and asserted > 0 below).
CLASS_WEIGHTS = [1.0, 2.0, 0.5]
CASES = [
    ("sgd",                "sgd",      1.0,  0.0,  {}),
    ("sgd_clip",           "sgd",      1.0,  0.25, {}),
    ("momentum",           "momentum", 0.3,  0.0,  {}),
    ("momentum_clip",      "momentum", 0.3,  0.2,  {}),
    ("nesterov",           "nesterov", 0.2,  0.0,  {}),
    ("nesterov_clip",      "nesterov", 0.2,  0.2,  {}),
    ("adagrad",            "adagrad",  0.5,  0.0,  {}),
    ("adagrad_clip",       "adagrad",  0.5,  0.15, {}),
    ("rmsprop",            "rmsprop",  0.05, 0.0,  {}),
    ("rmsprop_clip",       "rmsprop",  0.05, 0.15, {}),
    ("adam",               "adam",     0.05, 0.0,  {}),
    ("adam_clip",          "adam",     0.05, 0.15, {}),
    # libnn's regularisation options on top of Adam (with and without clipping, so that
    # "weight decay before clipping" is pinned down too).
    ("adam_wd_cw",         "adam",     0.05, 0.0,  dict(weight_decay=1e-3, class_weights=CLASS_WEIGHTS)),
    ("adam_wd_cw_clip",    "adam",     0.05, 0.15, dict(weight_decay=1e-3, class_weights=CLASS_WEIGHTS)),
    # Continued training: EPOCHS separate fit calls of one epoch each. Optimizer state,
    # Adam's step count and the shuffle stream carry over; the row order restarts.
    ("adam_continued",     "adam",     0.04, 0.0,  dict(calls=EPOCHS)),
    ("momentum_continued", "momentum", 0.3,  0.2,  dict(calls=EPOCHS)),
]


def read_matrix(path):
    rows = []
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            rows.append([float(c) for c in line.split(",")])
    return np.array(rows, dtype=np.float64)


def load_spiral(ref):
    x, t = [], []
    with open(os.path.join(ref, "book-ch01", "spiral.csv")) as f:
        header = f.readline().strip()
        if header != "x0,x1,label":
            raise SystemExit("spiral.csv: unexpected header %r" % header)
        for line in f:
            a, b, c = line.strip().split(",")
            x.append([float(a), float(b)])
            t.append(int(c))
    x = np.array(x, dtype=np.float64)
    t = np.array(t, dtype=np.int32)
    assert x.shape == (N_ROWS, 2) and t.shape == (N_ROWS,)
    return x, t


def load_initial(ref):
    p = {}
    for name in ("W1", "b1", "W2", "b2"):
        p[name] = read_matrix(os.path.join(ref, "book-ch01", "trainer_initial_%s.csv" % name))
    W1 = p["W1"].reshape(2, 10)
    b1 = p["b1"].reshape(10)
    W2 = p["W2"].reshape(10, 3)
    b2 = p["b2"].reshape(3)
    return [W1, b1, W2, b2]


# ---- layers (BOOK-CH01 §3, §4) ------------------------------------------------------

def softmax(x):
    x = x - x.max(axis=1, keepdims=True)
    x = np.exp(x)
    x /= x.sum(axis=1, keepdims=True)
    return x


class Net:
    """TwoLayerNet(2, 10, 3); params and grads are the same arrays the layers use."""

    def __init__(self, params):
        self.params = [p.copy() for p in params]
        self.grads = [np.zeros_like(p) for p in self.params]

    def forward(self, x, t, class_weights=None):
        W1, b1, W2, b2 = self.params
        self.x = x
        a1 = np.dot(x, W1) + b1
        self.h = 1 / (1 + np.exp(-a1))
        score = np.dot(self.h, W2) + b2
        self.y = softmax(score)
        self.t = t
        B = self.y.shape[0]
        terms = np.log(self.y[np.arange(B), t] + 1e-7)
        if class_weights is not None:
            terms = class_weights[t] * terms
        return -np.sum(terms) / B

    def backward(self, class_weights=None):
        W1, b1, W2, b2 = self.params
        B = self.t.shape[0]
        dx = self.y.copy()
        dx[np.arange(B), self.t] -= 1
        if class_weights is not None:   # a per-row dout
            dx *= class_weights[self.t][:, None]
        dx = dx / B
        # Affine 2
        dh = np.dot(dx, W2.T)
        self.grads[2][...] = np.dot(self.h.T, dx)
        self.grads[3][...] = np.sum(dx, axis=0)
        # Sigmoid
        da = dh * (1.0 - self.h) * self.h
        # Affine 1
        self.grads[0][...] = np.dot(self.x.T, da)
        self.grads[1][...] = np.sum(da, axis=0)


# ---- optimizers (BOOK-CH01 §5), written as the book's common/optimizer.py ------------

class SGD:
    def __init__(self, lr, **_):
        self.lr = lr

    def update(self, params, grads):
        for i in range(len(params)):
            params[i] -= self.lr * grads[i]


class Momentum:
    def __init__(self, lr, momentum, **_):
        self.lr, self.momentum, self.v = lr, momentum, None

    def update(self, params, grads):
        if self.v is None:
            self.v = [np.zeros_like(p) for p in params]
        for i in range(len(params)):
            self.v[i] = self.momentum * self.v[i] - self.lr * grads[i]
            params[i] += self.v[i]


class Nesterov:
    def __init__(self, lr, momentum, **_):
        self.lr, self.momentum, self.v = lr, momentum, None

    def update(self, params, grads):
        if self.v is None:
            self.v = [np.zeros_like(p) for p in params]
        for i in range(len(params)):
            self.v[i] *= self.momentum
            self.v[i] -= self.lr * grads[i]
            params[i] += self.momentum * self.momentum * self.v[i]
            params[i] -= (1 + self.momentum) * self.lr * grads[i]


class AdaGrad:
    def __init__(self, lr, epsilon, **_):
        self.lr, self.eps, self.h = lr, epsilon, None

    def update(self, params, grads):
        if self.h is None:
            self.h = [np.zeros_like(p) for p in params]
        for i in range(len(params)):
            self.h[i] += grads[i] * grads[i]
            params[i] -= self.lr * grads[i] / (np.sqrt(self.h[i]) + self.eps)


class RMSprop:
    def __init__(self, lr, decay_rate, epsilon, **_):
        self.lr, self.decay_rate, self.eps, self.h = lr, decay_rate, epsilon, None

    def update(self, params, grads):
        if self.h is None:
            self.h = [np.zeros_like(p) for p in params]
        for i in range(len(params)):
            self.h[i] *= self.decay_rate
            self.h[i] += (1 - self.decay_rate) * grads[i] * grads[i]
            params[i] -= self.lr * grads[i] / (np.sqrt(self.h[i]) + self.eps)


class Adam:
    def __init__(self, lr, beta1, beta2, epsilon, **_):
        self.lr, self.beta1, self.beta2, self.eps = lr, beta1, beta2, epsilon
        self.iter, self.m, self.v = 0, None, None

    def update(self, params, grads):
        if self.m is None:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]
        self.iter += 1
        lr_t = self.lr * np.sqrt(1.0 - self.beta2 ** self.iter) / (1.0 - self.beta1 ** self.iter)
        for i in range(len(params)):
            self.m[i] += (1 - self.beta1) * (grads[i] - self.m[i])
            self.v[i] += (1 - self.beta2) * (grads[i] ** 2 - self.v[i])
            params[i] -= lr_t * self.m[i] / (np.sqrt(self.v[i]) + self.eps)


OPTIMIZERS = dict(sgd=SGD, momentum=Momentum, nesterov=Nesterov, adagrad=AdaGrad,
                  rmsprop=RMSprop, adam=Adam)


def clip_grads(grads, max_norm):
    """BOOK-CH01 §6. Returns whether the gradients were scaled."""
    total_norm = 0
    for grad in grads:
        total_norm += np.sum(grad ** 2)
    total_norm = np.sqrt(total_norm)
    rate = max_norm / (total_norm + 1e-6)
    if rate < 1:
        for grad in grads:
            grad *= rate
        return True
    return False


# ---- the Trainer (BOOK-CH01 §7.2) ----------------------------------------------------

class Trainer:
    def __init__(self, net, optimizer, noise=None):
        self.net, self.optimizer = net, optimizer
        self.noise = noise   # see conditioning(); None for the golden runs
        self.epoch_losses = []
        self.steps = 0
        self.clipped_steps = 0

    def fit(self, x, t, rng, max_epoch, batch_size, max_grad=0.0, weight_decay=0.0,
            class_weights=None):
        net = self.net
        data_size = len(x)
        max_iters = data_size // batch_size
        for epoch in range(max_epoch):
            idx = rng.permutation(np.arange(data_size))
            x = x[idx]     # local to this call: compounding within it, not across calls
            t = t[idx]
            epoch_total = 0.0
            for iters in range(max_iters):
                bx = x[iters * batch_size:(iters + 1) * batch_size]
                bt = t[iters * batch_size:(iters + 1) * batch_size]
                loss = net.forward(bx, bt, class_weights)
                net.backward(class_weights)
                params, grads = net.params, net.grads   # remove_duplicate: nothing shared
                if weight_decay:
                    for i in (0, 2):                       # W1, W2; not the biases
                        grads[i] += weight_decay * params[i]
                if max_grad:
                    self.clipped_steps += clip_grads(grads, max_grad)
                if self.noise is not None:
                    for grad in grads:
                        grad *= 1 + ULP * self.noise.standard_normal(grad.shape)
                self.optimizer.update(params, grads)
                if self.noise is not None:
                    for param in params:
                        param *= 1 + ULP * self.noise.standard_normal(param.shape)
                self.steps += 1
                epoch_total += loss
            self.epoch_losses.append(epoch_total / max_iters)


def flat(params):
    return np.concatenate([p.reshape(-1) for p in params])


def run_case(name, opt, lr, max_grad, extra, x, t, initial, noise=None):
    hyper = dict(BOOK_DEFAULTS)
    net = Net(initial)
    optimizer = OPTIMIZERS[opt](lr=lr, **hyper)
    trainer = Trainer(net, optimizer, noise)
    rng = np.random.RandomState(SEED)
    weight_decay = extra.get("weight_decay", 0.0)
    cw = extra.get("class_weights")
    cw = np.array(cw, dtype=np.float64) if cw is not None else None
    calls = extra.get("calls", 1)
    epochs_per_call = EPOCHS // calls
    per_call = []
    for _ in range(calls):
        trainer.fit(x, t, rng, epochs_per_call, BATCH, max_grad, weight_decay, cw)
        per_call.append(flat(net.params).copy())
    assert len(trainer.epoch_losses) == EPOCHS
    options = dict(optimizer=opt, learning_rate=lr, max_grad_norm=max_grad,
                   weight_decay=weight_decay, seed=SEED, batch_size=BATCH,
                   epochs=epochs_per_call, calls=calls, **hyper)
    if cw is not None:
        options["class_weights"] = cw
    return dict(name=name, options=options, losses=np.array(trainer.epoch_losses),
                params=flat(net.params), per_call=per_call if calls > 1 else None,
                clipped=trainer.clipped_steps, steps=trainer.steps)


def conditioning(case, golden, x, t, initial):
    """How far the case's results move when every step's gradients and parameters get
    independent random relative perturbations of about one ulp: a stand-in for a correct
    implementation that rounds differently (another summation order, BLAS kernel or libm).
    The largest relative change of any loss or parameter (after every call) is returned; it
    must stay well below TOLERANCE, or the case is too ill-conditioned to test at 1e-9
    (e.g. a parameter that ends near 0, where a relative comparison magnifies noise)."""
    name, opt, lr, max_grad, extra = case
    r = run_case(name, opt, lr, max_grad, extra, x, t, initial, noise=np.random.RandomState(7))
    worst = max(relative_difference(r["losses"], golden["losses"]),
                relative_difference(r["params"], golden["params"]))
    for a, b in zip(r["per_call"] or [], golden["per_call"] or []):
        worst = max(worst, relative_difference(a, b))
    return worst


def g(v):
    return "%.17g" % v


def format_option(v):
    if isinstance(v, np.ndarray):
        return ",".join(g(e) for e in v)
    if isinstance(v, float):
        return g(v)
    return str(v)


def relative_difference(a, b):
    return float(np.max(np.abs(a - b) / np.abs(b)))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("out_dir")
    ap.add_argument("--reference-dir", default=os.environ.get(
        "NN_REFERENCE_DIR",
        os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "shared", "reference")))
    args = ap.parse_args()

    np.seterr(over="raise", divide="raise", invalid="raise")   # in a golden run: a bug, not data
    x, t = load_spiral(args.reference_dir)
    initial = load_initial(args.reference_dir)
    os.makedirs(args.out_dir, exist_ok=True)
    manifest_path = os.path.join(args.out_dir, "cases.txt")
    if os.path.exists(manifest_path):
        os.remove(manifest_path)   # written last: a run that fails leaves no manifest

    results = {}
    manifest = []
    print("numpy %s, shuffle seed %d, %d epochs of %d steps" % (np.__version__, SEED, EPOCHS, N_ROWS // BATCH))
    print("%-20s %10s %10s %8s %12s" % ("case", "loss ep1", "loss ep50", "clipped", "ulp-noise"))
    for case in CASES:
        name, opt, lr, max_grad, extra = case
        r = run_case(name, opt, lr, max_grad, extra, x, t, initial)
        results[name] = r
        frac = r["clipped"] / r["steps"]
        # Sanity of the cases themselves, so that the golden files test something.
        if not np.all(np.isfinite(r["losses"])) or not np.all(np.isfinite(r["params"])):
            raise SystemExit("%s: non-finite result" % name)
        if np.any(r["params"] == 0.0) or any(np.any(p == 0.0) for p in r["per_call"] or []) \
                or np.any(r["losses"] <= 0.0):
            # The C++ test compares every element relatively, with no absolute floor.
            raise SystemExit("%s: a golden value is exactly 0" % name)
        if max_grad and not 0.2 <= frac <= 0.8:
            # Both branches of clip_grads' `rate < 1` test should be taken often.
            raise SystemExit("%s: clipping engaged on %.0f%% of the steps (max_grad_norm %g)"
                             % (name, 100 * frac, max_grad))
        if r["losses"][-1] >= r["losses"][0]:
            raise SystemExit("%s: did not train (loss %g -> %g)" % (name, r["losses"][0], r["losses"][-1]))
        sensitivity = conditioning(case, r, x, t, initial)
        print("%-20s %10.6f %10.6f %7.0f%% %12.3g" % (name, r["losses"][0], r["losses"][-1],
                                                    100 * frac, sensitivity))
        if sensitivity > TOLERANCE / 20:
            raise SystemExit("%s: ill-conditioned: ulp-level noise moves its results by %.3g relative, "
                             "too close to the test's %g" % (name, sensitivity, TOLERANCE))

        opts = " ".join("%s=%s" % (k, format_option(v)) for k, v in sorted(r["options"].items()))
        manifest.append("%s %s" % (name, opts))
        with open(os.path.join(args.out_dir, name + ".losses.txt"), "w") as f:
            f.write("".join(g(v) + "\n" for v in r["losses"]))
        with open(os.path.join(args.out_dir, name + ".params.txt"), "w") as f:
            f.write("".join(g(v) + "\n" for v in r["params"]))
        if r["per_call"] is not None:
            with open(os.path.join(args.out_dir, name + ".calls.txt"), "w") as f:
                for p in r["per_call"]:
                    f.write(",".join(g(v) for v in p) + "\n")

    # The cases must differ from each other by far more than the 1e-9 tolerance, or a
    # backend that ignores an option could pass.
    def must_differ(a, b):
        d = relative_difference(results[a]["params"], results[b]["params"])
        print("final params %-16s vs %-16s: max relative difference %.3g" % (a, b, d))
        if d < 1e-4:
            raise SystemExit("%s and %s end too close (%.3g)" % (a, b, d))

    names = [c[0] for c in CASES]
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            d = relative_difference(results[a]["params"], results[b]["params"])
            if d < 1e-4:
                raise SystemExit("%s and %s end too close (%.3g)" % (a, b, d))
    for base in ("sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adam_wd_cw"):
        must_differ(base, base + "_clip")
    must_differ("adam", "adam_wd_cw")
    must_differ("momentum_clip", "momentum_continued")   # only the calls differ

    with open(manifest_path, "w") as f:
        f.write("# written by tests/reference/gen_optimizer_golden.py with numpy %s\n" % np.__version__)
        f.write("".join(line + "\n" for line in manifest))
    print("wrote %d cases to %s" % (len(CASES), args.out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
