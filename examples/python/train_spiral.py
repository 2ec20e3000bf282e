#!/usr/bin/python3
"""The book's ch01/train.py through the Python binding: train the 2-10-3 net on the spiral
with Trainer(model, SGD(lr=1.0)).fit(x, t, 300, 30, eval_interval=10), then draw the loss
curve (loss.png) and the decision boundary (decision_boundary.png).

    NN_LIBRARY=build/release/lib/libnn.so PYTHONPATH=bindings/python \
        /usr/bin/python3 examples/python/train_spiral.py --out out/

One libnn.Rng plays the book's global NumPy stream: the spiral, the initial weights and the
per-epoch shuffle draw from it in the book's order, so in float64 the losses equal the book's.
The Trainer's lines are printed as training goes, by a progress callback (Ctrl-C stops the
fit cleanly at the next report). --optimizer trains with another of the book's optimizers
(Adam: --optimizer adam --lr 0.02).
"""
import argparse
import pathlib
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import libnn  # noqa: E402

MAX_EPOCH, BATCH_SIZE, HIDDEN_SIZE, LEARNING_RATE, EVAL_INTERVAL = 300, 30, 10, 1.0, 10


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("."), help="where the PNGs go")
    parser.add_argument("--dtype", default="float64", choices=["float32", "float64"])
    parser.add_argument("--device", default="auto", help="auto, cpu, reference or cuda[:N]")
    parser.add_argument("--grid-step", type=float, default=0.001, help="the book's h")
    parser.add_argument("--optimizer", default="sgd", choices=[o.name.lower() for o in libnn.Optimizer])
    parser.add_argument("--lr", type=float, default=LEARNING_RATE, help="the optimizer's learning rate")
    parser.add_argument("--quiet", action="store_true", help="no per-report lines")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)

    def progress(p):
        """The Trainer's line at each loss record, as the fit goes."""
        if p.event == "report" and not args.quiet:
            print(f"| epoch {p.epoch} |  iter {p.iteration} / {p.steps_per_epoch} "
                  f"| time {int(p.elapsed)}[s] | loss {p.loss:.2f}")

    rng = libnn.Rng(1984)                                   # np.random.seed(1984) in load_data
    x, t = libnn.spiral(100, 3, rng=rng)
    with libnn.Model([2, HIDDEN_SIZE, 3], dtype=args.dtype, rng=rng, device=args.device) as model:
        try:
            report = model.fit(x, t, epochs=MAX_EPOCH, batch_size=BATCH_SIZE, learning_rate=args.lr,
                               optimizer=args.optimizer, report_interval=EVAL_INTERVAL, rng=rng,
                               callback=progress)
        except KeyboardInterrupt:  # raised in the callback: the fit stopped at a step boundary
            print(f"interrupted after {model.epoch_losses().size} epochs", file=sys.stderr)
            report = None
        history = model.loss_history()
        loss, accuracy = model.evaluate(x, t)
        took = f" in {report.seconds * 1e3:.1f} ms" if report else ""
        print(f"trained ({args.optimizer}) on {model.device.name}{took}: "
              f"loss {loss:.4f}, accuracy {accuracy:.2f}")

        # trainer.plot()
        plt.figure()
        plt.plot(np.arange(len(history)), history["loss"], label="train")
        plt.xlabel(f"iterations (x{EVAL_INTERVAL})")
        plt.ylabel("loss")
        plt.savefig(args.out / "loss.png", dpi=100)
        plt.close()

        # The decision boundary: argmax over a grid of step h, as the book draws it.
        h = args.grid_step
        x_min, x_max = x[:, 0].min() - .1, x[:, 0].max() + .1
        y_min, y_max = x[:, 1].min() - .1, x[:, 1].max() + .1
        xx, yy = np.meshgrid(np.arange(x_min, x_max, h), np.arange(y_min, y_max, h))
        grid = np.c_[xx.ravel(), yy.ravel()]
        z = model.predict_classes(grid).reshape(xx.shape)

    plt.figure()
    plt.contourf(xx, yy, z)
    plt.axis("off")
    x, t = libnn.spiral(100, 3, seed=1984)  # the book calls load_data() again (and reseeds)
    for k, marker in enumerate(["o", "x", "^"]):
        plt.scatter(x[t == k, 0], x[t == k, 1], s=40, marker=marker)
    plt.savefig(args.out / "decision_boundary.png", dpi=100)
    plt.close()
    print(f"wrote {args.out / 'loss.png'} and {args.out / 'decision_boundary.png'}")


if __name__ == "__main__":
    main()
