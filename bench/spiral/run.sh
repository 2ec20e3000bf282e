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
#   OPTIMIZERS="sgd momentum adam"   the update rules run on both sides (sgd is always run)
#   REPEAT=51      fits per optimizer and dtype in bench_spiral's one-process overhead run
# OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE are passed through untouched.
#
# Each of the RUNS rounds runs, per optimizer, libnn then NumPy, so the order is
# libnn-SGD NumPy-SGD libnn-Momentum NumPy-Momentum libnn-Adam NumPy-Adam, again and again.
# Prints each run, then per dtype the median in-loop seconds of both, the ratio of the
# medians and the median of the per-pair ratios numpy/libnn (above 1: libnn is faster)
# for SGD (the table this script has always printed), the same for every other optimizer,
# then libnn's cost of each optimizer over SGD per step: the median of the ratios
# optimizer/SGD between the runs of one round (fresh processes), and between neighbouring
# fits of one bench_spiral process that alternates SGD and the optimizers REPEAT times
# (warm; the steadier figure: each optimizer fit against the SGD fits just before and
# after its round), with NumPy's own optimizer/SGD ratio beside them. Last,
# the median whole-process wall time of the example beside that of numpy_spiral.py.
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
repeat=${REPEAT:-51}
optimizers=sgd
for o in ${OPTIMIZERS:-momentum adam}; do
    [ "$o" = sgd ] || optimizers="$optimizers $o"
done
here=$(cd "$(dirname "$0")" && pwd)

# Single-threaded on one core, for both.
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
pin="taskset -c $cpu"

log=$(mktemp)
warm=$(mktemp)
trap 'rm -rf "$log" "$warm" "${outdir:-}"' EXIT

echo "# bench/spiral: $runs alternating runs each, pinned to CPU $cpu, OPENBLAS_NUM_THREADS=1"
echo "# $(uname -srm); $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //')"
i=0
while [ "$i" -lt "$runs" ]; do
    for o in $optimizers; do
        $pin "$bench" --dtype both --device "$device" --optimizer "$o" | tee -a "$log"
        $pin "$python" "$here/numpy_spiral.py" --dtype both --optimizer "$o" | tee -a "$log"
    done
    i=$((i + 1))
done
if [ "$optimizers" != sgd ]; then
    echo "# one process, SGD and the others alternated: bench_spiral --optimizer $(echo "$optimizers" | tr ' ' ,) --repeat $repeat"
    $pin "$bench" --dtype both --device "$device" --optimizer "$(echo "$optimizers" | tr ' ' ,)" \
        --repeat "$repeat" >"$warm"
fi

"$python" - "$log" "$warm" $optimizers <<'EOF'
import statistics, sys
STEPS = 3000  # 300 epochs of 10 steps


def read(path):
    """{(side, dtype, optimizer): [in-loop s, ...]} and {...: {last record, ...}}, in file order."""
    times, finals = {}, {}
    for line in open(path):
        f = line.split()
        if len(f) < 6 or f[4] != "in_loop_s":
            continue
        opt = f[f.index("optimizer") + 1] if "optimizer" in f else "sgd"
        times.setdefault((f[0], f[1], opt), []).append(float(f[5]))
        if "final_record" in f:
            finals.setdefault((f[0], f[1], opt), set()).add(f[f.index("final_record") + 1])
    return times, finals


def spread(ratios):
    return "%.2f (%.2f-%.2f)" % (statistics.median(ratios), min(ratios), max(ratios))


all_times, all_finals = read(sys.argv[1])
warm_times, _ = read(sys.argv[2])
optimizers = sys.argv[3:]
# The SGD table, as this script has always printed it.
times = {(s, d): v for (s, d, o), v in all_times.items() if o == "sgd"}
finals = {(s, d): v for (s, d, o), v in all_finals.items() if o == "sgd"}
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

if len(optimizers) > 1:
    print()
    print("every optimizer, libnn against NumPy (numpy/libnn; above 1: libnn is faster):")
    print("%-9s %-8s %5s %12s %12s %16s %27s  %s" % ("optimizer", "dtype", "runs", "libnn med s",
          "numpy med s", "ratio of medians", "median pair ratio (min-max)", "last record libnn, numpy"))
    for opt in optimizers:
        for dtype in ("float32", "float64"):
            a = all_times.get(("libnn", dtype, opt), [])
            b = all_times.get(("numpy", dtype, opt), [])
            if not a or not b:
                print("%-9s %-8s missing runs (libnn %d, numpy %d)" % (opt, dtype, len(a), len(b)))
                continue
            ma, mb = statistics.median(a), statistics.median(b)
            print("%-9s %-8s %5d %12.6f %12.6f %16.2f %27s  %s, %s"
                  % (opt, dtype, min(len(a), len(b)), ma, mb, mb / ma,
                     spread([y / x for x, y in zip(a, b)]),
                     "/".join(sorted(all_finals.get(("libnn", dtype, opt), {"?"}))),
                     "/".join(sorted(all_finals.get(("numpy", dtype, opt), {"?"})))))

    print()
    print("optimizer over SGD, per step (%d steps a fit; ratio optimizer/SGD, 1.20 = 20%% more;"
          " median pair ratio (min-max)):" % STEPS)
    print("%-9s %-8s %13s %13s %25s %25s %25s" % ("optimizer", "dtype", "libnn SGD us", "libnn opt us",
          "libnn, one process", "libnn, fresh processes", "numpy, fresh processes"))
    for opt in optimizers[1:]:
        for dtype in ("float32", "float64"):
            cells = []
            # One process: each optimizer fit against the SGD fits that start its round and
            # the next (their geometric mean), so that a drift of the vCPU's speed cancels.
            ws = warm_times.get(("libnn", dtype, "sgd"), [])
            wo = warm_times.get(("libnn", dtype, opt), [])
            ref = [(ws[r] * ws[r + 1]) ** 0.5 if r + 1 < len(ws) else ws[r] for r in range(len(ws))]
            cells.append(spread([o / s for s, o in zip(ref, wo)]) if ws and wo else "-")
            for side in ("libnn", "numpy"):
                s = all_times.get((side, dtype, "sgd"), [])
                o = all_times.get((side, dtype, opt), [])
                cells.append(spread([y / x for x, y in zip(s, o)]) if s and o else "-")
            us_s = 1e6 * statistics.median(ws) / STEPS if ws else float("nan")
            us_o = 1e6 * statistics.median(wo) / STEPS if wo else float("nan")
            print("%-9s %-8s %13.3f %13.3f %25s %25s %25s" % (opt, dtype, us_s, us_o, *cells))
    print("(us per step: medians of the one-process run, in-loop time / %d, shuffle and reports included)"
          % STEPS)
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
    # stderr too: the example draws its progress bar there only when it is a terminal.
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
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
