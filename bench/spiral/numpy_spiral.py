#!/usr/bin/python3
"""The book's chapter-1 training in NumPy, as the peer that bench_spiral is timed against.

Written from shared/reference/BOOK-CH01.md sections 1-7 (no book code is copied): the
spiral with seed 1984, TwoLayerNet(2, 10, 3) = Affine -> Sigmoid -> Affine ->
SoftmaxWithLoss, SGD(lr=1.0), and Trainer.fit(x, t, 300, 30, eval_interval=10) with the
compounding per-epoch permutation. Only the training loop is timed, like nn_fit.

--optimizer swaps SGD for one of the book's other common/optimizer.py classes, written
from BOOK-CH01.md section 5 with its exact update rules and defaults (state created
lazily as zeros on the first update; Adam's bias correction folded into lr_t and eps
added after the square root). Each optimizer trains with its learning rate of
bench_spiral's table (OPTIMIZERS below), so both sides run the same arithmetic.

float64 is the book's run. float32 casts the data and the float64-drawn initial
weights once, as the reference's float32 variant does.

Prints one line per run, the same shape as bench_spiral's:
    numpy <dtype> run <i> in_loop_s <seconds> final_record <loss>
and, for any optimizer but SGD, the same line ending in "optimizer <name>".

Run with Debian's /usr/bin/python3 (python3-numpy); pin threads with
OPENBLAS_NUM_THREADS=1 and taskset for a single-core comparison (run.sh does).
"""

import argparse
import time

import numpy as np


def spiral(seed=1984):
    """spiral.load_data: reseed the global stream, one randn() per point, class-major."""
    np.random.seed(seed)
    n, dim, cls = 100, 2, 3
    x = np.zeros((n * cls, dim))
    t = np.zeros((n * cls, cls), dtype=np.int32)
    for j in range(cls):
        for i in range(n):
            rate = i / n
            radius = 1.0 * rate
            theta = j * 4.0 + 4.0 * rate + np.random.randn() * 0.2
            ix = n * j + i
            x[ix] = np.array([radius * np.sin(theta), radius * np.cos(theta)]).flatten()
            t[ix, j] = 1
    return x, t


class Affine:
    def __init__(self, W, b):
        self.params = [W, b]
        self.grads = [np.zeros_like(W), np.zeros_like(b)]
        self.x = None

    def forward(self, x):
        W, b = self.params
        self.x = x
        return np.dot(x, W) + b

    def backward(self, dout):
        W, _ = self.params
        dx = np.dot(dout, W.T)
        self.grads[0][...] = np.dot(self.x.T, dout)
        self.grads[1][...] = np.sum(dout, axis=0)
        return dx


class Sigmoid:
    def __init__(self):
        self.params, self.grads = [], []
        self.out = None

    def forward(self, x):
        self.out = 1 / (1 + np.exp(-x))
        return self.out

    def backward(self, dout):
        return dout * (1.0 - self.out) * self.out


def softmax(x):
    x = x - x.max(axis=1, keepdims=True)
    x = np.exp(x)
    return x / x.sum(axis=1, keepdims=True)


def cross_entropy_error(y, t):
    if t.size == y.size:
        t = t.argmax(axis=1)
    batch = y.shape[0]
    return -np.sum(np.log(y[np.arange(batch), t] + 1e-7)) / batch


class SoftmaxWithLoss:
    def __init__(self):
        self.params, self.grads = [], []
        self.y = None
        self.t = None

    def forward(self, x, t):
        self.t = t
        self.y = softmax(x)
        if self.t.size == self.y.size:
            self.t = self.t.argmax(axis=1)
        return cross_entropy_error(self.y, self.t)

    def backward(self, dout=1):
        batch = self.t.shape[0]
        dx = self.y.copy()
        dx[np.arange(batch), self.t] -= 1
        dx *= dout
        return dx / batch


class TwoLayerNet:
    def __init__(self, n_in, n_hidden, n_out, dtype):
        # Drawn in float64 from the global stream (W1 then W2), then cast once.
        W1 = (0.01 * np.random.randn(n_in, n_hidden)).astype(dtype)
        b1 = np.zeros(n_hidden, dtype=dtype)
        W2 = (0.01 * np.random.randn(n_hidden, n_out)).astype(dtype)
        b2 = np.zeros(n_out, dtype=dtype)
        self.layers = [Affine(W1, b1), Sigmoid(), Affine(W2, b2)]
        self.loss_layer = SoftmaxWithLoss()
        self.params, self.grads = [], []
        for layer in self.layers:
            self.params += layer.params
            self.grads += layer.grads

    def forward(self, x, t):
        for layer in self.layers:
            x = layer.forward(x)
        return self.loss_layer.forward(x, t)

    def backward(self, dout=1):
        dout = self.loss_layer.backward(dout)
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
        return dout


class SGD:
    def __init__(self, lr=0.01):
        self.lr = lr

    def update(self, params, grads):
        for p, g in zip(params, grads):
            p -= self.lr * g


class Momentum:
    def __init__(self, lr=0.01, momentum=0.9):
        self.lr, self.momentum = lr, momentum
        self.v = None

    def update(self, params, grads):
        if self.v is None:
            self.v = [np.zeros_like(p) for p in params]
        for i in range(len(params)):
            self.v[i] = self.momentum * self.v[i] - self.lr * grads[i]
            params[i] += self.v[i]


