#!/bin/sh
# One multi-process test (tests/mpi/CMakeLists.txt registers each name):
#   mpi_test.sh NAME
# Environment (set by CMake): MPIRUN, FIT (mpi_fit_test), PLUGIN_TEST (comm_plugin_test),
# PLUGIN (libnn-comm-mpi.so), WORK (a scratch folder for this test), ISOLATED (a copy of
# libnn with no plugin beside it), EXAMPLE (mpi_wide).
#
# The processes write their results and verdicts to files: mpirun's own exit status is
# not enough (with --enable-recovery it reports 0 whatever the processes returned).
set -u
name=$1
rm -rf "$WORK"
mkdir -p "$WORK"
cd "$WORK" || exit 1

# As root (containers) Open MPI wants --allow-run-as-root; --oversubscribe lets 4
# processes share this machine's 2 cores; --bind-to none lets the kernel move a process
# off a core that other tests keep busy; self,vader (shared memory) is all one machine
# needs, and keeps the tests off the network.
flags="--allow-run-as-root --oversubscribe --bind-to none --mca btl self,vader"
run() {
    n=$1
    shift
    "$MPIRUN" $flags -n "$n" "$@"
}
# A job in which a process dies: by default Open MPI's runtime kills the whole job when
# one process does; --enable-recovery lets the survivors run on (and return their status).
run_surviving() {
    n=$1
    shift
    "$MPIRUN" $flags --enable-recovery -n "$n" "$@" 2>&1 |
        grep -v 'PMIX ERROR: BAD-PARAM'
}

fail=0
die() {
    echo "FAIL: $*"
    fail=1
}

# Every listed process wrote PASS to its check file.
expect_pass() {
    prefix=$1
    shift
    for r in "$@"; do
        f="$prefix$r.txt"
        if [ ! -f "$f" ]; then
            die "process $r wrote no $f"
        elif ! grep -qx PASS "$f"; then
            die "process $r:"
            cat "$f"
        fi
    done
}

same() { "$FIT" compare "$1" "$2" 0 || die "$1 and $2 differ"; }
close() { "$FIT" compare "$1" "$2" "$3" || die "$1 and $2 differ by more than $3"; }

configs="sgd momentum nesterov adagrad rmsprop adam_clip_val_es adam_valx sharded"

# Data-parallel training with P processes, twice; one process on the same global batches.
trajectory() {
    p=$1
    run "$p" "$FIT" train . run1 || die "mpirun -n $p (first run) failed"
    run "$p" "$FIT" train . run2 || die "mpirun -n $p (second run) failed"
    "$FIT" train . single || die "the single-process run failed"
    run "$p" -x NN_PARALLEL=mpi "$FIT" train-env . env || die "mpirun -n $p with NN_PARALLEL=mpi failed"
    last=$((p - 1))
    for c in $configs; do
        for r in $(seq 0 "$last"); do
            # Every process holds the same model, bit for bit, and a second run repeats it.
            [ "$r" -gt 0 ] && same "$c.run1$r.txt" "$c.run10.txt"
            same "$c.run1$r.txt" "$c.run2$r.txt"
        done
        # The trajectory of one process on the same global batches: parameters after every
        # nn_fit call, every step's loss, every epoch's figures, within 1e-12 relative.
        [ "$c" = sharded ] || close "$c.run10.txt" "$c.single0.txt" 1e-12
    done
    # An unchanged program under NN_PARALLEL=mpi trains exactly as with the option.
    for r in $(seq 0 "$last"); do same "sgd.env$r.txt" "sgd.run1$r.txt"; done
    # The options really did something: early stopping stopped, the shards learned, and
    # the processes' results differ from one process's only by rounding (not equal: the
    # sum order differs, so a comparison that always passes would show here).
    grep -q "stopped_early 1" adam_clip_val_es.run10.txt || die "early stopping never stopped"
    grep -q "sharded learned yes" sharded.run10.txt || die "the sharded fit did not lower its loss"
    if "$FIT" compare sgd.run10.txt sgd.single0.txt 0 >/dev/null 2>&1 &&
        "$FIT" compare adagrad.run10.txt adagrad.single0.txt 0 >/dev/null 2>&1; then
        die "P=$p matches one process bit for bit: the all-reduce order was not exercised"
    fi
}

