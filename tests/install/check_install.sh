#!/bin/sh
# Installs this build into a scratch prefix and builds a consumer against it twice, with
# CMake's find_package(nn) and with pkg-config, then runs both: they must find libnn and,
# through it, the installed CPU plugin in lib/nn (the install is relocatable).
#   check_install.sh BUILD_DIR SOURCE_DIR
set -eu
build=$1
src=$2
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
prefix=$work/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null
libdir=$(ls -d "$prefix"/lib*/ | head -n 1)
libdir=${libdir%/}
test -f "$prefix/include/nn/nn.h"
test -f "$libdir/nn/libnn-backend-cpu.so"
test -f "$libdir/cmake/nn/nnConfig.cmake"

# CMake package
cmake -S "$src/tests/install/consumer" -B "$work/cmake-build" -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$work/cmake-build" >/dev/null
NN_BACKEND_PATH= "$work/cmake-build/consumer"

# pkg-config
PKG_CONFIG_PATH=$libdir/pkgconfig
export PKG_CONFIG_PATH
test "$(pkg-config --modversion nn)" = "$(sed -n 's/^#define NN_VERSION_MAJOR \([0-9]*\).*/\1/p' "$src/include/nn/nn.h").$(sed -n 's/^#define NN_VERSION_MINOR \([0-9]*\).*/\1/p' "$src/include/nn/nn.h").$(sed -n 's/^#define NN_VERSION_PATCH \([0-9]*\).*/\1/p' "$src/include/nn/nn.h")"
cc -std=c99 -o "$work/pc-consumer" "$src/tests/install/consumer/consumer.c" $(pkg-config --cflags --libs nn)
LD_LIBRARY_PATH=$libdir NN_BACKEND_PATH= "$work/pc-consumer"
echo "install: CMake package and pkg-config consumers both ran on the installed plugin"
