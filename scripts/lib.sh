# Shared by scripts/demo and scripts/test: install what is missing, nothing more.
# Sourced, not run.

# The Debian packages libnn builds, tests and draws with.
NN_PACKAGES=(build-essential cmake pkg-config libopenblas-dev libcmocka-dev libgtest-dev
             libcairo2-dev doxygen python3-numpy)

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

nn_jobs() { nproc 2>/dev/null || echo 2; }