case $name in
plugin_sums_2 | plugin_sums_4)
    p=${name#plugin_sums_}
    run "$p" "$PLUGIN_TEST" "$PLUGIN" . sums "$p" || die "mpirun failed"
    expect_pass rank $(seq 0 $((p - 1)))
    ;;
plugin_stuck_3)
    run_surviving 3 "$PLUGIN_TEST" "$PLUGIN" . stuck 3
    expect_pass rank 0 1 2
    ;;
plugin_killed_3)
    run_surviving 3 "$PLUGIN_TEST" "$PLUGIN" . kill 3
    expect_pass rank 0 2
    ;;
plugin_without_mpirun)
    "$PLUGIN_TEST" "$PLUGIN" . nompirun 1 || die "comm_plugin_test failed"
    expect_pass rank 0
    ;;
fit_trajectory_2) trajectory 2 ;;
fit_trajectory_4) trajectory 4 ;;
fit_bad_arguments_3)
    run 3 "$FIT" bad . || die "mpirun failed"
    expect_pass check. 0 1 2
    same params.0.txt params.1.txt
    same params.0.txt params.2.txt
    ;;
fit_killed_rank_3 | fit_killed_in_callback_3)
    mode=kill
    [ "$name" = fit_killed_in_callback_3 ] && mode=kill-callback
    run_surviving 3 "$FIT" "$mode" .
    expect_pass check. 0 2
    # The survivors stopped at the same step (then they are identical), or one step
    # apart: a process killed inside an all-reduce may have sent its share to one
    # survivor and not the other. Each matched one process's replay of its own steps.
    s0=$(head -n 1 params.0.txt | awk '{print $2}')
    s2=$(head -n 1 params.2.txt | awk '{print $2}')
    if [ "$s0" = "$s2" ]; then
        same params.0.txt params.2.txt
    elif [ $((s0 - s2)) -ne 1 ] && [ $((s2 - s0)) -ne 1 ]; then
        die "the survivors stopped $s0 and $s2 steps in"
    fi
    ;;
fit_without_mpirun)
    "$FIT" nompirun . || die "mpi_fit_test nompirun failed"
    expect_pass check. 0
    NN_PARALLEL=mpi "$FIT" nompirun . || die "mpi_fit_test nompirun (NN_PARALLEL=mpi) failed"
    expect_pass check. 0
    ;;
fit_without_plugin_2)
    mkdir empty
    run 2 -x LD_LIBRARY_PATH="$ISOLATED" -x NN_BACKEND_PATH="$WORK/empty" "$FIT" noplugin . || die "mpirun failed"
    expect_pass check. 0 1
    ;;
example_2)
    run 2 -x OPENBLAS_NUM_THREADS=1 "$EXAMPLE" --rows 1024 --epochs 2 >example.txt 2>&1 || die "mpi_wide failed"
    cat example.txt
    grep -q "2 processes" example.txt || die "the example did not run on 2 processes"
    [ "$(grep -c '^epoch ' example.txt)" -eq 2 ] || die "expected 2 epoch lines, from process 0 only"
    [ "$(grep -c 'parameter checksum' example.txt)" -eq 2 ] || die "expected a checksum from each process"
    [ "$(grep 'parameter checksum' example.txt | awk '{print $NF}' | sort -u | wc -l)" -eq 1 ] ||
        die "the processes' models differ"
    ;;
*)
    die "unknown test $name"
    ;;
esac
[ $fail -eq 0 ] && echo "PASS $name"
exit $fail
