#!/usr/bin/env bash
# valgrind memcheck over every cmocka executable of the C API suite (tests/capi) in one
# build. Fails on any memcheck error (invalid read or write, use of an uninitialised
# value, bad free, ...) or definite leak, and on any test that fails under valgrind.
#
#   tests/hardening/valgrind_capi.sh BUILD_BIN_DIR      (e.g. build/release/bin)
#
# Each executable runs under
#   valgrind --leak-check=full --errors-for-leak-kinds=definite --track-origins=no
# with its reports split per process. valgrind's --error-exitcode=99 is not used:
# some tests fork a child that reports a libnn status through its exit code (e.g.
# capi_test_model_file_io: a save under a file size limit must exit with NN_ERR_IO), and
# --error-exitcode would replace that code whenever the child _exit()s holding the handles
# it inherited, which memcheck then counts as definitely lost in the child. Instead:
#   - the test's own exit status must be 0;
#   - the top process's log must say "ERROR SUMMARY: 0 errors" (definite leaks count as
#     errors there, through --errors-for-leak-kinds=definite);
#   - a forked child's log must have no error other than definite leaks; its leaks are
#     listed (they are the parent's objects, still allocated when the child _exit()s).
#
# Skipped, with the reason printed:
#   capi_test_alloc  wraps malloc itself (it interposes the allocator to count and fail
#                    allocations), and memcheck replaces malloc.
#   any executable built with ASan or TSan (their shadow memory and valgrind's clash).
# OpenBLAS runs on one thread (OPENBLAS_NUM_THREADS=1 unless set) so its thread pool does
# not spin under memcheck's serialised threads; valgrind_capi.supp holds suppressions for
# OpenBLAS / libgomp / dynamic-loader internals only, never for libnn's own frames.
#
# Environment: VALGRIND (default: valgrind on PATH), NN_VALGRIND_JOBS (executables run in
# parallel, default 1), NN_VALGRIND_LOG_DIR (where the logs go; default a temporary
# directory, removed when everything passed).
set -u

bin_dir=${1:?usage: valgrind_capi.sh BUILD_BIN_DIR}
here=$(cd "$(dirname "$0")" && pwd)
valgrind=${VALGRIND:-valgrind}
jobs=${NN_VALGRIND_JOBS:-1}
supp="$here/valgrind_capi.supp"
export OPENBLAS_NUM_THREADS=${OPENBLAS_NUM_THREADS:-1}

if ! command -v "$valgrind" >/dev/null 2>&1; then
    echo "valgrind_capi: valgrind not found"
    exit 2
fi
if [ ! -d "$bin_dir" ]; then
    echo "valgrind_capi: no such directory: $bin_dir"
    exit 2
fi
log_dir=${NN_VALGRIND_LOG_DIR:-$(mktemp -d "${TMPDIR:-/tmp}/nn-valgrind-XXXXXX")}
mkdir -p "$log_dir"

targets=()
for exe in "$bin_dir"/capi_test_*; do
    if [ ! -f "$exe" ] || [ ! -x "$exe" ]; then continue; fi
    name=$(basename "$exe")
    case "$name" in
    capi_test_alloc)
        echo "SKIP  $name: wraps malloc itself, which valgrind replaces"
        continue ;;
    esac
    if nm -D "$exe" 2>/dev/null | grep -qE ' U (__asan_init|__tsan_init)$'; then
        echo "SKIP  $name: built with a sanitizer"
        continue
    fi
    targets+=("$exe")
