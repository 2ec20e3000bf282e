#!/bin/sh
# Data-parallel training over MPI on this machine: the wide MLP (784-1024-1024-10 ReLU,
# float32, global batch 128, momentum SGD) at 1, 2 and 4 processes, and the all-reduce
# of its gradient buffer (1,863,691 floats: the gradients and the loss) alone.
#
#   bench/mpi/run.sh BUILD_DIR
#
# BUILD_DIR is a build with NN_BUILD_BENCH=ON and the MPI plugin (BUILD_DIR/bin,
# BUILD_DIR/lib). Builds nothing. Environment:
#   ROUNDS=5     rounds; each runs every configuration once, in the same order, so that
#                drift (other jobs on the machine) hits them alike
#   STEPS=20     steps per fit; FITS=6 fits per run (the first is a warm-up)
#   MPIRUN=mpirun
# With P ≥ 2 every process runs OpenBLAS on one thread (P processes already fill the
# cores); the one-process runs are made with 2 threads (the machine's cores) and with 1.
# Prints every RESULT line, then the medians over the rounds: time per step, the
# all-reduce alone (the plugin's, and Open MPI's MPI_Allreduce beside it) and the
# all-reduce's share of a step.
set -eu

if [ $# -lt 1 ] || [ ! -x "$1/bin/bench_mpi_train" ] || [ ! -x "$1/bin/bench_allreduce" ]; then
    echo "usage: $0 BUILD_DIR (with bin/bench_mpi_train, bin/bench_allreduce, lib/libnn-comm-mpi.so)" >&2
    exit 2
fi
build=$(cd "$1" && pwd)
rounds=${ROUNDS:-5}
steps=${STEPS:-20}
fits=${FITS:-6}
mpirun=${MPIRUN:-mpirun}
plugin=$build/lib/libnn-comm-mpi.so
# --bind-to none: Open MPI binds each process to a core by default, which would pin a
# one-process run's BLAS threads to one core; the kernel's scheduler places them.
mpi="$mpirun --allow-run-as-root --oversubscribe --bind-to none --mca btl self,vader"
log=$(mktemp)
trap 'rm -f "$log"' EXIT

echo "# bench/mpi: $rounds rounds, $steps steps x $fits fits per run"
echo "# $(uname -srm); $(nproc) CPUs: $(grep -m1 'model name' /proc/cpuinfo 2>/dev/null | sed 's/.*: //')"
echo "# $($mpirun --version 2>/dev/null | head -n 1)"
r=0
while [ "$r" -lt "$rounds" ]; do
    r=$((r + 1))
    echo "## round $r (load: $(cut -d' ' -f1-3 /proc/loadavg))"
    for threads in 2 1; do
        OPENBLAS_NUM_THREADS=$threads "$build/bin/bench_mpi_train" --steps "$steps" --fits "$fits" |
            sed -n "s/^RESULT /RESULT train threads $threads /p" | tee -a "$log"
    done
    for p in 2 4; do
        $mpi -x OPENBLAS_NUM_THREADS=1 -n "$p" "$build/bin/bench_mpi_train" --steps "$steps" --fits "$fits" |
            sed -n 's/^RESULT /RESULT train threads 1 /p' | tee -a "$log"
        $mpi -n "$p" "$build/bin/bench_allreduce" "$plugin" 1863691 30 |
            sed -n 's/^RESULT /RESULT allreduce /p' | tee -a "$log"
    done
done

echo
echo "# over $rounds rounds, ms: the median of the runs' medians, and in brackets the lowest"
echo "# single fit (steps) or repetition (all-reduce) of all runs: the least disturbed by"
echo "# other work on the machine"
awk '
function stat(key, want,   n, i, j, t, a) {
    n = split(want == "min" ? mins[key] : vals[key], a, " ")
    if (n == 0) return "-"
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
    if (want == "min") return a[1]
    return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}
function cell(key) { return stat(key, "med") == "-" ? "-" : sprintf("%.2f [%.2f]", stat(key, "med"), stat(key, "min")) }
/^RESULT train/ {
    for (i = 1; i <= NF; i++) f[$i] = $(i + 1)
    key = "train " f["processes"] " " f["threads"]
    vals[key] = vals[key] " " f["step_ms_median"]
    mins[key] = mins[key] " " f["step_ms_min"]
}
/^RESULT allreduce/ {
    for (i = 1; i <= NF; i++) f[$i] = $(i + 1)
    method = ($0 ~ /libnn plugin/) ? "plugin" : ($0 ~ /"MPI_Allreduce"/) ? "mpi" : "impi"
    key = "ar " f["processes"] " " method
    vals[key] = vals[key] " " f["median_ms"]
    mins[key] = mins[key] " " f["min_ms"]
}
END {
    printf "%-20s %16s %18s %18s %16s\n", "processes", "step", "all-reduce alone", "MPI_Allreduce", "all-reduce/step"
    printf "%-20s %16s %18s %18s %16s\n", "1, 2 BLAS threads", cell("train 1 2"), "-", "-", "-"
    printf "%-20s %16s %18s %18s %16s\n", "1, 1 BLAS thread", cell("train 1 1"), "-", "-", "-"
    for (p = 2; p <= 4; p += 2) {
        share = sprintf("%.0f%% [%.0f%%]", 100 * stat("ar " p " plugin", "med") / stat("train " p " 1", "med"),
                        100 * stat("ar " p " plugin", "min") / stat("train " p " 1", "min"))
        printf "%-20s %16s %18s %18s %16s\n", p (p > 2 ? " (oversubscribed)" : ""), cell("train " p " 1"),
               cell("ar " p " plugin"), cell("ar " p " mpi"), share
    }
}' "$log"
