"""Makes the package importable from the source tree and finds libnn.so for a dev run.

ctest sets NN_LIBRARY to the library it built; run by hand from the repository root,
`/usr/bin/python3 -m pytest -q bindings/python/tests` falls back to build/release.
"""
import os
import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parents[2]
sys.path.insert(0, str(HERE.parent))
if "NN_LIBRARY" not in os.environ:
    built = REPO / "build" / "release" / "lib" / "libnn.so"
    if built.exists():
        os.environ["NN_LIBRARY"] = str(built)

# The book's numbers, read in place (never copied): ../shared/reference from the repo root.
REFERENCE = pathlib.Path(os.environ.get("NN_REFERENCE_DIR", REPO.parent / "shared" / "reference"))


@pytest.fixture
def reference():
    if not (REFERENCE / "book-ch01").is_dir():
        pytest.skip(f"reference numbers not found at {REFERENCE}")
    return REFERENCE / "book-ch01"


@pytest.fixture
def book_run():
    """The book's chapter-1 run through one shared stream, as its global NumPy stream:
    spiral(seed 1984) -> 2-10-3 init -> 300 epochs of batch 30, lr 1.0."""
    import libnn

    def run(dtype="float64", epochs=300, report_interval=10):
        rng = libnn.Rng(1984)
        x, t = libnn.spiral(100, 3, rng=rng)
        model = libnn.Model([2, 10, 3], dtype=dtype, rng=rng)
        report = model.fit(x, t, epochs=epochs, batch_size=30, learning_rate=1.0,
                           report_interval=report_interval, rng=rng)
        return model, x, t, report, rng
    return run
