#!/bin/sh
# `pip install bindings/python` from the source tree with no index at all (so no network):
# into a fresh venv over Debian's python3 (whose NumPy it uses), then import and train.
#   pip_install_check.sh SOURCE_DIR   (NN_LIBRARY set to the libnn.so to use)
set -eu
src=$1
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
/usr/bin/python3 -m venv --system-site-packages "$work/venv"
"$work/venv/bin/python" -m pip install --no-index --no-cache-dir --quiet "$src/bindings/python"
cd "$work"  # not the source tree: the installed package must be the one imported
"$work/venv/bin/python" - <<'PY'
import libnn, os
assert os.path.dirname(libnn.__file__).startswith(os.environ.get("VIRTUAL_ENV", os.getcwd())) or "site-packages" in libnn.__file__, libnn.__file__
x, t = libnn.spiral(100, 3, seed=1984)
with libnn.Model([2, 10, 3], dtype="float64") as m:
    m.fit(x, t, epochs=300, batch_size=30, learning_rate=1.0)
    acc = m.evaluate(x, t).accuracy
print("installed libnn from", libnn.__file__, "accuracy", acc)
assert acc >= 0.96, acc
PY
