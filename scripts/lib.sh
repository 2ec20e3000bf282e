# Shared by scripts/demo and scripts/test: install what is missing, nothing more.
# Sourced, not run.

# The Debian packages libnn builds, tests and draws with. The fuzz preset calls clang and
# clang++ (package clang, which is clang-14 on Debian 12) and needs libFuzzer's runtime.
# Open MPI builds libnn-comm-mpi.so (multi-process training) and runs its tests.
NN_PACKAGES=(build-essential cmake pkg-config libopenblas-dev libcmocka-dev libgtest-dev
             libcairo2-dev doxygen python3-numpy clang clang-14 libclang-rt-14-dev
             libopenmpi-dev openmpi-bin)

nn_install_missing() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "libnn: installing ${missing[*]}"
    local sudo=()
    [ "$(id -u)" -ne 0 ] && sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

# The language bindings' tests (bindings/python: pytest, scikit-learn's estimator checks,
# matplotlib for its example; bindings/node: npm for koffi). Node itself is not listed:
# Debian 12's nodejs is 18 and this machine's is NodeSource's 20.
NN_PACKAGES+=(python3-pytest python3-sklearn python3-matplotlib valgrind)
# bench/run's peers beside NumPy: PyTorch (Debian's links the same OpenBLAS) and FANN.
NN_PACKAGES+=(python3-torch libfann-dev)
command -v npm >/dev/null 2>&1 || NN_PACKAGES+=(npm)

# Installs bindings/node's locked dependencies (koffi) when node_modules is missing or older
# than package-lock.json. Must run before CMake configures, which looks for node_modules.
nn_install_node_deps() {
    local dir bindings_node
    dir=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
    bindings_node="$dir/bindings/node"
    command -v npm >/dev/null 2>&1 || { echo "libnn: npm not found; skipping bindings/node"; return 0; }
    if [ ! -d "$bindings_node/node_modules" ] || [ "$bindings_node/package-lock.json" -nt "$bindings_node/node_modules" ]; then
        (cd "$bindings_node" && npm ci --no-audit --no-fund) || return 1
        touch "$bindings_node/node_modules"
    fi
}

nn_jobs() { nproc 2>/dev/null || echo 2; }
