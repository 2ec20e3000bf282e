#!/bin/sh
# libnn against NumPy on the book's chapter-1 training, in one run.
#
#   bench/spiral/run.sh BENCH_SPIRAL [SPIRAL_EXAMPLE]
#
# BENCH_SPIRAL is the built bench_spiral binary; SPIRAL_EXAMPLE, if given, is the built
# examples' spiral binary, whose whole-process time (load, train, predict, plot) is also
# measured. Builds nothing. Environment:
#   RUNS=7         libnn/NumPy pairs, alternated A B A B so drift hits both alike
#   CPU=0          the core every run is pinned to (taskset -c)
#   PYTHON=/usr/bin/python3   an interpreter with NumPy (Debian's python3-numpy)
#   DEVICE=auto    passed to bench_spiral --device
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are passed through untouched.
#
# Prints each run, then per dtype the median in-loop seconds of both, the ratio of the
# medians and the median of the per-pair ratios numpy/libnn (above 1: libnn is faster),
# then the median whole-process wall time of the example beside that of numpy_spiral.py.
set -eu

if [ $# -lt 1 ] || [ ! -x "$1" ]; then
    echo "usage: $0 BENCH_SPIRAL [SPIRAL_EXAMPLE]" >&2
    exit 2
fi
bench=$1
example=${2:-}
runs=${RUNS:-7}
cpu=${CPU:-0}
python=${PYTHON:-/usr/bin/python3}
device=${DEVICE:-auto}
here=$(cd "$(dirname "$0")" && pwd)

# Single-threaded on one core, for both.
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
pin="taskset -c $cpu"

log=$(mktemp)
trap 'rm -rf "$log" "${outdir:-}"' EXIT

echo "# bench/spiral: $runs alternating runs each, pinned to CPU $cpu, OPENBLAS_NUM_THREADS=1"
echo "# $(uname -srm); $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //')"
i=0
while [ "$i" -lt "$runs" ]; do
    $pin "$bench" --dtype both --device "$device" | tee -a "$log"
    $pin "$python" "$here/numpy_spiral.py" --dtype both | tee -a "$log"
    i=$((i + 1))
done

"$python" - "$log" <<'EOF'
import statistics, sys
times = {}
finals = {}
for line in open(sys.argv[1]):
    f = line.split()
    if len(f) < 6 or f[4] != "in_loop_s":
        continue
    times.setdefault((f[0], f[1]), []).append(float(f[5]))
    if "final_record" in f:
        finals.setdefault((f[0], f[1]), set()).add(f[f.index("final_record") + 1])
print()
print("%-8s %5s %12s %12s %16s %22s" % ("dtype", "runs", "libnn med s", "numpy med s", "ratio of medians",
                                        "median pair ratio (min-max)"))
for dtype in ("float32", "float64"):
    a = times.get(("libnn", dtype), [])
    b = times.get(("numpy", dtype), [])
    if not a or not b:
        print("%-8s missing runs (libnn %d, numpy %d)" % (dtype, len(a), len(b)))
        continue
    ma, mb = statistics.median(a), statistics.median(b)
    # Each libnn run is paired with the NumPy run right after it, so a slow phase of the
    # shared vCPU hits both sides of a pair; the median of those ratios is the figure.
    pairs = [y / x for x, y in zip(a, b)]
    print("%-8s %5d %12.6f %12.6f %16.2f %10.2f (%.2f-%.2f)" % (dtype, min(len(a), len(b)), ma, mb, mb / ma,
                                                                 statistics.median(pairs), min(pairs), max(pairs)))
    print("         last loss record: libnn %s, numpy %s"
          % ("/".join(sorted(finals.get(("libnn", dtype), {"?"}))),
             "/".join(sorted(finals.get(("numpy", dtype), {"?"})))))
EOF

if [ -n "$example" ]; then
    outdir=$(mktemp -d)
    # Whole process, exec to exit, on a monotonic clock (the timer's own start-up is
    # outside it), alternating the example with the NumPy script as a peer. The NumPy
    # figure covers interpreter start, import, data and training only (no plots).
    $pin "$python" - "$example" "$outdir" "$runs" "$python" "$here/numpy_spiral.py" <<'EOF'
import statistics, subprocess, sys, time
exe, outdir, runs, python, script = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
def wall(cmd):
    start = time.monotonic()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - start
ex, bare, py = [], [], []
for _ in range(runs):
    bare.append(wall([exe, "--out-dir", outdir, "--no-plot"]))
    ex.append(wall([exe, "--out-dir", outdir]))
    py.append(wall([python, script, "--dtype", "float64"]))
print()
print("whole process, median of %d (min-max):" % runs)
print("  spiral example --no-plot (float64: load, data, train, evaluate, grid predict): %.3f s (%.3f-%.3f)"
      % (statistics.median(bare), min(bare), max(bare)))
print("  spiral example (the same and 2 PNGs):                                    %.3f s (%.3f-%.3f)"
      % (statistics.median(ex), min(ex), max(ex)))
print("  numpy_spiral.py --dtype float64 (python start, import, data, train):   %.3f s (%.3f-%.3f)"
      % (statistics.median(py), min(py), max(py)))
EOF
fi