class Nesterov:
    def __init__(self, lr=0.01, momentum=0.9):
        self.lr, self.momentum = lr, momentum
        self.v = None

    def update(self, params, grads):
        if self.v is None:
            self.v = [np.zeros_like(p) for p in params]
        for i in range(len(params)):
            self.v[i] *= self.momentum
            self.v[i] -= self.lr * grads[i]
            params[i] += self.momentum * self.momentum * self.v[i]
            params[i] -= (1 + self.momentum) * self.lr * grads[i]


class AdaGrad:
    def __init__(self, lr=0.01):
        self.lr = lr
        self.h = None

    def update(self, params, grads):
        if self.h is None:
            self.h = [np.zeros_like(p) for p in params]
        for i in range(len(params)):
            self.h[i] += grads[i] * grads[i]
            params[i] -= self.lr * grads[i] / (np.sqrt(self.h[i]) + 1e-7)


class RMSprop:
    def __init__(self, lr=0.01, decay_rate=0.99):
        self.lr, self.decay_rate = lr, decay_rate
        self.h = None

    def update(self, params, grads):
        if self.h is None:
            self.h = [np.zeros_like(p) for p in params]
        for i in range(len(params)):
            self.h[i] *= self.decay_rate
            self.h[i] += (1 - self.decay_rate) * grads[i] * grads[i]
            params[i] -= self.lr * grads[i] / (np.sqrt(self.h[i]) + 1e-7)


class Adam:
    def __init__(self, lr=0.001, beta1=0.9, beta2=0.999):
        self.lr, self.beta1, self.beta2 = lr, beta1, beta2
        self.iter = 0
        self.m = None
        self.v = None

    def update(self, params, grads):
        if self.m is None:
            self.m = [np.zeros_like(p) for p in params]
            self.v = [np.zeros_like(p) for p in params]
        self.iter += 1
        lr_t = self.lr * np.sqrt(1.0 - self.beta2 ** self.iter) / (1.0 - self.beta1 ** self.iter)
        for i in range(len(params)):
            self.m[i] += (1 - self.beta1) * (grads[i] - self.m[i])
            self.v[i] += (1 - self.beta2) * (grads[i] ** 2 - self.v[i])
            params[i] -= lr_t * self.m[i] / (np.sqrt(self.v[i]) + 1e-7)


# Each optimizer's learning rate on this benchmark, the same as bench_spiral.c's table:
# SGD keeps the book's 1.0; the momentum methods take 0.1 (their steady step is about
# 10 lr·g); AdaGrad 0.5, RMSprop 0.01, Adam 0.02. Each ends the 300 epochs below a loss of
# 0.14. Every other hyperparameter is the book's default.
OPTIMIZERS = {
    "sgd": (SGD, 1.0),
    "momentum": (Momentum, 0.1),
    "nesterov": (Nesterov, 0.1),
    "adagrad": (AdaGrad, 0.5),
    "rmsprop": (RMSprop, 0.01),
    "adam": (Adam, 0.02),
}


def fit(model, optimizer, x, t, max_epoch, batch_size, eval_interval):
    """Trainer.fit without clipping (no parameters are shared in this net, so
    remove_duplicate changes nothing). Returns the loss list."""
    data_size = len(x)
    max_iters = data_size // batch_size
    total_loss, loss_count, loss_list = 0.0, 0, []
    for _ in range(max_epoch):
        idx = np.random.permutation(np.arange(data_size))
        x = x[idx]
        t = t[idx]
        for iters in range(max_iters):
            bx = x[iters * batch_size:(iters + 1) * batch_size]
            bt = t[iters * batch_size:(iters + 1) * batch_size]
            loss = model.forward(bx, bt)
            model.backward()
            optimizer.update(model.params, model.grads)
            total_loss += loss
            loss_count += 1
            if iters % eval_interval == 0:
                loss_list.append(float(total_loss / loss_count))
                total_loss, loss_count = 0.0, 0
    return loss_list


def run_once(dtype, index, optimizer="sgd", lr=None):
    x, t = spiral(1984)
    model = TwoLayerNet(2, 10, 3, dtype)
    x = x.astype(dtype)
    cls, default_lr = OPTIMIZERS[optimizer]
    opt = cls(lr=default_lr if lr is None else lr)
    start = time.perf_counter()
    losses = fit(model, opt, x, t, max_epoch=300, batch_size=30, eval_interval=10)
    elapsed = time.perf_counter() - start
    tail = "" if optimizer == "sgd" else f" optimizer {optimizer}"
    print(f"numpy {np.dtype(dtype).name} run {index} in_loop_s {elapsed:.6f} "
          f"final_record {losses[-1]:.4f}{tail}", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=["float32", "float64", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--optimizer", choices=list(OPTIMIZERS), default="sgd")
    parser.add_argument("--lr", type=float, default=None,
                        help="learning rate (default: the optimizer's entry in OPTIMIZERS)")
    args = parser.parse_args()
    dtypes = {"float32": [np.float32], "float64": [np.float64],
              "both": [np.float32, np.float64]}[args.dtype]
    for r in range(args.repeat):
        for dtype in dtypes:
            run_once(dtype, r, args.optimizer, args.lr)


if __name__ == "__main__":
    main()
