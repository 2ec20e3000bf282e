#!/usr/bin/python3
"""PyTorch as a peer of bench_wide: a 784-H-H-10 ReLU net (H = 1024), softmax cross-entropy,
torch.optim.SGD lr 0.01, batch 128, one epoch over random float32 rows (uniform [0, 1),
labels uniform in 0..9), the rows shuffled once per epoch and gathered per batch, the tail
dropped, loss.item() each step. Idiomatic torch.nn and autograd; the products go to the same
OpenBLAS as libnn's (Debian's python3-torch links libblas.so.3, OpenBLAS's on this machine).
Only the epoch loop is timed.

    torch_wide.py [--rows N] [--hidden H] [--batch B] [--epochs E] [--threads T]

Work counted as bench_wide's: 2·(3·ΣW − W1) flop per row (autograd computes no gradient
for the data either). Prints:
    torch wide threads <t> rows <n> steps <s> batch <b> loop_s <s> samples_per_s <x> gflops <x> final_loss <x>
"""

import argparse
import time

import torch


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=60000)
    parser.add_argument("--hidden", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--lr", type=float, default=0.01)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.set_num_interop_threads(1)
    torch.manual_seed(1984)
    H, B = args.hidden, args.batch
    x = torch.rand(args.rows, 784, dtype=torch.float32)
    y = torch.randint(0, 10, (args.rows,))
    model = torch.nn.Sequential(torch.nn.Linear(784, H), torch.nn.ReLU(), torch.nn.Linear(H, H), torch.nn.ReLU(),
                                torch.nn.Linear(H, 10))
    opt = torch.optim.SGD(model.parameters(), lr=args.lr)
    loss_fn = torch.nn.CrossEntropyLoss()
    steps = args.rows // B
    weights = 784 * H + H * H + H * 10
    flop_per_row = 2.0 * (3.0 * weights - 784 * H)
    total, count = 0.0, 0
    start = time.perf_counter()
    for _ in range(args.epochs):
        perm = torch.randperm(args.rows)
        total, count = 0.0, 0
        for s in range(steps):
            idx = perm[s * B:(s + 1) * B]
            loss = loss_fn(model(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += loss.item()
            count += 1
    elapsed = time.perf_counter() - start
    samples = steps * B * args.epochs
    print(f"torch wide threads {torch.get_num_threads()} rows {args.rows} steps {steps * args.epochs} batch {B} "
          f"loop_s {elapsed:.6f} samples_per_s {samples / elapsed:.1f} gflops {samples * flop_per_row / elapsed * 1e-9:.2f} "
          f"final_loss {total / max(count, 1):.4f}", flush=True)


if __name__ == "__main__":
    main()
