#!/usr/bin/env bash
# Runs sdpa_plan_check (tests/gpu/sdpa_plan_check.c says what it shows) on a machine with or without a
# GPU. Without a CUDA driver, cuDNN's runtime-fusion engines cannot even start (they load libcuda):
# CUDA's stub libcuda.so, put first on the library path as libcuda.so.1, lets them generate and compile
# the kernels, and fail only where the compiled code would be loaded - which the check reads as
# "compiled". With a driver (a GPU machine) nothing is shadowed and the plans succeed.
#
# The device record (h200_deviceprop.json) is an H200's properties in the fields cuDNN's JSON device
# record asks for (deviceVer 900 = sm_90), written from the card's published figures, not serialized
# from a real card: its use is to reach the pattern and compile checks, which depend on the
# architecture, not the clocks.
#
# Another cuDNN: its lib folder first on LD_LIBRARY_PATH (kept here), e.g. PyPI's nvidia-cudnn-cu13
# wheel unpacked (the GPU machine's 9.14 was checked so, 2026-11-28).
#
# usage: sdpa_plan_check.sh BINARY DEVICEPROP.json [b s heads kv_heads head_dim causal]...
set -euo pipefail
bin=$1
shift
if ldconfig -p 2>/dev/null | grep -q 'libcuda.so.1 '; then
    exec "$bin" "$@"
fi
stub=""
for d in /usr/local/cuda/lib64/stubs /usr/local/cuda/targets/x86_64-linux/lib/stubs; do
    [ -e "$d/libcuda.so" ] && stub=$d/libcuda.so && break
done
if [ -z "$stub" ]; then
    echo "SKIP: no CUDA driver and no stub libcuda.so under /usr/local/cuda: cuDNN's engines cannot start"
    exit 77
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ln -s "$stub" "$tmp/libcuda.so.1"
echo "no CUDA driver: cuDNN's engines run on the stub $stub (graphs they take stop at loading: 'compiled')"
LD_LIBRARY_PATH="$tmp:${LD_LIBRARY_PATH:-}" "$bin" "$@"
