#!/usr/bin/env bash
# Configure (once) and compile a build directory.
#   launch/build.sh [BUILD_DIR] [meson setup options...]
# Default: build/ with -Dcuda=auto (the CUDA backend is compiled whenever the toolkit is found) and
# warnings as errors. Options apply when the directory is first configured.
set -euo pipefail
cd "$(dirname "$0")/.."
. launch/env.sh
dir=${1:-build}
shift || true
if [ ! -f "$dir/build.ninja" ]; then
    meson setup "$dir" --werror "$@" >"$dir.setup.log" 2>&1 || { cat "$dir.setup.log"; exit 1; }
    rm -f "$dir.setup.log"
fi
meson compile -C "$dir"
