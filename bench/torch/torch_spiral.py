#!/usr/bin/python3
"""PyTorch as a peer of bench_spiral: the book's chapter-1 training, the same data, initial
weights and shuffle as bench/spiral/numpy_spiral.py (NumPy's legacy stream seeded 1984 draws
the spiral, then W1 and W2 as 0.01·randn, then one permutation per epoch, compounding), a
2-10-3 sigmoid net with softmax cross-entropy, SGD lr 1.0, batch 30, 300 epochs, the
Trainer's loss record every 10 steps. Only the training loop is timed, after a short
untimed warm-up (--warmup).

Two ways of writing it, both timed in each run (--style picks one):
  nn      idiomatic PyTorch: torch.nn.Sequential(Linear, Sigmoid, Linear),
          nn.CrossEntropyLoss, autograd, torch.optim.SGD, loss.item() each step
  manual  the book's layers written with explicit tensor products and the hand-derived
          backward under torch.no_grad() (the same arithmetic as numpy_spiral.py)

Prints one line per run and style, the shape of bench_spiral's:
    torch <dtype> run <i> in_loop_s <seconds> final_record <loss> threads <n> style <nn|manual>

Threads: --threads N calls torch.set_num_threads(N) (intra-op) and set_num_interop_threads(1);
bench/run also sets OPENBLAS_NUM_THREADS/OMP_NUM_THREADS to N and pins with taskset.
Run with Debian's /usr/bin/python3 (python3-torch, python3-numpy).
"""

import argparse
import os
import sys
import time

import numpy as np
import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "spiral"))
from numpy_spiral import spiral  # noqa: E402  (the book's data, NumPy's legacy stream)

EPOCHS, BATCH, LR, EVAL_INTERVAL = 300, 30, 1.0, 10


def book_start(dtype):
    """Data, labels and initial weights exactly as numpy_spiral.py draws them."""
    x, t = spiral(1984)
    W1 = 0.01 * np.random.randn(2, 10)
    W2 = 0.01 * np.random.randn(10, 3)
    np_dtype = np.float32 if dtype == torch.float32 else np.float64
    return (torch.from_numpy(x.astype(np_dtype)), torch.from_numpy(t.argmax(axis=1).astype(np.int64)),
            torch.from_numpy(W1.astype(np_dtype)), torch.from_numpy(W2.astype(np_dtype)))


def fit_nn(dtype, epochs=EPOCHS):
    x, t, W1, W2 = book_start(dtype)
    model = torch.nn.Sequential(torch.nn.Linear(2, 10), torch.nn.Sigmoid(), torch.nn.Linear(10, 3)).to(dtype)
    with torch.no_grad():
        model[0].weight.copy_(W1.T)
        model[0].bias.zero_()
        model[2].weight.copy_(W2.T)
        model[2].bias.zero_()
    loss_fn = torch.nn.CrossEntropyLoss()
    opt = torch.optim.SGD(model.parameters(), lr=LR)
    n = x.shape[0]
    steps = n // BATCH
    total, count, records = 0.0, 0, []
    start = time.perf_counter()
    for _ in range(epochs):
        idx = torch.from_numpy(np.random.permutation(n))
        x, t = x[idx], t[idx]
        for it in range(steps):
            bx, bt = x[it * BATCH:(it + 1) * BATCH], t[it * BATCH:(it + 1) * BATCH]
            loss = loss_fn(model(bx), bt)
            opt.zero_grad()
            loss.backward()
            opt.step()
            total += loss.item()
            count += 1
            if it % EVAL_INTERVAL == 0:
                records.append(total / count)
                total, count = 0.0, 0
    return time.perf_counter() - start, records[-1]


def fit_manual(dtype, epochs=EPOCHS):
    x, t, W1, W2 = book_start(dtype)
    b1 = torch.zeros(10, dtype=dtype)
    b2 = torch.zeros(3, dtype=dtype)
    n = x.shape[0]
    steps = n // BATCH
    rows = torch.arange(BATCH)
    total, count, records = 0.0, 0, []
    start = time.perf_counter()
    with torch.no_grad():
        for _ in range(epochs):
            idx = torch.from_numpy(np.random.permutation(n))
            x, t = x[idx], t[idx]
            for it in range(steps):
                bx, bt = x[it * BATCH:(it + 1) * BATCH], t[it * BATCH:(it + 1) * BATCH]
                h = torch.sigmoid(bx @ W1 + b1)
                s = h @ W2 + b2
                y = torch.softmax(s, dim=1)
                loss = -torch.log(y[rows, bt] + 1e-7).sum() / BATCH
                d = y.clone()
                d[rows, bt] -= 1
                d /= BATCH
                gW2, gb2 = h.T @ d, d.sum(0)
                dh = (d @ W2.T) * (1.0 - h) * h
                gW1, gb1 = bx.T @ dh, dh.sum(0)
                W1.sub_(gW1, alpha=LR)
                b1.sub_(gb1, alpha=LR)
                W2.sub_(gW2, alpha=LR)
                b2.sub_(gb2, alpha=LR)
                total += loss.item()
                count += 1
                if it % EVAL_INTERVAL == 0:
                    records.append(total / count)
                    total, count = 0.0, 0
    return time.perf_counter() - start, records[-1]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", choices=["float32", "float64", "both"], default="both")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--style", choices=["nn", "manual", "both"], default="both")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=5,
                        help="epochs of each style and dtype run untimed first (0: none), so that PyTorch's "
                             "first-call costs are not in its figure (libnn and NumPy get no such help)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    dtypes = {"float32": [torch.float32], "float64": [torch.float64],
              "both": [torch.float32, torch.float64]}[args.dtype]
    styles = {"nn": [("nn", fit_nn)], "manual": [("manual", fit_manual)],
              "both": [("nn", fit_nn), ("manual", fit_manual)]}[args.style]
    if args.warmup > 0:
        for dtype in dtypes:
            for _, fit in styles:
                fit(dtype, args.warmup)
    for r in range(args.repeat):
        for dtype in dtypes:
            for name, fit in styles:
                elapsed, last = fit(dtype)
                print(f"torch {str(dtype).replace('torch.', '')} run {r} in_loop_s {elapsed:.6f} "
                      f"final_record {last:.4f} threads {torch.get_num_threads()} style {name}", flush=True)


if __name__ == "__main__":
    main()