done
if [ ${#targets[@]} -eq 0 ]; then
    echo "valgrind_capi: no capi_test_* executables in $bin_dir"
    exit 2
fi

run_one() {
    local exe=$1 name start rc
    name=$(basename "$exe")
    start=$(date +%s)
    # valgrind's reports and the test's own output share one pipe (--log-fd=2, 2>&1 | cat):
    # a forked child under a file size limit (RLIMIT_FSIZE) would cut a log file short,
    # but not a pipe. valgrind prefixes its lines with ==PID==; they are split per process
    # afterwards.
    "$valgrind" --tool=memcheck --leak-check=full --errors-for-leak-kinds=definite \
        --show-leak-kinds=definite --track-origins=no --num-callers=30 \
        --suppressions="$supp" --log-fd=2 \
        "$exe" 2>&1 | cat >"$log_dir/$name.out"
    rc=${PIPESTATUS[0]}
    echo "$rc $(($(date +%s) - start))" >"$log_dir/$name.rc"
}

start_all=$(date +%s)
running=0
for exe in "${targets[@]}"; do
    run_one "$exe" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n
        running=$((running - 1))
    fi
done
wait

errors_of() { sed -nE 's/.*ERROR SUMMARY: ([0-9]+) errors.*/\1/p' "$1" | tail -n 1; }
leaks_of() { grep -c 'are definitely lost in loss record' "$1"; }

failed=0
errors_total=0
for exe in "${targets[@]}"; do
    name=$(basename "$exe")
    read -r rc secs <"$log_dir/$name.rc"
    # One log per process; the top process is the first to write (valgrind's preamble).
    logs=()
    top=""
    for pid in $(grep -oE '^==[0-9]+==' "$log_dir/$name.out" | tr -d = | awk '!seen[$0]++'); do
        grep -E "^==$pid==" "$log_dir/$name.out" >"$log_dir/$name.$pid.vg"
        logs+=("$log_dir/$name.$pid.vg")
        [ -z "$top" ] && top="$log_dir/$name.$pid.vg"
    done
    problems=()
    [ "$rc" -ne 0 ] && problems+=("the test failed under valgrind (exit $rc)")
    top_errors="?"
    if [ -z "$top" ]; then
        problems+=("no valgrind log for the test process")
    else
        top_errors=$(errors_of "$top")
        if [ -z "$top_errors" ]; then
            problems+=("valgrind did not finish (no ERROR SUMMARY)")
            top_errors="?"
        elif [ "$top_errors" -ne 0 ]; then
            problems+=("$top_errors memcheck errors or definite leaks")
            errors_total=$((errors_total + top_errors))
        fi
    fi
    child_notes=()
    for log in "${logs[@]}"; do
        [ "$log" = "$top" ] && continue
        e=$(errors_of "$log")
        l=$(leaks_of "$log")
        if [ -z "$e" ]; then
            problems+=("forked child $(basename "$log"): no ERROR SUMMARY (killed?)")
            continue
        fi
        if [ $((e - l)) -gt 0 ]; then
            problems+=("forked child $(basename "$log"): $((e - l)) memcheck errors")
            errors_total=$((errors_total + e - l))
        elif [ "$l" -gt 0 ]; then
            child_notes+=("forked child $(basename "$log") exited holding $l inherited blocks (not counted)")
        fi
    done
    if [ ${#problems[@]} -eq 0 ]; then
        printf 'PASS  %-30s %4ss  %s processes, 0 errors\n' "$name" "$secs" "${#logs[@]}"
        for note in "${child_notes[@]}"; do echo "      note: $note"; done
    else
        failed=$((failed + 1))
        printf 'FAIL  %-30s %4ss  %s\n' "$name" "$secs" "${problems[0]}"
        for problem in "${problems[@]:1}"; do echo "      and: $problem"; done
        for log in "${logs[@]}"; do
            echo "----- $log"
            grep -vE '^==[0-9]+== *$' "$log" | sed -n '1,150p'
        done
        echo "----- test output ($log_dir/$name.out), last 40 lines"
        grep -vE '^==[0-9]+==' "$log_dir/$name.out" | tail -n 40
    fi
done
echo "valgrind_capi: ${#targets[@]} executables in $(($(date +%s) - start_all)) s, $failed failed, $errors_total memcheck errors (logs: $log_dir)"
if [ "$failed" -eq 0 ] && [ -z "${NN_VALGRIND_LOG_DIR:-}" ]; then
    rm -rf "$log_dir"
fi
[ "$failed" -eq 0 ]
